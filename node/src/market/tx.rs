//! The marketplace's wire vocabulary: transaction payloads, the notices it
//! reports, settlements and the rules every validator shares.

use super::referees::RefereeError;
use super::sealed::{BatchNo, OrderKey, SealError};
use idlegrid_entrap::{
    DisputedTrap, Outcome as RoundOutcome, PublicPlan, RefereeTicket, SubtaskIndex, TrapReveal,
};
use idlegrid_market::registry::SignedOp;
use idlegrid_market::{Ask, Bid, ExecutorKind, ExecutorSet, Features, JobGoods, Reputation};
use idlegrid_primitives::{
    AccountId, Amount, Commitment, Digest, Duration, NodeId, Salt, Timestamp,
};
use idlegrid_reputation::{BookParams, ReputationError, TrustParams};
use serde::{Deserialize, Serialize};

/// A client's job, as posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRequest {
    /// Client-chosen id, unique per client.
    pub job: u64,
    /// Providers wanted (one lot each).
    pub lots: u32,
    /// Most subtasks (real + traps) in one lot.
    pub max_slots_per_lot: u32,
    /// The sealed limit price per compute-second (attempt 0, see
    /// [`seal_price`](super::sealed::seal_price)); revealed with
    /// [`MarketTx::RevealBid`] once the batch closed for commits.
    pub commitment: Commitment,
    /// Most compute microseconds paid per subtask (the pay-as-you-go cap).
    pub cap_micros_per_subtask: u64,
    /// Minimum provider reputation, basis points.
    pub min_reputation_bps: u16,
    /// Client bond per lot (lost to a framed provider).
    pub client_bond: Amount,
    /// The bid lapses if not matched by then.
    pub deadline: Timestamp,
    /// The app and datasets the job uses (by digest) and the most it pays
    /// their owners per slot; the escrow covers `max_fee_per_slot × lots`.
    pub goods: JobGoods,
    /// The executor the job's subtasks need.
    pub executor: ExecutorKind,
    /// What the provider's runtime must offer (the script's imports): only
    /// providers whose [`Environment`] has all of them are matched, and a
    /// job that no offering provider can run is rejected when posted.
    pub requires: Features,
}

/// What a provider's runtime runs: its executor kinds and the features
/// (interpreter versions, importable packages) jobs may require.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    /// Executor kinds.
    pub executors: ExecutorSet,
    /// Features of its runtime.
    pub features: Features,
}

impl Environment {
    /// The simulator's providers: the simulated executor, no features.
    pub fn simulated() -> Self {
        Self {
            executors: ExecutorSet::single(ExecutorKind::Simulated),
            features: Features::NONE,
        }
    }

    /// True if this runtime can run a job needing `executor` and `requires`.
    pub fn serves(&self, executor: ExecutorKind, requires: &Features) -> bool {
        self.executors.contains(executor) && self.features.contains_all(requires)
    }
}

/// The payload of a marketplace transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MarketTx {
    /// A provider offers `capacity` slots of its `environment` (its
    /// prices follow as sealed asks, one per batch). From a provider that
    /// already offers, it replaces the offer: new slots lock stake, slots
    /// beyond the new capacity must be free and release theirs, and slots
    /// lost to a slash are bonded again.
    Offer {
        /// Parallel lots it accepts.
        capacity: u32,
        /// Stake bonded per lot (must equal the marketplace's).
        stake_per_slot: Amount,
        /// Its region.
        region: u8,
        /// What its runtime runs.
        environment: Environment,
    },
    /// A client posts a job.
    PostJob(JobRequest),
    /// The client's plan for a matched lot.
    Plan {
        /// Job key.
        job: u64,
        /// Lot.
        lot: u32,
        /// The public plan.
        plan: PublicPlan,
    },
    /// The provider's outputs and metered usage.
    Deliver {
        /// Job key (client, job).
        client: AccountId,
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// Output commitment.
        commitment: Commitment,
        /// Outputs, slot order.
        outputs: Vec<Digest>,
        /// Commitment salt.
        salt: Salt,
        /// Metered compute microseconds of the whole lot.
        usage_micros: u64,
    },
    /// The client's trap reveal and accusations.
    Verify {
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// Trap reveal.
        reveal: TrapReveal,
        /// Accused trap slots.
        accuse: Vec<SubtaskIndex>,
    },
    /// The provider accepts an accusation.
    Accept {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
    },
    /// The provider disputes an accusation.
    Dispute {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
    },
    /// A referee's VRF ticket for a dispute's open ticket window.
    Ticket {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// The sender's ticket on the window's randomness.
        ticket: RefereeTicket,
    },
    /// A referee's re-executed outputs for the disputed traps.
    Vote {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// Outputs, in disputed-trap order.
        outputs: Vec<Digest>,
    },
    /// A provider's sealed ask for its free slots in the current batch
    /// (locks [`MarketParams::seal_bond`]).
    SealAsk {
        /// Ask number, above the provider's last one.
        seq: u64,
        /// [`seal_price`](super::sealed::seal_price) of the price per
        /// compute-second.
        commitment: Commitment,
    },
    /// Opens a sealed ask after its batch closed for commits and,
    /// optionally, seals the provider's next ask in the same transaction
    /// (one transaction per batch for a provider that keeps asking).
    RevealAsk {
        /// Ask number.
        seq: u64,
        /// Price per compute-second.
        price: Amount,
        /// The commitment's salt.
        salt: Salt,
        /// The next sealed ask, as in [`MarketTx::SealAsk`].
        next: Option<NextAsk>,
    },
    /// A client re-seals the bid of a job whose lots were not all filled
    /// (after [`Notice::BidUnfilled`]; locks [`MarketParams::seal_bond`]).
    SealBid {
        /// Job.
        job: u64,
        /// The job's next attempt (1 for the first re-seal).
        attempt: u32,
        /// [`seal_price`](super::sealed::seal_price) of the limit price.
        commitment: Commitment,
    },
    /// Opens a sealed bid after its batch closed for commits; the first
    /// reveal of a job escrows its budget at that price.
    RevealBid {
        /// Job.
        job: u64,
        /// Attempt.
        attempt: u32,
        /// Limit price per compute-second.
        price: Amount,
        /// The commitment's salt.
        salt: Salt,
    },
    /// A registry record (register, reprice, transfer, deprecate, approve,
    /// grant), signed by the transaction's sender.
    Registry(SignedOp),
}

/// A sealed ask carried by a [`MarketTx::RevealAsk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextAsk {
    /// Ask number, above the one revealed.
    pub seq: u64,
    /// [`seal_price`](super::sealed::seal_price) of the price.
    pub commitment: Commitment,
}

/// What the application reports to the node that hosts it: the ledger
/// facts light nodes subscribe to, and records for observers. Notices are
/// events, never replicated state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// A job's lot was matched.
    Matched {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// Provider.
        provider: AccountId,
        /// Seller price per compute-second.
        price: Amount,
        /// The provider's credibility at the match, parts per million.
        credibility_ppm: u32,
        /// The provider's clean trap-carrying lots since its last slash
        /// ([`MarketplaceApp::verified_lots`](super::MarketplaceApp::verified_lots)).
        verified_lots: u32,
        /// Unplanned by then (live time, [`super::clock`]: it trails
        /// consensus time by every stall so far), the lot lapses
        /// ([`Notice::Unplanned`]).
        plan_by: Timestamp,
    },
    /// Lots of a job that lapsed unmatched.
    Lapsed {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Unmatched lots.
        lots: u32,
    },
    /// A matched lot lapsed unplanned: its client sent no plan within
    /// [`PLAN_STAGES`](super::PLAN_STAGES) stage deadlines of the match.
    /// The provider's slot is free again; the client's lot bond was burned.
    Unplanned {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// Provider.
        provider: AccountId,
        /// The burned lot bond.
        bond: Amount,
    },
    /// A lot's round opened (plan on the ledger, stake bonded).
    RoundOpened {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// Provider.
        provider: AccountId,
        /// The plan's slot inputs, slot order (what the provider must run).
        inputs: Vec<Digest>,
    },
    /// A lot's outputs were revealed.
    Delivered {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// Provider.
        provider: AccountId,
        /// Output digests, slot order.
        outputs: Vec<Digest>,
    },
    /// A provider was accused.
    Accused {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// Provider.
        provider: AccountId,
        /// Accused slots.
        traps: Vec<SubtaskIndex>,
    },
    /// A dispute's referees may submit tickets until `closes_at`
    /// (`level` 0: the first committee; above: an escalation).
    TicketWindow {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// Escalations before this window.
        level: u8,
        /// The randomness tickets are drawn on.
        randomness: Digest,
        /// Seats of the committee drawn.
        seats: u8,
        /// End of the window (live time, [`super::clock`]).
        closes_at: Timestamp,
    },
    /// A dispute's committee was seated and needs its votes.
    DisputeOpened {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// Provider.
        provider: AccountId,
        /// Escalations before this committee.
        level: u8,
        /// Referees.
        committee: Vec<NodeId>,
        /// The disputed traps.
        disputed: Vec<DisputedTrap>,
    },
    /// A lot settled.
    Settled(Settlement),
    /// A job closed: every lot settled or lapsed, remainder refunded.
    JobClosed {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Refunded remainder.
        refunded: Amount,
    },
    /// A clearing ran: its inputs and the mechanism's declared welfare, for
    /// observers that benchmark the mechanism (e.g. against the
    /// welfare-maximizing assignment). Never consulted by the application.
    Cleared(Box<ClearingRecord>),
    /// A sealed order (no price) was committed in `batch`.
    OrderSealed {
        /// Owner.
        owner: AccountId,
        /// Which order.
        order: OrderKey,
        /// Its batch.
        batch: BatchNo,
    },
    /// Every batch up to `batch` is closed for commits: their orders may be
    /// revealed now.
    SealingClosed {
        /// The last closed batch.
        batch: BatchNo,
    },
    /// A sealed order was opened (its batch had closed for commits).
    OrderRevealed {
        /// Owner.
        owner: AccountId,
        /// Which order.
        order: OrderKey,
        /// Its batch.
        batch: BatchNo,
        /// The revealed price.
        price: Amount,
    },
    /// A sealed order was not revealed in time: its bond was burned.
    BondForfeited {
        /// Owner.
        owner: AccountId,
        /// Which order.
        order: OrderKey,
        /// Its batch.
        batch: BatchNo,
        /// The burned bond.
        bond: Amount,
    },
    /// A job's revealed bid left lots unfilled: the client may re-seal it
    /// ([`MarketTx::SealBid`] with attempt `next_attempt`) until its
    /// deadline.
    BidUnfilled {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Unfilled lots.
        lots: u32,
        /// The attempt a re-seal must carry.
        next_attempt: u32,
    },
    /// A dispute, ticket or vote was rejected (it changed nothing).
    RefereeRejected {
        /// Sender.
        sender: AccountId,
        /// Why.
        error: RefereeError,
    },
    /// A sealing transaction was rejected (it changed nothing).
    SealRejected {
        /// Sender.
        owner: AccountId,
        /// Why.
        error: SealError,
    },
    /// An effect could not be carried out (an invariant violation).
    EffectFailed {
        /// What failed.
        reason: String,
    },
}

/// The inputs of one clearing, as the mechanism saw them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearingRecord {
    /// Consensus time of the clearing.
    pub now: Timestamp,
    /// Asks (free provider slots).
    pub asks: Vec<Ask>,
    /// Bids whose goods could be used (the others were not cleared).
    pub bids: Vec<Bid>,
    /// Each ask's provider reputation, in `asks` order.
    pub reputation: Vec<Reputation>,
    /// Declared welfare `Σ slots·(bid − ask)` of the mechanism's matches.
    pub welfare: u128,
    /// The mechanism's budget surplus per compute-second `Σ slots·(buyer
    /// price − seller price)` (McAfee's trade reduction; zero for strongly
    /// budget-balanced mechanisms). Lots are priced at the seller price.
    pub surplus: u128,
}

/// How one lot settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    /// Client.
    pub client: AccountId,
    /// Job.
    pub job: u64,
    /// Lot.
    pub lot: u32,
    /// Provider.
    pub provider: AccountId,
    /// Entrapment outcome.
    pub outcome: RoundOutcome,
    /// Paid to the provider (price × usage, capped).
    pub paid: Amount,
    /// Stake slashed (client share + burned).
    pub slashed: Amount,
    /// Burned (stake or bond).
    pub burned: Amount,
    /// Client bond forfeited to the provider (after the referees' fees).
    pub bond_forfeited: Amount,
    /// Fees paid to the referees who voted with the majority, by the
    /// convicted party.
    pub referee_fees: Amount,
    /// Traps in the lot.
    pub traps: u32,
    /// Subtasks in the lot.
    pub slots: u32,
    /// Metered usage of the lot.
    pub usage_micros: u64,
}

/// Marketplace-wide rules, identical on every node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketRules {
    /// Stake per provider slot (the entrapment stake).
    pub stake_per_slot: Amount,
    /// Share of a slashed stake that goes to the client.
    pub slash_to_client_bps: u16,
    /// Stage deadlines of every round (in live time, [`super::clock`]: a
    /// consensus stall does not use them up).
    pub stage_deadline: Duration,
    /// Market clearing period: the length of a sealed batch.
    pub clearing_period: Duration,
    /// Referee committee size (the first committee; escalations grow it).
    pub committee_size: u8,
    /// Referees (validators): who may submit tickets.
    pub referees: Vec<NodeId>,
    /// Reputation book parameters.
    pub book: BookParams,
    /// Consensus seconds per reputation epoch.
    pub reputation_epoch_secs: u64,
    /// EigenTrust global trust in the reputation filter; `None`: the
    /// book's beta score alone.
    pub global_trust: Option<TrustGate>,
}

/// EigenTrust global trust in the market's reputation filter.
///
/// At the start of every reputation epoch each validator computes global
/// trust over the book's feedback graph (local trust `max(pos − neg, 0)`
/// per reporter, anchored on every registered identity's bonded stake: no
/// pre-trusted peers) and keeps the vector in replicated state until the
/// next epoch. A provider whose trust is below
/// [`min_bps_of_mean`](Self::min_bps_of_mean) of the mean entry is
/// filtered as a newcomer (the fresh score): a record built from feedback
/// by identities nobody else trusts — a ring of the provider's own clients
/// — does not pass a client's minimum. Low trust never lifts a bad score
/// ([`ReputationBook::score_gated_at`](idlegrid_reputation::ReputationBook::score_gated_at)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustGate {
    /// Power iteration parameters (validated with the rules).
    pub params: TrustParams,
    /// The share of the mean trust a provider needs for its score to
    /// count, in basis points of the mean (`0`: only zero trust is gated;
    /// `10_000`: the mean), at most [`TrustGate::MAX_BPS_OF_MEAN`].
    pub min_bps_of_mean: u32,
}

impl TrustGate {
    /// The largest accepted share: a hundred times the mean.
    pub const MAX_BPS_OF_MEAN: u32 = 1_000_000;

    /// The default iteration with providers below half the mean gated.
    pub fn half_of_mean() -> Self {
        Self {
            params: TrustParams::default(),
            min_bps_of_mean: 5_000,
        }
    }

    /// Checks the iteration's parameters and the share's range.
    pub fn validate(&self) -> Result<(), ReputationError> {
        self.params.validate()?;
        if self.min_bps_of_mean > Self::MAX_BPS_OF_MEAN {
            return Err(ReputationError::InvalidParams(
                "global trust: min_bps_of_mean must be at most 1_000_000",
            ));
        }
        Ok(())
    }
}

/// The marketplace's parameters of sealed orders and referee sortition,
/// shared by every validator like [`MarketRules`].
///
/// They are not fields of [`MarketRules`] yet: a new field breaks every
/// struct literal of it, and crates outside the change build some. A
/// [`ValidatorNode`](crate::validator::ValidatorNode) runs
/// [`MarketParams::DEFAULT`]; an application built by hand may take others
/// ([`MarketplaceApp::with_params`](super::MarketplaceApp::with_params)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketParams {
    /// Bond locked with every sealed order, burned if it is not revealed.
    pub seal_bond: Amount,
    /// Batches after its own during which a sealed order may be revealed
    /// (at least 1; the batch is cleared after the last).
    pub reveal_batches: u64,
    /// Committed ledger batches a reveal window lasts at least, however
    /// far consensus time jumps (see [`super::sealed`]).
    pub reveal_commits: u32,
    /// How long a dispute's ticket window stays open.
    pub ticket_window: Duration,
    /// Most escalations to a larger committee per dispute.
    pub max_escalations: u8,
    /// Fee per majority referee, paid by the convicted party.
    pub referee_fee: Amount,
}

impl MarketParams {
    /// What every validator runs: a sealing bond of 500, reveals in the
    /// batch after the commit, windows of at least 8 commits; ticket
    /// windows of 2 s, at most 2 escalations (3 → 7 → 15 seats), a fee of
    /// 200 per majority referee.
    pub const DEFAULT: MarketParams = MarketParams {
        seal_bond: Amount::new(500),
        reveal_batches: 1,
        reveal_commits: 8,
        ticket_window: Duration::from_secs(2),
        max_escalations: 2,
        referee_fee: Amount::new(200),
    };
}

impl Default for MarketParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}
