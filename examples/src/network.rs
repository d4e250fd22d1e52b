//! The examples' marketplace: `idlegrid-node`'s validators, providers and
//! clients in one process, on the node crate's in-process network
//! ([`LocalNet`]: every message takes 10 ms, time advances in 10 ms ticks).
//!
//! Every participant is a node: providers and clients are light nodes that
//! reach the ledger only through validators and act only on facts f + 1 of
//! them reported; the example drives the network and watches it like a
//! simulator's observer — the events the nodes report, and the marketplace
//! notices of validator 0 — but never acts for a node.
//!
//! ```no_run
//! # use idlegrid_examples::network::{Builder, Funds};
//! # use idlegrid_market::KDouble;
//! # use idlegrid_primitives::{Amount, Seed};
//! let root = Seed::from_u64(1);
//! let b = Builder::new(&root, 4, Amount::new(5_000), || Box::new(KDouble::new(5_000).unwrap()));
//! // b.provider(..), b.client(..), then:
//! let mut net = b.build(|_| idlegrid_node::local::reference_referee()).unwrap();
//! net.run(idlegrid_primitives::Duration::from_secs(1), |_| false);
//! ```

use std::error::Error;

use idlegrid_dag_ledger::consensus::{Committee, ConsensusConfig};
use idlegrid_dag_ledger::ledger::{Genesis, Ledger, Params};
use idlegrid_market::Mechanism;
use idlegrid_node::client::{ClientNode, TrapPolicy, TrapSource};
use idlegrid_node::local::{Executor, LocalEvent, LocalNet, LocalNode, Referee, light_setup};
use idlegrid_node::market::{MarketRules, Notice};
use idlegrid_node::provider::{ProviderNode, ProviderOffer};
use idlegrid_node::validator::{ValidatorNode, ValidatorSetup};
use idlegrid_primitives::{AccountId, Amount, Duration, Keypair, NodeId, Seed};

/// Every message's latency and the driver's time step.
pub const TICK: Duration = Duration::from_millis(10);
/// Length of a sealed batch (one clearing period of consensus time).
pub const CLEARING_PERIOD: Duration = Duration::from_secs(1);

/// What an account holds at genesis.
#[derive(Debug, Clone, Copy)]
pub struct Funds {
    /// Free balance.
    pub balance: Amount,
    /// Bonded stake (slot stakes, bonds and sealing bonds lock it).
    pub stake: Amount,
}

/// Assembles a [`Network`]: light nodes first (their genesis funds), then
/// the validators over that genesis.
pub struct Builder {
    root: Seed,
    validators: Vec<Keypair>,
    committee: Committee,
    stake_per_slot: Amount,
    mechanism: fn() -> Box<dyn Mechanism>,
    funds: Vec<(AccountId, Funds)>,
    light: Vec<(NodeId, LocalNode)>,
}

impl Builder {
    /// `validators` validators (keys from `root`), whose marketplace
    /// clears with `mechanism` and bonds `stake_per_slot` per provider slot.
    pub fn new(
        root: &Seed,
        validators: usize,
        stake_per_slot: Amount,
        mechanism: fn() -> Box<dyn Mechanism>,
    ) -> Self {
        let validators: Vec<Keypair> = (0..validators)
            .map(|i| Keypair::from_seed(&root.derive_indexed("validator", i as u64)))
            .collect();
        let committee = Committee::equal(validators.iter().map(Keypair::node_id))
            .expect("distinct validator keys");
        let funds = validators
            .iter()
            .map(|k| {
                let f = Funds {
                    balance: Amount::new(1_000_000),
                    stake: Amount::ZERO,
                };
                (k.account_id(), f)
            })
            .collect();
        Self {
            root: *root,
            validators,
            committee,
            stake_per_slot,
            mechanism,
            funds,
            light: Vec::new(),
        }
    }

    /// The validators' keys.
    pub fn validators(&self) -> &[Keypair] {
        &self.validators
    }

    /// A provider offering one slot of WebAssembly at `price` (its first
    /// sealed asks), its lots run by `exec`.
    pub fn provider(&mut self, key: &Keypair, funds: Funds, price: Amount, exec: Executor) {
        let offer = ProviderOffer {
            price,
            capacity: 1,
            stake_per_slot: self.stake_per_slot,
            region: 0,
            environment: crate::common::wasm_environment(),
        };
        let seed = self
            .root
            .derive_indexed("provider-node", self.light.len() as u64);
        let p = ProviderNode::new(self.light_setup(key), offer, seed);
        self.add(key, funds, LocalNode::Provider(Box::new(p), exec));
    }

    /// A client sizing traps by `policy` and planting them from `traps`.
    pub fn client(
        &mut self,
        key: &Keypair,
        funds: Funds,
        policy: TrapPolicy,
        traps: Box<dyn TrapSource>,
    ) {
        let seed = self
            .root
            .derive_indexed("client-node", self.light.len() as u64);
        let c = ClientNode::new(self.light_setup(key), policy, traps, seed);
        self.add(key, funds, LocalNode::Client(Box::new(c)));
    }

    fn light_setup(&self, key: &Keypair) -> idlegrid_node::light::LightSetup {
        // Light nodes spread over the validators as gateways.
        light_setup(key, &self.committee, self.light.len())
    }

    fn add(&mut self, key: &Keypair, funds: Funds, node: LocalNode) {
        self.funds.push((key.account_id(), funds));
        self.light.push((key.node_id(), node));
    }

    /// The genesis ledger and the rules every validator shares.
    fn setup(&self) -> Result<ValidatorSetup, Box<dyn Error>> {
        let genesis = Genesis {
            balances: self.funds.iter().map(|(a, f)| (*a, f.balance)).collect(),
            stakes: self
                .funds
                .iter()
                .filter(|(_, f)| !f.stake.is_zero())
                .map(|(a, f)| (*a, f.stake))
                .collect(),
            params: Params::default(),
        };
        Ok(ValidatorSetup {
            ledger: Ledger::new(genesis)?,
            rules: MarketRules {
                stake_per_slot: self.stake_per_slot,
                slash_to_client_bps: 5_000,
                stage_deadline: Duration::from_secs(15),
                clearing_period: CLEARING_PERIOD,
                committee_size: 3,
                referees: self.validators.iter().map(Keypair::node_id).collect(),
                book: Default::default(),
                reputation_epoch_secs: 10,
                global_trust: None,
            },
            consensus: ConsensusConfig::default(),
            mechanism: self.mechanism,
            epoch_secs: 1,
        })
    }

    /// The network: validators (validator `i`'s referee duties answered by
    /// `referee(i)`; validator 0 also reports the marketplace's notices to
    /// the observer), then the light nodes.
    pub fn build(
        self,
        mut referee: impl FnMut(usize) -> Referee,
    ) -> Result<Network, Box<dyn Error>> {
        let setup = self.setup()?;
        let mut net = LocalNet::new(TICK);
        for (i, k) in self.validators.iter().enumerate() {
            let seed = self.root.derive_indexed("validator-node", i as u64);
            let v = ValidatorNode::new(k.clone(), self.committee.clone(), &setup, seed, i == 0)?;
            net.add(k.node_id(), LocalNode::Validator(Box::new(v), referee(i)));
        }
        for (id, node) in self.light {
            net.add(id, node);
        }
        Ok(Network {
            net,
            validators: self.validators.iter().map(Keypair::node_id).collect(),
        })
    }
}

/// What the observer sees in one step.
#[derive(Debug, Clone, Copy)]
pub enum Seen<'a> {
    /// A marketplace notice of validator 0 (a fact of a committed batch).
    Notice(&'a Notice),
    /// An event a node reported.
    Event(&'a LocalEvent),
}

/// A running network (see the module docs).
pub struct Network {
    /// The in-process network.
    pub net: LocalNet,
    /// The validators, in committee order.
    pub validators: Vec<NodeId>,
}

impl Network {
    /// Validator 0's ledger (every validator holds the same one after each
    /// batch).
    pub fn ledger(&self) -> &Ledger {
        self.validator(0).ledger()
    }

    /// Validator `i`.
    pub fn validator(&self, i: usize) -> &ValidatorNode {
        self.net
            .validator(&self.validators[i])
            .expect("an honest validator")
    }

    /// What `who` holds: free balance plus bonded stake (locks included).
    pub fn holdings(&self, who: &AccountId) -> Amount {
        let l = self.ledger();
        l.balance(who).saturating_add(l.bonded(who))
    }

    /// True if every validator holds the same ledger state.
    pub fn validators_agree(&self) -> bool {
        let d: Vec<_> = (0..self.validators.len())
            .map(|i| self.validator(i).ledger().state_digest())
            .collect();
        d.windows(2).all(|w| w[0] == w[1])
    }

    /// Steps the network for at most `limit`, showing `see` validator 0's
    /// notices and every event after each step; stops early (returning
    /// true) once `see` returned true.
    pub fn run(&mut self, limit: Duration, mut see: impl FnMut(Seen<'_>) -> bool) -> bool {
        let until = self.net.now() + limit;
        while self.net.now() < until {
            let next = self.net.now() + TICK;
            self.net.run_until(next, TICK, |_| false);
            let v0 = self.validators[0];
            let notices = self
                .net
                .validator_mut(&v0)
                .map(ValidatorNode::drain_notices)
                .unwrap_or_default();
            let events = self.net.take_events();
            let mut done = false;
            for n in &notices {
                done |= see(Seen::Notice(n));
            }
            for e in &events {
                done |= see(Seen::Event(e));
            }
            if done {
                return true;
            }
        }
        false
    }

    /// Steps until `n` events or notices matched `pred` (or `limit` passed).
    pub fn run_until_count(
        &mut self,
        limit: Duration,
        n: usize,
        mut pred: impl FnMut(Seen<'_>) -> bool,
    ) -> bool {
        let mut seen = 0;
        self.run(limit, |s| {
            seen += usize::from(pred(s));
            seen >= n
        })
    }
}
