//! The crate's one error type.

use idlegrid_primitives::{AmountError, Timestamp};
use thiserror::Error;

use crate::types::{Stage, SubtaskIndex};

/// Everything that can go wrong in entrap: peer and user mistakes (a reveal
/// that does not open its commitment, a step out of order, a late dispute)
/// and violated invariants reported by the `check_*` functions.
///
/// A step that fails with an error changes nothing: the round stays in its
/// stage and still settles deterministically when its deadline passes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EntrapError {
    /// The step does not belong to the round's current stage.
    #[error("step not allowed in stage {actual:?}; it belongs to stage {expected:?}")]
    WrongStage {
        /// The stage the step belongs to.
        expected: Stage,
        /// The stage the round is in.
        actual: Stage,
    },
    /// The round has already settled; start a new one.
    #[error("the round has already settled")]
    AlreadySettled,
    /// The step arrived after its stage's deadline; call `handle_timeout`.
    #[error(
        "deadline {deadline:?} of stage {stage:?} has passed (now {now:?}); call handle_timeout"
    )]
    DeadlinePassed {
        /// The stage whose deadline passed.
        stage: Stage,
        /// The deadline.
        deadline: Timestamp,
        /// The time of the rejected step.
        now: Timestamp,
    },
    /// `now` is earlier than a time the round has already seen.
    #[error("time went backwards: {now:?} is before {last:?}")]
    TimeWentBackwards {
        /// The rejected time.
        now: Timestamp,
        /// The latest time seen.
        last: Timestamp,
    },
    /// The sender is not the party this step belongs to.
    #[error("sender is not authorized for this step (expected the {role})")]
    NotAuthorized {
        /// Who should have sent it.
        role: &'static str,
    },
    /// A revealed value does not open its commitment.
    #[error("the revealed {what} does not match its commitment")]
    CommitmentMismatch {
        /// What was revealed.
        what: &'static str,
    },
    /// A revealed output vector has the wrong length (missing or extra results).
    #[error("expected {expected} results, got {got}")]
    WrongResultCount {
        /// The number of subtasks in the round.
        expected: usize,
        /// The number revealed.
        got: usize,
    },
    /// An accusation names a subtask that is not a trap.
    #[error("subtask {0} is not a trap; only traps can be accused")]
    NotATrap(SubtaskIndex),
    /// An accusation names a trap the provider answered as expected.
    #[error("trap {0} was answered as expected; there is nothing to accuse")]
    NothingToAccuse(SubtaskIndex),
    /// The same subtask appears twice in a list that must be a set.
    #[error("subtask {0} appears twice")]
    Duplicate(SubtaskIndex),
    /// A subtask index is beyond the round's subtasks.
    #[error("subtask {index} out of range (the round has {slots} subtasks)")]
    OutOfRange {
        /// The index given.
        index: SubtaskIndex,
        /// The number of subtasks.
        slots: usize,
    },
    /// A bounded collection would exceed its limit.
    #[error("too many {what}: {got} exceeds the limit of {max}")]
    LimitExceeded {
        /// What was counted.
        what: &'static str,
        /// The count given.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// A parameter is outside its allowed range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The stake bonded is not the amount the terms require.
    #[error("stake of {got} bonded, the terms require exactly {required}")]
    WrongStake {
        /// The amount required by the terms.
        required: idlegrid_primitives::Amount,
        /// The amount bonded.
        got: idlegrid_primitives::Amount,
    },
    /// A vote from a node outside the dispute's committee.
    #[error("the sender is not on this dispute's referee committee")]
    NotOnCommittee,
    /// A referee voted twice.
    #[error("this referee has already voted")]
    DuplicateVote,
    /// A referee is also a party of the round.
    #[error("a party of the round cannot referee it")]
    ConflictedReferee,
    /// Not enough valid referee candidates for the committee size.
    #[error("only {available} valid referee candidates for a committee of {needed}")]
    NotEnoughReferees {
        /// Valid candidates.
        available: usize,
        /// Committee size asked for.
        needed: usize,
    },
    /// Token arithmetic overflowed.
    #[error("amount arithmetic: {0}")]
    Amount(#[from] AmountError),
    /// A `check_*` invariant does not hold.
    #[error("invariant violated: {0}")]
    InvariantViolated(String),
}
