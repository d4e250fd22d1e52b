//! Runs scenarios: builds the simulation for the scenario's machine, drives
//! it with an optional progress bar, and checks determinism by running twice.

use std::time::Instant;

use idlegrid_primitives::Duration;
use thiserror::Error;

use crate::consensus::{ConsensusObserver, ValidatorNode};
use crate::demo::{Gossip, GossipObserver};
use crate::engine::{Checkpoint, RunReport, SimError, Simulation};
use crate::marketplace::{MarketplaceError, run_marketplace};
use crate::metrics::Metrics;
use crate::network::quorum;
use crate::report::{Summary, series_csv};
use crate::scenario::{FITTED_MEMORY_MODEL, MachineKind, Scenario, ScenarioError, TooLarge};

/// Why a scenario run failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RunError {
    /// The scenario is invalid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The simulation stopped on an error or a broken invariant.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// The marketplace run failed (configuration or invariant).
    #[error(transparent)]
    Marketplace(#[from] MarketplaceError),
    /// The scenario would not fit in the memory available (see
    /// [`check_memory`]).
    #[error(transparent)]
    Memory(#[from] Box<TooLarge>),
}

/// Refuses `scenario` before it runs if the fitted memory model
/// ([`FITTED_MEMORY_MODEL`]) estimates a peak above `available` bytes, for
/// a run with validators sharing identical state or not
/// ([`RunOptions::no_sharing`]); returns the estimate otherwise (`None` for
/// a machine the model does not cover), with `at_once` runs of it at the
/// same time sharing `available` ([`check_determinism`]'s two, a sweep's
/// jobs). `available` comes from [`available_memory`] in the command line.
pub fn check_memory(
    scenario: &Scenario,
    available: u64,
    sharing: bool,
    at_once: u64,
) -> Result<Option<u64>, RunError> {
    Ok(scenario.check_memory_at_once(&FITTED_MEMORY_MODEL, available, sharing, at_once)?)
}

/// The memory this process may still use, in bytes: `MemAvailable` from
/// `/proc/meminfo`, lowered to the cgroup's headroom (`memory.max` minus
/// `memory.current`) when the process runs under a cgroup v2 limit.
/// `None` where neither can be read (not Linux).
pub fn available_memory() -> Option<u64> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let meminfo = read("/proc/meminfo").and_then(|t| parse_meminfo(&t));
    let cgroup = match (
        read("/sys/fs/cgroup/memory.max"),
        read("/sys/fs/cgroup/memory.current"),
    ) {
        (Some(max), Some(current)) => cgroup_headroom(&max, &current),
        _ => None,
    };
    match (meminfo, cgroup) {
        (Some(m), Some(c)) => Some(m.min(c)),
        (m, c) => m.or(c),
    }
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
pub fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let mut words = line.split_whitespace().skip(1);
    let kib: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => kib.checked_mul(1024),
        _ => None,
    }
}

/// A cgroup v2 limit's headroom in bytes (`None` without a limit: `max`).
pub fn cgroup_headroom(max: &str, current: &str) -> Option<u64> {
    let max: u64 = max.trim().parse().ok()?;
    let current: u64 = current.trim().parse().ok()?;
    Some(max.saturating_sub(current))
}

/// How to run a scenario.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    /// The scenario file, for the replay command (`None` = embedded default).
    pub scenario_path: Option<String>,
    /// Show a progress bar on runs longer than about a second.
    pub progress: bool,
    /// Check mode: validators do not share identical replicated state
    /// (see `MarketplaceConfig::share_state`); the run digest must not
    /// change.
    pub no_sharing: bool,
    /// Check mode for marketplace runs: no worker thread — validators'
    /// audits inline (see `MarketplaceConfig::background_audits`); the run
    /// digest and outcome must not change.
    pub no_workers: bool,
    /// Threads for the engine's windows of events in marketplace runs (at
    /// most 1: one event at a time; see [`auto_threads`]); the run digest
    /// and outcome are the same for any count.
    pub threads: usize,
}

/// The engine threads a run of `scenario` uses when not told: two for a
/// marketplace on a machine with two cores or more, else one (the
/// simulator's other machines run one event at a time). Either way the
/// run is the same. Measured on two cores (README, "Then two threads"):
/// every built-in marketplace scenario runs faster on two, from 8 % for
/// `demand`'s 10 nodes to 20 % for the default's 354 and 25 % for
/// `large`'s 11 100; more threads than two are not measured yet.
pub fn auto_threads(scenario: &Scenario) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    match scenario.marketplace.is_some() && cores >= 2 {
        true => 2,
        false => 1,
    }
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The summary (`summary.json`).
    pub summary: Summary,
    /// The per-second CSV.
    pub csv: String,
    /// The engine's report.
    pub report: RunReport,
    /// Per-second series for plots.
    pub plot_series: Vec<(String, Vec<u64>)>,
    /// Per-second marketplace series (marketplace scenarios only).
    pub market_series: Option<crate::marketplace::MarketSeries>,
}

/// The command that replays a run.
pub fn replay_command(path: Option<&str>, seed: u64) -> String {
    match path {
        Some(p) => format!("idlegrid-sim run {p} --seed {seed}"),
        None => format!("idlegrid-sim run --seed {seed}"),
    }
}

#[allow(clippy::disallowed_methods)] // wall time for reporting only
fn wall_now() -> Instant {
    Instant::now()
}

fn attach_progress<M, O>(sim: &mut Simulation<M, O>) -> indicatif::ProgressBar
where
    M: idlegrid_primitives::Machine,
    M::Message: Clone + serde::Serialize,
    O: crate::Observer<M::Event>,
{
    let started = wall_now();
    let bar = indicatif::ProgressBar::hidden();
    let handle = bar.clone();
    let mut shown = false;
    let max_ms = sim.config().max_time.as_millis();
    sim.set_progress(move |p| {
        if !shown && started.elapsed() > std::time::Duration::from_millis(1_000) {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_length(max_ms);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} virtual ms {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            shown = true;
        }
        bar.set_position(p.now.as_millis());
        bar.set_message(format!("{} events", p.events));
    });
    handle
}

fn drive<M, O>(
    mut sim: Simulation<M, O>,
    progress: bool,
) -> Result<(RunReport, Option<Metrics>, f64), SimError>
where
    M: idlegrid_primitives::Machine,
    M::Message: Clone + serde::Serialize,
    O: crate::Observer<M::Event>,
{
    let bar = progress.then(|| attach_progress(&mut sim));
    let start = wall_now();
    let result = sim.run();
    let wall = start.elapsed().as_secs_f64();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = result?;
    Ok((report, sim.observer().metrics().cloned(), wall))
}

/// Runs a scenario once.
pub fn run(scenario: &Scenario, opts: &RunOptions) -> Result<RunOutput, RunError> {
    let seed = opts.seed.unwrap_or(scenario.seed);
    let replay = replay_command(opts.scenario_path.as_deref(), seed);
    let config = scenario.sim_config(seed, replay.clone());
    if scenario.machine == MachineKind::Marketplace {
        return run_market(scenario, seed, replay, opts);
    }
    let network = scenario.network_config()?;
    let nodes = scenario.node_specs()?;
    let n = nodes.len();
    let mut crash_disks: Option<crate::durable::Disks> = None;
    let (report, metrics, wall, machine) = match scenario.machine {
        MachineKind::Gossip => {
            let gossip = scenario.gossip_config();
            let observer = GossipObserver::new(
                scenario
                    .invariants
                    .max_propagation_ms
                    .map(Duration::from_millis),
            );
            let mut sim = Simulation::new(
                config,
                network,
                nodes,
                move |ctx| Gossip::new(ctx, gossip.clone()),
                observer,
            )?;
            sim.set_size_of_message(Gossip::wire_size);
            for (at, f) in scenario.fault_schedule() {
                sim.schedule(at, f)?;
            }
            let (r, m, w) = drive(sim, opts.progress)?;
            (r, m, w, MachineKind::Gossip)
        }
        MachineKind::Consensus => {
            let params = scenario.consensus_params();
            crash_disks = params
                .store
                .as_ref()
                .map(|s| std::sync::Arc::clone(&s.disks));
            let observer = ConsensusObserver::new(n, &params.behaviors, params.liveness_bound)
                .with_warmup(Duration::from_millis(scenario.consensus.warmup_ms))
                .with_hops(mean_delays(scenario)?);
            let cpu = params.cpu;
            let mut sim = Simulation::new(
                config,
                network,
                nodes,
                move |ctx| ValidatorNode::new(ctx, &params),
                observer,
            )?;
            sim.set_size_of_message(crate::consensus::wire_size);
            sim.set_message_fingerprint(crate::consensus::fingerprint);
            if !cpu.is_free() {
                sim.set_cpu_cost(move |m| cpu.of(m));
            }
            for (at, f) in scenario.fault_schedule() {
                sim.schedule(at, f)?;
            }
            let (r, m, w) = drive(sim, opts.progress)?;
            (r, m, w, MachineKind::Consensus)
        }
        MachineKind::Crashes => {
            let params = scenario.crashes_params();
            let observer = crate::crashes::CrashesObserver::new(n, &params);
            let disks = crate::durable::new_disks(n);
            crash_disks = Some(std::sync::Arc::clone(&disks));
            let mut sim = Simulation::new(
                config,
                network,
                nodes,
                move |ctx| crate::crashes::DurableValidator::new(ctx, &params, &disks),
                observer,
            )?;
            sim.set_size_of_message(crate::marketplace::run::node_wire_size);
            sim.set_message_fingerprint(crate::marketplace::run::node_fingerprint);
            for (at, f) in scenario.fault_schedule() {
                sim.schedule(at, f)?;
            }
            let (r, m, w) = drive(sim, opts.progress)?;
            (r, m, w, MachineKind::Crashes)
        }
        MachineKind::Marketplace => unreachable!("dispatched above"),
    };
    let mut summary = Summary::new(&scenario.name, machine.name(), n, &report, wall, replay);
    if let Some(m) = &metrics {
        summary = match machine {
            MachineKind::Gossip => summary.with_gossip(m),
            MachineKind::Consensus => {
                let byzantine = scenario
                    .behaviors()
                    .iter()
                    .filter(|b| b.is_byzantine())
                    .count();
                let mut s = summary.with_consensus(m, byzantine);
                if let Some(c) = s.consensus.as_mut() {
                    c.load = Some(load_summary(scenario, m, c.commit_latency_ms, &report)?);
                }
                s.storage = crash_disks.as_ref().map(|d| crate::durable::total_stats(d));
                s
            }
            MachineKind::Crashes => {
                let disks = crash_disks.as_deref().unwrap_or(&[]);
                crate::crashes::summarize(summary, m, disks)
            }
            MachineKind::Marketplace => summary,
        };
    }
    let csv = series_csv(&report, metrics.as_ref());
    let plot_series = crate::plot::series(&report, metrics.as_ref());
    Ok(RunOutput {
        summary,
        csv,
        report,
        plot_series,
        market_series: None,
    })
}

/// The mean one-way delays between the scenario's nodes (µs, row-major).
fn mean_delays(scenario: &Scenario) -> Result<Vec<f64>, ScenarioError> {
    let placement: Vec<_> = scenario.node_specs()?.iter().map(|s| s.region).collect();
    Ok(crate::network::quorum::mean_delays(
        &scenario.regions()?,
        &placement,
        scenario.network.jitter,
    ))
}

/// Offered and steady committed load and latency in quorum delays.
fn load_summary(
    scenario: &Scenario,
    m: &Metrics,
    latency_ms: crate::report::Quantiles,
    report: &RunReport,
) -> Result<crate::report::LoadSummary, ScenarioError> {
    let honest = scenario
        .behaviors()
        .iter()
        .filter(|b| !b.is_byzantine())
        .count();
    let offered = honest as f64 * scenario.tx_per_validator();
    let warmup_s = scenario.consensus.warmup_ms as f64 / 1e3;
    let steady_s = (report.virtual_time.as_micros() as f64 / 1e6 - warmup_s).max(1e-9);
    let committed = m.counter("steady_committed_transactions") as f64 / steady_s;
    let placement: Vec<_> = scenario.node_specs()?.iter().map(|s| s.region).collect();
    let (regions, jitter) = (scenario.regions()?, scenario.network.jitter);
    let ms = |d: Duration| d.as_micros() as f64 / 1e3;
    let ideal_ms = ms(quorum::ideal_commit_latency(&regions, &placement, jitter));
    let clock_ms = ms(quorum::threshold_clock_commit_latency(
        &regions, &placement, jitter,
    ));
    let breakdown = crate::report::LatencyBreakdown::new(m, ideal_ms, clock_ms);
    Ok(
        crate::report::LoadSummary::new(offered, committed, ideal_ms, latency_ms)
            .with_breakdown(breakdown),
    )
}

/// Runs a marketplace scenario: the engine keys of `summary.json` plus the
/// marketplace sections (`ledger`, `market`, `jobs`, `entrap`,
/// `economics`, `reputation`).
fn run_market(
    scenario: &Scenario,
    seed: u64,
    replay: String,
    opts: &RunOptions,
) -> Result<RunOutput, RunError> {
    let cfg = crate::marketplace::MarketplaceConfig {
        share_state: !opts.no_sharing,
        background_audits: !opts.no_workers,
        engine_threads: opts.threads,
        ..scenario.marketplace_config(seed, replay.clone())?
    };
    let start = wall_now();
    let r = run_marketplace(&cfg)?;
    let wall = start.elapsed().as_secs_f64();
    let summary = Summary::new(
        &scenario.name,
        MachineKind::Marketplace.name(),
        cfg.validators as usize,
        &r.report,
        wall,
        replay,
    )
    .with_consensus(&r.consensus_metrics, r.byzantine)
    .with_marketplace(&r);
    let csv = series_csv(&r.report, None);
    let plot_series = crate::plot::series(&r.report, None);
    Ok(RunOutput {
        summary,
        csv,
        report: r.report,
        plot_series,
        market_series: Some(r.series),
    })
}

/// The outcome of running a scenario twice with one seed.
#[derive(Debug, Clone)]
pub struct DeterminismReport {
    /// Digest of the first run.
    pub first: RunReport,
    /// Digest of the second run.
    pub second: RunReport,
}

impl DeterminismReport {
    /// Whether both runs produced the same digest and event count.
    pub fn is_deterministic(&self) -> bool {
        self.first.digest == self.second.digest && self.first.events == self.second.events
    }

    /// Where the runs diverge: the last checkpoint they agree on and the
    /// first they do not.
    pub fn divergence(&self) -> Option<(Option<Checkpoint>, Option<Checkpoint>)> {
        if self.is_deterministic() {
            return None;
        }
        let a = &self.first.checkpoints;
        let b = &self.second.checkpoints;
        let k = a.iter().zip(b).take_while(|(x, y)| x == y).count();
        Some((k.checked_sub(1).map(|i| a[i]), a.get(k).copied()))
    }

    /// A one-paragraph verdict.
    pub fn describe(&self) -> String {
        match self.divergence() {
            None => format!(
                "deterministic: both runs processed {} events, digest {}",
                self.first.events, self.first.digest
            ),
            Some((agree, differ)) => {
                let mut s = format!(
                    "NOT deterministic:\n  run 1: {} events, digest {}\n  run 2: {} events, digest {}\n",
                    self.first.events, self.first.digest, self.second.events, self.second.digest
                );
                match agree {
                    Some(c) => s += &format!("  identical up to event {} ({})\n", c.events, c.at),
                    None => s += "  the runs differ within the first checkpoint window\n",
                }
                if let Some(c) = differ {
                    s += &format!(
                        "  first differing checkpoint: event {} ({})\n",
                        c.events, c.at
                    );
                }
                s
            }
        }
    }
}

/// Runs a scenario twice with the same seed (on two threads) and compares
/// the digests. The first run runs validators' audits on a worker thread,
/// the second inline (`RunOptions::no_workers`): however the threads
/// interleave, the digests must agree.
pub fn check_determinism(
    scenario: &Scenario,
    seed: Option<u64>,
) -> Result<DeterminismReport, RunError> {
    let opts = RunOptions {
        seed,
        scenario_path: None,
        progress: false,
        no_sharing: false,
        no_workers: false,
        threads: 2,
    };
    let plain = RunOptions {
        no_workers: true,
        threads: 1,
        ..opts.clone()
    };
    let (first, second) = std::thread::scope(|scope| {
        let a = scope.spawn(|| run(scenario, &opts).map(|o| o.report));
        let b = scope.spawn(|| run(scenario, &plain).map(|o| o.report));
        (join(a), join(b))
    });
    Ok(DeterminismReport {
        first: first?,
        second: second?,
    })
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    match h.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// One seed of a sweep.
#[derive(Debug)]
pub struct SweepResult {
    /// The seed.
    pub seed: u64,
    /// Its outcome.
    pub outcome: Result<Summary, RunError>,
}

/// Runs `scenario` once per seed in `seeds`, on up to `jobs` threads; results
/// are in seed order. A failing seed does not stop the others.
pub fn sweep(
    scenario: &Scenario,
    scenario_path: Option<&str>,
    seeds: std::ops::Range<u64>,
    jobs: usize,
) -> Vec<SweepResult> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    let next = AtomicU64::new(seeds.start);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, 64) {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds.end {
                        break;
                    }
                    let opts = RunOptions {
                        seed: Some(seed),
                        scenario_path: scenario_path.map(str::to_string),
                        progress: false,
                        no_sharing: false,
                        // Parallel runs keep the cores busy already.
                        no_workers: jobs > 1,
                        threads: if jobs > 1 { 1 } else { 2 },
                    };
                    let outcome = run(scenario, &opts).map(|o| o.summary);
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(SweepResult { seed, outcome });
                }
            });
        }
    });
    let mut out = results.into_inner().unwrap_or_else(|e| e.into_inner());
    out.sort_by_key(|r| r.seed);
    out
}

#[cfg(test)]
mod memory_tests {
    use super::*;

    #[test]
    fn meminfo_gives_mem_available_in_bytes() {
        let text = "MemTotal:       24684612 kB\nMemFree:        16510016 kB\n\
                    MemAvailable:   23133204 kB\nBuffers:          123 kB\n";
        assert_eq!(parse_meminfo(text), Some(23_133_204 * 1024));
        assert_eq!(parse_meminfo("MemTotal: 1 kB\n"), None);
        assert_eq!(parse_meminfo("MemAvailable: 12 MB\n"), None);
        assert_eq!(parse_meminfo("MemAvailable: lots kB\n"), None);
    }

    #[test]
    fn cgroup_headroom_is_limit_minus_usage() {
        assert_eq!(cgroup_headroom("max\n", "1000\n"), None);
        assert_eq!(cgroup_headroom("4096\n", "1000\n"), Some(3096));
        assert_eq!(cgroup_headroom("1000\n", "4096\n"), Some(0));
    }

    #[test]
    fn a_scenario_that_does_not_fit_is_refused_before_it_runs() {
        let large = Scenario::named_or_file("large").expect("built in");
        let err =
            check_memory(&large, 800 << 20, true, 1).expect_err("large needs more than 800 MiB");
        assert!(matches!(err, RunError::Memory(_)));
        assert!(
            err.to_string().contains("--ignore-memory-estimate"),
            "{err}"
        );
        let default = Scenario::default_scenario();
        assert!(check_memory(&default, 1 << 30, true, 1).is_ok_and(|e| e.is_some()));
        // check-determinism runs it twice at once.
        let one = check_memory(&default, u64::MAX, true, 1).unwrap().unwrap();
        assert!(check_memory(&default, 2 * one - 1, true, 2).is_err());
        assert!(check_memory(&default, 2 * one, true, 2).is_ok());
    }
}
