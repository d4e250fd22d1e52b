//! Consensus at scale: [`idlegrid_dag_ledger::consensus::Validator`]s on the
//! simulated WAN, with a transaction load, Byzantine validators, metrics
//! and the consensus invariants checked during the run.
//!
//! - [`ValidatorNode`] wraps a validator with a steady transaction load
//!   (each transaction carries its submission time, so commit latency is
//!   measured end to end).
//! - [`ConsensusObserver`] checks, as commits happen:
//!   - **prefix consistency**: commit `k` of every honest validator has the
//!     same running digest, and indices are gap-free;
//!   - **no honest equivocation**: no evidence ever names an honest
//!     validator;
//!   - **liveness after healing**: once no partition is active and at most
//!     `f` validators are faulty, a new commit happens within
//!     `liveness_bound`;
//!
//!   and at the end runs the consensus crate's own
//!   [`check_prefix_consistency`] over the recorded digest sequences. It
//!   collects committed transactions and blocks per second, transaction
//!   commit latency (submission → commit at the submitting validator) and
//!   leader commit latency (proposal → commit at each honest validator).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use idlegrid_dag_ledger::consensus::byzantine::{ByzantineBehavior, Participant};
use idlegrid_dag_ledger::consensus::{
    AuthorityIndex, Block, BlockRef, Committee, ConsensusConfig, ConsensusEvent, ConsensusMessage,
    Validator, check_prefix_consistency,
};
use idlegrid_primitives::{
    Digest, Domain, Duration, Keypair, Machine, NodeId, Round, Seed, SignatureMemo,
    SignatureVerifier, Timestamp, Transmit, encoded_len,
};

use crate::durable::{CATCH_UP_COMMITS, CATCH_UP_GRACE, Disks, Replicas};
use crate::fault::Fault;
use crate::metrics::Metrics;
use crate::network::hops::HopLog;
use crate::node::{NodeContext, NodeIndex};
use crate::observer::{Observer, Violation};

/// Smallest transaction: submission time (8 bytes), validator (4), sequence (8).
pub const MIN_TX_BYTES: usize = 20;
/// Load is submitted in batches this far apart.
const LOAD_PERIOD: Duration = Duration::from_millis(20);
/// Bound on digests remembered per validator for the end-of-run check.
const MAX_RECORDED_COMMITS: usize = 1 << 20;

/// How a validator misbehaves in a simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    /// Follows the protocol.
    Honest,
    /// Two blocks per round, one to each half of its peers.
    Equivocate,
    /// Sends its blocks only to `recipients` peers and serves no fetches.
    Withhold {
        /// Peers that still receive its blocks.
        recipients: u32,
    },
    /// Proposes blocks with too few parents (invalid blocks).
    InvalidBlocks,
    /// Puts transfers with forged signatures into its own blocks
    /// (`idlegrid_node::byzantine::Forger`; marketplace only).
    Forge,
    /// Serves its light nodes every certified fact but those they must act
    /// on (`idlegrid_node::byzantine::LeafWithholder`; marketplace only).
    WithholdFacts,
    /// Honest protocol, but every message it sends is delayed (applied by
    /// the network as the node's egress delay).
    Delay {
        /// The extra delay.
        extra: Duration,
    },
    /// Honest protocol, but its clock reads `ahead` of everybody's (applied
    /// by the driver: the node is handed its clock's reading), so its
    /// blocks carry that time.
    ClockAhead {
        /// How far ahead.
        ahead: Duration,
    },
}

impl Behavior {
    /// Whether the validator counts toward `f`.
    pub fn is_byzantine(self) -> bool {
        !matches!(self, Behavior::Honest)
    }

    /// How far ahead of the simulation's time its clock reads.
    pub fn clock_ahead(self) -> Duration {
        match self {
            Behavior::ClockAhead { ahead } => ahead,
            _ => Duration::ZERO,
        }
    }

    /// The consensus adversary wrapping the validator's honest machine,
    /// if any.
    pub(crate) fn adversary(self) -> Option<ByzantineBehavior> {
        match self {
            // A delay is the network's doing, forging and withholding facts
            // the node's (they need the marketplace).
            Behavior::Honest
            | Behavior::Delay { .. }
            | Behavior::ClockAhead { .. }
            | Behavior::Forge
            | Behavior::WithholdFacts => None,
            Behavior::Equivocate => Some(ByzantineBehavior::Equivocate),
            Behavior::Withhold { recipients } => Some(ByzantineBehavior::Withhold { recipients }),
            Behavior::InvalidBlocks => Some(ByzantineBehavior::TooFewParents),
        }
    }
}

/// Parameters of a consensus simulation.
#[derive(Debug, Clone)]
pub struct ConsensusParams {
    /// Behaviour per validator (by node index).
    pub behaviors: Vec<Behavior>,
    /// Transactions each validator submits per virtual second.
    pub tx_per_second: f64,
    /// Bytes per transaction (at least [`MIN_TX_BYTES`]).
    pub tx_bytes: usize,
    /// The validators' configuration (the same for every validator).
    pub config: ConsensusConfig,
    /// Liveness: a commit must follow within this once the network is healthy.
    pub liveness_bound: Duration,
    /// CPU a validator spends on each received block (free by default).
    pub cpu: CpuCost,
    /// Checks every validator's block signatures: one memo for the whole
    /// run (see [`shared_verifier`]).
    pub signatures: SignatureVerifier,
    /// Durable validators (`nodes.restart = "store"`): every validator
    /// writes its blocks and commits to its disk, and a restarted one
    /// recovers from what the disk held. `None`: validators keep no store
    /// (`"resume"` keeps the whole machine across a crash instead).
    pub store: Option<StoreParams>,
}

/// CPU a validator spends on a received block: verifying it and checking
/// and applying its transactions (see
/// [`Simulation::set_cpu_cost`](crate::Simulation::set_cpu_cost)). Blocks
/// inside fetch responses cost the same; requests cost nothing.
///
/// ```
/// use idlegrid_sim::consensus::CpuCost;
/// use idlegrid_primitives::Duration;
/// let cpu = CpuCost { block_verify_ns: 36_000, tx_apply_ns: 16_000 };
/// assert_eq!(cpu.for_block(100), Duration::from_micros(36 + 1_600));
/// assert!(CpuCost::default().is_free());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuCost {
    /// Per block (its signature), ns.
    pub block_verify_ns: u64,
    /// Per transaction in a block, ns.
    pub tx_apply_ns: u64,
}

impl CpuCost {
    /// Whether everything is free.
    pub fn is_free(self) -> bool {
        self.block_verify_ns == 0 && self.tx_apply_ns == 0
    }

    /// The cost of one block of `txs` transactions (rounded up to a µs).
    pub fn for_block(self, txs: usize) -> Duration {
        let ns = self
            .tx_apply_ns
            .saturating_mul(txs as u64)
            .saturating_add(self.block_verify_ns);
        Duration::from_micros(ns.div_ceil(1_000))
    }

    /// The cost of receiving `msg`.
    pub fn of(self, msg: &ConsensusMessage) -> Duration {
        let blocks: &[std::sync::Arc<idlegrid_dag_ledger::consensus::Block>] = match msg {
            ConsensusMessage::Block(b) => std::slice::from_ref(b),
            ConsensusMessage::FetchResponse(v) => v,
            ConsensusMessage::LatestOwnBlockResponse(Some(b)) => std::slice::from_ref(b),
            _ => &[],
        };
        blocks.iter().fold(Duration::ZERO, |acc, b| {
            acc.saturating_add(self.for_block(b.transactions.len()))
        })
    }
}

/// Simulated disks of a consensus run (see [`crate::durable`]).
#[derive(Clone)]
pub struct StoreParams {
    /// Every validator's disk, kept across its crashes.
    pub disks: Disks,
    /// Probability that a crash loses (part of) the un-synced writes.
    pub lose_unsynced: f64,
}

impl std::fmt::Debug for StoreParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreParams")
            .field("lose_unsynced", &self.lose_unsynced)
            .finish_non_exhaustive()
    }
}

/// The verifier every simulated validator of one run shares: block
/// signatures are always verified, each one once per run rather than once
/// per validator (a pure function cache: every answer is the one
/// verification gives, so no validator learns anything from it; see
/// [`SignatureVerifier`]). `seed` keys the memo's table.
///
/// The table holds [`MEMO_PER_NODE`] fingerprints for each of the run's
/// `nodes`, at least [`SignatureMemo::DEFAULT_CAPACITY`]: what the nodes
/// sign (remembered as it is made) must outlive the second or so until its
/// last check — a transaction's in the batch that commits it — while
/// every other node signs too. With the default table, `large` (11 100
/// nodes) verified again about one transaction in ten at apply.
pub fn shared_verifier(seed: u64, nodes: usize) -> SignatureVerifier {
    let seed = Seed::from_u64(seed).derive("signature-memo");
    let capacity = nodes
        .saturating_mul(MEMO_PER_NODE)
        .max(SignatureMemo::DEFAULT_CAPACITY);
    SignatureVerifier::memoized(Arc::new(SignatureMemo::new(capacity, &seed)))
}

/// Signature fingerprints a run's shared memo holds per simulated node
/// (33 bytes each; see [`shared_verifier`]).
pub const MEMO_PER_NODE: usize = 16;

impl ConsensusParams {
    /// The largest number of faulty validators an `n` committee tolerates.
    pub fn max_faulty(n: usize) -> usize {
        n.saturating_sub(1) / 3
    }
}

/// A validator (honest, or inside its adversary) plus its transaction
/// load (see the module docs).
pub struct ValidatorNode {
    validator: Participant<Validator>,
    disks: Option<Disks>,
    index: u32,
    tx_per_period: f64,
    carry: f64,
    tx_bytes: usize,
    next_load: Timestamp,
    seq: u64,
    rejected: u64,
}

impl ValidatorNode {
    /// Builds node `ctx.index` of the committee of all simulation nodes.
    ///
    /// # Panics
    /// If the consensus configuration is invalid (validate it first with
    /// [`ConsensusConfig::validate`]).
    pub fn new(ctx: &NodeContext<'_>, params: &ConsensusParams) -> Self {
        let committee = Committee::equal(ctx.nodes.iter().copied()).expect("valid committee");
        let behavior = params
            .behaviors
            .get(ctx.index.get())
            .copied()
            .unwrap_or(Behavior::Honest);
        let key = Keypair::from_seed(&ctx.key_seed);
        let seed = ctx.seed.derive("validator");
        let honest = match &params.store {
            None => Validator::new(key.clone(), committee.clone(), params.config.clone(), seed),
            Some(_) if ctx.incarnation == 0 => {
                Validator::new(key.clone(), committee.clone(), params.config.clone(), seed)
                    .map(Validator::with_persistence)
            }
            Some(store) => {
                let stored = crate::durable::lock(&store.disks[ctx.index.get()]).restart(
                    &mut ctx.seed.derive("disk-crash").rng(),
                    store.lose_unsynced,
                    false,
                );
                Validator::recover(
                    key.clone(),
                    committee.clone(),
                    params.config.clone(),
                    seed,
                    stored.consensus,
                )
            }
        }
        .unwrap_or_else(|e| panic!("validator {} cannot start: {e}", ctx.index.get()))
        .with_signature_verifier(params.signatures.clone());
        let validator = Participant::new(honest, behavior.adversary(), &key, &committee);
        Self {
            validator,
            disks: params
                .store
                .as_ref()
                .map(|s| std::sync::Arc::clone(&s.disks)),
            index: ctx.index.get() as u32,
            tx_per_period: params.tx_per_second * LOAD_PERIOD.as_micros() as f64 / 1e6,
            carry: 0.0,
            tx_bytes: params.tx_bytes.max(MIN_TX_BYTES),
            next_load: ctx.now,
            seq: 0,
            rejected: 0,
        }
    }

    /// The validator's honest machine (inside its adversary, if any).
    pub fn validator(&self) -> &Validator {
        self.validator.inner()
    }

    /// Transactions the validator refused (queue full).
    pub fn rejected_transactions(&self) -> u64 {
        self.rejected
    }

    /// The durability step: the validator's writes go to its disk, synced
    /// when something waits for them.
    fn persist(&mut self) {
        let Some(disks) = &self.disks else { return };
        let disk = &mut *crate::durable::lock(&disks[self.index as usize]);
        let v = self.validator.inner_mut();
        while let Some(req) = v.poll_persist() {
            disk.write_consensus(req);
        }
        if v.sync_needed() {
            v.persisted(disk.sync_all());
        }
    }

    fn submit_load(&mut self, now: Timestamp) {
        self.carry += self.tx_per_period;
        while self.carry >= 1.0 {
            self.carry -= 1.0;
            self.seq += 1;
            let mut tx = Vec::with_capacity(self.tx_bytes);
            tx.extend_from_slice(&now.as_micros().to_le_bytes());
            tx.extend_from_slice(&self.index.to_le_bytes());
            tx.extend_from_slice(&self.seq.to_le_bytes());
            tx.resize(self.tx_bytes, 0);
            if self.validator.inner_mut().submit_transaction(tx).is_err() {
                self.rejected += 1;
            }
        }
    }
}

pub(crate) fn varint_len(mut v: usize) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// The exact canonical encoded size of a message, computed without
/// serializing transaction bytes (for
/// [`Simulation::set_size_of_message`](crate::Simulation::set_size_of_message)).
pub fn wire_size(msg: &ConsensusMessage) -> usize {
    match msg {
        ConsensusMessage::Block(b) => {
            // Variant tag, header, transaction list, 64-byte signature.
            1 + encoded_len(&b.header)
                + varint_len(b.transactions.len())
                + b.transactions
                    .iter()
                    .map(|t| varint_len(t.len()) + t.len())
                    .sum::<usize>()
                + 64
        }
        other => encoded_len(other),
    }
}

/// A message's identity in the run digest: a block's signed header digest
/// (which commits to its transactions) and its signature, for a block sent
/// alone or in an answer (every block of a fetch response, in order, is
/// hashed by that identity, not re-encoded whole); other messages are
/// hashed whole.
pub fn fingerprint(msg: &ConsensusMessage) -> Digest {
    let identity = |b: &Block| (b.reference().digest, b.signature.to_bytes());
    match msg {
        ConsensusMessage::Block(b) => {
            let (digest, signature) = identity(b);
            Digest::hash_parts(FINGERPRINT_DOMAIN, &[digest.as_bytes(), &signature])
        }
        ConsensusMessage::FetchResponse(blocks) => {
            let ids: Vec<_> = blocks.iter().map(|b| identity(b)).collect();
            let parts: Vec<&[u8]> = std::iter::once(&b"fetch-response"[..])
                .chain(ids.iter().flat_map(|(d, s)| [d.as_bytes(), &s[..]]))
                .collect();
            Digest::hash_parts(FINGERPRINT_DOMAIN, &parts)
        }
        other => Digest::of(FINGERPRINT_DOMAIN, other),
    }
}

const FINGERPRINT_DOMAIN: Domain = Domain::new("idlegrid/sim/consensus-message");

/// Decodes `(submitted_at, validator index)` from a load transaction.
pub fn decode_tx(bytes: &[u8]) -> Option<(Timestamp, u32)> {
    let t = u64::from_le_bytes(bytes.get(0..8)?.try_into().ok()?);
    let v = u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?);
    Some((Timestamp::from_micros(t), v))
}

impl Machine for ValidatorNode {
    type Message = ConsensusMessage;
    type Event = ConsensusEvent;

    fn handle_message(&mut self, now: Timestamp, from: NodeId, msg: ConsensusMessage) {
        self.validator.handle_message(now, from, msg);
        self.persist();
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        if self.tx_per_period > 0.0 && now >= self.next_load {
            self.submit_load(now);
            self.next_load = now + LOAD_PERIOD;
        }
        if self.validator.poll_timeout().is_some_and(|t| t <= now) {
            self.validator.handle_timeout(now);
        }
        self.persist();
    }

    fn poll_transmit(&mut self) -> Option<Transmit<ConsensusMessage>> {
        self.validator.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<ConsensusEvent> {
        let ev = self.validator.poll_event();
        self.persist();
        ev
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        let load = (self.tx_per_period > 0.0).then_some(self.next_load);
        match (self.validator.poll_timeout(), load) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Consensus metrics and invariant checks (see the module docs).
pub struct ConsensusObserver {
    honest: Vec<bool>,
    max_faulty: usize,
    byzantine: usize,
    liveness_bound: Duration,
    metrics: Metrics,
    /// Canonical digest of each commit index (first honest report).
    canonical: BTreeMap<u64, Digest>,
    next_index: Vec<u64>,
    recorded: Vec<Vec<Digest>>,
    proposed_at: HashMap<BlockRef, Timestamp>,
    /// Each node's authority index, learned from its proposals.
    author_of: Vec<Option<AuthorityIndex>>,
    /// Each node's latest proposal time.
    last_proposal: Vec<Option<Timestamp>>,
    last_round: Vec<Round>,
    equivocations: BTreeSet<(u64, u32)>,
    // Liveness bookkeeping.
    cut_links: bool,
    crashed: BTreeSet<NodeIndex>,
    healthy_since: Option<Timestamp>,
    last_progress: Timestamp,
    replicas: Replicas,
    /// Commits before this are warm-up: not in the steady-state figures.
    warmup: Timestamp,
    /// Proposal and steady commit times for the hop-by-hop breakdown
    /// (with the network's delays; see [`HopLog`]).
    hops: Option<HopLog>,
    /// Each authority's node, learned from its proposals.
    node_of: HashMap<AuthorityIndex, usize>,
}

impl ConsensusObserver {
    /// Leaves commits before `warmup` out of the steady-state throughput
    /// (`steady_committed_transactions`) and of the transaction commit
    /// latency.
    pub fn with_warmup(mut self, warmup: Duration) -> Self {
        self.warmup = Timestamp::ZERO.saturating_add(warmup);
        self
    }

    /// Breaks the steady leader commit latency down hop by hop against the
    /// network's mean one-way `delays` between the nodes (`n × n` µs,
    /// row-major; see [`HopLog`]): the `hop_*` metrics.
    pub fn with_hops(mut self, delays: Vec<f64>) -> Self {
        self.hops = Some(HopLog::new(delays));
        self
    }

    /// An observer for `n` validators with the given behaviours.
    pub fn new(n: usize, behaviors: &[Behavior], liveness_bound: Duration) -> Self {
        let honest: Vec<bool> = (0..n)
            .map(|i| !behaviors.get(i).is_some_and(|b| b.is_byzantine()))
            .collect();
        Self {
            byzantine: honest.iter().filter(|h| !**h).count(),
            honest: honest.clone(),
            max_faulty: ConsensusParams::max_faulty(n),
            liveness_bound,
            metrics: Metrics::default(),
            canonical: BTreeMap::new(),
            next_index: vec![0; n],
            recorded: vec![Vec::new(); n],
            proposed_at: HashMap::new(),
            author_of: vec![None; n],
            last_proposal: vec![None; n],
            last_round: vec![Round::ZERO; n],
            equivocations: BTreeSet::new(),
            cut_links: false,
            crashed: BTreeSet::new(),
            healthy_since: Some(Timestamp::ZERO),
            last_progress: Timestamp::ZERO,
            replicas: Replicas::new(honest, CATCH_UP_COMMITS, CATCH_UP_GRACE),
            warmup: Timestamp::ZERO,
            hops: None,
            node_of: HashMap::new(),
        }
    }

    /// Distinct `(round, author)` equivocations detected.
    pub fn equivocations_detected(&self) -> u64 {
        self.equivocations.len() as u64
    }

    /// Highest commit index any honest validator reached, plus one.
    pub fn commits(&self) -> u64 {
        self.canonical.keys().next_back().map_or(0, |k| k + 1)
    }

    fn healthy(&self) -> bool {
        !self.cut_links && self.crashed.len() + self.byzantine <= self.max_faulty
    }

    fn update_health(&mut self, now: Timestamp) {
        match (self.healthy(), self.healthy_since) {
            (true, None) => self.healthy_since = Some(now),
            (false, Some(_)) => self.healthy_since = None,
            _ => {}
        }
    }

    fn on_commit(
        &mut self,
        now: Timestamp,
        node: usize,
        sub: &idlegrid_dag_ledger::consensus::CommittedSubDag,
    ) -> Result<(), Violation> {
        if !self.honest[node] {
            return Ok(());
        }
        let expected = self.next_index[node];
        if sub.index != expected {
            return Err(Violation::new(
                "commit-sequence",
                format!(
                    "validator {node} committed index {} after {}",
                    sub.index,
                    expected.wrapping_sub(1)
                ),
            ));
        }
        self.next_index[node] = expected + 1;
        self.replicas.on_commit(node, sub.index)?;
        if self.recorded[node].len() < MAX_RECORDED_COMMITS {
            self.recorded[node].push(sub.digest);
        }
        if let Some(p) = self.proposed_at.get(&sub.leader) {
            self.metrics
                .record("leader_commit_latency_us", (now - *p).as_micros());
        }
        if let (Some(h), Some(&leader)) = (&mut self.hops, self.node_of.get(&sub.leader.author))
            && now >= self.warmup
        {
            h.committed(leader, sub.leader.round.get(), node, now);
        }
        let second = now.as_micros() / 1_000_000;
        match self.canonical.get(&sub.index) {
            Some(d) if *d != sub.digest => {
                return Err(Violation::new(
                    "prefix-consistency",
                    format!(
                        "validator {node}'s commit {} has digest {} but another honest validator committed {}",
                        sub.index,
                        sub.digest.short(),
                        d.short()
                    ),
                ));
            }
            Some(_) => {}
            None => {
                self.canonical.insert(sub.index, sub.digest);
                self.last_progress = now;
                self.metrics
                    .add("committed_blocks", sub.blocks.len() as u64);
                self.metrics
                    .add("committed_transactions", sub.transactions.len() as u64);
                self.metrics.add("commits", 1);
                if now >= self.warmup {
                    self.metrics.add(
                        "steady_committed_transactions",
                        sub.transactions.len() as u64,
                    );
                }
                self.metrics.add_at(
                    "committed_transactions",
                    second,
                    sub.transactions.len() as u64,
                );
                self.metrics.add_at("commits", second, 1);
            }
        }
        if now >= self.warmup {
            self.record_steady_latencies(now, node, sub);
        }
        Ok(())
    }

    /// After warm-up: leader and other blocks' proposal → commit at `node`,
    /// and for `node`'s own transactions the end-to-end latency split into
    /// the wait for a block (submission → proposal of the first of `node`'s
    /// blocks in this commit proposed at or after it: the block that holds
    /// it while blocks are not full, as the queue is first-in first-out)
    /// and that block's proposal → commit.
    fn record_steady_latencies(
        &mut self,
        now: Timestamp,
        node: usize,
        sub: &idlegrid_dag_ledger::consensus::CommittedSubDag,
    ) {
        let me = self.author_of.get(node).copied().flatten();
        let mut own: Vec<(Round, Timestamp)> = Vec::new();
        for b in &sub.blocks {
            let Some(p) = self.proposed_at.get(b).copied() else {
                continue;
            };
            let name = match *b == sub.leader {
                true => "steady_leader_commit_latency_us",
                false => "block_commit_latency_us",
            };
            self.metrics.record(name, (now - p).as_micros());
            if Some(b.author) == me {
                own.push((b.round, p));
            }
        }
        own.sort();
        for tx in &sub.transactions {
            let Some((at, v)) = decode_tx(tx.as_bytes()) else {
                continue;
            };
            if v as usize != node {
                continue;
            }
            self.metrics
                .record("commit_latency_us", (now - at).as_micros());
            if let Some((_, p)) = own.iter().find(|(_, p)| *p >= at) {
                self.metrics
                    .record("inclusion_wait_us", (*p - at).as_micros());
                self.metrics
                    .record("included_commit_latency_us", (now - *p).as_micros());
            }
        }
    }
}

impl Observer<ConsensusEvent> for ConsensusObserver {
    fn on_event(
        &mut self,
        now: Timestamp,
        node: NodeIndex,
        event: &ConsensusEvent,
    ) -> Result<(), Violation> {
        let i = node.get();
        match event {
            ConsensusEvent::Committed(sub) => self.on_commit(now, i, sub)?,
            ConsensusEvent::Proposed(r) => {
                self.proposed_at.entry(*r).or_insert(now);
                if let Some(a) = self.author_of.get_mut(i) {
                    *a = Some(r.author);
                }
                self.node_of.entry(r.author).or_insert(i);
                if let Some(h) = &mut self.hops {
                    h.proposed(i, r.round.get(), now);
                }
                if let Some(last) = self.last_round.get_mut(i) {
                    if r.round.get() > last.get() + 1 && now >= self.warmup {
                        self.metrics
                            .add("skipped_rounds", r.round.get() - last.get() - 1);
                    }
                    *last = r.round;
                }
                if let Some(last) = self.last_proposal.get_mut(i) {
                    if let Some(prev) = last.replace(now)
                        && now >= self.warmup
                    {
                        self.metrics
                            .record("round_interval_us", (now - prev).as_micros());
                    }
                }
            }
            ConsensusEvent::Equivocation(ev) => {
                let author = ev.first.header.author;
                let round = ev.first.header.round.get();
                let j = author.as_usize();
                if self.honest.get(j).copied().unwrap_or(false) {
                    return Err(Violation::new(
                        "no-honest-equivocation",
                        format!(
                            "validator {i} holds evidence that honest validator {j} equivocated in round {round}"
                        ),
                    ));
                }
                if self.equivocations.insert((round, author.get())) {
                    self.metrics.add("equivocations_detected", 1);
                }
            }
            ConsensusEvent::InvalidMessage { .. } => self.metrics.add("invalid_messages", 1),
            _ => {}
        }
        Ok(())
    }

    fn on_fault(&mut self, now: Timestamp, fault: &Fault) -> Result<(), Violation> {
        match fault {
            Fault::Partition { .. } | Fault::Block { .. } => self.cut_links = true,
            Fault::Heal => self.cut_links = false,
            Fault::Crash { nodes } => self.crashed.extend(nodes.iter().copied()),
            Fault::Restart { nodes } => nodes.iter().for_each(|n| {
                self.crashed.remove(n);
            }),
            _ => {}
        }
        self.replicas.on_fault(now, fault, |_, _| false);
        self.update_health(now);
        Ok(())
    }

    fn on_tick(&mut self, now: Timestamp) -> Result<(), Violation> {
        self.replicas.on_tick(now)?;
        // Keep the proposal-time map bounded: forget blocks far below the
        // last commit.
        if self.proposed_at.len() > 200_000 {
            let keep = self
                .proposed_at
                .values()
                .copied()
                .max()
                .unwrap_or(now)
                .saturating_since(Timestamp::ZERO);
            let cutoff = Timestamp::from_micros(keep.as_micros().saturating_sub(60_000_000));
            self.proposed_at.retain(|_, t| *t >= cutoff);
        }
        if let Some(since) = self.healthy_since {
            let from = since.max(self.last_progress);
            if now.saturating_since(from) > self.liveness_bound {
                return Err(Violation::new(
                    "liveness",
                    format!(
                        "no new commit for {} although the network has been healthy since {since}",
                        now.saturating_since(from)
                    ),
                ));
            }
        }
        Ok(())
    }

    fn finish(&mut self, _now: Timestamp) -> Result<(), Violation> {
        let honest: Vec<&Vec<Digest>> = self
            .recorded
            .iter()
            .enumerate()
            .filter(|(i, _)| self.honest[*i])
            .map(|(_, r)| r)
            .collect();
        check_prefix_consistency(&honest)
            .map_err(|e| Violation::new("prefix-consistency", e.to_string()))?;
        if let Some(h) = &self.hops {
            let w = h.waits();
            self.metrics.add("hop_leaders", w.leaders);
            for (name, us) in [
                ("hop_parents_wait_us", w.parents_us),
                ("hop_vote_wait_us", w.vote_us),
                ("hop_certificate_wait_us", w.certificate_us),
                ("hop_commit_wait_us", w.commit_us),
            ] {
                self.metrics.add(name, us.round() as u64);
            }
        }
        Ok(())
    }

    fn metrics(&self) -> Option<&Metrics> {
        Some(&self.metrics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idlegrid_dag_ledger::consensus::{AuthorityIndex, CommittedSubDag};
    use idlegrid_primitives::{Domain, Round};

    fn sub(index: u64, tag: &str) -> ConsensusEvent {
        let d = Digest::hash(Domain::new("idlegrid/sim/test"), tag.as_bytes());
        ConsensusEvent::Committed(CommittedSubDag {
            index,
            leader: BlockRef {
                round: Round::new(index + 1),
                author: AuthorityIndex::new(0),
                digest: d,
            },
            leader_node: NodeId::default(),
            round: Round::new(index + 1),
            timestamp: Timestamp::ZERO,
            blocks: Vec::new(),
            transactions: Vec::new(),
            digest: d,
        })
    }

    fn observer() -> ConsensusObserver {
        let behaviors = [
            Behavior::Honest,
            Behavior::Honest,
            Behavior::Honest,
            Behavior::Equivocate,
        ];
        ConsensusObserver::new(4, &behaviors, Duration::from_secs(10))
    }

    #[test]
    fn wire_size_is_the_encoded_length() {
        use idlegrid_primitives::{Seed, encode};
        let root = Seed::from_u64(3);
        let ids: Vec<NodeId> = (0..4)
            .map(|i| Keypair::from_seed(&root.derive_indexed("k", i)).node_id())
            .collect();
        let committee = Committee::equal(ids).unwrap();
        let mut v = Validator::new(
            Keypair::from_seed(&root.derive_indexed("k", 0)),
            committee,
            ConsensusConfig::default(),
            root,
        )
        .unwrap();
        for k in 0..300u32 {
            v.submit_transaction(vec![7; 20 + (k as usize % 200)])
                .unwrap();
        }
        v.handle_timeout(Timestamp::ZERO);
        let mut blocks = 0;
        while let Some(t) = v.poll_transmit() {
            assert_eq!(wire_size(&t.msg), encode(&t.msg).len());
            blocks += 1;
        }
        assert!(blocks > 0);
    }

    #[test]
    fn prefix_divergence_is_caught_at_the_commit() {
        let mut o = observer();
        let t = Timestamp::from_millis(1);
        o.on_event(t, NodeIndex::new(0), &sub(0, "a")).unwrap();
        o.on_event(t, NodeIndex::new(1), &sub(0, "a")).unwrap();
        let v = o.on_event(t, NodeIndex::new(2), &sub(0, "b")).unwrap_err();
        assert_eq!(v.invariant, "prefix-consistency");
        // A Byzantine validator's own view is not checked.
        o.on_event(t, NodeIndex::new(3), &sub(0, "z")).unwrap();
    }

    #[test]
    fn index_gaps_are_caught() {
        let mut o = observer();
        let t = Timestamp::from_millis(1);
        o.on_event(t, NodeIndex::new(0), &sub(0, "a")).unwrap();
        let v = o.on_event(t, NodeIndex::new(0), &sub(2, "c")).unwrap_err();
        assert_eq!(v.invariant, "commit-sequence");
    }

    #[test]
    fn liveness_only_when_healthy() {
        let mut o = observer();
        let groups = vec![vec![NodeIndex::new(0)], vec![NodeIndex::new(1)]];
        o.on_fault(Timestamp::ZERO, &Fault::Partition { groups })
            .unwrap();
        // Partitioned: no liveness obligation.
        o.on_tick(Timestamp::from_millis(30_000)).unwrap();
        o.on_fault(Timestamp::from_millis(30_000), &Fault::Heal)
            .unwrap();
        o.on_tick(Timestamp::from_millis(39_000)).unwrap();
        let v = o.on_tick(Timestamp::from_millis(40_001)).unwrap_err();
        assert_eq!(v.invariant, "liveness");
    }
}
