//! Latency against throughput, as consensus papers report it
//! (`idlegrid-sim throughput`): the built-in `throughput` scenario run for
//! every committee size × offered load × seed, one `sweep.csv` row per run,
//! and per size a curve of commit latency (p50 and p99) against committed
//! transactions per second with its saturation point marked.
//!
//! A [`Plan`] is the grid and the fixed settings; [`Plan::spec`] turns it
//! into an ordinary [`SweepSpec`] (fields `consensus.total_tx_per_second`
//! then `nodes.count`, so any sweep tool reads its rows);
//! [`Plan::estimate`] and [`Plan::check`] refuse, before anything runs, a
//! grid this machine cannot simulate, saying why. [`curve::curves`] folds
//! the rows into one [`curve::Curve`] per size and finds its saturation
//! point ([`curve::saturation`]); [`figure::write_svg`] draws them.
//!
//! ```
//! use idlegrid_sim::throughput::Plan;
//! let plan = Plan {
//!     sizes: vec![4],
//!     loads: vec![200.0, 400.0],
//!     seeds: 1..2,
//!     duration_ms: 3_000,
//!     warmup_ms: 1_000,
//!     preset: "datacenter".into(),
//!     tx_bytes: 512,
//! };
//! plan.check(1, u64::MAX).unwrap();
//! let spec = plan.spec().unwrap();
//! assert_eq!(spec.runs().len(), 2);
//! let variants = idlegrid_sim::sweep::variants(&spec).unwrap();
//! assert_eq!(variants[1].nodes.count, 4);
//! // Every validator handles every transaction: the larger run is
//! // 4 validators × 400 tx/s × 3 s = 4 800 deliveries, both 7 200.
//! let e = plan.estimate();
//! assert_eq!((e.largest_run, e.tx_deliveries), (4_800.0, 7_200.0));
//! ```

pub mod curve;
pub mod figure;

use std::ops::Range;

use thiserror::Error;

use crate::scenario::{Scenario, ScenarioError, TX_DELIVERIES_PER_CPU_SECOND};
use crate::sweep::{self, Param, PlotOptions, SweepError, SweepSpec};

/// The metrics of a throughput sweep, in `sweep.csv`'s column order.
pub const METRICS: [&str; 11] = [
    "consensus.load.offered_tx_per_second",
    "consensus.load.committed_tx_per_second",
    "consensus.commit_latency_ms.p50",
    "consensus.commit_latency_ms.p99",
    "consensus.load.commit_latency_quorum_delays.p50",
    "consensus.load.commit_latency_quorum_delays.p99",
    "consensus.load.ideal_commit_latency_ms",
    "consensus.load.p50_over_ideal",
    "consensus.load.breakdown.inclusion_wait_ms.p50",
    "consensus.load.breakdown.leader_commit_latency_ms.p50",
    "consensus.load.breakdown.block_commit_latency_ms.p50",
];

/// Block messages the simulator delivers per second of one core's time
/// (fair network model, CPU model, consensus), measured with
/// `idlegrid-sim throughput --sizes 50 --loads 2000 --duration-ms 2000
/// --warmup-ms 500 --preset datacenter`: about 2.7e6 (as
/// [`Plan::estimate`] counts them) in 68 s of user time.
pub const BLOCK_DELIVERIES_PER_CPU_SECOND: f64 = 4.0e4;

/// The most one run may cost, estimated, in seconds of one core.
pub const MAX_RUN_CPU_SECONDS: f64 = 3_600.0;

/// The `throughput` scenario's `consensus.cpu_us_per_block_verify`: a
/// round of `n` blocks takes at least `n` times this.
const BLOCK_VERIFY_US: f64 = 36.0;

/// Memory a run holds per transaction byte it is offered, at worst (the
/// transaction itself, once, shared by every validator's copy of its
/// block, plus the queue entries and blocks around it).
const MEMORY_PER_OFFERED_BYTE: f64 = 3.0;

/// The grid and fixed settings of a throughput sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Committee sizes (`nodes.count`).
    pub sizes: Vec<usize>,
    /// Offered loads of the whole committee, tx/s
    /// (`consensus.total_tx_per_second`), rising.
    pub loads: Vec<f64>,
    /// Seeds, end exclusive.
    pub seeds: Range<u64>,
    /// Virtual time of each run.
    pub duration_ms: u64,
    /// Commits before this are left out of the figures.
    pub warmup_ms: u64,
    /// `network.preset`: `"world6"` or `"datacenter"`.
    pub preset: String,
    /// `consensus.tx_bytes`.
    pub tx_bytes: usize,
}

/// What a plan will cost, from its grid alone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Runs.
    pub runs: usize,
    /// Transaction deliveries of all runs together.
    pub tx_deliveries: f64,
    /// Transaction deliveries of the largest run.
    pub largest_run: f64,
    /// Peak memory of the largest run, bytes (at worst).
    pub run_memory_bytes: f64,
    /// Time of one core for all runs, at [`TX_DELIVERIES_PER_CPU_SECOND`]
    /// and [`BLOCK_DELIVERIES_PER_CPU_SECOND`].
    pub cpu_seconds: f64,
    /// The costliest run's share of it, and its size and load.
    pub costliest_run: (f64, usize, f64),
}

/// Why a throughput sweep cannot run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ThroughputError {
    /// A bad grid or setting.
    #[error("{0}")]
    Plan(String),
    /// More memory than the machine has.
    #[error(
        "the largest run ({size} validators at {load} tx/s for {seconds} s, {tx_bytes}-byte transactions) may hold {need_gib:.1} GiB, and {jobs} in parallel {total_gib:.1} GiB, more than the {have_gib:.1} GiB available; lower the load, duration or --jobs"
    )]
    Memory {
        /// Committee size of the largest run.
        size: usize,
        /// Its offered load.
        load: f64,
        /// Its duration.
        seconds: f64,
        /// Transaction size.
        tx_bytes: usize,
        /// Its memory.
        need_gib: f64,
        /// Times the parallel runs.
        total_gib: f64,
        /// Parallel runs.
        jobs: usize,
        /// Memory available.
        have_gib: f64,
    },
    /// A run the scenario refuses (its load bound).
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The sweep around it.
    #[error(transparent)]
    Sweep(#[from] SweepError),
}

impl Plan {
    /// The sweep of this plan over the built-in `throughput` scenario.
    pub fn spec(&self) -> Result<SweepSpec, ThroughputError> {
        self.check_grid()?;
        let base = crate::scenario::builtin("throughput").expect("built in");
        let mut doc: toml::Value =
            toml::from_str(base).map_err(|e| ScenarioError::Parse(e.to_string()))?;
        for (path, raw) in [
            ("duration_ms", self.duration_ms.to_string()),
            ("consensus.warmup_ms", self.warmup_ms.to_string()),
            ("network.preset", format!("\"{}\"", self.preset)),
            ("consensus.tx_bytes", self.tx_bytes.to_string()),
        ] {
            sweep::set_param(&mut doc, path, &raw)?;
        }
        let text = toml::to_string(&doc).map_err(|e| ScenarioError::Parse(e.to_string()))?;
        Scenario::parse(&text)?;
        Ok(SweepSpec {
            scenario_name: "throughput".into(),
            scenario_text: text,
            params: vec![
                Param {
                    path: "consensus.total_tx_per_second".into(),
                    values: self.loads.iter().map(|l| format!("{l:?}")).collect(),
                },
                Param {
                    path: "nodes.count".into(),
                    values: self.sizes.iter().map(|s| s.to_string()).collect(),
                },
            ],
            seeds: self.seeds.clone(),
            metrics: METRICS.iter().map(|m| m.to_string()).collect(),
            plot: PlotOptions::default(),
            series: false,
        })
    }

    /// The cost of the whole grid.
    pub fn estimate(&self) -> Estimate {
        let seconds = self.duration_ms as f64 / 1e3;
        let seeds = (self.seeds.end - self.seeds.start) as f64;
        let per_run = |n: usize, load: f64| n as f64 * load * seconds;
        let total: f64 = self
            .sizes
            .iter()
            .flat_map(|&n| self.loads.iter().map(move |&l| per_run(n, l)))
            .sum::<f64>()
            * seeds;
        let mut costliest = (0.0, 0, 0.0);
        let mut cpu = 0.0;
        for &n in &self.sizes {
            let blocks = self.block_deliveries(n, seconds) / BLOCK_DELIVERIES_PER_CPU_SECOND;
            for &l in &self.loads {
                let run = per_run(n, l) / TX_DELIVERIES_PER_CPU_SECOND + blocks;
                cpu += run * seeds;
                if run > costliest.0 {
                    costliest = (run, n, l);
                }
            }
        }
        let (n, load) = self.largest();
        Estimate {
            runs: self.sizes.len() * self.loads.len() * seeds as usize,
            tx_deliveries: total,
            largest_run: per_run(n, load),
            run_memory_bytes: load * seconds * self.tx_bytes as f64 * MEMORY_PER_OFFERED_BYTE,
            cpu_seconds: cpu,
            costliest_run: costliest,
        }
    }

    /// Block messages a run of `n` validators delivers, at most: every
    /// validator's block of every round to each other validator, a round
    /// lasting at least one ideal quorum hop (on up to 120 of the nodes:
    /// the placement repeats) and the CPU time to verify `n` blocks.
    fn block_deliveries(&self, n: usize, seconds: f64) -> f64 {
        let regions = match self.preset.as_str() {
            "datacenter" => crate::Regions::datacenter(),
            _ => crate::Regions::world6(),
        };
        let at: Vec<crate::RegionId> = (0..n.min(120))
            .map(|i| crate::RegionId::new((i % regions.len()) as u16))
            .collect();
        let ideal = crate::network::quorum::ideal_commit_latency(&regions, &at, 0.0);
        let round_us = (ideal.as_micros() as f64 / 3.0)
            .max(n as f64 * BLOCK_VERIFY_US)
            .max(1.0);
        (n * n.saturating_sub(1)) as f64 * seconds * 1e6 / round_us
    }

    /// Refuses, before any run, a plan whose grid is malformed, one of
    /// whose runs the scenario refuses (its bound on transaction
    /// deliveries) or would take more than [`MAX_RUN_CPU_SECONDS`], or
    /// whose `jobs` parallel largest runs need more than `memory_bytes`.
    pub fn check(&self, jobs: usize, memory_bytes: u64) -> Result<(), ThroughputError> {
        sweep::variants(&self.spec()?)?;
        let (n, load) = self.largest();
        let e = self.estimate();
        let jobs = jobs.clamp(1, e.runs.max(1));
        let (cpu, size, at) = e.costliest_run;
        if cpu > MAX_RUN_CPU_SECONDS {
            return Err(ThroughputError::Plan(format!(
                "the run of {size} validators at {at} tx/s for {} s would take about {:.0} min of one core ({:.1e} transaction and {:.1e} block deliveries), more than the {:.0} min one run may; lower the load, the committee or --duration-ms",
                self.duration_ms as f64 / 1e3,
                cpu / 60.0,
                size as f64 * at * self.duration_ms as f64 / 1e3,
                self.block_deliveries(size, self.duration_ms as f64 / 1e3),
                MAX_RUN_CPU_SECONDS / 60.0
            )));
        }
        let gib = |b: f64| b / f64::from(1u32 << 30);
        if e.run_memory_bytes * jobs as f64 > memory_bytes as f64 {
            return Err(ThroughputError::Memory {
                size: n,
                load,
                seconds: self.duration_ms as f64 / 1e3,
                tx_bytes: self.tx_bytes,
                need_gib: gib(e.run_memory_bytes),
                total_gib: gib(e.run_memory_bytes * jobs as f64),
                jobs,
                have_gib: gib(memory_bytes as f64),
            });
        }
        Ok(())
    }

    /// The grid's largest committee and load.
    fn largest(&self) -> (usize, f64) {
        let n = self.sizes.iter().copied().max().unwrap_or(0);
        let load = self.loads.iter().copied().fold(0.0, f64::max);
        (n, load)
    }

    fn check_grid(&self) -> Result<(), ThroughputError> {
        let bad = |m: String| Err(ThroughputError::Plan(m));
        if self.sizes.is_empty() || self.loads.is_empty() {
            return bad("give at least one committee size and one load".into());
        }
        if let Some(n) = self
            .sizes
            .iter()
            .find(|&&n| !(4..=crate::MAX_NODES).contains(&n))
        {
            return bad(format!(
                "committee size {n}: must be in 4..={} (a BFT committee of 3f + 1 with f ≥ 1)",
                crate::MAX_NODES
            ));
        }
        if let Some(l) = self.loads.iter().find(|l| !(l.is_finite() && **l > 0.0)) {
            return bad(format!("load {l}: must be a positive number of tx/s"));
        }
        if !self.loads.windows(2).all(|w| w[0] < w[1]) {
            return bad("loads must rise: give them in increasing order, each once".into());
        }
        if self.seeds.is_empty() {
            return bad("no seeds: give --seeds START..END with START < END".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            sizes: vec![10, 100],
            loads: vec![1_000.0, 50_000.0],
            seeds: 1..3,
            duration_ms: 6_000,
            warmup_ms: 2_000,
            preset: "world6".into(),
            tx_bytes: 512,
        }
    }

    #[test]
    fn the_estimate_counts_every_run() {
        let e = plan().estimate();
        assert_eq!(e.runs, 8);
        // (10 + 100) × (1 000 + 50 000) × 6 s × 2 seeds.
        assert_eq!(e.tx_deliveries, 110.0 * 51_000.0 * 6.0 * 2.0);
        assert_eq!(e.largest_run, 100.0 * 50_000.0 * 6.0);
        assert_eq!(e.run_memory_bytes, 50_000.0 * 6.0 * 512.0 * 3.0);
        plan().check(2, 4 << 30).unwrap();
    }

    #[test]
    fn what_cannot_run_is_refused_with_the_reason() {
        // Memory: two parallel runs of 461 MB do not fit in 512 MiB.
        let e = plan().check(2, 512 << 20).unwrap_err().to_string();
        assert!(
            e.contains("100 validators at 50000 tx/s") && e.contains("--jobs"),
            "{e}"
        );
        // A run past the scenario's bound on transaction deliveries.
        let mut p = plan();
        p.loads = vec![1e7];
        p.duration_ms = 60_000;
        let e = p.check(1, u64::MAX).unwrap_err().to_string();
        assert!(e.contains("transaction deliveries"), "{e}");
        // Block messages: 100 validators in one datacenter, a round every
        // 3.6 ms of block verification, for a minute.
        let mut p = plan();
        p.preset = "datacenter".into();
        p.loads = vec![1_000.0];
        p.duration_ms = 60_000;
        let e = p.check(1, u64::MAX).unwrap_err().to_string();
        assert!(
            e.contains("100 validators at 1000 tx/s") && e.contains("block"),
            "{e}"
        );
        p.sizes = vec![10];
        p.check(1, u64::MAX).unwrap();
        let bad = |f: fn(&mut Plan), want: &str| {
            let mut p = plan();
            f(&mut p);
            let e = p.check(1, u64::MAX).unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
        };
        bad(|p| p.sizes = vec![3], "committee size 3");
        bad(|p| p.loads = vec![5.0, 2.0], "must rise");
        bad(|p| p.loads = vec![f64::NAN], "positive");
        bad(|p| p.sizes.clear(), "at least one");
        bad(|p| p.preset = "mars".into(), "mars");
        bad(|p| p.warmup_ms = 7_000, "warmup_ms");
    }
}
