//! The provider: a light node that rents out its machine.
//!
//! It offers slots once (no price), then asks its price in sealed asks, one
//! per clearing batch, through its own [`Sealer`]: a salted commitment
//! first, revealed once f + 1 validators report the batch closed for
//! commits, the reveal carrying the next batch's sealed ask. The price it
//! asks is [`ProviderOffer::price`] until its operator changes it with
//! [`ProviderNode::set_ask`] (`None` stops asking). Then, for every lot
//! matched to it (a fact backed by
//! f + 1 validators): waits for the client's inputs and for the round to
//! open on the ledger, checks the inputs are the ones the ledger's plan
//! names, asks its driver to run them ([`ProviderEvent::Execute`] — the
//! simulator answers with a simulated executor, a real process with a
//! sandbox), delivers the outputs with a salted commitment, and answers an
//! accusation: it accepts when it knows it cheated on an accused slot and
//! disputes otherwise.
//!
//! Two facts it must act on before a deadline come from its client's
//! transactions, not its own: the round's opening (its client's inputs
//! arrived, the plan should be on the ledger) and, once it sent its
//! delivery, the accusation or settlement. When one has not come for the
//! certified patience (half of it for the opening, due within a
//! transaction's latency), the provider asks validators drawn from the
//! committee to replay its certified facts
//! ([`LightCore::check_expectations`]): sources that withhold a leaf would
//! otherwise see an honest provider slashed for a plan it never heard of.
//! A certified opening of a lot whose match it never heard of opens the
//! lot (the ledger opens only matched lots).

use std::collections::{BTreeMap, VecDeque};

use idlegrid_entrap::output_commitment;
use idlegrid_primitives::{
    AccountId, Amount, Digest, Domain, Machine, NodeId, Salt, Seed, Timestamp, Transmit,
};

use crate::light::{Decided, Expectation, LightCore, LightSetup, TxFate};
use crate::market::sealing::Sealer;
use crate::market::{Environment, MarketParams, MarketTx, Settlement, round_id};
use crate::wire::{Fact, LotData, NodeMessage, PeerMessage, Rejection};

const SALT_DOMAIN: Domain = Domain::new("idlegrid/node/provider/salt");
/// Lots a provider holds inputs for before their match is confirmed.
const MAX_EARLY_INPUTS: usize = 256;
/// Settled lots a provider remembers, so that a replayed opening of one
/// does not open it again.
const MAX_SETTLED_KEPT: usize = 256;

/// A lot: (client, job, lot).
pub type LotKey = (AccountId, u64, u32);

/// What the provider offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderOffer {
    /// Price per compute-second of its first sealed asks (see
    /// [`ProviderNode::set_ask`]).
    pub price: Amount,
    /// Parallel lots.
    pub capacity: u32,
    /// Stake per slot (the marketplace's).
    pub stake_per_slot: Amount,
    /// Region code.
    pub region: u8,
    /// What its runtime runs (executors, packages).
    pub environment: Environment,
}

/// What the driver's executor reports for a lot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecReport {
    /// Output digests, slot order.
    pub outputs: Vec<Digest>,
    /// Metered compute microseconds of the whole lot.
    pub usage_micros: u64,
    /// Slots on which the executor knowingly did not compute honestly (a
    /// simulated cheater, or a real one configured to cheat for tests).
    pub cheated: Vec<bool>,
    /// The output bytes behind `outputs`, slot order, when the executor
    /// ran real bytes; the provider hands them to the client.
    pub data: Option<Vec<Vec<u8>>>,
}

/// What a provider reports to its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderEvent {
    /// Effect: run these inputs, then call [`ProviderNode::handle_executed`].
    Execute {
        /// The lot.
        lot: LotKey,
        /// Slot inputs, slot order.
        inputs: Vec<Digest>,
        /// The program and input bytes, when the client sent them (checked
        /// against `inputs`).
        data: Option<LotData>,
    },
    /// A lot was matched to it (f + 1 backed).
    Matched {
        /// The lot.
        lot: LotKey,
        /// Price per compute-second.
        price: Amount,
    },
    /// A lot settled.
    Settled(Settlement),
    /// A lot lapsed unplanned (its client sent no plan in time): the slot
    /// is free again; the client's lot bond was burned.
    Unplanned {
        /// The lot.
        lot: LotKey,
        /// The burned bond.
        bond: Amount,
    },
    /// It answered an accusation: `confessed` if it knew it cheated on an
    /// accused slot (it accepts), else it disputes.
    Answered {
        /// The lot.
        lot: LotKey,
        /// Accepted rather than disputed.
        confessed: bool,
    },
    /// One of its transactions was applied.
    Applied {
        /// The payload.
        tx: Box<idlegrid_dag_ledger::ledger::TxKind>,
    },
    /// The ledger rejected one of its transactions.
    Rejected {
        /// The payload.
        tx: Box<MarketTx>,
        /// Why.
        reason: Rejection,
    },
    /// The ledger refused one of its sealing transactions, typed (its
    /// nonce was already freed by the matching [`ProviderEvent::Rejected`]).
    SealRejected(crate::market::SealError),
    /// A message was ignored (bad input from a peer).
    Ignored {
        /// Sender.
        from: NodeId,
        /// Why.
        reason: Ignored,
    },
}

/// Why a light node ignored a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Ignored {
    /// Fact batch refused.
    #[error("fact batch: {0}")]
    Facts(#[from] crate::facts::FactError),
    /// Inputs for a lot this node has no match for, or from someone else
    /// than the lot's client.
    #[error("inputs for an unknown lot or from a stranger")]
    UnknownLot,
    /// Inputs that differ from the plan on the ledger.
    #[error("inputs differ from the ledger's plan")]
    InputsMismatch,
    /// Output bytes that are not what the provider put on the ledger.
    #[error("output bytes differ from the delivered digests")]
    OutputsMismatch,
    /// A message kind this role does not take.
    #[error("unexpected message")]
    Unexpected,
}

#[derive(Debug, Clone, Default)]
struct Lot {
    inputs: Option<(Vec<Digest>, Option<LotData>)>,
    planned: Option<Vec<Digest>>,
    running: bool,
    report: Option<ExecReport>,
    delivered: bool,
    /// A fact the lot waits for that its client's transaction makes (see
    /// the module docs), and since when.
    awaiting: Option<Expectation>,
    /// The order in which its match was heard (a lot heard of only by
    /// its client's inputs has none).
    matched: Option<u64>,
}

/// A client's inputs for a lot whose match the provider has not heard of.
#[derive(Debug, Clone)]
struct Early {
    inputs: (Vec<Digest>, Option<LotData>),
    since: Expectation,
}

/// A provider node.
#[derive(Debug)]
pub struct ProviderNode {
    core: LightCore,
    offer: ProviderOffer,
    offered: bool,
    auto_offer: bool,
    seed: Seed,
    sealer: Sealer,
    lots: BTreeMap<LotKey, Lot>,
    early: BTreeMap<LotKey, Early>,
    /// The last lots settled (a replayed opening of one is not a new lot).
    settled: VecDeque<LotKey>,
    /// Matches heard so far (orders the unopened lots).
    matches_heard: u64,
    events: VecDeque<ProviderEvent>,
}

impl ProviderNode {
    /// A provider that will offer `offer` when first started.
    pub fn new(setup: LightSetup, offer: ProviderOffer, seed: Seed) -> Self {
        let sealer = Sealer::new(
            setup.key.account_id(),
            seed.derive("sealer"),
            MarketParams::DEFAULT.reveal_batches,
        );
        Self {
            core: LightCore::new(setup),
            offer,
            offered: false,
            auto_offer: true,
            seed,
            sealer,
            lots: BTreeMap::new(),
            early: BTreeMap::new(),
            settled: VecDeque::new(),
            matches_heard: 0,
            events: VecDeque::new(),
        }
    }

    /// Its account.
    pub fn account(&self) -> AccountId {
        self.core.account()
    }

    /// The light-node core (outbox, failovers).
    pub fn core(&self) -> &LightCore {
        &self.core
    }

    /// Lots it holds (matched, not settled).
    pub fn open_lots(&self) -> usize {
        self.lots.len()
    }

    /// Its sealed orders not yet revealed or forfeited.
    pub fn sealed_pending(&self) -> usize {
        self.sealer.pending()
    }

    /// The price its next sealed asks carry; `None` stops asking (leaving
    /// the market, or never selling below a price). Takes effect at the
    /// next batch: an ask already sealed is revealed at its own price.
    pub fn set_ask(&mut self, now: Timestamp, price: Option<Amount>) {
        self.sealer.set_ask(price);
        self.maybe_ask(now);
    }

    /// Seals a fresh ask if it is asking and no ask is waiting for its
    /// batch to close (a provider that keeps asking seals the next one with
    /// its last one's reveal).
    fn maybe_ask(&mut self, now: Timestamp) {
        if !self.offered {
            return;
        }
        if let Some(tx) = self.sealer.poll_ask() {
            self.submit(now, &tx);
        }
    }

    /// A provider that subscribes when started but offers only when told
    /// ([`ProviderNode::offer_now`]): a newcomer, or a key waiting for funds.
    pub fn without_auto_offer(mut self) -> Self {
        self.auto_offer = false;
        self
    }

    /// Submits any marketplace transaction (a registry record…; its asks it
    /// seals itself).
    pub fn submit(&mut self, now: Timestamp, tx: &MarketTx) {
        // A full outbox only delays; the driver sees `core().inflight()`.
        let _ = self.core.submit_market(now, tx);
    }

    /// Submits a plain ledger transaction (bond, unbond, withdraw, transfer).
    pub fn submit_ledger(&mut self, now: Timestamp, kind: idlegrid_dag_ledger::ledger::TxKind) {
        let _ = self.core.submit(now, kind);
    }

    /// Offers its slots now (once).
    pub fn offer_now(&mut self, now: Timestamp) {
        self.core.start(now);
        if self.offered {
            return;
        }
        self.offered = true;
        self.submit_offer(now);
        self.sealer.set_ask(Some(self.offer.price));
        self.maybe_ask(now);
    }

    /// Its operator changes the offer: `capacity` slots of `environment`
    /// (a new [`MarketTx::Offer`] replaces the listed one; slots beyond a
    /// smaller capacity must be free) and `price` for its next sealed asks.
    pub fn change_offer(
        &mut self,
        now: Timestamp,
        price: Amount,
        capacity: u32,
        environment: Environment,
    ) {
        self.offer.price = price;
        self.offer.capacity = capacity;
        self.offer.environment = environment;
        if self.offered {
            self.submit_offer(now);
            self.set_ask(now, Some(price));
        }
    }

    /// What it offers (after the last [`ProviderNode::change_offer`]).
    pub fn offer(&self) -> &ProviderOffer {
        &self.offer
    }

    fn submit_offer(&mut self, now: Timestamp) {
        let o = &self.offer;
        let tx = MarketTx::Offer {
            capacity: o.capacity,
            stake_per_slot: o.stake_per_slot,
            region: o.region,
            environment: o.environment.clone(),
        };
        self.submit(now, &tx);
    }

    /// The driver's executor finished `lot`.
    pub fn handle_executed(&mut self, now: Timestamp, lot: LotKey, report: ExecReport) {
        if let Some(l) = self.lots.get_mut(&lot)
            && l.running
        {
            l.running = false;
            l.report = Some(report);
            self.maybe_deliver(now, lot);
        }
    }

    fn start(&mut self, now: Timestamp) {
        self.core.start(now);
        if self.auto_offer {
            self.offer_now(now);
        }
    }

    fn on_fact(&mut self, now: Timestamp, fact: Fact) {
        let me = self.account();
        for tx in self.sealer.handle_fact(&fact) {
            self.submit(now, &tx);
        }
        match fact {
            Fact::Matched {
                client,
                job,
                lot,
                provider,
                price,
                ..
            } if provider == me => {
                let key = (client, job, lot);
                let early = self.early.remove(&key);
                let l = Lot {
                    awaiting: early.as_ref().map(|e| e.since),
                    inputs: early.map(|e| e.inputs),
                    matched: Some(self.matches_heard),
                    ..Lot::default()
                };
                self.matches_heard += 1;
                self.lots.insert(key, l);
                self.forget_unopened();
                self.events
                    .push_back(ProviderEvent::Matched { lot: key, price });
            }
            Fact::RoundOpened {
                client,
                job,
                lot,
                provider,
                inputs,
            } if provider == me => {
                let key = (client, job, lot);
                if !self.lots.contains_key(&key) && !self.settled.contains(&key) {
                    // Its match was not heard of (withheld, and older than
                    // a replay reaches): the ledger opens only matched
                    // lots, so the certified opening stands for it.
                    let early = self.early.remove(&key);
                    let l = Lot {
                        inputs: early.map(|e| e.inputs),
                        ..Lot::default()
                    };
                    self.lots.insert(key, l);
                }
                if let Some(l) = self.lots.get_mut(&key) {
                    l.planned = Some(inputs);
                    l.awaiting = None;
                    self.maybe_execute(key);
                }
            }
            Fact::Accused {
                client,
                job,
                lot,
                provider,
                traps,
            } if provider == me => {
                let key = (client, job, lot);
                if let Some(l) = self.lots.get_mut(&key) {
                    l.awaiting = None;
                }
                let guilty = self
                    .lots
                    .get(&key)
                    .and_then(|l| l.report.as_ref())
                    .is_some_and(|r| {
                        traps
                            .iter()
                            .any(|t| r.cheated.get(t.get() as usize).copied().unwrap_or(false))
                    });
                let tx = if guilty {
                    MarketTx::Accept { client, job, lot }
                } else {
                    self.send_evidence(key, &traps);
                    MarketTx::Dispute { client, job, lot }
                };
                self.submit(now, &tx);
                self.events.push_back(ProviderEvent::Answered {
                    lot: key,
                    confessed: guilty,
                });
            }
            Fact::Settled(s) if s.provider == me => {
                self.lot_ended((s.client, s.job, s.lot));
                self.events.push_back(ProviderEvent::Settled(*s));
            }
            Fact::Unplanned {
                client,
                job,
                lot,
                provider,
                bond,
            } if provider == me => {
                let lot = (client, job, lot);
                self.lot_ended(lot);
                self.events
                    .push_back(ProviderEvent::Unplanned { lot, bond });
            }
            Fact::SealRejected { owner, error } if owner == me => {
                self.events.push_back(ProviderEvent::SealRejected(error));
            }
            _ => {}
        }
    }

    /// Lot `key` settled or lapsed: forgotten, and remembered as ended (a
    /// replayed opening of it is not a new lot).
    fn lot_ended(&mut self, key: LotKey) {
        self.lots.remove(&key);
        if self.settled.len() >= MAX_SETTLED_KEPT {
            self.settled.pop_front();
        }
        self.settled.push_back(key);
    }

    /// Keeps at most `capacity` lots matched but not opened, forgetting
    /// the oldest beyond: the ledger holds no more matched lots of this
    /// provider than it has slots, and lots on one slot are matched one
    /// after the other, so one more means an older one lapsed unplanned
    /// (its [`Fact::Unplanned`] withheld) — or was opened without the
    /// provider hearing, which it cannot serve anyway. By count, not by
    /// the plan deadline: the deadline is in the ledger's live time, which
    /// a consensus stall holds back while the provider's clock runs on.
    fn forget_unopened(&mut self) {
        let mut unopened: Vec<(u64, LotKey)> = (self.lots.iter())
            .filter(|(_, l)| l.planned.is_none())
            .filter_map(|(k, l)| l.matched.map(|seq| (seq, *k)))
            .collect();
        let keep = self.offer.capacity.max(1) as usize;
        if unopened.len() <= keep {
            return;
        }
        unopened.sort_unstable();
        for (_, k) in unopened.drain(..unopened.len() - keep) {
            self.lot_ended(k);
        }
    }

    /// Inputs from `from` for one of its own lots (the key carries the
    /// sender's account, so nobody can hand over inputs for another's lot):
    /// the client planned the lot, so its opening is expected from now.
    fn on_inputs(
        &mut self,
        now: Timestamp,
        from: NodeId,
        key: LotKey,
        inputs: (Vec<Digest>, Option<LotData>),
    ) {
        if inputs.1.as_ref().is_some_and(|d| !d.matches(&inputs.0)) {
            return self.ignore(from, Ignored::InputsMismatch);
        }
        let since = self.core.expect_soon(now);
        match self.lots.get_mut(&key) {
            Some(l) if l.inputs.is_none() => {
                l.inputs = Some(inputs);
                if l.planned.is_none() {
                    l.awaiting = Some(since);
                }
                self.maybe_execute(key);
            }
            Some(_) => self.ignore(from, Ignored::Unexpected),
            // The client may hear of the match before this node does.
            None if self.early.len() < MAX_EARLY_INPUTS => {
                self.early.insert(key, Early { inputs, since });
            }
            None => self.ignore(from, Ignored::UnknownLot),
        }
    }

    /// Runs a lot once its inputs arrived and match the ledger's plan.
    fn maybe_execute(&mut self, key: LotKey) {
        let Some(l) = self.lots.get_mut(&key) else {
            return;
        };
        let (Some((inputs, _)), Some(planned)) = (&l.inputs, &l.planned) else {
            return;
        };
        if l.running || l.report.is_some() {
            return;
        }
        if inputs != planned {
            // The client handed over other inputs than it planned (a
            // framing attempt: the referees would re-execute the planned
            // ones). Never run them.
            l.inputs = None;
            self.ignore(key.0.node(), Ignored::InputsMismatch);
            return;
        }
        l.running = true;
        let inputs = planned.clone();
        // Kept until the lot settles: a dispute hands referees the bytes.
        let data = l.inputs.as_ref().and_then(|(_, d)| d.clone());
        self.events.push_back(ProviderEvent::Execute {
            lot: key,
            inputs,
            data,
        });
    }

    fn maybe_deliver(&mut self, now: Timestamp, key: LotKey) {
        let Some(l) = self.lots.get_mut(&key) else {
            return;
        };
        let Some(r) = l.report.as_ref().filter(|_| !l.delivered) else {
            return;
        };
        l.delivered = true;
        let salt = Salt::from_bytes(
            Digest::of(SALT_DOMAIN, &(self.seed.derive("salt").to_bytes(), key)).to_bytes(),
        );
        // Delivered: its client accuses or the lot settles (expected from
        // now, not from when the delivery is heard applied: a source that
        // withholds the leaf with the delivery withholds that too).
        l.awaiting = Some(self.core.expect(now));
        let rid = round_id(key.1, key.2);
        let tx = MarketTx::Deliver {
            client: key.0,
            job: key.1,
            lot: key.2,
            commitment: output_commitment(rid, &r.outputs, &salt),
            outputs: r.outputs.clone(),
            salt,
            usage_micros: r.usage_micros,
        };
        if let Some(outputs) = r.data.clone() {
            let msg = PeerMessage::Outputs {
                job: key.1,
                lot: key.2,
                outputs,
            };
            self.core.send_peer(key.0.node(), msg);
        }
        self.submit(now, &tx);
    }

    fn on_fates(&mut self, now: Timestamp, fates: Vec<TxFate>) {
        for f in fates {
            match f {
                TxFate::Rejected { kind, reason } => {
                    if let Some(tx) = crate::market::decode_market(&kind) {
                        if let Some(again) = self.sealer.rejected(&tx, reason.market.as_ref()) {
                            self.submit(now, &again);
                        }
                        self.events.push_back(ProviderEvent::Rejected {
                            tx: Box::new(tx),
                            reason,
                        });
                    }
                }
                TxFate::Applied { kind, .. } => self
                    .events
                    .push_back(ProviderEvent::Applied { tx: Box::new(kind) }),
            }
        }
    }

    /// Hands every validator the accused slots' bytes (when the lot came
    /// with bytes), so the referees among them can re-run them.
    fn send_evidence(&mut self, key: LotKey, traps: &[idlegrid_entrap::SubtaskIndex]) {
        let Some(d) = self
            .lots
            .get(&key)
            .and_then(|l| l.inputs.as_ref())
            .and_then(|(_, d)| d.as_ref())
        else {
            return;
        };
        let inputs = traps
            .iter()
            .filter_map(|t| d.inputs.get(t.get() as usize).cloned())
            .collect();
        let evidence = crate::wire::Evidence {
            client: key.0,
            job: key.1,
            lot: key.2,
            data: LotData {
                program: d.program.clone(),
                inputs,
            },
        };
        let validators: Vec<NodeId> = self.core.validators().collect();
        for v in validators {
            self.core
                .send_peer(v, PeerMessage::Evidence(evidence.clone()));
        }
    }

    /// Asks for the facts of expectations past the patience (see the
    /// module docs), of lots and early inputs.
    fn check_expectations(&mut self, now: Timestamp) {
        let lots = self.lots.values_mut().filter_map(|l| l.awaiting.as_mut());
        let waits = lots.chain(self.early.values_mut().map(|e| &mut e.since));
        let sealing = self.sealer.awaits_closing();
        self.core.check_expectations(now, waits, sealing);
    }

    /// Follows the facts a report or certificate decided.
    fn on_decided(&mut self, now: Timestamp, from: NodeId, decided: Decided) {
        match decided {
            Ok((facts, fates)) => {
                self.on_fates(now, fates);
                for f in facts {
                    self.on_fact(now, f);
                }
                self.maybe_ask(now);
            }
            Err(e) => self.ignore(from, e.into()),
        }
    }

    fn ignore(&mut self, from: NodeId, reason: Ignored) {
        self.events
            .push_back(ProviderEvent::Ignored { from, reason });
    }
}

impl Machine for ProviderNode {
    type Message = NodeMessage;
    type Event = ProviderEvent;

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
            NodeMessage::Peer(PeerMessage::Inputs {
                job,
                lot,
                inputs,
                data,
            }) => {
                self.on_inputs(now, from, (from.account(), job, lot), (inputs, data));
            }
            _ => self.ignore(from, Ignored::Unexpected),
        }
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        self.start(now);
        self.core.on_timeout(now);
        self.check_expectations(now);
        self.maybe_ask(now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit<NodeMessage>> {
        self.core.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<ProviderEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        if !self.core.started() {
            return Some(Timestamp::ZERO);
        }
        let lots = self.lots.values().filter_map(|l| l.awaiting.as_ref());
        let waits = lots.chain(self.early.values().map(|e| &e.since));
        let due = self
            .core
            .expectation_due(waits, self.sealer.awaits_closing());
        self.core.poll_timeout().into_iter().chain(due).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idlegrid_dag_ledger::consensus::Committee;
    use idlegrid_primitives::Keypair;

    fn provider(capacity: u32) -> ProviderNode {
        let keys: Vec<Keypair> = (0..5)
            .map(|i| Keypair::from_seed(&Seed::from_u64(i)))
            .collect();
        let committee = Committee::equal(keys[1..].iter().map(Keypair::node_id)).unwrap();
        let offer = ProviderOffer {
            price: Amount::new(1_000),
            capacity,
            stake_per_slot: Amount::new(10_000),
            region: 0,
            environment: crate::market::Environment::simulated(),
        };
        let setup = crate::local::light_setup(&keys[0], &committee, 0);
        ProviderNode::new(setup, offer, Seed::from_u64(9))
    }

    fn matched(p: &ProviderNode, job: u64) -> Fact {
        Fact::Matched {
            client: AccountId::from_bytes([7; 32]),
            job,
            lot: 0,
            provider: p.account(),
            price: Amount::new(1_000),
            credibility_ppm: 0,
            verified_lots: 0,
            plan_by: Timestamp::ZERO,
        }
    }

    /// A provider keeps at most its capacity of matched, unopened lots:
    /// a later match on its one slot means the earlier lapsed (its
    /// `Unplanned` withheld). However old its plan deadline, an unopened
    /// lot within the bound is kept (a stall holds the ledger's live time
    /// back), and an opened lot is never forgotten this way.
    #[test]
    fn unopened_lots_are_forgotten_by_count_oldest_first() {
        let mut p = provider(1);
        let late = Timestamp::from_millis(3_600_000);
        p.on_fact(Timestamp::ZERO, matched(&p, 1));
        p.on_fact(late, matched(&p, 2));
        let client = AccountId::from_bytes([7; 32]);
        assert_eq!(p.open_lots(), 1);
        assert!(p.lots.contains_key(&(client, 2, 0)), "the newer match kept");
        // Opened, lot 2 no longer counts: a third match is kept beside it.
        let opened = Fact::RoundOpened {
            client,
            job: 2,
            lot: 0,
            provider: p.account(),
            inputs: vec![Digest::default()],
        };
        p.on_fact(late, opened);
        p.on_fact(late, matched(&p, 3));
        assert_eq!(p.open_lots(), 2);
        // Two slots keep two unopened lots.
        let mut p = provider(2);
        for job in 1..=3 {
            p.on_fact(late, matched(&p, job));
        }
        assert_eq!(p.open_lots(), 2);
        assert!(
            !p.lots.contains_key(&(client, 1, 0)),
            "the oldest forgotten"
        );
    }
}
