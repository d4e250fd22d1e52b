//! The crate's one error type.

use idlegrid_primitives::{Amount, CryptoError, DecodeError, Epoch, NodeId};
use thiserror::Error;

use crate::feedback::JobId;

/// Why feedback, parameters or a trust computation were rejected.
///
/// Every variant is a peer's or a caller's mistake; none leaves the book
/// half-updated (a rejected call changes nothing).
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum ReputationError {
    /// The feedback's signature does not verify for its reporter.
    #[error("feedback signature does not verify for reporter {reporter:?}: {source}")]
    BadSignature {
        /// Claimed reporter.
        reporter: NodeId,
        /// Why verification failed.
        source: CryptoError,
    },
    /// Signed feedback bytes could not be decoded.
    #[error("malformed feedback encoding: {0}")]
    Decode(#[from] DecodeError),
    /// The reporter is not a registered identity; register it first.
    #[error("unknown reporter {0:?}: register the identity before it reports")]
    UnknownReporter(NodeId),
    /// The subject is not a registered identity; register it first.
    #[error("unknown subject {0:?}: register the identity before rating it")]
    UnknownSubject(NodeId),
    /// A reporter rated itself.
    #[error("self-feedback from {0:?} is not accepted")]
    SelfFeedback(NodeId),
    /// This reporter already rated this subject for this job.
    #[error("duplicate feedback for job {job:?} from {reporter:?} about {subject:?}")]
    DuplicateFeedback {
        /// The job.
        job: JobId,
        /// The reporter.
        reporter: NodeId,
        /// The subject.
        subject: NodeId,
    },
    /// The value at stake is zero or above the configured maximum.
    #[error("value at stake {value} is outside 1..={max}")]
    ValueOutOfRange {
        /// Given value.
        value: Amount,
        /// Largest accepted value.
        max: Amount,
    },
    /// The feedback is stamped with an epoch the book has not reached.
    #[error("feedback for epoch {feedback} but the book is at {current}: advance the book first")]
    FutureEpoch {
        /// The feedback's epoch.
        feedback: Epoch,
        /// The book's epoch.
        current: Epoch,
    },
    /// The feedback is older than the deduplication window.
    #[error("feedback for epoch {feedback} is older than the oldest accepted epoch {oldest}")]
    StaleFeedback {
        /// The feedback's epoch.
        feedback: Epoch,
        /// Oldest epoch still accepted.
        oldest: Epoch,
    },
    /// The reporter already sent the maximum number of feedback items this epoch.
    #[error("reporter {reporter:?} exceeded {limit} feedback items in epoch {epoch}")]
    ReporterQuotaExceeded {
        /// The reporter.
        reporter: NodeId,
        /// The current epoch.
        epoch: Epoch,
        /// The per-epoch limit.
        limit: u32,
    },
    /// The book holds the maximum number of identities.
    #[error("identity limit of {limit} reached")]
    TooManyIdentities {
        /// The limit.
        limit: usize,
    },
    /// The book holds the maximum number of reporter→subject edges.
    #[error("feedback-edge limit of {limit} reached")]
    TooManyEdges {
        /// The limit.
        limit: usize,
    },
    /// Accumulated evidence would overflow its integer representation.
    #[error("evidence overflow: weights too large for the fixed-point representation")]
    EvidenceOverflow,
    /// A trust graph exceeds the configured size bounds.
    #[error(
        "trust graph too large: {nodes} nodes / {edges} edges (limits {max_nodes} / {max_edges})"
    )]
    GraphTooLarge {
        /// Nodes given.
        nodes: usize,
        /// Edges given.
        edges: usize,
        /// Node limit.
        max_nodes: usize,
        /// Edge limit.
        max_edges: usize,
    },
    /// An edge or pre-trusted peer names a node that is not in the graph.
    #[error("node {0:?} is not in the trust graph")]
    UnknownNode(NodeId),
    /// An edge refers to a node index that is out of range.
    #[error("node index {index} out of range for a graph of {len} nodes")]
    NodeIndexOutOfRange {
        /// The index.
        index: u32,
        /// Number of nodes.
        len: usize,
    },
    /// Neither a pre-trusted peer nor any stake: trust has nowhere to start.
    #[error("no trust anchor: give at least one pre-trusted peer or one staked identity")]
    NoTrustAnchor,
    /// A float parameter is NaN, infinite or out of range.
    #[error("invalid number {value}: expected a finite value in [0, 1]")]
    InvalidFloat {
        /// The rejected value.
        value: f64,
    },
    /// A parameter set is inconsistent; the message says which bound.
    #[error("invalid parameters: {0}")]
    InvalidParams(&'static str),
    /// A `check_*` invariant does not hold; the message says which.
    #[error("invariant violated: {0}")]
    InvariantViolated(String),
    /// `advance_to` was asked to go backwards or stay in place.
    #[error("cannot move the book from epoch {current} to {requested}: epochs only increase")]
    EpochNotAfter {
        /// The book's epoch.
        current: Epoch,
        /// The requested epoch.
        requested: Epoch,
    },
}
