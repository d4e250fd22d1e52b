//! Durability and recovery of a validator: its own block is durable before
//! it leaves, a commit is durable before it is reported, and a validator
//! restarted from what its store held — with its un-synced tail lost, or
//! with its whole store lost — never signs a second block for a round and
//! rejoins the same commit sequence.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;

use idlegrid_dag_ledger::consensus::{
    Block, BlockRef, CommittedSubDag, Committee, ConsensusConfig, ConsensusEvent, ConsensusMessage,
    PersistRequest, PersistSeq, Recovered, StorageOp, Validator,
};
use idlegrid_primitives::{
    ChaCha20Rng, Destination, Digest, Duration, Keypair, Machine, NodeId, RngCore, Seed,
    SeedableRng, Timestamp,
};

/// A test store: writes are buffered until `sync`; a crash keeps only a
/// prefix of the un-synced writes.
#[derive(Default)]
struct Disk {
    blocks: BTreeMap<BlockRef, Arc<Block>>,
    commits: BTreeMap<u64, Arc<CommittedSubDag>>,
    unsynced: Vec<PersistRequest>,
    last: PersistSeq,
}

impl Disk {
    fn write(&mut self, r: PersistRequest) {
        self.last = r.seq;
        self.unsynced.push(r);
    }
    fn apply(&mut self, r: PersistRequest) {
        match r.op {
            StorageOp::Block(b) => {
                self.blocks.insert(b.header.reference(), b);
            }
            StorageOp::Commit(c) => {
                self.commits.insert(c.index, c);
            }
            StorageOp::PruneBlocks { below, keep } => {
                self.blocks.retain(|r, _| r.round >= below || *r == keep);
            }
            _ => unreachable!("unknown storage op"),
        }
    }
    fn sync(&mut self) {
        for r in std::mem::take(&mut self.unsynced) {
            self.apply(r);
        }
    }
    /// A crash: keeps the first `keep` un-synced writes, drops the rest.
    fn crash(&mut self, keep: usize) {
        let mut w = std::mem::take(&mut self.unsynced);
        w.truncate(keep);
        for r in w {
            self.apply(r);
        }
    }
    fn recovered(&self) -> Recovered {
        Recovered {
            blocks: self.blocks.values().cloned().collect(),
            commits: self.commits.values().cloned().collect(),
            lost: false,
        }
    }
}

/// (arrival, tie-break, to, from, bytes).
type InFlight = Reverse<(Timestamp, u64, usize, usize, Vec<u8>)>;

struct Net {
    keys: Vec<Keypair>,
    ids: Vec<NodeId>,
    committee: Committee,
    config: ConsensusConfig,
    nodes: Vec<Option<Validator>>,
    disks: Vec<Disk>,
    queue: BinaryHeap<InFlight>,
    seq: u64,
    rng: ChaCha20Rng,
    now: Timestamp,
    /// Commit digests by node and index, across incarnations.
    commits: Vec<BTreeMap<u64, Digest>>,
    /// Blocks signed by each author, by round (what left the process).
    signed: BTreeMap<(usize, u64), Digest>,
    equivocations: Vec<usize>,
}

impl Net {
    fn new(n: usize, seed: u64) -> Self {
        let keys: Vec<Keypair> = (0..n as u64)
            .map(|i| Keypair::from_seed(&Seed::from_u64(100 + i)))
            .collect();
        let ids: Vec<NodeId> = keys.iter().map(Keypair::node_id).collect();
        let committee = Committee::equal(ids.iter().copied()).unwrap();
        let config = ConsensusConfig::default();
        let nodes = (0..n)
            .map(|i| {
                let v = Validator::new(
                    keys[i].clone(),
                    committee.clone(),
                    config.clone(),
                    Seed::from_u64(i as u64),
                )
                .unwrap()
                .with_persistence();
                Some(v)
            })
            .collect();
        Self {
            keys,
            ids,
            committee,
            config,
            nodes,
            disks: (0..n).map(|_| Disk::default()).collect(),
            queue: BinaryHeap::new(),
            seq: 0,
            rng: ChaCha20Rng::seed_from_u64(seed),
            now: Timestamp::ZERO,
            commits: vec![BTreeMap::new(); n],
            signed: BTreeMap::new(),
            equivocations: Vec::new(),
        }
    }

    /// The driving loop's output step for node `i`.
    fn drain(&mut self, i: usize) {
        let Some(v) = self.nodes[i].as_mut() else {
            return;
        };
        while let Some(r) = v.poll_persist() {
            self.disks[i].write(r);
        }
        if v.sync_needed() {
            self.disks[i].sync();
            v.persisted(self.disks[i].last);
        }
        let mut out = Vec::new();
        while let Some(t) = v.poll_transmit() {
            out.push(t);
        }
        let mut events = Vec::new();
        while let Some(e) = v.poll_event() {
            events.push(e);
        }
        for t in out {
            if let ConsensusMessage::Block(b) = &t.msg {
                let key = (i, b.header.round.get());
                let d = b.header.reference().digest;
                assert_eq!(
                    *self.signed.entry(key).or_insert(d),
                    d,
                    "validator {i} sent two blocks for round {}",
                    key.1
                );
            }
            let bytes = t.msg.encode();
            let to: Vec<usize> = match t.to {
                Destination::To(id) => vec![self.ids.iter().position(|x| *x == id).unwrap()],
                Destination::Broadcast => (0..self.ids.len()).filter(|j| *j != i).collect(),
            };
            for j in to {
                let delay = Duration::from_millis(10 + self.rng.next_u64() % 40);
                self.seq += 1;
                self.queue
                    .push(Reverse((self.now + delay, self.seq, j, i, bytes.clone())));
            }
        }
        for e in events {
            match e {
                ConsensusEvent::Committed(c) => {
                    assert!(
                        self.disks[i].commits.contains_key(&c.index),
                        "validator {i} reported commit {} before it was durable",
                        c.index
                    );
                    let prev = self.commits[i].insert(c.index, c.digest);
                    assert!(
                        prev.is_none_or(|p| p == c.digest),
                        "validator {i} re-committed index {} differently",
                        c.index
                    );
                }
                ConsensusEvent::Equivocation(ev) => {
                    let who = ev.author().as_usize();
                    self.equivocations.push(who);
                }
                _ => {}
            }
        }
    }

    fn run_until(&mut self, end: Timestamp) {
        loop {
            let next_msg = self.queue.peek().map(|Reverse((t, ..))| *t);
            let next_timer = self
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.as_ref().and_then(|v| v.poll_timeout()).map(|t| (t, i)))
                .min();
            let take_msg = match (next_msg, next_timer) {
                (Some(m), Some((t, _))) => m <= t,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if take_msg {
                let Reverse((t, _, to, from, bytes)) = self.queue.pop().unwrap();
                if t > end {
                    self.queue.push(Reverse((t, 0, to, from, bytes)));
                    break;
                }
                self.now = self.now.max(t);
                if let Some(v) = self.nodes[to].as_mut() {
                    v.handle_bytes(self.now, self.ids[from], &bytes);
                    self.drain(to);
                }
            } else {
                let (t, i) = next_timer.unwrap();
                if t > end {
                    break;
                }
                self.now = self.now.max(t);
                self.nodes[i].as_mut().unwrap().handle_timeout(self.now);
                self.drain(i);
            }
        }
        self.now = end;
    }

    fn crash(&mut self, i: usize, keep_unsynced: usize) {
        self.nodes[i] = None;
        self.disks[i].crash(keep_unsynced);
    }

    fn restart(&mut self, i: usize, recovered: Recovered) {
        let v = Validator::recover(
            self.keys[i].clone(),
            self.committee.clone(),
            self.config.clone(),
            Seed::from_u64(1_000 + i as u64),
            recovered,
        )
        .unwrap();
        self.nodes[i] = Some(v);
        self.drain(i);
    }

    fn check_prefix(&self) {
        for a in 0..self.commits.len() {
            for b in 0..self.commits.len() {
                for (k, d) in &self.commits[a] {
                    if let Some(e) = self.commits[b].get(k) {
                        assert_eq!(d, e, "validators {a} and {b} differ at commit {k}");
                    }
                }
            }
        }
    }

    fn last_commit(&self, i: usize) -> u64 {
        self.commits[i].keys().next_back().copied().unwrap_or(0)
    }
}

#[test]
fn own_block_waits_for_its_write_and_commits_for_theirs() {
    let keys: Vec<Keypair> = (0..4)
        .map(|i| Keypair::from_seed(&Seed::from_u64(i)))
        .collect();
    let committee = Committee::equal(keys.iter().map(Keypair::node_id)).unwrap();
    let mut v = Validator::new(
        keys[0].clone(),
        committee,
        ConsensusConfig::default(),
        Seed::from_u64(1),
    )
    .unwrap()
    .with_persistence();
    v.handle_timeout(Timestamp::ZERO);
    assert!(v.poll_transmit().is_none(), "sent before its write");
    let req = v.poll_persist().expect("our block must be written");
    assert!(matches!(&req.op, StorageOp::Block(b) if b.header.round.get() == 1));
    assert!(v.sync_needed());
    v.persisted(req.seq);
    assert!(!v.sync_needed());
    let t = v.poll_transmit().expect("released after its write");
    assert!(matches!(t.msg, ConsensusMessage::Block(_)));
}

#[test]
fn commits_are_reported_only_once_durable() {
    // `Net::drain` checks every reported commit against the synced store.
    let mut net = Net::new(4, 1);
    net.run_until(Timestamp::from_millis(2_000));
    assert!(net.last_commit(0) > 10);
    net.check_prefix();
    assert!(!net.nodes[1].as_ref().unwrap().sync_needed());
}

#[test]
fn restart_from_the_store_rejoins_without_equivocating() {
    for seed in 0..4 {
        let mut net = Net::new(4, seed);
        for k in 0..6u64 {
            net.run_until(net.now + Duration::from_millis(700));
            let i = (k % 4) as usize;
            let before = net.last_commit(i);
            // Lose part of the un-synced tail (a prefix survives).
            let keep = (net.rng.next_u64() % 4) as usize;
            net.crash(i, keep);
            net.run_until(net.now + Duration::from_millis(300));
            let rec = net.disks[i].recovered();
            net.restart(i, rec);
            net.run_until(net.now + Duration::from_millis(1_500));
            assert!(
                net.last_commit(i) > before + 3,
                "seed {seed}: validator {i} did not rejoin ({before} -> {})",
                net.last_commit(i)
            );
        }
        assert!(net.equivocations.is_empty(), "seed {seed}: equivocation");
        net.check_prefix();
    }
}

#[test]
fn a_lost_store_learns_its_last_block_before_proposing() {
    for seed in 0..4 {
        let mut net = Net::new(4, seed);
        net.run_until(Timestamp::from_millis(1_000));
        let signed_before = net
            .signed
            .keys()
            .filter(|(a, _)| *a == 0)
            .map(|(_, r)| *r)
            .max()
            .unwrap();
        net.crash(0, 0);
        net.disks[0] = Disk::default();
        net.restart(0, Recovered::lost());
        assert!(net.nodes[0].as_ref().unwrap().syncing_own_block());
        net.run_until(net.now + Duration::from_millis(2_000));
        let v = net.nodes[0].as_ref().unwrap();
        assert!(!v.syncing_own_block());
        assert!(v.stats().proposed_round.get() > signed_before);
        assert!(net.equivocations.is_empty(), "seed {seed}: equivocation");
        net.check_prefix();
        assert!(net.last_commit(0) > 0);
    }
}

#[test]
fn a_fresh_start_without_own_block_sync_would_equivocate() {
    // The check above is not vacuous: a validator that forgets its store
    // and starts as new signs round 1 again, and its peers see it.
    let mut net = Net::new(4, 3);
    net.run_until(Timestamp::from_millis(500));
    net.crash(0, 0);
    net.disks[0] = Disk::default();
    net.signed.retain(|(a, _), _| *a != 0);
    net.restart(0, Recovered::default());
    net.run_until(net.now + Duration::from_millis(1_000));
    assert!(net.equivocations.contains(&0));
}

#[test]
fn damaged_stored_blocks_are_a_typed_error() {
    let mut net = Net::new(4, 5);
    net.run_until(Timestamp::from_millis(500));
    let mut rec = net.disks[0].recovered();
    let mut bad = (*rec.blocks[0]).clone();
    bad.header.parents.clear();
    rec.blocks.push(Arc::new(bad));
    let err = Validator::recover(
        net.keys[0].clone(),
        net.committee.clone(),
        net.config.clone(),
        Seed::from_u64(1),
        rec,
    )
    .unwrap_err();
    assert!(err.to_string().contains("damaged"), "{err}");
}

#[test]
fn a_lone_validator_with_a_lost_store_does_not_wait_for_peers() {
    let key = Keypair::from_seed(&Seed::from_u64(1));
    let committee = Committee::equal([key.node_id()]).unwrap();
    let mut v = Validator::recover(
        key,
        committee,
        ConsensusConfig::default(),
        Seed::from_u64(2),
        Recovered::lost(),
    )
    .unwrap();
    v.handle_timeout(Timestamp::ZERO);
    assert!(!v.syncing_own_block());
    assert!(v.poll_persist().is_some(), "it proposed");
}

/// A whole committee started on new stores, each unable to tell whether it
/// signed before (as a real process whose store file is new): every one
/// asks its peers for its latest block, learns there is none, and the
/// committee commits.
#[test]
fn a_committee_started_on_new_stores_learns_nothing_was_signed_and_commits() {
    for seed in 0..4 {
        let mut net = Net::new(4, seed);
        for i in 0..4 {
            net.nodes[i] = None;
            net.restart(i, Recovered::lost());
        }
        net.run_until(Timestamp::from_millis(2_000));
        for i in 0..4 {
            assert!(
                !net.nodes[i].as_ref().unwrap().syncing_own_block(),
                "seed {seed}: {i}"
            );
            assert!(
                net.last_commit(i) > 0,
                "seed {seed}: validator {i} never committed"
            );
        }
        assert!(net.equivocations.is_empty());
        net.check_prefix();
    }
}
