//! Criterion benches for the store: `store::op/param=value`.
//!
//! - `store::commit/backend=memory|redb`: a one-validator committee (it
//!   commits alone, one commit per round) with 50 signed transfers per
//!   block, driven with durability on; throughput is committed
//!   transactions. With redb every round costs one fsync'd transaction
//!   (the own block and the commit are in the same group commit), so the
//!   ratio of the two is the price of "sync per commit";
//! - `store::recover/commits=N`: `ValidatorNode::recover` from a store
//!   holding N commits. The marketplace's state is not checkpointed yet,
//!   so recovery replays every commit since genesis: N is the number of
//!   commits since the last usable checkpoint.
#![allow(missing_docs)]

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use idlegrid_dag_ledger::consensus::{Committee, ConsensusConfig};
use idlegrid_dag_ledger::ledger::{Genesis, Ledger, Nonce, Params, Transaction, TxKind};
use idlegrid_market::KDouble;
use idlegrid_node::market::MarketRules;
use idlegrid_node::store::{MemoryStore, NodeStore, persist_step};
use idlegrid_node::validator::{StoredNode, ValidatorNode, ValidatorSetup};
use idlegrid_primitives::{Amount, Duration, Keypair, Machine, Seed, Timestamp};
use idlegrid_store::RedbStore;

const TX_PER_BLOCK: u64 = 50;
const ROUNDS: u64 = 40;

struct World {
    key: Keypair,
    payer: Keypair,
    sink: Keypair,
    committee: Committee,
    setup: ValidatorSetup,
}

fn world() -> World {
    let key = Keypair::from_seed(&Seed::from_u64(1));
    let payer = Keypair::from_seed(&Seed::from_u64(2));
    let sink = Keypair::from_seed(&Seed::from_u64(3));
    let id = key.node_id();
    let genesis = Genesis {
        balances: vec![
            (id.account(), Amount::new(1_000_000)),
            (payer.account_id(), Amount::new(1 << 40)),
            (sink.account_id(), Amount::new(1_000_000)),
        ],
        stakes: vec![],
        params: Params::default(),
    };
    let setup = ValidatorSetup {
        ledger: Ledger::new(genesis).unwrap(),
        rules: MarketRules {
            stake_per_slot: Amount::new(1_000),
            slash_to_client_bps: 5_000,
            stage_deadline: Duration::from_secs(15),
            clearing_period: Duration::from_secs(1),
            committee_size: 1,
            referees: vec![id],
            book: Default::default(),
            reputation_epoch_secs: 10,
        },
        consensus: ConsensusConfig::default(),
        mechanism: || Box::new(KDouble::new(5_000).unwrap()),
        epoch_secs: 1,
    };
    World {
        committee: Committee::equal([id]).unwrap(),
        key,
        payer,
        sink,
        setup,
    }
}

fn node(w: &World) -> ValidatorNode {
    ValidatorNode::new(
        w.key.clone(),
        w.committee.clone(),
        &w.setup,
        Seed::from_u64(5),
        false,
    )
    .unwrap()
    .with_persistence(16)
}

/// `rounds` rounds with `TX_PER_BLOCK` transfers each; returns the
/// committed transfers (the payer's nonce).
fn drive<S: NodeStore>(w: &World, n: &mut ValidatorNode, store: &mut S, rounds: u64) -> u64 {
    let mut now = Timestamp::ZERO;
    let mut nonce = n.ledger().nonce(&w.payer.account_id()).get();
    for _ in 0..rounds {
        for _ in 0..TX_PER_BLOCK {
            let tx = Transaction {
                chain: w.setup.ledger.params().chain_id,
                sender: w.payer.account_id(),
                nonce: Nonce::new(nonce),
                kind: TxKind::Transfer {
                    to: w.sink.account_id(),
                    amount: Amount::new(1),
                },
            }
            .sign(&w.payer);
            if n.submit(&tx).is_ok() {
                nonce += 1;
            }
        }
        now = n.poll_timeout().unwrap_or(now).max(now);
        n.handle_timeout(now);
        persist_step(n, store).map_err(|e| e.to_string()).unwrap();
        while n.poll_transmit().is_some() {}
        while n.poll_event().is_some() {}
    }
    n.ledger().nonce(&w.payer.account_id()).get()
}

fn commit(c: &mut Criterion) {
    let w = world();
    let committed = drive(&w, &mut node(&w), &mut MemoryStore::new(), ROUNDS);
    let mut g = c.benchmark_group("store::commit");
    g.sample_size(10);
    g.throughput(Throughput::Elements(committed));
    g.bench_function("backend=memory", |b| {
        b.iter_batched(
            || (node(&w), MemoryStore::new()),
            |(mut n, mut s)| drive(&w, &mut n, &mut s, ROUNDS),
            BatchSize::PerIteration,
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let mut k = 0u64;
    g.bench_function("backend=redb", |b| {
        b.iter_batched(
            || {
                k += 1;
                (
                    node(&w),
                    RedbStore::create(dir.path().join(format!("{k}.redb"))).unwrap(),
                )
            },
            |(mut n, mut s)| drive(&w, &mut n, &mut s, ROUNDS),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn recover(c: &mut Criterion) {
    let w = world();
    let mut g = c.benchmark_group("store::recover");
    g.sample_size(10);
    for rounds in [50u64, 200, 800] {
        let mut n = node(&w);
        let mut s = MemoryStore::new();
        drive(&w, &mut n, &mut s, rounds);
        let commits = n.consensus().stats().commits;
        let stored: StoredNode = s.load().unwrap();
        g.bench_with_input(
            BenchmarkId::new("commits", commits),
            &stored,
            |b, stored| {
                b.iter(|| {
                    ValidatorNode::recover(
                        w.key.clone(),
                        w.committee.clone(),
                        &w.setup,
                        Seed::from_u64(6),
                        false,
                        stored.clone(),
                        16,
                    )
                    .unwrap()
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, commit, recover);
criterion_main!(benches);
