//! # idlegrid-node
//!
//! The reference node: the **one composition** of idlegrid's protocol
//! crates. The simulator (`idlegrid-sim`) and real processes drive exactly
//! these machines; they differ only in how they deliver messages, time,
//! storage and execution.
//!
//! - [`validator`]: consensus + ledger + the marketplace application, one
//!   [`Machine`](idlegrid_primitives::Machine); also the gateway light nodes
//!   talk to, and a referee.
//! - [`provider`] and [`client`]: the light nodes. They reach the ledger
//!   through [`light::LightCore`] (signing, gateway failover, re-signing
//!   after a rejection) and act only on facts that validators holding
//!   f + 1 of the stake reported identically ([`facts`]).
//! - [`wire`]: every message between nodes, and the facts validators serve.
//! - [`certified`]: the facts for every subscriber signed by f + 1 of the
//!   stake, so one validator's message backs them.
//! - [`market`]: the marketplace [`Application`](idlegrid_dag_ledger::ledger::Application),
//!   split by concept (orders, sealed batches, clearing, rounds,
//!   settlement). Time-driven work runs in the ledger's end-of-batch hook.
//! - [`market::sealing`]: the light side of sealed bids, shared by every
//!   driver: seal a price, reveal it once the ledger closed its batch.
//! - [`verification`]: how a client verifies its lots — entrapment (the
//!   default), replication (every lot on two providers, disagreement to the
//!   referees), BOINC's adaptive replication, or none — chosen per client
//!   ([`client::ClientNode::with_verification`]).
//! - [`feedback`]: the one mapping from an entrapment verdict to reputation
//!   feedback.
//! - [`batch`]: the one rule that turns a commit into a ledger batch.
//! - [`byzantine`]: Byzantine behaviours as wrappers around the honest
//!   machines, for tests and scenarios (a lying gateway; an equivocating,
//!   withholding or invalid-block-authoring validator).
//! - [`local`]: an in-process network to try it all (examples, tests).
//! - [`store`]: the storage interface a driver gives a durable validator
//!   ([`store::NodeStore`], [`store::persist_step`]) and an in-memory store;
//!   what is durable when is decided by the machines (see
//!   [`validator::ValidatorNode::with_persistence`]).
//!
//! ## Light nodes and facts
//!
//! A provider or client subscribes to every validator; after each commit
//! every validator sends it the facts of that commit that concern it (the
//! fate of its transactions — applied, or rejected with a typed
//! [`wire::Rejection`] —, the marketplace events where it is a party, its
//! holdings). It acts on a fact once validators holding a validity quorum
//! (f + 1 of the stake) sent it identically for the same commit index: at
//! least one of them is honest, so a lying gateway can neither forge a
//! match, a delivery, an accusation or a payment, nor make it act on one.
//! Who sent a fact is the transport's word (both ends authenticated by
//! their node keys), so facts carry no signature of their own.
//!
//! ## Time and determinism
//!
//! Sans-IO like the protocol crates: no clock, no threads, no sockets, no
//! global RNG. Every input carries `now`; randomness arrives as a
//! [`Seed`](idlegrid_primitives::Seed). Driving loop of a [`validator::ValidatorNode`]: after
//! every input (`handle_message`, `handle_timeout`, `submit`), drain
//! `poll_transmit` and `poll_event` until `None`, then sleep until
//! `poll_timeout`.
//!
//! ## Example: a job with traps, run and paid
//!
//! Four validators, two providers and a client in one process
//! ([`local::testnet`]; [`local::LocalNet::step`] is the driving loop of
//! the next example, with a fixed 10 ms latency and an executor that answers
//! providers' effects at once):
//!
//! ```
//! use idlegrid_market::{ExecutorKind, Features, JobGoods};
//! use idlegrid_node::client::{ClientEvent, JobSpec};
//! use idlegrid_node::local::{LocalEvent, testnet};
//! use idlegrid_node::market::{JobRequest, unsealed};
//! use idlegrid_primitives::{Amount, Digest, Domain, Duration, Timestamp};
//!
//! let mut t = testnet(1, 4, 2, 1);
//! let alice = t.clients[0];
//! let tick = Duration::from_millis(10);
//! t.net.run_until(Timestamp::from_micros(2_000_000), tick, |_| false); // providers offer
//! let now = t.net.now();
//! let inputs: Vec<Vec<Digest>> = (0..2u32)
//!     .map(|lot| (0..8u64).map(|i| Digest::of(Domain::new("example/input"), &(lot, i))).collect())
//!     .collect();
//! let request = JobRequest {
//!     job: 1,
//!     lots: 2,
//!     max_slots_per_lot: 64,
//!     commitment: unsealed(), // the client node seals `max_price` here
//!     cap_micros_per_subtask: 200_000,
//!     min_reputation_bps: 0,
//!     client_bond: Amount::new(5_000),
//!     deadline: now + Duration::from_secs(20),
//!     goods: JobGoods::none(),
//!     executor: ExecutorKind::Simulated,
//!     requires: Features::NONE,
//! };
//! t.net.client_mut(&alice).unwrap().post_job(now, JobSpec { request, inputs, max_price: Amount::new(10_000), data: None }).unwrap();
//! let closed = t.net.run_until(now + Duration::from_secs(60), tick, |e| {
//!     matches!(e, LocalEvent::Client(_, ClientEvent::JobClosed { .. }))
//! });
//! assert!(closed);
//! let settled: Vec<_> = t.net.take_events().into_iter().filter_map(|e| match e {
//!     LocalEvent::Client(_, ClientEvent::Settled(s)) => Some(s),
//!     _ => None,
//! }).collect();
//! assert_eq!(settled.len(), 2);
//! assert!(settled.iter().all(|s| s.traps > 0 && s.paid > Amount::ZERO && s.slashed.is_zero()));
//! ```
//!
//! ## Example: the driving loop, four validators settle an offer
//!
//! ```
//! use std::collections::VecDeque;
//! use idlegrid_dag_ledger::consensus::{Committee, ConsensusConfig};
//! use idlegrid_dag_ledger::ledger::{Genesis, Ledger, Nonce, Params, Transaction, TxKind};
//! use idlegrid_market::KDouble;
//! use idlegrid_node::market::{Environment, MARKETPLACE_APP, MarketRules, MarketTx};
//! use idlegrid_node::validator::{ValidatorEvent, ValidatorNode, ValidatorSetup};
//! use idlegrid_primitives::*;
//!
//! let keys: Vec<Keypair> = (0..4).map(|i| Keypair::from_seed(&Seed::from_u64(i))).collect();
//! let ids: Vec<NodeId> = keys.iter().map(Keypair::node_id).collect();
//! let provider = Keypair::from_seed(&Seed::from_u64(99));
//! let mut balances: Vec<_> = ids.iter().map(|v| (v.account(), Amount::new(1_000_000))).collect();
//! balances.push((provider.account_id(), Amount::new(1_000_000)));
//! let genesis = Genesis {
//!     balances,
//!     stakes: vec![(provider.account_id(), Amount::new(5_000))],
//!     params: Params::default(),
//! };
//! let setup = ValidatorSetup {
//!     ledger: Ledger::new(genesis).unwrap(),
//!     rules: MarketRules {
//!         stake_per_slot: Amount::new(1_000),
//!         slash_to_client_bps: 5_000,
//!         stage_deadline: Duration::from_secs(15),
//!         clearing_period: Duration::from_secs(1),
//!         committee_size: 3,
//!         referees: ids.clone(),
//!         book: Default::default(),
//!         reputation_epoch_secs: 10,
//!         global_trust: None,
//!     },
//!     consensus: ConsensusConfig::default(),
//!     mechanism: || Box::new(KDouble::new(5_000).unwrap()),
//!     epoch_secs: 1,
//! };
//! let committee = Committee::equal(ids.iter().copied()).unwrap();
//! let mut nodes: Vec<ValidatorNode> = keys
//!     .iter()
//!     .enumerate()
//!     .map(|(i, k)| {
//!         let seed = Seed::from_u64(1_000 + i as u64);
//!         ValidatorNode::new(k.clone(), committee.clone(), &setup, seed, i == 0).unwrap()
//!     })
//!     .collect();
//! // The provider offers two slots, through validator 0 (its gateway).
//! // (Its prices follow as sealed asks: see `market::sealing::Sealer`.)
//! let offer = MarketTx::Offer {
//!     capacity: 2,
//!     stake_per_slot: Amount::new(1_000),
//!     region: 0,
//!     environment: Environment::simulated(),
//! };
//! let tx = Transaction {
//!     chain: Params::default().chain_id,
//!     sender: provider.account_id(),
//!     nonce: Nonce::new(0),
//!     kind: TxKind::App { app_id: MARKETPLACE_APP, payload: encode(&offer) },
//! }
//! .sign(&provider);
//! nodes[0].submit(&tx).unwrap();
//! // A perfect network: every message arrives 10 ms later, in order.
//! let mut now = Timestamp::ZERO;
//! let mut wire: VecDeque<(NodeId, Transmit<_>)> = VecDeque::new();
//! for n in &mut nodes { n.handle_timeout(now); }
//! let mut offered = [false; 4];
//! while offered.iter().any(|o| !o) && now < Timestamp::from_micros(5_000_000) {
//!     now = now + Duration::from_millis(10);
//!     for (i, n) in nodes.iter_mut().enumerate() {
//!         while let Some(t) = n.poll_transmit() { wire.push_back((ids[i], t)); }
//!         while let Some(ev) = n.poll_event() {
//!             if let ValidatorEvent::Applied { .. } = ev {
//!                 offered[i] = n.market().offering().count() == 1;
//!             }
//!         }
//!     }
//!     for (from, t) in std::mem::take(&mut wire) {
//!         for (j, n) in nodes.iter_mut().enumerate() {
//!             let to_me = match t.to { Destination::To(x) => x == ids[j], Destination::Broadcast => ids[j] != from };
//!             if to_me { n.handle_message(now, from, t.msg.clone()); }
//!         }
//!     }
//!     for n in &mut nodes {
//!         if n.poll_timeout().is_some_and(|t| t <= now) { n.handle_timeout(now); }
//!     }
//! }
//! assert!(offered.iter().all(|o| *o), "every validator applied the offer");
//! let digests: Vec<_> = nodes.iter().map(|n| n.ledger().state_digest()).collect();
//! assert!(digests.windows(2).all(|w| w[0] == w[1]));
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Iteration order must not depend on the process (see `.ci/run`).
#![warn(clippy::iter_over_hash_type)]

pub mod batch;
pub mod byzantine;
pub mod certified;
pub mod client;
pub mod facts;
pub mod feedback;
pub mod light;
pub mod local;
pub mod market;
pub mod provider;
pub mod snapshot;
pub mod store;
pub mod validator;
pub mod verification;
pub mod wire;
