//! The welfare benchmark: an observer of the validators' clearing records
//! that compares the mechanism's declared gains from trade with the exact
//! welfare-maximizing assignment of the same orders.
//!
//! It runs outside the replicated state: the marketplace only reports each
//! clearing's inputs ([`ClearingRecord`]); the exact solver runs here.

use std::collections::BTreeMap;

use idlegrid_market::{ClearingContext, Limits, Mechanism, OptimalAssignment, Reputation};
use idlegrid_node::market::ClearingRecord;
use idlegrid_primitives::AccountId;

/// Largest number of compatible (ask, bid) pairs the exact welfare
/// benchmark solves per clearing.
const MAX_BENCHMARK_PAIRS: usize = 100_000;

/// Declared gains from trade of the mechanism's clearings against the
/// welfare-maximizing assignment of the same orders (exact min-cost flow),
/// summed over clearing periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WelfareBenchmark {
    /// Clearing periods compared.
    pub periods: u64,
    /// Σ declared welfare (`Σ slots·(bid − ask)`) of the mechanism.
    pub mechanism: u128,
    /// Σ declared welfare of the optimal assignment, `None` once a period
    /// had too many compatible pairs for the exact solver.
    pub optimal: Option<u128>,
    /// Σ declared budget surplus (`Σ slots·(buyer − seller price)`).
    pub surplus: u128,
}

impl Default for WelfareBenchmark {
    fn default() -> Self {
        Self {
            periods: 0,
            mechanism: 0,
            optimal: Some(0),
            surplus: 0,
        }
    }
}

impl WelfareBenchmark {
    /// Adds one clearing. Once one period was too large for the exact
    /// solver the optimum is unknown for good, and the solver is skipped.
    pub fn record(&mut self, r: &ClearingRecord) {
        self.periods += 1;
        self.mechanism = self.mechanism.saturating_add(r.welfare);
        self.surplus = self.surplus.saturating_add(r.surplus);
        let optimal = self.optimal.and_then(|_| optimum(r));
        self.optimal = self.optimal.zip(optimal).map(|(a, b)| a.saturating_add(b));
    }
}

fn optimum(r: &ClearingRecord) -> Option<u128> {
    // Each ask's reputation, by provider (its first ask's, as the clearing
    // read it), found by a lookup instead of a scan of the asks per call.
    let mut by_provider = BTreeMap::new();
    for (ask, rep) in r.asks.iter().zip(r.reputation.iter()) {
        by_provider.entry(ask.provider).or_insert(*rep);
    }
    let rep = |id: &AccountId| {
        by_provider
            .get(id)
            .copied()
            .unwrap_or(Reputation::from_bps(0))
    };
    let ctx = ClearingContext {
        now: r.now,
        limits: Limits::default(),
        reputation: &rep,
    };
    let solver = OptimalAssignment::new(5_000, MAX_BENCHMARK_PAIRS).ok()?;
    let c = solver.clear(&r.asks, &r.bids, &ctx).ok()?;
    Some(c.stats.welfare.get())
}
