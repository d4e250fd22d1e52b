//! Criterion benches for the store: `store::op/param=value`.
//!
//! - `store::commit/backend=memory|redb`: a one-validator committee (it
//!   commits alone, one commit per round) with 50 signed transfers per
//!   block, driven with durability on; throughput is committed
//!   transactions. With redb every round costs one fsync'd transaction
//!   (the own block and the commit are in the same group commit), so the
//!   ratio of the two is the price of "sync per commit";
//! - `store::recover/since_checkpoint=N`: `ValidatorNode::recover` from a
//!   store holding N commits after its last checkpoint (the node took no
//!   checkpoint, so the genesis state is it): recovery replays all N;
//!   `store::recover/checkpointed=N` is the same N commits with a
//!   checkpoint every 16, so recovery replays at most 15;
//! - `store::sync/accounts=N`: state sync of a ledger of N accounts, both
//!   sides: the server cuts its checkpoint into 256 KiB chunks under a
//!   manifest, the fetcher checks the manifest against the offered root and
//!   every chunk against the manifest, decodes the body and restores a node
//!   from it; throughput is snapshot bytes.
#![allow(missing_docs)]

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use idlegrid_dag_ledger::consensus::{Committee, ConsensusConfig};
use idlegrid_dag_ledger::ledger::{Genesis, Ledger, Nonce, Params, Transaction, TxKind};
use idlegrid_market::KDouble;
use idlegrid_node::market::MarketRules;
use idlegrid_node::snapshot::{
    CHUNK_BYTES, SNAPSHOT_CHUNK_DOMAIN, ServedSnapshot, SyncMessage, decode_body,
};
use idlegrid_node::store::{MemoryStore, NodeStore, persist_step};
use idlegrid_node::validator::{StoredNode, ValidatorNode, ValidatorSetup};
use idlegrid_primitives::{Amount, Digest, Duration, Keypair, Machine, Seed, Timestamp};
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
    world_with(0)
}

/// A world whose genesis also funds `accounts` more accounts.
fn world_with(accounts: u64) -> World {
    let key = Keypair::from_seed(&Seed::from_u64(1));
    let payer = Keypair::from_seed(&Seed::from_u64(2));
    let sink = Keypair::from_seed(&Seed::from_u64(3));
    let id = key.node_id();
    let mut balances = vec![
        (id.account(), Amount::new(1_000_000)),
        (payer.account_id(), Amount::new(1 << 40)),
        (sink.account_id(), Amount::new(1_000_000)),
    ];
    balances.extend((0..accounts).map(|i| {
        let k = Keypair::from_seed(&Seed::from_u64(1_000 + i));
        (k.account_id(), Amount::new(1_000 + u128::from(i)))
    }));
    let genesis = Genesis {
        balances,
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
            global_trust: None,
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
    node_checkpointing(w, 16)
}

/// A durable node taking a checkpoint every `every` commits (0: never).
fn node_checkpointing(w: &World, every: u64) -> ValidatorNode {
    ValidatorNode::new(
        w.key.clone(),
        w.committee.clone(),
        &w.setup,
        Seed::from_u64(5),
        false,
    )
    .unwrap()
    .with_persistence(every)
}

/// Restores `w`'s node from `stored`.
fn restore(w: &World, stored: StoredNode) -> ValidatorNode {
    ValidatorNode::recover(
        w.key.clone(),
        w.committee.clone(),
        &w.setup,
        Seed::from_u64(6),
        false,
        stored,
        16,
    )
    .unwrap()
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
    for (series, every) in [("since_checkpoint", 0), ("checkpointed", 16)] {
        for rounds in [50u64, 200, 800] {
            let mut n = node_checkpointing(&w, every);
            let mut s = MemoryStore::new();
            drive(&w, &mut n, &mut s, rounds);
            let commits = n.consensus().stats().commits;
            let stored: StoredNode = s.load().unwrap();
            g.bench_with_input(BenchmarkId::new(series, commits), &stored, |b, stored| {
                b.iter(|| restore(&w, stored.clone()))
            });
        }
    }
    g.finish();
}

/// The fetcher's side of a state sync: manifest against the root, every
/// chunk against the manifest, the body decoded and a node restored.
fn fetch(w: &World, served: &ServedSnapshot) -> ValidatorNode {
    let offer = served.manifest.offer();
    // Every message crosses the wire encoded.
    let wire = |m: SyncMessage| SyncMessage::decode(&m.encode()).unwrap();
    let SyncMessage::Manifest(manifest) = wire(SyncMessage::Manifest(served.manifest.clone()))
    else {
        unreachable!()
    };
    manifest.check(&offer).unwrap();
    let mut body = Vec::with_capacity(manifest.total_bytes as usize);
    for (i, want) in manifest.chunks.iter().enumerate() {
        let bytes = served.chunk(i as u32).unwrap().to_vec();
        let msg = SyncMessage::Chunk {
            root: offer.root,
            chunk: i as u32,
            bytes,
        };
        let SyncMessage::Chunk { bytes, .. } = wire(msg) else {
            unreachable!()
        };
        assert_eq!(bytes.len(), manifest.chunk_len(i as u32));
        assert_eq!(Digest::hash(SNAPSHOT_CHUNK_DOMAIN, &bytes), *want);
        body.extend_from_slice(&bytes);
    }
    let cp = decode_body(&body, &offer).unwrap();
    restore(
        w,
        StoredNode {
            checkpoint: Some(std::sync::Arc::new(cp)),
            ..StoredNode::default()
        },
    )
}

fn sync(c: &mut Criterion) {
    let mut g = c.benchmark_group("store::sync");
    g.sample_size(10);
    for accounts in [1_000u64, 10_000, 100_000] {
        let w = world_with(accounts);
        let mut n = node_checkpointing(&w, 4);
        let mut s = MemoryStore::new();
        drive(&w, &mut n, &mut s, 8);
        let cp = s.image().checkpoint.clone().expect("a checkpoint");
        let served = ServedSnapshot::of(&cp, CHUNK_BYTES);
        g.throughput(Throughput::Bytes(served.body.len() as u64));
        g.bench_function(BenchmarkId::new("accounts", accounts), |b| {
            b.iter(|| fetch(&w, &ServedSnapshot::of(&cp, CHUNK_BYTES)))
        });
    }
    g.finish();
}

criterion_group!(benches, commit, recover, sync);
criterion_main!(benches);
