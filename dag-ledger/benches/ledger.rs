//! Ledger throughput: applied transfers per second on one core, with batch
//! signature verification, one-by-one verification, and none; plus raw
//! batch verification of the same signatures for the ratio, and the state
//! digest (kept incrementally, and recomputed from the whole state).
//!
//! `cargo bench -p idlegrid-dag-ledger --bench ledger`
// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use idlegrid_dag_ledger::ledger::*;
use idlegrid_primitives::{Amount, BatchItem, Epoch, Keypair, Seed, Timestamp, verify_batch};

const N: usize = 1_000;

fn setup() -> (Ledger, Vec<Vec<u8>>, Vec<Keypair>) {
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
    let txs = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            Transaction {
                chain: ledger.params().chain_id,
                sender: k.account_id(),
                nonce: Nonce::new(0),
                kind: TxKind::Transfer {
                    to: keys[(i + 1) % N].account_id(),
                    amount: Amount::new(10),
                },
            }
            .sign(k)
            .to_bytes()
        })
        .collect();
    (ledger, txs, keys)
}

fn bench(c: &mut Criterion) {
    let (ledger, txs, _keys) = setup();
    let ctx = BatchContext::at(Epoch::new(1), Timestamp::ZERO);
    let mut g = c.benchmark_group("ledger::apply_transfers");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    for (name, mode) in [
        ("sig=batch", SignatureCheck::Batch),
        ("sig=single", SignatureCheck::Single),
        ("sig=skip", SignatureCheck::Skip),
    ] {
        g.bench_function(format!("{name}/n={N}"), |b| {
            b.iter_batched(
                || ledger.clone(),
                |mut l| {
                    let mut apps = NoApps;
                    let mut host = Host {
                        signatures: mode,
                        ..Host::default_for(&mut apps)
                    };
                    let r = l.apply_batch(ctx, &txs, &mut host).unwrap();
                    assert_eq!(r.applied(), N);
                    r.state_digest
                },
                BatchSize::LargeInput,
            )
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
