//! What a validator node makes durable, and how it restarts from it.
//!
//! The node forwards the consensus validator's storage requests (its
//! blocks and commits: see [`idlegrid_dag_ledger::consensus::persist`]) and
//! adds a ledger [`Checkpoint`] every `checkpoint_every` commits. All of
//! them leave in one write order as [`NodePersistRequest`]s.
//!
//! # Driving loop, with a store
//!
//! After every input: drain [`ValidatorNode::poll_persist`] and write each
//! request in order; if [`ValidatorNode::sync_needed`], make the writes
//! durable (one fsync) and call [`ValidatorNode::persisted`] with the last
//! sequence number written; then drain `poll_transmit` and `poll_event`.
//! Our own block never leaves before its write is durable, and an
//! [`ValidatorEvent::Applied`](super::ValidatorEvent::Applied) is never
//! reported before its commit is durable.
//!
//! # What the store keeps
//!
//! - every block, keyed by reference; blocks more than `gc_depth` rounds
//!   below the last commit may be pruned, except our own latest block;
//! - every commit after the latest checkpoint, keyed by index. A
//!   [`Checkpoint`] holds the ledger, the marketplace application's state
//!   and the commit frontier consensus resumes from, so it stands in for
//!   every commit at or below it ([`Checkpoint::restorable`]): stores prune
//!   those commits when they write it;
//! - the latest checkpoint.
//!
//! # Recovery ([`ValidatorNode::recover`])
//!
//! 1. consensus resumes from the stored blocks and commits
//!    ([`Validator::recover`]): it never signs a second block for a round;
//! 2. the ledger and its application are restored from the checkpoint
//!    (its digests checked) — or start from genesis without one — and the
//!    stored commits after it are replayed in index order: a digest
//!    mismatch or a gap in the commit log is a typed error, never a silent
//!    fresh start;
//! 3. replayed commits are not reported again (they were reported before
//!    the crash, after they were durable).

use std::collections::VecDeque;
use std::sync::Arc;

use idlegrid_dag_ledger::consensus::{
    CommittedSubDag, Committee, PersistSeq, Recovered, StorageOp, Validator,
};
use idlegrid_dag_ledger::ledger::{Ledger, check_all};
use idlegrid_primitives::{Digest, Keypair, Seed};
use serde::{Deserialize, Serialize};

use super::frontier::CommitFrontier;
use super::state_sync::Serving;
use super::{ValidatorError, ValidatorNode, ValidatorSetup};
use crate::market::{AppSnapshotError, MarketplaceApp};

/// Largest ledger or application part of a checkpoint accepted.
pub const MAX_CHECKPOINT_PART: usize = 1 << 30;

/// Why a checkpoint could not be installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// It lacks the application state or the commit frontier.
    #[error("checkpoint {0} cannot stand alone (no application state or commit frontier)")]
    NotRestorable(u64),
    /// The ledger part was refused.
    #[error("ledger snapshot: {0}")]
    Ledger(#[from] idlegrid_dag_ledger::ledger::LedgerError),
    /// The ledger does not hash to the checkpoint's digest.
    #[error("the ledger of checkpoint {0} does not hash to its state digest")]
    Digest(u64),
    /// The ledger breaks an invariant.
    #[error("the ledger breaks an invariant: {0}")]
    Invariant(String),
    /// The marketplace part was refused.
    #[error("{0}")]
    App(#[from] AppSnapshotError),
}

/// Bound on node storage requests not yet drained by the driver.
const MAX_NODE_PERSIST_QUEUE: usize = 1 << 20;

/// A ledger checkpoint: the replicated state after commit `index`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last commit applied.
    pub index: u64,
    /// The ledger's state digest after it.
    pub state_digest: Digest,
    /// [`Ledger::snapshot`] bytes.
    pub ledger: Vec<u8>,
    /// The marketplace's state ([`MarketplaceApp::snapshot`] bytes).
    ///
    /// [`MarketplaceApp::snapshot`]: crate::market::MarketplaceApp::snapshot
    pub app: Option<Vec<u8>>,
    /// Where consensus resumes: commit `index` with, as `blocks`, every
    /// block already ordered at or above its garbage-collection round (no
    /// transactions).
    pub frontier: Option<CommittedSubDag>,
}

impl Checkpoint {
    /// True if the node can restart from this checkpoint alone (plus the
    /// commits after it), so the commits at or below `index` may be pruned.
    pub fn restorable(&self) -> bool {
        self.app.is_some()
            && self
                .frontier
                .as_ref()
                .is_some_and(|f| f.index == self.index)
    }
}

/// One write of a validator node.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeStorageOp {
    /// A consensus write (a block or a commit).
    Consensus(StorageOp),
    /// A ledger checkpoint (replaces the previous one).
    Checkpoint(Arc<Checkpoint>),
}

/// A numbered [`NodeStorageOp`] (gap-free from 1, in write order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodePersistRequest {
    /// Position in the write order.
    pub seq: PersistSeq,
    /// What to write.
    pub op: NodeStorageOp,
}

/// What a restarted validator node's store held.
#[derive(Clone, Debug, Default)]
pub struct StoredNode {
    /// Blocks and commits (every commit kept, see the module docs), and
    /// whether the store was lost.
    pub consensus: Recovered,
    /// The latest checkpoint, if any.
    pub checkpoint: Option<Arc<Checkpoint>>,
}

/// The node's durability bookkeeping.
#[derive(Debug, Default)]
pub(super) struct Durability {
    enabled: bool,
    checkpoint_every: u64,
    queue: VecDeque<NodePersistRequest>,
    last: PersistSeq,
    /// (node seq, consensus seq) of forwarded consensus writes not yet
    /// acknowledged.
    forwarded: VecDeque<(PersistSeq, PersistSeq)>,
    /// Commits applied while replaying (not reported again).
    replaying: bool,
}

impl Durability {
    /// True if the node persists.
    pub(super) fn enabled(&self) -> bool {
        self.enabled
    }

    /// True while recovery replays stored commits: they were reported
    /// (and audited) before the crash, so they are not again.
    pub(super) fn replaying(&self) -> bool {
        self.replaying
    }

    /// The consensus validator is replaced: its unacknowledged writes will
    /// never be acknowledged to it.
    pub(super) fn forget_forwarded(&mut self) {
        self.forwarded.clear();
    }

    pub(super) fn push(&mut self, op: NodeStorageOp) -> PersistSeq {
        assert!(
            self.queue.len() < MAX_NODE_PERSIST_QUEUE,
            "the driver does not drain poll_persist"
        );
        self.last = self.last.next();
        self.queue
            .push_back(NodePersistRequest { seq: self.last, op });
        self.last
    }
}

impl ValidatorNode {
    /// Turns durability on (before the first input): the node emits storage
    /// requests, holds its own blocks and its commits until their writes
    /// are durable, and writes a ledger checkpoint every `checkpoint_every`
    /// commits (0 = never).
    pub fn with_persistence(mut self, checkpoint_every: u64) -> Self {
        self.validator = self.validator.with_persistence();
        self.durable.enabled = true;
        self.durable.checkpoint_every = checkpoint_every;
        if checkpoint_every > 0 {
            self.with_state_sync(super::SyncConfig::default())
        } else {
            self
        }
    }

    /// Fetches a snapshot when the node falls more than `gc_depth` rounds
    /// behind (see [`state_sync`](super::state_sync)); on by default with
    /// persistence and checkpoints.
    pub fn with_state_sync(mut self, cfg: super::SyncConfig) -> Self {
        let gc_depth = self.validator.config().gc_depth;
        self.sync = Some(super::state_sync::StateSync::new(cfg, gc_depth));
        self
    }

    /// A validator node restarted from what its store held (see the module
    /// docs for the algorithm). Durability is on, with checkpoints every
    /// `checkpoint_every` commits.
    pub fn recover(
        key: Keypair,
        committee: Committee,
        setup: &ValidatorSetup,
        seed: Seed,
        emit_notices: bool,
        stored: StoredNode,
        checkpoint_every: u64,
    ) -> Result<Self, ValidatorError> {
        let mut node = Self::new(key.clone(), committee.clone(), setup, seed, emit_notices)?
            .with_persistence(checkpoint_every);
        let mut commits: Vec<Arc<CommittedSubDag>> = stored.consensus.commits.clone();
        commits.sort_by_key(|c| c.index);
        commits.dedup_by_key(|c| c.index);
        let mut consensus = stored.consensus;
        if let Some(f) = stored.checkpoint.as_ref().and_then(|c| c.frontier.clone()) {
            consensus.commits.push(Arc::new(f));
        }
        node.validator = Validator::recover(
            key,
            committee,
            setup.consensus.clone(),
            seed.derive("validator"),
            consensus,
        )?;
        node.replay(&commits, stored.checkpoint.as_deref())?;
        Ok(node)
    }

    /// Replaces the ledger, the marketplace and the commit frontier by a
    /// restorable checkpoint's, checking its digests and the ledger's
    /// invariants (supply conserved) first; nothing changes on an error.
    pub(super) fn install(&mut self, cp: &Checkpoint) -> Result<(), InstallError> {
        let (Some(app), Some(frontier)) = (&cp.app, &cp.frontier) else {
            return Err(InstallError::NotRestorable(cp.index));
        };
        if frontier.index != cp.index {
            return Err(InstallError::NotRestorable(cp.index));
        }
        let mut ledger = Ledger::from_snapshot(&cp.ledger, MAX_CHECKPOINT_PART)?;
        if ledger.state_digest() != cp.state_digest {
            return Err(InstallError::Digest(cp.index));
        }
        check_all(&ledger).map_err(|e| InstallError::Invariant(e.to_string()))?;
        let mut market = MarketplaceApp::restore(
            self.state.apps.market.rules().clone(),
            (self.mechanism)(),
            true,
            app,
            MAX_CHECKPOINT_PART,
        )?;
        market.set_proof_verifier(self.state.apps.market.proof_verifier().clone());
        ledger.set_verification_seed(&self.seed.derive("ledger-verify"));
        assert_eq!(
            ledger.total_supply(),
            ledger
                .initial_supply()
                .checked_sub(ledger.burned())
                .expect("burned within supply")
        );
        self.state = std::sync::Arc::new(super::Replica {
            ledger,
            apps: crate::market::Apps { market },
        });
        self.frontier = CommitFrontier::restore(self.validator.config().gc_depth, frontier);
        Ok(())
    }

    /// Rebuilds the ledger from genesis by replaying `commits`, checking
    /// `checkpoint` on the way.
    fn replay(
        &mut self,
        commits: &[Arc<CommittedSubDag>],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<(), ValidatorError> {
        let bad = |m: String| ValidatorError::Recovery(m);
        let mut start = 0;
        if let Some(cp) = checkpoint.filter(|cp| cp.restorable()) {
            self.install(cp)
                .map_err(|e| bad(format!("checkpoint {}: {e}", cp.index)))?;
            start = cp.index + 1;
        } else if let Some(cp) = checkpoint {
            let ledger = Ledger::from_snapshot(&cp.ledger, usize::MAX)
                .map_err(|e| bad(format!("checkpoint {}: {e}", cp.index)))?;
            if ledger.state_digest() != cp.state_digest {
                return Err(bad(format!(
                    "checkpoint {} does not hash to its digest",
                    cp.index
                )));
            }
        }
        self.durable.replaying = true;
        let commits: Vec<&Arc<CommittedSubDag>> =
            commits.iter().filter(|c| c.index >= start).collect();
        for (expected, c) in (start..).zip(commits.iter().copied()) {
            if c.index != expected {
                return Err(bad(format!(
                    "commit log has a gap: expected commit {expected}, found {}",
                    c.index
                )));
            }
            self.apply(c);
            if let Some(cp) = checkpoint.filter(|cp| cp.index == c.index && !cp.restorable())
                && self.state.ledger.state_digest() != cp.state_digest
            {
                self.durable.replaying = false;
                return Err(bad(format!(
                    "replaying commit {} gives another state than its checkpoint",
                    c.index
                )));
            }
        }
        self.durable.replaying = false;
        if let Some(cp) = checkpoint.filter(|cp| !cp.restorable())
            && commits.last().is_none_or(|c| c.index < cp.index)
        {
            return Err(bad(format!(
                "checkpoint {} is ahead of the commit log",
                cp.index
            )));
        }
        Ok(())
    }

    /// Called after commit `index` was applied: a checkpoint when due.
    pub(super) fn checkpoint_if_due(&mut self, index: u64) {
        let d = &self.durable;
        if !d.enabled || d.replaying || d.checkpoint_every == 0 {
            return;
        }
        if (index + 1) % d.checkpoint_every != 0 {
            return;
        }
        let frontier = self.frontier.frontier();
        let (cp, served) =
            self.sharing
                .checkpoint(&self.state, index, frontier, |state, frontier| {
                    let cp = state.checkpoint(index, frontier);
                    assert!(
                        cp.restorable(),
                        "a checkpoint after commit {index} stands in for it"
                    );
                    let served = Serving::cut(&cp);
                    (cp, served)
                });
        debug_assert_eq!(cp.index, index);
        self.serving.offer(served);
        self.forward_consensus_writes();
        self.durable.push(NodeStorageOp::Checkpoint(cp));
    }

    pub(super) fn forward_consensus_writes(&mut self) {
        while let Some(r) = self.validator.poll_persist() {
            let seq = self.durable.push(NodeStorageOp::Consensus(r.op));
            self.durable.forwarded.push_back((seq, r.seq));
        }
    }

    /// The next storage request, in write order (see the module docs).
    pub fn poll_persist(&mut self) -> Option<NodePersistRequest> {
        self.forward_consensus_writes();
        self.durable.queue.pop_front()
    }

    /// True if something waits for writes already requested: sync and call
    /// [`ValidatorNode::persisted`].
    pub fn sync_needed(&self) -> bool {
        self.validator.sync_needed()
    }

    /// Every request up to `seq` is durable.
    ///
    /// # Panics
    /// If `seq` was never handed out (a driver bug).
    pub fn persisted(&mut self, seq: PersistSeq) {
        assert!(
            seq <= self.durable.last,
            "persisted({seq:?}) beyond the last request"
        );
        let mut consensus = None;
        while let Some(&(ns, cs)) = self.durable.forwarded.front() {
            if ns > seq {
                break;
            }
            consensus = Some(cs);
            self.durable.forwarded.pop_front();
        }
        if let Some(cs) = consensus {
            self.validator.persisted(cs);
        }
        self.pump();
    }

    /// True while a state sync probes peers or fetches a snapshot.
    pub fn syncing_state(&self) -> bool {
        self.sync
            .as_ref()
            .is_some_and(super::state_sync::StateSync::active)
    }

    /// The consensus validator (read-only).
    pub fn consensus(&self) -> &Validator {
        &self.validator
    }
}
