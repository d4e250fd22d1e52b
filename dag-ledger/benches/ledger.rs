//! Ledger throughput: applied transfers per second on one core, with batch
//! signature verification, one-by-one verification, and none; plus raw
//! batch verification of the same signatures for the ratio, and the state
//! digest (kept incrementally, and recomputed from the whole state).
//!
//! `cargo bench -p idlegrid-dag-ledger --bench ledger`
// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use idlegrid_dag_ledger::ledger::*;
use idlegrid_primitives::{Amount, BatchItem, Epoch, Keypair, Seed, Timestamp, verify_batch};

const N: usize = 1_000;

/// Consecutive batches applied to one ledger before it is replaced by a
/// fresh clone of the genesis ledger (outside the timing).
const ROUNDS: usize = 16;

/// A genesis ledger of `N` funded accounts and `ROUNDS` batches of `N`
/// signed transfers (batch `r` carries every account's nonce `r`).
fn setup() -> (Ledger, Vec<Vec<Vec<u8>>>) {
    let keys: Vec<Keypair> = (0..N as u64)
        .map(|i| Keypair::from_seed(&Seed::from_u64(i)))
        .collect();
    let genesis = Genesis {
        balances: keys
            .iter()
            .map(|k| (k.account_id(), Amount::new(1_000_000)))
            .collect(),
        stakes: vec![],
        params: Params::default(),
    };
    let ledger = Ledger::new(genesis).unwrap();
    let batch = |round: u64| -> Vec<Vec<u8>> {
        keys.iter()
            .enumerate()
            .map(|(i, k)| {
                Transaction {
                    chain: ledger.params().chain_id,
                    sender: k.account_id(),
                    nonce: Nonce::new(round),
                    kind: TxKind::Transfer {
                        to: keys[(i + 1) % N].account_id(),
                        amount: Amount::new(10),
                    },
                }
                .sign(k)
                .to_bytes()
            })
            .collect()
    };
    let batches = (0..ROUNDS as u64).map(batch).collect();
    (ledger, batches)
}

/// Times `iters` batches applied in sequence to one long-lived ledger, as
/// a validator applies them, cycling through the `ROUNDS` batches. Only
/// `apply_batch` is timed: replacing the ledger by a fresh clone every
/// `ROUNDS` batches and dropping each result are not.
#[allow(clippy::disallowed_methods)] // a benchmark measures wall time
fn apply_sequence(
    genesis: &Ledger,
    batches: &[Vec<Vec<u8>>],
    mode: SignatureCheck,
    iters: u64,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut ledger = genesis.clone();
    let mut apps = NoApps;
    for i in 0..iters as usize {
        let round = i % ROUNDS;
        if round == 0 && i > 0 {
            ledger = genesis.clone();
        }
        let ctx = BatchContext::at(Epoch::new(round as u64 + 1), Timestamp::ZERO);
        let mut host = Host {
            signatures: mode,
            ..Host::default_for(&mut apps)
        };
        let start = Instant::now();
        let r = ledger.apply_batch(ctx, &batches[round], &mut host).unwrap();
        total += start.elapsed();
        assert_eq!(r.applied(), N);
        black_box(r.state_digest);
    }
    total
}

fn bench(c: &mut Criterion) {
    let (ledger, batches) = setup();
    let txs = &batches[0];
    let mut g = c.benchmark_group("ledger::apply_transfers");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    for (name, mode) in [
        ("sig=batch", SignatureCheck::Batch),
        ("sig=single", SignatureCheck::Single),
        ("sig=skip", SignatureCheck::Skip),
    ] {
        g.bench_function(format!("{name}/n={N}"), |b| {
            b.iter_custom(|iters| apply_sequence(&ledger, &batches, mode, iters))
        });
    }
    g.finish();

    // Raw batch verification of the same N signatures.
    let decoded: Vec<SignedTransaction> = txs
        .iter()
        .map(|b| SignedTransaction::from_bytes(b).unwrap())
        .collect();
    let msgs: Vec<Vec<u8>> = decoded.iter().map(|s| s.tx.signing_bytes()).collect();
    let pks: Vec<_> = decoded.iter().map(|s| s.tx.sender.public_key()).collect();
    let items: Vec<BatchItem<'_>> = decoded
        .iter()
        .zip(&msgs)
        .zip(&pks)
        .map(|((s, m), pk)| BatchItem {
            domain: TX_DOMAIN,
            msg: m,
            public: pk,
            signature: &s.signature,
        })
        .collect();
    let mut g = c.benchmark_group("ledger::verify");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    let mut rng = Seed::from_u64(7).rng();
    g.bench_function(format!("batch/n={N}"), |b| {
        b.iter(|| verify_batch(&items, &mut rng).unwrap())
    });
    g.finish();

    // The state digest of N accounts: what every batch reports (the kept
    // commitment) and what `check_all` recomputes from scratch.
    let mut g = c.benchmark_group("ledger::state_digest");
    g.bench_function(format!("kept/n={N}"), |b| b.iter(|| ledger.state_digest()));
    g.bench_function(format!("recomputed/n={N}"), |b| {
        b.iter(|| ledger.state_digest_recomputed())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
