//! The one error type of the consensus module.

use idlegrid_primitives::{CryptoError, DecodeError, NodeId, Round};
use thiserror::Error;

use super::block::BlockRef;
use super::committee::AuthorityIndex;

/// Why a committee, configuration, message, block, transaction or piece of
/// evidence was rejected.
///
/// Peer mistakes (malformed or invalid messages) and user mistakes (bad
/// configuration, oversized transactions, a full queue) are errors; the
/// validator never panics on them.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConsensusError {
    /// A committee needs at least one validator.
    #[error("the committee is empty: add at least one validator")]
    EmptyCommittee,
    /// The committee is larger than [`super::committee::MAX_COMMITTEE_SIZE`].
    #[error("committee of {size} validators exceeds the maximum of {max}")]
    CommitteeTooLarge {
        /// Requested size.
        size: usize,
        /// Maximum size.
        max: usize,
    },
    /// The same node appears twice in the committee.
    #[error("validator {0:?} appears twice in the committee")]
    DuplicateValidator(NodeId),
    /// A validator has zero stake.
    #[error("validator {0:?} has zero stake: give every validator positive stake")]
    ZeroStake(NodeId),
    /// The total stake does not fit in a `u64`.
    #[error("total committee stake overflows u64")]
    StakeOverflow,
    /// A configuration value is out of range.
    #[error("invalid consensus configuration: {0}")]
    InvalidConfig(&'static str),
    /// What the store handed to recovery is inconsistent (a block that
    /// fails its checks, a commit whose leader is not a leader): the store
    /// is damaged; restore it from a backup or start with a lost store.
    #[error("recovered state is inconsistent: {0}; the store is damaged")]
    CorruptRecovery(String),
    /// The node is not a member of the committee.
    #[error("node {0:?} is not in the committee")]
    UnknownNode(NodeId),
    /// An authority index outside the committee.
    #[error("authority {0:?} is not in the committee")]
    UnknownAuthority(AuthorityIndex),

    /// The bytes are not a valid message.
    #[error("cannot decode message: {0}")]
    Decode(#[from] DecodeError),
    /// Round-0 (genesis) blocks are implicit and never sent.
    #[error("genesis blocks are implicit and must not be sent")]
    GenesisBlock,
    /// A block carries more transactions than allowed.
    #[error("block has {count} transactions, the maximum is {max}")]
    TooManyTransactions {
        /// Number of transactions.
        count: usize,
        /// Limit.
        max: usize,
    },
    /// A transaction is empty or larger than allowed.
    #[error("transaction of {len} bytes is outside 1..={max} bytes")]
    BadTransactionSize {
        /// Transaction length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// A block's encoding is larger than allowed.
    #[error("block of {len} bytes exceeds the maximum of {max} bytes")]
    BlockTooLarge {
        /// Encoded length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The transactions do not match the digest in the header.
    #[error("transactions do not match the header's transactions digest")]
    TransactionsDigestMismatch,
    /// Parents must be sorted by author, one per author.
    #[error("parents are not sorted by author with at most one parent per author")]
    UnsortedParents,
    /// A parent is not from round r-1 (only the author's own previous block
    /// may be older).
    #[error("parent {parent:?} of a round {round} block is from the wrong round")]
    ParentWrongRound {
        /// The offending parent.
        parent: BlockRef,
        /// The block's round.
        round: Round,
    },
    /// The author's own previous block is not among the parents.
    #[error("block does not reference its author's previous block")]
    MissingOwnParent,
    /// Round r-1 parents hold less than a quorum of stake.
    #[error("parents hold {stake} stake at round r-1, a quorum is {quorum}")]
    InsufficientParentStake {
        /// Stake of round r-1 parents.
        stake: u64,
        /// Quorum threshold.
        quorum: u64,
    },
    /// The signature does not verify.
    #[error("bad block signature: {0}")]
    BadSignature(CryptoError),
    /// The block is too far ahead of our DAG.
    #[error("round {round} is beyond the acceptance horizon {limit}")]
    FarFutureRound {
        /// The block's round.
        round: Round,
        /// Highest acceptable round.
        limit: Round,
    },
    /// The block is at or below the garbage-collection round.
    #[error("round {round} is garbage collected (gc round {gc_round})")]
    TooOld {
        /// The block's round.
        round: Round,
        /// Our garbage-collection round.
        gc_round: Round,
    },
    /// Too many distinct blocks for one (author, round) slot.
    #[error("too many equivocating blocks for {author:?} at round {round}")]
    TooManyVariants {
        /// The author.
        author: AuthorityIndex,
        /// The round.
        round: Round,
    },
    /// The author's quota of blocks waiting for ancestors is used up.
    #[error("pending-block quota of {author:?} is full")]
    PendingFull {
        /// The author.
        author: AuthorityIndex,
    },
    /// A fetch request or response carries too many items.
    #[error("{count} items in a fetch message, the maximum is {max}")]
    TooManyItems {
        /// Number of items.
        count: usize,
        /// Limit.
        max: usize,
    },
    /// The pending-transaction queue is full; retry later.
    #[error("transaction queue is full ({max} transactions); retry later")]
    TransactionQueueFull {
        /// Queue capacity.
        max: usize,
    },

    /// Evidence must name two blocks of the same author and round.
    #[error("evidence blocks are not from the same author and round")]
    EvidenceNotSameSlot,
    /// Evidence must name two different blocks.
    #[error("evidence names the same block twice")]
    EvidenceIdenticalBlocks,
}
