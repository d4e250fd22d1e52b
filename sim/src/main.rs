//! The `idlegrid-sim` command line: run scenarios, check determinism,
//! measure the engine.
//!
//! With no arguments it runs the embedded default scenario: the whole
//! marketplace.

use std::path::PathBuf;
use std::process::ExitCode;

mod sweep_cmd;
mod throughput_cmd;

use clap::{Parser, Subcommand, ValueEnum};
use idlegrid_sim::marketplace::MarketplaceError;
use idlegrid_sim::report::write_outputs;
use idlegrid_sim::runner::{self, RunError, RunOptions};
use idlegrid_sim::scenario::{BUILTIN_SCENARIOS, DEFAULT_SCENARIO, Scenario, ScenarioError};
use idlegrid_sim::{SimError, bench};

/// A run allocates and frees millions of small messages and map nodes a
/// second; mimalloc's thread-local free lists take a sixth off `large`'s wall
/// time against glibc's malloc (the README's "Then the allocator and the
/// build"). Only this binary: the library and its tests keep the system
/// allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Deterministic discrete-event simulator for idlegrid.
#[derive(Parser)]
#[command(name = "idlegrid-sim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario (the embedded default, the marketplace, when none is given).
    Run(RunArgs),
    /// List the built-in scenarios with their descriptions.
    Scenarios,
    /// Run a scenario twice with the same seed and compare run digests (a
    /// marketplace's first run checks signatures ahead on a worker thread,
    /// its second does not).
    CheckDeterminism {
        /// Built-in scenario name or scenario file (TOML); the default when omitted.
        scenario: Option<String>,
        /// Root seed (overrides the scenario's).
        #[arg(long)]
        seed: Option<u64>,
        /// Run even if the memory model estimates more than the machine
        /// has available.
        #[arg(long)]
        ignore_memory_estimate: bool,
    },
    /// Run a scenario for many seeds, optionally over a grid of field values
    /// (here, as one shard, or as a Slurm job array); merge shards.
    Sweep(sweep_cmd::SweepCmd),
    /// Latency against throughput: committee sizes × offered loads × seeds
    /// of the `throughput` scenario; CSV, table and latency–throughput SVG.
    Throughput(throughput_cmd::ThroughputArgs),
    /// Measure the engine: events/s, ratio to raw BinaryHeap, scaling.
    Bench {
        /// Shorter runs (about a tenth).
        #[arg(long)]
        quick: bool,
    },
    /// Print a built-in scenario's TOML (the documented default when omitted).
    Scenario {
        /// Built-in scenario name.
        name: Option<String>,
    },
}

#[derive(clap::Args, Default)]
struct RunArgs {
    /// Built-in scenario name (see `idlegrid-sim scenarios`) or scenario
    /// file (TOML); the embedded default when omitted.
    scenario: Option<String>,
    /// Root seed (overrides the scenario's).
    #[arg(long)]
    seed: Option<u64>,
    /// Directory for summary.json, timeseries.csv and timeseries.svg.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write SVG time series of the marketplace (clearing price,
    /// matches and jobs completed per second, balances of honest vs
    /// cheating providers) as marketplace.svg and marketplace.csv, into
    /// `--out` (default `run-out`).
    #[arg(long)]
    plots: bool,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Never show a progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Run even if the memory model estimates a peak above the memory the
    /// machine has available (the estimate is a fit; see the README's
    /// section on scale).
    #[arg(long)]
    ignore_memory_estimate: bool,
    /// Check mode: every validator computes every committed batch on its
    /// own copy of the replicated state instead of sharing one copy among
    /// validators that hold the very same state. Slower and bigger (the
    /// memory check estimates it so); the run digest must be the same.
    #[arg(long)]
    no_sharing: bool,
    /// Check mode: no worker thread; validators' audits run inline on the
    /// engine's. The run digest must be the same. (`--no-prefetch`, its
    /// name while a second worker also checked signatures ahead, still
    /// works.)
    #[arg(long, alias = "no-prefetch")]
    no_workers: bool,
    /// Threads handling the engine's windows of events (marketplace runs;
    /// 1: one event at a time). The run digest and outcome are the same
    /// for any count. Default: 2 for a marketplace on a machine with two
    /// cores or more, else 1 (README, "Then two threads").
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: Option<u16>,
}

#[derive(Clone, Copy, Default, ValueEnum)]
enum Format {
    /// Human-readable summary.
    #[default]
    Text,
    /// summary.json on stdout.
    Json,
    /// The per-second CSV on stdout.
    Csv,
}

fn load(name_or_path: Option<&String>) -> Result<Scenario, ScenarioError> {
    match name_or_path {
        Some(p) => Scenario::named_or_file(p),
        None => Scenario::parse(DEFAULT_SCENARIO),
    }
}

fn list_scenarios() -> ExitCode {
    for (name, text) in BUILTIN_SCENARIOS {
        match Scenario::parse(text) {
            Ok(s) => println!("{name:<10} {:<12} {}", s.machine.name(), s.description),
            Err(e) => return fail(1, format!("built-in scenario `{name}`: {e}")),
        }
    }
    println!("\nrun one with `idlegrid-sim run <name>` (or a TOML file path)");
    ExitCode::SUCCESS
}

fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(code)
}

/// Refuses a scenario the memory model says will not fit, run with
/// validators `sharing` identical state or not, `at_once` runs of it at the
/// same time (unless told to ignore the estimate or the available memory
/// cannot be read).
pub(crate) fn check_memory(
    scenario: &Scenario,
    ignore: bool,
    sharing: bool,
    at_once: u64,
) -> Result<(), RunError> {
    if ignore {
        return Ok(());
    }
    match runner::available_memory() {
        Some(available) => runner::check_memory(scenario, available, sharing, at_once).map(|_| ()),
        None => Ok(()),
    }
}

pub(crate) fn exit_for(e: &RunError) -> u8 {
    match e {
        RunError::Sim(SimError::Invariant(_)) => 1,
        RunError::Memory(_)
        | RunError::Scenario(_)
        | RunError::Sim(SimError::Setup(_))
        | RunError::Marketplace(MarketplaceError::Config { .. }) => 2,
        _ => 1,
    }
}

fn run(args: RunArgs) -> ExitCode {
    let scenario = match load(args.scenario.as_ref()) {
        Ok(s) => s,
        Err(e) => return fail(2, e),
    };
    if let Err(e) = check_memory(&scenario, args.ignore_memory_estimate, !args.no_sharing, 1) {
        return fail(exit_for(&e), e);
    }
    let opts = RunOptions {
        seed: args.seed,
        scenario_path: args.scenario.clone(),
        progress: !args.no_progress,
        no_sharing: args.no_sharing,
        no_workers: args.no_workers,
        threads: args
            .threads
            .map_or_else(|| runner::auto_threads(&scenario), usize::from),
    };
    let out = match runner::run(&scenario, &opts) {
        Ok(o) => o,
        Err(e) => return fail(exit_for(&e), e),
    };
    match args.format {
        Format::Text => print!("{}", out.summary.to_text()),
        Format::Json => match serde_json::to_string_pretty(&out.summary) {
            Ok(j) => println!("{j}"),
            Err(e) => return fail(1, e),
        },
        Format::Csv => print!("{}", out.csv),
    }
    let out_dir = args
        .out
        .clone()
        .or_else(|| args.plots.then(|| PathBuf::from("run-out")));
    if let Some(dir) = &out_dir {
        if let Err(e) = write_outputs(dir, &out.summary, &out.csv) {
            return fail(1, format!("cannot write outputs to {}: {e}", dir.display()));
        }
        let svg = dir.join("timeseries.svg");
        let title = format!("{} (seed {})", out.summary.scenario, out.summary.seed);
        if let Err(e) = idlegrid_sim::plot::write_svg(&svg, &title, &out.plot_series) {
            return fail(1, format!("cannot write {}: {e}", svg.display()));
        }
        if matches!(args.format, Format::Text) {
            println!(
                "wrote {0}/summary.json, {0}/timeseries.csv and {0}/timeseries.svg",
                dir.display()
            );
        }
        if args.plots {
            if let Some(ms) = &out.market_series {
                let title = format!(
                    "{} marketplace (seed {})",
                    out.summary.scenario, out.summary.seed
                );
                let svg = dir.join("marketplace.svg");
                let written =
                    std::fs::write(dir.join("marketplace.csv"), ms.to_csv()).and_then(|()| {
                        idlegrid_sim::plot::write_line_panels(&svg, &title, &market_panels(ms))
                    });
                if let Err(e) = written {
                    return fail(1, format!("cannot write {}: {e}", svg.display()));
                }
                if matches!(args.format, Format::Text) {
                    println!(
                        "wrote {0}/marketplace.svg and {0}/marketplace.csv",
                        dir.display()
                    );
                }
            } else if matches!(args.format, Format::Text) {
                println!(
                    "(no marketplace series for a {} scenario; see timeseries.svg)",
                    out.summary.machine
                );
            }
        }
    }
    ExitCode::SUCCESS
}

fn market_panels(ms: &idlegrid_sim::marketplace::MarketSeries) -> Vec<idlegrid_sim::plot::Panel> {
    let some = |v: &[u64]| v.iter().map(|x| Some(*x as f64)).collect::<Vec<_>>();
    let somef = |v: &[f64]| v.iter().map(|x| Some(*x)).collect::<Vec<_>>();
    vec![
        (
            "mean clearing price per compute-second (lots matched that second)".into(),
            vec![("clearing price".into(), ms.clearing_price.clone())],
        ),
        (
            "throughput: lots matched / s and jobs completed / s".into(),
            vec![
                ("lots matched".into(), some(&ms.matches)),
                ("jobs completed".into(), some(&ms.jobs_completed)),
            ],
        ),
        (
            "mean provider wealth change since genesis (before compute cost)".into(),
            vec![
                ("honest".into(), somef(&ms.honest_balance)),
                ("cheating".into(), somef(&ms.cheater_balance)),
            ],
        ),
    ]
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run(RunArgs::default())) {
        Command::Run(args) => run(args),
        Command::CheckDeterminism {
            scenario,
            seed,
            ignore_memory_estimate,
        } => {
            let s = match load(scenario.as_ref()) {
                Ok(s) => s,
                Err(e) => return fail(2, e),
            };
            // Its two runs go at once, on two threads.
            if let Err(e) = check_memory(&s, ignore_memory_estimate, true, 2) {
                return fail(exit_for(&e), e);
            }
            match runner::check_determinism(&s, seed) {
                Ok(r) => {
                    println!("{}", r.describe());
                    if r.is_deterministic() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => fail(exit_for(&e), e),
            }
        }
        Command::Sweep(cmd) => sweep_cmd::main(cmd),
        Command::Throughput(args) => throughput_cmd::main(args),
        Command::Bench { quick } => {
            print!("{}", bench::bench_report(quick));
            ExitCode::SUCCESS
        }
        Command::Scenarios => list_scenarios(),
        Command::Scenario { name } => match name.as_deref().map(idlegrid_sim::scenario::builtin) {
            None => {
                print!("{DEFAULT_SCENARIO}");
                ExitCode::SUCCESS
            }
            Some(Some(text)) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Some(None) => fail(
                2,
                format!(
                    "no built-in scenario `{}`; known: {}",
                    name.unwrap_or_default(),
                    idlegrid_sim::scenario::builtin_names()
                ),
            ),
        },
    }
}
