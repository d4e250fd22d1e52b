//! What a sweep writes: `sweep.csv`, `summary.csv`, one SVG per metric
//! and, for a two-field grid, one heat map per metric ([`super::heatmap`])
//! for a whole sweep; `sweep.csv` (its rows only) and `shard.json` for a
//! shard; and the merge of shard directories into the whole sweep's
//! outputs, through the same function a local sweep uses.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::SweepError;
use super::spec::{RunKey, Shard, SweepSpec};
use super::table::{self, RunRow};
use crate::plot::{SweepPoint, SweepSeries, write_sweep_svg};

/// A sweep's results: its spec, one row per run (any order) and, with
/// `--series`, each successful run's per-second CSV.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// What was swept.
    pub spec: SweepSpec,
    /// One row per run.
    pub rows: Vec<RunRow>,
    /// `(run, series CSV)` when [`SweepSpec::series`].
    pub series: Vec<(RunKey, String)>,
}

impl Sweep {
    /// Rows and series in run order.
    fn sorted(&self) -> (Vec<RunRow>, Vec<(RunKey, String)>) {
        let mut rows = self.rows.clone();
        rows.sort_by_key(|r| r.key);
        let mut series = self.series.clone();
        series.sort_by_key(|s| s.0);
        (rows, series)
    }
}

/// The file (under `series/`) of one run's series:
/// `<values joined by _>-seed<seed>.csv`.
pub fn series_name(spec: &SweepSpec, key: RunKey) -> String {
    let point = &spec.points()[key.point];
    let stem: String = point
        .join("_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    match stem.is_empty() {
        true => format!("seed{}.csv", key.seed),
        false => format!("{stem}-seed{}.csv", key.seed),
    }
}

fn write_series(
    dir: &Path,
    spec: &SweepSpec,
    series: &[(RunKey, String)],
) -> Result<Vec<PathBuf>, SweepError> {
    if series.is_empty() {
        return Ok(Vec::new());
    }
    let sdir = dir.join("series");
    std::fs::create_dir_all(&sdir).map_err(|e| io_err(&sdir, e))?;
    series
        .iter()
        .map(|(k, text)| write(&sdir.join(series_name(spec, *k)), text))
        .collect()
}

/// `shard.json`: which sweep and which shard a shard directory holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardManifest {
    /// [`SweepSpec::digest`] of the sweep.
    pub digest: String,
    /// This shard.
    pub shard: Shard,
    /// The sweep.
    pub spec: SweepSpec,
}

fn io_err(path: &Path, e: std::io::Error) -> SweepError {
    SweepError::Io(format!("{}: {e}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<PathBuf, SweepError> {
    std::fs::write(path, text).map_err(|e| io_err(path, e))?;
    Ok(path.to_path_buf())
}

/// Writes a whole sweep's `sweep.csv`, `summary.csv`, plots and series
/// into `dir` (in run order whatever order they come in); returns the
/// files.
pub fn write_sweep(dir: &Path, sweep: &Sweep) -> Result<Vec<PathBuf>, SweepError> {
    let (spec, (rows, series)) = (&sweep.spec, sweep.sorted());
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let mut files = vec![
        write(&dir.join("sweep.csv"), &table::csv(spec, &rows))?,
        write(&dir.join("summary.csv"), &table::summary_csv(spec, &rows))?,
    ];
    if !spec.params.is_empty() {
        files.extend(write_plots(dir, spec, &rows)?);
        files.extend(super::heatmap::write_heatmaps(dir, spec, &rows)?);
    }
    files.extend(write_series(dir, spec, &series)?);
    files.extend(super::series::write_price_plot(dir, spec, &series)?);
    Ok(files)
}

/// Writes one shard's rows (`sweep.csv`), series and `shard.json` into
/// `dir`.
pub fn write_shard(dir: &Path, sweep: &Sweep, shard: Shard) -> Result<Vec<PathBuf>, SweepError> {
    let (spec, (rows, series)) = (&sweep.spec, sweep.sorted());
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let manifest = ShardManifest {
        digest: spec.digest(),
        shard,
        spec: spec.clone(),
    };
    let json = serde_json::to_string_pretty(&manifest).expect("a manifest serializes");
    let mut files = vec![
        write(&dir.join("sweep.csv"), &table::csv(spec, &rows))?,
        write(&dir.join("shard.json"), &json)?,
    ];
    files.extend(write_series(dir, spec, &series)?);
    Ok(files)
}

fn read(path: &Path) -> Result<String, SweepError> {
    std::fs::read_to_string(path).map_err(|e| io_err(path, e))
}

/// Reads shard directories and checks they are every shard of one sweep,
/// each once, each with exactly its runs; returns the sweep and all rows.
/// Nothing is written, so a bad set of shards leaves no partial output.
pub fn merge(dirs: &[PathBuf]) -> Result<Sweep, SweepError> {
    let mut shards = Vec::with_capacity(dirs.len());
    for d in dirs {
        let path = d.join("shard.json");
        let m: ShardManifest = serde_json::from_str(&read(&path)?)
            .map_err(|e| SweepError::Merge(format!("{}: {e}", path.display())))?;
        if m.spec.digest() != m.digest {
            return Err(SweepError::Merge(format!(
                "{}: the digest does not match the sweep it describes",
                path.display()
            )));
        }
        shards.push((d, m));
    }
    let Some((first_dir, first)) = shards.first() else {
        return Err(SweepError::Merge("no shard directories given".into()));
    };
    let n = first.shard.count;
    for (d, m) in &shards {
        if m.digest != first.digest {
            return Err(SweepError::Merge(format!(
                "{} is a shard of another sweep than {} (sweep digests {} and {})",
                d.display(),
                first_dir.display(),
                &m.digest[..16],
                &first.digest[..16]
            )));
        }
        if m.shard.count != n {
            return Err(SweepError::Merge(format!(
                "{} is {}, {} is {}",
                d.display(),
                m.shard,
                first_dir.display(),
                first.shard
            )));
        }
    }
    check_complete(
        &shards
            .iter()
            .map(|(d, m)| (*d, m.shard))
            .collect::<Vec<_>>(),
        n,
    )?;
    let spec = first.spec.clone();
    let (mut rows, mut series) = (Vec::new(), Vec::new());
    for (d, m) in &shards {
        let path = d.join("sweep.csv");
        let got = table::parse_csv(&spec, &read(&path)?, &path.display().to_string())?;
        let want: BTreeSet<RunKey> = spec.shard_runs(m.shard)?.into_iter().collect();
        let have: BTreeSet<RunKey> = got.iter().map(|r| r.key).collect();
        if have != want || got.len() != want.len() {
            return Err(SweepError::Merge(format!(
                "{}: {} holds {} runs, {} expected (an interrupted or edited shard?)",
                path.display(),
                m.shard,
                got.len(),
                want.len()
            )));
        }
        series.extend(read_series(d, &spec, &got)?);
        rows.extend(got);
    }
    Ok(Sweep { spec, rows, series })
}

/// A shard's series files: one per successful run when the sweep keeps
/// series.
fn read_series(
    dir: &Path,
    spec: &SweepSpec,
    rows: &[RunRow],
) -> Result<Vec<(RunKey, String)>, SweepError> {
    if !spec.series {
        return Ok(Vec::new());
    }
    rows.iter()
        .filter(|r| r.metrics.is_some())
        .map(|r| {
            Ok((
                r.key,
                read(&dir.join("series").join(series_name(spec, r.key)))?,
            ))
        })
        .collect()
}

/// Every shard `1..=n` present exactly once.
fn check_complete(shards: &[(&PathBuf, Shard)], n: u32) -> Result<(), SweepError> {
    let mut seen: Vec<Option<&PathBuf>> = vec![None; n as usize];
    for (d, s) in shards {
        let slot = &mut seen[(s.index - 1) as usize];
        if let Some(other) = slot {
            return Err(SweepError::Merge(format!(
                "{s} given twice: {} and {}",
                other.display(),
                d.display()
            )));
        }
        *slot = Some(d);
    }
    let missing: Vec<String> = (1..=n)
        .filter(|i| seen[(*i - 1) as usize].is_none())
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(SweepError::Merge(format!(
            "missing shard(s) {} of {n}",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// The file name of a metric's plot (`entrap.detection_rate` →
/// `entrap_detection_rate.svg`).
pub fn svg_name(metric: &str) -> String {
    let stem: String = metric
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{stem}.svg")
}

/// One SVG per metric against the first swept field: one line per
/// combination of the other fields' values (mean over seeds, 95 % CI
/// whiskers). Values that are all numbers are placed at their value,
/// others evenly in the given order. A metric no run reports is skipped.
fn write_plots(dir: &Path, spec: &SweepSpec, rows: &[RunRow]) -> Result<Vec<PathBuf>, SweepError> {
    let first = &spec.params[0];
    let numeric: Option<Vec<f64>> = first.values.iter().map(|v| v.trim().parse().ok()).collect();
    let points = spec.points();
    let per_line = first.values.len();
    let lines = points.len() / per_line;
    let seeds = spec.seeds.end - spec.seeds.start;
    let mut written = Vec::new();
    for (m, name) in spec.metrics.iter().enumerate() {
        // Points are first-field-outermost: point = x · lines + line.
        let series: Vec<SweepSeries> = (0..lines)
            .map(|line| SweepSeries {
                label: points[line][1..].join(", "),
                points: (0..per_line)
                    .map(|x| SweepPoint {
                        x: numeric.as_ref().map_or(x as f64, |n| n[x]),
                        label: first.values[x].clone(),
                        values: table::values_at(rows, x * lines + line, m),
                    })
                    .collect(),
            })
            .collect();
        if series
            .iter()
            .all(|s| s.points.iter().all(|p| p.values.is_empty()))
        {
            continue;
        }
        let path = dir.join(svg_name(name));
        let title = format!(
            "{}: {name} vs {} ({seeds} seeds)",
            spec.scenario_name, first.path
        );
        let others: Vec<&str> = spec.params[1..].iter().map(|p| p.path.as_str()).collect();
        write_sweep_svg(
            &path,
            &title,
            (&first.path, name),
            &others.join(", "),
            &series,
            spec.plot,
        )
        .map_err(|e| io_err(&path, e))?;
        written.push(path);
    }
    Ok(written)
}
