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
        self.declared(r);
        self.add_optimum(r);
    }

    /// Adds one clearing's declared figures.
    fn declared(&mut self, r: &ClearingRecord) {
        self.periods += 1;
        self.mechanism = self.mechanism.saturating_add(r.welfare);
        self.surplus = self.surplus.saturating_add(r.surplus);
    }

    /// Adds one clearing's optimum (unless it is unknown for good already).
    fn add_optimum(&mut self, r: &ClearingRecord) {
        let optimal = self.optimal.and_then(|_| optimum(r));
        self.optimal = self.optimal.zip(optimal).map(|(a, b)| a.saturating_add(b));
    }
}

/// Clearings queued for the background solver at most; one more waits
/// for the oldest (memory stays bounded however far the solver lags).
const QUEUED: usize = 64;

/// The welfare benchmark, with the exact solver on the machine's other
/// core ([`WelfareLane::background`]) or inline ([`WelfareLane::inline`]).
///
/// The solver is the benchmark's whole cost (2 % of the default run's
/// engine thread) and nothing in the run waits for it: nodes never see
/// it, and its sums are read once, for the summary. The background thread
/// takes the clearings in the order they were recorded and sums their
/// optima as [`WelfareBenchmark::record`] does, so the totals are the same
/// either way; [`WelfareLane::totals`] joins it.
pub struct WelfareLane {
    /// Declared sums, and the optimum's once solved inline or joined.
    sums: std::cell::Cell<WelfareBenchmark>,
    /// The background solver, until joined.
    worker: std::cell::RefCell<Option<SolverThread>>,
}

struct SolverThread {
    send: std::sync::mpsc::SyncSender<ClearingRecord>,
    thread: std::thread::JoinHandle<Option<u128>>,
}

impl std::fmt::Debug for WelfareLane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WelfareLane")
            .field("sums", &self.sums.get())
            .field("background", &self.worker.borrow().is_some())
            .finish()
    }
}

impl WelfareLane {
    /// Solves each clearing inline, as it is recorded.
    pub fn inline() -> Self {
        Self {
            sums: std::cell::Cell::new(WelfareBenchmark::default()),
            worker: std::cell::RefCell::new(None),
        }
    }

    /// Solves on a thread of its own (inline if the thread cannot start).
    pub fn background() -> Self {
        let (send, queue) = std::sync::mpsc::sync_channel::<ClearingRecord>(QUEUED);
        let spawned = std::thread::Builder::new()
            .name("welfare".into())
            .spawn(move || {
                let mut sums = WelfareBenchmark::default();
                for r in queue {
                    sums.add_optimum(&r);
                }
                sums.optimal
            });
        let worker = spawned.ok().map(|thread| SolverThread { send, thread });
        Self {
            worker: std::cell::RefCell::new(worker),
            ..Self::inline()
        }
    }

    /// Adds one clearing.
    pub fn record(&mut self, r: &ClearingRecord) {
        let sums = self.sums.get_mut();
        match self.worker.get_mut() {
            // A solver that died drops the queue: the send fails, and its
            // join reports the optimum unknown.
            Some(w) => {
                let _ = w.send.send(r.clone());
                sums.declared(r);
            }
            None => sums.record(r),
        }
    }

    /// The sums over every clearing recorded (joining the solver's thread
    /// the first time). A solver that panicked leaves the optimum unknown.
    pub fn totals(&self) -> WelfareBenchmark {
        if let Some(w) = self.worker.borrow_mut().take() {
            drop(w.send);
            let solved = w.thread.join().ok().flatten();
            let mut sums = self.sums.get();
            sums.optimal = solved;
            self.sums.set(sums);
        }
        self.sums.get()
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
