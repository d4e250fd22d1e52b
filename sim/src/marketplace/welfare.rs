//! The welfare benchmark: an observer of the validators' clearing records
//! that compares the mechanism's declared gains from trade with the exact
//! welfare-maximizing assignment of the same orders.
//!
//! It runs outside the replicated state: the marketplace only reports each
//! clearing's inputs ([`ClearingRecord`]); the exact solver runs here.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc::Receiver;

use idlegrid_market::{ClearingContext, Limits, Mechanism, OptimalAssignment, Reputation};
use idlegrid_node::market::ClearingRecord;
use idlegrid_primitives::AccountId;

use crate::worker::Worker;

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
        let optimal = self.optimal.and_then(|_| optimum(r));
        self.add_optimum(optimal);
    }

    /// Adds one clearing's declared figures.
    fn declared(&mut self, r: &ClearingRecord) {
        self.periods += 1;
        self.mechanism = self.mechanism.saturating_add(r.welfare);
        self.surplus = self.surplus.saturating_add(r.surplus);
    }

    /// Adds one clearing's optimum (`None`: unknown, and so is the sum).
    fn add_optimum(&mut self, optimal: Option<u128>) {
        self.optimal = self.optimal.zip(optimal).map(|(a, b)| a.saturating_add(b));
    }
}

/// Clearings handed to the worker and not yet summed, at most: a record
/// holds its period's every order (megabytes at `large`'s 10 000
/// providers), so few; one more waits for the oldest, and a solver slower
/// than the clearings paces the run as the inline one would.
const QUEUED: usize = 2;

/// The welfare benchmark, its exact solver on the run's side-work thread
/// ([`Worker`], shared with the validators' audits) or inline.
///
/// The solver is the benchmark's whole cost (≈ 2 % of the default run's
/// engine thread, ≈ 6 % of `large`'s) and nothing in the run waits for
/// it: nodes never see it, and its sums are read for the summary. The
/// worker solves the clearings in the order they were recorded and the
/// lane adds their optima in that order, as [`WelfareBenchmark::record`]
/// does, so the totals are the same either way ([`WelfareLane::totals`]
/// joins what is still out).
#[derive(Debug, Default)]
pub struct WelfareLane {
    worker: Option<Worker>,
    /// Declared sums, and the optima of the clearings joined so far.
    sums: Cell<WelfareBenchmark>,
    /// The clearings' optima still out, oldest first.
    waiting: RefCell<VecDeque<Receiver<Option<u128>>>>,
}

impl WelfareLane {
    /// The solver on `worker`, or inline without one.
    pub fn on(worker: Option<Worker>) -> Self {
        Self {
            worker,
            ..Self::default()
        }
    }

    /// Adds one clearing.
    pub fn record(&mut self, r: &ClearingRecord) {
        let sums = self.sums.get_mut();
        let unknown = sums.optimal.is_none();
        sums.declared(r);
        if unknown {
            return;
        }
        let job = self.worker.as_ref().and_then(|w| {
            let r = r.clone();
            w.submit(move || optimum(&r))
        });
        match job {
            Some(answer) => {
                self.waiting.get_mut().push_back(answer);
                while self.waiting.get_mut().len() > QUEUED {
                    self.join_oldest();
                }
            }
            // No worker, or it is gone: what is out first, then this one.
            None => {
                self.worker = None;
                self.join_all();
                let sums = self.sums.get_mut();
                let optimal = sums.optimal.and_then(|_| optimum(r));
                sums.add_optimum(optimal);
            }
        }
    }

    /// The sums over every clearing recorded (joining the solver first).
    pub fn totals(&self) -> WelfareBenchmark {
        self.join_all();
        self.sums.get()
    }

    fn join_all(&self) {
        while !self.waiting.borrow().is_empty() {
            self.join_oldest();
        }
    }

    /// Adds the oldest optimum still out; a solver that died (a panic)
    /// leaves the optimum unknown.
    fn join_oldest(&self) {
        let Some(answer) = self.waiting.borrow_mut().pop_front() else {
            return;
        };
        let mut sums = self.sums.get();
        sums.add_optimum(answer.recv().ok().flatten());
        self.sums.set(sums);
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
