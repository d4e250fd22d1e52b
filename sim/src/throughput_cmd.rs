//! `idlegrid-sim throughput`: the latency–throughput sweep (see
//! `idlegrid_sim::throughput`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use idlegrid_sim::scenario::parse_seeds;
use idlegrid_sim::sweep::{self, RunRow, Sweep};
use idlegrid_sim::throughput::{Plan, curve, figure};

use crate::fail;

/// Latency against throughput: the `throughput` scenario for every
/// committee size × offered load × seed; writes `sweep.csv` (one row per
/// run: load, size, seed, offered and committed tx/s, p50/p99 latency in
/// ms and in quorum delays, the ideal three-hop latency), `summary.csv`,
/// `throughput.svg` (p50 and p99 against committed tx/s, one curve per
/// size, saturation points ringed) and `saturation.md` (the table).
#[derive(clap::Args)]
#[command(after_help = "Example (the README's figure):\n  \
    idlegrid-sim throughput --sizes 10,50,100 \\\n      \
    --loads 5000,10000,20000,40000,60000,80000 --seeds 1..2 --out throughput-out")]
pub struct ThroughputArgs {
    /// Committee sizes.
    #[arg(long, value_delimiter = ',', default_value = "10,50,100")]
    sizes: Vec<usize>,
    /// Offered loads of the whole committee, tx/s, rising.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "5000,10000,20000,40000,60000,80000"
    )]
    loads: Vec<f64>,
    /// Seeds as `START..END` (end exclusive).
    #[arg(long, default_value = "1..2", value_parser = parse_seeds)]
    seeds: std::ops::Range<u64>,
    /// Virtual time of each run, ms.
    #[arg(long, default_value_t = 6_000)]
    duration_ms: u64,
    /// Commits before this are left out of the figures, ms.
    #[arg(long, default_value_t = 2_000)]
    warmup_ms: u64,
    /// Latency matrix: `world6` or `datacenter`.
    #[arg(long, default_value = "world6")]
    preset: String,
    /// Bytes per transaction.
    #[arg(long, default_value_t = 512)]
    tx_bytes: usize,
    /// Parallel runs.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Output directory.
    #[arg(long, default_value = "throughput-out")]
    out: PathBuf,
}

/// Runs `idlegrid-sim throughput`.
pub fn main(a: ThroughputArgs) -> ExitCode {
    let plan = Plan {
        sizes: a.sizes.clone(),
        loads: a.loads.clone(),
        seeds: a.seeds.clone(),
        duration_ms: a.duration_ms,
        warmup_ms: a.warmup_ms,
        preset: a.preset.clone(),
        tx_bytes: a.tx_bytes,
    };
    if let Err(e) = plan.check(a.jobs, available_memory()) {
        return fail(2, e);
    }
    let (spec, variants) = match plan.spec().and_then(|s| {
        let v = sweep::variants(&s)?;
        Ok((s, v))
    }) {
        Ok(x) => x,
        Err(e) => return fail(2, e),
    };
    let e = plan.estimate();
    let (cpu, size, load) = e.costliest_run;
    println!(
        "{} runs, {:.2e} transaction deliveries: about {:.0} min of one core at most, the costliest run {size} validators at {load} tx/s ({:.0} s)",
        e.runs,
        e.tx_deliveries,
        e.cpu_seconds / 60.0,
        cpu
    );
    let started = wall_now();
    let results = sweep::run_grid(&variants, &spec.runs(), None, a.jobs, false);
    let wall = started.elapsed().as_secs_f64();
    let mut failures = 0;
    for r in &results {
        match &r.outcome {
            Ok(_) => {}
            Err(err) => {
                failures += 1;
                println!("{}: FAILED\n{err}", spec.describe(r.key.point));
            }
        }
    }
    println!(
        "wall {wall:.0} s on {} threads: {:.2e} transaction deliveries per wall second per thread",
        a.jobs.clamp(1, e.runs.max(1)),
        e.tx_deliveries / wall.max(1e-9) / a.jobs.clamp(1, e.runs.max(1)) as f64
    );
    let rows: Vec<RunRow> = results.iter().map(|r| r.row(&spec)).collect();
    let curves = curve::curves(&spec, &rows);
    let table = curve::table(&curves);
    print!("{table}");
    let done = Sweep {
        spec,
        rows,
        series: Vec::new(),
    };
    if let Err(err) = write(&a, &done, &curves, &table) {
        return fail(1, err);
    }
    match failures {
        0 => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
}

fn write(
    a: &ThroughputArgs,
    done: &Sweep,
    curves: &[curve::Curve],
    table: &str,
) -> Result<(), String> {
    let mut files = sweep::write_sweep(&a.out, done).map_err(|e| e.to_string())?;
    let svg = a.out.join("throughput.svg");
    let title = format!(
        "Commit latency against committed throughput ({}, {} B transactions, {} s per run)",
        a.preset,
        a.tx_bytes,
        a.duration_ms as f64 / 1e3
    );
    figure::write_svg(&svg, &title, curves).map_err(|e| format!("{}: {e}", svg.display()))?;
    let md = a.out.join("saturation.md");
    std::fs::write(&md, table).map_err(|e| format!("{}: {e}", md.display()))?;
    files.extend([svg, md]);
    files.iter().for_each(|f| println!("wrote {}", f.display()));
    Ok(())
}

#[allow(clippy::disallowed_methods)] // the command reports its own wall time
fn wall_now() -> Instant {
    Instant::now()
}

/// Memory this machine has free (`MemAvailable`), or no bound when it
/// cannot be read.
fn available_memory() -> u64 {
    let read = |p: &Path| std::fs::read_to_string(p).ok();
    read(Path::new("/proc/meminfo"))
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemAvailable:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(u64::MAX)
}
