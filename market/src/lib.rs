//! # idlegrid-market
//!
//! The market of idlegrid: providers post [`Ask`]s (a per-slot resource
//! vector, executor kinds, region, price per slot-second, capacity, window),
//! clients post [`Bid`]s (per-slot demand, slots, limit price, deadline,
//! regions, minimum provider reputation, executor kind), and the market
//! produces [`Match`]es that the composition root turns into escrow. No
//! code here moves money.
//!
//! - **Sealed bids** — [`SealedBatch`]: one epoch of commit → reveal →
//!   close; missing, late, mismatching or invalid reveals forfeit their bond.
//!   [`Auctioneer`] pipelines batches (commit in epoch `e`, reveal in
//!   `e + 1`) behind the usual `handle_*` / `poll_event` / `poll_timeout`
//!   driving loop.
//! - **Batch clearing** — the [`Mechanism`] trait, implemented by
//!   [`McAfee`] (truthful trade reduction), [`KDouble`] (uniform price),
//!   [`PayAsBid`] / [`PayAsAsk`] baselines, and, for heterogeneous demand,
//!   [`OptimalAssignment`] (exact welfare maximum) and [`GreedyAssignment`]
//!   (fast, ≥ ½ of the optimum in tests). Each documents its properties;
//!   the property tests check them. [`Mechanism::clear_into`] clears into
//!   a caller's [`Clearing`] with a reusable [`ClearingScratch`], for
//!   callers that clear large batches one after another.
//! - **Continuous trading** — [`OrderBook`], price-time priority.
//! - **Apps, datasets and confidential data** — [`registry`]: apps and
//!   datasets registered by content digest with an owner, a price per use
//!   and an access policy, changed only by signed records; bids reference
//!   them ([`JobGoods`]), [`registry::clear_with_goods`] /
//!   [`SealedBatch::close_with_goods`] fix every owner's fee in the match,
//!   [`Registry::settle`] splits the escrow ([`registry::check_payout`]),
//!   and client-signed grants say who may read which sealed job input.
//! - **Invariants** — [`check_individual_rationality`],
//!   [`check_budget_balance`], [`check_feasibility`], [`check_clearing`],
//!   [`OrderBook::check_invariants`].
//!
//! ## Determinism and time
//!
//! Sans-IO: no clock, no threads, no randomness, integer arithmetic only
//! ([`Amount`](idlegrid_primitives::Amount), checked). Time arrives as a
//! `now: Timestamp` argument. Clearing sorts orders canonically (price,
//! then [`OrderId`]), so every node computes the same matches from the same
//! reveals, byte for byte. Reputation comes from the caller through
//! [`ReputationLookup`] (any `Fn(&AccountId) -> Reputation`).
//!
//! ## Example: one sealed batch cleared by McAfee
//!
//! ```
//! use idlegrid_market::*;
//! use idlegrid_primitives::{AccountId, Amount, Epoch, Salt, Seed, Timestamp};
//!
//! let who = |n: u8| AccountId::from_bytes([n; 32]);
//! let slot = Resources::new(1000, 1024, 0, 0); // 1 core, 1 GiB
//! let unit_ask = |id, price, slots, provider| Ask {
//!     id: OrderId::new(id),
//!     provider,
//!     resources: slot,
//!     executors: ExecutorSet::single(ExecutorKind::Wasm),
//!     features: Features::NONE,
//!     region: Region::new(0),
//!     price: Amount::new(price),
//!     slots: Slots::new(slots),
//!     window_start: Timestamp::ZERO,
//!     window_end: Timestamp::from_millis(3_600_000),
//! };
//! let unit_bid = |id, max_price, slots, client| Bid {
//!     id: OrderId::new(id),
//!     client,
//!     demand: slot,
//!     slots: Slots::new(slots),
//!     max_price: Amount::new(max_price),
//!     deadline: Timestamp::from_millis(3_600_000),
//!     regions: RegionSet::single(Region::new(0)),
//!     min_reputation: Reputation::from_bps(5_000),
//!     executor: ExecutorKind::Wasm,
//!     requires: Features::NONE,
//!     goods: JobGoods::none(),
//! };
//!
//! let epoch = Epoch::new(7);
//! let mut batch = SealedBatch::open(epoch, Timestamp::ZERO, BatchConfig::default()).unwrap();
//! let orders = vec![
//!     Order::Ask(unit_ask(1, 10, 1, who(1))),
//!     Order::Ask(unit_ask(2, 20, 1, who(2))),
//!     Order::Ask(unit_ask(3, 40, 1, who(3))),
//!     Order::Bid(unit_bid(4, 50, 1, who(4))),
//!     Order::Bid(unit_bid(5, 30, 1, who(5))),
//!     Order::Bid(unit_bid(6, 25, 1, who(6))),
//! ];
//!
//! // Commit phase: only digests and bonds.
//! let mut rng = Seed::from_u64(1).rng();
//! let sealed: Vec<_> = orders
//!     .iter()
//!     .map(|o| {
//!         let salt = Salt::random(&mut rng);
//!         let c = seal(epoch, o, &salt);
//!         batch.commit(Timestamp::ZERO, o.owner(), c, Amount::new(5)).unwrap();
//!         (o.clone(), salt, c)
//!     })
//!     .collect();
//!
//! // Reveal phase (the last order is never revealed).
//! let t = batch.commit_deadline();
//! for (o, salt, c) in &sealed[..5] {
//!     batch.reveal(t, o.owner(), *c, o.clone(), *salt).unwrap();
//! }
//!
//! // Close: clear and settle bonds.
//! let rep = |_: &AccountId| Reputation::MAX;
//! let out = batch.close(batch.reveal_deadline(), &McAfee, &rep).unwrap();
//! // Bids 50, 30 vs asks 10, 20: k = 2; no third bid, so McAfee drops one
//! // trade: bid 50 pays 30, ask 10 receives 20, surplus 10.
//! assert_eq!(out.clearing.matches.len(), 1);
//! let m = &out.clearing.matches[0];
//! assert_eq!((m.bid, m.ask), (OrderId::new(4), OrderId::new(1)));
//! assert_eq!((m.buyer_price, m.seller_price), (Amount::new(30), Amount::new(20)));
//! assert_eq!(out.clearing.stats.surplus, Amount::new(10));
//! assert_eq!(out.forfeits.len(), 1);
//! assert_eq!(out.forfeits[0].reason, ForfeitReason::NotRevealed);
//! assert_eq!(out.refunds.len(), 5);
//! // The composition root escrows 30 per slot-second for one slot.
//! assert_eq!(m.buyer_total(60).unwrap(), Amount::new(1800));
//! ```
//!
//! ## Example: a paid app, fixed at match time
//!
//! ```
//! use idlegrid_market::registry::*;
//! use idlegrid_market::strategies::{unit_ask, unit_bid};
//! use idlegrid_market::*;
//! use idlegrid_primitives::{Amount, Keypair, Seed, Timestamp};
//!
//! let dev = Keypair::from_seed(&Seed::from_u64(1));
//! let (client, provider) = (Keypair::from_seed(&Seed::from_u64(2)), Keypair::from_seed(&Seed::from_u64(3)));
//! let mut reg = Registry::new(RegistryLimits::default());
//! let app = content_digest(GoodKind::App, b"\0asm...");
//! let op = RegistryOp::Register {
//!     kind: GoodKind::App,
//!     digest: app,
//!     version: 1,
//!     price_per_use: Amount::new(7),
//!     policy: AccessPolicy::Public,
//! };
//! reg.apply(Timestamp::ZERO, &SignedOp::sign(&dev, 0, op)).unwrap();
//!
//! // The client's bid runs the app and accepts up to 10 per slot in fees.
//! let bid = unit_bid(1, 20, 2, client.account_id()).with_app(app).with_max_fee(Amount::new(10));
//! let ask = unit_ask(2, 10, 2, provider.account_id());
//! let rep = FlatReputation(Reputation::MAX);
//! let ctx = ClearingContext { now: Timestamp::ZERO, limits: Limits::default(), reputation: &rep };
//! let out = clear_with_goods(&PayAsBid, &[ask], &[bid], &ctx, &reg).unwrap();
//! let m = &out.clearing.matches[0];
//! assert_eq!(m.fees[0].price_per_use, Amount::new(7));
//!
//! // Escrow, open the job, run 60 s, settle: the owner gets 2 × 7.
//! assert_eq!(m.escrow_total(60).unwrap(), Amount::new(2 * 20 * 60 + 2 * 7));
//! let job = reg.open_job(Timestamp::ZERO, m).unwrap();
//! let payout = reg.settle(&job, 60).unwrap();
//! assert_eq!(payout.owners, vec![(dev.account_id(), Amount::new(14))]);
//! assert!(check_payout(m, 60, &payout).is_ok());
//! ```
//!
//! ## For auditors
//!
//! With the `strategies` feature, the `strategies` module exports proptest strategies
//! for orders and whole markets (homogeneous and heterogeneous).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Determinism: a `HashMap`/`HashSet` iterates in a per-process order, so
// protocol crates use none (`.ci/run` greps for them) and this lint catches
// a `for` loop over one should it come back. Use `BTreeMap`/`BTreeSet`.
#![warn(clippy::iter_over_hash_type)]

mod assignment;
mod auctioneer;
mod book;
mod check;
mod clearing;
mod error;
mod features;
mod named;
mod order;
pub mod registry;
mod sealed;
mod types;
mod unit;

#[cfg(feature = "strategies")]
pub mod strategies;

pub use assignment::{GreedyAssignment, OptimalAssignment};
pub use auctioneer::{Auctioneer, MarketEvent};
pub use book::OrderBook;
pub use check::{
    Violation, check_budget_balance, check_clearing, check_feasibility,
    check_individual_rationality,
};
pub use clearing::{Clearing, ClearingContext, ClearingStats, Match, Mechanism, Prepared, prepare};
pub use error::MarketError;
pub use features::{Feature, FeatureError, Features, MAX_FEATURE_NAME, MAX_FEATURES};
pub use named::{
    MAX_MECHANISMS, MECHANISMS, MechanismNameError, MechanismRegistry, NamedMechanism,
    mechanism_named, mechanism_names,
};
pub use order::{Ask, Bid, Limits, MAX_ORDER_BYTES, Order, compatible};
pub use registry::{GoodsPricing, JobGoods, NoGoods, OwnerFee, Registry};
pub use sealed::{
    BatchConfig, BatchOutcome, Forfeit, ForfeitReason, ORDER_COMMITMENT, Phase, Refund,
    SealedBatch, seal,
};
pub use types::{
    ExecutorKind, ExecutorSet, FlatReputation, MAX_REGIONS, OrderId, Region, RegionSet, Reputation,
    ReputationLookup, Resources, Slots,
};
pub use unit::{ClearingScratch, KDouble, McAfee, PayAsAsk, PayAsBid};
