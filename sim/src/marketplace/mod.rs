//! The whole marketplace composed: the reference node composition that
//! integrators follow.
//!
//! - **Validators** are `idlegrid-node`'s
//!   [`ValidatorNode`](idlegrid_node::validator::ValidatorNode): DAG
//!   consensus on the simulated WAN, every committed sub-DAG applied to
//!   their own ledger, which hosts the node's
//!   [`MarketplaceApp`](idlegrid_node::market::MarketplaceApp) (market,
//!   entrapment and reputation in one ledger application whose time-driven
//!   work runs in the ledger's end-of-batch hook).
//!   Every validator's state digest is compared at every commit index and
//!   the ledger's `check_all` (supply = initial − burned, no negative
//!   balance or escrow, the incremental digest) runs on every batch, at
//!   one validator in turn ([`MarketObserver`]).
//! - **Providers, clients and the registry's owners** are `idlegrid-node`'s
//!   light nodes ([`ProviderNode`](idlegrid_node::provider::ProviderNode),
//!   [`ClientNode`](idlegrid_node::client::ClientNode)), each a node of the
//!   simulated world: they submit signed transactions through a gateway
//!   validator, act only on ledger facts that f + 1 validators reported,
//!   and hand work to each other in messages — every message takes the
//!   network model's latency and bandwidth. What the simulator adds is in
//!   [`nodes`]: the simulated executor that answers a provider's execution
//!   effect (virtual duration, cheating behaviours), each client's workload
//!   (Poisson job arrivals), a provider operator's pricing and whitewashing
//!   strategy, and the referees' re-execution.
//! - Prices are sealed by the nodes themselves: each provider node seals
//!   one ask per 2 s batch, each client node seals its job's limit price in
//!   the `PostJob`; both reveal once f + 1 validators report the batch
//!   closed for commits.
//! - A job: `PostJob` seals the bid and locks client bonds → its reveal
//!   escrows the budget → clearing of the batch's revealed orders
//!   (k-double auction, reputation filter) matches lots to provider slots →
//!   the client plans each lot with the entrap optimizer (fed by the
//!   provider's credibility, reported with the match), posts the plan and
//!   sends the inputs → the provider checks them against the plan,
//!   executes, commits and reveals outputs with its metered usage → the
//!   client reveals traps and accuses → accept, or dispute: each validator
//!   sends its VRF ticket if it may win a seat, the three lowest are seated
//!   and re-execute the traps (an undecided committee escalates to 7, then
//!   15) → settlement: price × usage
//!   (capped) to the provider, remainder back to the client, slashes,
//!   bonds, reputation.
//! - Observers read events only ([`tally`]); the report reads validator 0's
//!   final ledger.
//!
//! Not yet as the design asks: ledger signatures are checked once at the
//! gateway.
//!
//! ```no_run
//! use idlegrid_sim::marketplace::{MarketplaceConfig, run_marketplace};
//! let report = run_marketplace(&MarketplaceConfig::default()).unwrap();
//! println!("{}", report.render());
//! ```

pub mod agents;
pub mod coalition;
pub(crate) mod fingerprint;
pub mod nodes;
pub mod observer;
pub mod prices;
pub mod run;
pub mod stalls;
pub mod tally;
pub mod valuation;
pub mod verification;
pub mod welfare;

pub use observer::MarketObserver;
pub use run::{
    CheaterMix, MarketSeries, MarketplaceConfig, MarketplaceError, MarketplaceReport,
    MarketplaceSummary, ReputationFilter, run_marketplace,
};
pub use welfare::WelfareBenchmark;
