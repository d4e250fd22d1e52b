//! `idlegrid-sim sweep`: a grid of field values × seeds run here, as one
//! shard of several machines, or written as a Slurm job array; and
//! `sweep merge`, which joins shards into the local sweep's outputs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use idlegrid_sim::scenario::{DEFAULT_SCENARIO, Scenario};
use idlegrid_sim::sweep::{
    self, GridRun, Param, PlotOptions, RunRow, Shard, Sweep, SweepError, SweepSpec, slurm::SlurmJob,
};

use crate::fail;
use idlegrid_sim::scenario::parse_seeds;

/// Run a scenario for many seeds (VOPR style), optionally over a grid of
/// field values; report every failure with its replay command.
///
/// With `--param PATH --values A,B,C` (repeatable: every combination is a
/// grid point) every point × seed is run in parallel with the scenario
/// fields set, and `sweep.csv` (one row per run), `summary.csv` (mean and
/// 95 % CI over seeds per point), one SVG per metric (against the first
/// field, one line per combination of the others) and, for two fields, one
/// heat map per metric go to `--out`. A scenario's `[sweep]` table gives
/// the grid, seeds and metrics when no `--param` is given.
#[derive(clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  \
    idlegrid-sim sweep cheaters --seeds 1..21\n  \
    idlegrid-sim sweep default --param marketplace.mechanism \\\n      \
    --values k_double,mcafee,pay_as_bid,pay_as_ask --seeds 1..4 --out sweep-mechanisms\n  \
    idlegrid-sim sweep cheaters --param marketplace.providers.cheater_fraction --values 0.05,0.2,0.4 \\\n      \
    --param marketplace.providers.cheat_rate --values 0.1,0.5 --seeds 1..4 --out sweep-grid\n  \
    idlegrid-sim sweep demand --jobs 1 --series --log-x --out demand   # its [sweep] table\n  \
    idlegrid-sim sweep cheaters --param marketplace.clients.job_interval_ms --values 250,1000,4000 \\\n      \
    --log-x --seeds 1..101 --shard 3/8 --out shard-3\n  \
    idlegrid-sim sweep merge shard-1 shard-2 … shard-8 --out sweep-merged\n  \
    idlegrid-sim sweep cheaters --param marketplace.clients.job_interval_ms --values 250,1000,4000 \\\n      \
    --seeds 1..101 --slurm /shared/sweep --shards 8"
)]
pub struct SweepCmd {
    #[command(subcommand)]
    action: Option<SweepAction>,
    #[command(flatten)]
    args: SweepArgs,
}

#[derive(clap::Subcommand)]
enum SweepAction {
    /// Merge the output directories of every shard of one sweep
    /// (`--shard I/N`) into the sweep's sweep.csv, summary.csv and plots.
    Merge {
        /// Shard directories (each with shard.json and sweep.csv).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Directory for the merged outputs.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
struct SweepArgs {
    /// Built-in scenario name or scenario file (TOML); the default when omitted.
    scenario: Option<String>,
    /// Seeds as `START..END` (end exclusive) [default: the scenario's
    /// `[sweep] seeds`, else 1..11].
    #[arg(long, value_parser = parse_seeds)]
    seeds: Option<std::ops::Range<u64>>,
    /// Parallel runs.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Scenario field to sweep, by dotted TOML path
    /// (e.g. `marketplace.providers.cheater_fraction`); repeat for a grid.
    /// Conflicts with a `[[sweep.param]]` grid in the scenario file.
    #[arg(long)]
    param: Vec<String>,
    /// Comma-separated values of the `--param` before it (TOML literals;
    /// bare words are strings).
    #[arg(long)]
    values: Vec<String>,
    /// Output directory (default `sweep-out` with `--param`; without it,
    /// sweep.csv is written only when given).
    #[arg(long)]
    out: Option<PathBuf>,
    /// summary.json metrics (dotted paths) for the CSVs and the plots,
    /// checked before any run [default for marketplace scenarios:
    /// entrap.detection_rate, economics.cheater_profit_mean,
    /// economics.honest_profit_mean, market.clearing_price.mean,
    /// jobs.completed].
    #[arg(long, value_delimiter = ',')]
    metrics: Vec<String>,
    /// Keep every run's per-second series: series/<values>-seed<s>.csv and,
    /// for the marketplace, price_over_time.svg (one line per grid point).
    #[arg(long)]
    series: bool,
    /// Logarithmic x axis (the first field's values must be positive).
    #[arg(long)]
    log_x: bool,
    /// Logarithmic y axis (non-positive values are left out of the plot).
    #[arg(long)]
    log_y: bool,
    /// Run only shard I of N (1-based): disjoint slices of grid × seeds;
    /// writes sweep.csv and shard.json for `sweep merge`.
    #[arg(long, value_name = "I/N", conflicts_with = "slurm")]
    shard: Option<String>,
    /// Write a Slurm job array (one task per shard, the merge as a
    /// dependent job) into this directory instead of running.
    #[arg(long, value_name = "DIR", requires = "shards")]
    slurm: Option<PathBuf>,
    /// Array tasks for `--slurm`.
    #[arg(long, value_name = "N", requires = "slurm")]
    shards: Option<u32>,
    /// Run even if the fitted memory model says `--jobs` runs of the
    /// sweep's largest grid point at once do not fit.
    #[arg(long)]
    ignore_memory_estimate: bool,
}

/// Runs `idlegrid-sim sweep`.
pub fn main(cmd: SweepCmd) -> ExitCode {
    match cmd.action {
        Some(SweepAction::Merge { dirs, out }) => merge(&dirs, &out),
        None => run(cmd.args),
    }
}

fn merge(dirs: &[PathBuf], out: &Path) -> ExitCode {
    let written = sweep::merge(dirs).and_then(|s| {
        println!(
            "{} shards of sweep {}: {} runs",
            dirs.len(),
            &s.spec.digest()[..16],
            s.rows.len()
        );
        sweep::write_sweep(out, &s)
    });
    match written {
        Ok(files) => {
            files.iter().for_each(|f| println!("wrote {}", f.display()));
            ExitCode::SUCCESS
        }
        Err(e) => fail(2, e),
    }
}

/// The sweep's spec from the command line; every check that needs no run.
fn spec(a: &SweepArgs) -> Result<(SweepSpec, Vec<Scenario>), String> {
    let text = match &a.scenario {
        Some(p) => Scenario::source_text(p).map_err(|e| e.to_string())?,
        None => DEFAULT_SCENARIO.to_string(),
    };
    let base = Scenario::parse(&text).map_err(|e| e.to_string())?;
    let table = base.sweep.clone().unwrap_or_default();
    if !a.param.is_empty() && !table.param.is_empty() {
        return Err(format!(
            "--param conflicts with the {} `[[sweep.param]]` of the scenario file: \
             give the grid in one place (remove --param/--values or the table)",
            table.param.len()
        ));
    }
    if a.param.len() != a.values.len() {
        return Err(format!(
            "{} --param but {} --values: give each --param its --values",
            a.param.len(),
            a.values.len()
        ));
    }
    let from_cli = a.param.iter().zip(&a.values).map(|(p, v)| {
        let values = v.split(',').map(|x| x.trim().to_string()).collect();
        (p.clone(), values)
    });
    let params = match a.param.is_empty() {
        true => table.params().map_err(|e| e.to_string())?,
        false => from_cli.collect(),
    };
    let params = params
        .into_iter()
        .map(|(path, values)| Param { path, values })
        .collect();
    let metrics = match (a.metrics.is_empty(), table.metrics.is_empty()) {
        (false, _) => a.metrics.clone(),
        (true, false) => table.metrics.clone(),
        (true, true) => sweep::default_metrics(base.machine),
    };
    let seeds = match (a.seeds.clone(), table.seeds().map_err(|e| e.to_string())?) {
        (Some(s), _) | (None, Some(s)) => s,
        (None, None) => 1..11,
    };
    sweep::check_metrics(base.machine, &metrics).map_err(|e| e.to_string())?;
    let spec = SweepSpec {
        scenario_name: base.name.clone(),
        scenario_text: text,
        params,
        seeds,
        metrics,
        plot: PlotOptions {
            log_x: a.log_x,
            log_y: a.log_y,
        },
        series: a.series,
    };
    check_log_x(&spec)?;
    let variants = sweep::variants(&spec).map_err(|e| e.to_string())?;
    Ok((spec, variants))
}

fn check_log_x(spec: &SweepSpec) -> Result<(), String> {
    let Some(first) = spec.params.first().filter(|_| spec.plot.log_x) else {
        return Ok(());
    };
    match first
        .values
        .iter()
        .find(|v| !v.parse::<f64>().is_ok_and(|x| x > 0.0))
    {
        Some(v) => Err(format!(
            "--log-x needs positive numbers for `{}`, got `{v}`",
            first.path
        )),
        None => Ok(()),
    }
}

fn run(a: SweepArgs) -> ExitCode {
    let (spec, variants) = match spec(&a) {
        Ok(s) => s,
        Err(e) => return fail(2, e),
    };
    if let Some(dir) = &a.slurm {
        return write_slurm(&a, &spec, dir);
    }
    let shard = match a.shard.as_deref().map(str::parse::<Shard>).transpose() {
        Ok(s) => s,
        Err(e) => return fail(2, e),
    };
    let keys = match shard {
        Some(s) => match spec.shard_runs(s) {
            Ok(k) => k,
            Err(e) => return fail(2, e),
        },
        None => spec.runs(),
    };
    if let Err(e) = check_memory(&a, &variants, &keys) {
        return fail(crate::exit_for(&e), e);
    }
    let results = sweep::run_grid(&variants, &keys, a.scenario.as_deref(), a.jobs, a.series);
    let failures = report(&spec, &results, shard);
    let rows: Vec<RunRow> = results.iter().map(|r| r.row(&spec)).collect();
    warn_missing_metrics(&spec, &rows);
    let series = results
        .iter()
        .filter_map(|r| Some((r.key, r.series.clone()?)))
        .collect();
    let done = Sweep { spec, rows, series };
    let written = match (shard, &a.out) {
        (Some(s), out) => {
            let dir = out
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("sweep-shard-{}", s.index)));
            sweep::write_shard(&dir, &done, s)
        }
        (None, Some(dir)) => sweep::write_sweep(dir, &done),
        (None, None) if !done.spec.params.is_empty() => {
            sweep::write_sweep(Path::new("sweep-out"), &done)
        }
        (None, None) => Ok(Vec::new()),
    };
    match written {
        Ok(files) => files.iter().for_each(|f| println!("wrote {}", f.display())),
        Err(e) => return fail(1, e),
    }
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Refuses the sweep if `--jobs` runs of any of its grid points at once
/// would not fit in memory (at most one per run to do).
fn check_memory(
    a: &SweepArgs,
    variants: &[Scenario],
    keys: &[sweep::RunKey],
) -> Result<(), idlegrid_sim::runner::RunError> {
    let at_once = a.jobs.clamp(1, 64).min(keys.len().max(1)) as u64;
    let mut points: Vec<usize> = keys.iter().map(|k| k.point).collect();
    points.dedup();
    points
        .iter()
        .filter_map(|&p| variants.get(p))
        .try_for_each(|v| crate::check_memory(v, a.ignore_memory_estimate, true, at_once))
}

/// Prints one line per run (the error and replay command of a failed
/// one) and the totals; returns the failures.
fn report(spec: &SweepSpec, results: &[GridRun], shard: Option<Shard>) -> usize {
    let mut failures = 0;
    for r in results {
        let what = match spec.params.is_empty() {
            true => format!("seed {:>6}", r.key.seed),
            false => format!("{} seed {:>6}", spec.describe(r.key.point), r.key.seed),
        };
        match &r.outcome {
            Ok(sum) => {
                let extra = sum
                    .consensus
                    .as_ref()
                    .map(|c| {
                        format!(
                            ", {} commits, {:.0} tx/s",
                            c.commits, c.transactions_per_second
                        )
                    })
                    .unwrap_or_default();
                println!(
                    "{what}: ok, {} events, digest {}{extra}",
                    sum.events,
                    &sum.run_digest[..16]
                );
            }
            Err(e) => {
                failures += 1;
                let with = match spec.params.is_empty() {
                    true => String::new(),
                    false => format!(
                        " (with {} in the scenario file)",
                        spec.describe(r.key.point)
                    ),
                };
                println!("{what}: FAILED{with}\n{e}");
            }
        }
    }
    let of = shard.map(|s| format!(" ({s})")).unwrap_or_default();
    if spec.params.is_empty() {
        println!("{} seeds{of}, {failures} failed", results.len());
    } else {
        println!(
            "{} points x {} seeds = {} runs{of}, {failures} failed",
            spec.points().len(),
            spec.seeds.end - spec.seeds.start,
            results.len()
        );
    }
    failures
}

fn warn_missing_metrics(spec: &SweepSpec, rows: &[RunRow]) {
    let any_ok = rows.iter().any(|r| r.metrics.is_some());
    for (i, m) in spec.metrics.iter().enumerate() {
        let found = rows
            .iter()
            .any(|r| r.metrics.as_ref().is_some_and(|v| v[i].is_some()));
        if any_ok && !found {
            eprintln!("warning: no run reported metric `{m}` (a dotted path into summary.json)");
        }
    }
}

/// The sweep's own arguments, for the array tasks to repeat (a grid from
/// the scenario's `[sweep]` table stays in the scenario file they get).
fn task_args(a: &SweepArgs, spec: &SweepSpec) -> Vec<String> {
    let mut args = vec![
        "--seeds".to_string(),
        format!("{}..{}", spec.seeds.start, spec.seeds.end),
    ];
    for p in spec.params.iter().filter(|_| !a.param.is_empty()) {
        args.extend(["--param".into(), p.path.clone()]);
        args.extend(["--values".into(), p.values.join(",")]);
    }
    args.extend(["--metrics".into(), spec.metrics.join(",")]);
    if a.log_x {
        args.push("--log-x".into());
    }
    if a.log_y {
        args.push("--log-y".into());
    }
    if a.series {
        args.push("--series".into());
    }
    if a.ignore_memory_estimate {
        args.push("--ignore-memory-estimate".into());
    }
    args
}

fn write_slurm(a: &SweepArgs, spec: &SweepSpec, dir: &Path) -> ExitCode {
    let shards = a.shards.unwrap_or(1);
    if let Err(e) = spec.shard_runs(Shard {
        index: 1,
        count: shards.max(1),
    }) {
        return fail(2, e);
    }
    if shards == 0 {
        return fail(2, SweepError::Shard("--shards must be at least 1".into()));
    }
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let binary = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("idlegrid-sim"));
    let job = SlurmJob {
        binary: absolute(&binary),
        scenario_text: spec.scenario_text.clone(),
        args: task_args(a, spec),
        shards,
        cpus_per_task: a.jobs.clamp(1, 64) as u32,
        dir: absolute(dir),
    };
    match job.write() {
        Ok(files) => {
            files.iter().for_each(|f| println!("wrote {}", f.display()));
            println!(
                "{} runs in {shards} array tasks; submit with: {}",
                spec.run_count(),
                job.dir.join("submit.sh").display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, e),
    }
}
