//! The validator state machine: proposes blocks, accepts and fetches peer
//! blocks, commits leaders and emits the ordered transactions.
//!
//! # Driving loop
//!
//! `Validator` implements [`Machine`]. After building it, and after every
//! input — [`Validator::handle_message`] (or [`Validator::handle_bytes`] for
//! raw bytes), [`Validator::handle_timeout`] once the clock reaches
//! [`Validator::poll_timeout`], or [`Validator::submit_transaction`] — drain
//! [`Validator::poll_transmit`] and [`Validator::poll_event`] until both
//! return `None`, then sleep until the next message or `poll_timeout`.
//! A fresh validator asks for a timeout at [`Timestamp::ZERO`]: the first
//! `handle_timeout` starts it and proposes round 1.
//!
//! # Proposing
//!
//! A validator proposes round `r+1` once it has a quorum of stake of round
//! `r` blocks and either every leader of round `r` is present or the
//! leader wait has passed since the quorum was reached: `leader_timeout`,
//! or with `adaptive_leader_wait` (off by default) an estimate from how
//! late the leaders of the last rounds were, never more than
//! `leader_timeout` (see [`LeaderWait`]). Parents are the
//! first block received of each author at round `r` (never a second
//! variant, never a known equivocator's block) plus its own previous block.
//!
//! # Durability
//!
//! With [`Validator::with_persistence`] (or when built by
//! [`Validator::recover`]) the validator also says what must be durable and
//! holds what depends on it: see the [`persist`](super::persist) module for
//! the rules and the extra step of the driving loop
//! ([`Validator::poll_persist`], [`Validator::sync_needed`],
//! [`Validator::persisted`]).

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use idlegrid_primitives::{
    ChaCha20Rng, Duration, Keypair, Machine, NodeId, Round, Seed, SignatureVerifier, Timestamp,
    Transmit,
};

use super::block::{Block, BlockRef, Transaction, VerifiedBlock};
use super::committee::{AuthorityIndex, Committee, StakeAggregator};
use super::committer::{Committer, LeaderStatus};
use super::config::ConsensusConfig;
use super::dag::{DagStore, find_in};
use super::error::ConsensusError;
use super::evidence::Evidence;
use super::history_memo::HistoryMemo;
use super::leader_schedule::{LeaderSchedule, StakeWeightedSchedule};
use super::leader_wait::LeaderWait;
use super::linearizer::{CommittedSubDag, Linearizer};
use super::message::{ConsensusMessage, FetchRequest};
use super::persist::{PersistRequest, PersistSeq, Recovered, StorageOp};
use super::sync::{PendingBlocks, Synchronizer};

/// Bound on storage requests not yet drained by the driver (a driver that
/// never drains is a bug: the validator stops on it).
const MAX_PERSIST_QUEUE: usize = 1 << 20;

/// Durability bookkeeping (see the `persist` module).
#[derive(Debug, Default)]
struct Persistence {
    /// False: the driver keeps nothing; no requests, nothing held.
    enabled: bool,
    queue: VecDeque<PersistRequest>,
    /// Last sequence number assigned.
    last: PersistSeq,
    /// Everything up to here is durable.
    durable: PersistSeq,
    /// Highest sequence number something held waits on.
    wanted: PersistSeq,
    /// Transmits waiting for a write (our own blocks).
    held: VecDeque<(PersistSeq, Transmit<ConsensusMessage>)>,
    /// Our own blocks not yet durable: (write, round), in order.
    own_pending: VecDeque<(PersistSeq, Round)>,
    /// Write of our latest own block.
    own_seq: PersistSeq,
}

/// A validator whose store was lost, asking peers for its latest block.
#[derive(Debug)]
struct OwnBlockSync {
    answered: BTreeSet<AuthorityIndex>,
    retry_at: Option<Timestamp>,
}

/// What the application observes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsensusEvent {
    /// A leader was committed; its transactions are final in this order.
    Committed(CommittedSubDag),
    /// An authority signed two blocks for one round (reported once per
    /// author and round).
    Equivocation(Evidence),
    /// We proposed a block (for metrics).
    Proposed(BlockRef),
    /// A peer sent something invalid; it was dropped.
    InvalidMessage {
        /// Who sent it.
        from: NodeId,
        /// Why it was rejected.
        error: ConsensusError,
    },
}

/// A snapshot of a validator's sizes and progress (for tests and metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ValidatorStats {
    /// Our last proposed round.
    pub proposed_round: Round,
    /// Highest round in the DAG.
    pub highest_round: Round,
    /// Round of the last committed leader.
    pub last_committed_round: Round,
    /// Number of committed sub-DAGs.
    pub commits: u64,
    /// Blocks in the DAG store.
    pub stored_blocks: usize,
    /// Blocks waiting for ancestors.
    pub pending_blocks: usize,
    /// Ancestors being fetched.
    pub missing_blocks: usize,
    /// Transactions waiting to be proposed.
    pub queued_transactions: usize,
}

/// A consensus validator (see the module docs for the driving loop).
#[derive(Debug)]
pub struct Validator {
    keypair: Keypair,
    me: AuthorityIndex,
    committee: Arc<Committee>,
    config: ConsensusConfig,
    store: DagStore,
    pending: PendingBlocks,
    sync: Synchronizer,
    committer: Committer,
    linearizer: Linearizer,
    last_decided: Option<(Round, u32)>,
    tx_queue: VecDeque<Transaction>,
    outbox: VecDeque<Transmit<ConsensusMessage>>,
    /// Events, each released once the write it depends on is durable.
    events: VecDeque<(PersistSeq, ConsensusEvent)>,
    persist: Persistence,
    /// Set while a validator that lost its store learns its latest block.
    own_sync: Option<OwnBlockSync>,
    started: bool,
    proposed_round: Round,
    quorum_seen: Option<(Round, Timestamp)>,
    leader_deadline: Option<Timestamp>,
    /// Recent lateness of leaders: how long to wait for them.
    leader_wait: LeaderWait,
    /// Highest round whose leaders' lateness was sampled.
    sampled_round: Round,
    /// A round we left before its leaders arrived, and its quorum time.
    missed_leaders: Option<(Round, Timestamp)>,
    /// When this validator last proposed (for `min_round_delay`).
    proposed_at: Timestamp,
    equivocators: BTreeSet<AuthorityIndex>,
    reported: BTreeSet<(Round, AuthorityIndex)>,
    /// Randomizes batch signature verification (and nothing else: how many
    /// signatures a batch holds depends on the verifier's memo).
    rng: ChaCha20Rng,
    /// Checks block signatures (plain unless the driver gave a memo).
    signatures: SignatureVerifier,
    /// Our latest block, kept even after the store collects it.
    last_own: VerifiedBlock,
    rebroadcast_at: Option<Timestamp>,
}

impl Validator {
    /// A validator for `keypair`'s node in `committee`. `seed` (derived from
    /// the run's root seed) randomizes batch signature verification.
    pub fn new(
        keypair: Keypair,
        committee: Committee,
        config: ConsensusConfig,
        seed: Seed,
    ) -> Result<Self, ConsensusError> {
        config.validate()?;
        let me = committee
            .index_of(&keypair.node_id())
            .ok_or(ConsensusError::UnknownNode(keypair.node_id()))?;
        let committee = Arc::new(committee);
        let n = committee.size();
        let mut store = DagStore::new(n);
        for a in committee.indices() {
            store.insert(VerifiedBlock::new_unchecked(Block::genesis(a)));
        }
        let committer = Committer::new(
            committee.clone(),
            Arc::new(StakeWeightedSchedule),
            config.leaders_per_round,
        );
        Ok(Self {
            keypair,
            me,
            pending: PendingBlocks::new(n, config.max_pending_blocks_per_author),
            sync: Synchronizer::with_grace(
                config.max_missing,
                config.sync_retry,
                config.fetch_grace,
            ),
            linearizer: Linearizer::new(config.gc_depth),
            committer,
            committee,
            config,
            store,
            last_decided: None,
            tx_queue: VecDeque::new(),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            persist: Persistence::default(),
            own_sync: None,
            started: false,
            proposed_round: Round::ZERO,
            quorum_seen: None,
            leader_deadline: None,
            leader_wait: LeaderWait::new(n),
            sampled_round: Round::ZERO,
            missed_leaders: None,
            proposed_at: Timestamp::ZERO,
            equivocators: BTreeSet::new(),
            reported: BTreeSet::new(),
            rng: seed.derive("idlegrid/dag/batch-verify").rng(),
            signatures: SignatureVerifier::plain(),
            last_own: VerifiedBlock::new_unchecked(Block::genesis(me)),
            rebroadcast_at: None,
        })
    }

    /// Checks block signatures through `signatures` (by default a plain
    /// [`SignatureVerifier`]): a driver running many validators in one
    /// process gives them one memoizing verifier, so each block's
    /// signature is verified once, not once per validator. Every block is
    /// verified either way; only the time differs.
    pub fn with_signature_verifier(mut self, signatures: SignatureVerifier) -> Self {
        self.signatures = signatures;
        self
    }

    /// Shares the order of each commit with the other validators given the
    /// same `memo` (see [`HistoryMemo`]): a driver running many validators
    /// in one process orders each commit's history once instead of once per
    /// validator. Every validator still commits every leader.
    pub fn with_history_memo(mut self, memo: Arc<HistoryMemo>) -> Self {
        self.linearizer.set_memo(memo);
        self
    }

    /// Gives this validator the driver's capabilities `other` has (its
    /// signature verifier and history memo): for a validator rebuilt in
    /// place of `other` (recovered, rejoined).
    pub fn with_capabilities_of(mut self, other: &Validator) -> Self {
        self.signatures = other.signatures.clone();
        if let Some(memo) = other.linearizer.memo() {
            self = self.with_history_memo(Arc::clone(memo));
        }
        self
    }

    /// Replaces the leader schedule (all validators must use the same one).
    pub fn with_leader_schedule(mut self, schedule: Arc<dyn LeaderSchedule>) -> Self {
        self.committer = Committer::new(
            self.committee.clone(),
            schedule,
            self.config.leaders_per_round,
        );
        self
    }

    /// Turns durability on: from now on the validator emits storage
    /// requests and holds its own blocks and its commits until the driver
    /// acknowledges their writes (see the module docs). Call it before the
    /// first input.
    pub fn with_persistence(mut self) -> Self {
        self.persist.enabled = true;
        self
    }

    /// A validator restarted from what its store held (see [`Recovered`]
    /// for the algorithm); durability is on. It never proposes at or below
    /// the highest round of its own blocks in `recovered`, and if
    /// `recovered.lost` it first learns its latest block from peers holding
    /// a quorum of stake.
    pub fn recover(
        keypair: Keypair,
        committee: Committee,
        config: ConsensusConfig,
        seed: Seed,
        recovered: Recovered,
    ) -> Result<Self, ConsensusError> {
        let mut v = Self::new(keypair, committee, config, seed)?.with_persistence();
        let mut commits = recovered.commits;
        commits.sort_by_key(|c| c.index);
        commits.dedup_by_key(|c| c.index);
        if let Some(last) = commits.last() {
            let pos = v
                .committer
                .leaders(last.round)
                .iter()
                .position(|a| *a == last.leader.author)
                .ok_or_else(|| {
                    ConsensusError::CorruptRecovery(format!(
                        "commit {} names {:?}, not a leader of its round",
                        last.index, last.leader
                    ))
                })?;
            v.last_decided = Some((last.round, pos as u32));
        }
        v.linearizer = Linearizer::restore(v.config.gc_depth, &commits);
        let gc = v.linearizer.gc_round();
        v.store.gc(gc);
        let mut blocks = Vec::with_capacity(recovered.blocks.len());
        for b in recovered.blocks {
            let r = b
                .verify_structure(&v.committee, &v.config)
                .map_err(|e| ConsensusError::CorruptRecovery(format!("stored block: {e}")))?;
            blocks.push(VerifiedBlock::from_checked(b, r));
        }
        blocks.sort_by_key(VerifiedBlock::reference);
        blocks.dedup_by_key(|b| b.reference());
        for b in blocks {
            if b.author() == v.me && b.round() > v.last_own.round() {
                v.last_own = b.clone();
            }
            if b.round() < gc || v.store.contains(&b.reference()) {
                continue;
            }
            // Parents lost with an un-synced tail: drop it, fetch it later.
            if b.parents().iter().all(|p| v.parent_known(p)) {
                v.check_equivocation(&b)?;
                v.store.insert(b);
            }
        }
        v.proposed_round = v.last_own.round();
        if recovered.lost {
            v.own_sync = Some(OwnBlockSync {
                answered: BTreeSet::new(),
                retry_at: None,
            });
        }
        Ok(v)
    }

    /// The next storage request, in write order (see the module docs).
    pub fn poll_persist(&mut self) -> Option<PersistRequest> {
        self.persist.queue.pop_front()
    }

    /// True if a transmit or an event waits for writes already requested:
    /// the driver must make them durable and call [`Validator::persisted`].
    pub fn sync_needed(&self) -> bool {
        self.persist.wanted > self.persist.durable
    }

    /// The driver made every request up to `seq` durable: releases what
    /// waited for them.
    ///
    /// # Panics
    /// If `seq` was never handed out (a driver bug).
    pub fn persisted(&mut self, seq: PersistSeq) {
        assert!(
            seq <= self.persist.last,
            "persisted({seq:?}) beyond the last request {:?}",
            self.persist.last
        );
        let p = &mut self.persist;
        p.durable = p.durable.max(seq);
        while p.own_pending.front().is_some_and(|(s, _)| *s <= p.durable) {
            p.own_pending.pop_front();
        }
        while p.held.front().is_some_and(|(s, _)| *s <= p.durable) {
            if let Some((_, t)) = p.held.pop_front() {
                self.outbox.push_back(t);
            }
        }
    }

    /// The last storage request durable so far.
    pub fn durable_seq(&self) -> PersistSeq {
        self.persist.durable
    }

    /// Our latest signed block (kept even after the DAG collected it).
    pub fn last_own_block(&self) -> Arc<Block> {
        Arc::clone(self.last_own.block())
    }

    /// True while the validator (whose store was lost) waits to learn its
    /// latest block from peers before proposing.
    pub fn syncing_own_block(&self) -> bool {
        self.own_sync.is_some()
    }

    fn persist(&mut self, op: impl FnOnce() -> StorageOp) -> PersistSeq {
        let p = &mut self.persist;
        if !p.enabled {
            return PersistSeq::ZERO;
        }
        assert!(
            p.queue.len() < MAX_PERSIST_QUEUE,
            "the driver does not drain poll_persist"
        );
        p.last = p.last.next();
        p.queue.push_back(PersistRequest {
            seq: p.last,
            op: op(),
        });
        p.last
    }

    fn emit(&mut self, ev: ConsensusEvent) {
        self.events.push_back((PersistSeq::ZERO, ev));
    }

    /// Sends `t` once write `seq` is durable.
    fn send_after(&mut self, seq: PersistSeq, t: Transmit<ConsensusMessage>) {
        if seq <= self.persist.durable {
            self.outbox.push_back(t);
        } else {
            self.persist.wanted = self.persist.wanted.max(seq);
            self.persist.held.push_back((seq, t));
        }
    }

    /// True if our own block of `round` may leave this process (it is
    /// durable, or nothing is persisted).
    fn own_durable(&self, round: Round) -> bool {
        self.persist
            .own_pending
            .front()
            .is_none_or(|(_, r)| round < *r)
    }

    /// Our authority index.
    pub fn authority(&self) -> AuthorityIndex {
        self.me
    }
    /// Our node id.
    pub fn node_id(&self) -> NodeId {
        self.keypair.node_id()
    }
    /// The committee.
    pub fn committee(&self) -> &Committee {
        &self.committee
    }
    /// The configuration.
    pub fn config(&self) -> &ConsensusConfig {
        &self.config
    }
    /// The local DAG.
    pub fn store(&self) -> &DagStore {
        &self.store
    }
    /// Authorities caught equivocating.
    pub fn equivocators(&self) -> &BTreeSet<AuthorityIndex> {
        &self.equivocators
    }
    /// Sizes and progress.
    pub fn stats(&self) -> ValidatorStats {
        ValidatorStats {
            proposed_round: self.proposed_round,
            highest_round: self.store.highest_round(),
            last_committed_round: self.linearizer.last_committed_round(),
            commits: self.linearizer.commits(),
            stored_blocks: self.store.len(),
            pending_blocks: self.pending.len(),
            missing_blocks: self.sync.len(),
            queued_transactions: self.tx_queue.len(),
        }
    }

    /// Queues a transaction for our next blocks.
    pub fn submit_transaction(&mut self, tx: Vec<u8>) -> Result<(), ConsensusError> {
        if tx.is_empty() || tx.len() > self.config.max_transaction_bytes {
            return Err(ConsensusError::BadTransactionSize {
                len: tx.len(),
                max: self.config.max_transaction_bytes,
            });
        }
        if self.tx_queue.len() >= self.config.max_pending_transactions {
            return Err(ConsensusError::TransactionQueueFull {
                max: self.config.max_pending_transactions,
            });
        }
        self.tx_queue.push_back(Transaction::new(tx));
        Ok(())
    }

    /// Starts the validator (idempotent): proposes round 1 (or, after a
    /// recovery, the next round; after a lost store, first asks peers for
    /// its latest block).
    pub fn start(&mut self, now: Timestamp) {
        if !self.started {
            self.started = true;
            self.request_latest_own(now);
            if self.proposed_round > Round::ZERO {
                self.rebroadcast_at = Some(now + self.config.rebroadcast_timeout);
            }
            self.try_propose(now);
        }
    }

    /// Decodes raw bytes from `from` and handles the message; undecodable
    /// bytes become an [`ConsensusEvent::InvalidMessage`].
    pub fn handle_bytes(&mut self, now: Timestamp, from: NodeId, bytes: &[u8]) {
        match ConsensusMessage::decode(bytes, self.config.max_message_bytes) {
            Ok(msg) => self.on_message(now, from, msg),
            Err(error) => self.emit(ConsensusEvent::InvalidMessage { from, error }),
        }
    }

    fn on_message(&mut self, now: Timestamp, from: NodeId, msg: ConsensusMessage) {
        if self.committee.index_of(&from).is_none() {
            self.invalid(from, ConsensusError::UnknownNode(from));
            return;
        }
        match msg {
            ConsensusMessage::Block(b) => self.receive_blocks(now, from, vec![b], true),
            ConsensusMessage::FetchRequest(req) => self.serve_fetch(from, req),
            ConsensusMessage::FetchResponse(blocks) => {
                if blocks.len() > self.config.max_fetch_items {
                    self.invalid(
                        from,
                        ConsensusError::TooManyItems {
                            count: blocks.len(),
                            max: self.config.max_fetch_items,
                        },
                    );
                    return;
                }
                self.receive_blocks(now, from, blocks, false);
            }
            ConsensusMessage::LatestOwnBlockRequest => self.serve_latest_own(from),
            ConsensusMessage::LatestOwnBlockResponse(block) => {
                self.on_latest_own(now, from, block);
            }
        }
        self.after_input(now);
    }

    fn invalid(&mut self, from: NodeId, error: ConsensusError) {
        self.emit(ConsensusEvent::InvalidMessage { from, error });
    }

    fn after_input(&mut self, now: Timestamp) {
        self.try_commit();
        self.try_propose(now);
    }

    // ----- receiving blocks -------------------------------------------------

    fn precheck(&self, b: &Block) -> Result<(), ConsensusError> {
        let round = b.header.round;
        let gc_round = self.store.gc_round();
        if round < gc_round {
            return Err(ConsensusError::TooOld { round, gc_round });
        }
        // After a restore the DAG may be empty above the last commit.
        let base = self
            .store
            .highest_round()
            .max(self.linearizer.last_committed_round());
        let limit = base.plus(self.config.max_round_lead);
        if round > limit {
            return Err(ConsensusError::FarFutureRound { round, limit });
        }
        Ok(())
    }

    /// Checks and takes in `blocks`; `live` if they came as a broadcast
    /// (their missing ancestors are likely in flight), not as an answer.
    fn receive_blocks(
        &mut self,
        now: Timestamp,
        from: NodeId,
        blocks: Vec<Arc<Block>>,
        live: bool,
    ) {
        let mut structural = Vec::with_capacity(blocks.len());
        for b in blocks {
            let checked = self
                .precheck(&b)
                .and_then(|()| b.verify_structure(&self.committee, &self.config));
            match checked {
                Ok(r) if self.store.contains(&r) || self.pending.contains(&r) => {}
                Ok(r) => structural.push((b, r)),
                Err(ConsensusError::TooOld { .. }) => {}
                Err(e) => self.invalid(from, e),
            }
        }
        let verified = self.verify_signatures(from, structural);
        for vb in verified {
            if let Err(e) = self.process_verified(now, from, vb, live) {
                self.invalid(from, e);
            }
        }
    }

    /// Verifies signatures (batched when there are several), dropping bad ones.
    fn verify_signatures(
        &mut self,
        from: NodeId,
        blocks: Vec<(Arc<Block>, BlockRef)>,
    ) -> Vec<VerifiedBlock> {
        let checked = super::block::verify_signatures(
            blocks,
            &self.committee,
            &self.signatures,
            &mut self.rng,
        );
        let mut out = Vec::with_capacity(checked.len());
        for c in checked {
            match c {
                Ok(vb) => out.push(vb),
                Err(e) => self.invalid(from, ConsensusError::BadSignature(e)),
            }
        }
        out
    }

    fn process_verified(
        &mut self,
        now: Timestamp,
        from: NodeId,
        block: VerifiedBlock,
        live: bool,
    ) -> Result<(), ConsensusError> {
        let r = block.reference();
        if self.store.contains(&r) || self.pending.contains(&r) {
            return Ok(());
        }
        self.check_equivocation(&block)?;
        let missing = self.missing_parents(&block);
        if missing.is_empty() {
            self.accept(block);
            return Ok(());
        }
        self.pending.insert(block, &missing)?;
        self.sync.remove(&r);
        let mut request = Vec::new();
        for p in missing {
            if !self.pending.contains(&p) && self.sync.add(p, from, now, live) {
                request.push(p);
            }
        }
        if !request.is_empty() {
            request.truncate(self.config.max_fetch_items);
            self.send_fetch(from, request);
        }
        Ok(())
    }

    /// True if a block may reference `p` without waiting for it: it is in
    /// the DAG, below the garbage-collection round, or already ordered by a
    /// commit (a validator restored from a state-sync snapshot holds the
    /// committed set but not those blocks; committed blocks are never
    /// ordered again, so their content is not needed).
    fn parent_known(&self, p: &BlockRef) -> bool {
        self.store.contains_or_collected(p) || self.linearizer.is_committed(p)
    }

    /// The parents of `block` that are not [known](Self::parent_known).
    /// Most are of the round just below it, whose blocks are looked up
    /// once for all of them (a block names up to a whole committee).
    fn missing_parents(&self, block: &VerifiedBlock) -> Vec<BlockRef> {
        let below = block.round().prev().unwrap_or(Round::ZERO);
        let by_author = self.store.round_by_author(below);
        block
            .parents()
            .iter()
            .filter(
                |p| match p.round == below && p.round >= self.store.gc_round() {
                    true => find_in(by_author, p).is_none() && !self.linearizer.is_committed(p),
                    false => !self.parent_known(p),
                },
            )
            .copied()
            .collect()
    }

    fn check_equivocation(&mut self, block: &VerifiedBlock) -> Result<(), ConsensusError> {
        let (round, author) = (block.round(), block.author());
        let mut variants: Vec<VerifiedBlock> = self.store.slot(round, author).to_vec();
        variants.extend(self.pending.slot(round, author));
        let Some(first) = variants.first() else {
            return Ok(());
        };
        if variants.len() >= self.committee.size() {
            return Err(ConsensusError::TooManyVariants { author, round });
        }
        self.equivocators.insert(author);
        if self.reported.insert((round, author)) {
            let ev = Evidence::new(first.signed_header(), block.signed_header());
            self.emit(ConsensusEvent::Equivocation(ev));
        }
        Ok(())
    }

    /// Adds a block whose parents are all present, then every pending block
    /// it unblocks.
    fn accept(&mut self, block: VerifiedBlock) {
        let mut work = vec![block];
        while let Some(b) = work.pop() {
            let r = b.reference();
            debug_assert!(
                b.parents().iter().all(|p| self.parent_known(p)),
                "accepting {r:?} with missing parents"
            );
            if r.author == self.me && r.round > self.proposed_round {
                // Our own block from before a store loss: never sign its
                // round (or a lower one) again.
                self.proposed_round = r.round;
                self.last_own = b.clone();
            }
            let block = Arc::clone(b.block());
            let seq = self.persist(|| StorageOp::Block(block));
            if r.author == self.me && self.persist.enabled {
                self.persist.own_pending.push_back((seq, r.round));
                self.persist.own_seq = seq;
            }
            self.store.insert(b);
            self.sync.remove(&r);
            work.extend(self.pending.resolve(&r));
        }
    }

    fn send_fetch(&mut self, to: NodeId, refs: Vec<BlockRef>) {
        let known_round = self.quorum_round();
        self.outbox.push_back(Transmit::to(
            to,
            ConsensusMessage::FetchRequest(FetchRequest { refs, known_round }),
        ));
    }

    fn serve_fetch(&mut self, from: NodeId, req: FetchRequest) {
        if req.refs.len() > self.config.max_fetch_items {
            self.invalid(
                from,
                ConsensusError::TooManyItems {
                    count: req.refs.len(),
                    max: self.config.max_fetch_items,
                },
            );
            return;
        }
        let max = self.config.max_fetch_items;
        let budget = self.config.max_message_bytes / 2;
        let mut requested: Vec<VerifiedBlock> = req
            .refs
            .iter()
            .filter_map(|r| {
                if *r == self.last_own.reference() {
                    Some(self.last_own.clone())
                } else {
                    self.store.get(r).cloned()
                }
            })
            .filter(|b| b.author() != self.me || self.own_durable(b.round()))
            .collect();
        requested.sort_by_key(|b| b.reference());
        requested.dedup_by_key(|b| b.reference());
        let top = requested.last().map_or(Round::ZERO, |b| b.round());
        // Fill with the lowest rounds above the requester's known round.
        let mut fill: Vec<VerifiedBlock> = Vec::new();
        let mut r = req.known_round.next().max(self.store.gc_round());
        while r < top && fill.len() + requested.len() < max {
            for b in self.store.first_per_author(r) {
                if fill.len() + requested.len() >= max {
                    break;
                }
                fill.push(b.clone());
            }
            r = r.next();
        }
        fill.retain(|b| {
            (b.author() != self.me || self.own_durable(b.round()))
                && !requested.iter().any(|q| q.reference() == b.reference())
        });
        let mut bytes = 0usize;
        let mut blocks = Vec::new();
        for b in fill.into_iter().chain(requested) {
            bytes += b.block().encoded_len();
            if bytes > budget || blocks.len() >= max {
                break;
            }
            blocks.push(Arc::clone(b.block()));
        }
        if !blocks.is_empty() {
            self.outbox
                .push_back(Transmit::to(from, ConsensusMessage::FetchResponse(blocks)));
        }
    }

    // ----- own-block sync after a lost store --------------------------------

    fn serve_latest_own(&mut self, from: NodeId) {
        let Some(author) = self.committee.index_of(&from) else {
            return;
        };
        // Genesis blocks are nobody's signature: "none signed".
        let latest = self
            .store
            .last_block_of(author)
            .filter(|b| b.round() > Round::ZERO)
            .map(|b| Arc::clone(b.block()));
        self.outbox.push_back(Transmit::to(
            from,
            ConsensusMessage::LatestOwnBlockResponse(latest),
        ));
    }

    fn on_latest_own(&mut self, now: Timestamp, from: NodeId, block: Option<Arc<Block>>) {
        let Some(peer) = self.committee.index_of(&from) else {
            return;
        };
        if self.own_sync.is_none() {
            return;
        }
        // A genesis block says "nothing signed" (it carries no signature).
        if let Some(b) = block.filter(|b| b.header.round > Round::ZERO) {
            if b.header.author != self.me {
                self.invalid(
                    from,
                    ConsensusError::CorruptRecovery(format!(
                        "latest-own-block answer authored by {:?}",
                        b.header.author
                    )),
                );
                return;
            }
            match VerifiedBlock::verify_with(
                Arc::clone(&b),
                &self.committee,
                &self.config,
                &self.signatures,
            ) {
                Ok(vb) => {
                    if vb.round() > self.proposed_round {
                        self.proposed_round = vb.round();
                        self.last_own = vb;
                    }
                    self.receive_blocks(now, from, vec![b], false);
                }
                Err(e) => {
                    self.invalid(from, e);
                    return;
                }
            }
        }
        let Some(sync) = self.own_sync.as_mut() else {
            return;
        };
        sync.answered.insert(peer);
        self.finish_own_sync_if_answered();
    }

    /// Done once peers holding a quorum of stake answered (or every peer
    /// did, in a committee too small for peers alone to hold a quorum).
    fn finish_own_sync_if_answered(&mut self) {
        let Some(sync) = self.own_sync.as_ref() else {
            return;
        };
        let mut agg = StakeAggregator::new(&self.committee);
        for a in &sync.answered {
            agg.add(*a, &self.committee);
        }
        let everyone = sync.answered.len() + 1 >= self.committee.size();
        if self.committee.is_quorum(agg.stake()) || everyone {
            self.own_sync = None;
        }
    }

    fn request_latest_own(&mut self, now: Timestamp) {
        self.finish_own_sync_if_answered();
        let Some(sync) = self.own_sync.as_mut() else {
            return;
        };
        sync.retry_at = Some(now + self.config.sync_retry);
        let answered: Vec<NodeId> = sync
            .answered
            .iter()
            .map(|a| self.committee.authorities()[a.as_usize()].node)
            .collect();
        for p in self.peers() {
            if !answered.contains(&p) {
                self.outbox
                    .push_back(Transmit::to(p, ConsensusMessage::LatestOwnBlockRequest));
            }
        }
    }

    // ----- committing -------------------------------------------------------

    fn try_commit(&mut self) {
        loop {
            let decided = self.committer.try_decide(&self.store, self.last_decided);
            if decided.is_empty() {
                return;
            }
            for status in decided {
                self.last_decided = Some(status.slot().position());
                if let LeaderStatus::Commit { block, .. } = status {
                    let sub = self
                        .linearizer
                        .linearize(&self.store, &block, &self.committee);
                    let seq = self.persist(|| StorageOp::Commit(Arc::clone(&sub)));
                    self.persist.wanted = self.persist.wanted.max(seq);
                    let sub = Arc::unwrap_or_clone(sub);
                    self.events.push_back((seq, ConsensusEvent::Committed(sub)));
                }
            }
            let gc = self.linearizer.gc_round();
            if gc > self.store.gc_round() {
                let keep = self.last_own.reference();
                self.persist(|| StorageOp::PruneBlocks { below: gc, keep });
            }
            self.store.gc(gc);
            self.sync.gc(gc);
            self.reported = self.reported.split_off(&(gc, AuthorityIndex::new(0)));
            for b in self.pending.gc(gc) {
                self.accept(b);
            }
        }
    }

    // ----- proposing --------------------------------------------------------

    /// The highest round at which eligible blocks hold a quorum.
    fn quorum_round(&self) -> Round {
        self.quorum_round_from(self.store.gc_round())
            .unwrap_or(self.store.gc_round())
    }

    /// The highest round at or above `low` with a quorum, if any: rounds
    /// below `low` are not looked at (a validator that proposed round `p`
    /// only builds on a quorum at `p` or above, and each look is a pass
    /// over the round's blocks).
    fn quorum_round_from(&self, low: Round) -> Option<Round> {
        let mut r = self.store.highest_round();
        loop {
            if r < low {
                return None;
            }
            if self.has_quorum(r) {
                return Some(r);
            }
            r = r.prev()?;
        }
    }

    fn eligible_parents(&self, round: Round) -> impl Iterator<Item = &VerifiedBlock> {
        self.store
            .first_per_author(round)
            .filter(|b| b.author() == self.me || !self.equivocators.contains(&b.author()))
    }

    fn has_quorum(&self, round: Round) -> bool {
        // One block per author: their stakes add up without a seen-set.
        let stake = self
            .eligible_parents(round)
            .map(|b| self.committee.stake(b.author()))
            .fold(0u64, u64::saturating_add);
        self.committee.is_quorum(stake)
    }

    /// Proposes if a round is ready. Our own block may complete the next
    /// round's quorum: its leader wait then starts now, not at whatever
    /// input comes next (with a crashed leader and every other block of the
    /// round already in, that was the next round's first block, a leader
    /// timeout later). The next proposal itself still waits for an input,
    /// as before: a lone validator would otherwise propose round after
    /// round at one instant.
    fn try_propose(&mut self, now: Timestamp) {
        if self.try_propose_once(now, true) {
            self.try_propose_once(now, false);
        }
    }

    /// Proposes if a round is ready and `may_propose`, else starts the
    /// wait for its leaders; true if it proposed.
    fn try_propose_once(&mut self, now: Timestamp, may_propose: bool) -> bool {
        if !self.started || self.own_sync.is_some() {
            return false;
        }
        self.note_late_leaders(now);
        // Our latest block (one peers returned after a store loss) must be
        // in the DAG before a block of ours can name it.
        if !self.parent_known(&self.last_own.reference()) {
            return false;
        }
        // A DAG restored empty above its gc round has no quorum yet.
        let low = self.proposed_round.max(self.store.gc_round());
        let Some(base) = self.quorum_round_from(low) else {
            return false;
        };
        let leaders_present = self.leaders_present(base);
        if base > Round::ZERO && !leaders_present {
            let since = match self.quorum_seen {
                Some((r, t)) if r == base => t,
                _ => {
                    self.quorum_seen = Some((base, now));
                    now
                }
            };
            let deadline = since + self.leader_wait_bound(base);
            if now < deadline {
                self.leader_deadline = Some(deadline);
                return false;
            }
        }
        if !may_propose {
            return false;
        }
        self.sample_leaders(now, base, leaders_present);
        let earliest = self.proposed_at + self.config.min_round_delay;
        if self.proposed_round > Round::ZERO && now < earliest {
            self.leader_deadline = Some(earliest);
            return false;
        }
        self.propose(now, base);
        true
    }

    fn leaders_present(&self, round: Round) -> bool {
        self.committer
            .leaders(round)
            .iter()
            .all(|&a| !self.store.slot(round, a).is_empty())
    }

    /// How long after a quorum to wait for the round's leaders: the
    /// adaptive estimate (see [`LeaderWait`]), never above
    /// `leader_timeout`.
    fn leader_wait_bound(&self, round: Round) -> Duration {
        if self.config.adaptive_leader_wait {
            let leaders = self.committer.leaders(round);
            self.leader_wait.wait(&leaders, self.config.leader_timeout)
        } else {
            self.config.leader_timeout
        }
    }

    /// Once per round we leave: records how late its leaders were, or
    /// remembers that we left without them (see `note_late_leaders`).
    fn sample_leaders(&mut self, now: Timestamp, base: Round, present: bool) {
        if base == Round::ZERO || base <= self.sampled_round {
            return;
        }
        self.sampled_round = base;
        let since = match self.quorum_seen {
            Some((r, t)) if r == base => Some(t),
            _ => None,
        };
        let leaders = self.committer.leaders(base);
        match (present, since) {
            (true, Some(t)) => self.leader_wait.record(&leaders, now.saturating_since(t)),
            (true, None) => self.leader_wait.record(&leaders, Duration::ZERO),
            (false, Some(t)) => self.missed_leaders = Some((base, t)),
            (false, None) => {}
        }
    }

    /// Leaders of a round we left without them that have arrived since:
    /// their real lateness lengthens the wait (a slower network is learnt;
    /// a crashed leader never arrives and leaves no sample).
    fn note_late_leaders(&mut self, now: Timestamp) {
        let Some((round, since)) = self.missed_leaders else {
            return;
        };
        if round < self.store.gc_round() {
            self.missed_leaders = None;
        } else if self.leaders_present(round) {
            let leaders = self.committer.leaders(round);
            self.leader_wait
                .record(&leaders, now.saturating_since(since));
            self.missed_leaders = None;
        }
    }

    fn take_transactions(&mut self, parents: usize) -> Vec<Transaction> {
        let overhead = 256 + parents * 48;
        let mut budget = self.config.max_block_bytes.saturating_sub(overhead);
        let mut txs = Vec::new();
        while txs.len() < self.config.max_block_transactions {
            let Some(tx) = self.tx_queue.front() else {
                break;
            };
            let cost = tx.len() + 5;
            if cost > budget {
                break;
            }
            budget -= cost;
            txs.extend(self.tx_queue.pop_front());
        }
        txs
    }

    fn propose(&mut self, now: Timestamp, base: Round) {
        let round = base.next();
        let own = self.last_own.reference();
        let mut parents: Vec<BlockRef> = self
            .eligible_parents(base)
            .map(|b| b.reference())
            .filter(|r| r.author != self.me)
            .collect();
        parents.push(own);
        parents.sort_by_key(|p| p.author);
        let txs = self.take_transactions(parents.len());
        let block = Block::new_signed_with(
            &self.signatures,
            &self.keypair,
            self.me,
            round,
            now,
            parents,
            txs,
        );
        let vb = VerifiedBlock::new_unchecked(block);
        let r = vb.reference();
        let block = Arc::clone(vb.block());
        self.last_own = vb.clone();
        self.accept(vb);
        self.proposed_round = round;
        self.proposed_at = now;
        self.quorum_seen = None;
        self.leader_deadline = None;
        self.rebroadcast_at = Some(now + self.config.rebroadcast_timeout);
        self.emit(ConsensusEvent::Proposed(r));
        self.send_own_block(block);
        self.try_commit();
    }

    fn peers(&self) -> Vec<NodeId> {
        let me = self.node_id();
        self.committee
            .authorities()
            .iter()
            .map(|a| a.node)
            .filter(|n| *n != me)
            .collect()
    }

    fn send_own_block(&mut self, block: Arc<Block>) {
        let seq = self.persist.own_seq;
        self.send_after(seq, Transmit::broadcast(ConsensusMessage::Block(block)));
    }

    // ----- timers -----------------------------------------------------------

    fn on_timeout(&mut self, now: Timestamp) {
        if !self.started {
            self.start(now);
        }
        let me = self.node_id();
        let due = self
            .sync
            .due(now, &self.committee, me, self.config.max_fetch_items);
        for (peer, refs) in due {
            self.send_fetch(peer, refs);
        }
        if self.leader_deadline.is_some_and(|d| d <= now) {
            self.leader_deadline = None;
        }
        if self
            .own_sync
            .as_ref()
            .is_some_and(|s| s.retry_at.is_some_and(|d| d <= now))
        {
            self.request_latest_own(now);
        }
        if self.rebroadcast_at.is_some_and(|d| d <= now) {
            self.rebroadcast_at = Some(now + self.config.rebroadcast_timeout);
            let own = Arc::clone(self.last_own.block());
            self.send_own_block(own);
        }
        self.after_input(now);
    }

    fn next_timeout(&self) -> Option<Timestamp> {
        if !self.started {
            return Some(Timestamp::ZERO);
        }
        [
            self.leader_deadline,
            self.sync.next_deadline(),
            self.rebroadcast_at,
            self.own_sync.as_ref().and_then(|s| s.retry_at),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

impl Machine for Validator {
    type Message = ConsensusMessage;
    type Event = ConsensusEvent;

    fn handle_message(&mut self, now: Timestamp, from: NodeId, msg: ConsensusMessage) {
        self.on_message(now, from, msg);
    }
    fn handle_timeout(&mut self, now: Timestamp) {
        self.on_timeout(now);
    }
    fn poll_transmit(&mut self) -> Option<Transmit<ConsensusMessage>> {
        self.outbox.pop_front()
    }
    fn poll_event(&mut self) -> Option<ConsensusEvent> {
        if self
            .events
            .front()
            .is_some_and(|(seq, _)| *seq <= self.persist.durable)
        {
            self.events.pop_front().map(|(_, ev)| ev)
        } else {
            None
        }
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        self.next_timeout()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idlegrid_primitives::{Destination, Duration};

    fn committee_of(n: u64) -> (Vec<Keypair>, Committee) {
        let keys: Vec<Keypair> = (0..n)
            .map(|i| Keypair::from_seed(&Seed::from_u64(i)))
            .collect();
        let c = Committee::equal(keys.iter().map(Keypair::node_id)).unwrap();
        (keys, c)
    }

    fn validator(keys: &[Keypair], c: &Committee, i: usize) -> Validator {
        let cfg = ConsensusConfig::default();
        Validator::new(keys[i].clone(), c.clone(), cfg, Seed::from_u64(9)).unwrap()
    }

    #[test]
    fn blocks_are_shared_not_copied() {
        let (keys, c) = committee_of(4);
        let mut author = validator(&keys, &c, 1);
        author.handle_timeout(Timestamp::ZERO);
        let Some(Transmit {
            msg: ConsensusMessage::Block(sent),
            ..
        }) = author.poll_transmit()
        else {
            panic!("expected our round-1 block");
        };
        let r = sent.header.reference();
        // The proposer's store holds the broadcast allocation.
        assert!(Arc::ptr_eq(author.store().get(&r).unwrap().block(), &sent));

        // A receiver stores the allocation it was handed...
        let mut v = validator(&keys, &c, 0);
        let msg = ConsensusMessage::Block(Arc::clone(&sent));
        v.handle_message(Timestamp::ZERO, keys[1].node_id(), msg);
        assert!(Arc::ptr_eq(v.store().get(&r).unwrap().block(), &sent));

        // ...and serves it to a fetching peer without copying it.
        let req = FetchRequest {
            refs: vec![r],
            known_round: Round::new(1),
        };
        let msg = ConsensusMessage::FetchRequest(req);
        v.handle_message(Timestamp::ZERO, keys[2].node_id(), msg);
        let served = std::iter::from_fn(|| v.poll_transmit())
            .find_map(|t| match t.msg {
                ConsensusMessage::FetchResponse(blocks) => Some(blocks),
                _ => None,
            })
            .expect("a fetch response");
        assert_eq!(served.len(), 1);
        assert!(Arc::ptr_eq(&served[0], &sent));
    }

    /// Four validators on a network with no delay: with a minimum round
    /// delay every validator's proposals are at least that far apart, and
    /// the DAG still advances and commits.
    #[test]
    fn min_round_delay_spaces_proposals_and_the_dag_still_commits() {
        let (keys, c) = committee_of(4);
        let delay = Duration::from_millis(50);
        let cfg = ConsensusConfig {
            min_round_delay: delay,
            ..ConsensusConfig::default()
        };
        let mut vs: Vec<Validator> = (0..4)
            .map(|i| {
                Validator::new(keys[i].clone(), c.clone(), cfg.clone(), Seed::from_u64(9)).unwrap()
            })
            .collect();
        let ids: Vec<NodeId> = keys.iter().map(Keypair::node_id).collect();
        let mut proposed: Vec<Vec<Timestamp>> = vec![Vec::new(); 4];
        let mut commits = 0;
        let mut now = Timestamp::ZERO;
        for v in &mut vs {
            v.handle_timeout(now);
        }
        while now < Timestamp::from_millis(2_000) {
            now = now + Duration::from_millis(1);
            let mut wire = Vec::new();
            for (i, v) in vs.iter_mut().enumerate() {
                if v.poll_timeout().is_some_and(|t| t <= now) {
                    v.handle_timeout(now);
                }
                while let Some(t) = v.poll_transmit() {
                    wire.push((i, t));
                }
                while let Some(e) = v.poll_event() {
                    match e {
                        ConsensusEvent::Proposed(_) => proposed[i].push(now),
                        ConsensusEvent::Committed(_) => commits += 1,
                        _ => {}
                    }
                }
            }
            for (from, t) in wire {
                for (j, v) in vs.iter_mut().enumerate() {
                    let to_me = match t.to {
                        Destination::To(x) => x == ids[j],
                        Destination::Broadcast => j != from,
                    };
                    if to_me {
                        v.handle_message(now, ids[from], t.msg.clone());
                    }
                }
            }
        }
        for p in &proposed {
            assert!(p.len() >= 20, "the DAG advanced: {} proposals", p.len());
            assert!(p.len() <= 41, "at most one proposal per delay: {}", p.len());
            assert!(p.windows(2).skip(1).all(|w| w[1] >= w[0] + delay), "{p:?}");
        }
        assert!(commits > 0);
    }
}
