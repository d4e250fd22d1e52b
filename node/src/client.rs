//! The client: a light node that buys compute.
//!
//! Its driver (a user, a workload) posts jobs with
//! [`ClientNode::post_job`]; the node does the rest from facts backed by
//! f + 1 validators: it seals the job's limit price in the `PostJob`
//! (its own [`Sealer`]), reveals it once the batch closed for commits,
//! re-seals the bid while lots stay unfilled; for every matched lot it
//! sizes the traps with the
//! entrapment optimizer fed by the provider's credibility (reported with
//! the match), builds the plan, puts it on the ledger and hands the inputs
//! to the provider; when the outputs are on the ledger it checks the traps,
//! reveals them and accuses on every wrong one, and reports the real
//! outputs to its driver. Instead of traps it may replicate lots or not
//! verify at all ([`crate::verification::VerificationMode`],
//! [`ClientNode::with_verification`]).
//!
//! With a reuse rule ([`TrapTargets::reuse`], lifetime mode) it banks the
//! answers of traps whose lot settled clean and plants them again as traps
//! for other providers, at no compute cost, under the guards of
//! [`idlegrid_entrap::reuse`]: at least one fresh trap per trap-carrying
//! lot, nothing reused inside a provider's assurance horizon, never an
//! input to a provider that saw it.

use std::collections::{BTreeMap, VecDeque};

use idlegrid_dag_ledger::ledger::TxKind;
use idlegrid_entrap::lifetime::LifetimeParams;
use idlegrid_entrap::reuse::{AnswerBank, ReuseRule};
use idlegrid_entrap::{
    Bps, EntrapError, JobPlan, Params, SubtaskIndex, TrapAdvice, TrapSource as EntrapSource,
    TrapSpec, optimize_traps,
};
use idlegrid_primitives::{AccountId, Amount, Digest, Machine, NodeId, Seed, Timestamp, Transmit};

use crate::light::{Decided, Expectation, LightCore, LightSetup, OutboxError, TxFate};
use crate::market::sealing::Sealer;
use crate::market::{
    JobRequest, MarketParams, MarketTx, OrderKey, SealError, Settlement, round_id,
};
use crate::provider::Ignored;
use crate::verification::{AdaptiveRecord, REPLICA_JOB_BASE, VerificationMode};
use crate::wire::{
    Fact, LotData, MAX_LOT_BYTES, NodeMessage, PeerMessage, Rejection, input_digest, output_digest,
};

#[path = "client_replicas.rs"]
mod replicas;

/// Jobs a client keeps open at most.
pub const MAX_OPEN_JOBS: usize = 4_096;

/// Where a client's traps come from: subtasks whose correct output it
/// knows (computed locally, or taken from earlier verified results).
pub trait TrapSource: std::fmt::Debug + Send {
    /// Trap number `i` of `lot` of `job`.
    fn trap(&mut self, job: u64, lot: u32, i: u64) -> TrapSpec;

    /// The bytes behind a trap input this source handed out, for jobs
    /// that carry [`JobData`]. None by default (content addresses only).
    fn payload(&mut self, _input: &Digest) -> Option<Vec<u8>> {
        None
    }
}

/// How the client sizes its traps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrapPolicy {
    /// A provider's cost to compute one subtask honestly, as the client
    /// estimates it.
    pub cost_per_subtask: Amount,
    /// The provider's stake per lot (the marketplace's slot stake).
    pub stake: Amount,
    /// Pay per subtask is the match price divided by this.
    pub price_to_pay_divisor: u128,
}

/// What a client's traps must achieve in each lot: the assurance target
/// of [`optimize_traps`], the trap cap, and whether the provider's
/// credibility may lower the trap count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrapTargets {
    /// `δ`: the probability, at most, that a provider corrupting at least
    /// `min_corrupt_fraction` of a lot escapes, in `(0, 1)`.
    pub miss_probability: f64,
    /// The cheating rate to catch (fraction of a lot's subtasks).
    pub min_corrupt_fraction: Bps,
    /// At most this many traps per lot; `None`: `2 n + 4` for `n` real
    /// subtasks.
    pub max_traps: Option<u32>,
    /// Whether the provider's credibility (reported with the match) lowers
    /// the trap count.
    pub use_credibility: bool,
    /// Traps over each provider's lifetime instead of per lot (for jobs
    /// posted without [`JobData`]); `None`: per lot.
    pub lifetime: Option<LifetimeMode>,
    /// Reuse of trap answers the client holds (lifetime mode, jobs without
    /// [`JobData`]; [`idlegrid_entrap::reuse`]); `None`: every trap fresh.
    pub reuse: Option<ReuseRule>,
}

/// The client's lifetime trap mode ([`idlegrid_entrap::lifetime`]): every
/// lot of a job has the same `n + max_traps` slots (`n` the job's inputs
/// per lot); a lot carries the planner's `k` traps with the provider's
/// rate — drawn from the client's seeded RNG, discounted by the provider's
/// verified history (its trap-carrying lots that settled clean since its
/// last slash, over every client, reported with the match; this client's
/// own count if that is ahead), never below the deterrence floor — and is
/// otherwise filled with real subtasks from the
/// job's pool. Every lot keeps at least one input for each of the job's
/// lots not yet planned; a lot that cannot be full (the job's tail) takes
/// what it may and always carries traps — one, which deters there whenever
/// the plan deters ([`idlegrid_entrap::lifetime::tail_deters`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LifetimeMode {
    /// The assurance target.
    pub target: idlegrid_entrap::AssuranceTarget,
    /// Most traps per lot (also the slots added to `n`).
    pub max_traps: u32,
    /// The rate halves after this many clean lots (`None`: fixed).
    pub halving_lots: Option<u32>,
}

/// What a match reports about its provider: what the client's trap
/// planning is fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProviderRecord {
    /// The provider's credibility, parts per million (per-lot mode).
    credibility_ppm: u32,
    /// Its trap-carrying lots that settled clean since its last slash,
    /// over every client (lifetime mode).
    verified_lots: u32,
}

/// Providers whose clean-lot counts a client keeps.
pub const MAX_TRACKED_PROVIDERS: usize = 65_536;

impl Default for TrapTargets {
    /// Catch 10 % corruption with probability 99 %, up to `2 n + 4` traps,
    /// credibility on.
    fn default() -> Self {
        Self {
            miss_probability: 0.01,
            min_corrupt_fraction: Bps::new(1_000).expect("constant"),
            max_traps: None,
            use_credibility: true,
            lifetime: None,
            reuse: None,
        }
    }
}

impl TrapTargets {
    /// The trap cap for a lot of `n` real subtasks.
    pub fn cap(&self, n: u32) -> u32 {
        self.max_traps
            .unwrap_or(n.saturating_mul(2).saturating_add(4))
    }
}

/// Why a trap policy cannot meet its targets for a newcomer (credibility
/// 0), found before any lot is planned by [`check_trap_policy`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TrapPolicyError {
    /// The optimizer's inputs are out of range.
    #[error(transparent)]
    Invalid(#[from] EntrapError),
    /// No trap count up to the cap meets the assurance target.
    #[error(
        "catching {fraction_bps} bps corruption in lots of {n} subtasks with probability {confidence} needs {} traps, above the cap of {cap}",
        needed.map_or("more than MAX_TRAPS".to_string(), |k| k.to_string())
    )]
    Assurance {
        /// Real subtasks per lot.
        n: u32,
        /// The cheating rate to catch.
        fraction_bps: u16,
        /// `1 − δ`.
        confidence: f64,
        /// The traps it needs, if any count up to `MAX_TRAPS` suffices.
        needed: Option<u32>,
        /// The cap.
        cap: u32,
    },
    /// Cheating pays whatever the trap count: the stake is too small.
    #[error("cheating pays at stake {stake}: a stake of at least {} deters it", min_stake.map_or("(overflow)".to_string(), |s| s.to_string()))]
    Deterrence {
        /// The stake given.
        stake: Amount,
        /// The smallest stake that deters with one trap.
        min_stake: Option<Amount>,
    },
}

/// Checks, before any lot, that `policy` and `targets` can be met for a
/// provider without a record at match price `price` in lots of `n` real
/// subtasks; returns the optimizer's advice for it.
pub fn check_trap_policy(
    policy: &TrapPolicy,
    targets: &TrapTargets,
    n: u32,
    price: Amount,
) -> Result<TrapAdvice, TrapPolicyError> {
    let op = policy.params(targets, n, price, 0);
    let advice = optimize_traps(&op)?;
    if advice.deterrence.is_none() {
        return Err(TrapPolicyError::Deterrence {
            stake: policy.stake,
            min_stake: idlegrid_entrap::optimizer::deterrent_stake(&op, 1),
        });
    }
    if advice.assurance.is_none() {
        let mut wide = op;
        wide.max_traps = (idlegrid_entrap::MAX_TRAPS as u32)
            .min((idlegrid_entrap::MAX_SUBTASKS as u32).saturating_sub(n));
        let needed = idlegrid_entrap::optimizer::assurance_traps(&wide)?.map(|k| k.get());
        return Err(TrapPolicyError::Assurance {
            n,
            fraction_bps: targets.min_corrupt_fraction.get(),
            confidence: 1.0 - targets.miss_probability,
            needed,
            cap: op.max_traps,
        });
    }
    Ok(advice)
}

impl TrapPolicy {
    /// The lifetime planner's inputs for lots of `slots` slots at match
    /// price `price`.
    pub fn lifetime_params(
        &self,
        mode: &LifetimeMode,
        slots: u32,
        price: Amount,
    ) -> LifetimeParams {
        let pay = Amount::new(price.get() / self.price_to_pay_divisor.max(1));
        let mut p = LifetimeParams::new(slots, self.cost_per_subtask, pay, self.stake);
        p.target = mode.target;
        p.max_traps = mode.max_traps;
        p.halving_lots = mode.halving_lots;
        p
    }

    /// The optimizer's inputs for a lot of `n` real subtasks at match price
    /// `price` from a provider of this credibility.
    pub fn params(
        &self,
        targets: &TrapTargets,
        n: u32,
        price: Amount,
        credibility_ppm: u32,
    ) -> Params {
        let pay = Amount::new(price.get() / self.price_to_pay_divisor.max(1));
        let mut op = Params::new(n, self.cost_per_subtask, pay, self.stake);
        if targets.use_credibility {
            op.credibility = (f64::from(credibility_ppm) / 1e6).clamp(0.0, 0.999);
        }
        op.max_traps = targets.cap(n);
        op.miss_probability = targets.miss_probability;
        op.min_corrupt_fraction = targets.min_corrupt_fraction;
        op
    }
}

/// A job as the driver posts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    /// The request (its `lots` must equal `inputs.len()`; its `commitment`
    /// is replaced by the seal of `max_price`).
    pub request: JobRequest,
    /// Limit price per compute-second, sealed until the batch closes.
    pub max_price: Amount,
    /// Real subtask inputs, one list per lot.
    pub inputs: Vec<Vec<Digest>>,
    /// The bytes behind `inputs`, for a driver whose providers run real
    /// programs; None when executors work on content addresses alone.
    pub data: Option<JobData>,
}

/// A job's program and input bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobData {
    /// The program every subtask runs.
    pub program: Vec<u8>,
    /// Input bytes, one list per lot, in the order of [`JobSpec::inputs`]
    /// (each input's digest is [`input_digest`]`(program, bytes)`).
    pub inputs: Vec<Vec<Vec<u8>>>,
}

impl JobData {
    /// The content addresses of `inputs`, one list per lot.
    pub fn digests(&self) -> Vec<Vec<Digest>> {
        self.inputs
            .iter()
            .map(|lot| lot.iter().map(|b| input_digest(&self.program, b)).collect())
            .collect()
    }
}

/// Why a job was not posted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PostError {
    /// `request.lots` differs from the number of input lists, or a lot has
    /// no input.
    #[error("a job needs one non-empty input list per lot")]
    Inputs,
    /// The job's bytes are not what its inputs name, or a lot's bytes
    /// exceed [`MAX_LOT_BYTES`].
    #[error("the job's input bytes do not match its inputs or exceed the lot limit")]
    Data,
    /// The job id is in use.
    #[error("job {0} is already open")]
    Duplicate(u64),
    /// Job ids from [`REPLICA_JOB_BASE`] up are the client's replica jobs.
    #[error("job id {0} is reserved for replica jobs (ids must be below 2^63)")]
    ReservedId(u64),
    /// Too many open jobs.
    #[error("{MAX_OPEN_JOBS} jobs are open")]
    TooMany,
    /// The outbox is full.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// What a client reports to its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// A lot was matched and planned: `traps` traps among `slots` subtasks.
    Planned {
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// Provider.
        provider: AccountId,
        /// Price per compute-second.
        price: Amount,
        /// Traps planted.
        traps: u32,
        /// Subtasks in the lot, traps included.
        slots: u32,
        /// Traps whose answer the client computed itself
        /// ([`idlegrid_entrap::TrapSource::Precomputed`]): each cost it one
        /// subtask of compute (reused answers cost nothing more).
        computed_answers: u32,
        /// Cross-check traps (a real subtask replicated on a partner).
        cross_checks: u32,
        /// Slots that repeat work another lot of the client does (the
        /// second copy of a replicated lot): verification, not useful
        /// compute.
        replicas: u32,
    },
    /// A matched lot lapsed unplanned on the ledger (no plan reached it by
    /// its deadline, e.g. after [`ClientEvent::PlanFailed`]): its lot bond
    /// was burned, the provider's slot is free.
    Unplanned {
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// Provider.
        provider: AccountId,
        /// The burned lot bond.
        bond: Amount,
    },
    /// A matched lot could not be planned (its subtasks repeat an input,
    /// which would let the provider tell traps apart): nothing was handed
    /// to the provider; the lot lapses on the ledger at its plan deadline
    /// ([`ClientEvent::Unplanned`]: the lot bond is burned) and its escrow
    /// comes back when the job closes.
    PlanFailed {
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// Why.
        error: idlegrid_entrap::EntrapError,
    },
    /// A lot's real outputs, in input order (the traps checked).
    Results {
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// Real outputs.
        outputs: Vec<Digest>,
        /// Trap slots that were wrong (accused).
        accused: Vec<SubtaskIndex>,
    },
    /// A lot settled.
    Settled(Settlement),
    /// Lots of a job lapsed unmatched.
    Lapsed {
        /// Job.
        job: u64,
        /// Lots.
        lots: u32,
    },
    /// A lot's real output bytes, in input order, checked against the
    /// output digests on the ledger (only for jobs posted with
    /// [`JobData`]; follows the lot's `Results`).
    Outputs {
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// Output bytes.
        outputs: Vec<Vec<u8>>,
    },
    /// A job closed.
    JobClosed {
        /// Job.
        job: u64,
        /// Escrow refunded.
        refunded: Amount,
    },
    /// The ledger rejected one of its transactions. A refused `PostJob`'s
    /// job is no longer open (its id may be posted again).
    Rejected {
        /// The payload.
        tx: Box<MarketTx>,
        /// Why.
        reason: Rejection,
    },
    /// The ledger refused one of its sealing transactions, typed (its
    /// nonce was already freed by the matching [`ClientEvent::Rejected`]).
    SealRejected(SealError),
    /// One of its transactions was applied (f + 1 validators said so).
    Applied {
        /// The payload.
        tx: Box<TxKind>,
    },
    /// The ledger rejected one of its plain ledger transactions (a
    /// transfer, a bond…; marketplace ones come as
    /// [`ClientEvent::Rejected`]).
    LedgerRejected {
        /// The payload.
        tx: Box<TxKind>,
        /// Why.
        reason: Rejection,
    },
    /// A bid with unfilled lots was re-sealed for a later batch.
    BidResealed {
        /// Job.
        job: u64,
        /// The new attempt.
        attempt: u32,
    },
    /// A message was ignored.
    Ignored {
        /// Sender.
        from: NodeId,
        /// Why.
        reason: Ignored,
    },
}

/// A matched lot being planned: the job, the lot, its provider and price,
/// and when the ledger lapses it if it is not planned.
#[derive(Debug, Clone, Copy)]
struct LotRef {
    job: u64,
    lot: u32,
    provider: AccountId,
    price: Amount,
    plan_by: Timestamp,
}

#[derive(Debug)]
struct Job {
    /// The bid as posted, its limit price and bid window (replicating
    /// modes only: a replica job bids the same way).
    bid: Option<(JobRequest, Amount, idlegrid_primitives::Duration)>,
    /// Real inputs not yet planned, in order (lifetime mode only).
    pool: Option<VecDeque<Digest>>,
    /// Lots not yet planned (lifetime mode: each keeps at least one input).
    unplanned: u32,
    inputs: Vec<Vec<Digest>>,
    data: Option<JobData>,
    plans: BTreeMap<u32, JobPlan>,
    lots: BTreeMap<u32, LotBytes>,
    /// Since the job was last heard of (see [`ClientNode::heard`]).
    heard: Expectation,
}

/// Output bytes of a lot of a job posted with data.
#[derive(Debug, Default)]
struct LotBytes {
    provider: Option<AccountId>,
    /// Output digests on the ledger, slot order.
    delivered: Option<Vec<Digest>>,
    /// Bytes from the provider, slot order.
    received: Option<Vec<Vec<u8>>>,
    done: bool,
}

/// A client node.
#[derive(Debug)]
pub struct ClientNode {
    core: LightCore,
    policy: TrapPolicy,
    targets: TrapTargets,
    traps: Box<dyn TrapSource>,
    /// Clean trap-carrying lots seen per provider (lifetime mode).
    clean: BTreeMap<AccountId, u32>,
    /// Trap answers it may reuse ([`TrapTargets::reuse`]).
    bank: AnswerBank,
    /// How it verifies its lots.
    verification: VerificationMode,
    /// Its own record of providers' replicated results (adaptive mode).
    adaptive: AdaptiveRecord,
    /// Replica jobs and replicated pairs in flight.
    replicas: replicas::Replicas,
    seed: Seed,
    sealer: Sealer,
    jobs: BTreeMap<u64, Job>,
    events: VecDeque<ClientEvent>,
}

impl ClientNode {
    /// A client drawing traps from `traps`.
    pub fn new(
        setup: LightSetup,
        policy: TrapPolicy,
        traps: Box<dyn TrapSource>,
        seed: Seed,
    ) -> Self {
        let sealer = Sealer::new(
            setup.key.account_id(),
            seed.derive("sealer"),
            MarketParams::DEFAULT.reveal_batches,
        );
        Self {
            core: LightCore::new(setup),
            policy,
            targets: TrapTargets::default(),
            traps,
            clean: BTreeMap::new(),
            bank: AnswerBank::default(),
            verification: VerificationMode::default(),
            adaptive: AdaptiveRecord::default(),
            replicas: replicas::Replicas::default(),
            seed,
            sealer,
            jobs: BTreeMap::new(),
            events: VecDeque::new(),
        }
    }

    /// The same client with these trap targets (instead of
    /// [`TrapTargets::default`]); check them first with
    /// [`check_trap_policy`].
    pub fn with_trap_targets(mut self, targets: TrapTargets) -> Self {
        self.targets = targets;
        self
    }

    /// The same client verifying its lots by `mode` (instead of
    /// [`VerificationMode::Entrap`]).
    pub fn with_verification(mut self, mode: VerificationMode) -> Self {
        self.verification = mode;
        self
    }

    /// Sets how it verifies its lots (applies to jobs posted from now on).
    pub fn set_verification(&mut self, mode: VerificationMode) {
        self.verification = mode;
    }

    /// How it verifies its lots.
    pub fn verification(&self) -> VerificationMode {
        self.verification
    }

    /// Consecutive valid replicated results it has seen from `provider`
    /// (the adaptive-replication record).
    pub fn replication_streak(&self, provider: &AccountId) -> u32 {
        self.adaptive.streak(provider)
    }

    /// Sets its trap targets (applies to jobs posted from now on).
    pub fn set_trap_targets(&mut self, targets: TrapTargets) {
        self.targets = targets;
    }

    /// Its account.
    pub fn account(&self) -> AccountId {
        self.core.account()
    }

    /// The light-node core (outbox, failovers).
    pub fn core(&self) -> &LightCore {
        &self.core
    }

    /// Jobs posted and not closed.
    pub fn open_jobs(&self) -> usize {
        self.jobs.len()
    }

    /// Submits a plain ledger transaction (transfer, bond, unbond,
    /// withdraw); its fate comes back as [`ClientEvent::Applied`] or
    /// [`ClientEvent::LedgerRejected`].
    pub fn submit_ledger(&mut self, now: Timestamp, kind: TxKind) -> Result<(), OutboxError> {
        self.core.start(now);
        self.core.submit(now, kind)
    }

    /// Asks the validators for its holdings, reported at the next
    /// reporting commits ([`LightCore::holdings`]).
    pub fn request_holdings(&mut self) {
        self.core.request_holdings();
    }

    /// Posts a job: its sealed bid and bonds go on the ledger through the
    /// gateway; the node reveals the price (which escrows the budget) once
    /// the batch closed for commits.
    pub fn post_job(&mut self, now: Timestamp, spec: JobSpec) -> Result<(), PostError> {
        if spec.request.job >= REPLICA_JOB_BASE {
            return Err(PostError::ReservedId(spec.request.job));
        }
        self.post(now, spec)
    }

    /// [`ClientNode::post_job`] for any id (replica jobs included).
    fn post(&mut self, now: Timestamp, mut spec: JobSpec) -> Result<(), PostError> {
        let id = spec.request.job;
        if spec.inputs.len() != spec.request.lots as usize || spec.inputs.iter().any(Vec::is_empty)
        {
            return Err(PostError::Inputs);
        }
        if let Some(d) = &spec.data {
            let fits = d
                .inputs
                .iter()
                .all(|l| d.program.len() + l.iter().map(Vec::len).sum::<usize>() <= MAX_LOT_BYTES);
            if !fits || d.digests() != spec.inputs {
                return Err(PostError::Data);
            }
        }
        if self.jobs.contains_key(&id) {
            return Err(PostError::Duplicate(id));
        }
        if self.jobs.len() >= MAX_OPEN_JOBS {
            return Err(PostError::TooMany);
        }
        self.core.start(now);
        let bid = (self.verification.replicates() && spec.data.is_none()).then(|| {
            let window = spec.request.deadline.saturating_since(now);
            (spec.request.clone(), spec.max_price, window)
        });
        spec.request.commitment = self.sealer.seal_bid(id, spec.max_price);
        let tx = MarketTx::PostJob(spec.request);
        if let Err(e) = self.core.submit_market(now, &tx) {
            let _bid = self.sealer.rejected(&tx, None);
            return Err(e.into());
        }
        let pool = (self.targets.lifetime.is_some() && spec.data.is_none())
            .then(|| spec.inputs.iter().flatten().copied().collect());
        self.jobs.insert(
            id,
            Job {
                bid,
                pool,
                unplanned: spec.inputs.len() as u32,
                inputs: spec.inputs,
                data: spec.data,
                plans: BTreeMap::new(),
                lots: BTreeMap::new(),
                heard: self.core.expect(now),
            },
        );
        Ok(())
    }

    /// A fact about `job` came: its expectation starts again. An open job
    /// hears of itself at every step another party's transaction makes
    /// (its match, its rounds' openings, deliveries, settlements), so one
    /// that heard nothing for the certified patience asks another
    /// validator to replay its facts ([`LightCore::check_expectations`]):
    /// sources that withhold a delivery would otherwise see the client
    /// lose its bond to a provider whose outputs it never checked. A job
    /// waiting on a long execution asks a replay now and then for nothing;
    /// each is one request and the client's own leaves.
    fn heard(&mut self, now: Timestamp, job: u64) {
        let fresh = self.core.expect(now);
        if let Some(j) = self.jobs.get_mut(&job) {
            j.heard = fresh;
        }
    }

    /// Asks for the facts of jobs that heard nothing for a while (see
    /// [`ClientNode::heard`]).
    fn check_expectations(&mut self, now: Timestamp) {
        let waits = self.jobs.values_mut().map(|j| &mut j.heard);
        self.core
            .check_expectations(now, waits, self.sealer.awaits_closing());
    }

    fn on_fact(&mut self, now: Timestamp, fact: Fact) {
        let me = self.account();
        if let Some(job) = job_of(&fact, me) {
            self.heard(now, job);
        }
        for tx in self.sealer.handle_fact(&fact) {
            if let MarketTx::SealBid { job, attempt, .. } = tx {
                self.events
                    .push_back(ClientEvent::BidResealed { job, attempt });
            }
            let _ = self.core.submit_market(now, &tx);
        }
        match fact {
            Fact::Matched {
                client,
                job,
                lot,
                provider,
                price,
                credibility_ppm,
                verified_lots,
                plan_by,
            } if client == me => {
                let at = LotRef {
                    job,
                    lot,
                    provider,
                    price,
                    plan_by,
                };
                let record = ProviderRecord {
                    credibility_ppm,
                    verified_lots,
                };
                self.on_matched(now, at, record);
            }
            Fact::Delivered {
                client,
                job,
                lot,
                outputs,
                ..
            } if client == me => self.on_delivered(now, job, lot, &outputs),
            Fact::Settled(s) if s.client == me => {
                self.on_replica_settled(now, &s);
                let plan = self
                    .jobs
                    .get_mut(&s.job)
                    .and_then(|j| j.plans.remove(&s.lot));
                let trapped = plan.as_ref().is_some_and(|p| p.trap_count().get() > 0);
                if trapped && matches!(s.outcome, idlegrid_entrap::Outcome::Clean) {
                    self.saw_clean(s.provider);
                    if let Some(p) = &plan {
                        self.bank_answers(now, s.job, s.provider, p);
                    }
                }
                self.events.push_back(ClientEvent::Settled(*s));
            }
            Fact::SealRejected { owner, error } if owner == me => {
                self.events.push_back(ClientEvent::SealRejected(error));
            }
            Fact::Unplanned {
                client,
                job,
                lot,
                provider,
                bond,
            } if client == me => {
                if let Some(j) = self.jobs.get_mut(&job) {
                    j.plans.remove(&lot);
                }
                self.on_replica_gone(now, (job, lot));
                self.events.push_back(ClientEvent::Unplanned {
                    job,
                    lot,
                    provider,
                    bond,
                });
            }
            Fact::Lapsed { client, job, lots } if client == me => {
                self.on_replica_lapsed(now, job);
                self.events.push_back(ClientEvent::Lapsed { job, lots });
            }
            Fact::JobClosed {
                client,
                job,
                refunded,
            } if client == me => {
                self.jobs.remove(&job);
                self.events
                    .push_back(ClientEvent::JobClosed { job, refunded });
            }
            _ => {}
        }
    }

    /// How many traps a lot of `n` real subtasks gets from a provider of
    /// this credibility at this price.
    fn trap_count(&self, n: u32, price: Amount, credibility_ppm: u32) -> u32 {
        let op = self.policy.params(&self.targets, n, price, credibility_ppm);
        optimize_traps(&op)
            .map(|a| a.recommended.get())
            .unwrap_or(2)
            .clamp(1, op.max_traps.max(1))
    }

    fn plan(&mut self, now: Timestamp, at: LotRef, record: ProviderRecord) {
        let LotRef {
            job,
            lot,
            provider,
            price,
            ..
        } = at;
        if self
            .jobs
            .get(&job)
            .is_none_or(|j| (lot as usize) >= j.inputs.len())
        {
            return;
        }
        let Some((real, wanted)) = self.lot_work(job, lot, provider, price, record) else {
            // Lifetime mode: earlier lots took every input; the lot lapses.
            let reason = "earlier lots of the job took every real input";
            return self.plan_failed(job, lot, "inputs", reason);
        };
        // A trap whose input repeats a real subtask's or another trap's
        // would give the traps away (the plan refuses it): it is dropped.
        let mut seen: std::collections::BTreeSet<Digest> = real.iter().copied().collect();
        let mut traps = self.reused_traps(now, at, record, wanted, &seen);
        seen.extend(traps.iter().map(|t| t.input));
        let fresh = wanted.saturating_sub(traps.len() as u32);
        traps.extend(
            (0..u64::from(fresh))
                .map(|i| self.traps.trap(job, lot, i))
                .filter(|t| seen.insert(t.input)),
        );
        // No trap left (every one repeated an input): nothing to verify by.
        if traps.is_empty() && wanted > 0 {
            let reason = "every trap input repeats a subtask's input";
            return self.plan_failed(job, lot, "traps", reason);
        }
        self.commit_plan(now, at, real, traps, 0);
    }

    /// The reused answers a lot of `wanted` traps takes from the bank under
    /// the reuse rule (lifetime mode, jobs without data): past the
    /// provider's assurance horizon — at least `M` verified clean lots —
    /// and, guarded, never all of the lot's traps.
    fn reused_traps(
        &mut self,
        now: Timestamp,
        at: LotRef,
        record: ProviderRecord,
        wanted: u32,
        exclude: &std::collections::BTreeSet<Digest>,
    ) -> Vec<TrapSpec> {
        let (Some(rule), Some(mode)) = (self.targets.reuse, self.targets.lifetime) else {
            return Vec::new();
        };
        if self.jobs.get(&at.job).is_none_or(|j| j.data.is_some()) {
            return Vec::new();
        }
        let past = self.verified(at.provider, record) >= mode.target.lots;
        let count = rule.reusable(wanted, past);
        if count == 0 {
            return Vec::new();
        }
        self.bank.take(now, &rule, at.provider, count, exclude)
    }

    /// Banks the fresh trap answers of a lot that settled clean (lifetime
    /// mode with reuse on, jobs without data): the client computed them and
    /// `provider` agreed.
    fn bank_answers(&mut self, now: Timestamp, job: u64, provider: AccountId, plan: &JobPlan) {
        if self.targets.reuse.is_none() || self.targets.lifetime.is_none() {
            return;
        }
        if self.jobs.get(&job).is_none_or(|j| j.data.is_some()) {
            return;
        }
        let from = plan.public().job;
        for t in plan.traps() {
            if let EntrapSource::Precomputed { expected } = t.source {
                self.bank.deposit(now, t.input, expected, from, provider);
            }
        }
    }

    /// Answers it holds for reuse.
    pub fn banked_answers(&self) -> usize {
        self.bank.len()
    }

    /// The provider's verified clean trap-carrying lots: the ledger's count
    /// (every client's), or this client's own if that is ahead.
    fn verified(&self, provider: AccountId, record: ProviderRecord) -> u32 {
        let seen_here = self.clean.get(&provider).copied().unwrap_or(0);
        seen_here.max(record.verified_lots)
    }

    /// Reports a lot whose plan could not be built.
    fn plan_failed(&mut self, job: u64, lot: u32, name: &'static str, reason: &'static str) {
        let error = EntrapError::InvalidParameter { name, reason };
        self.events
            .push_back(ClientEvent::PlanFailed { job, lot, error });
    }

    /// Builds the plan of a matched lot from its real inputs and traps,
    /// puts it on the ledger, hands the inputs to the provider and reports
    /// it (`replicas`: slots that repeat another lot's work). False if the
    /// plan could not be built (reported as [`ClientEvent::PlanFailed`]).
    fn commit_plan(
        &mut self,
        now: Timestamp,
        at: LotRef,
        real: Vec<Digest>,
        traps: Vec<TrapSpec>,
        replicas: u32,
    ) -> bool {
        let LotRef {
            job,
            lot,
            provider,
            price,
            ..
        } = at;
        let k = traps.len() as u32;
        let (computed_answers, cross_checks) = trap_costs(&traps);
        let seed = self
            .seed
            .derive_indexed("plan", job)
            .derive_indexed("lot", u64::from(lot));
        let built = JobPlan::builder(round_id(job, lot))
            .real_inputs(real)
            .traps(traps)
            .seed(seed)
            .build();
        let plan = match built {
            Ok(p) => p,
            Err(error) => {
                self.events
                    .push_back(ClientEvent::PlanFailed { job, lot, error });
                return false;
            }
        };
        let public = plan.public().clone();
        let slots = public.slot_inputs.len() as u32;
        let inputs = public.slot_inputs.clone();
        let data = self.lot_data(job, lot, &inputs);
        let _ = self.core.submit_market(
            now,
            &MarketTx::Plan {
                job,
                lot,
                plan: public,
            },
        );
        let msg = PeerMessage::Inputs {
            job,
            lot,
            inputs,
            data,
        };
        self.core.send_peer(provider.node(), msg);
        if let Some(j) = self.jobs.get_mut(&job) {
            j.plans.insert(lot, plan);
            if j.data.is_some() {
                let bytes = LotBytes {
                    provider: Some(provider),
                    ..LotBytes::default()
                };
                j.lots.insert(lot, bytes);
            }
        }
        self.events.push_back(ClientEvent::Planned {
            job,
            lot,
            provider,
            price,
            traps: k,
            slots,
            computed_answers,
            cross_checks,
            replicas,
        });
        true
    }

    /// A lot's real inputs and trap count: per lot, its own inputs and the
    /// optimizer's count; in lifetime mode, `N − k` inputs from the job's
    /// pool with `k` drawn (`None` when the pool is empty).
    fn lot_work(
        &mut self,
        job: u64,
        lot: u32,
        provider: AccountId,
        price: Amount,
        record: ProviderRecord,
    ) -> Option<(Vec<Digest>, u32)> {
        let j = self.jobs.get(&job)?;
        let (Some(mode), Some(_)) = (self.targets.lifetime, &j.pool) else {
            let own = j.inputs.get(lot as usize)?.clone();
            let k = self.trap_count(own.len() as u32, price, record.credibility_ppm);
            return Some((own, k));
        };
        let per_lot = j.inputs.first().map_or(0, Vec::len) as u32;
        let slots = per_lot.saturating_add(mode.max_traps);
        let params = self.policy.lifetime_params(&mode, slots, price);
        // The provider's whole verified history (every client's clean
        // trap-carrying lots, from the ledger), or this client's own count
        // if that is ahead (the ledger's lags by the lots in flight).
        let clean = self.verified(provider, record);
        let mut rng = self
            .seed
            .derive_indexed("lifetime", job)
            .derive_indexed("lot", u64::from(lot))
            .rng();
        // An unplannable target (refused before the run by a checked
        // configuration) traps every lot with the most traps.
        let (k, drawn) = match idlegrid_entrap::plan_lifetime(&params) {
            Ok(p) => (p.traps.get(), p.draw(clean, &mut rng)),
            Err(_) => (mode.max_traps, mode.max_traps),
        };
        let j = self.jobs.get_mut(&job)?;
        // Every later lot keeps at least one input: a matched lot is never
        // left without work (it would hold the provider's slot).
        let later = j.unplanned.saturating_sub(1) as usize;
        let pool = j.pool.as_mut()?;
        let want = (slots - drawn) as usize;
        let (take, k) = if pool.len() >= want + later {
            (want, drawn)
        } else {
            // A short lot (the job's tail): its slot count gives it away,
            // so it always carries traps — one, which deters there
            // whenever the plan deters (`tail_deters`).
            let take = pool.len().saturating_sub(later).max(1).min(pool.len());
            let one = idlegrid_entrap::lifetime::tail_deters(&params, take as u32);
            (take, if one == Some(true) { 1 } else { k })
        };
        if take == 0 {
            return None;
        }
        j.unplanned = j.unplanned.saturating_sub(1);
        Some((pool.drain(..take).collect(), k))
    }

    /// One more clean trap-carrying lot from `provider` (bounded: a new
    /// provider past the limit stays a newcomer, the cautious side).
    fn saw_clean(&mut self, provider: AccountId) {
        if let Some(c) = self.clean.get_mut(&provider) {
            *c = c.saturating_add(1);
        } else if self.clean.len() < MAX_TRACKED_PROVIDERS {
            self.clean.insert(provider, 1);
        }
    }

    /// A lot's outputs are on the ledger: a replicated pair's lot waits
    /// for its partner's, any other is checked against its traps.
    fn on_delivered(&mut self, now: Timestamp, job: u64, lot: u32, outputs: &[Digest]) {
        if !self.on_replica_delivered(now, job, lot, outputs) {
            self.check(now, job, lot, outputs);
        }
    }

    fn check(&mut self, now: Timestamp, job: u64, lot: u32, outputs: &[Digest]) {
        let Some(plan) = self.jobs.get(&job).and_then(|j| j.plans.get(&lot)) else {
            return;
        };
        let accuse = plan.wrong_traps(outputs).unwrap_or_default();
        let real = plan.real_outputs(outputs).unwrap_or_default();
        let reveal = plan.trap_reveal(vec![]);
        let _ = self.core.submit_market(
            now,
            &MarketTx::Verify {
                job,
                lot,
                reveal,
                accuse: accuse.clone(),
            },
        );
        self.events.push_back(ClientEvent::Results {
            job,
            lot,
            outputs: real,
            accused: accuse,
        });
        if let Some(b) = self.jobs.get_mut(&job).and_then(|j| j.lots.get_mut(&lot)) {
            b.delivered = Some(outputs.to_vec());
            self.emit_outputs(job, lot);
        }
    }

    /// The bytes behind a lot's slot inputs (real ones from the job, traps
    /// from the trap source); None for a job posted without data.
    fn lot_data(&mut self, job: u64, lot: u32, slots: &[Digest]) -> Option<LotData> {
        let d = self.jobs.get(&job)?.data.as_ref()?;
        let real: BTreeMap<Digest, &Vec<u8>> = d
            .inputs
            .get(lot as usize)?
            .iter()
            .map(|b| (input_digest(&d.program, b), b))
            .collect();
        let mut inputs = Vec::with_capacity(slots.len());
        for s in slots {
            match real.get(s) {
                Some(b) => inputs.push((*b).clone()),
                None => inputs.push(self.traps.payload(s)?),
            }
        }
        Some(LotData {
            program: d.program.clone(),
            inputs,
        })
    }

    /// Output bytes from `from` for one of its lots.
    fn on_outputs(&mut self, from: NodeId, job: u64, lot: u32, outputs: Vec<Vec<u8>>) {
        let size: usize = outputs.iter().map(Vec::len).sum();
        let b = self.jobs.get_mut(&job).and_then(|j| j.lots.get_mut(&lot));
        match b {
            Some(b)
                if b.provider == Some(from.account())
                    && b.received.is_none()
                    && size <= MAX_LOT_BYTES =>
            {
                b.received = Some(outputs);
                self.emit_outputs(job, lot);
            }
            _ => self.events.push_back(ClientEvent::Ignored {
                from,
                reason: Ignored::UnknownLot,
            }),
        }
    }

    /// Reports a lot's real output bytes once the ledger's digests and the
    /// provider's bytes are both in and agree.
    fn emit_outputs(&mut self, job: u64, lot: u32) {
        let Some(j) = self.jobs.get_mut(&job) else {
            return;
        };
        let (Some(b), Some(plan)) = (j.lots.get_mut(&lot), j.plans.get(&lot)) else {
            return;
        };
        let (Some(digests), Some(bytes)) = (&b.delivered, &b.received) else {
            return;
        };
        if b.done {
            return;
        }
        let agree = digests.len() == bytes.len()
            && bytes
                .iter()
                .zip(digests)
                .all(|(x, d)| output_digest(x) == *d);
        if !agree {
            let from = b.provider.map(|a| a.node());
            b.received = None;
            if let Some(from) = from {
                self.events.push_back(ClientEvent::Ignored {
                    from,
                    reason: Ignored::OutputsMismatch,
                });
            }
            return;
        }
        b.done = true;
        let by_digest: BTreeMap<&Digest, &Vec<u8>> = digests.iter().zip(bytes).collect();
        let real = plan.real_outputs(digests).unwrap_or_default();
        let outputs = real
            .iter()
            .filter_map(|d| by_digest.get(d).map(|b| (*b).clone()))
            .collect();
        self.events
            .push_back(ClientEvent::Outputs { job, lot, outputs });
    }

    fn on_fates(&mut self, fates: Vec<TxFate>) {
        for f in fates {
            let ev = match f {
                TxFate::Rejected { kind, reason } => match crate::market::decode_market(&kind) {
                    Some(tx) => {
                        let again = self.sealer.rejected(&tx, reason.market.as_ref());
                        debug_assert!(again.is_none(), "a client reveals no asks");
                        if let MarketTx::PostJob(req) = &tx {
                            self.jobs.remove(&req.job);
                        }
                        ClientEvent::Rejected {
                            tx: Box::new(tx),
                            reason,
                        }
                    }
                    None => ClientEvent::LedgerRejected {
                        tx: Box::new(kind),
                        reason,
                    },
                },
                TxFate::Applied { kind, .. } => ClientEvent::Applied { tx: Box::new(kind) },
            };
            self.events.push_back(ev);
        }
    }
}

/// The job of `me`'s a fact is about, if any.
fn job_of(fact: &Fact, me: AccountId) -> Option<u64> {
    let (client, job) = match fact {
        Fact::Matched { client, job, .. }
        | Fact::Lapsed { client, job, .. }
        | Fact::RoundOpened { client, job, .. }
        | Fact::Delivered { client, job, .. }
        | Fact::Accused { client, job, .. }
        | Fact::DisputeOpened { client, job, .. }
        | Fact::JobClosed { client, job, .. }
        | Fact::Unplanned { client, job, .. }
        | Fact::BidUnfilled { client, job, .. } => (*client, *job),
        Fact::Settled(s) => (s.client, s.job),
        Fact::OrderSealed { owner, order, .. }
        | Fact::OrderRevealed { owner, order, .. }
        | Fact::BondForfeited { owner, order, .. } => match order {
            OrderKey::Bid { job, .. } => (*owner, *job),
            OrderKey::Ask { .. } => return None,
        },
        _ => return None,
    };
    (client == me).then_some(job)
}

/// Of these traps, how many answers the client computed itself and how
/// many are cross-checks.
fn trap_costs(traps: &[TrapSpec]) -> (u32, u32) {
    let count = |f: fn(&EntrapSource) -> bool| traps.iter().filter(|t| f(&t.source)).count() as u32;
    (
        count(|s| matches!(s, EntrapSource::Precomputed { .. })),
        count(|s| matches!(s, EntrapSource::CrossCheck { .. })),
    )
}

impl ClientNode {
    /// Follows the facts a report or certificate decided.
    fn on_decided(&mut self, now: Timestamp, from: NodeId, decided: Decided) {
        match decided {
            Ok((facts, fates)) => {
                self.on_fates(fates);
                for f in facts {
                    self.on_fact(now, f);
                }
            }
            Err(e) => self.events.push_back(ClientEvent::Ignored {
                from,
                reason: e.into(),
            }),
        }
    }
}

impl Machine for ClientNode {
    type Message = NodeMessage;
    type Event = ClientEvent;

    fn handle_message(&mut self, now: Timestamp, from: NodeId, msg: NodeMessage) {
        match msg {
            NodeMessage::Facts(batch) => {
                let decided = self.core.on_facts(now, from, batch);
                self.on_decided(now, from, decided);
            }
            NodeMessage::Certified(cert) => {
                let decided = self.core.on_certified(now, from, &cert);
                self.on_decided(now, from, decided);
                self.check_expectations(now);
            }
            NodeMessage::Peer(PeerMessage::Outputs { job, lot, outputs }) => {
                self.on_outputs(from, job, lot, outputs);
            }
            _ => self.events.push_back(ClientEvent::Ignored {
                from,
                reason: Ignored::Unexpected,
            }),
        }
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        self.core.start(now);
        self.core.on_timeout(now);
        self.check_expectations(now);
        self.release_holds(now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit<NodeMessage>> {
        self.core.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        let due = self.core.expectation_due(
            self.jobs.values().map(|j| &j.heard),
            self.sealer.awaits_closing(),
        );
        let holds = self.hold_due();
        self.core
            .poll_timeout()
            .into_iter()
            .chain(due)
            .chain(holds)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(stake: u128) -> TrapPolicy {
        TrapPolicy {
            cost_per_subtask: Amount::new(250),
            stake: Amount::new(stake),
            price_to_pay_divisor: 20,
        }
    }

    #[test]
    fn defaults_meet_sixteen_subtask_lots() {
        let a = check_trap_policy(
            &policy(50_000),
            &TrapTargets::default(),
            16,
            Amount::new(3_300),
        );
        assert!(a.unwrap().assurance.is_some());
    }

    #[test]
    fn small_lots_and_small_stakes_are_refused_with_the_fix() {
        let t = TrapTargets::default();
        match check_trap_policy(&policy(50_000), &t, 4, Amount::new(3_300)) {
            Err(TrapPolicyError::Assurance { needed, cap, .. }) => {
                assert_eq!((needed, cap), (Some(17), 12));
            }
            other => panic!("{other:?}"),
        }
        let wide = TrapTargets {
            max_traps: Some(17),
            ..t
        };
        assert!(check_trap_policy(&policy(50_000), &wide, 4, Amount::new(3_300)).is_ok());
        // Pay 165 against cost 250: 17 slots lose 17 · 85 unless the stake
        // exceeds it.
        match check_trap_policy(&policy(1_445), &t, 16, Amount::new(3_300)) {
            Err(TrapPolicyError::Deterrence { min_stake, .. }) => {
                assert_eq!(min_stake, Some(Amount::new(1_446)));
            }
            other => panic!("{other:?}"),
        }
        assert!(check_trap_policy(&policy(1_446), &t, 16, Amount::new(3_300)).is_ok());
    }
}
