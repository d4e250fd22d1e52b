//! The marketplace [`Application`]: market, entrapment and reputation
//! transactions applied inside the replicated ledger.
//!
//! One application (id [`MARKETPLACE_APP`]) carries all three
//! sub-protocols because the ledger scopes escrows and collateral locks to
//! the application that opened them: the escrow a job's bid opens must be
//! released by the application that settles the job's entrapment rounds.
//! Funds move only through the ledger's handles: escrow opened by the
//! client at bid time, stake locked by the provider at offer time and by
//! the client for its bonds, releases, unlocks and slashes at settlement.
//!
//! The application is split by concept:
//!
//! | module | owns |
//! |---|---|
//! | [`tx`] | the wire vocabulary: payloads, notices, settlements, rules |
//! | `orders` | offers, sealed asks and bids, their reveals (escrow and bonds) |
//! | [`sealed`] | the commit–reveal rule: batches, commitments, reveal windows |
//! | [`sealing`] | the light side: sealing prices and revealing them on time |
//! | `clearing` | closing a sealed batch: forfeits, then clearing its revealed orders |
//! | `rounds` | verification rounds: plan, deliver, verify, accept, deadlines |
//! | `invariants` | lots and slots accounted for ([`MarketplaceApp::check_lots`]) |
//! | [`referees`] | disputes: VRF ticket windows, committees, escalation, fees |
//! | `settlement` | the one router from round effects to ledger operations and reputation |
//!
//! Flow of one job (each step is a transaction ordered by consensus):
//!
//! 1. `Offer` (provider): locks `capacity` slot locks of `stake_per_slot`;
//!    no price.
//! 2. Sealed orders, batch `b` (one clearing period of consensus time):
//!    each provider with free slots sends `SealAsk` (a salted commitment to
//!    its price, plus a bond); a client's `PostJob` carries a commitment to
//!    its limit price instead of the price, locks one client bond per lot
//!    and a sealing bond.
//! 3. Once `b` closed for commits ([`Notice::SealingClosed`]), within its
//!    reveal window (`reveal_batches`, stretched to `reveal_commits`
//!    commits over a consensus stall): `RevealAsk` / `RevealBid` open the
//!    commitments; a job's first reveal escrows its budget at that price.
//! 4. Clearing, in the ledger's end-of-batch hook when `b`'s reveal window
//!    is over: unrevealed bonds are burned ([`Notice::BondForfeited`]),
//!    revealed ones returned, and only the orders revealed for `b` are
//!    cleared with the configured [`Mechanism`], filtered by provider
//!    reputation. Each matched slot is a *lot*. A bid with unfilled lots
//!    may be re-sealed (`SealBid`) in a later batch until its deadline.
//! 5. `Plan` (client): the lot's [`PublicPlan`](idlegrid_entrap::PublicPlan);
//!    opens a verification round and bonds the provider's slot lock. A lot
//!    not planned within [`PLAN_STAGES`] stage deadlines of its match
//!    lapses ([`Notice::Unplanned`]): the provider's slot is free again and
//!    the client's lot bond is burned.
//! 6. `Deliver` (provider): output commitment, outputs, metered usage.
//! 7. `Verify` (client): trap reveal and accusations.
//! 8. `Accept` / `Dispute` (provider); a dispute opens a ticket window,
//!    referees send VRF `Ticket`s, the lowest seats vote (`Vote`), an
//!    undecided committee escalates ([`referees`]).
//! 9. Settlement (end of the batch that finished the round, or that passed
//!    its deadline): the round's effects pay (price × metered usage, capped
//!    by the round's pay), refund, slash and feed reputation.
//! 10. Job close: owners of the job's app and datasets are paid their
//!     price per use × matched slots, then the remainder is refunded.
//!
//! **Forfeited sealing bonds are burned**, never paid to anyone: whoever
//! received them (validators, gateways, counterparties) could earn them by
//! censoring or delaying reveals. An unplanned lot's bond is burned for the
//! same reason: paid to the provider, it would reward a provider whose
//! allies withhold the match from the client. Burning keeps supply conserved in the
//! ledger's sense (`total = initial − burned`, checked by `check_all`).
//!
//! **Deadlines granted to a party** — a round's stages, a matched lot's
//! plan, a referee ticket window — are measured in live time ([`clock`]):
//! consensus time with stalls taken out, so a partition without quorum
//! does not pass a deadline that a transaction waiting in a mempool would
//! have met. A job's bidding deadline (the client's own absolute time) and
//! the sealed batches stay in consensus time.
//!
//! **Time-driven work** — clearing, round deadlines, settlement, reputation
//! epochs — runs in [`Application::end_batch`] after every committed batch:
//! no keeper account and no tick transactions. Only replicated state lives
//! here; metrics leave as [`Notice`]s (e.g. [`Notice::Cleared`] carries a
//! clearing's inputs for a welfare benchmark run by an observer).

mod clearing;
pub mod clock;
mod error;
mod invariants;
mod orders;
pub mod referees;
mod rounds;
pub mod sealed;
pub mod sealing;
mod settlement;
pub mod snapshot;
pub mod tx;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use idlegrid_dag_ledger::ledger::{
    AppId, Application, ApplicationRegistry, EscrowId, LedgerError, LedgerHandle, LockId,
    ManagedHandle,
};
use idlegrid_entrap::{Effect, JobId as RoundId};
use idlegrid_market::Mechanism;
use idlegrid_market::registry::{JobId as GoodsJobId, Registry, RegistryLimits};
use idlegrid_primitives::{AccountId, Amount, CowMap, Epoch, SignatureVerifier, Timestamp, decode};
use idlegrid_reputation::{ReputationBook, Role as RepRole, Score, TrustVector};
use sealed::{SealedBook, batch_of};
use serde::{Deserialize, Serialize};

pub use clock::{LiveClock, STALL_STEP};
pub use error::{FeatureRefusal, MarketError, RegistryRefusal, RoundError, Unservable};
pub use orders::MAX_CAPACITY;
pub use sealed::{BatchNo, OrderKey, SealError, seal_price, unsealed};
pub use snapshot::{APP_STATE_DOMAIN, AppSnapshotError};
pub use tx::{
    ClearingRecord, Environment, JobRequest, MarketParams, MarketRules, MarketTx, NextAsk, Notice,
    Settlement, TrustGate,
};

/// The marketplace payload of a ledger transaction kind, if it is one.
pub fn decode_market(kind: &idlegrid_dag_ledger::ledger::TxKind) -> Option<MarketTx> {
    match kind {
        idlegrid_dag_ledger::ledger::TxKind::App { app_id, payload }
            if *app_id == MARKETPLACE_APP =>
        {
            idlegrid_primitives::decode(payload, payload.len()).ok()
        }
        _ => None,
    }
}

/// The marketplace's application id.
pub const MARKETPLACE_APP: AppId = AppId::new(1);
/// Most lots (providers) one job may be spread over.
pub const MAX_LOTS: u32 = 64;
/// Bound on jobs still bidding (sealed, revealed or unfilled), all clients
/// together: a backstop on the replicated state's size, far above what a
/// market of 10 000 clients posting a job every 8 s keeps bidding (`huge`:
/// up to about 5 000). One client cannot fill it: each bidding job holds a
/// stake lock per lot (its client bonds, besides the sealing bond), and the
/// ledger caps an account's locks (`Params::max_locks_per_account`, 256 by
/// default), so an account has at most that many jobs bidding.
pub const MAX_PENDING_BIDS: usize = 1 << 18;

/// Stage deadlines a matched lot waits for its client's plan: one like
/// every stage of its round, and one more for a client whose match reached
/// it late (a gateway that withheld it, a transaction sent again after its
/// patience). Past it the lot lapses ([`Notice::Unplanned`]): without a
/// deadline a client that never plans would hold the provider's slot and
/// the job's escrow forever.
pub const PLAN_STAGES: u32 = 2;

/// A live round: (client, job) and lot.
type RoundKey = ((AccountId, u64), u32);

#[derive(Clone, Serialize, Deserialize)]
struct SlotLock {
    lock: LockId,
    busy: bool,
}

#[derive(Clone, Serialize, Deserialize)]
struct Provider {
    region: u8,
    environment: Environment,
    slots: Vec<SlotLock>,
    /// Trap-carrying lots of this provider that settled clean since it was
    /// last slashed (every client's: the history the lifetime trap mode
    /// discounts by, reported with each match).
    verified_lots: u32,
}

#[derive(Clone, Serialize, Deserialize)]
struct PendingLot {
    provider: AccountId,
    slot: usize,
    price: Amount,
    bond_lock: LockId,
    /// Unplanned by then, the lot lapses (see [`PLAN_STAGES`]).
    plan_by: Timestamp,
}

#[derive(Clone, Serialize, Deserialize)]
struct LiveLot {
    provider: AccountId,
    slot: usize,
    price: Amount,
    bond_lock: LockId,
    round: idlegrid_entrap::VerificationRound,
    usage_micros: u64,
    effects: Vec<Effect>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Job {
    req: JobRequest,
    /// Opened by the first reveal of the job's bid, sized at that price.
    escrow: Option<EscrowId>,
    /// The first revealed limit price (what the escrow covers).
    limit: Option<Amount>,
    /// Bid attempts sealed so far (the next one's number).
    attempts: u32,
    /// A bid attempt is sealed and not yet closed.
    sealed: bool,
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
#[derive(Clone)]
pub struct MarketplaceApp {
    rules: MarketRules,
    params: MarketParams,
    /// Stateless: shared by the copies of this state.
    mechanism: std::sync::Arc<dyn Mechanism>,
    /// Providers and jobs are shared shard by shard with copies of the
    /// state (see [`CowMap`]): they are most of it, and a batch writes few.
    providers: CowMap<AccountId, Provider>,
    jobs: CowMap<(AccountId, u64), Job>,
    /// Live rounds by their next deadline (and the reverse map), so a
    /// batch visits only the rounds it touched or whose deadline passed,
    /// not every open round.
    wake: BTreeSet<(Timestamp, RoundKey)>,
    wake_at: CowMap<RoundKey, Timestamp>,
    /// Rounds the current batch's accepted transactions touched.
    touched: BTreeSet<RoundKey>,
    /// Rounds the transaction being applied touched (kept only if it is
    /// accepted).
    touching: Vec<RoundKey>,
    /// Open disputes' referee state, and their ticket windows by close.
    disputes: BTreeMap<RoundKey, referees::Dispute>,
    windows: BTreeSet<(Timestamp, RoundKey)>,
    /// Jobs still bidding (sealed, revealed or unfilled), for the bound.
    bidding: usize,
    /// Jobs whose revealed bid left lots unfilled, waiting for a re-seal.
    unfilled: BTreeSet<(AccountId, u64)>,
    sealed: SealedBook,
    /// The current batch (never regresses, even if consensus time does).
    batch: BatchNo,
    /// Batches before this one were announced closed for commits.
    announced: BatchNo,
    /// What round, plan and ticket deadlines are measured in
    /// ([`clock`]: consensus time with stalls taken out).
    clock: LiveClock,
    /// Behind its own `Arc`: a copy of the state (one per commit that
    /// validators share, see `StateSharing`) shares the book until a commit
    /// writes to it (feedback, a registration, a new epoch), and most
    /// commits do not. It grows with every feedback, so copying it whole
    /// was the largest part of copying the state.
    book: Arc<ReputationBook>,
    /// Global trust computed at the start of the current reputation epoch
    /// (with [`MarketRules::global_trust`] only; `None` before the first
    /// epoch change or if the book has no stake to anchor on).
    trust: Option<TrustVector>,
    registry: Registry,
    next_bid: u64,
    emit_notices: bool,
    /// The typed reason of the transaction being rejected, reported even
    /// though its staged notices are dropped.
    rejection: Option<Notice>,
    /// The notices of the batch being applied, or of the last one until
    /// the host drains them: one batch's, so bounded by what a batch can
    /// produce (its transactions, and the end-of-batch work over bounded
    /// state). Never cut short: the facts light nodes act on are built
    /// from them.
    notices: Vec<Notice>,
    /// `notices` belong to a finished batch.
    notices_done: bool,
    staged: Vec<Notice>,
    dropped_notices: u64,
    effect_failures: u64,
    /// Checks referee tickets' VRF proofs (not replicated state: a
    /// capability of the node, see `MarketplaceApp::set_proof_verifier`).
    proofs: SignatureVerifier,
}

impl std::fmt::Debug for MarketplaceApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MarketplaceApp")
            .field("providers", &self.providers.len())
            .field("jobs", &self.jobs.len())
            .finish_non_exhaustive()
    }
}

use error::reject;

/// The entrapment round id of a job's lot.
pub fn round_id(job: u64, lot: u32) -> RoundId {
    RoundId::new(job.wrapping_mul(u64::from(MAX_LOTS)) + u64::from(lot))
}

/// Converts a reputation score to the market's basis points.
pub fn score_bps(s: Score) -> u16 {
    ((u128::from(s.raw()) * 10_000) >> 60).min(10_000) as u16
}

impl MarketplaceApp {
    /// A fresh marketplace. `emit_notices` makes it buffer [`Notice`]s
    /// (the ledger facts light nodes follow, and observer records) for
    /// [`MarketplaceApp::drain_notices`]; replicated state is the same
    /// either way.
    pub fn new(
        rules: MarketRules,
        mechanism: Box<dyn Mechanism>,
        emit_notices: bool,
    ) -> Result<Self, idlegrid_reputation::ReputationError> {
        let book = ReputationBook::new(rules.book, Epoch::ZERO)?;
        if let Some(gate) = &rules.global_trust {
            gate.validate()?;
        }
        Ok(Self {
            sealed: SealedBook::new(
                MarketParams::DEFAULT.reveal_batches,
                MarketParams::DEFAULT.reveal_commits,
            ),
            params: MarketParams::DEFAULT,
            rules,
            mechanism: mechanism.into(),
            providers: CowMap::new(),
            jobs: CowMap::new(),
            wake: BTreeSet::new(),
            wake_at: CowMap::new(),
            touched: BTreeSet::new(),
            touching: Vec::new(),
            disputes: BTreeMap::new(),
            windows: BTreeSet::new(),
            bidding: 0,
            unfilled: BTreeSet::new(),
            batch: BatchNo(0),
            announced: BatchNo(0),
            clock: LiveClock::default(),
            book: Arc::new(book),
            trust: None,
            registry: Registry::new(RegistryLimits::default()),
            next_bid: 0,
            emit_notices,
            rejection: None,
            notices: Vec::new(),
            notices_done: false,
            staged: Vec::new(),
            dropped_notices: 0,
            effect_failures: 0,
            proofs: SignatureVerifier::plain(),
        })
    }

    /// Checks referee tickets' VRF proofs through `proofs` (plain by
    /// default): the simulator gives its validators one memoizing verifier,
    /// so each ticket's proof is checked once per run instead of twice per
    /// validator (on admission and at the draw). Every proof is checked
    /// either way (see [`SignatureVerifier::vrf_verify`]).
    pub(crate) fn set_proof_verifier(&mut self, proofs: SignatureVerifier) {
        self.proofs = proofs;
    }

    /// The verifier of referee tickets' proofs.
    pub(crate) fn proof_verifier(&self) -> &SignatureVerifier {
        &self.proofs
    }

    /// The marketplace rules.
    pub fn rules(&self) -> &MarketRules {
        &self.rules
    }

    /// The clearing mechanism's name.
    pub(crate) fn mechanism_name(&self) -> &'static str {
        self.mechanism.name()
    }

    /// Drains the notices of the last batch applied (and of the one being
    /// applied, if called inside it). A host drains them after every
    /// batch: those of a finished batch still there when the next begins
    /// are discarded and counted ([`MarketplaceApp::dropped_notices`]).
    pub fn drain_notices(&mut self) -> Vec<Notice> {
        self.notices_done = false;
        std::mem::take(&mut self.notices)
    }

    /// Notices discarded because no host drained them before the next
    /// batch began (zero in the reference node, which drains every batch).
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

    /// A provider's reputation score as the market's filter sees it
    /// (fresh identities get the book's fresh score; with
    /// [`MarketRules::global_trust`], so do identities below the gate).
    pub fn provider_score(&self, id: &AccountId) -> Score {
        match self.trust_gate() {
            Some((trust, min)) => {
                self.book
                    .score_gated_at(&id.node(), RepRole::Provider, trust, min)
            }
            None => self.book.score(&id.node(), RepRole::Provider),
        }
    }

    /// This epoch's trust vector and the gate's share, when the rules
    /// gate by global trust and a vector has been computed.
    fn trust_gate(&self) -> Option<(&TrustVector, u32)> {
        let gate = self.rules.global_trust.as_ref()?;
        Some((self.trust.as_ref()?, gate.min_bps_of_mean))
    }

    /// A provider's credibility for the trap optimizer, gated by global
    /// trust like [`MarketplaceApp::provider_score`]: a record only
    /// untrusted identities vouch for buys no fewer traps.
    pub fn credibility(&self, id: &AccountId) -> Score {
        match self.trust_gate() {
            Some((trust, min)) => self.book.credibility_gated_at(&id.node(), trust, min),
            None => self.book.credibility(&id.node()),
        }
    }

    /// The provider's trap-carrying lots that settled clean since it was
    /// last slashed, over every client (what a match reports to the
    /// client's lifetime trap mode); 0 for an unknown provider.
    pub fn verified_lots(&self, id: &AccountId) -> u32 {
        self.providers.get(id).map_or(0, |p| p.verified_lots)
    }

    /// [`MarketplaceApp::credibility`] in parts per million (what a match
    /// reports to the client).
    pub fn credibility_ppm(&self, id: &AccountId) -> u32 {
        let raw = u128::from(self.credibility(id).raw());
        ((raw * 1_000_000) >> idlegrid_reputation::SCORE_BITS) as u32
    }

    /// The app and dataset registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Open jobs (not yet closed).
    pub fn open_jobs(&self) -> usize {
        self.jobs.len()
    }

    /// The application with sealing parameters `params` instead of
    /// [`MarketParams::DEFAULT`] (before any transaction: every validator
    /// must run the same).
    pub fn with_params(mut self, params: MarketParams) -> Self {
        assert!(
            self.sealed.is_empty() && self.jobs.is_empty(),
            "parameters are set before the first transaction"
        );
        self.sealed = SealedBook::new(params.reveal_batches, params.reveal_commits);
        self.params = params;
        self
    }

    /// Its sealing parameters.
    pub fn params(&self) -> &MarketParams {
        &self.params
    }

    /// The sealed orders' book: commitments and batches, never a price
    /// before its reveal.
    pub fn sealed(&self) -> &SealedBook {
        &self.sealed
    }

    /// The current batch.
    pub fn batch(&self) -> BatchNo {
        self.batch
    }

    /// A provider's free slots (0 if it is not offering).
    pub fn free_slots(&self, id: &AccountId) -> usize {
        self.providers
            .get(id)
            .map_or(0, |p| p.slots.iter().filter(|s| !s.busy).count())
    }

    /// Providers currently offering, with their free slots.
    pub fn offering(&self) -> impl Iterator<Item = (&AccountId, usize)> {
        self.providers
            .iter()
            .map(|(id, p)| (id, p.slots.iter().filter(|s| !s.busy).count()))
    }

    fn notice(&mut self, n: Notice) {
        if self.emit_notices {
            self.staged.push(n);
        }
    }

    /// Moves staged notices to the batch's notices.
    fn publish_staged(&mut self) {
        self.notices.append(&mut self.staged);
    }

    /// A batch's work is done: its notices wait for the host.
    fn finish_batch_notices(&mut self) {
        self.publish_staged();
        self.notices_done = true;
    }

    /// A batch's work begins: the notices of an earlier batch nobody
    /// drained are discarded (counted), so the buffer holds one batch's.
    fn begin_batch_notices(&mut self) {
        if self.notices_done {
            self.dropped_notices += self.notices.len() as u64;
            self.notices.clear();
            self.notices_done = false;
        }
    }

    /// Counts an effect the ledger refused and reports it.
    fn effect_failed(&mut self, reason: String) {
        self.effect_failures += 1;
        self.notice(Notice::EffectFailed { reason });
    }

    fn register(&mut self, id: &AccountId, stake: Amount) {
        if !self.book.is_registered(&id.node()) {
            // A full book only means no reputation for newcomers.
            let _ = Arc::make_mut(&mut self.book).register(id.node(), stake);
        }
    }

    fn apply_tx(&mut self, h: &mut LedgerHandle<'_, '_>, tx: MarketTx) -> Result<(), LedgerError> {
        match tx {
            MarketTx::Offer {
                capacity,
                stake_per_slot,
                region,
                environment,
            } => self.offer(h, capacity, stake_per_slot, region, environment),
            MarketTx::SealAsk { seq, commitment } => {
                self.seal(h, OrderKey::Ask { seq }, commitment)
            }
            MarketTx::RevealAsk {
                seq,
                price,
                salt,
                next,
            } => self.reveal_ask(h, (seq, price, &salt), next),
            MarketTx::PostJob(req) => self.post_job(h, req),
            MarketTx::SealBid {
                job,
                attempt,
                commitment,
            } => self.reseal_bid(h, job, attempt, commitment),
            MarketTx::RevealBid {
                job,
                attempt,
                price,
                salt,
            } => self.reveal_bid(h, (job, attempt), price, &salt),
            MarketTx::Registry(rec) => {
                if rec.signer != h.sender() {
                    return Err(reject(h, MarketError::RegistrySigner));
                }
                self.registry
                    .apply(h.now(), &rec)
                    .map_err(|e| reject(h, MarketError::Registry((&e).into())))
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
            } => self.deliver(
                h,
                (client, job, lot),
                commitment,
                outputs,
                salt,
                usage_micros,
            ),
            MarketTx::Verify {
                job,
                lot,
                reveal,
                accuse,
            } => self.verify(h, job, lot, &reveal, accuse),
            MarketTx::Accept { client, job, lot } => self.accept(h, (client, job, lot)),
            MarketTx::Dispute { client, job, lot } => self.dispute(h, (client, job, lot)),
            MarketTx::Ticket {
                client,
                job,
                lot,
                ticket,
            } => self.ticket(h, (client, job, lot), ticket),
            MarketTx::Vote {
                client,
                job,
                lot,
                outputs,
            } => self.vote(h, (client, job, lot), outputs),
        }
    }

    /// The current batch's live time ([`clock`]): what every deadline
    /// granted to a party is measured in.
    fn live_now(&self, h: &ManagedHandle<'_, '_>) -> Timestamp {
        self.clock.at(h.now())
    }

    /// Live time after the last committed batch ([`clock`]).
    pub fn live_clock(&self) -> &LiveClock {
        &self.clock
    }

    /// Moves the current batch to consensus time `now` (never backwards).
    fn advance_batch(&mut self, now: Timestamp) {
        self.batch = self.batch.max(batch_of(now, self.rules.clearing_period));
    }

    fn advance_reputation(&mut self, now: Timestamp) {
        let secs = self.rules.reputation_epoch_secs.max(1);
        let e = Epoch::new(now.as_micros() / 1_000_000 / secs);
        if e > self.book.epoch() {
            let _ = Arc::make_mut(&mut self.book).advance_to(e);
            if let Some(gate) = &self.rules.global_trust {
                // Only an empty or stakeless book has no anchor: then no
                // one is gated until an epoch that has one.
                self.trust = self.book.global_trust(&[], &gate.params).ok();
            }
        }
    }

    /// The global trust vector of the current epoch, if the rules use one.
    pub fn global_trust(&self) -> Option<&TrustVector> {
        self.trust.as_ref()
    }
}

impl Application for MarketplaceApp {
    fn apply(
        &mut self,
        ledger: &mut LedgerHandle<'_, '_>,
        payload: &[u8],
    ) -> Result<Vec<u8>, LedgerError> {
        self.begin_batch_notices();
        let tx: MarketTx = decode(
            payload,
            idlegrid_dag_ledger::ledger::limits::MAX_APP_PAYLOAD as usize,
        )
        .map_err(|_| reject(ledger, MarketError::Malformed))?;
        self.staged.clear();
        self.rejection = None;
        self.advance_reputation(ledger.now());
        self.advance_batch(ledger.now());
        // A rejected transaction rolls back its ledger operations; it must
        // leave the application's state (and its touched rounds) as it was.
        self.touching.clear();
        match self.apply_tx(ledger, tx) {
            Ok(()) => {
                self.touched.extend(self.touching.drain(..));
                self.publish_staged();
                Ok(Vec::new())
            }
            Err(e) => {
                self.staged.clear();
                self.touching.clear();
                if let Some(n) = self.rejection.take() {
                    self.notice(n);
                    self.publish_staged();
                }
                Err(e)
            }
        }
    }

    /// Clearing, round deadlines and settlement. Never fails as a whole:
    /// each ledger operation is atomic on its own, and a refused one is
    /// counted in [`MarketplaceApp::effect_failures`] (an invariant the
    /// simulator checks).
    fn end_batch(&mut self, ledger: &mut ManagedHandle<'_, '_>) {
        self.begin_batch_notices();
        self.staged.clear();
        self.advance_reputation(ledger.now());
        self.advance_batch(ledger.now());
        self.close_batches(ledger);
        self.close_windows(ledger);
        self.run_rounds(ledger);
        self.clock.record(ledger.now());
        self.finish_batch_notices();
    }
}

/// The node's application registry: the marketplace under
/// [`MARKETPLACE_APP`].
#[derive(Debug, Clone)]
pub struct Apps {
    /// The marketplace.
    pub market: MarketplaceApp,
}

impl ApplicationRegistry for Apps {
    fn get_mut(&mut self, id: AppId) -> Option<&mut dyn Application> {
        (id == MARKETPLACE_APP).then_some(&mut self.market as &mut dyn Application)
    }

    fn app_ids(&self) -> Vec<AppId> {
        vec![MARKETPLACE_APP]
    }
}

/// Rules for unit tests: small stakes, 5 s stages, 1 s clearing, three
/// referees' seats, with `gate` as global trust.
#[cfg(test)]
pub(crate) fn test_rules(gate: Option<TrustGate>) -> MarketRules {
    MarketRules {
        stake_per_slot: Amount::new(100),
        slash_to_client_bps: 5_000,
        stage_deadline: idlegrid_primitives::Duration::from_secs(5),
        clearing_period: idlegrid_primitives::Duration::from_secs(1),
        committee_size: 3,
        referees: Vec::new(),
        book: idlegrid_reputation::BookParams::default(),
        reputation_epoch_secs: 10,
        global_trust: gate,
    }
}

#[cfg(test)]
mod notice_tests {
    use super::*;
    use idlegrid_market::GreedyAssignment;
    use idlegrid_primitives::{Keypair, Seed};

    fn app() -> MarketplaceApp {
        MarketplaceApp::new(
            test_rules(None),
            Box::new(GreedyAssignment::midpoint()),
            true,
        )
        .unwrap()
    }

    fn lapsed(job: u64) -> Notice {
        Notice::Lapsed {
            client: Keypair::from_seed(&Seed::from_u64(1)).account_id(),
            job,
            lots: 1,
        }
    }

    /// The facts light nodes act on are built from one batch's notices:
    /// however many one batch has, every one reaches the host. (A bound of
    /// 65 536 that dropped the oldest lost the `RoundOpened` and
    /// `Delivered` facts of whole commits in `huge`, and honest providers
    /// were slashed for plans they never heard of.)
    #[test]
    fn every_notice_of_a_batch_reaches_the_host() {
        let mut app = app();
        for job in 0..100_000 {
            app.notice(lapsed(job));
            app.publish_staged();
        }
        app.finish_batch_notices();
        let got = app.drain_notices();
        assert_eq!(got.len(), 100_000);
        assert_eq!(got[0], lapsed(0));
        assert_eq!(app.dropped_notices(), 0);
    }

    /// A host that does not drain a batch's notices loses them when the
    /// next batch begins, counted: the buffer holds one batch's notices.
    #[test]
    fn notices_left_undrained_are_discarded_and_counted_at_the_next_batch() {
        let mut app = app();
        app.notice(lapsed(1));
        app.notice(lapsed(2));
        app.finish_batch_notices();
        // Drained inside the next batch's work only after it began.
        app.begin_batch_notices();
        assert_eq!(app.dropped_notices(), 2);
        app.notice(lapsed(3));
        app.finish_batch_notices();
        assert_eq!(app.drain_notices(), vec![lapsed(3)]);
        // Drained in time, nothing more is lost.
        app.begin_batch_notices();
        assert_eq!(app.dropped_notices(), 2);
    }
}
