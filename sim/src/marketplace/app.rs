//! The marketplace [`Application`]: market, entrap and reputation
//! transactions applied inside the replicated ledger.
//!
//! One application (id [`MARKETPLACE_APP`]) carries all three
//! sub-protocols because the ledger scopes escrows and collateral locks to
//! the application that opened them: the escrow a job's bid opens must be
//! released by the application that settles the job's entrapment rounds.
//! Funds move only through the [`LedgerHandle`]: escrow opened by the
//! client at bid time, stake locked by the provider at offer time and by
//! the client for its bonds, releases, unlocks and slashes at settlement.
//!
//! Flow of one job (each step is a transaction ordered by consensus):
//!
//! 1. `Offer` (provider): locks `capacity` slot locks of `stake_per_slot`.
//! 2. `PostJob` (client): escrows the maximum budget, locks one client bond
//!    per lot, queues a [`Bid`].
//! 3. Clearing (lazily, by the first transaction of each market period):
//!    pending bids against free provider slots with the configured
//!    [`Mechanism`], filtered by provider reputation from the
//!    [`ReputationBook`]. Each matched slot is a *lot*.
//! 4. `Plan` (client): the lot's [`PublicPlan`] (real and trap subtasks);
//!    opens a [`VerificationRound`](idlegrid_entrap::VerificationRound) and bonds the provider's slot lock.
//! 5. `Deliver` (provider): output commitment, outputs, metered usage.
//! 6. `Verify` (client): trap reveal and accusations.
//! 7. `Accept` / `Dispute` (provider), `Vote` (referees).
//! 8. Settlement: the round's [`Effect`]s pay (price × metered usage,
//!    capped by the round's pay), refund, slash and feed reputation.
//! 9. Job close: owners of the job's app and datasets are paid their price
//!    per use × matched slots (fixed at match time by `clear_with_goods`,
//!    settled by the [`Registry`]), then the remainder is refunded.
//!
//! Registry records (`MarketTx::Registry`) are ledger transactions of the
//! same application, applied to the [`Registry`] in ledger order.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use idlegrid_dag_ledger::ledger::{
    AppId, Application, ApplicationRegistry, EscrowId, LedgerError, LedgerHandle, LockId,
};
use idlegrid_entrap::{
    Bps, Committee, Deadlines, DisputedTrap, Effect, Feedback as TrapFeedback, JobId as RoundId,
    Outcome as RoundOutcome, PublicPlan, RefereeVote, Stage, SubtaskIndex, Terms, TrapReveal,
    check_conservation,
};
use idlegrid_market::registry::{
    JobId as GoodsJobId, Registry, RegistryLimits, SignedOp, check_payout, clear_with_goods,
};
use idlegrid_market::{
    Ask, Bid, ClearingContext, ExecutorKind, ExecutorSet, JobGoods, Limits, Match, Mechanism,
    OptimalAssignment, OrderId, Region, RegionSet, Reputation, Resources, Slots,
};
use idlegrid_primitives::{
    AccountId, Amount, Commitment, Digest, Domain, Duration, NodeId, Salt, Timestamp, decode,
};
use idlegrid_reputation::{
    BookParams, Feedback as RepFeedback, JobId as RepJobId, Outcome as RepOutcome, ReputationBook,
    Role as RepRole, Score,
};
use serde::{Deserialize, Serialize};

/// The marketplace's application id.
pub const MARKETPLACE_APP: AppId = AppId::new(1);
/// Most lots (providers) one job may be spread over.
pub const MAX_LOTS: u32 = 64;
/// Bound on buffered notices (oldest dropped first).
pub const MAX_NOTICES: usize = 1 << 16;
/// Bound on bids waiting for clearing.
pub const MAX_PENDING_BIDS: usize = 4_096;
const COMMITTEE_DOMAIN: Domain = Domain::new("idlegrid/sim/marketplace/committee");

/// A client's job, as posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRequest {
    /// Client-chosen id, unique per client.
    pub job: u64,
    /// Providers wanted (one lot each).
    pub lots: u32,
    /// Most subtasks (real + traps) in one lot.
    pub max_slots_per_lot: u32,
    /// Limit price per compute-second.
    pub max_price: Amount,
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
}

/// The payload of a marketplace transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MarketTx {
    /// A provider offers `capacity` slots at `price` per compute-second.
    Offer {
        /// Price per compute-second.
        price: Amount,
        /// Parallel lots it accepts.
        capacity: u32,
        /// Stake bonded per lot (must equal the marketplace's).
        stake_per_slot: Amount,
        /// Its region.
        region: u8,
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
    /// Nothing but the clock: runs due clearings and round timeouts.
    Tick,
    /// A provider changes the price of its offer (adaptive pricing: idle
    /// providers undercut, busy ones raise).
    Reprice {
        /// New price per compute-second.
        price: Amount,
    },
    /// A registry record (register, reprice, transfer, deprecate, approve,
    /// grant), signed by the transaction's sender.
    Registry(SignedOp),
}

/// What the application reports to the node that hosts it (for light
/// clients following the ledger through that node).
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
    /// A lot's round opened (plan on the ledger, stake bonded).
    RoundOpened {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
    },
    /// A lot's outputs were revealed.
    Delivered {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
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
    /// A dispute needs votes from `committee`.
    DisputeOpened {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
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
    /// An effect could not be carried out (an invariant violation).
    EffectFailed {
        /// What failed.
        reason: String,
    },
}

/// How one lot settled.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Client bond forfeited to the provider.
    pub bond_forfeited: Amount,
    /// Traps in the lot.
    pub traps: u32,
    /// Subtasks in the lot.
    pub slots: u32,
    /// Metered usage of the lot.
    pub usage_micros: u64,
}

/// Marketplace-wide rules, identical on every node.
#[derive(Debug, Clone)]
pub struct MarketRules {
    /// Stake per provider slot (the entrapment stake).
    pub stake_per_slot: Amount,
    /// Share of a slashed stake that goes to the client.
    pub slash_to_client_bps: u16,
    /// Stage deadlines of every round.
    pub stage_deadline: Duration,
    /// Market clearing period.
    pub clearing_period: Duration,
    /// Referee committee size.
    pub committee_size: u8,
    /// Referees (validators).
    pub referees: Vec<NodeId>,
    /// Reputation book parameters.
    pub book: BookParams,
    /// Consensus seconds per reputation epoch.
    pub reputation_epoch_secs: u64,
}

/// A live round: (client, job) and lot.
type RoundKey = ((AccountId, u64), u32);

struct SlotLock {
    lock: LockId,
    busy: bool,
}

struct Provider {
    price: Amount,
    region: u8,
    slots: Vec<SlotLock>,
}

struct PendingLot {
    provider: AccountId,
    slot: usize,
    price: Amount,
    bond_lock: LockId,
}

struct LiveLot {
    provider: AccountId,
    slot: usize,
    price: Amount,
    bond_lock: LockId,
    round: idlegrid_entrap::VerificationRound,
    usage_micros: u64,
    effects: Vec<Effect>,
}

struct Job {
    req: JobRequest,
    escrow: EscrowId,
    unmatched_bonds: Vec<LockId>,
    matched: BTreeMap<u32, PendingLot>,
    live: BTreeMap<u32, LiveLot>,
    settled: u32,
    lapsed: u32,
    queued: bool,
    /// Registry jobs opened by this job's matches with goods; their owners
    /// are paid out of `escrow` when the job closes.
    goods_jobs: Vec<GoodsJobId>,
}

impl Job {
    fn done(&self) -> bool {
        !self.queued && self.settled + self.lapsed == self.req.lots
    }
}

/// The marketplace's replicated state (see the module docs).
pub struct MarketplaceApp {
    rules: MarketRules,
    mechanism: Box<dyn Mechanism>,
    providers: BTreeMap<AccountId, Provider>,
    jobs: BTreeMap<(AccountId, u64), Job>,
    /// Live rounds by their next deadline (and the reverse map), so a
    /// transaction visits only the rounds it touched or whose deadline
    /// passed, not every open round.
    wake: BTreeSet<(Timestamp, RoundKey)>,
    wake_at: BTreeMap<RoundKey, Timestamp>,
    /// Rounds the current transaction touched.
    touched: BTreeSet<RoundKey>,
    queue: Vec<(AccountId, u64)>,
    book: ReputationBook,
    registry: Registry,
    next_bid: u64,
    next_clear: Timestamp,
    record_notices: bool,
    notices: VecDeque<Notice>,
    staged: Vec<Notice>,
    dropped_notices: u64,
    effect_failures: u64,
    welfare: WelfareBenchmark,
}

/// Declared gains from trade of the mechanism's clearings against the
/// welfare-maximizing assignment of the same orders (exact min-cost flow),
/// summed over clearing periods. Recorded by the notice-recording node only
/// (a metric, not replicated state).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WelfareBenchmark {
    /// Clearing periods compared.
    pub periods: u64,
    /// Σ declared welfare (`Σ slots·(bid − ask)`) of the mechanism.
    pub mechanism: u128,
    /// Σ declared welfare of the optimal assignment, `None` once a period
    /// had too many compatible pairs for the exact solver.
    pub optimal: Option<u128>,
}

/// Largest number of compatible (ask, bid) pairs the exact welfare
/// benchmark solves per clearing.
const MAX_BENCHMARK_PAIRS: usize = 100_000;

impl std::fmt::Debug for MarketplaceApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MarketplaceApp")
            .field("providers", &self.providers.len())
            .field("jobs", &self.jobs.len())
            .finish_non_exhaustive()
    }
}

fn err(h: &LedgerHandle<'_, '_>, m: impl Into<String>) -> LedgerError {
    h.reject(m)
}

fn round_id(job: u64, lot: u32) -> RoundId {
    RoundId::new(job.wrapping_mul(MAX_LOTS as u64) + u64::from(lot))
}

/// Converts a reputation score to the market's basis points.
pub fn score_bps(s: Score) -> u16 {
    ((u128::from(s.raw()) * 10_000) >> 60).min(10_000) as u16
}

impl MarketplaceApp {
    /// A fresh marketplace. `record_notices` makes it buffer [`Notice`]s for
    /// light clients (one gateway node is enough).
    pub fn new(
        rules: MarketRules,
        mechanism: Box<dyn Mechanism>,
        record_notices: bool,
    ) -> Result<Self, idlegrid_reputation::ReputationError> {
        let book = ReputationBook::new(rules.book, idlegrid_primitives::Epoch::ZERO)?;
        Ok(Self {
            rules,
            mechanism,
            providers: BTreeMap::new(),
            jobs: BTreeMap::new(),
            wake: BTreeSet::new(),
            wake_at: BTreeMap::new(),
            touched: BTreeSet::new(),
            queue: Vec::new(),
            book,
            registry: Registry::new(RegistryLimits::default()),
            next_bid: 0,
            next_clear: Timestamp::ZERO,
            record_notices,
            notices: VecDeque::new(),
            staged: Vec::new(),
            dropped_notices: 0,
            effect_failures: 0,
            welfare: WelfareBenchmark {
                optimal: Some(0),
                ..WelfareBenchmark::default()
            },
        })
    }

    /// The mechanism's declared welfare against the optimum (recorded only
    /// by the node that records notices).
    pub fn welfare_benchmark(&self) -> WelfareBenchmark {
        self.welfare
    }

    /// Drains buffered notices.
    pub fn drain_notices(&mut self) -> Vec<Notice> {
        self.notices.drain(..).collect()
    }

    /// Notices dropped because the buffer was full.
    pub fn dropped_notices(&self) -> u64 {
        self.dropped_notices
    }

    /// Settlement effects the ledger refused (should stay zero).
    pub fn effect_failures(&self) -> u64 {
        self.effect_failures
    }

    /// The reputation book.
    pub fn book(&self) -> &ReputationBook {
        &self.book
    }

    /// A provider's reputation score (fresh identities get the book's
    /// fresh score).
    pub fn provider_score(&self, id: &AccountId) -> Score {
        self.book.score(&id.node(), RepRole::Provider)
    }

    /// A provider's credibility for the trap optimizer.
    pub fn credibility(&self, id: &AccountId) -> Score {
        self.book.credibility(&id.node())
    }

    /// The app and dataset registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Open jobs (not yet closed).
    pub fn open_jobs(&self) -> usize {
        self.jobs.len()
    }

    fn notice(&mut self, n: Notice) {
        if self.record_notices {
            self.staged.push(n);
        }
    }

    fn register(&mut self, id: &AccountId, stake: Amount) {
        if !self.book.is_registered(&id.node()) {
            // A full book only means no reputation for newcomers.
            let _ = self.book.register(id.node(), stake);
        }
    }

    fn apply_tx(&mut self, h: &mut LedgerHandle<'_, '_>, tx: MarketTx) -> Result<(), LedgerError> {
        let now = h.now();
        let me = h.sender();
        match tx {
            MarketTx::Tick => Ok(()),
            MarketTx::Reprice { price } => {
                if price.is_zero() {
                    return Err(err(h, "price must be positive"));
                }
                let Some(p) = self.providers.get_mut(&me) else {
                    return Err(err(h, "not offering: send `Offer` first"));
                };
                p.price = price;
                Ok(())
            }
            MarketTx::Offer {
                price,
                capacity,
                stake_per_slot,
                region,
            } => {
                if stake_per_slot != self.rules.stake_per_slot {
                    return Err(err(h, "stake_per_slot differs from the marketplace's"));
                }
                if capacity == 0 || capacity > 16 || price.is_zero() {
                    return Err(err(h, "capacity must be 1..=16 and price positive"));
                }
                if self.providers.contains_key(&me) {
                    return Err(err(h, "already offering"));
                }
                let mut slots = Vec::new();
                for _ in 0..capacity {
                    slots.push(SlotLock {
                        lock: h.lock_stake(stake_per_slot)?,
                        busy: false,
                    });
                }
                let stake = h.bonded(&me);
                self.register(&me, stake);
                self.providers.insert(
                    me,
                    Provider {
                        price,
                        region,
                        slots,
                    },
                );
                Ok(())
            }
            MarketTx::PostJob(req) => self.post_job(h, req),
            MarketTx::Registry(rec) => {
                if rec.signer != me {
                    return Err(err(h, "registry record signed by another account"));
                }
                self.registry
                    .apply(now, &rec)
                    .map_err(|e| h.reject(format!("registry: {e}")))
            }
            MarketTx::Plan { job, lot, plan } => self.plan(h, job, lot, plan),
            MarketTx::Deliver {
                client,
                job,
                lot,
                commitment,
                outputs,
                salt,
                usage_micros,
            } => {
                let l = self.live(h, client, job, lot)?;
                let mut round = l.round.clone();
                round
                    .commit_outputs(now, me, commitment)
                    .and_then(|()| round.reveal_outputs(now, me, outputs, salt))
                    .map_err(|e| h.reject(e.to_string()))?;
                l.round = round;
                l.usage_micros = usage_micros;
                self.notice(Notice::Delivered { client, job, lot });
                Ok(())
            }
            MarketTx::Verify {
                job,
                lot,
                reveal,
                accuse,
            } => {
                let l = self.live(h, me, job, lot)?;
                let provider = l.provider;
                let mut round = l.round.clone();
                round
                    .reveal_traps(now, me, &reveal)
                    .and_then(|()| round.accuse(now, me, &accuse))
                    .map_err(|e| h.reject(e.to_string()))?;
                l.round = round;
                if !accuse.is_empty() {
                    self.notice(Notice::Accused {
                        client: me,
                        job,
                        lot,
                        provider,
                        traps: accuse,
                    });
                }
                Ok(())
            }
            MarketTx::Accept { client, job, lot } => {
                let l = self.live(h, client, job, lot)?;
                l.round.accept(now, me).map_err(|e| h.reject(e.to_string()))
            }
            MarketTx::Dispute { client, job, lot } => {
                let committee = self.committee(client, job, lot);
                let members = committee.members().to_vec();
                let l = self.live(h, client, job, lot)?;
                l.round
                    .dispute(now, me, committee)
                    .map_err(|e| h.reject(e.to_string()))?;
                let disputed = l.round.disputed().to_vec();
                self.notice(Notice::DisputeOpened {
                    client,
                    job,
                    lot,
                    committee: members,
                    disputed,
                });
                Ok(())
            }
            MarketTx::Vote {
                client,
                job,
                lot,
                outputs,
            } => {
                let l = self.live(h, client, job, lot)?;
                let referee = me.node();
                l.round
                    .submit_vote(now, referee, RefereeVote { referee, outputs })
                    .map_err(|e| h.reject(e.to_string()))
            }
        }
    }

    fn committee(&self, client: AccountId, job: u64, lot: u32) -> Committee {
        let mut ranked: Vec<(Digest, NodeId)> = self
            .rules
            .referees
            .iter()
            .map(|r| (Digest::of(COMMITTEE_DOMAIN, &(client, job, lot, r)), *r))
            .collect();
        ranked.sort();
        let members = ranked
            .into_iter()
            .take(usize::from(self.rules.committee_size))
            .map(|(_, r)| r)
            .collect();
        Committee::from_members(members).expect("validated committee size")
    }

    fn live<'j>(
        &'j mut self,
        h: &LedgerHandle<'_, '_>,
        client: AccountId,
        job: u64,
        lot: u32,
    ) -> Result<&'j mut LiveLot, LedgerError> {
        self.touched.insert(((client, job), lot));
        self.jobs
            .get_mut(&(client, job))
            .and_then(|j| j.live.get_mut(&lot))
            .ok_or_else(|| h.reject(format!("no open round for job {job} lot {lot}")))
    }

    fn post_job(
        &mut self,
        h: &mut LedgerHandle<'_, '_>,
        req: JobRequest,
    ) -> Result<(), LedgerError> {
        let me = h.sender();
        if req.lots == 0 || req.lots > MAX_LOTS || req.max_slots_per_lot == 0 {
            return Err(err(h, "lots must be 1..=64 and max_slots_per_lot positive"));
        }
        if self.jobs.contains_key(&(me, req.job)) {
            return Err(err(h, "job id already used"));
        }
        if self.queue.len() >= MAX_PENDING_BIDS {
            return Err(err(h, "too many pending bids; retry later"));
        }
        req.goods
            .check_shape()
            .map_err(|e| h.reject(format!("job goods: {e}")))?;
        let per_lot = per_subtask_cap(req.max_price, req.cap_micros_per_subtask)
            .checked_mul(u128::from(req.max_slots_per_lot))?;
        // Owners' fees are on top of compute: at most the fee cap per lot
        // (one use per lot), fixed at match time and paid at job close.
        let fees = req
            .goods
            .max_fee_per_slot
            .checked_mul(u128::from(req.lots))?;
        let budget = per_lot
            .checked_mul(u128::from(req.lots))?
            .checked_add(fees)?;
        let deadline = h.epoch().plus(1_000_000);
        // The ledger refuses an escrow payable to its payer, and the
        // providers are not known yet: the escrow names the first referee as
        // nominal payee (a payee can only hand funds back to the payer) and
        // every payment goes out through `release_escrow_to`.
        let nominal = self
            .rules
            .referees
            .first()
            .map(|r| r.account())
            .ok_or_else(|| h.reject("no referees configured"))?;
        let escrow = h.open_escrow(&nominal, budget, deadline)?;
        let mut bonds = Vec::new();
        for _ in 0..req.lots {
            bonds.push(h.lock_stake(req.client_bond)?);
        }
        let stake = h.bonded(&me);
        self.register(&me, stake);
        self.queue.push((me, req.job));
        self.jobs.insert(
            (me, req.job),
            Job {
                req,
                escrow,
                unmatched_bonds: bonds,
                matched: BTreeMap::new(),
                live: BTreeMap::new(),
                settled: 0,
                lapsed: 0,
                queued: true,
                goods_jobs: Vec::new(),
            },
        );
        Ok(())
    }

    fn plan(
        &mut self,
        h: &mut LedgerHandle<'_, '_>,
        job: u64,
        lot: u32,
        plan: PublicPlan,
    ) -> Result<(), LedgerError> {
        let me = h.sender();
        let now = h.now();
        let rules = &self.rules;
        let j = self
            .jobs
            .get_mut(&(me, job))
            .ok_or_else(|| h.reject(format!("unknown job {job}")))?;
        let slots = plan.slots();
        if plan.job != round_id(job, lot) || slots as u64 > u64::from(j.req.max_slots_per_lot) {
            return Err(err(h, "plan names another lot or has too many subtasks"));
        }
        let Some(p) = j.matched.get(&lot) else {
            return Err(err(h, format!("lot {lot} of job {job} is not matched")));
        };
        let terms = Terms {
            job: plan.job,
            client: me,
            provider: p.provider,
            pay_per_subtask: per_subtask_cap(p.price, j.req.cap_micros_per_subtask),
            client_bond: j.req.client_bond,
            stake: rules.stake_per_slot,
            slash_to_client: Bps::new(rules.slash_to_client_bps)
                .map_err(|e| h.reject(e.to_string()))?,
            no_show_penalty: Bps::new(1_000).map_err(|e| h.reject(e.to_string()))?,
            deadlines: Deadlines::uniform(rules.stage_deadline),
            committee_size: rules.committee_size,
        };
        let mut round = idlegrid_entrap::VerificationRound::open(now, terms, plan)
            .map_err(|e| h.reject(e.to_string()))?;
        // The provider's slot lock is the round's stake bond.
        round
            .bond_stake(now, p.provider, rules.stake_per_slot)
            .map_err(|e| h.reject(e.to_string()))?;
        let p = j.matched.remove(&lot).expect("checked above");
        self.touched.insert(((me, job), lot));
        j.live.insert(
            lot,
            LiveLot {
                provider: p.provider,
                slot: p.slot,
                price: p.price,
                bond_lock: p.bond_lock,
                round,
                usage_micros: 0,
                effects: Vec::new(),
            },
        );
        self.notice(Notice::RoundOpened {
            client: me,
            job,
            lot,
        });
        Ok(())
    }

    /// Clears pending bids if a clearing period has passed.
    fn maybe_clear(&mut self, h: &mut LedgerHandle<'_, '_>) {
        let now = h.now();
        if now < self.next_clear {
            return;
        }
        self.next_clear = now + self.rules.clearing_period;
        if self.queue.is_empty() {
            return;
        }
        let slot = Resources::new(1_000, 1_024, 0, 0);
        let far = now + Duration::from_secs(1_000_000);
        let mut asks = Vec::new();
        let mut ask_owner = Vec::new();
        for (id, p) in &self.providers {
            let free = p.slots.iter().filter(|s| !s.busy).count() as u32;
            if free == 0 {
                continue;
            }
            ask_owner.push(*id);
            asks.push(Ask {
                id: OrderId::new(asks.len() as u64),
                provider: *id,
                resources: slot,
                executors: ExecutorSet::single(ExecutorKind::Simulated),
                region: Region::new(p.region),
                price: p.price,
                slots: Slots::new(free),
                window_start: Timestamp::ZERO,
                window_end: far,
            });
        }
        // Bid ids are unique over the run (a registry job is identified by
        // its (bid, ask) pair and must never repeat).
        let base = 1u64 << 32;
        let mut bids = Vec::new();
        let mut bid_key: BTreeMap<OrderId, (AccountId, u64)> = BTreeMap::new();
        for key in self.queue.iter() {
            let j = &self.jobs[key];
            let wanted = j.req.lots - j.matched.len() as u32 - j.live.len() as u32 - j.settled;
            if wanted == 0 || j.req.deadline < now {
                continue;
            }
            let id = OrderId::new(base + self.next_bid);
            self.next_bid += 1;
            bid_key.insert(id, *key);
            bids.push(Bid {
                id,
                client: key.0,
                demand: slot,
                slots: Slots::new(wanted),
                max_price: j.req.max_price,
                deadline: far,
                regions: RegionSet::ALL,
                min_reputation: Reputation::from_bps(j.req.min_reputation_bps),
                executor: ExecutorKind::Simulated,
                goods: j.req.goods.clone(),
            });
        }
        let book = &self.book;
        let rep = |id: &AccountId| {
            Reputation::from_bps(score_bps(book.score(&id.node(), RepRole::Provider)))
        };
        let ctx = ClearingContext {
            now,
            limits: Limits::default(),
            reputation: &rep,
        };
        let clearing = if asks.is_empty() || bids.is_empty() {
            None
        } else {
            // Bids whose goods cannot be used (unknown, not allowed, above
            // the fee cap) are left out and stay queued until they lapse.
            clear_with_goods(&*self.mechanism, &asks, &bids, &ctx, &self.registry)
                .ok()
                .map(|g| g.clearing)
        };
        if self.record_notices && !asks.is_empty() && !bids.is_empty() {
            // Once one period was too large for the exact solver the sum is
            // unknown for good: stop paying for the benchmark.
            let optimal = self
                .welfare
                .optimal
                .and_then(|_| OptimalAssignment::new(5_000, MAX_BENCHMARK_PAIRS).ok())
                .and_then(|m| clear_with_goods(&m, &asks, &bids, &ctx, &self.registry).ok())
                .map(|g| g.clearing.stats.welfare.get());
            let w = &mut self.welfare;
            w.periods += 1;
            w.mechanism = w
                .mechanism
                .saturating_add(clearing.as_ref().map_or(0, |c| c.stats.welfare.get()));
            w.optimal = w.optimal.zip(optimal).map(|(a, b)| a.saturating_add(b));
        }
        if let Some(c) = clearing {
            for m in c.matches {
                let key = bid_key[&m.bid];
                let provider = ask_owner[m.ask.get() as usize];
                if !m.fees.is_empty() {
                    match self.registry.open_job(now, &m) {
                        Ok(id) => self
                            .jobs
                            .get_mut(&key)
                            .expect("queued job")
                            .goods_jobs
                            .push(id),
                        Err(e) => {
                            self.effect_failures += 1;
                            self.notice(Notice::EffectFailed {
                                reason: format!("job {}: registry: {e}", key.1),
                            });
                        }
                    }
                }
                for _ in 0..m.slots.get() {
                    let prov = self
                        .providers
                        .get_mut(&provider)
                        .expect("ask from provider");
                    let Some(slot) = prov.slots.iter().position(|s| !s.busy) else {
                        break;
                    };
                    let j = self.jobs.get_mut(&key).expect("queued job");
                    let Some(bond_lock) = j.unmatched_bonds.pop() else {
                        break;
                    };
                    prov.slots[slot].busy = true;
                    let lot = j.matched.len() as u32 + j.live.len() as u32 + j.settled;
                    j.matched.insert(
                        lot,
                        PendingLot {
                            provider,
                            slot,
                            price: m.seller_price,
                            bond_lock,
                        },
                    );
                    self.staged_notice(Notice::Matched {
                        client: key.0,
                        job: key.1,
                        lot,
                        provider,
                        price: m.seller_price,
                    });
                }
            }
        }
        // Fully matched or lapsed bids leave the queue.
        let mut keep = Vec::new();
        for key in std::mem::take(&mut self.queue) {
            let j = self.jobs.get_mut(&key).expect("queued job");
            if j.unmatched_bonds.is_empty() {
                j.queued = false;
            } else if j.req.deadline < now {
                j.queued = false;
                j.lapsed = j.unmatched_bonds.len() as u32;
                for b in std::mem::take(&mut j.unmatched_bonds) {
                    if h.unlock(b).is_err() {
                        self.effect_failures += 1;
                    }
                }
                self.staged_notice(Notice::Lapsed {
                    client: key.0,
                    job: key.1,
                    lots: self.jobs[&key].lapsed,
                });
                self.close_if_done(h, key);
            } else {
                keep.push(key);
            }
        }
        self.queue = keep;
    }

    fn staged_notice(&mut self, n: Notice) {
        self.notice(n);
    }

    /// Fires due round deadlines and settles finished rounds: the rounds
    /// the transaction touched and those whose deadline passed, in key order.
    fn run_rounds(&mut self, h: &mut LedgerHandle<'_, '_>) {
        let now = h.now();
        let mut visit = std::mem::take(&mut self.touched);
        while let Some(&(t, key)) = self.wake.first() {
            if t > now {
                break;
            }
            self.wake.pop_first();
            self.wake_at.remove(&key);
            visit.insert(key);
        }
        let mut done = Vec::new();
        for (key, lot) in visit {
            if let Some(t) = self.wake_at.remove(&(key, lot)) {
                self.wake.remove(&(t, (key, lot)));
            }
            let Some(l) = self.jobs.get_mut(&key).and_then(|j| j.live.get_mut(&lot)) else {
                continue;
            };
            if l.round.stage() != Stage::Settled && l.round.poll_timeout().is_some_and(|t| t <= now)
            {
                l.round.handle_timeout(now);
            }
            while let Some(e) = l.round.poll_effect() {
                l.effects.push(e);
            }
            if l.round.stage() == Stage::Settled {
                done.push((key, lot));
            } else if let Some(t) = l.round.poll_timeout() {
                self.wake.insert((t, (key, lot)));
                self.wake_at.insert((key, lot), t);
            }
        }
        for (key, lot) in done {
            self.settle(h, key, lot);
            self.close_if_done(h, key);
        }
    }

    fn settle(&mut self, h: &mut LedgerHandle<'_, '_>, key: (AccountId, u64), lot: u32) {
        let j = self.jobs.get_mut(&key).expect("live job");
        let l = j.live.remove(&lot).expect("live lot");
        j.settled += 1;
        let escrow = j.escrow;
        let value = l.round.locked().escrow;
        if check_conservation(&l.round.locked(), &l.effects).is_err() {
            self.effect_failures += 1;
        }
        let outcome = l.round.outcome().expect("settled round has an outcome");
        let prov_lock = self.providers[&l.provider].slots[l.slot].lock;
        let mut s = Settlement {
            client: key.0,
            job: key.1,
            lot,
            provider: l.provider,
            outcome,
            paid: Amount::ZERO,
            slashed: Amount::ZERO,
            burned: Amount::ZERO,
            bond_forfeited: Amount::ZERO,
            traps: 0,
            slots: l.round.plan().slots() as u32,
            usage_micros: l.usage_micros,
        };
        s.traps = l.round.traps().len() as u32;
        let mut bond_done = false;
        let mut stake_slashed = false;
        let epoch = self.book.epoch();
        for e in &l.effects {
            let r: Result<(), LedgerError> = match e {
                Effect::PayProvider {
                    provider, amount, ..
                } => {
                    // Pay-as-you-go: price × metered usage, capped by the
                    // round's pay; the rest returns with the job remainder.
                    let metered = l
                        .price
                        .mul_ratio(u128::from(l.usage_micros), 1_000_000)
                        .unwrap_or(*amount);
                    let pay = metered.min(*amount);
                    s.paid = pay;
                    if pay.is_zero() {
                        Ok(())
                    } else {
                        h.release_escrow_to(escrow, Some(pay), provider).map(|_| ())
                    }
                }
                // Refunds stay in the job escrow until the job closes.
                Effect::RefundClient { .. } => Ok(()),
                Effect::ReturnClientBond { .. } => {
                    bond_done = true;
                    h.unlock(l.bond_lock).map(|_| ())
                }
                Effect::ForfeitClientBond {
                    provider, amount, ..
                } => {
                    bond_done = true;
                    s.bond_forfeited = *amount;
                    slash_then_unlock(h, l.bond_lock, *amount, Some(provider))
                }
                Effect::BurnClientBond { amount, .. } => {
                    bond_done = true;
                    s.burned = s.burned.saturating_add(*amount);
                    slash_then_unlock(h, l.bond_lock, *amount, None)
                }
                Effect::ReturnStake { .. } => Ok(()),
                Effect::SlashStake {
                    client,
                    to_client,
                    burned,
                    ..
                } => {
                    stake_slashed = true;
                    s.slashed = to_client.saturating_add(*burned);
                    s.burned = s.burned.saturating_add(*burned);
                    let a = if to_client.is_zero() {
                        Ok(())
                    } else {
                        h.slash_lock(prov_lock, *to_client, Some(client))
                            .map(|_| ())
                    };
                    a.and_then(|()| {
                        if burned.is_zero() {
                            Ok(())
                        } else {
                            h.slash_lock(prov_lock, *burned, None).map(|_| ())
                        }
                    })
                }
                Effect::Reputation {
                    subject,
                    role: _,
                    feedback,
                    job,
                } => {
                    let (outcome, reporter) = match feedback {
                        TrapFeedback::Delivered => (RepOutcome::Delivered, key.0),
                        TrapFeedback::CaughtCheating => (RepOutcome::CaughtCheating, key.0),
                        TrapFeedback::NoShow | TrapFeedback::Defaulted => {
                            (RepOutcome::TimedOut, key.0)
                        }
                        TrapFeedback::HonestTraps => (RepOutcome::Paid, l.provider),
                        TrapFeedback::Framed => (RepOutcome::FramedProvider, l.provider),
                        TrapFeedback::Unresponsive => (RepOutcome::DidNotPay, l.provider),
                    };
                    let fb = RepFeedback {
                        reporter: reporter.node(),
                        subject: subject.node(),
                        outcome,
                        job: RepJobId(Digest::of(COMMITTEE_DOMAIN, &job.get())),
                        value: value.max(Amount::new(1)),
                        epoch,
                    };
                    // Rejected feedback (quota, window) only loses a signal.
                    let _ = self.book.apply_feedback(&fb);
                    Ok(())
                }
            };
            if let Err(e) = r {
                self.effect_failures += 1;
                self.notice(Notice::EffectFailed {
                    reason: format!("job {} lot {lot}: {e}", key.1),
                });
            }
        }
        if !bond_done {
            let _ = h.unlock(l.bond_lock);
        }
        // A slashed slot leaves the market (the provider must re-offer);
        // an intact one is free again.
        let prov = self.providers.get_mut(&l.provider).expect("provider");
        if stake_slashed {
            // What is left of the lock returns to the provider's free stake;
            // the slot stays busy forever (the provider must re-offer).
            if h.lock(prov_lock).is_some() && h.unlock(prov_lock).is_err() {
                self.effect_failures += 1;
            }
        } else {
            prov.slots[l.slot].busy = false;
        }
        self.notice(Notice::Settled(s));
    }

    fn close_if_done(&mut self, h: &mut LedgerHandle<'_, '_>, key: (AccountId, u64)) {
        if !self.jobs.get(&key).is_some_and(Job::done) {
            return;
        }
        let j = self.jobs.remove(&key).expect("checked");
        // Owners of the job's app and datasets: exactly their price per use
        // (fixed at match time) × matched slots, out of the job's escrow.
        for id in &j.goods_jobs {
            let Some(matched) = self.registry.job(id).map(|o| o.matched.clone()) else {
                continue;
            };
            if let Err(e) = self.pay_owners(h, j.escrow, id, &matched) {
                self.effect_failures += 1;
                self.notice(Notice::EffectFailed {
                    reason: format!("job {}: owner fees: {e}", key.1),
                });
            }
        }
        let refunded = match h.escrow(j.escrow) {
            Some(e) if !e.remaining.is_zero() => {
                match h.release_escrow_to(j.escrow, None, &key.0) {
                    Ok(a) => a,
                    Err(_) => {
                        self.effect_failures += 1;
                        Amount::ZERO
                    }
                }
            }
            _ => Amount::ZERO,
        };
        self.notice(Notice::JobClosed {
            client: key.0,
            job: key.1,
            refunded,
        });
    }

    /// Settles registry job `id` (compute is paid per lot by the rounds, so
    /// the registry's split runs for zero seconds: owners' fees only) and
    /// pays each owner out of `escrow`.
    fn pay_owners(
        &mut self,
        h: &mut LedgerHandle<'_, '_>,
        escrow: EscrowId,
        id: &GoodsJobId,
        matched: &Match,
    ) -> Result<(), String> {
        let payout = self.registry.settle(id, 0).map_err(|e| e.to_string())?;
        check_payout(matched, 0, &payout).map_err(|e| e.to_string())?;
        for (owner, amount) in &payout.owners {
            if !amount.is_zero() {
                h.release_escrow_to(escrow, Some(*amount), owner)
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// Providers currently offering, with their free slots.
    pub fn offering(&self) -> impl Iterator<Item = (&AccountId, usize)> {
        self.providers
            .iter()
            .map(|(id, p)| (id, p.slots.iter().filter(|s| !s.busy).count()))
    }

    fn advance_reputation(&mut self, now: Timestamp) {
        let secs = self.rules.reputation_epoch_secs.max(1);
        let e = idlegrid_primitives::Epoch::new(now.as_micros() / 1_000_000 / secs);
        if e > self.book.epoch() {
            let _ = self.book.advance_to(e);
        }
    }
}

fn per_subtask_cap(price: Amount, cap_micros: u64) -> Amount {
    price
        .mul_ratio(u128::from(cap_micros), 1_000_000)
        .unwrap_or(Amount::ZERO)
        .max(Amount::new(1))
}

fn slash_then_unlock(
    h: &mut LedgerHandle<'_, '_>,
    lock: LockId,
    amount: Amount,
    to: Option<&AccountId>,
) -> Result<(), LedgerError> {
    if !amount.is_zero() {
        h.slash_lock(lock, amount, to)?;
    }
    if h.lock(lock).is_some() {
        h.unlock(lock)?;
    }
    Ok(())
}

impl Application for MarketplaceApp {
    fn apply(
        &mut self,
        ledger: &mut LedgerHandle<'_, '_>,
        payload: &[u8],
    ) -> Result<Vec<u8>, LedgerError> {
        let tx: MarketTx = decode(
            payload,
            idlegrid_dag_ledger::ledger::limits::MAX_APP_PAYLOAD as usize,
        )
        .map_err(|e| ledger.reject(format!("malformed marketplace payload: {e}")))?;
        self.staged.clear();
        self.advance_reputation(ledger.now());
        // The transaction first: if it is rejected the ledger rolls back its
        // operations, and it leaves the application state untouched too.
        // Housekeeping (clearing, round deadlines, settlement) runs only
        // after an accepted transaction and never fails as a whole: each
        // ledger operation is atomic on its own, and a refused one is
        // counted in `effect_failures` (an invariant the simulator checks).
        let r = self.apply_tx(ledger, tx);
        if r.is_ok() {
            self.maybe_clear(ledger);
            self.run_rounds(ledger);
        }
        match r {
            Ok(()) => {
                for n in self.staged.drain(..) {
                    if self.notices.len() >= MAX_NOTICES {
                        self.notices.pop_front();
                        self.dropped_notices += 1;
                    }
                    self.notices.push_back(n);
                }
                Ok(Vec::new())
            }
            Err(e) => {
                self.staged.clear();
                self.touched.clear();
                Err(e)
            }
        }
    }
}

/// The node's application registry: the marketplace under
/// [`MARKETPLACE_APP`].
#[derive(Debug)]
pub struct Apps {
    /// The marketplace.
    pub market: MarketplaceApp,
}

impl ApplicationRegistry for Apps {
    fn get_mut(&mut self, id: AppId) -> Option<&mut dyn Application> {
        (id == MARKETPLACE_APP).then_some(&mut self.market as &mut dyn Application)
    }
}
