//! The marketplace's engine nodes: `idlegrid-node`'s machines and what the
//! simulator supplies around them — simulated executors, each client's
//! workload, a provider operator's pricing and identity strategy, and the
//! referees' re-execution. Every participant learns what it knows from
//! messages; the wrappers only answer the machines' effects and play the
//! operators' choices.
//!
//! Ground truth for cheating models: a simulated subtask input carries its
//! class (real or trap) in the low bit of its first byte, which only the
//! simulated executor reads — it models how well a trap-guessing provider
//! tells traps from real work, as `SimContext::is_trap` always has. The
//! protocol code never looks at it.

use std::collections::{BTreeMap, VecDeque};

use idlegrid_dag_ledger::consensus::byzantine::Participant;
use idlegrid_dag_ledger::ledger::TxKind;
use idlegrid_entrap::TrapSpec;
use idlegrid_executor::{Behaviour, Limits, SimContext, SimulatedExecutor};

use super::coalition::Coalition;
use idlegrid_market::JobGoods;
use idlegrid_node::byzantine::{Forger, LeafWithholder};
use idlegrid_node::client::{ClientEvent, ClientNode, JobSpec, TrapSource};
use idlegrid_node::light::LightCore;
use idlegrid_node::market::{JobRequest, MarketTx, Notice};
use idlegrid_node::provider::{ExecReport, LotKey, ProviderEvent, ProviderNode};
use idlegrid_node::store::persist_step;
use idlegrid_node::validator::{ValidatorEvent, ValidatorNode};
use idlegrid_node::wire::NodeMessage;
use idlegrid_primitives::{
    AccountId, Amount, Digest, Domain, Duration, Machine, NodeId, Timestamp, Transmit,
};
use rand::Rng;
use rand_chacha::ChaCha20Rng;

use super::agents::task_for;
use crate::durable::Disks;

const INPUT_DOMAIN: Domain = Domain::new("idlegrid/sim/marketplace/input");
const FRAME_DOMAIN: Domain = Domain::new("idlegrid/sim/frame");
const FAILED_DOMAIN: Domain = Domain::new("idlegrid/sim/marketplace/failed");
/// Adaptive pricing looks at the last matches this often.
pub const REPRICE_PERIOD: Duration = Duration::from_millis(2_000);

/// A simulated input digest of class `trap` for `key` (see the module docs).
pub fn sim_input<K: serde::Serialize>(trap: bool, key: &K) -> Digest {
    (0u32..)
        .map(|c| Digest::of(INPUT_DOMAIN, &(key, c)))
        .find(|d| (d.as_bytes()[0] & 1 == 1) == trap)
        .expect("one in two digests has each class")
}

/// Whether a simulated input is a trap (the executor's ground truth).
pub fn is_trap_input(d: &Digest) -> bool {
    d.as_bytes()[0] & 1 == 1
}

/// The correct output of a simulated input (what a referee computes).
pub fn truth(d: &Digest) -> Digest {
    super::agents::truth(d)
}

/// What the marketplace's nodes report to observers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketEvent {
    /// A validator's event.
    Validator(ValidatorEvent),
    /// A marketplace notice at validator 0 (welfare records, failures).
    Notice(Box<Notice>),
    /// A referee re-executed this many disputed traps.
    Reexecuted(u64),
    /// A provider's event.
    Provider(AccountId, ProviderEvent),
    /// A provider ran a lot: which slots it cheated on, which were traps.
    Executed {
        /// Provider.
        provider: AccountId,
        /// Lot.
        lot: LotKey,
        /// Cheated slots.
        cheated: Vec<bool>,
        /// Trap slots (ground truth).
        is_trap: Vec<bool>,
        /// Slots its coalition had seen before, answered honestly (always
        /// false outside a coalition).
        recognised: Vec<bool>,
        /// Metered microseconds.
        usage_micros: u64,
    },
    /// A client's event.
    Client(AccountId, ClientEvent),
    /// A client posted a job.
    Posted(AccountId, u64),
    /// A provider changed its price.
    Repriced,
    /// A provider identity entered the market (sent its offer).
    Joined(AccountId),
    /// A whitewashing identity left after a slash; `funded` its successor.
    Left {
        /// The identity.
        account: AccountId,
        /// It funded a fresh key.
        funded: bool,
    },
    /// Stake forwarded to the successor after unbonding.
    Swept(u128),
}

/// One node of the marketplace simulation.
#[derive(Debug)]
pub enum MarketNode {
    /// A validator (and referee).
    Validator(Box<SimValidator>),
    /// A provider identity.
    Provider(Box<SimProvider>),
    /// A client.
    Client(Box<SimClient>),
    /// The owner of a registered app or dataset.
    Owner(Box<OwnerNode>),
}

/// A validator; validator 0 also reports notices to observers.
#[derive(Debug)]
pub struct SimValidator {
    /// The node (honest, or inside its consensus adversary).
    pub node: Participant<ValidatorNode>,
    /// Report notices (validator 0).
    pub report_notices: bool,
    /// Its disk (with `RestartMode::Store`): the disks and its index.
    disk: Option<(Disks, usize)>,
    /// Its forger, if it forges transactions into its blocks.
    forger: Option<Forger>,
    /// What it withholds from its light nodes, if it does.
    withholder: Option<LeafWithholder>,
    /// How far ahead of the simulation's time its clock reads (the node
    /// is handed its clock's reading).
    ahead: Duration,
    events: VecDeque<MarketEvent>,
}

impl SimValidator {
    /// Wraps a validator (durable on `disk` if given, forging with
    /// `forger` if given).
    pub fn new(
        node: Participant<ValidatorNode>,
        report_notices: bool,
        disk: Option<(Disks, usize)>,
        forger: Option<Forger>,
    ) -> Self {
        Self {
            node,
            report_notices,
            disk,
            forger,
            withholder: None,
            ahead: Duration::ZERO,
            events: VecDeque::new(),
        }
    }

    /// The same, its clock reading `ahead` of the simulation's time.
    pub fn clock_ahead(mut self, ahead: Duration) -> Self {
        self.ahead = ahead;
        self
    }

    /// The same, withholding light nodes' facts with `withholder` if given.
    pub fn withholding(mut self, withholder: Option<LeafWithholder>) -> Self {
        self.withholder = withholder;
        self
    }

    /// Its withholder, if it withholds light nodes' facts.
    pub fn withholder(&self) -> Option<&LeafWithholder> {
        self.withholder.as_ref()
    }

    /// The next message it sends (past its withholder, if it has one).
    fn poll_transmit(&mut self) -> Option<Transmit<NodeMessage>> {
        let node = &mut self.node;
        match &mut self.withholder {
            Some(w) => w.next(|| node.poll_transmit()),
            None => node.poll_transmit(),
        }
    }

    /// Its forger, if it has one.
    pub fn forger(&self) -> Option<&Forger> {
        self.forger.as_ref()
    }

    /// The forger's turn, before the node handles an input.
    fn forge(&mut self, now: Timestamp) {
        if let Some(f) = &mut self.forger {
            f.act(self.node.inner_mut(), now);
        }
    }

    /// The durability step (see [`persist_step`]).
    fn persist(&mut self) {
        let Some((disks, i)) = &self.disk else { return };
        let mut disk = crate::durable::lock(&disks[*i]);
        if let Err(e) = persist_step(self.node.inner_mut(), &mut *disk) {
            unreachable!("the simulated disk never fails: {e}");
        }
    }

    fn pump(&mut self) {
        self.persist();
        while let Some(ev) = self.node.poll_event() {
            // Releasing events can apply commits that write checkpoints.
            self.persist();
            if let ValidatorEvent::RefereeDuty {
                client,
                job,
                lot,
                disputed,
                ..
            } = &ev
            {
                // The referee re-executes every disputed trap.
                let outputs: Vec<Digest> = disputed.iter().map(|d| truth(&d.trap.input)).collect();
                self.events
                    .push_back(MarketEvent::Reexecuted(outputs.len() as u64));
                let _ = self.node.inner_mut().vote(*client, *job, *lot, outputs);
            }
            self.events.push_back(MarketEvent::Validator(ev));
        }
        if self.report_notices {
            for n in self.node.inner_mut().drain_notices() {
                self.events.push_back(MarketEvent::Notice(Box::new(n)));
            }
        }
    }
}

/// A provider operator's identity plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityPlan {
    /// Offers at genesis, keeps its key.
    Genesis,
    /// Honest, offers first at `join_at`.
    Newcomer {
        /// When it offers.
        join_at: Timestamp,
    },
    /// Key `generation` of a whitewashing machine: generation 0 offers at
    /// genesis; later ones wait for their predecessor's transfer.
    Whitewash {
        /// Its generation.
        generation: u32,
    },
}

/// Where a provider identity is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
    /// Not offered yet (newcomer before its time, successor before funds).
    Waiting,
    /// Offered.
    Active,
    /// Left after a slash: unbonding, then withdrawing, then done.
    Left(Sweep),
}

/// An abandoned identity's clean-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    /// Waiting for the unbonding to mature.
    Unbonding,
    /// `Withdraw` sent; the balance goes to the successor once applied.
    Withdrawing,
    /// Nothing left to move.
    Done,
}

/// What a whitewashing identity needs to re-enter.
#[derive(Debug, Clone, Copy)]
pub struct Whitewash {
    /// Its successor's account, if the key budget allows one.
    pub heir: Option<AccountId>,
    /// Stake a provider bonds (slot stakes + 1).
    pub provider_stake: Amount,
    /// Smallest account-creating transfer.
    pub min_new_account: Amount,
    /// No re-entry after this.
    pub reenter_until: Timestamp,
}

/// A provider identity with its simulated machine.
#[derive(Debug)]
pub struct SimProvider {
    /// The node.
    pub node: ProviderNode,
    exec: SimulatedExecutor,
    coalition: Option<Member>,
    plan: IdentityPlan,
    life: Life,
    whitewash: Option<Whitewash>,
    funded_heir: bool,
    ask_until: Timestamp,
    price: Amount,
    floor: Amount,
    max_price: Option<Amount>,
    next_reprice: Timestamp,
    recent_matches: u32,
    next_withdraw: Timestamp,
    running: BTreeMap<(Timestamp, LotKey), ExecReport>,
    events: VecDeque<MarketEvent>,
}

/// A colluding provider's part in its coalition.
#[derive(Debug)]
pub struct Member {
    /// The coalition's pooled memory.
    pub coalition: Coalition,
    /// The executor it answers recognised inputs with (and its honest
    /// prefix).
    pub honest: SimulatedExecutor,
    /// Subtasks it still runs honestly before it starts to cheat.
    pub honest_tasks: u64,
}

/// How a provider identity is built.
#[derive(Debug)]
pub struct ProviderPlan {
    /// Its executor.
    pub exec: SimulatedExecutor,
    /// A colluder's coalition and the honest executor it answers
    /// recognised inputs with.
    pub coalition: Option<Member>,
    /// Its identity plan.
    pub plan: IdentityPlan,
    /// Re-entry after a slash (whitewashers).
    pub whitewash: Option<Whitewash>,
    /// It stops asking then (the workload is over; asks cost a
    /// transaction per batch).
    pub ask_until: Timestamp,
    /// First ask.
    pub price: Amount,
    /// Lowest ask it undercuts to.
    pub floor: Amount,
    /// Adaptive pricing up to this limit (`None`: fixed price).
    pub max_price: Option<Amount>,
}

impl SimProvider {
    /// A provider identity.
    pub fn new(node: ProviderNode, p: ProviderPlan) -> Self {
        let life = match p.plan {
            IdentityPlan::Genesis | IdentityPlan::Whitewash { generation: 0 } => Life::Active,
            _ => Life::Waiting,
        };
        Self {
            node,
            exec: p.exec,
            coalition: p.coalition,
            plan: p.plan,
            life,
            whitewash: p.whitewash,
            funded_heir: false,
            ask_until: p.ask_until,
            price: p.price,
            floor: p.floor,
            max_price: p.max_price,
            next_reprice: Timestamp::ZERO + REPRICE_PERIOD,
            recent_matches: 0,
            next_withdraw: Timestamp::ZERO,
            running: BTreeMap::new(),
            events: VecDeque::new(),
        }
    }

    fn account(&self) -> AccountId {
        self.node.account()
    }

    fn run(&mut self, now: Timestamp, lot: LotKey, inputs: &[Digest]) {
        let limits = Limits::default();
        let mut r = ExecReport {
            outputs: Vec::with_capacity(inputs.len()),
            usage_micros: 0,
            cheated: Vec::with_capacity(inputs.len()),
            data: None,
        };
        let is_trap: Vec<bool> = inputs.iter().map(is_trap_input).collect();
        let recognised: Vec<bool> = inputs
            .iter()
            .map(|d| {
                self.coalition
                    .as_ref()
                    .is_some_and(|m| m.coalition.has_seen(d))
            })
            .collect();
        for ((d, trap), known) in inputs.iter().zip(&is_trap).zip(&recognised) {
            let exec = match &mut self.coalition {
                Some(m) if *known => &m.honest,
                Some(m) if m.honest_tasks > 0 => {
                    m.honest_tasks -= 1;
                    &m.honest
                }
                _ => &self.exec,
            };
            match exec.run(&task_for(d), &limits, SimContext { is_trap: *trap }) {
                Ok(o) => {
                    r.outputs.push(o.execution.output_digest);
                    r.cheated.push(o.cheated);
                    r.usage_micros += o.execution.usage.compute_micros;
                }
                Err(_) => {
                    r.outputs.push(Digest::of(FAILED_DOMAIN, d));
                    r.cheated.push(false);
                }
            }
        }
        if let Some(m) = &self.coalition {
            m.coalition.pool(inputs);
        }
        self.events.push_back(MarketEvent::Executed {
            provider: self.account(),
            lot,
            cheated: r.cheated.clone(),
            is_trap,
            recognised,
            usage_micros: r.usage_micros,
        });
        let done = now + Duration::from_micros(r.usage_micros);
        self.running.insert((done, lot), r);
    }

    fn pump(&mut self, now: Timestamp) {
        while let Some(ev) = self.node.poll_event() {
            match &ev {
                ProviderEvent::Execute { lot, inputs, .. } => {
                    let (lot, inputs) = (*lot, inputs.clone());
                    self.run(now, lot, &inputs);
                }
                ProviderEvent::Matched { .. } => self.recent_matches += 1,
                ProviderEvent::Settled(s) if !s.slashed.is_zero() => self.abandon(now),
                ProviderEvent::Applied { tx } => self.applied(now, tx),
                _ => {}
            }
            self.events
                .push_back(MarketEvent::Provider(self.account(), ev));
        }
    }

    /// A slashed whitewasher leaves: stops asking, unbonds its free stake
    /// and funds its successor's key.
    fn abandon(&mut self, now: Timestamp) {
        let (Some(w), Life::Active) = (self.whitewash, self.life) else {
            return;
        };
        let h = self.node.core().holdings().copied();
        let (balance, free_stake) =
            h.map_or((Amount::ZERO, Amount::ZERO), |a| (a.balance, a.free_stake));
        self.node.set_ask(now, None);
        self.life = Life::Left(if free_stake.is_zero() {
            Sweep::Withdrawing
        } else {
            self.node
                .submit_ledger(now, TxKind::Unbond { amount: free_stake });
            Sweep::Unbonding
        });
        let heir = w.heir.filter(|_| {
            now <= w.reenter_until && balance >= w.provider_stake.max(w.min_new_account)
        });
        if let Some(to) = heir {
            self.node.submit_ledger(
                now,
                TxKind::Transfer {
                    to,
                    amount: balance,
                },
            );
            self.funded_heir = true;
        }
        self.events.push_back(MarketEvent::Left {
            account: self.account(),
            funded: heir.is_some(),
        });
    }

    fn applied(&mut self, now: Timestamp, tx: &TxKind) {
        if let (TxKind::Withdraw, Life::Left(Sweep::Withdrawing)) = (tx, self.life) {
            self.life = Life::Left(Sweep::Done);
            let balance = self
                .node
                .core()
                .holdings()
                .map_or(Amount::ZERO, |a| a.balance);
            if let (Some(to), true, false) = (
                self.whitewash.and_then(|w| w.heir),
                self.funded_heir,
                balance.is_zero(),
            ) {
                self.node.submit_ledger(
                    now,
                    TxKind::Transfer {
                        to,
                        amount: balance,
                    },
                );
                self.events.push_back(MarketEvent::Swept(balance.get()));
            }
        }
    }

    /// Time-driven choices: join, bond once funded, reprice, sweep.
    fn tick(&mut self, now: Timestamp) {
        match (self.life, self.plan) {
            (Life::Waiting, IdentityPlan::Newcomer { join_at }) if join_at <= now => {
                self.join(now);
            }
            (Life::Waiting, IdentityPlan::Whitewash { .. }) => {
                let need = self.whitewash.map_or(Amount::MAX, |w| w.provider_stake);
                if self
                    .node
                    .core()
                    .holdings()
                    .is_some_and(|a| a.balance >= need)
                {
                    self.node.submit_ledger(now, TxKind::Bond { amount: need });
                    self.join(now);
                }
            }
            (Life::Left(Sweep::Unbonding), _) if now >= self.next_withdraw => {
                // Maturity is learned by trying: a premature `Withdraw` is
                // rejected and tried again later.
                self.next_withdraw = now + Duration::from_secs(2);
                let h = self.node.core().holdings().copied();
                if h.is_some_and(|a| a.unbonding.is_zero()) {
                    self.life = Life::Left(Sweep::Withdrawing);
                } else if self.node.core().inflight() == 0 {
                    self.node.submit_ledger(now, TxKind::Withdraw);
                    if h.is_some_and(|a| a.withdrawable == a.unbonding) {
                        self.life = Life::Left(Sweep::Withdrawing);
                    }
                }
            }
            _ => {}
        }
        if now >= self.ask_until && self.life == Life::Active {
            self.ask_until = Timestamp::MAX;
            self.node.set_ask(now, None);
        }
        self.reprice(now);
    }

    fn join(&mut self, now: Timestamp) {
        self.life = Life::Active;
        self.node.offer_now(now);
        self.events.push_back(MarketEvent::Joined(self.account()));
    }

    /// Adaptive pricing: an idle provider undercuts down to its floor, a
    /// matched one raises up to the clients' limit.
    fn reprice(&mut self, now: Timestamp) {
        let Some(max) = self.max_price else { return };
        if now < self.next_reprice {
            return;
        }
        self.next_reprice = now + REPRICE_PERIOD;
        if self.life != Life::Active {
            return;
        }
        let p = self.price.get();
        let new = if self.recent_matches == 0 {
            (p * 92 / 100).max(self.floor.get())
        } else {
            (p * 104 / 100).min(max.get()).max(self.floor.get())
        };
        self.recent_matches = 0;
        if new != p && now < self.ask_until {
            // The new price goes into its next sealed ask.
            self.price = Amount::new(new);
            self.node.set_ask(now, Some(self.price));
            self.events.push_back(MarketEvent::Repriced);
        }
    }

    fn finish_due(&mut self, now: Timestamp) {
        while let Some((&(t, lot), _)) = self.running.first_key_value() {
            if t > now {
                break;
            }
            let (_, r) = self.running.pop_first().expect("non-empty");
            self.node.handle_executed(now, lot, r);
        }
    }

    fn next_wake(&self) -> Option<Timestamp> {
        let join = match (self.life, self.plan) {
            (Life::Waiting, IdentityPlan::Newcomer { join_at }) => Some(join_at),
            _ => None,
        };
        let reprice =
            (self.max_price.is_some() && self.life == Life::Active).then_some(self.next_reprice);
        let withdraw = (self.life == Life::Left(Sweep::Unbonding)).then_some(self.next_withdraw);
        let stop_asking = (self.life == Life::Active && self.ask_until < Timestamp::MAX)
            .then_some(self.ask_until);
        [
            self.node.poll_timeout(),
            self.running.keys().next().map(|k| k.0),
            join,
            reprice,
            withdraw,
            stop_asking,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// A client and its workload (the user posting jobs).
#[derive(Debug)]
pub struct SimClient {
    /// The node.
    pub node: ClientNode,
    rng: ChaCha20Rng,
    next_post: Timestamp,
    next_job: u64,
    w: Workload,
    posted: VecDeque<MarketEvent>,
}

/// A client's workload.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Posts until then.
    pub active_until: Timestamp,
    /// Mean seconds between jobs (Poisson).
    pub job_interval_secs: f64,
    /// Lots per job: uniform in `1..=max_lots`.
    pub max_lots: u32,
    /// Real subtasks per lot.
    pub subtasks_per_lot: u32,
    /// The request template (job id, lots, deadline and goods are set per job).
    pub template: JobRequest,
    /// Limit price per compute-second (sealed by the client node).
    pub max_price: Amount,
    /// How long a bid waits for a match.
    pub bid_window: Duration,
    /// The registered app and dataset (every third job uses both, every
    /// third the app only).
    pub goods: (Digest, Digest, Amount, Amount),
    /// Every lot repeats one input (the client node cannot plan it).
    pub careless: bool,
}

impl SimClient {
    /// A client that posts its first job at `first`.
    pub fn new(node: ClientNode, rng: ChaCha20Rng, first: Timestamp, w: Workload) -> Self {
        Self {
            node,
            rng,
            next_post: first,
            next_job: 0,
            w,
            posted: VecDeque::new(),
        }
    }

    fn goods(&self, job: u64) -> JobGoods {
        let (app, data, app_price, data_price) = self.w.goods;
        match job % 3 {
            0 => JobGoods {
                app: Some(app),
                datasets: vec![data],
                max_fee_per_slot: app_price.saturating_add(data_price),
            },
            1 => JobGoods {
                app: Some(app),
                datasets: Vec::new(),
                max_fee_per_slot: app_price,
            },
            _ => JobGoods::none(),
        }
    }

    /// Posts the jobs that are due; returns the posted job ids.
    fn post_due(&mut self, now: Timestamp) -> Vec<u64> {
        let mut posted = Vec::new();
        while now >= self.next_post && now < self.w.active_until {
            let gap = -self.w.job_interval_secs * (1.0 - self.rng.r#gen::<f64>()).ln();
            self.next_post = now + Duration::from_micros((gap * 1e6) as u64 + 1);
            let job = self.next_job;
            self.next_job += 1;
            let lots = self.rng.gen_range(1..=self.w.max_lots);
            let me = self.node.account();
            let inputs = (0..lots)
                .map(|l| {
                    // A careless client's subtasks all repeat the first.
                    (0..u64::from(self.w.subtasks_per_lot))
                        .map(|i| if self.w.careless { 0 } else { i })
                        .map(|i| sim_input(false, &(me, job, l, i)))
                        .collect()
                })
                .collect();
            let request = JobRequest {
                job,
                lots,
                deadline: now + self.w.bid_window,
                goods: self.goods(job),
                ..self.w.template.clone()
            };
            let spec = JobSpec {
                request,
                inputs,
                max_price: self.w.max_price,
                data: None,
            };
            if self.node.post_job(now, spec).is_ok() {
                posted.push(job);
            }
        }
        posted
    }
}

/// Traps with known answers; a framing client plants a wrong answer as
/// its first trap.
#[derive(Debug)]
pub struct SimTraps {
    /// The client's account (traps are unique per client).
    pub client: AccountId,
    /// Plants a wrong answer.
    pub framing: bool,
}

impl TrapSource for SimTraps {
    fn trap(&mut self, job: u64, lot: u32, i: u64) -> TrapSpec {
        let x = sim_input(true, &(self.client, job, lot, 10_000 + i));
        let expected = if self.framing && i == 0 {
            Digest::of(FRAME_DOMAIN, &x)
        } else {
            truth(&x)
        };
        TrapSpec::precomputed(x, expected)
    }
}

/// An app or dataset owner: registers its good once.
#[derive(Debug)]
pub struct OwnerNode {
    core: LightCore,
    record: Option<MarketTx>,
}

impl OwnerNode {
    /// An owner that submits `record` when started.
    pub fn new(core: LightCore, record: MarketTx) -> Self {
        Self {
            core,
            record: Some(record),
        }
    }
}

impl Machine for MarketNode {
    type Message = NodeMessage;
    type Event = MarketEvent;

    fn handle_message(&mut self, now: Timestamp, from: NodeId, msg: NodeMessage) {
        match self {
            MarketNode::Validator(v) => {
                let now = now + v.ahead;
                v.forge(now);
                v.node.handle_message(now, from, msg);
                v.pump();
            }
            MarketNode::Provider(p) => {
                p.node.handle_message(now, from, msg);
                p.pump(now);
                p.tick(now);
                p.pump(now);
            }
            MarketNode::Client(c) => c.node.handle_message(now, from, msg),
            MarketNode::Owner(o) => {
                let _ = match msg {
                    NodeMessage::Facts(b) => o.core.on_facts(now, from, b),
                    NodeMessage::Certified(c) => o.core.on_certified(now, from, &c),
                    _ => return,
                };
            }
        }
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        match self {
            MarketNode::Validator(v) => {
                let now = now + v.ahead;
                v.forge(now);
                v.node.handle_timeout(now);
                v.pump();
            }
            MarketNode::Provider(p) => {
                if p.node.poll_timeout().is_some_and(|t| t <= now) {
                    p.node.handle_timeout(now);
                }
                p.finish_due(now);
                p.tick(now);
                p.pump(now);
            }
            MarketNode::Client(c) => {
                if c.node.poll_timeout().is_some_and(|t| t <= now) {
                    c.node.handle_timeout(now);
                }
                for job in c.post_due(now) {
                    let me = c.node.account();
                    c.node_events_push(MarketEvent::Posted(me, job));
                }
            }
            MarketNode::Owner(o) => {
                o.core.start(now);
                if let Some(r) = o.record.take() {
                    let _ = o.core.submit_market(now, &r);
                }
                o.core.on_timeout(now);
            }
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit<NodeMessage>> {
        match self {
            MarketNode::Validator(v) => v.poll_transmit(),
            MarketNode::Provider(p) => p.node.poll_transmit(),
            MarketNode::Client(c) => c.node.poll_transmit(),
            MarketNode::Owner(o) => o.core.poll_transmit(),
        }
    }

    fn poll_event(&mut self) -> Option<MarketEvent> {
        match self {
            MarketNode::Validator(v) => {
                v.pump();
                v.events.pop_front()
            }
            MarketNode::Provider(p) => p.events.pop_front(),
            MarketNode::Client(c) => c.next_event(),
            MarketNode::Owner(_) => None,
        }
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        match self {
            MarketNode::Validator(v) => v.node.poll_timeout().map(|t| t.saturating_sub(v.ahead)),
            MarketNode::Provider(p) => p.next_wake(),
            MarketNode::Client(c) => {
                let post = (c.next_post < c.w.active_until).then_some(c.next_post);
                [c.node.poll_timeout(), post].into_iter().flatten().min()
            }
            MarketNode::Owner(o) => {
                if o.record.is_some() {
                    Some(Timestamp::ZERO)
                } else {
                    o.core.poll_timeout()
                }
            }
        }
    }
}

impl SimClient {
    fn node_events_push(&mut self, e: MarketEvent) {
        self.posted.push_back(e);
    }

    fn next_event(&mut self) -> Option<MarketEvent> {
        if let Some(e) = self.posted.pop_front() {
            return Some(e);
        }
        let me = self.node.account();
        self.node.poll_event().map(|e| MarketEvent::Client(me, e))
    }
}

/// A provider's executor for a machine.
pub fn executor(
    behaviour: Behaviour,
    speed: u64,
    seed: idlegrid_primitives::Seed,
) -> SimulatedExecutor {
    SimulatedExecutor::new(behaviour, super::agents::cost_model(speed), seed)
}
/// Every node can be handed to another thread (the parallel engine's
/// workers handle disjoint sets of nodes): checked at compile time.
const _: fn() = || {
    fn is_send<T: Send>() {}
    is_send::<MarketNode>();
};
