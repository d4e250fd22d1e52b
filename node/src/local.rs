//! An in-process network of nodes: a deterministic driver for examples,
//! tests and integrators trying the node out.
//!
//! Every message takes a fixed latency; time advances in fixed ticks;
//! providers' [`ProviderEvent::Execute`] effects are answered at once by a
//! caller-supplied [`Executor`], and validators'
//! [`ValidatorEvent::RefereeDuty`] effects by a caller-supplied
//! [`Referee`] whose outputs the validator votes; their
//! [`ValidatorEvent::Audit`] effects run at once, a failure reported as
//! [`LocalEvent::AuditFailed`]. The simulator
//! (`idlegrid-sim`) and the real runtime drive the same machines with a
//! network model or sockets and real executors.

use std::collections::{BTreeMap, VecDeque};

use idlegrid_dag_ledger::consensus::{Committee, ConsensusConfig};
use idlegrid_dag_ledger::ledger::{Genesis, InvariantViolation, Ledger, Params};
use idlegrid_entrap::{DisputedTrap, TrapSpec};
use idlegrid_market::{ExecutorKind, Features, JobGoods, KDouble};
use idlegrid_primitives::{
    Amount, Destination, Digest, Domain, Duration, Keypair, Machine, NodeId, Seed, Timestamp,
};

use crate::client::{ClientEvent, ClientNode, JobSpec, TrapPolicy, TrapSource};
use crate::light::{FactDelivery, LightSetup};
use crate::market::{JobRequest, MarketRules, unsealed};
use crate::provider::{ExecReport, LotKey, ProviderEvent, ProviderNode, ProviderOffer};
use crate::validator::{ValidatorEvent, ValidatorNode, ValidatorSetup};
use crate::wire::{LotData, NodeMessage};

const OUTPUT_DOMAIN: Domain = Domain::new("idlegrid/node/local/output");
const TRAP_DOMAIN: Domain = Domain::new("idlegrid/node/local/trap");

/// The computation every local job runs: a digest of its input (what an
/// honest executor returns and what a client's traps expect).
pub fn reference_output(input: &Digest) -> Digest {
    Digest::of(OUTPUT_DOMAIN, input)
}

/// Traps whose answers come from [`reference_output`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ReferenceTraps;

impl TrapSource for ReferenceTraps {
    fn trap(&mut self, job: u64, lot: u32, i: u64) -> TrapSpec {
        let x = Digest::of(TRAP_DOMAIN, &(job, lot, i));
        TrapSpec::precomputed(x, reference_output(&x))
    }
}

/// Answers a provider's execution effect ([`ProviderEvent::Execute`]):
/// the lot, its slot inputs, and the program and input bytes when the
/// client sent them.
pub type Executor = Box<dyn FnMut(&LotKey, &[Digest], Option<&LotData>) -> ExecReport>;

/// Answers a referee's duty ([`ValidatorEvent::RefereeDuty`]): the outputs
/// of the disputed traps, in order, which the validator votes; `None` to
/// wait (a duty without the bytes it needs is reported again when the
/// disputing provider's bytes arrive).
pub type Referee = Box<dyn FnMut(&[DisputedTrap], Option<&LotData>) -> Option<Vec<Digest>>>;

/// The honest executor: [`reference_output`] of every input, 10 ms each.
pub fn honest_executor() -> Executor {
    Box::new(|_, inputs, _| ExecReport {
        outputs: inputs.iter().map(reference_output).collect(),
        usage_micros: 10_000 * inputs.len() as u64,
        cheated: vec![false; inputs.len()],
        data: None,
    })
}

/// The honest referee: [`reference_output`] of every disputed input, at
/// once (it needs no bytes; a duty reported twice, without and then with
/// bytes, is voted twice and the ledger refuses the second vote).
pub fn reference_referee() -> Referee {
    Box::new(|disputed, _| {
        Some(
            disputed
                .iter()
                .map(|d| reference_output(&d.trap.input))
                .collect(),
        )
    })
}

/// One node of a [`LocalNet`].
pub enum LocalNode {
    /// A validator and the referee that answers its duties.
    Validator(Box<ValidatorNode>, Referee),
    /// A provider and the executor that answers its effects.
    Provider(Box<ProviderNode>, Executor),
    /// A client.
    Client(Box<ClientNode>),
    /// Another machine speaking the node protocol as a validator (a
    /// Byzantine wrapper).
    Other(Box<dyn Machine<Message = NodeMessage, Event = ValidatorEvent>>),
}

/// What a [`LocalNet`] observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalEvent {
    /// A validator's event.
    Validator(NodeId, ValidatorEvent),
    /// A provider's event.
    Provider(NodeId, ProviderEvent),
    /// A client's event.
    Client(NodeId, ClientEvent),
    /// A validator's audit of a commit's post-state found an invariant
    /// broken.
    AuditFailed {
        /// The validator.
        validator: NodeId,
        /// The commit.
        index: u64,
        /// What was broken.
        violation: InvariantViolation,
    },
}

/// An in-process network with a fixed latency.
pub struct LocalNet {
    nodes: Vec<(NodeId, LocalNode)>,
    index: BTreeMap<NodeId, usize>,
    validators: Vec<NodeId>,
    wire: VecDeque<(Timestamp, NodeId, NodeId, NodeMessage)>,
    now: Timestamp,
    latency: Duration,
    events: Vec<LocalEvent>,
}

impl std::fmt::Debug for LocalNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalNet")
            .field("nodes", &self.nodes.len())
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl LocalNet {
    /// An empty network whose messages take `latency`.
    pub fn new(latency: Duration) -> Self {
        Self {
            nodes: Vec::new(),
            index: BTreeMap::new(),
            validators: Vec::new(),
            wire: VecDeque::new(),
            now: Timestamp::ZERO,
            latency,
            events: Vec::new(),
        }
    }

    /// Adds a node with identity `id` (validators and `Other` receive
    /// broadcasts).
    pub fn add(&mut self, id: NodeId, node: LocalNode) {
        if matches!(node, LocalNode::Validator(..) | LocalNode::Other(_)) {
            self.validators.push(id);
        }
        self.index.insert(id, self.nodes.len());
        self.nodes.push((id, node));
    }

    /// Current time.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The node `id`.
    pub fn node_mut(&mut self, id: &NodeId) -> Option<&mut LocalNode> {
        let i = *self.index.get(id)?;
        Some(&mut self.nodes[i].1)
    }

    /// The validator `id`, if it is an honest one.
    pub fn validator(&self, id: &NodeId) -> Option<&ValidatorNode> {
        match &self.nodes[*self.index.get(id)?].1 {
            LocalNode::Validator(v, _) => Some(v),
            _ => None,
        }
    }

    /// The validator `id`, mutable, if it is an honest one.
    pub fn validator_mut(&mut self, id: &NodeId) -> Option<&mut ValidatorNode> {
        match self.node_mut(id)? {
            LocalNode::Validator(v, _) => Some(v),
            _ => None,
        }
    }

    /// The provider `id`.
    pub fn provider_mut(&mut self, id: &NodeId) -> Option<&mut ProviderNode> {
        match self.node_mut(id)? {
            LocalNode::Provider(p, _) => Some(p),
            _ => None,
        }
    }

    /// The client `id`.
    pub fn client_mut(&mut self, id: &NodeId) -> Option<&mut ClientNode> {
        match self.node_mut(id)? {
            LocalNode::Client(c) => Some(c),
            _ => None,
        }
    }

    /// Takes the events observed so far.
    pub fn take_events(&mut self) -> Vec<LocalEvent> {
        std::mem::take(&mut self.events)
    }

    /// Runs in `tick` steps until `until` or until `stop` holds for an
    /// observed event; returns whether it stopped on an event.
    pub fn run_until(
        &mut self,
        until: Timestamp,
        tick: Duration,
        mut stop: impl FnMut(&LocalEvent) -> bool,
    ) -> bool {
        while self.now < until {
            let seen = self.events.len();
            self.step();
            if self.events[seen..].iter().any(&mut stop) {
                return true;
            }
            self.now = self.now + tick;
        }
        false
    }

    /// Delivers due messages, fires due timers and collects what the nodes
    /// send and report.
    pub fn step(&mut self) {
        let now = self.now;
        while self.wire.front().is_some_and(|(t, ..)| *t <= now) {
            let (_, from, to, msg) = self.wire.pop_front().expect("non-empty");
            if let Some(&i) = self.index.get(&to) {
                dispatch(&mut self.nodes[i].1, now, from, msg);
            }
        }
        for i in 0..self.nodes.len() {
            let (id, node) = &mut self.nodes[i];
            let id = *id;
            fire(node, now);
            let mut out = Vec::new();
            drain(node, now, id, &mut out, &mut self.events);
            for t in out {
                let at = now + self.latency;
                match t.to {
                    Destination::To(to) => self.wire.push_back((at, id, to, t.msg)),
                    Destination::Broadcast => {
                        for v in self.validators.iter().filter(|v| **v != id) {
                            self.wire.push_back((at, id, *v, t.msg.clone()));
                        }
                    }
                }
            }
        }
    }
}

fn dispatch(node: &mut LocalNode, now: Timestamp, from: NodeId, msg: NodeMessage) {
    match node {
        LocalNode::Validator(n, _) => n.handle_message(now, from, msg),
        LocalNode::Provider(n, _) => n.handle_message(now, from, msg),
        LocalNode::Client(n) => n.handle_message(now, from, msg),
        LocalNode::Other(n) => n.handle_message(now, from, msg),
    }
}

fn fire(node: &mut LocalNode, now: Timestamp) {
    let due = |t: Option<Timestamp>| t.is_some_and(|t| t <= now);
    match node {
        LocalNode::Validator(n, _) if due(n.poll_timeout()) => n.handle_timeout(now),
        LocalNode::Provider(n, _) if due(n.poll_timeout()) => n.handle_timeout(now),
        LocalNode::Client(n) if due(n.poll_timeout()) => n.handle_timeout(now),
        LocalNode::Other(n) if due(n.poll_timeout()) => n.handle_timeout(now),
        _ => {}
    }
}

type Out = Vec<idlegrid_primitives::Transmit<NodeMessage>>;

fn drain(
    node: &mut LocalNode,
    now: Timestamp,
    id: NodeId,
    out: &mut Out,
    ev: &mut Vec<LocalEvent>,
) {
    match node {
        LocalNode::Validator(n, referee) => {
            while let Some(e) = n.poll_event() {
                if let ValidatorEvent::RefereeDuty {
                    client,
                    job,
                    lot,
                    disputed,
                    data,
                } = &e
                    && let Some(outputs) = referee(disputed, data.as_ref())
                {
                    // A refused vote comes back as the ledger's rejection.
                    let _ = n.vote(*client, *job, *lot, outputs);
                }
                if let ValidatorEvent::Audit(a) = &e {
                    if let Err(violation) = a.run() {
                        ev.push(LocalEvent::AuditFailed {
                            validator: id,
                            index: a.index(),
                            violation,
                        });
                    }
                }
                ev.push(LocalEvent::Validator(id, e));
            }
            out.extend(std::iter::from_fn(|| n.poll_transmit()));
        }
        LocalNode::Other(n) => {
            while let Some(e) = n.poll_event() {
                ev.push(LocalEvent::Validator(id, e));
            }
            out.extend(std::iter::from_fn(|| n.poll_transmit()));
        }
        LocalNode::Client(n) => {
            while let Some(e) = n.poll_event() {
                ev.push(LocalEvent::Client(id, e));
            }
            out.extend(std::iter::from_fn(|| n.poll_transmit()));
        }
        LocalNode::Provider(n, exec) => {
            while let Some(e) = n.poll_event() {
                if let ProviderEvent::Execute { lot, inputs, data } = &e {
                    let report = exec(lot, inputs, data.as_ref());
                    n.handle_executed(now, *lot, report);
                }
                ev.push(LocalEvent::Provider(id, e));
            }
            out.extend(std::iter::from_fn(|| n.poll_transmit()));
        }
    }
}

/// A ready-made marketplace: `validators` validators, providers and
/// clients endowed at genesis.
#[derive(Debug)]
pub struct Testnet {
    /// The network.
    pub net: LocalNet,
    /// Validator identities.
    pub validators: Vec<NodeId>,
    /// Provider identities.
    pub providers: Vec<NodeId>,
    /// Client identities.
    pub clients: Vec<NodeId>,
    /// The validators' setup (genesis, rules).
    pub setup: ValidatorSetup,
}

/// The stake every testnet provider bonds per slot.
pub const TESTNET_STAKE: u128 = 50_000;

/// Keys of a testnet: validators, providers, clients, from `seed`.
pub fn testnet_keys(seed: u64, v: usize, p: usize, c: usize) -> [Vec<Keypair>; 3] {
    let root = Seed::from_u64(seed);
    let keys = |label: &str, n: usize| -> Vec<Keypair> {
        (0..n)
            .map(|i| Keypair::from_seed(&root.derive_indexed(label, i as u64)))
            .collect()
    };
    [keys("validator", v), keys("provider", p), keys("client", c)]
}

/// The genesis and validator setup of a testnet with these keys.
pub fn testnet_setup(keys: &[Vec<Keypair>; 3]) -> ValidatorSetup {
    let [vals, provs, clients] = keys;
    let ids: Vec<NodeId> = vals.iter().map(Keypair::node_id).collect();
    let mut balances: Vec<_> = ids
        .iter()
        .map(|v| (v.account(), Amount::new(1_000_000)))
        .collect();
    let mut stakes = Vec::new();
    for k in provs.iter().chain(clients) {
        balances.push((k.account_id(), Amount::new(100_000_000)));
        stakes.push((k.account_id(), Amount::new(TESTNET_STAKE * 4 + 1)));
    }
    ValidatorSetup {
        ledger: Ledger::new(Genesis {
            balances,
            stakes,
            params: Params::default(),
        })
        .expect("valid testnet genesis"),
        rules: MarketRules {
            stake_per_slot: Amount::new(TESTNET_STAKE),
            slash_to_client_bps: 5_000,
            stage_deadline: Duration::from_secs(15),
            clearing_period: Duration::from_millis(500),
            committee_size: 3,
            referees: ids,
            book: Default::default(),
            reputation_epoch_secs: 10,
            global_trust: None,
        },
        consensus: ConsensusConfig::default(),
        mechanism: || Box::new(KDouble::new(5_000).expect("valid k")),
        epoch_secs: 1,
    }
}

/// A light node's setup in a testnet.
pub fn light_setup(key: &Keypair, committee: &Committee, gateway: usize) -> LightSetup {
    LightSetup {
        key: key.clone(),
        chain: Params::default().chain_id,
        committee: committee.clone(),
        first_gateway: gateway,
        patience: Duration::from_secs(5),
        fanout: 1,
        fact_sources: 0,
        fact_window: Default::default(),
        delivery: Default::default(),
        signatures: Default::default(),
        // Testnet keys never signed before.
        next_nonce: Some(0),
    }
}

/// A job for the testnet's simulated executor: one lot per input list,
/// an unsealed limit of 10 000, a client bond of 5 000 per lot and a
/// deadline 20 s after `now`.
pub fn simulated_job(
    job: u64,
    inputs: Vec<Vec<Digest>>,
    max_slots_per_lot: u32,
    now: Timestamp,
) -> JobSpec {
    JobSpec {
        request: JobRequest {
            job,
            lots: inputs.len() as u32,
            max_slots_per_lot,
            commitment: unsealed(),
            cap_micros_per_subtask: 200_000,
            min_reputation_bps: 0,
            client_bond: Amount::new(5_000),
            deadline: now + Duration::from_secs(20),
            goods: JobGoods::default(),
            executor: ExecutorKind::Simulated,
            requires: Features::NONE,
        },
        inputs,
        max_price: Amount::new(10_000),
        data: None,
    }
}

/// A testnet of honest nodes (providers ask `price`; clients plant
/// [`ReferenceTraps`]); messages take 10 ms.
pub fn testnet(seed: u64, validators: usize, providers: usize, clients: usize) -> Testnet {
    testnet_with(
        seed,
        [validators, providers, clients],
        FactDelivery::Reported,
    )
}

/// [`testnet`] with `[validators, providers, clients]`, its light nodes
/// hearing global facts as `global` says.
pub fn testnet_with(seed: u64, counts: [usize; 3], global: FactDelivery) -> Testnet {
    let [validators, providers, clients] = counts;
    let light_setup = |k: &Keypair, c: &Committee, i: usize| LightSetup {
        delivery: global,
        ..light_setup(k, c, i)
    };
    let keys = testnet_keys(seed, validators, providers, clients);
    let setup = testnet_setup(&keys);
    let [vals, provs, cls] = &keys;
    let ids: Vec<NodeId> = vals.iter().map(Keypair::node_id).collect();
    let committee = Committee::equal(ids.iter().copied()).expect("distinct validators");
    let mut net = LocalNet::new(Duration::from_millis(10));
    let root = Seed::from_u64(seed);
    for (i, k) in vals.iter().enumerate() {
        let s = root.derive_indexed("validator-rng", i as u64);
        let v = ValidatorNode::new(k.clone(), committee.clone(), &setup, s, false)
            .expect("committee member");
        net.add(
            k.node_id(),
            LocalNode::Validator(Box::new(v), reference_referee()),
        );
    }
    for (i, k) in provs.iter().enumerate() {
        let offer = ProviderOffer {
            price: Amount::new(1_000),
            capacity: 1,
            stake_per_slot: Amount::new(TESTNET_STAKE),
            region: 0,
            environment: crate::market::Environment::simulated(),
        };
        let p = ProviderNode::new(
            light_setup(k, &committee, i),
            offer,
            root.derive_indexed("provider-rng", i as u64),
        );
        net.add(
            k.node_id(),
            LocalNode::Provider(Box::new(p), honest_executor()),
        );
    }
    for (i, k) in cls.iter().enumerate() {
        let policy = TrapPolicy {
            cost_per_subtask: Amount::new(250),
            stake: Amount::new(TESTNET_STAKE),
            price_to_pay_divisor: 20,
        };
        let c = ClientNode::new(
            light_setup(k, &committee, i),
            policy,
            Box::new(ReferenceTraps),
            root.derive_indexed("client-rng", i as u64),
        );
        net.add(k.node_id(), LocalNode::Client(Box::new(c)));
    }
    Testnet {
        net,
        validators: ids,
        providers: provs.iter().map(Keypair::node_id).collect(),
        clients: cls.iter().map(Keypair::node_id).collect(),
        setup,
    }
}
