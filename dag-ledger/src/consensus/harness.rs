//! An in-crate multi-node harness: a whole committee of [`Validator`]s over
//! a seeded simulated network (random per-message delays, hence random
//! delivery order; optional partitions), with safety checked as commits
//! happen.
//!
//! This is the consensus module's own test bed; the workspace simulator
//! (`idlegrid-sim`) composes validators with the ledger and a richer network
//! model. One `seed` reproduces a run exactly.
//!
//! ```
//! use idlegrid_dag_ledger::consensus::harness::{Harness, HarnessConfig};
//! use idlegrid_primitives::Timestamp;
//!
//! let mut h = Harness::new(HarnessConfig::new(4, 1));
//! h.run_until(Timestamp::from_millis(500));
//! h.check_safety().unwrap();
//! assert!(h.min_honest_commits() > 5);
//! ```

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use idlegrid_primitives::{
    ChaCha20Rng, Destination, Digest, Duration, Keypair, Machine, NodeId, RngCore, Seed,
    SignatureMemo, SignatureVerifier, Timestamp,
};

use super::block::BlockRef;
use super::byzantine::{ByzantineBehavior, Participant};
use super::committee::Committee;
use super::config::ConsensusConfig;
use super::invariants::{InvariantViolation, check_commit_sequence, check_prefix_consistency};
use super::linearizer::CommittedSubDag;
use super::validator::{ConsensusEvent, Validator, ValidatorStats};

/// Parameters of a harness run.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HarnessConfig {
    /// Committee size (equal stakes).
    pub n: usize,
    /// Root seed of the run.
    pub seed: u64,
    /// Behaviour per validator index (`None` and missing entries are
    /// honest); a Byzantine validator is the honest one wrapped by its
    /// adversary (see [`byzantine`](super::byzantine)).
    pub behaviors: Vec<Option<ByzantineBehavior>>,
    /// Configuration shared by all validators.
    pub consensus: ConsensusConfig,
    /// Minimum one-way delay.
    pub min_delay: Duration,
    /// Maximum one-way delay (uniform in `[min, max]`).
    pub max_delay: Duration,
    /// How far ahead of the run's time each validator's clock reads
    /// (missing entries: none). A clock ahead is what a Byzantine
    /// validator that wants to move consensus time forward, or an honest
    /// one whose clock is wrong, looks like from outside: its blocks carry
    /// its clock's readings.
    pub clock_ahead: Vec<Duration>,
}

impl HarnessConfig {
    /// `n` honest validators, delays uniform in 10..=50 ms. Block
    /// signatures are always verified, through one memo the run's
    /// validators share (each block verified once per run).
    pub fn new(n: usize, seed: u64) -> Self {
        Self {
            n,
            seed,
            behaviors: Vec::new(),
            consensus: ConsensusConfig::default(),
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            clock_ahead: Vec::new(),
        }
    }
    /// Validator `i`'s clock reads `ahead` of the run's time.
    pub fn with_clock_ahead(mut self, i: usize, ahead: Duration) -> Self {
        if self.clock_ahead.len() <= i {
            self.clock_ahead.resize(i + 1, Duration::ZERO);
        }
        self.clock_ahead[i] = ahead;
        self
    }
    /// How far ahead validator `i`'s clock reads.
    fn ahead(&self, i: usize) -> Duration {
        self.clock_ahead.get(i).copied().unwrap_or(Duration::ZERO)
    }
    /// Makes validator `i` Byzantine with behaviour `b`.
    pub fn with_behavior(mut self, i: usize, b: ByzantineBehavior) -> Self {
        if self.behaviors.len() <= i {
            self.behaviors.resize(i + 1, None);
        }
        self.behaviors[i] = Some(b);
        self
    }
    /// Sets the delay range.
    pub fn with_delays(mut self, min: Duration, max: Duration) -> Self {
        self.min_delay = min;
        self.max_delay = max.max(min);
        self
    }
    /// Replaces the consensus configuration.
    pub fn with_consensus(mut self, c: ConsensusConfig) -> Self {
        self.consensus = c;
        self
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Input {
    Timer(usize),
    Message {
        from: usize,
        to: usize,
        bytes: Vec<u8>,
    },
}

/// A running committee (see the module docs).
#[derive(Debug)]
pub struct Harness {
    config: HarnessConfig,
    nodes: Vec<Participant<Validator>>,
    ids: Vec<NodeId>,
    index: BTreeMap<NodeId, usize>,
    queue: BinaryHeap<Reverse<(Timestamp, u64, Input)>>,
    seq: u64,
    now: Timestamp,
    rng: ChaCha20Rng,
    scheduled: Vec<Option<Timestamp>>,
    group: Option<Vec<usize>>,
    commits: Vec<Vec<CommittedSubDag>>,
    commit_times: Vec<Vec<Timestamp>>,
    canonical: Vec<Digest>,
    proposed_at: BTreeMap<BlockRef, Timestamp>,
    violation: Option<InvariantViolation>,
    invalid_messages: u64,
    evidence: u64,
    delivered: u64,
}

impl Harness {
    /// Builds the committee and schedules every validator's start.
    pub fn new(config: HarnessConfig) -> Self {
        let root = Seed::from_u64(config.seed);
        let keys: Vec<Keypair> = (0..config.n)
            .map(|i| Keypair::from_seed(&root.derive_indexed("key", i as u64)))
            .collect();
        let ids: Vec<NodeId> = keys.iter().map(Keypair::node_id).collect();
        let committee = Committee::equal(ids.iter().copied()).expect("valid harness committee");
        let signatures = SignatureVerifier::memoized(SignatureMemo::shared(&root.derive("memo")));
        let nodes: Vec<Participant<Validator>> = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| {
                let v = Validator::new(
                    k.clone(),
                    committee.clone(),
                    config.consensus.clone(),
                    root.derive_indexed("node", i as u64),
                )
                .expect("valid harness config")
                .with_signature_verifier(signatures.clone());
                let b = config.behaviors.get(i).copied().flatten();
                Participant::new(v, b, &k, &committee)
            })
            .collect();
        let n = config.n;
        let mut h = Self {
            index: ids.iter().enumerate().map(|(i, id)| (*id, i)).collect(),
            ids,
            nodes,
            queue: BinaryHeap::new(),
            seq: 0,
            now: Timestamp::ZERO,
            rng: root.derive("net").rng(),
            scheduled: vec![None; n],
            group: None,
            commits: vec![Vec::new(); n],
            commit_times: vec![Vec::new(); n],
            canonical: Vec::new(),
            proposed_at: BTreeMap::new(),
            violation: None,
            invalid_messages: 0,
            evidence: 0,
            delivered: 0,
            config,
        };
        for i in 0..n {
            h.reschedule(i);
        }
        h
    }

    /// Current virtual time.
    pub fn now(&self) -> Timestamp {
        self.now
    }
    /// The committee members (honest or wrapped by an adversary).
    pub fn nodes(&self) -> &[Participant<Validator>] {
        &self.nodes
    }
    /// Validator `i`'s honest machine (inside its adversary, if any).
    pub fn validator(&self, i: usize) -> &Validator {
        self.nodes[i].inner()
    }
    /// Mutable access to validator `i`'s honest machine (e.g. to submit
    /// transactions).
    pub fn node_mut(&mut self, i: usize) -> &mut Validator {
        self.nodes[i].inner_mut()
    }
    /// Indices of honest validators.
    pub fn honest(&self) -> Vec<usize> {
        (0..self.config.n)
            .filter(|&i| self.nodes[i].is_honest())
            .collect()
    }
    /// Validator `i`'s committed sub-DAGs.
    pub fn commits(&self, i: usize) -> &[CommittedSubDag] {
        &self.commits[i]
    }
    /// The fewest commits among honest validators.
    pub fn min_honest_commits(&self) -> usize {
        self.honest()
            .iter()
            .map(|&i| self.commits[i].len())
            .min()
            .unwrap_or(0)
    }
    /// Validator `i`'s stats.
    pub fn stats(&self, i: usize) -> ValidatorStats {
        self.nodes[i].inner().stats()
    }
    /// Invalid messages reported by honest validators.
    pub fn invalid_messages(&self) -> u64 {
        self.invalid_messages
    }
    /// Equivocation evidence reported by honest validators.
    pub fn evidence_reported(&self) -> u64 {
        self.evidence
    }
    /// Messages delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Splits the network: `groups[i]` is validator `i`'s side; messages
    /// across sides are dropped.
    pub fn partition(&mut self, groups: Vec<usize>) {
        assert_eq!(groups.len(), self.config.n);
        self.group = Some(groups);
    }
    /// Removes the partition.
    pub fn heal(&mut self) {
        self.group = None;
    }

    /// Submits `count` distinct transactions to every validator.
    pub fn submit_load(&mut self, count: usize) {
        for i in 0..self.config.n {
            for k in 0..count {
                let mut tx = (i as u64).to_le_bytes().to_vec();
                tx.extend((k as u64).to_le_bytes());
                let _ = self.nodes[i].inner_mut().submit_transaction(tx);
            }
        }
        for i in 0..self.config.n {
            self.reschedule(i);
        }
    }

    /// Runs until virtual time `t` (or until nothing is scheduled).
    pub fn run_until(&mut self, t: Timestamp) {
        while let Some(Reverse((at, _, _))) = self.queue.peek() {
            if *at > t {
                break;
            }
            let Some(Reverse((at, _, input))) = self.queue.pop() else {
                break;
            };
            self.now = at;
            match input {
                Input::Timer(i) => {
                    if self.scheduled[i] == Some(at) {
                        self.scheduled[i] = None;
                        let clock = at + self.config.ahead(i);
                        self.nodes[i].handle_timeout(clock);
                        self.drain(i);
                    }
                }
                Input::Message { from, to, bytes } => {
                    self.delivered += 1;
                    let id = self.ids[from];
                    let clock = at + self.config.ahead(to);
                    self.nodes[to].handle_bytes(clock, id, &bytes);
                    self.drain(to);
                }
            }
        }
        self.now = self.now.max(t);
    }

    /// Runs for `d` more.
    pub fn run_for(&mut self, d: Duration) {
        let t = self.now + d;
        self.run_until(t);
    }

    fn push(&mut self, at: Timestamp, input: Input) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, input)));
    }

    fn reschedule(&mut self, i: usize) {
        if let Some(t) = self.nodes[i].poll_timeout() {
            let t = t.saturating_sub(self.config.ahead(i)).max(self.now);
            if self.scheduled[i].is_none_or(|s| s != t) {
                self.scheduled[i] = Some(t);
                self.push(t, Input::Timer(i));
            }
        }
    }

    fn delay(&mut self) -> Duration {
        let (lo, hi) = (
            self.config.min_delay.as_micros(),
            self.config.max_delay.as_micros(),
        );
        let span = hi.saturating_sub(lo).saturating_add(1);
        Duration::from_micros(lo + self.rng.next_u64() % span)
    }

    fn send(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        if self.group.as_ref().is_some_and(|g| g[from] != g[to]) {
            return;
        }
        let at = self.now + self.delay();
        self.push(at, Input::Message { from, to, bytes });
    }

    fn drain(&mut self, i: usize) {
        while let Some(t) = self.nodes[i].poll_transmit() {
            let bytes = t.msg.encode();
            match t.to {
                Destination::To(node) => {
                    if let Some(&j) = self.index.get(&node) {
                        self.send(i, j, bytes);
                    }
                }
                Destination::Broadcast => {
                    for j in (0..self.config.n).filter(|&j| j != i) {
                        self.send(i, j, bytes.clone());
                    }
                }
            }
        }
        let honest = self.nodes[i].is_honest();
        while let Some(e) = self.nodes[i].poll_event() {
            match e {
                ConsensusEvent::Committed(sub) => self.on_commit(i, honest, sub),
                ConsensusEvent::Proposed(r) => {
                    self.proposed_at.entry(r).or_insert(self.now);
                }
                ConsensusEvent::Equivocation(_) if honest => self.evidence += 1,
                ConsensusEvent::InvalidMessage { .. } if honest => self.invalid_messages += 1,
                _ => {}
            }
        }
        self.reschedule(i);
    }

    fn on_commit(&mut self, i: usize, honest: bool, sub: CommittedSubDag) {
        if honest && self.violation.is_none() {
            let idx = sub.index as usize;
            if idx == self.canonical.len() {
                self.canonical.push(sub.digest);
            } else if self.canonical.get(idx) != Some(&sub.digest) {
                self.violation = Some(InvariantViolation::Divergence {
                    a: i,
                    b: usize::MAX,
                    index: idx,
                });
            }
        }
        self.commit_times[i].push(self.now);
        self.commits[i].push(sub);
    }

    /// Safety over honest validators: the first violation seen during the
    /// run, else prefix consistency and well-formed sequences now.
    pub fn check_safety(&self) -> Result<(), InvariantViolation> {
        if let Some(v) = &self.violation {
            return Err(v.clone());
        }
        let honest = self.honest();
        let digests: Vec<Vec<Digest>> = honest
            .iter()
            .map(|&i| self.commits[i].iter().map(|s| s.digest).collect())
            .collect();
        check_prefix_consistency(&digests)?;
        for &i in &honest {
            check_commit_sequence(&self.commits[i])?;
        }
        Ok(())
    }

    /// The run's time at each of validator `i`'s commits, in commit order.
    pub fn commit_times(&self, i: usize) -> &[Timestamp] {
        &self.commit_times[i]
    }

    /// For every leader committed by honest validator `i`: the time from the
    /// leader's proposal to `i`'s commit.
    pub fn commit_latencies(&self, i: usize) -> Vec<Duration> {
        self.commits[i]
            .iter()
            .zip(&self.commit_times[i])
            .filter_map(|(s, t)| self.proposed_at.get(&s.leader).map(|p| *t - *p))
            .collect()
    }
}
