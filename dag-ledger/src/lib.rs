//! # idlegrid-dag-ledger
//!
//! The ledger that ties the idlegrid network together, in two independent
//! sans-IO modules:
//!
//! - [`consensus`]: an uncertified-DAG BFT consensus in the style of
//!   Mysticeti-C that totally orders transactions (opaque bytes);
//! - [`ledger`]: the replicated state machine that applies the ordered
//!   transactions: accounts, fee-less transfers, stake, escrow, slashing.
//!
//! The composition root (the simulator's node, or an integrator's) feeds the
//! committed transaction sequence of `consensus` into `ledger`.
//!
//! ## Time and determinism
//!
//! Both modules are sans-IO. A [`consensus::Validator`] implements
//! [`idlegrid_primitives::Machine`]: after every input
//! (`handle_message`/`handle_timeout`, each taking `now`), drain
//! `poll_transmit` and `poll_event` until `None`, then sleep until
//! `poll_timeout`. The ledger takes its epoch and time from the commit it
//! applies, never from a clock, so every replica reaches the same state
//! digest.
//!
//! ## Example: four validators commit a payment; every replica agrees
//!
//! ```
//! use std::collections::VecDeque;
//! use idlegrid_dag_ledger::consensus::{Committee, ConsensusConfig, ConsensusEvent, ConsensusMessage, Validator};
//! use idlegrid_dag_ledger::ledger::*;
//! use idlegrid_primitives::*;
//!
//! let root = Seed::from_u64(1);
//! let keys: Vec<Keypair> = (0..4).map(|i| Keypair::from_seed(&root.derive_indexed("v", i))).collect();
//! let committee = Committee::equal(keys.iter().map(Keypair::node_id)).unwrap();
//! let mut validators: Vec<Validator> = keys.iter().enumerate().map(|(i, k)| {
//!     Validator::new(k.clone(), committee.clone(), ConsensusConfig::default(),
//!                    root.derive_indexed("seed", i as u64)).unwrap()
//! }).collect();
//!
//! // Alice pays Bob 1 250 (a new account needs at least `min_new_account`);
//! // the signed transaction is opaque bytes to consensus.
//! let (alice, bob) = (Keypair::from_seed(&root.derive("alice")), Keypair::from_seed(&root.derive("bob")));
//! let genesis = Genesis {
//!     balances: vec![(alice.account_id(), Amount::new(5_000))],
//!     stakes: keys.iter().map(|k| (k.account_id(), Amount::new(100))).collect(),
//!     params: Params::default(),
//! };
//! let tx = Transaction {
//!     chain: genesis.params.chain_id,
//!     sender: alice.account_id(),
//!     nonce: Nonce::default(),
//!     kind: TxKind::Transfer { to: bob.account_id(), amount: Amount::new(1_250) },
//! }.sign(&alice);
//! validators[0].submit_transaction(tx.to_bytes()).unwrap();
//! let mut ledgers: Vec<Ledger> = (0..4).map(|_| Ledger::new(genesis.clone()).unwrap()).collect();
//!
//! // A tiny driver: 10 ms per hop, every message delivered in order.
//! let ids: Vec<NodeId> = keys.iter().map(Keypair::node_id).collect();
//! let mut wire: VecDeque<(Timestamp, usize, NodeId, ConsensusMessage)> = VecDeque::new();
//! let mut now = Timestamp::ZERO;
//! while ledgers.iter().any(|l| l.balance(&bob.account_id()) == Amount::ZERO) {
//!     assert!(now < Timestamp::from_millis(10_000), "no commit");
//!     for (i, v) in validators.iter_mut().enumerate() {
//!         if v.poll_timeout().is_some_and(|t| t <= now) { v.handle_timeout(now); }
//!         while let Some(t) = v.poll_transmit() {
//!             let to: Vec<usize> = match t.to {
//!                 Destination::To(n) => ids.iter().position(|x| *x == n).into_iter().collect(),
//!                 Destination::Broadcast => (0..4).filter(|j| *j != i).collect(),
//!             };
//!             for j in to { wire.push_back((now + Duration::from_millis(10), j, ids[i], t.msg.clone())); }
//!         }
//!         while let Some(ev) = v.poll_event() {
//!             if let ConsensusEvent::Committed(sub) = ev {
//!                 let txs: Vec<&[u8]> = sub.transactions.iter().map(|t| t.as_bytes()).collect();
//!                 let ctx = BatchContext { epoch: Epoch::new(sub.index + 1), now: sub.timestamp, beacon: sub.digest };
//!                 ledgers[i].apply_batch(ctx, &txs, &mut Host::default_for(&mut NoApps)).unwrap();
//!             }
//!         }
//!     }
//!     now = now + Duration::from_millis(1);
//!     while wire.front().is_some_and(|(at, ..)| *at <= now) {
//!         let (_, j, from, msg) = wire.pop_front().unwrap();
//!         validators[j].handle_message(now, from, msg);
//!     }
//! }
//! for l in &ledgers {
//!     assert_eq!(l.balance(&bob.account_id()), Amount::new(1_250));
//!     assert_eq!(l.state_digest(), ledgers[0].state_digest());
//!     check_all(l).unwrap();
//! }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Determinism: a `HashMap`/`HashSet` iterates in a per-process order, so
// protocol crates use none (`.ci/run` greps for them) and this lint catches
// a `for` loop over one should it come back. Use `BTreeMap`/`BTreeSet`.
#![warn(clippy::iter_over_hash_type)]

pub mod consensus;
pub mod ledger;
