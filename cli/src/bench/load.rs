//! The benchmark's clients: each is the reference node's light client
//! ([`ClientNode`]) wrapped in a [`LoadMachine`] that submits signed
//! transfers at a steady rate (as the simulator's consensus scenario wraps
//! a validator with its load), driven by the runtime's one loop
//! ([`crate::runtime::drive`]). Two latencies are measured, both from the
//! submission:
//! - **applied**: the client's [`ClientEvent::Applied`], the moment f + 1
//!   validators have reported the transfer applied — what a user waits for;
//! - **gateway commit**: the moment the gateway validator's own report of
//!   it arrives — the simulator's measure (submission → commit at the
//!   submitting validator), plus one loopback hop each way.
//!
//! The client sees the gateway's report in the fact batches it receives and
//! ties it to its submission by the transaction id it sent (it watches its
//! own outgoing `Submit`s): everything it measures it learns from its own
//! messages.

use std::collections::BTreeMap;

use idlegrid_dag_ledger::ledger::TxKind;
use idlegrid_node::client::{ClientEvent, ClientNode};
use idlegrid_node::wire::{Fact, GatewayRequest, NodeMessage};
use idlegrid_primitives::{
    AccountId, Amount, Destination, Digest, Duration, Machine, NodeId, Timestamp, Transmit,
};
use tokio::sync::mpsc;

use crate::runtime::{Completion, Role};

/// Load is submitted in batches this far apart (the simulator's period).
pub const LOAD_PERIOD: Duration = Duration::from_millis(20);
/// Transfer amounts cycle through this many values, so each transfer in
/// flight is told apart by its amount (more than the outbox's
/// [`idlegrid_node::light::MAX_INFLIGHT`]).
const AMOUNT_CYCLE: u64 = 4_096;
/// Submissions whose gateway report is awaited, at most (beyond it, the
/// ones already applied by f + 1 are forgotten: their gateway sample is
/// lost, counted in [`LoadMachine::gateway_lost`]).
const MAX_AWAITED: usize = 2 * AMOUNT_CYCLE as usize;

/// When a client submits and which part of it counts.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Transfers per second.
    pub rate: f64,
    /// First submission.
    pub start: Timestamp,
    /// Submissions before this are warm-up (not measured).
    pub measure_from: Timestamp,
    /// Last submission (and end of the measurement window).
    pub end: Timestamp,
}

/// A light client plus a steady transfer load to `to`.
pub struct LoadMachine {
    client: ClientNode,
    to: AccountId,
    schedule: Schedule,
    next_load: Timestamp,
    carry: f64,
    seq: u64,
    /// Submission time by amount, of transfers in flight.
    pending: BTreeMap<u64, Timestamp>,
    /// By transaction id sent: submission time, amount, and the gateway
    /// whose report is the gateway commit.
    awaited: BTreeMap<Digest, (Timestamp, u64, NodeId)>,
    /// Submissions the outbox refused (full: the client's own back-pressure).
    pub refused: u64,
    /// Submit → gateway's report (µs), of submissions inside the window.
    pub gateway_us: Vec<u64>,
    /// Gateway reports never seen (forgotten past a bound of awaited
    /// reports).
    pub gateway_lost: u64,
}

impl LoadMachine {
    /// `client` paying `to` on `schedule`.
    pub fn new(client: ClientNode, to: AccountId, schedule: Schedule) -> Self {
        Self {
            client,
            to,
            next_load: schedule.start,
            schedule,
            carry: 0.0,
            seq: 0,
            pending: BTreeMap::new(),
            awaited: BTreeMap::new(),
            refused: 0,
            gateway_us: Vec::new(),
            gateway_lost: 0,
        }
    }

    /// Notes an outgoing submission: its id, when its transfer was first
    /// submitted, and the gateway it went to (a re-send keeps the first).
    fn on_transmit(&mut self, t: &Transmit<NodeMessage>) {
        let (Destination::To(gateway), NodeMessage::Gateway(GatewayRequest::Submit(tx))) =
            (&t.to, &t.msg)
        else {
            return;
        };
        let TxKind::Transfer { to, amount } = &tx.tx.kind else {
            return;
        };
        let Ok(a) = u64::try_from(amount.get()) else {
            return;
        };
        let Some(sent) = self.pending.get(&a).copied().filter(|_| *to == self.to) else {
            return;
        };
        if self.awaited.len() >= MAX_AWAITED {
            let before = self.awaited.len();
            let pending = &self.pending;
            self.awaited.retain(|_, (_, a, _)| pending.contains_key(a));
            self.gateway_lost += (before - self.awaited.len()) as u64;
        }
        self.awaited.entry(tx.id()).or_insert((sent, a, *gateway));
    }

    /// The gateway commits among the facts `from` reports.
    fn on_facts(&mut self, now: Timestamp, from: NodeId, facts: &[Fact]) {
        for f in facts {
            let Fact::Applied { tx, .. } = f else {
                continue;
            };
            let Some((sent, _, gateway)) = self.awaited.get(tx).copied() else {
                continue;
            };
            if gateway != from {
                continue;
            }
            self.awaited.remove(tx);
            if self.in_window(sent) {
                let us = now.as_micros().saturating_sub(sent.as_micros());
                self.gateway_us.push(us);
            }
        }
    }

    /// Whether a submission at `t` is measured.
    fn in_window(&self, t: Timestamp) -> bool {
        t >= self.schedule.measure_from && t <= self.schedule.end
    }

    fn submit_due(&mut self, now: Timestamp) {
        self.carry += self.schedule.rate * LOAD_PERIOD.as_micros() as f64 / 1e6;
        while self.carry >= 1.0 {
            self.carry -= 1.0;
            let amount = 1 + self.seq % AMOUNT_CYCLE;
            if self.pending.contains_key(&amount) {
                // AMOUNT_CYCLE transfers in flight: the outbox would refuse too.
                self.refused += 1;
                continue;
            }
            let kind = TxKind::Transfer {
                to: self.to,
                amount: Amount::new(amount.into()),
            };
            match self.client.submit_ledger(now, kind) {
                Ok(()) => {
                    self.seq += 1;
                    self.pending.insert(amount, now);
                }
                Err(_) => self.refused += 1,
            }
        }
    }

    /// The submission time of the transfer `kind`, which left flight.
    fn settle(&mut self, kind: &TxKind) -> Option<Timestamp> {
        match kind {
            TxKind::Transfer { to, amount } if *to == self.to => {
                let a = u64::try_from(amount.get()).ok()?;
                self.pending.remove(&a)
            }
            _ => None,
        }
    }

    fn loading(&self) -> bool {
        self.next_load <= self.schedule.end
    }
}

impl Machine for LoadMachine {
    type Message = NodeMessage;
    type Event = ClientEvent;

    fn handle_message(&mut self, now: Timestamp, from: NodeId, msg: NodeMessage) {
        if let NodeMessage::Facts(batch) = &msg {
            self.on_facts(now, from, &batch.facts);
        }
        self.client.handle_message(now, from, msg);
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        while self.loading() && now >= self.next_load {
            self.submit_due(now);
            self.next_load = self.next_load + LOAD_PERIOD;
        }
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit<NodeMessage>> {
        let t = self.client.poll_transmit()?;
        self.on_transmit(&t);
        Some(t)
    }

    fn poll_event(&mut self) -> Option<ClientEvent> {
        self.client.poll_event()
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        let load = self.loading().then_some(self.next_load);
        match (self.client.poll_timeout(), load) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// What one client measured.
#[derive(Debug, Clone, Default)]
pub struct ClientTally {
    /// Transfers submitted inside the measurement window.
    pub submitted: u64,
    /// Confirmations received inside the window (any submission time).
    pub confirmed_in_window: u64,
    /// Latency (µs) of each confirmed transfer submitted inside the window.
    pub latencies_us: Vec<u64>,
    /// Submit → the gateway's report (µs), of transfers submitted inside
    /// the window whose gateway report arrived.
    pub gateway_us: Vec<u64>,
    /// Gateway reports forgotten (never more than the awaited bound).
    pub gateway_lost: u64,
    /// Rejected by the ledger.
    pub rejected: u64,
    /// Refused by the client's own outbox (full).
    pub refused: u64,
    /// Submitted inside the window, never confirmed.
    pub unconfirmed: u64,
}

/// The driver's role for one benchmark client.
pub struct LoadRole {
    machine: LoadMachine,
    tally: ClientTally,
    /// The drain after the last submission ends here.
    drain_until: Timestamp,
    clock: idlegrid_transport::Clock,
}

impl LoadRole {
    /// A role for `machine`; waits for confirmations until `drain_until`.
    pub fn new(
        machine: LoadMachine,
        drain_until: Timestamp,
        clock: idlegrid_transport::Clock,
    ) -> Self {
        Self {
            machine,
            tally: ClientTally::default(),
            drain_until,
            clock,
        }
    }

    /// The tally, once the drive ended.
    pub fn into_tally(mut self) -> ClientTally {
        let m = &mut self.machine;
        self.tally.refused = m.refused;
        self.tally.gateway_us = std::mem::take(&mut m.gateway_us);
        self.tally.gateway_lost = m.gateway_lost;
        self.tally.unconfirmed = m.pending.values().filter(|t| m.in_window(**t)).count() as u64;
        self.tally.submitted = self.tally.latencies_us.len() as u64 + self.tally.unconfirmed;
        self.tally
    }
}

impl Role for LoadRole {
    type M = LoadMachine;

    fn machine(&mut self) -> &mut LoadMachine {
        &mut self.machine
    }

    fn on_event(&mut self, ev: ClientEvent, now: Timestamp, _: &mpsc::Sender<Completion<Self>>) {
        match ev {
            ClientEvent::Applied { tx } => {
                let Some(sent) = self.machine.settle(&tx) else {
                    return;
                };
                if self.machine.in_window(now) {
                    self.tally.confirmed_in_window += 1;
                }
                if self.machine.in_window(sent) {
                    let us = now.as_micros().saturating_sub(sent.as_micros());
                    self.tally.latencies_us.push(us);
                }
            }
            // Settling leaves flight; only our own transfers count.
            ClientEvent::LedgerRejected { tx, .. } if self.machine.settle(&tx).is_some() => {
                self.tally.rejected += 1;
            }
            _ => {}
        }
    }

    fn status(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    fn finished(&self) -> bool {
        let now = self.clock.now();
        now >= self.drain_until || (!self.machine.loading() && self.machine.pending.is_empty())
    }
}
