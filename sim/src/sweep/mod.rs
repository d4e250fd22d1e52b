//! Parameter sweeps (`idlegrid-sim sweep`): one scenario run over a grid
//! of field values × seeds, in parallel, with one CSV row per run
//! (`sweep.csv`), the mean and 95 % confidence interval over seeds of every
//! grid point (`summary.csv`), one SVG per metric against the first
//! field ([`output`]) and, for a grid of two fields, one heat map per
//! metric ([`heatmap`]). A sweep can be split into disjoint shards run on
//! different machines and merged into exactly the same outputs
//! ([`spec`], [`output::merge`]), and written as a Slurm job array
//! ([`slurm`]).
//!
//! A field is named by its dotted TOML path (`marketplace.providers.
//! cheater_fraction`, `network.loss`, `faults.0.at_ms`) and set in the
//! parsed document before it is deserialized, so any field works, fields
//! left to their defaults included; a path that is not a scenario field is
//! an error naming it. Metric names are checked against the machine's
//! summary ([`known`]) before any run.
//!
//! ```
//! use idlegrid_sim::sweep::scenario_with;
//! let text = idlegrid_sim::scenario::builtin("cheaters").unwrap();
//! let s = scenario_with(text, "marketplace.providers.cheat_rate", "0.5").unwrap();
//! assert_eq!(s.marketplace.unwrap().providers.cheat_rate, 0.5);
//! let e = scenario_with(text, "marketplace.providers.cheat_rat", "0.5").unwrap_err();
//! assert!(e.to_string().contains("`marketplace.providers.cheat_rat`"));
//! ```

pub mod heatmap;
pub mod known;
pub mod output;
pub mod series;
pub mod slurm;
pub mod spec;
pub mod table;

pub use output::{ShardManifest, Sweep, merge, svg_name, write_shard, write_sweep};
pub use spec::{Param, PlotOptions, RunKey, Shard, SweepSpec};
pub use table::{RunRow, mean_ci95};

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::report::Summary;
use crate::runner::{self, RunError, RunOptions};
use crate::scenario::{MachineKind, Scenario, ScenarioError};

/// Metrics of `summary.json` put in `sweep.csv` and plotted by default for
/// marketplace scenarios.
pub const MARKETPLACE_METRICS: &[&str] = &[
    "entrap.detection_rate",
    "economics.cheater_profit_mean",
    "economics.honest_profit_mean",
    "market.clearing_price.mean",
    "jobs.completed",
];

/// The default metrics for a scenario's machine.
pub fn default_metrics(machine: MachineKind) -> Vec<String> {
    let m: &[&str] = match machine {
        MachineKind::Marketplace => MARKETPLACE_METRICS,
        MachineKind::Consensus => &[
            "consensus.commits",
            "consensus.transactions_per_second",
            "consensus.commit_latency_ms.p50",
        ],
        MachineKind::Gossip => &["gossip.coverage", "gossip.propagation_ms.p50"],
        MachineKind::Crashes => &["engine.delivered"],
    };
    m.iter().map(|s| s.to_string()).collect()
}

fn bad_param(path: &str, reason: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        field: path.to_string(),
        reason: reason.into(),
    }
}

/// A command-line value as TOML: a TOML literal if it parses as one
/// (`0.3`, `12`, `true`, `"x"`, `[1, 2]`), else a bare string. An integer
/// given for a float field becomes a float.
fn toml_value(raw: &str, existing: Option<&toml::Value>) -> toml::Value {
    let parsed = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    match (existing, parsed) {
        (Some(toml::Value::Float(_)), toml::Value::Integer(i)) => toml::Value::Float(i as f64),
        (Some(toml::Value::String(_)), v @ (toml::Value::Integer(_) | toml::Value::Float(_))) => {
            toml::Value::String(v.to_string())
        }
        (_, v) => v,
    }
}

/// Sets the field at dotted `path` in a parsed scenario document (missing
/// tables are created; array elements are addressed by index). Returns
/// whether the field was already present.
pub fn set_param(doc: &mut toml::Value, path: &str, raw: &str) -> Result<bool, ScenarioError> {
    let segments: Vec<&str> = path.split('.').collect();
    if segments.iter().any(|s| s.trim().is_empty()) {
        return Err(bad_param(
            path,
            "is not a dotted field path (e.g. `network.loss`)",
        ));
    }
    let (last, parents) = segments.split_last().expect("split yields one segment");
    let mut cur = doc;
    for (i, seg) in parents.iter().enumerate() {
        let here = segments[..=i].join(".");
        cur = match cur {
            toml::Value::Table(t) => t
                .entry(seg.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new())),
            toml::Value::Array(a) => {
                let len = a.len();
                seg.parse::<usize>()
                    .ok()
                    .and_then(|k| a.get_mut(k))
                    .ok_or_else(|| {
                        bad_param(path, format!("`{here}`: no element {seg} (length {len})"))
                    })?
            }
            _ => return Err(bad_param(path, format!("`{here}` is not a table"))),
        };
    }
    match cur {
        toml::Value::Table(t) => {
            let present = t.contains_key(*last);
            let v = toml_value(raw, t.get(*last));
            t.insert(last.to_string(), v);
            Ok(present)
        }
        toml::Value::Array(a) => {
            let len = a.len();
            let slot = last
                .parse::<usize>()
                .ok()
                .and_then(|k| a.get_mut(k))
                .ok_or_else(|| bad_param(path, format!("no element {last} (length {len})")))?;
            *slot = toml_value(raw, Some(slot));
            Ok(true)
        }
        _ => Err(bad_param(
            path,
            format!("`{}` is not a table", parents.join(".")),
        )),
    }
}

/// The scenario `text` with the field at `path` set to `raw`. A path that
/// names no scenario field is an error naming the path.
pub fn scenario_with(text: &str, path: &str, raw: &str) -> Result<Scenario, ScenarioError> {
    let mut doc: toml::Value =
        toml::from_str(text).map_err(|e| ScenarioError::Parse(e.to_string()))?;
    let present = set_param(&mut doc, path, raw)?;
    match Scenario::from_toml(doc) {
        Err(ScenarioError::Parse(msg)) if !present && msg.contains("unknown field") => {
            Err(bad_param(
                path,
                format!("is not a scenario field ({})", one_line(&msg)),
            ))
        }
        Err(ScenarioError::Parse(msg)) => Err(bad_param(
            path,
            format!("cannot be set to `{raw}`: {}", one_line(&msg)),
        )),
        other => other,
    }
}

fn one_line(msg: &str) -> String {
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Why a sweep cannot run or its shards cannot be merged (each found
/// before any run, and before any file is written).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SweepError {
    /// A swept field or value does not fit the scenario.
    #[error("--param {path} = {value}: {source}")]
    Field {
        /// The field.
        path: String,
        /// The value.
        value: String,
        /// Why.
        source: ScenarioError,
    },
    /// A combination of fields' values the scenario rejects.
    #[error("{point}: {source}")]
    Point {
        /// The fields and values.
        point: String,
        /// Why.
        source: ScenarioError,
    },
    /// The grid itself is malformed.
    #[error("bad grid: {0}")]
    Grid(String),
    /// A metric is not in the machine's summary.
    #[error(
        "unknown metric `{metric}` for a {machine} scenario (metrics are dotted paths into summary.json; `*` = any behaviour name); valid here: {valid}"
    )]
    Metric {
        /// The name given.
        metric: String,
        /// The scenario's machine.
        machine: &'static str,
        /// Every valid metric, comma-separated.
        valid: String,
    },
    /// A shard index or count that does not fit.
    #[error("bad --shard {0}")]
    Shard(String),
    /// Shard directories that are not exactly the shards of one sweep.
    #[error("cannot merge: {0}")]
    Merge(String),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
}

/// Whether summary path `metric` matches `pattern` (`*` = any segment).
fn matches(pattern: &str, metric: &str) -> bool {
    let (p, m): (Vec<&str>, Vec<&str>) =
        (pattern.split('.').collect(), metric.split('.').collect());
    p.len() == m.len() && p.iter().zip(&m).all(|(p, m)| *p == "*" || p == m)
}

/// The metric patterns of `machine`'s summary.
pub fn known_metrics(machine: MachineKind) -> Vec<&'static str> {
    let specific: &[&[&str]] = match machine {
        MachineKind::Marketplace => &[known::CONSENSUS, known::STORAGE, known::MARKETPLACE],
        MachineKind::Consensus => &[known::CONSENSUS, known::STORAGE],
        MachineKind::Gossip => &[known::GOSSIP],
        MachineKind::Crashes => &[known::CRASHES],
    };
    let specific = specific.iter().flat_map(|l| l.iter());
    known::COMMON.iter().chain(specific).copied().collect()
}

/// Checks every metric against `machine`'s summary; the error lists the
/// valid metrics of the section the name starts with, or every section.
pub fn check_metrics(machine: MachineKind, metrics: &[String]) -> Result<(), SweepError> {
    let valid = known_metrics(machine);
    let Some(m) = metrics
        .iter()
        .find(|m| !valid.iter().any(|p| matches(p, m)))
    else {
        return Ok(());
    };
    let section = |p: &str| p.split('.').next().unwrap_or_default().to_string();
    let same: Vec<&str> = valid
        .iter()
        .copied()
        .filter(|p| p.contains('.') && section(p) == section(m))
        .collect();
    let valid = if same.is_empty() {
        let mut top: Vec<String> = valid
            .iter()
            .map(|p| {
                if p.contains('.') {
                    format!("{}.…", section(p))
                } else {
                    p.to_string()
                }
            })
            .collect();
        top.dedup();
        top.join(", ")
    } else {
        same.join(", ")
    };
    Err(SweepError::Metric {
        metric: m.clone(),
        machine: machine.name(),
        valid,
    })
}

/// The scenario of every grid point of `spec` (in [`SweepSpec::points`]
/// order), each validated: first every field with each of its values
/// alone (the error names the field), then every combination.
pub fn variants(spec: &SweepSpec) -> Result<Vec<Scenario>, SweepError> {
    spec.check()?;
    let text = &spec.scenario_text;
    for p in &spec.params {
        for v in &p.values {
            scenario_with(text, &p.path, v.trim()).map_err(|source| SweepError::Field {
                path: p.path.clone(),
                value: v.clone(),
                source,
            })?;
        }
    }
    spec.points()
        .iter()
        .map(|point| {
            let mut doc: toml::Value =
                toml::from_str(text).map_err(|e| ScenarioError::Parse(e.to_string()))?;
            for (p, v) in spec.params.iter().zip(point) {
                set_param(&mut doc, &p.path, v.trim())?;
            }
            Scenario::from_toml(doc)
        })
        .enumerate()
        .map(|(i, r)| {
            r.map_err(|source| SweepError::Point {
                point: spec.describe(i),
                source,
            })
        })
        .collect()
}

/// One run of a sweep and its outcome.
#[derive(Debug)]
pub struct GridRun {
    /// Which run.
    pub key: RunKey,
    /// Its outcome.
    pub outcome: Result<Summary, RunError>,
    /// Its per-second series as CSV (`marketplace.csv` for the marketplace,
    /// else `timeseries.csv`), when asked for.
    pub series: Option<String>,
}

impl GridRun {
    /// Its row: the metrics of `spec` from the summary, or failed.
    pub fn row(&self, spec: &SweepSpec) -> RunRow {
        match &self.outcome {
            Ok(s) => {
                let json = serde_json::to_value(s).unwrap_or_default();
                RunRow {
                    key: self.key,
                    metrics: Some(spec.metrics.iter().map(|m| metric(&json, m)).collect()),
                    digest: s.run_digest.clone(),
                }
            }
            Err(_) => RunRow {
                key: self.key,
                metrics: None,
                digest: String::new(),
            },
        }
    }
}

/// Runs `keys` (scenario `variants[key.point]` with `key.seed`) on up to
/// `jobs` threads, keeping each run's series if `series`. Results are in
/// key order; a failing run does not stop the others.
pub fn run_grid(
    variants: &[Scenario],
    keys: &[RunKey],
    scenario_path: Option<&str>,
    jobs: usize,
    series: bool,
) -> Vec<GridRun> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(keys.len()));
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, 64).min(keys.len().max(1)) {
            scope.spawn(|| {
                while let Some(&key) = keys.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let opts = RunOptions {
                        seed: Some(key.seed),
                        scenario_path: scenario_path.map(str::to_string),
                        progress: false,
                        no_sharing: false,
                        // Parallel runs keep the cores busy already.
                        no_workers: jobs > 1,
                        threads: if jobs > 1 { 1 } else { 2 },
                    };
                    let out = runner::run(&variants[key.point], &opts);
                    let kept = out.as_ref().ok().filter(|_| series).map(|o| {
                        o.market_series
                            .as_ref()
                            .map_or_else(|| o.csv.clone(), |m| m.to_csv())
                    });
                    let run = GridRun {
                        key,
                        outcome: out.map(|o| o.summary),
                        series: kept,
                    };
                    results.lock().unwrap_or_else(|e| e.into_inner()).push(run);
                }
            });
        }
    });
    let mut out = results.into_inner().unwrap_or_else(|e| e.into_inner());
    out.sort_by_key(|r| r.key);
    out
}

/// The number at dotted `path` in a summary (strings holding numbers, such
/// as `market.volume`, are parsed; booleans are 0 or 1).
pub fn metric(summary: &serde_json::Value, path: &str) -> Option<f64> {
    let v = path.split('.').try_fold(summary, |v, seg| v.get(seg))?;
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.parse().ok(),
        serde_json::Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name = \"t\"\nduration_ms = 2000\n[nodes]\ncount = 8\n";

    #[test]
    fn sets_present_absent_and_typed_fields() {
        let s = scenario_with(TEXT, "nodes.count", "5").unwrap();
        assert_eq!(s.nodes.count, 5);
        // Absent section and field (defaults) are created; integer → float.
        let s = scenario_with(TEXT, "network.loss", "0").unwrap();
        assert_eq!(s.network.loss, 0.0);
        let s = scenario_with(TEXT, "network.jitter", "0.25").unwrap();
        assert_eq!(s.network.jitter, 0.25);
    }

    #[test]
    fn unknown_or_bad_paths_are_named() {
        for (path, raw) in [
            ("network.los", "0.1"),
            ("nosuch.section.x", "1"),
            ("name.inner", "1"),
            ("nodes..count", "1"),
        ] {
            let e = scenario_with(TEXT, path, raw).unwrap_err().to_string();
            assert!(e.contains(&format!("`{path}`")), "{path}: {e}");
        }
        let e = scenario_with(TEXT, "network.loss", "7")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`network.loss`"), "{e}");
        let e = scenario_with(TEXT, "nodes.count", "many")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`nodes.count`"), "{e}");
    }

    #[test]
    fn metric_paths() {
        let j = serde_json::json!({"a": {"b": 2.5, "s": "7"}, "t": true});
        assert_eq!(metric(&j, "a.b"), Some(2.5));
        assert_eq!(metric(&j, "a.s"), Some(7.0));
        assert_eq!(metric(&j, "t"), Some(1.0));
        assert_eq!(metric(&j, "a.c"), None);
        assert_eq!(
            svg_name("market.clearing_price.mean"),
            "market_clearing_price_mean.svg"
        );
    }
}
