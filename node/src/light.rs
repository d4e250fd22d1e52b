//! What every light node (provider, client) shares: its key, its
//! subscriptions, the fact quorum, and an outbox that signs transactions,
//! submits them through a gateway validator, fails over to the next one
//! when a transaction is not confirmed in time, and re-signs the rest of
//! the sequence when the ledger rejects one.
//!
//! ## Fact sources
//!
//! A light node needs identical reports from validators holding f + 1 of
//! the stake, not from all of them. With [`LightSetup::fact_sources`] it
//! subscribes to a window of the committee, from its first gateway on,
//! holding at least what its [`FactWindow`] says:
//!
//! - [`FactWindow::Quorum`], 2f + 1 of the stake: with at most f of the
//!   stake faulty (Byzantine, crashed, or a restarted validator that forgot
//!   its subscribers), f + 1 of it in the window is honest and live and
//!   reports every fact, so no fact is missed. A committee of 3f + 1 then
//!   sends each light node's facts 2f + 1 times instead of 3f + 1.
//! - [`FactWindow::Validity`], f + 1 of the stake: half the traffic again,
//!   but every source must report a fact for it to be decided, so a single
//!   faulty source holds the node's facts back until the window widens.
//!
//! A fact reported but still short of f + 1 for the window's patience, or
//! a transaction not confirmed in time, widens the window by another f + 1
//! of the stake (at most once per patience, up to the whole committee).
//! Facts are reported as they commit, so the new sources are asked to
//! replay the facts of the commits since the oldest undecided one
//! ([`GatewayRequest::SubscribeFrom`]; a validator keeps the last
//! [`REPLAY_COMMITS`](crate::validator::REPLAY_COMMITS)): with at most f
//! faulty, one honest source of the old window reported every fact, so
//! every fact still undecided is at or after that commit and is decided
//! once the new sources replay it. Safety never depends on the window: a
//! fact is accepted only with f + 1 of the *committee's* stake.
//!
//! ## Withheld leaves
//!
//! Certified facts come from one or two sources ([`FactDelivery::Certified`]),
//! and a certificate proves what a leaf says, not that every leaf was sent:
//! a Byzantine source can serve every leaf but the one a node must act on
//! (a provider's round opened by its client, a client's delivery), and
//! never look silent. Its own transactions' fates and the sources' silence
//! are watched here; the facts other parties' transactions make are
//! watched by the provider and the client, which know when they expect one
//! (an [`Expectation`]: the client's inputs came but no opening, a job that
//! heard nothing). One that waited the certified patience (half of it for
//! a provider's opening: [`LightCore::expect_soon`]), or
//! [`EXPECTATION_COMMITS`] commits, asks validators drawn from the
//! committee to replay the node's proven facts ([`GatewayRequest::Replay`]),
//! four at first, then eight, then sixteen at each further ask
//! ([`LightCore::check_expectations`]).
//!
//! A source is replaced once it is seen withholding: a leaf first decided
//! from a validator asked for a replay, which a source did not send though
//! it sent certificates of commits before and after it (in one ascending
//! run: a replay starts a new one), half a patience later (see
//! [`LightCore::withholders`]). And one fact every node must
//! act on comes on a cadence rather than from another party: a sealed
//! batch's closing ([`Fact::SealingClosed`], once per clearing period),
//! after which a sealed order has about one period to be revealed. While
//! a node's sealer waits for one
//! ([`Sealer::awaits_closing`](crate::market::sealing::Sealer::awaits_closing)),
//! the next closing is an expectation too, due a cadence and a margin
//! after the last one heard, the cadence being the longest of the last
//! few gaps between consecutive closings (never eager), the margin a
//! quarter of it, widened after each ask a late source showed spurious;
//! its replays start after the last closing's commit.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use idlegrid_dag_ledger::consensus::{AuthorityIndex, Committee};
use idlegrid_dag_ledger::ledger::{ChainId, Nonce, SignedTransaction, Transaction, TxKind};
use idlegrid_primitives::{
    AccountId, Digest, Domain, Duration, Keypair, NodeId, SignatureVerifier, Timestamp, Transmit,
    encode,
};

use crate::certified::{FactsMode, ProvenFacts, ProvenLeaf};
use crate::facts::{FactError, FactQuorum};
use crate::market::{BatchNo, MARKETPLACE_APP, MarketTx};
use crate::wire::{
    AccountState, Fact, FactBatch, GatewayRequest, NodeMessage, Rejection, RejectionKind,
};

/// Transactions one light node keeps in flight at most.
pub const MAX_INFLIGHT: usize = 1_024;
/// Times a transaction is re-signed after nonce rejections before it is
/// given up.
const MAX_RESIGNS: u8 = 3;
/// The domain of the draws of validators asked for a replay.
const REPLAY_DRAW: Domain = Domain::new("idlegrid/node/light/replay-draw");
/// Outgoing messages a drained light node keeps room for.
const OUT_KEPT: usize = 4;

/// How a light node reaches the ledger.
#[derive(Debug, Clone)]
pub struct LightSetup {
    /// The node's key (its account and its network identity).
    pub key: Keypair,
    /// The ledger's chain id.
    pub chain: ChainId,
    /// The validators and their stake (whose f + 1 backs a fact).
    pub committee: Committee,
    /// The validator tried first as gateway (failover moves round-robin).
    pub first_gateway: usize,
    /// How long a transaction may go unconfirmed before it is re-sent
    /// through the next gateway.
    pub patience: Duration,
    /// Validators each transaction is sent to, spread over the committee
    /// (more than one keeps a Byzantine or crashed gateway from silencing
    /// it; duplicates fail the nonce check and change nothing).
    pub fanout: usize,
    /// Validators subscribed to for facts at first, from the first gateway
    /// on in committee order; 0 means every validator. Raised to the
    /// fewest that hold the stake `fact_window` asks for, and widened when
    /// they do not decide facts in time (see the module docs).
    pub fact_sources: usize,
    /// How much of the stake the fact sources hold at least.
    pub fact_window: FactWindow,
    /// How it hears its facts: reported by every fact source, or
    /// certified by a few (see [`FactDelivery`]).
    pub delivery: FactDelivery,
    /// Checks certificates' signatures (plain, or a driver's shared memo).
    pub signatures: SignatureVerifier,
    /// The account's next nonce, when the caller knows it (0 for a key that
    /// never signed). `None`: a process that may have signed before (a
    /// restarted provider, a second `job submit`) learns it from its
    /// f + 1-backed holdings before signing anything.
    pub next_nonce: Option<u64>,
}

/// How much of the stake a light node's fact sources hold at least (see
/// the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FactWindow {
    /// 2f + 1: no fault within the fault model holds a fact back; widened
    /// after [`LightSetup::patience`].
    #[default]
    Quorum,
    /// f + 1: half the fact traffic of [`FactWindow::Quorum`]; one faulty
    /// source holds facts back for `patience`, then the window widens.
    Validity {
        /// How long a fact may stay short of f + 1 before the window
        /// widens (a little more than the spread of honest validators'
        /// commit times).
        patience: Duration,
    },
}

/// What a fact report or certificate decided: the facts, and the fates of
/// the node's own transactions among them (see [`LightCore::on_facts`]).
pub type Decided = Result<(Vec<Fact>, Vec<TxFate>), FactError>;

/// How a light node hears its facts (see [`crate::certified`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FactDelivery {
    /// Reported by every fact source, decided by f + 1 of the stake.
    #[default]
    Reported,
    /// Certified, proven leaf by leaf, from the first `sources` fact
    /// sources only (the others are subscribed when it asks for its
    /// holdings, and send only those reports): one honest, live source
    /// among them suffices. When no certified facts arrived for
    /// `patience`, a transaction of its own is stuck, or a source forges,
    /// one more validator is asked for them (replaying every certificate it
    /// keeps), up to the whole committee.
    Certified {
        /// Validators sending them at first (at least one).
        sources: usize,
        /// How long without certified facts before another source is asked
        /// (more than the time between two commits with facts for every
        /// subscriber, which come once per clearing period).
        patience: Duration,
    },
}

/// A fact a light node waits for that another party's transaction makes
/// (see [`LightCore::suspect_withheld`]): since when (or since it last
/// asked for it) and the highest commit certified then, and how many
/// times it asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expectation {
    at: Timestamp,
    commit: u64,
    asked: u8,
    patience: Duration,
}

impl Expectation {
    /// Asks of one expectation at most (one per its patience, 24 s or more
    /// at the simulator's): longer than a lot's stages take, and a party
    /// that makes the node expect a fact that never comes (inputs for a lot
    /// never matched) stops costing it replays after that.
    pub const MAX_ASKED: u8 = 16;

    /// Whether it has asks left.
    fn asking(&self) -> bool {
        self.asked < Self::MAX_ASKED
    }

    /// Whether it still asks, and is due at `now` and commit `index`:
    /// after its patience, or after [`EXPECTATION_COMMITS`] commits if they
    /// come sooner.
    fn late(&self, now: Timestamp, index: u64) -> bool {
        self.asking()
            && (now.saturating_since(self.at) >= self.patience
                || index.saturating_sub(self.commit) >= EXPECTATION_COMMITS)
    }
}

/// Commits after which an expectation asks even before the patience: half
/// of what a validator keeps ([`VOTES_KEPT`](crate::certified::VOTES_KEPT)),
/// so that on a committee committing faster than the patience assumes the
/// replays still reach back to the fact (ask, then ask again before it
/// leaves the window).
pub const EXPECTATION_COMMITS: u64 = crate::certified::VOTES_KEPT / 2;

/// Why a light node could not take a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OutboxError {
    /// [`MAX_INFLIGHT`] transactions are unconfirmed.
    #[error("{MAX_INFLIGHT} transactions in flight; wait for confirmations")]
    Full,
}

/// What the outbox learned from a confirmed fact about one of its own
/// transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxFate {
    /// Applied.
    Applied {
        /// Its nonce.
        nonce: u64,
        /// Its payload.
        kind: TxKind,
    },
    /// Rejected for good.
    Rejected {
        /// Its payload.
        kind: TxKind,
        /// Why.
        reason: Rejection,
    },
}

#[derive(Debug, Clone)]
struct Inflight {
    tx: SignedTransaction,
    id: Digest,
    sent_at: Timestamp,
    resigns: u8,
}

/// The shared core of a light node.
#[derive(Debug)]
pub struct LightCore {
    key: Keypair,
    chain: ChainId,
    /// Holds the committee: the validators and their stakes, in committee
    /// order (shared, not copied into every light node).
    quorum: FactQuorum,
    /// The fact sources: `sources` validators from `source_base` on.
    source_base: usize,
    sources: usize,
    window: FactWindow,
    widened_at: Option<Timestamp>,
    widenings: u64,
    gateway: usize,
    fanout: usize,
    patience: Duration,
    next_nonce: Option<u64>,
    /// Transactions waiting for the nonce to be learnt, and since when.
    held: Vec<TxKind>,
    held_since: Option<Timestamp>,
    /// Boxed: a map node holds eleven entries, most light nodes one or two.
    inflight: BTreeMap<u64, Box<Inflight>>,
    started: bool,
    out: VecDeque<Transmit<NodeMessage>>,
    failovers: u64,
    holdings: Option<AccountState>,
    delivery: FactDelivery,
    signatures: SignatureVerifier,
    /// Fact sources (from the first) sending certified facts.
    certified: usize,
    /// When a certificate last decided facts (or the node started), and the
    /// highest commit certified.
    last_certified: Option<(Timestamp, u64)>,
    /// Validators that sent a certificate that did not hold: Byzantine,
    /// so their certificates are not checked again (at most the committee).
    forgers: BTreeSet<NodeId>,
    /// Sources of certified facts caught withholding a leaf (see
    /// `LightCore::caught_withholding`): served silently from then on.
    withholders: BTreeSet<NodeId>,
    /// The first and last commit of the run of ascending commits each
    /// source of certified facts sent certificates of last (at most the
    /// committee).
    reach: BTreeMap<NodeId, (u64, u64)>,
    /// Leaves decided first from a validator asked for a replay, not from a
    /// source of certified facts (the last [`RECOVERED_KEPT`]).
    recovered: VecDeque<Recovered>,
    /// When the sources were last judged against the recovered leaves.
    judged_at: Option<Timestamp>,
    /// The last few certified leaves decided, by commit: the same leaf from
    /// another source is recognized by comparing it (a pointer, when it
    /// shares memory), not by hashing its facts again.
    recent_leaves: [Option<(u64, Arc<[Fact]>)>; RECENT_LEAVES],
    next_leaf: usize,
    /// When the node last asked other validators because a fact it expected
    /// had not come ([`LightCore::suspect_withheld`]), and how often.
    suspected_at: Option<(Timestamp, u64)>,
    suspicions: u64,
    /// Validators asked for a replay, over every ask.
    replays_asked: u64,
    /// Draws of a validator to ask for a replay so far.
    replay_draws: u64,
    /// The batch closings' cadence and the next closing.
    closings: ClosingWatch,
}

/// Certified leaves a light node remembers as decided (see
/// `LightCore::recent_leaves`).
const RECENT_LEAVES: usize = 4;

/// Recovered leaves a light node remembers (see `LightCore::recovered`).
const RECOVERED_KEPT: usize = 8;

/// Gaps between batch closings a light node remembers (see
/// [`LightCore::expect_closings`]).
const CLOSING_GAPS: usize = 4;

/// Closings heard in a row without an ask after which the margin a light
/// node gives the next one is halved (see `ClosingWatch::quarters`).
const ON_TIME_TO_NARROW: u8 = 8;

/// What a light node knows of the batch closings' cadence, and the next
/// closing as an expectation (see [`LightCore::expect_closings`]).
#[derive(Debug)]
struct ClosingWatch {
    /// The last closing heard, when, and the commit it came in.
    last: Option<(BatchNo, Timestamp, u64)>,
    /// The last few gaps between two consecutive closings heard.
    gaps: [Duration; CLOSING_GAPS],
    /// The next closing, once the cadence is known.
    next: Option<Expectation>,
    /// How far past the cadence the next closing is awaited, in quarters
    /// of the cadence: one at first, doubled (to at most four) after each
    /// spurious ask, halved (to at least one) after [`ON_TIME_TO_NARROW`]
    /// closings in a row came without an ask.
    quarters: u8,
    /// Closings heard in a row without an ask.
    on_time: u8,
    /// The batch the last ask for a late closing was for, until a closing
    /// tells whether the ask was spurious.
    asked_for: Option<BatchNo>,
    /// Asks made because the next closing was late, and those found
    /// spurious.
    asks: u64,
    spurious: u64,
}

impl ClosingWatch {
    fn new() -> Self {
        Self {
            last: None,
            gaps: [Duration::ZERO; CLOSING_GAPS],
            next: None,
            quarters: 1,
            on_time: 0,
            asked_for: None,
            asks: 0,
            spurious: 0,
        }
    }

    /// A closing of `batch` decided at `now` in commit `index`, the highest
    /// commit certified being `certified`: the next one is expected a
    /// cadence and the margin later.
    fn heard(&mut self, now: Timestamp, index: u64, batch: BatchNo, certified: u64) {
        if let Some((b, t, _)) = self.last {
            if batch <= b {
                return;
            }
            let gap = now.saturating_since(t);
            if batch.0 == b.0 + 1 && gap > Duration::ZERO {
                self.gaps.rotate_right(1);
                self.gaps[0] = gap;
            }
        }
        if self.next.as_ref().is_some_and(|e| e.asked == 0) {
            self.on_time += 1;
            if self.on_time >= ON_TIME_TO_NARROW {
                self.quarters = (self.quarters / 2).max(1);
                self.on_time = 0;
            }
        } else {
            self.on_time = 0;
        }
        self.last = Some((batch, now, index));
        let cadence = self.gaps.iter().copied().max().unwrap_or_default();
        let margin = Duration::from_micros(cadence.as_micros() * u64::from(self.quarters) / 4);
        self.next = (cadence > Duration::ZERO).then_some(Expectation {
            at: now,
            commit: certified,
            asked: 0,
            patience: cadence + margin,
        });
    }

    /// A certified leaf's `facts`, sent by one of the node's sources of
    /// certified facts when `source`, else by a validator asked for a
    /// replay. The very closing the last ask was for, sent by a source,
    /// shows the ask was spurious (the source was late, not withholding:
    /// the margin doubles); sent first by a validator asked, it was not,
    /// nor is a later closing from a source that skipped it.
    fn sent(&mut self, facts: &[Fact], source: bool) {
        let Some(b) = self.asked_for else { return };
        let closed = facts.iter().find_map(|f| match f {
            Fact::SealingClosed { batch } => Some(*batch),
            _ => None,
        });
        let Some(closed) = closed.filter(|c| *c >= b) else {
            return;
        };
        self.asked_for = None;
        if source && closed == b {
            self.quarters = (self.quarters * 2).min(4);
            self.spurious += 1;
        }
    }

    /// Validators were asked because the next closing was late.
    fn asked(&mut self) {
        self.asks += 1;
        self.asked_for = self.last.map(|(b, _, _)| BatchNo(b.0 + 1));
    }

    /// Where a replay for the next closing alone starts: the next closing
    /// comes in a commit after the last one's.
    fn replay_from(&self) -> Option<u64> {
        self.last.map(|(_, _, c)| c + 1)
    }
}

/// A leaf decided first from a validator asked for a replay: its commit,
/// its facts, when, and the sources of certified facts that sent it since.
#[derive(Debug)]
struct Recovered {
    index: u64,
    at: Timestamp,
    facts: Arc<[Fact]>,
    sent_by: Vec<NodeId>,
}

impl LightCore {
    /// A light node with `setup`.
    pub fn new(setup: LightSetup) -> Self {
        let c = &setup.committee;
        let n = c.size();
        let gateway = setup.first_gateway % n.max(1);
        let fanout = setup.fanout.clamp(1, n.max(1));
        let wanted = match setup.fact_sources {
            0 => n,
            k => k.min(n),
        };
        let window = setup.fact_window;
        let sources = covering(c, gateway, wanted, |s| match window {
            FactWindow::Quorum => c.is_quorum(s),
            FactWindow::Validity { .. } => c.is_validity(s),
        });
        Self {
            key: setup.key,
            chain: setup.chain,
            quorum: FactQuorum::new(setup.committee),
            source_base: gateway,
            sources,
            window,
            widened_at: None,
            widenings: 0,
            gateway,
            fanout,
            patience: setup.patience,
            next_nonce: setup.next_nonce,
            held: Vec::new(),
            held_since: None,
            inflight: BTreeMap::new(),
            started: false,
            out: VecDeque::new(),
            failovers: 0,
            holdings: None,
            delivery: setup.delivery,
            signatures: setup.signatures,
            certified: match setup.delivery {
                FactDelivery::Reported => 0,
                FactDelivery::Certified { sources, .. } => sources.clamp(1, n.max(1)),
            },
            last_certified: None,
            forgers: BTreeSet::new(),
            withholders: BTreeSet::new(),
            reach: BTreeMap::new(),
            recovered: VecDeque::new(),
            judged_at: None,
            recent_leaves: Default::default(),
            next_leaf: 0,
            suspected_at: None,
            suspicions: 0,
            replays_asked: 0,
            replay_draws: 0,
            closings: ClosingWatch::new(),
        }
    }

    /// The validators, in committee order.
    pub fn validators(&self) -> impl Iterator<Item = NodeId> + '_ {
        let c = self.quorum.committee();
        c.indices().filter_map(|i| c.node(i))
    }

    /// The committee's size.
    fn committee_size(&self) -> usize {
        self.quorum.committee().size()
    }

    /// The validator at committee position `i`, wrapping.
    fn validator(&self, i: usize) -> Option<NodeId> {
        let n = self.committee_size().max(1);
        self.quorum
            .committee()
            .node(AuthorityIndex::new((i % n) as u32))
    }

    /// The node's account.
    pub fn account(&self) -> AccountId {
        self.key.account_id()
    }

    /// The node's network identity.
    pub fn node_id(&self) -> NodeId {
        self.key.node_id()
    }

    /// Times it moved to another gateway.
    pub fn failovers(&self) -> u64 {
        self.failovers
    }

    /// Validators it takes facts from now (see the module docs): its
    /// window from the first gateway on, in committee order, wrapping (the
    /// whole committee when the window is). The sources of certified facts
    /// are the first of them, so light nodes spread them over the committee
    /// as they spread their first gateways, and no two validators serve
    /// every light node.
    pub fn fact_sources(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.sources).filter_map(move |k| self.validator(self.source_base + k))
    }

    /// Times its fact sources were widened.
    pub fn widenings(&self) -> u64 {
        self.widenings
    }

    /// Unconfirmed transactions.
    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    /// What its account held after the last commit that touched it (f + 1
    /// backed), if one has been reported.
    pub fn holdings(&self) -> Option<&AccountState> {
        self.holdings.as_ref()
    }

    /// Subscribed yet.
    pub fn started(&self) -> bool {
        self.started
    }

    /// Subscribes to its fact sources (once; see [`LightCore::resubscribe`])
    /// at `now`, from when the patience for certified facts runs.
    pub fn start(&mut self, now: Timestamp) {
        if self.last_certified.is_none() {
            self.last_certified = Some((now, 0));
        }
        if !self.started {
            self.resubscribe();
        }
    }

    /// Subscribes to its fact sources again: a validator that restarted or
    /// made room for newer subscribers serves this node again. Done when
    /// failing over. With certified facts, only the sources of certified
    /// facts: the others serve nothing but holdings reports, and are
    /// subscribed when those are asked for ([`LightCore::request_holdings`]).
    pub fn resubscribe(&mut self) {
        self.started = true;
        let all = matches!(self.delivery, FactDelivery::Reported);
        self.subscribe_sources(None, &[], all);
    }

    /// Subscribes the fact sources (all, or only those of certified facts),
    /// asking those not in `old` to replay from commit `from`.
    fn subscribe_sources(&mut self, from: Option<u64>, old: &[NodeId], all: bool) {
        let count = match all {
            true => self.sources,
            false => self.certified.min(self.sources),
        };
        let sources: Vec<NodeId> = self.fact_sources().take(count).collect();
        for (k, v) in sources.into_iter().enumerate() {
            let req = self.subscription(k, v, from.filter(|_| !old.contains(&v)));
            self.out
                .push_back(Transmit::to(v, NodeMessage::Gateway(req)));
        }
    }

    /// What the fact source `v`, at position `k`, is asked, replaying from
    /// commit `from` if given: certified facts from the first sources but
    /// those caught forging or withholding.
    fn subscription(&self, k: usize, v: NodeId, from: Option<u64>) -> GatewayRequest {
        match (self.delivery, from) {
            (FactDelivery::Reported, None) => GatewayRequest::Subscribe,
            (FactDelivery::Reported, Some(i)) => GatewayRequest::SubscribeFrom(i),
            (FactDelivery::Certified { .. }, from) => GatewayRequest::SubscribeWith {
                from,
                mode: match k < self.certified && !self.distrusted(&v) {
                    true => FactsMode::Certified,
                    false => FactsMode::Silent,
                },
            },
        }
    }

    /// Asks its fact sources for its holdings (see
    /// [`GatewayRequest::Holdings`]), subscribing again first.
    pub fn request_holdings(&mut self) {
        self.started = true;
        self.subscribe_sources(None, &[], true);
        self.ask_sources(GatewayRequest::Holdings);
    }

    fn ask_sources(&mut self, req: GatewayRequest) {
        let sources: Vec<NodeId> = self.fact_sources().collect();
        for v in sources {
            self.out
                .push_back(Transmit::to(v, NodeMessage::Gateway(req.clone())));
        }
    }

    /// Adds validators holding another f + 1 of the stake to the fact
    /// sources (up to the whole committee) and subscribes again, asking the
    /// new ones to replay the facts since the oldest undecided one.
    fn widen(&mut self, now: Timestamp) {
        let old: Vec<NodeId> = self.fact_sources().collect();
        let c = self.quorum.committee();
        let end = self.source_base + self.sources;
        let more = covering(c, end, 1, |s| c.is_validity(s));
        self.sources = (self.sources + more).min(self.committee_size());
        self.widened_at = Some(now);
        self.widenings += 1;
        self.started = true;
        let from = self.quorum.oldest_pending_index();
        self.subscribe_sources(from, &old, true);
    }

    /// Asks one more fact source for certified facts, replaying those of
    /// every certificate it still keeps (a source that withheld this node's
    /// leaves may have sent later ones; what was decided already is not
    /// checked again), widening the fact sources first if every one of
    /// them sends them already.
    fn widen_certified(&mut self, now: Timestamp) {
        let last = self.certified_index();
        self.last_certified = Some((now, last));
        self.certified = (self.certified + 1).min(self.committee_size());
        if self.certified > self.sources {
            self.widen(now);
        }
        let k = self.certified - 1;
        let source = self.fact_sources().nth(k);
        if let Some(v) = source {
            let from = self.kept_from();
            let req = self.subscription(k, v, Some(from));
            self.out
                .push_back(Transmit::to(v, NodeMessage::Gateway(req)));
        }
    }

    /// When another source is due to be asked for certified facts.
    fn certified_due(&self) -> Option<Timestamp> {
        let FactDelivery::Certified { patience, .. } = self.delivery else {
            return None;
        };
        if self.certified >= self.committee_size() || !self.started {
            return None;
        }
        self.last_certified.map(|(t, _)| t + patience)
    }

    /// The patience of certified facts, `None` with reported ones (whose
    /// window of f + 1 of the stake cannot withhold: see the module docs).
    pub fn certified_patience(&self) -> Option<Duration> {
        match self.delivery {
            FactDelivery::Certified { patience, .. } => Some(patience),
            FactDelivery::Reported => None,
        }
    }

    /// Half the certified patience: how long [`LightCore::expect_soon`]
    /// waits, and the least time between two asks of one node.
    fn short_patience(&self) -> Option<Duration> {
        self.certified_patience()
            .map(|p| Duration::from_micros(p.as_micros() / 2))
    }

    /// The highest commit whose certified facts reached this node (0
    /// before any).
    pub fn certified_index(&self) -> u64 {
        self.last_certified.map_or(0, |(_, i)| i)
    }

    /// The first commit validators still keep certificates of, seen from
    /// the last certified commit: where a replay of everything they keep
    /// starts.
    fn kept_from(&self) -> u64 {
        self.certified_index()
            .saturating_sub(crate::certified::VOTES_KEPT)
    }

    /// The node expected a fact about its account and has waited the
    /// patience it gave it: a fact another party's transaction makes
    /// (its client's plan opening a provider's round, a provider's
    /// delivery), which no stuck transaction of its own and no silence of
    /// its sources reveals. Its certified sources may be withholding the
    /// leaf (a certificate proves what a leaf says, not that every leaf was
    /// sent, and a source that withholds one leaf may serve every other):
    /// `fanout` other validators are asked, once, for the node's proven
    /// facts of every certificate they keep ([`GatewayRequest::Replay`];
    /// the missing fact may be older than the last commit the node heard
    /// of). They are drawn from the committee (see `next_replay_source`),
    /// so with f of 3f + 1 Byzantine each is honest with a chance of about
    /// two in three whatever their places; the caller doubles `fanout` as
    /// an expectation keeps waiting ([`LightCore::check_expectations`]).
    ///
    /// At most once per half the certified patience (or per [`EXPECTATION_COMMITS`]
    /// commits), and nothing with reported facts (a window of f + 1 of the
    /// stake cannot withhold: see the module docs). Returns how many
    /// validators were asked.
    pub fn suspect_withheld(&mut self, now: Timestamp, fanout: usize) -> usize {
        let from = self.kept_from();
        self.ask_replays(now, fanout, from)
    }

    /// [`LightCore::suspect_withheld`], asking for the facts of the kept
    /// commits from `from` on.
    fn ask_replays(&mut self, now: Timestamp, fanout: usize, from: u64) -> usize {
        let Some(patience) = self.short_patience() else {
            return 0;
        };
        let index = self.certified_index();
        let rested = self.suspected_at.is_none_or(|(t, i)| {
            now.saturating_since(t) >= patience || index.saturating_sub(i) >= EXPECTATION_COMMITS
        });
        if !rested || !self.started {
            return 0;
        }
        let mut asked: Vec<NodeId> = Vec::new();
        // Draws with repeats: a bounded number, as many distinct as come.
        for _ in 0..4 * fanout.min(self.committee_size()) {
            if asked.len() >= fanout {
                break;
            }
            match self.next_replay_source() {
                Some(v) if !asked.contains(&v) => asked.push(v),
                Some(_) => {}
                None => break,
            }
        }
        if asked.is_empty() {
            return 0;
        }
        self.suspected_at = Some((now, index));
        self.suspicions += 1;
        self.replays_asked += asked.len() as u64;
        for v in &asked {
            let req = GatewayRequest::Replay { from };
            self.out
                .push_back(Transmit::to(*v, NodeMessage::Gateway(req)));
        }
        asked.len()
    }

    /// The validator the next [`LightCore::suspect_withheld`] asks: drawn
    /// from the committee by hashing the node's account and the count of
    /// asks (neither its certified sources nor a known forger), so a run of
    /// Byzantine validators next to its sources in committee order is no
    /// likelier to be asked than any other.
    fn next_replay_source(&mut self) -> Option<NodeId> {
        let n = self.committee_size() as u64;
        let own: Vec<NodeId> = self.fact_sources().take(self.certified).collect();
        let account = self.account();
        for _ in 0..4 * n {
            let draw = Digest::hash_parts(
                REPLAY_DRAW,
                &[account.as_bytes(), &self.replay_draws.to_le_bytes()],
            );
            self.replay_draws += 1;
            let word = u64::from_le_bytes(draw.as_bytes()[..8].try_into().expect("8 bytes"));
            let v = self.validator((word % n.max(1)) as usize)?;
            if !own.contains(&v) && !self.distrusted(&v) {
                return Some(v);
            }
        }
        None
    }

    /// An expectation starting now that asks after the certified patience
    /// (see [`LightCore::check_expectations`]).
    pub fn expect(&self, now: Timestamp) -> Expectation {
        self.expect_within(now, self.certified_patience().unwrap_or(Duration::ZERO))
    }

    /// An expectation starting now that asks after half the certified
    /// patience: for a fact due within a transaction's latency (a provider
    /// holding its client's inputs expects the plan the client sent with
    /// them on the ledger), which a withholding source would otherwise
    /// delay by a whole patience off its stage deadline.
    pub fn expect_soon(&self, now: Timestamp) -> Expectation {
        self.expect_within(now, self.short_patience().unwrap_or(Duration::ZERO))
    }

    /// The next batch closing, as an expectation when `sealing` (the node
    /// has a sealed order waiting for its batch's closing:
    /// [`Sealer::awaits_closing`](crate::market::sealing::Sealer::awaits_closing)).
    ///
    /// A batch closing ([`Fact::SealingClosed`]) comes to every light node
    /// once per clearing period, and a sealed order must be revealed within
    /// about one period after it: a source withholding it (or the leaf it
    /// shares a certificate with) would cost the order its bond and its job
    /// or ask a batch. So once two consecutive closings were heard, the next
    /// one is expected a cadence and a margin after the last, the cadence
    /// being the longest of the last [`CLOSING_GAPS`] gaps between
    /// consecutive closings (never eager: a closing recovered late, or the
    /// burst after a consensus stall, only makes it longer for a while).
    /// It asks only once the node heard of a commit after the one it was
    /// last armed at: a closing is missing only if the ledger moved on
    /// without it, and during a consensus stall nothing is missing (every
    /// sealing node asking at every cadence through a 48 s stall added 23 %
    /// to a run's messages).
    ///
    /// The margin is a quarter of the cadence at first and adapts as TCP's
    /// retransmission timer does after a spurious timeout (RFC 3522's
    /// Eifel detection, RFC 4015's response): an ask is spurious when one
    /// of the node's own sources sends the very closing asked for after it
    /// (the source was late, not withholding), and each doubles the margin,
    /// to a whole cadence at most; [`ON_TIME_TO_NARROW`] closings in a row heard
    /// without an ask halve it again. A withholding source never sends the
    /// closing, so against withholding the margin stays a quarter; nor can
    /// a Byzantine source widen it by sending closings late on purpose
    /// while another source is on time (there is no ask to be spurious). It
    /// bounds what a node's steadily late sources make it ask for, not what
    /// a growing backlog does: `huge`'s light nodes heard the closings of
    /// 1 s batches about 2 s apart in its first 12 s (batch 3's at 8.6 s),
    /// 32 371 of the 45 728 closing asks of a 30 s cut were spurious, and
    /// the adaptation left their number as it was; what made them
    /// affordable is that a closing's replay starts after the last
    /// closing's commit (see [`LightCore::check_expectations`]).
    fn expect_closings(&mut self, sealing: bool) -> Option<&mut Expectation> {
        let index = self.certified_index();
        self.closings
            .next
            .as_mut()
            .filter(|e| sealing && index > e.commit)
    }

    fn expect_within(&self, now: Timestamp, patience: Duration) -> Expectation {
        Expectation {
            at: now,
            commit: self.certified_index(),
            asked: 0,
            patience,
        }
    }

    /// When the first of `waits` runs out of its patience (a
    /// time; its commits are checked as certified facts arrive), if
    /// any still asks (never with reported facts).
    /// `sealing` says whether the next batch closing is expected too (see
    /// the module docs).
    pub fn expectation_due<'a>(
        &self,
        waits: impl Iterator<Item = &'a Expectation>,
        sealing: bool,
    ) -> Option<Timestamp> {
        self.certified_patience()?;
        let index = self.certified_index();
        let closing = self.closings.next.iter();
        let closing = closing.filter(|e| sealing && index > e.commit);
        let due = |e: &Expectation| e.asking().then(|| e.at + e.patience);
        waits.filter_map(due).chain(closing.filter_map(due)).min()
    }

    /// Expectations past their patience ([`LightCore::expect`],
    /// [`LightCore::expect_soon`]): other validators are asked to
    /// replay ([`LightCore::suspect_withheld`]), four for an expectation's
    /// first ask, eight for its second, sixteen for each further one: with
    /// a third of the committee withholding, the twelve of the first two
    /// asks all withholders is a chance of about 1 in 500 000, and those
    /// two asks come within [`EXPECTATION_COMMITS`] commits of each other,
    /// so both replays reach back to the missing fact.
    /// Each late expectation waits another patience, one ask less (also
    /// when validators were asked less than a patience ago for another:
    /// their replays covered both).
    /// The replays reach back as far as validators keep certificates
    /// ([`VOTES_KEPT`](crate::certified::VOTES_KEPT) commits: a fact another
    /// party's transaction made may be older than the last commit heard),
    /// except when only the next batch closing is late: it comes in a
    /// commit after the last closing's, so the replays start there (on
    /// `huge` cut to 30 s, where most such asks are spurious, a replay of
    /// the whole window cost each asked validator 9.4 messages against
    /// 2.7, and the congestion they added closed 148 jobs with no lot run
    /// against 51).
    /// `sealing`: the next batch closing is expected too (see the module
    /// docs).
    pub fn check_expectations<'a>(
        &mut self,
        now: Timestamp,
        waits: impl Iterator<Item = &'a mut Expectation>,
        sealing: bool,
    ) {
        if self.certified_patience().is_none() {
            return;
        }
        let index = self.certified_index();
        let mut late: Vec<&mut Expectation> = waits.filter(|e| e.late(now, index)).collect();
        let closing = self.expect_closings(sealing).filter(|e| e.late(now, index));
        let most = late.iter().map(|e| e.asked);
        let Some(most) = most.chain(closing.as_ref().map(|e| e.asked)).max() else {
            return;
        };
        let closing_late = closing.is_some();
        let only_closing = late.is_empty();
        for e in late.iter_mut().map(|e| &mut **e).chain(closing) {
            e.at = now;
            e.commit = index;
            e.asked += 1;
        }
        let kept = self.kept_from();
        let from = match self.closings.replay_from() {
            Some(after) if only_closing => kept.max(after),
            _ => kept,
        };
        if self.ask_replays(now, 4 << most.min(2), from) > 0 && closing_late {
            self.closings.asked();
        }
    }

    /// Times [`LightCore::suspect_withheld`] asked other validators.
    pub fn suspicions(&self) -> u64 {
        self.suspicions
    }

    /// Validators [`LightCore::suspect_withheld`] asked, over every ask.
    pub fn replays_asked(&self) -> u64 {
        self.replays_asked
    }

    /// Times [`LightCore::check_expectations`] asked because the next batch
    /// closing was late (alone or with other expectations).
    pub fn closing_asks(&self) -> u64 {
        self.closings.asks
    }

    /// Of [`LightCore::closing_asks`], those found spurious: the closing
    /// came from one of the node's own sources after the ask: the source
    /// was late, not withholding (see the module docs).
    pub fn closing_asks_spurious(&self) -> u64 {
        self.closings.spurious
    }

    fn all_sources(&self) -> bool {
        self.sources >= self.committee_size()
    }

    /// When the fact sources are due to widen: a fact short of f + 1 for
    /// `patience`, at most once per `patience`.
    fn widen_due(&self) -> Option<Timestamp> {
        if self.all_sources() {
            return None;
        }
        let patience = match self.window {
            FactWindow::Quorum => self.patience,
            FactWindow::Validity { patience } => patience,
        };
        let stalled = self.quorum.oldest_pending()? + patience;
        Some(
            self.widened_at
                .map_or(stalled, |w| stalled.max(w + patience)),
        )
    }

    /// Signs a marketplace transaction and submits it through the gateway.
    pub fn submit_market(&mut self, now: Timestamp, tx: &MarketTx) -> Result<(), OutboxError> {
        self.submit(
            now,
            TxKind::App {
                app_id: MARKETPLACE_APP,
                payload: encode(tx),
            },
        )
    }

    /// Signs `kind` with the next nonce and submits it through the gateway
    /// (once the nonce is known: until then it waits, see
    /// [`LightSetup::next_nonce`]).
    pub fn submit(&mut self, now: Timestamp, kind: TxKind) -> Result<(), OutboxError> {
        if self.inflight.len() + self.held.len() >= MAX_INFLIGHT {
            return Err(OutboxError::Full);
        }
        match self.next_nonce {
            Some(nonce) => {
                self.next_nonce = Some(nonce + 1);
                self.send_new(now, nonce, kind, 0);
            }
            None => {
                if self.held_since.is_none() {
                    self.held_since = Some(now);
                    self.request_holdings();
                }
                self.held.push(kind);
            }
        }
        Ok(())
    }

    /// The holdings reported the account's next nonce: sign what waited.
    fn learn_nonce(&mut self, now: Timestamp, nonce: u64) {
        if self.next_nonce.is_some() {
            return;
        }
        self.next_nonce = Some(nonce);
        self.held_since = None;
        for kind in std::mem::take(&mut self.held) {
            let _ = self.submit(now, kind);
        }
    }

    fn send_new(&mut self, now: Timestamp, nonce: u64, kind: TxKind, resigns: u8) {
        let tx = Transaction {
            chain: self.chain,
            sender: self.key.account_id(),
            nonce: Nonce::new(nonce),
            kind,
        }
        .sign_with(&self.key, &self.signatures);
        let id = tx.id();
        self.send(&tx);
        debug_assert!(
            self.inflight
                .last_key_value()
                .is_none_or(|(n, i)| *n < nonce && i.sent_at <= now),
            "a new nonce goes after every one in flight (see `oldest_sent`)"
        );
        self.inflight.insert(
            nonce,
            Box::new(Inflight {
                tx,
                id,
                sent_at: now,
                resigns,
            }),
        );
    }

    fn send(&mut self, tx: &SignedTransaction) {
        let spread = (self.committee_size() / self.fanout).max(1);
        for r in 0..self.fanout {
            if let Some(g) = self.validator(self.gateway + r * spread) {
                self.out.push_back(Transmit::to(
                    g,
                    NodeMessage::Gateway(GatewayRequest::Submit(Box::new(tx.clone()))),
                ));
            }
        }
    }

    /// Off-ledger message to another light node.
    pub fn send_peer(&mut self, to: NodeId, msg: crate::wire::PeerMessage) {
        self.out.push_back(Transmit::to(to, NodeMessage::Peer(msg)));
    }

    /// A validator's fact report: the facts now backed by f + 1, and the
    /// fates of this node's own transactions among them.
    pub fn on_facts(&mut self, now: Timestamp, from: NodeId, batch: FactBatch) -> Decided {
        let index = batch.index;
        let facts = self.quorum.observe(now, from, batch)?;
        Ok(self.decided(now, index, facts))
    }

    /// A validator's certified facts (see [`crate::certified`]): the facts
    /// they decide (none if they were decided already, then they are not
    /// even checked), and the fates of this node's own transactions among
    /// them. A forgery is refused and changes nothing but what the node
    /// knows of its sender: it is Byzantine, its later certified facts are
    /// refused unread ([`FactError::Forger`]), and if it was one of the
    /// sources of certified facts, one more validator is asked for them at
    /// once, not after the patience (a forger must not delay the facts a
    /// sealed order's reveal or a transaction's fate waits for).
    pub fn on_certified(&mut self, now: Timestamp, from: NodeId, proven: &ProvenFacts) -> Decided {
        let c = self.quorum.committee();
        c.index_of(&from).ok_or(FactError::NotAValidator(from))?;
        if self.forgers.contains(&from) {
            return Err(FactError::Forger(from));
        }
        let index = proven.index();
        let seen = |l: &ProvenLeaf| {
            self.recent_leaves
                .iter()
                .flatten()
                .any(|(i, f)| *i == index && (Arc::ptr_eq(f, &l.facts) || f[..] == l.facts[..]))
        };
        if proven.leaves.iter().all(seen)
            || proven
                .leaves
                .iter()
                .all(|l| self.quorum.decided(index, &l.facts))
        {
            self.heard_certified(now, from, proven, false);
            return Ok((Vec::new(), Vec::new()));
        }
        if let Err(e) = proven.verify(c, Some(self.account()), &self.signatures) {
            self.caught_forging(now, from);
            return Err(e.into());
        }
        let facts: Vec<Fact> = proven
            .leaves
            .iter()
            .flat_map(|l| self.quorum.decide(index, &l.facts))
            .collect();
        for l in &proven.leaves {
            self.recent_leaves[self.next_leaf] = Some((index, Arc::clone(&l.facts)));
            self.next_leaf = (self.next_leaf + 1) % RECENT_LEAVES;
        }
        let last = self.certified_index();
        self.last_certified = Some((now, last.max(index)));
        self.heard_certified(now, from, proven, !facts.is_empty());
        Ok(self.decided(now, index, facts))
    }

    /// Whether `v` is a source of certified facts now (not one caught
    /// forging or withholding).
    fn is_certified_source(&self, v: &NodeId) -> bool {
        !self.distrusted(v) && self.fact_sources().take(self.certified).any(|s| s == *v)
    }

    /// Follows a certificate that held (its leaves checked, or equal to
    /// leaves decided before), from `from`; `new` if it decided facts.
    ///
    /// A source of certified facts sends every leaf of the node's from the
    /// commit it became a source at, in commit order. So a leaf decided
    /// first from a validator asked for a replay ([`GatewayRequest::Replay`])
    /// that a source did not send, although it sent certificates of commits
    /// before and after that leaf's in one ascending run, was held back by
    /// that source: a source withholding the leaves to act on and serving
    /// every other, or one that forgot the node for a while. Either way it
    /// did not serve the node, and is replaced
    /// ([`LightCore::caught_withholding`]) instead of costing the node an
    /// expectation's patience at every leaf it holds back. A source is
    /// judged so only half the certified patience after the leaf was
    /// recovered, so that its certificates overtaking each other in the
    /// network, or a new source's replay still on its way, do not make an
    /// honest source look so (if one did anyway, replacing it costs one
    /// more source, never a fact).
    fn heard_certified(&mut self, now: Timestamp, from: NodeId, proven: &ProvenFacts, new: bool) {
        let index = proven.index();
        let source = self.is_certified_source(&from);
        for l in &proven.leaves {
            self.closings.sent(&l.facts, source);
        }
        if !source {
            if new {
                for l in &proven.leaves {
                    if self.recovered.len() == RECOVERED_KEPT {
                        self.recovered.pop_front();
                    }
                    self.recovered.push_back(Recovered {
                        index,
                        at: now,
                        facts: Arc::clone(&l.facts),
                        sent_by: Vec::new(),
                    });
                }
            }
        } else {
            // A commit at or below the last one starts a new run (a replay,
            // or certificates overtaking each other): what the source owes
            // is what lies inside one run of ascending commits.
            let r = self.reach.entry(from).or_insert((index, index));
            *r = match index > r.1 {
                true => (r.0, index),
                false => (index, index),
            };
            for r in self.recovered.iter_mut().filter(|r| r.index == index) {
                if !r.sent_by.contains(&from) && proven.leaves.iter().any(|l| l.facts == r.facts) {
                    r.sent_by.push(from);
                }
            }
        }
        self.judge_sources(now);
    }

    /// Replaces the sources of certified facts that held back a recovered
    /// leaf at least half a patience old (see `LightCore::heard_certified`).
    fn judge_sources(&mut self, now: Timestamp) {
        self.judged_at = Some(now);
        let grace = self.short_patience().unwrap_or(Duration::ZERO);
        let owed = |r: &Recovered, v: &NodeId, lo: u64, hi: u64| {
            lo < r.index && r.index < hi && !r.sent_by.contains(v)
        };
        let caught: Vec<NodeId> = self
            .reach
            .iter()
            .filter(|(v, (lo, hi))| {
                self.recovered
                    .iter()
                    .any(|r| now.saturating_since(r.at) >= grace && owed(r, v, *lo, *hi))
            })
            .map(|(v, _)| *v)
            .collect();
        for v in caught {
            self.caught_withholding(now, v);
        }
    }

    /// When a recovered leaf is next half a patience old, so that its
    /// sources are judged then even if none of them sends anything.
    fn judge_due(&self) -> Option<Timestamp> {
        let grace = self.short_patience()?;
        self.recovered
            .iter()
            .map(|r| r.at + grace)
            .filter(|t| self.judged_at.is_none_or(|j| *t > j))
            .min()
    }

    /// `from` sent a forged certificate: remembered, and replaced at once
    /// as a source of certified facts if it was one.
    fn caught_forging(&mut self, now: Timestamp, from: NodeId) {
        self.forgers.insert(from);
        self.reach.remove(&from);
        self.replace_distrusted(now);
    }

    /// The source of certified facts `v` held back a leaf (see
    /// `LightCore::heard_certified`): it is asked to serve the node
    /// silently from now on (holdings reports only), and another validator
    /// is asked for certified facts in its place.
    fn caught_withholding(&mut self, now: Timestamp, v: NodeId) {
        self.reach.remove(&v);
        if !self.withholders.insert(v) {
            return;
        }
        let req = GatewayRequest::SubscribeWith {
            from: None,
            mode: FactsMode::Silent,
        };
        self.out
            .push_back(Transmit::to(v, NodeMessage::Gateway(req)));
        self.replace_distrusted(now);
    }

    /// Whether `v` was caught forging or withholding.
    fn distrusted(&self, v: &NodeId) -> bool {
        self.forgers.contains(v) || self.withholders.contains(v)
    }

    /// Asks more validators for certified facts until as many as the setup
    /// wants are neither forgers nor withholders (or the whole committee
    /// is asked).
    fn replace_distrusted(&mut self, now: Timestamp) {
        let wanted = match self.delivery {
            FactDelivery::Certified { sources, .. } => sources,
            FactDelivery::Reported => 0,
        };
        let live = |me: &Self| {
            me.fact_sources()
                .take(me.certified)
                .filter(|v| !me.distrusted(v))
                .count()
        };
        while live(self) < wanted && self.certified < self.committee_size() {
            self.widen_certified(now);
        }
    }

    /// Sources of certified facts caught withholding a leaf.
    pub fn withholders(&self) -> impl Iterator<Item = &NodeId> + '_ {
        self.withholders.iter()
    }

    /// Validators caught sending a forged certificate.
    pub fn forgers(&self) -> impl Iterator<Item = &NodeId> + '_ {
        self.forgers.iter()
    }

    /// Follows facts just decided (of commit `index`): the fates of this
    /// node's own transactions among them, and its holdings.
    fn decided(
        &mut self,
        now: Timestamp,
        index: u64,
        facts: Vec<Fact>,
    ) -> (Vec<Fact>, Vec<TxFate>) {
        let me = self.account();
        let mut fates = Vec::new();
        for f in &facts {
            match f {
                Fact::Applied { sender, tx } if *sender == me => {
                    if let Some(nonce) = self.nonce_of(tx) {
                        let i = self.inflight.remove(&nonce).expect("present");
                        fates.push(TxFate::Applied {
                            nonce,
                            kind: i.tx.tx.kind,
                        });
                    }
                }
                Fact::Rejected { sender, tx, reason } if *sender == me => {
                    if let Some(nonce) = self.nonce_of(tx) {
                        fates.extend(self.rejected(now, nonce, reason));
                    }
                }
                Fact::Balance(a) if a.account == me => {
                    self.holdings = Some(*a);
                    self.learn_nonce(now, a.nonce);
                }
                Fact::SealingClosed { batch } => {
                    let certified = self.certified_index();
                    self.closings.heard(now, index, *batch, certified);
                }
                _ => {}
            }
        }
        (facts, fates)
    }

    /// The nonce of the transaction in flight with id `tx` (an earlier
    /// signing of a re-signed nonce has another id).
    fn nonce_of(&self, tx: &Digest) -> Option<u64> {
        self.inflight
            .iter()
            .find(|(_, i)| i.id == *tx)
            .map(|(n, _)| *n)
    }

    /// The ledger refused `nonce`. If the account's nonce is already past it
    /// (see [`Rejection::expected_nonce`]), only this payload is signed
    /// again, after the others in flight. Otherwise the account's nonce did
    /// not move, so every later transaction in flight is re-signed one
    /// nonce down (a
    /// nonce rejection retries the transaction itself, a bounded number of
    /// times).
    fn rejected(&mut self, now: Timestamp, nonce: u64, reason: &Rejection) -> Vec<TxFate> {
        let mut fates = Vec::new();
        let first = self.inflight.remove(&nonce).expect("checked");
        if let Some(e) = reason.expected_nonce.filter(|e| *e > nonce)
            && first.resigns < MAX_RESIGNS
        {
            // The account moved past `nonce` without this transaction
            // (another process with this key, or this one before a restart,
            // used it): this signing can never apply, so its payload is
            // signed again after everything in flight. The others in flight
            // may still apply as signed and are left alone.
            let at = self.next_nonce.unwrap_or(e).max(e);
            self.next_nonce = Some(at + 1);
            self.send_new(now, at, first.tx.tx.kind, first.resigns + 1);
            return fates;
        }
        let mut redo: Vec<(TxKind, u8)> = Vec::new();
        if reason.kind == RejectionKind::Nonce && first.resigns < MAX_RESIGNS {
            redo.push((first.tx.tx.kind, first.resigns + 1));
        } else {
            fates.push(TxFate::Rejected {
                kind: first.tx.tx.kind,
                reason: reason.clone(),
            });
        }
        let later: Vec<u64> = self.inflight.range(nonce..).map(|(n, _)| *n).collect();
        for n in later {
            let i = self.inflight.remove(&n).expect("listed");
            redo.push((i.tx.tx.kind, i.resigns));
        }
        self.next_nonce = Some(nonce + redo.len() as u64);
        for (i, (kind, resigns)) in redo.into_iter().enumerate() {
            self.send_new(now, nonce + i as u64, kind, resigns);
        }
        fates
    }

    /// Re-sends everything in flight through the next gateway if the oldest
    /// transaction has waited longer than the patience.
    pub fn on_timeout(&mut self, now: Timestamp) {
        if self.judge_due().is_some_and(|t| t <= now) {
            self.judge_sources(now);
        }
        if self
            .held_since
            .is_some_and(|t| now.saturating_since(t) >= self.patience)
        {
            // No holdings reported yet: ask again.
            self.held_since = Some(now);
            self.request_holdings();
        }
        if self.widen_due().is_some_and(|t| t <= now) {
            self.widen(now);
        }
        if self.certified_due().is_some_and(|t| t <= now) {
            self.widen_certified(now);
        }
        let stuck = self
            .oldest_sent()
            .is_some_and(|t| now.saturating_since(t) >= self.patience);
        if !stuck {
            return;
        }
        self.failovers += 1;
        self.gateway = (self.gateway + 1) % self.committee_size().max(1);
        if self.all_sources() {
            self.resubscribe();
        } else {
            self.widen(now);
        }
        // Its certified sources may be withholding the transaction's fate.
        if matches!(self.delivery, FactDelivery::Certified { .. })
            && self.certified < self.committee_size()
        {
            self.widen_certified(now);
        }
        let txs: Vec<SignedTransaction> = self.inflight.values().map(|i| i.tx.clone()).collect();
        for i in self.inflight.values_mut() {
            i.sent_at = now;
        }
        for tx in &txs {
            self.send(tx);
        }
    }

    /// When the oldest transaction in flight was last sent: the first by
    /// nonce, since send times never decrease along the nonces (a new
    /// nonce is sent now, a failover re-sends them all now, a re-signing
    /// takes nonces after all in flight), so it is found without walking
    /// every one after each event the node handles.
    fn oldest_sent(&self) -> Option<Timestamp> {
        let first = self.inflight.first_key_value().map(|(_, i)| i.sent_at);
        debug_assert_eq!(first, self.inflight.values().map(|i| i.sent_at).min());
        first
    }

    /// When [`LightCore::on_timeout`] has work next.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.oldest_sent()
            .into_iter()
            .chain(self.held_since)
            .min()
            .map(|t| t + self.patience)
            .into_iter()
            .chain(self.widen_due())
            .chain(self.certified_due())
            .chain(self.judge_due())
            .min()
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit<NodeMessage>> {
        let t = self.out.pop_front();
        // A subscription goes to every fact source at once; an idle light
        // node should not keep room for that burst (a simulator holds
        // hundreds of thousands of them).
        if self.out.is_empty() && self.out.capacity() > OUT_KEPT {
            self.out.shrink_to(OUT_KEPT);
        }
        t
    }
}

/// How many validators from position `from` on (in committee order,
/// wrapping) it takes for their stake to be `enough`, and at least
/// `wanted`; at most all of them.
fn covering(c: &Committee, from: usize, wanted: usize, enough: impl Fn(u64) -> bool) -> usize {
    let n = c.size();
    let (mut stake, mut k) = (0u64, 0);
    while k < n && (k < wanted || !enough(stake)) {
        stake += c.stake(AuthorityIndex::new(((from + k) % n) as u32));
        k += 1;
    }
    k
}
