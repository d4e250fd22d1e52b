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

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use idlegrid_dag_ledger::consensus::{AuthorityIndex, Committee};
use idlegrid_dag_ledger::ledger::{ChainId, Nonce, SignedTransaction, Transaction, TxKind};
use idlegrid_primitives::{
    AccountId, Digest, Duration, Keypair, NodeId, SignatureVerifier, Timestamp, Transmit, encode,
};

use crate::certified::{FactsMode, ProvenFacts, ProvenLeaf};
use crate::facts::{FactError, FactQuorum};
use crate::market::{MARKETPLACE_APP, MarketTx};
use crate::wire::{
    AccountState, Fact, FactBatch, GatewayRequest, NodeMessage, Rejection, RejectionKind,
};

/// Transactions one light node keeps in flight at most.
pub const MAX_INFLIGHT: usize = 1_024;
/// Times a transaction is re-signed after nonce rejections before it is
/// given up.
const MAX_RESIGNS: u8 = 3;
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
    /// The last few certified leaves decided, by commit: the same leaf from
    /// another source is recognized by comparing it (a pointer, when it
    /// shares memory), not by hashing its facts again.
    recent_leaves: [Option<(u64, Arc<[Fact]>)>; RECENT_LEAVES],
    next_leaf: usize,
}

/// Certified leaves a light node remembers as decided (see
/// `LightCore::recent_leaves`).
const RECENT_LEAVES: usize = 4;

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
            recent_leaves: Default::default(),
            next_leaf: 0,
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

    /// Validators it takes facts from now (see the module docs): the whole
    /// committee in committee order, or its window from the first gateway.
    pub fn fact_sources(&self) -> impl Iterator<Item = NodeId> + '_ {
        let base = if self.all_sources() {
            0
        } else {
            self.source_base
        };
        (0..self.sources).filter_map(move |k| self.validator(base + k))
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
            let req = self.subscription(k, from.filter(|_| !old.contains(&v)));
            self.out
                .push_back(Transmit::to(v, NodeMessage::Gateway(req)));
        }
    }

    /// What the fact source at position `k` is asked, replaying from
    /// commit `from` if given.
    fn subscription(&self, k: usize, from: Option<u64>) -> GatewayRequest {
        match (self.delivery, from) {
            (FactDelivery::Reported, None) => GatewayRequest::Subscribe,
            (FactDelivery::Reported, Some(i)) => GatewayRequest::SubscribeFrom(i),
            (FactDelivery::Certified { .. }, from) => GatewayRequest::SubscribeWith {
                from,
                mode: match k < self.certified {
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
        let last = self.last_certified.map_or(0, |(_, i)| i);
        self.last_certified = Some((now, last));
        self.certified = (self.certified + 1).min(self.committee_size());
        if self.certified > self.sources {
            self.widen(now);
        }
        let k = self.certified - 1;
        let source = self.fact_sources().nth(k);
        if let Some(v) = source {
            let from = last.saturating_sub(crate::certified::VOTES_KEPT);
            let req = self.subscription(k, Some(from));
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
        .sign(&self.key);
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
        let facts = self.quorum.observe(now, from, batch)?;
        Ok(self.decided(now, facts))
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
        let last = self.last_certified.map_or(0, |(_, i)| i);
        self.last_certified = Some((now, last.max(index)));
        Ok(self.decided(now, facts))
    }

    /// `from` sent a forged certificate: remembered, and replaced at once
    /// as a source of certified facts if it was one.
    fn caught_forging(&mut self, now: Timestamp, from: NodeId) {
        self.forgers.insert(from);
        let wanted = match self.delivery {
            FactDelivery::Certified { sources, .. } => sources,
            FactDelivery::Reported => 0,
        };
        let live = |me: &Self| {
            me.fact_sources()
                .take(me.certified)
                .filter(|v| !me.forgers.contains(v))
                .count()
        };
        while live(self) < wanted && self.certified < self.committee_size() {
            self.widen_certified(now);
        }
    }

    /// Validators caught sending a forged certificate.
    pub fn forgers(&self) -> impl Iterator<Item = &NodeId> + '_ {
        self.forgers.iter()
    }

    /// Follows facts just decided: the fates of this node's own
    /// transactions among them, and its holdings.
    fn decided(&mut self, now: Timestamp, facts: Vec<Fact>) -> (Vec<Fact>, Vec<TxFate>) {
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
