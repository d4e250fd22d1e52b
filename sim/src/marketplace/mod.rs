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
//! - **Providers and clients** are light nodes: they sign transactions and
//!   submit them through a validator (their gateway), and follow the ledger
//!   through node 0's [`Notice`](idlegrid_node::market::Notice)s. Their off-ledger messages (task hand-off
//!   to the provider) take the WAN latency between their regions; the
//!   provider's execution takes the [`SimulatedExecutor`](idlegrid_executor::SimulatedExecutor)'s
//!   virtual duration.
//! - A job: `PostJob` escrows the budget and locks client bonds → clearing
//!   (k-double auction, reputation filter) matches lots to provider slots →
//!   the client plans each lot with the entrap optimizer (fed by the
//!   provider's credibility) and posts the plan → the provider executes,
//!   commits and reveals outputs with its metered usage → the client
//!   reveals traps and accuses → accept, or dispute settled by three
//!   validator referees re-executing the trap → settlement: price × usage
//!   (capped) to the provider, remainder back to the client, slashes,
//!   bonds, reputation.
//!
//! Not yet as the design asks (issue 17 is moving them into `idlegrid-node`):
//! providers and clients are still played by this driver rather than being
//! nodes of the simulated world (they read node 0's notices and ledger),
//! bids are not sealed (commit–reveal is exercised by `idlegrid-market`'s
//! own tests), output commit and reveal travel in one transaction, the
//! referee committee is a hash ranking of the validators instead of VRF
//! sortition, and ledger signatures are checked once at the gateway.
//!
//! ```no_run
//! use idlegrid_sim::marketplace::{MarketplaceConfig, run_marketplace};
//! let report = run_marketplace(&MarketplaceConfig::default()).unwrap();
//! println!("{}", report.render());
//! ```

pub mod agents;
pub mod nodes;
pub mod observer;
pub mod run;
pub mod tally;
pub mod welfare;

pub use observer::MarketObserver;
pub use run::{
    CheaterMix, MarketSeries, MarketplaceConfig, MarketplaceError, MarketplaceReport,
    MarketplaceSummary, run_marketplace,
};
pub use welfare::WelfareBenchmark;
