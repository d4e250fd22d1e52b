//! Consensus end to end: four dag-ledger validators, each driven by a
//! [`Runner`] over a real transport (TCP on loopback, then the in-memory
//! network with loss and delay), commit every submitted transaction, and
//! their committed sequences are prefixes of one another.
//!
//! Each validator is pre-loaded with its own transactions before it runs.
//! The run stops once every validator has committed all of them; the
//! timeout only turns a hang into a failure, nothing asserts on timing.
mod common;

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use futures::future::join_all;
use idlegrid_dag_ledger::consensus::{
    CommittedSubDag, Committee, ConsensusConfig, ConsensusEvent, Validator, check_commit_sequence,
    check_prefix_consistency,
};
use idlegrid_primitives::{Digest, Duration, Keypair, Seed};
use idlegrid_transport::{MemoryConfig, MemoryNetwork, PostcardCodec, Runner, Transport};
use tokio::sync::{mpsc, watch};

use common::{keypairs, tcp_cluster, test_config};

/// Validators in the committee (tolerates one fault).
const NODES: usize = 4;
/// Transactions pre-loaded into each validator.
const TXS_PER_NODE: usize = 5;
/// Failure guard for a whole run (a healthy run takes well under a second
/// on TCP and a few seconds with loss).
const RUN_GUARD: StdDuration = StdDuration::from_secs(60);

/// The `i`-th transaction submitted to validator `node`.
fn tx(node: usize, i: usize) -> Vec<u8> {
    format!("node {node} tx {i}").into_bytes()
}

/// Every transaction of the run, as bytes.
fn all_txs() -> Vec<Vec<u8>> {
    (0..NODES)
        .flat_map(|n| (0..TXS_PER_NODE).map(move |i| tx(n, i)))
        .collect()
}

/// One validator per key, in one committee, each holding its transactions.
fn validators(keys: &[Keypair], config: &ConsensusConfig, seed: &Seed) -> Vec<Validator> {
    let committee = Committee::equal(keys.iter().map(Keypair::node_id)).unwrap();
    keys.iter()
        .enumerate()
        .map(|(n, k)| {
            let mut v = Validator::new(
                k.clone(),
                committee.clone(),
                config.clone(),
                seed.derive_indexed("validator", n as u64),
            )
            .unwrap();
            for i in 0..TXS_PER_NODE {
                v.submit_transaction(tx(n, i)).unwrap();
            }
            v
        })
        .collect()
}

/// Number of times each transaction appears in a commit sequence.
fn committed_counts(commits: &[CommittedSubDag]) -> BTreeMap<Vec<u8>, usize> {
    let mut counts = BTreeMap::new();
    for t in commits.iter().flat_map(|c| &c.transactions) {
        *counts.entry(t.as_bytes().to_vec()).or_default() += 1;
    }
    counts
}

/// True once `commits` holds every submitted transaction.
fn has_all(commits: &[CommittedSubDag], wanted: &[Vec<u8>]) -> bool {
    let counts = committed_counts(commits);
    wanted.iter().all(|t| counts.contains_key(t))
}

/// Runs one [`Runner`] per validator until each has committed every
/// transaction, then stops them all. Returns each node's commit sequence
/// (in the order its runner reported them) and shuts the transports down.
async fn run_committee<T: Transport>(
    machines: Vec<Validator>,
    transports: Vec<T>,
) -> Vec<Vec<CommittedSubDag>> {
    assert_eq!(machines.len(), transports.len());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (commit_tx, mut commit_rx) = mpsc::unbounded_channel::<(usize, CommittedSubDag)>();

    let runners = machines
        .into_iter()
        .zip(transports)
        .enumerate()
        .map(|(n, (machine, transport))| {
            let mut stop = stop_rx.clone();
            let commits = commit_tx.clone();
            Runner::new(machine, transport, PostcardCodec::default()).run(
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                },
                move |e| {
                    if let ConsensusEvent::Committed(c) = e {
                        // The collector outlives the runners.
                        let _ = commits.send((n, c));
                    }
                },
            )
        })
        .collect::<Vec<_>>();
    drop(commit_tx);

    let wanted = all_txs();
    let collect = async {
        let mut seqs: Vec<Vec<CommittedSubDag>> = vec![Vec::new(); NODES];
        while !seqs.iter().all(|s| has_all(s, &wanted)) {
            let (n, c) = commit_rx.recv().await.expect("runners stopped early");
            seqs[n].push(c);
        }
        stop_tx.send_replace(true);
        seqs
    };

    let (stopped, mut seqs) = tokio::time::timeout(RUN_GUARD, async {
        tokio::join!(join_all(runners), collect)
    })
    .await
    .expect("validators did not all commit every transaction in time");

    // Commits reported between the stop signal and the runners returning.
    while let Ok((n, c)) = commit_rx.try_recv() {
        seqs[n].push(c);
    }
    // `join_all` keeps the runners' order: `stopped[n]` is node `n`.
    for (n, s) in stopped.into_iter().enumerate() {
        assert_eq!(
            s.machine.stats().commits,
            seqs[n].len() as u64,
            "node {n}: every committed sub-DAG reached the event handler"
        );
        s.transport.shutdown().await;
    }
    seqs
}

/// The assertions of both tests: gap-free sequences without duplicates,
/// every transaction committed exactly once by every node, and one common
/// history (every digest sequence is a prefix of the longest).
fn assert_agreement(seqs: &[Vec<CommittedSubDag>]) {
    let wanted = all_txs();
    for (n, s) in seqs.iter().enumerate() {
        check_commit_sequence(s).unwrap_or_else(|e| panic!("node {n}: {e}"));
        let counts = committed_counts(s);
        for t in &wanted {
            assert_eq!(counts.get(t), Some(&1), "node {n} committed {t:?} once");
        }
    }
    let digests: Vec<Vec<Digest>> = seqs
        .iter()
        .map(|s| s.iter().map(|c| c.digest).collect())
        .collect();
    check_prefix_consistency(&digests).unwrap();
    // Spelled out: on the common prefix, every node has the same digests
    // and the same transactions in the same order.
    let common = seqs.iter().map(Vec::len).min().unwrap();
    assert!(common > 0);
    for s in &seqs[1..] {
        for (a, b) in seqs[0][..common].iter().zip(&s[..common]) {
            assert_eq!(a.index, b.index);
            assert_eq!(a.digest, b.digest);
            assert_eq!(a.transactions, b.transactions);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_agree_over_tcp() {
    let keys = keypairs(NODES as u64);
    let seed = Seed::from_u64(9);
    let machines = validators(&keys, &ConsensusConfig::default(), &seed);
    let (transports, book) = tcp_cluster(&keys, test_config()).await;
    assert_eq!(book.len(), NODES);
    let seqs = run_committee(machines, transports).await;
    assert_agreement(&seqs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_agree_over_lossy_memory_network() {
    let keys = keypairs(NODES as u64);
    let seed = Seed::from_u64(10);
    let mut config = ConsensusConfig::default();
    // Lost blocks come back by fetch or by rebroadcast; keep the latter brisk.
    config.rebroadcast_timeout = Duration::from_millis(100);
    config.sync_retry = Duration::from_millis(50);
    let machines = validators(&keys, &config, &seed);
    let net = MemoryNetwork::new(MemoryConfig {
        loss_ppm: 100_000, // 10 %
        delay_min: StdDuration::from_micros(100),
        delay_max: StdDuration::from_millis(5),
        seed: seed.derive("net"),
        ..MemoryConfig::default()
    })
    .unwrap();
    let transports = keys.iter().map(|k| net.join(k.node_id())).collect();
    let seqs = run_committee(machines, transports).await;
    assert_agreement(&seqs);
}
