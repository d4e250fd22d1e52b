//! The `idlegrid bench` command: refuses what the machine cannot run,
//! says which WAN emulation it uses, runs every load (stopping everything
//! on SIGINT/SIGTERM), prints the table and, with `--compare-sim`, the
//! simulator's figures beside the real ones.

use std::path::Path;

use tokio::sync::watch;

use super::compare::{self, SimFigures, SimRun};
use super::{BenchOptions, Latency, MachineInfo, RunReport, check, netem_available};
use crate::CliError;

/// Everything a bench command measured (its `--json` file).
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchResults {
    /// What emulated the WAN, and why.
    pub emulation: String,
    /// Bytes of one signed transfer.
    pub tx_bytes: usize,
    /// The real runs, by load.
    pub runs: Vec<RunReport>,
    /// The simulator's figures for the same runs (with `--compare-sim`).
    pub sim: Vec<SimFigures>,
}

/// Why this emulation: netem is what the issue asks for where the kernel
/// has it; the relay is what runs everywhere.
fn emulation_note(latency: &Latency) -> String {
    let netem = if netem_available() {
        "kernel netem is present but not used (the relay needs no root and no namespaces)"
    } else {
        "kernel netem unavailable (no sch_netem module)"
    };
    match latency {
        Latency::None => "none: validators talk over plain loopback".into(),
        Latency::Relay(_) => format!("{}; {netem}", latency.describe()),
    }
}

/// A flag that turns true when SIGINT or SIGTERM arrives (the handlers
/// are in place when this returns).
fn watch_signals() -> Result<watch::Receiver<bool>, CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let handler =
        |kind| signal(kind).map_err(|e| CliError::Invalid(format!("signal handler: {e}")));
    let (mut term, mut int) = (
        handler(SignalKind::terminate())?,
        handler(SignalKind::interrupt())?,
    );
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        eprintln!("bench: interrupted, stopping the validators");
        let _ = tx.send(true);
        // Keep the sender so receivers see the flag, not a closed channel.
        std::future::pending::<()>().await;
    });
    Ok(rx)
}

/// Refuses a comparison whose two sides would not run the same consensus
/// parameters: the simulator's validators propose as soon as a round is
/// ready, so the real ones must too.
pub fn check_compare(opts: &BenchOptions, compare: bool) -> Result<(), CliError> {
    if compare && opts.min_round_delay_ms > 0 {
        return Err(CliError::Invalid(format!(
            "refused: --compare-sim with --min-round-delay-ms {}: the simulator's validators have no least round delay, so the real ones must not either (0, the default with --compare-sim)",
            opts.min_round_delay_ms
        )));
    }
    Ok(())
}

/// Runs the bench of `opts` (and the simulator `sim`, if given).
pub async fn execute(
    opts: &BenchOptions,
    exe: &Path,
    sim: Option<&Path>,
) -> Result<BenchResults, CliError> {
    check(opts, MachineInfo::probe())?;
    check_compare(opts, sim.is_some())?;
    let emulation = emulation_note(&opts.latency);
    println!("emulation: {emulation}");
    println!("store: {}", opts.describe_store());
    println!("{}", RunReport::header());
    let cancel = watch_signals()?;
    let runs = super::run(opts, exe, cancel, |r| println!("{}", r.row())).await?;
    let tx_bytes = super::transfer_bytes();
    let mut results = BenchResults {
        emulation,
        tx_bytes,
        runs,
        sim: Vec::new(),
    };
    if let Some(sim) = sim {
        results.sim = simulate(opts, sim, tx_bytes)?;
        print_comparison(&results);
    }
    Ok(results)
}

/// The simulator's run for each load.
fn simulate(opts: &BenchOptions, sim: &Path, tx_bytes: usize) -> Result<Vec<SimFigures>, CliError> {
    let work = std::env::temp_dir().join(format!("idlegrid-bench-sim-{}", std::process::id()));
    // The real validators' consensus parameters, as the network file
    // `start` writes gives them (min round delay 0: checked above).
    let real = crate::config::ConsensusSettings {
        min_round_delay_ms: opts.min_round_delay_ms,
        ..Default::default()
    }
    .config();
    let out = opts
        .loads
        .iter()
        .enumerate()
        .map(|(k, &load)| {
            let run = SimRun {
                validators: opts.validators,
                load,
                tx_bytes,
                leader_timeout_ms: real.leader_timeout.as_millis(),
                leaders_per_round: real.leaders_per_round,
                // The real run's warm-up plus measured window.
                duration_ms: opts.duration.as_millis() as u64 + 2_000,
                latency: opts.latency.clone(),
            };
            compare::run_sim(sim, &run, &work.join(k.to_string()))
        })
        .collect();
    let _ = std::fs::remove_dir_all(&work);
    out
}

/// Real beside simulated. Like for like is the gateway commit (submission
/// → commit at the submitting validator, as the simulator measures it);
/// the client's f + 1 confirmation is shown beside it.
fn print_comparison(r: &BenchResults) {
    println!();
    println!(
        "{:>3} {:>9} | {:>10} {:>8} {:>8} {:>8} | {:>10} {:>8} {:>8} | {:>8}",
        "n",
        "offered",
        "real tx/s",
        "gw50 ms",
        "gw99 ms",
        "f+1 p50",
        "sim tx/s",
        "p50 ms",
        "p99 ms",
        "gw50/sim"
    );
    for (real, sim) in r.runs.iter().zip(&r.sim) {
        println!(
            "{:>3} {:>9.0} | {:>10.1} {:>8.1} {:>8.1} {:>8.1} | {:>10.1} {:>8.1} {:>8.1} | {:>8.2}",
            real.validators,
            real.offered_tx_per_s,
            real.committed_tx_per_s,
            real.gateway_commit_ms.p50,
            real.gateway_commit_ms.p99,
            real.latency_ms.p50,
            sim.committed_tx_per_s,
            sim.latency_ms_p50,
            sim.latency_ms_p99,
            real.gateway_commit_ms.p50 / sim.latency_ms_p50.max(f64::MIN_POSITIVE)
        );
    }
}
