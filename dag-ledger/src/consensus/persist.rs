//! What a validator must make durable, and what it recovers from.
//!
//! The validator decides *what* must be durable and *when*; the driver does
//! the IO. Every block the validator accepts (its own and its peers') and
//! every commit it decides leaves as a [`PersistRequest`] from
//! [`Validator::poll_persist`](super::Validator::poll_persist), numbered by a
//! gap-free [`PersistSeq`]. Two outputs wait for durability:
//!
//! - **our own block is durable before its first transmit** (Mysticeti's
//!   write-ahead rule): the broadcast of a new block, its rebroadcasts and
//!   fetch answers that would carry it are held until the driver
//!   acknowledges its write. A block nobody else has seen can be lost with
//!   the process and re-signed differently after a restart without
//!   equivocating; a block somebody has seen is on disk, so a restarted
//!   validator knows its last signed round;
//! - **a commit is durable before it is reported**: a
//!   [`ConsensusEvent::Committed`](super::ConsensusEvent::Committed) (and
//!   every event behind it) is held until its [`StorageOp::Commit`] is
//!   acknowledged, so nothing downstream (a ledger, a client told "your
//!   transaction is final") runs ahead of the store.
//!
//! Peers' blocks need no sync of their own: they are written in order and
//! made durable by the next sync; losing the un-synced tail only means
//! fetching those blocks again.
//!
//! # Driving contract
//!
//! After every input, drain [`Validator::poll_persist`](super::Validator::poll_persist)
//! and write every request **in order** (buffered writes are fine). If
//! [`Validator::sync_needed`](super::Validator::sync_needed) is true, make
//! everything written durable (one fsync for the whole batch: group commit)
//! and call [`Validator::persisted`](super::Validator::persisted) with the
//! last sequence number written. Then drain `poll_transmit` and
//! `poll_event` as usual.
//!
//! # Recovery
//!
//! A restarted validator is rebuilt with [`Validator::recover`](super::Validator::recover)
//! from a [`Recovered`] value holding what the store had: its blocks and
//! its commits. See [`Recovered`] for the algorithm. A validator whose store
//! was lost entirely is rebuilt with [`Recovered::lost`]: before proposing
//! it asks its peers for its own latest block and waits until peers holding
//! a quorum of stake answered, then proposes only above the highest own
//! round any of them reported.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::block::Block;
use super::linearizer::CommittedSubDag;

/// Sequence number of a [`PersistRequest`] (gap-free, from 1).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct PersistSeq(u64);

impl PersistSeq {
    /// Nothing persisted yet.
    pub const ZERO: Self = Self(0);
    /// Wraps a raw sequence number.
    pub const fn new(v: u64) -> Self {
        Self(v)
    }
    /// The raw value.
    pub const fn get(self) -> u64 {
        self.0
    }
    /// The next number.
    pub const fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

/// One write the driver must perform.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageOp {
    /// A block accepted into the DAG (ours or a peer's); key it by its
    /// [`BlockRef`](super::BlockRef). Blocks more than `gc_depth` rounds
    /// below the last commit may be pruned, except our own latest block.
    Block(Arc<Block>),
    /// A decided commit, with its transactions (the ledger replays these).
    /// Key it by its index; commits older than the ledger's latest durable
    /// checkpoint may be pruned.
    Commit(Arc<CommittedSubDag>),
    /// Blocks below `below` are no longer needed (they are below the
    /// garbage-collection round): delete them, except `keep`, our own
    /// latest block. Emitted when the gc round advances.
    PruneBlocks {
        /// Delete blocks of lower rounds.
        below: idlegrid_primitives::Round,
        /// Never delete this one.
        keep: super::BlockRef,
    },
}

/// A numbered [`StorageOp`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistRequest {
    /// Its position in the write order.
    pub seq: PersistSeq,
    /// What to write.
    pub op: StorageOp,
}

/// What a restarted validator's store held.
///
/// Recovery ([`Validator::recover`](super::Validator::recover)):
///
/// 1. the commit sequence resumes after the highest commit in `commits`
///    (its index, round, timestamp and running digest); the blocks ordered
///    by commits within `gc_depth` rounds of it are marked committed, so
///    they are never ordered twice;
/// 2. the DAG is rebuilt from `blocks` at or above the garbage-collection
///    round, lowest round first; a block whose parents did not survive is
///    dropped (it is fetched again if a peer references it);
/// 3. our last signed round is the highest round of our own blocks in
///    `blocks`: we never propose at or below it, and the latest of them is
///    the own parent of our next block;
/// 4. the committer resumes after the last committed leader; leaders
///    decided after it but not durably committed are decided again, to the
///    same outcome (commit decisions are a function of the DAG).
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    /// Every block the store held (any order, duplicates ignored).
    pub blocks: Vec<Arc<Block>>,
    /// Commits the store held: at least the last one, plus those whose
    /// leaders are within `gc_depth` rounds of it (extra older ones are
    /// ignored). Any order.
    pub commits: Vec<Arc<CommittedSubDag>>,
    /// True if the store was lost (or is new for a validator that may have
    /// signed before): sync our own latest block from peers before
    /// proposing.
    pub lost: bool,
}

impl Recovered {
    /// A store that was lost entirely: nothing to recover, and our own
    /// latest block must be learned from peers before we propose.
    pub fn lost() -> Self {
        Self {
            lost: true,
            ..Self::default()
        }
    }

    /// True if the store held nothing.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty() && self.commits.is_empty()
    }
}
