//! The marketplace's typed rejections, carried through the ledger.
//!
//! Every transaction the marketplace refuses is refused with a
//! [`MarketError`], which becomes the ledger's [`LedgerError::App`] (a
//! stable code per variant and the error's canonical encoding, see
//! [`AppError`]), so the rejection sits typed in the transaction's receipt;
//! [`MarketError::from_ledger`] reads it back, and a validator serves it to
//! the sender's light node in [`Rejection::market`](crate::wire::Rejection::market). The codes are part of the wire
//! format: never renumber or reuse one (`codes_are_stable` pins them).
//!
//! Errors of the entrap crate (a verification round refusing a step) and
//! of the goods registry are not serializable themselves; they cross as
//! [`RoundError`] and [`RegistryRefusal`], which keep their kind and the
//! fields a light node acts on.

use idlegrid_dag_ledger::ledger::{AppError, AppErrorType, LedgerError, ManagedHandle};
use idlegrid_entrap::{EntrapError, Stage, SubtaskIndex};
use idlegrid_market::registry::RegistryError;
use idlegrid_market::{ExecutorKind, FeatureError, Features};
use idlegrid_primitives::{Amount, Timestamp};
use serde::{Deserialize, Serialize};

use super::MARKETPLACE_APP;
use super::referees::RefereeError;
use super::sealed::SealError;

/// Why the marketplace refused a transaction (it changed nothing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum MarketError {
    /// The payload is not a canonically encoded `MarketTx`.
    #[error("malformed marketplace payload; encode a MarketTx canonically")]
    Malformed,
    /// An offer's stake per slot is not the marketplace's.
    #[error("stake per slot {got} differs from the marketplace's {expected}")]
    StakePerSlot {
        /// The marketplace's stake per slot.
        expected: Amount,
        /// The offer's.
        got: Amount,
    },
    /// An offer's capacity is out of range.
    #[error("capacity {got} is outside 1..={max}")]
    Capacity {
        /// The offer's capacity.
        got: u32,
        /// The most slots one provider offers.
        max: u32,
    },
    // Code 4 (`AlreadyOffering`) is retired: an offer now replaces the
    // provider's previous one.
    /// A sealing step was refused.
    #[error("sealing: {0}")]
    Seal(SealError),
    /// A job's shape is out of range.
    #[error("{lots} lots of {max_slots_per_lot} slots: lots must be 1..=64, slots positive")]
    JobShape {
        /// Lots asked for.
        lots: u32,
        /// Slots per lot.
        max_slots_per_lot: u32,
    },
    /// The client already used this job id.
    #[error("job id {job} already used; pick a new one")]
    JobIdUsed {
        /// The job.
        job: u64,
    },
    /// Too many bids wait for clearing.
    #[error("too many pending bids; retry later")]
    TooManyPendingBids,
    /// The job's goods (apps, datasets) are malformed.
    #[error("job goods: {what}")]
    Goods {
        /// What is wrong with them.
        what: String,
    },
    /// The marketplace has no referees (a genesis mistake).
    #[error("no referees configured")]
    NoReferees,
    /// A dispute, ticket or vote was refused.
    #[error("referees: {0}")]
    Referee(RefereeError),
    /// The sender has no such job.
    #[error("unknown job {job}")]
    UnknownJob {
        /// The job.
        job: u64,
    },
    /// A plan names another lot or has too many subtasks.
    #[error("the plan for job {job} lot {lot} names another lot or has too many subtasks")]
    PlanMismatch {
        /// The job.
        job: u64,
        /// The lot.
        lot: u32,
    },
    /// The lot is not matched (or its round is already open).
    #[error("lot {lot} of job {job} is not matched")]
    LotNotMatched {
        /// The job.
        job: u64,
        /// The lot.
        lot: u32,
    },
    /// No verification round is open for the lot.
    #[error("no open round for job {job} lot {lot}")]
    NoOpenRound {
        /// The job.
        job: u64,
        /// The lot.
        lot: u32,
    },
    /// The lot's verification round refused the step.
    #[error("round: {0}")]
    Round(RoundError),
    /// A registry record signed by another account than the sender.
    #[error("registry record signed by another account than the sender")]
    RegistrySigner,
    /// The goods registry refused a record.
    #[error("registry: {0}")]
    Registry(RegistryRefusal),
    /// An offer's executor set is empty or has unknown bits.
    #[error("executor set is empty or has unknown bits")]
    BadExecutors,
    /// An offer's environment features are malformed.
    #[error("environment: {0}")]
    Environment(FeatureRefusal),
    /// A job's required features are malformed.
    #[error("job requires: {0}")]
    Requires(FeatureRefusal),
    /// A smaller offer would drop a slot whose lot has not settled.
    #[error("slot {slot} is busy: shrink the offer once its lot settles")]
    SlotBusy {
        /// The busy slot.
        slot: u32,
    },
    /// No offering provider can run the job (its executor or features).
    #[error("nobody can run this job: {0}")]
    Unservable(Unservable),
    /// The lot's plan deadline passed: it lapses at the end of this batch.
    #[error("the plan for job {job} lot {lot} came after its deadline {deadline}")]
    PlanLate {
        /// The job.
        job: u64,
        /// The lot.
        lot: u32,
        /// The plan deadline.
        deadline: Timestamp,
    },
}

/// What no offering provider has for a job ([`MarketError::Unservable`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Unservable {
    /// No offering provider runs the job's executor.
    #[error("no offering provider runs the {0:?} executor")]
    Executor(ExecutorKind),
    /// Required features that no offering provider with the job's executor
    /// has (ascending).
    #[error("no offering provider has: {0}")]
    Features(Features),
    /// Every required feature is offered, but no single provider offers
    /// them all: the job's whole requirement.
    #[error("no single offering provider has all of: {0}")]
    Combination(Features),
}

impl AppErrorType for MarketError {
    fn code(&self) -> u16 {
        match self {
            MarketError::Malformed => 1,
            MarketError::StakePerSlot { .. } => 2,
            MarketError::Capacity { .. } => 3,
            MarketError::Seal(_) => 5,
            MarketError::JobShape { .. } => 6,
            MarketError::JobIdUsed { .. } => 7,
            MarketError::TooManyPendingBids => 8,
            MarketError::Goods { .. } => 9,
            MarketError::NoReferees => 10,
            MarketError::Referee(_) => 11,
            MarketError::UnknownJob { .. } => 12,
            MarketError::PlanMismatch { .. } => 13,
            MarketError::LotNotMatched { .. } => 14,
            MarketError::NoOpenRound { .. } => 15,
            MarketError::Round(_) => 16,
            MarketError::RegistrySigner => 17,
            MarketError::Registry(_) => 18,
            MarketError::BadExecutors => 19,
            MarketError::Environment(_) => 20,
            MarketError::Requires(_) => 21,
            MarketError::Unservable(_) => 22,
            MarketError::SlotBusy { .. } => 23,
            MarketError::PlanLate { .. } => 24,
        }
    }
}

impl MarketError {
    /// The marketplace's error inside a ledger rejection, if the
    /// marketplace refused the transaction (and the carried error decodes).
    pub fn from_ledger(e: &LedgerError) -> Option<Self> {
        match e {
            LedgerError::App { app, error } if *app == MARKETPLACE_APP => error.decode().ok(),
            _ => None,
        }
    }

    /// As the ledger carries it.
    pub fn to_app_error(&self) -> AppError {
        AppError::of(self)
    }
}

/// The ledger rejection for `e` (the marketplace's id and `e`, typed).
pub(super) fn reject(h: &ManagedHandle<'_, '_>, e: MarketError) -> LedgerError {
    h.reject(&e)
}

impl From<EntrapError> for MarketError {
    fn from(e: EntrapError) -> Self {
        MarketError::Round(RoundError::from(&e))
    }
}

/// A verification round's refusal ([`EntrapError`]) as it crosses the
/// wire: its kind and the fields a party acts on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RoundError {
    /// The step belongs to another stage.
    #[error("step belongs to stage {expected:?}, the round is in {actual:?}")]
    WrongStage {
        /// The step's stage.
        expected: Stage,
        /// The round's stage.
        actual: Stage,
    },
    /// The round has settled.
    #[error("the round has already settled")]
    AlreadySettled,
    /// The stage's deadline passed.
    #[error("deadline {deadline:?} of stage {stage:?} has passed")]
    DeadlinePassed {
        /// The stage.
        stage: Stage,
        /// Its deadline.
        deadline: Timestamp,
    },
    /// The sender may not take this step.
    #[error("the sender may not take this step (expected the {role})")]
    NotAuthorized {
        /// Who may.
        role: String,
    },
    /// A reveal does not match its commitment.
    #[error("the revealed {what} does not match its commitment")]
    CommitmentMismatch {
        /// What was revealed.
        what: String,
    },
    /// The wrong number of results.
    #[error("expected {expected} results, got {got}")]
    WrongResultCount {
        /// Expected.
        expected: u64,
        /// Got.
        got: u64,
    },
    /// An accusation names a subtask that is no trap.
    #[error("subtask {0} is not a trap")]
    NotATrap(SubtaskIndex),
    /// An accusation names a trap answered as expected.
    #[error("trap {0} was answered as expected")]
    NothingToAccuse(SubtaskIndex),
    /// A subtask named twice.
    #[error("subtask {0} appears twice")]
    Duplicate(SubtaskIndex),
    /// A subtask out of range.
    #[error("subtask {index} is out of range")]
    OutOfRange {
        /// The subtask.
        index: SubtaskIndex,
    },
    /// The bonded stake is not the terms'.
    #[error("stake of {got} bonded, the terms require {required}")]
    WrongStake {
        /// Required.
        required: Amount,
        /// Bonded.
        got: Amount,
    },
    /// A vote from outside the committee.
    #[error("the sender is not on the referee committee")]
    NotOnCommittee,
    /// A second vote.
    #[error("this referee has already voted")]
    DuplicateVote,
    /// Any other refusal of the round (limits, parameters, arithmetic):
    /// the same for every validator, and nothing a party can fix by
    /// retrying.
    #[error("the round refused the step")]
    Refused,
}

impl From<&EntrapError> for RoundError {
    fn from(e: &EntrapError) -> Self {
        match *e {
            EntrapError::WrongStage { expected, actual } => Self::WrongStage { expected, actual },
            EntrapError::AlreadySettled => Self::AlreadySettled,
            EntrapError::DeadlinePassed {
                stage, deadline, ..
            } => Self::DeadlinePassed { stage, deadline },
            EntrapError::NotAuthorized { role } => Self::NotAuthorized { role: role.into() },
            EntrapError::CommitmentMismatch { what } => {
                Self::CommitmentMismatch { what: what.into() }
            }
            EntrapError::WrongResultCount { expected, got } => Self::WrongResultCount {
                expected: expected as u64,
                got: got as u64,
            },
            EntrapError::NotATrap(i) => Self::NotATrap(i),
            EntrapError::NothingToAccuse(i) => Self::NothingToAccuse(i),
            EntrapError::Duplicate(i) => Self::Duplicate(i),
            EntrapError::OutOfRange { index, .. } => Self::OutOfRange { index },
            EntrapError::WrongStake { required, got } => Self::WrongStake { required, got },
            EntrapError::NotOnCommittee => Self::NotOnCommittee,
            EntrapError::DuplicateVote => Self::DuplicateVote,
            _ => Self::Refused,
        }
    }
}

/// A malformed feature set ([`FeatureError`]) as it crosses the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FeatureRefusal {
    /// A feature name is not valid.
    #[error("feature name {0:?} is not valid")]
    BadName(String),
    /// Too many features.
    #[error("{0} features is too many")]
    TooMany(u64),
    /// Not sorted, distinct and valid.
    #[error("feature set is not canonical (sorted, distinct, valid names)")]
    NotCanonical,
}

impl From<&FeatureError> for FeatureRefusal {
    fn from(e: &FeatureError) -> Self {
        match e {
            FeatureError::BadName(n) => Self::BadName(n.clone()),
            FeatureError::TooMany(n) => Self::TooMany(*n as u64),
            FeatureError::NotCanonical => Self::NotCanonical,
        }
    }
}

/// A registry refusal ([`RegistryError`]) as it crosses the wire: its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RegistryRefusal {
    /// The record's signature does not verify.
    #[error("registry record signature does not verify")]
    BadSignature,
    /// The record's sequence number is not the signer's next.
    #[error("registry sequence number {got} is not the signer's next ({expected})")]
    BadNonce {
        /// The next one.
        expected: u64,
        /// The record's.
        got: u64,
    },
    /// Nothing registered under the digest.
    #[error("no app or dataset is registered under that digest")]
    UnknownDigest,
    /// Already registered.
    #[error("already registered; a new release needs new content")]
    AlreadyRegistered,
    /// The signer does not own the good.
    #[error("the signer does not own the good")]
    NotOwner,
    /// The client may not use the good (its access policy).
    #[error("the client may not use the good")]
    NotAllowed,
    /// The owners' fees exceed the bid's cap.
    #[error("owner fees of {fees} per slot exceed the bid's cap of {cap}")]
    FeeCapExceeded {
        /// The fees.
        fees: Amount,
        /// The cap.
        cap: Amount,
    },
    /// Anything else the registry refused (a malformed record, a full
    /// registry, a deprecated good…).
    #[error("the registry refused the record")]
    Refused,
}

impl From<&RegistryError> for RegistryRefusal {
    fn from(e: &RegistryError) -> Self {
        match *e {
            RegistryError::BadSignature(_) => Self::BadSignature,
            RegistryError::BadNonce { expected, got } => Self::BadNonce { expected, got },
            RegistryError::UnknownDigest(_) => Self::UnknownDigest,
            RegistryError::AlreadyRegistered(_) => Self::AlreadyRegistered,
            RegistryError::NotOwner { .. } => Self::NotOwner,
            RegistryError::NotAllowed { .. } => Self::NotAllowed,
            RegistryError::FeeCapExceeded { fees, cap } => Self::FeeCapExceeded { fees, cap },
            _ => Self::Refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes are part of the wire format.
    #[test]
    fn codes_are_stable() {
        let pinned = [
            (MarketError::Malformed, 1),
            (MarketError::BadExecutors, 19),
            (
                MarketError::Unservable(Unservable::Features(Features::NONE)),
                22,
            ),
            (MarketError::Seal(SealError::NotOffering), 5),
            (MarketError::TooManyPendingBids, 8),
            (MarketError::Referee(RefereeError::NoWindow), 11),
            (MarketError::NoOpenRound { job: 1, lot: 2 }, 15),
            (MarketError::Round(RoundError::DuplicateVote), 16),
            (MarketError::Registry(RegistryRefusal::Refused), 18),
        ];
        for (e, code) in pinned {
            assert_eq!(e.code(), code, "{e:?}");
        }
    }

    #[test]
    fn unservable_jobs_say_what_is_missing_typed_and_in_words() {
        let numpy = Features::from_names(["numpy"]).unwrap();
        let both = Features::from_names(["numpy", "pandas"]).unwrap();
        let cases = [
            (
                Unservable::Features(numpy),
                "nobody can run this job: no offering provider has: numpy",
            ),
            (
                Unservable::Combination(both),
                "nobody can run this job: no single offering provider has all of: numpy, pandas",
            ),
            (
                Unservable::Executor(ExecutorKind::Wasm),
                "nobody can run this job: no offering provider runs the Wasm executor",
            ),
        ];
        for (u, text) in cases {
            let e = MarketError::Unservable(u);
            assert_eq!(e.to_string(), text);
            // The receipt carries it typed, under its pinned code.
            let ledger = LedgerError::App {
                app: MARKETPLACE_APP,
                error: e.to_app_error(),
            };
            assert_eq!(MarketError::from_ledger(&ledger), Some(e));
        }
    }

    #[test]
    fn a_rejection_decodes_back_to_the_typed_error() {
        let e = MarketError::Round(RoundError::NotATrap(SubtaskIndex::new(3)));
        let ledger = LedgerError::App {
            app: MARKETPLACE_APP,
            error: e.to_app_error(),
        };
        assert_eq!(MarketError::from_ledger(&ledger), Some(e.clone()));
        // Another application's error with the same code is not ours.
        let other = LedgerError::App {
            app: idlegrid_dag_ledger::ledger::AppId::new(MARKETPLACE_APP.get() + 1),
            error: e.to_app_error(),
        };
        assert_eq!(MarketError::from_ledger(&other), None);
    }
}
