//! Parameter sweeps (`idlegrid-sim sweep --param`): one scenario run over a
//! grid of values of one field × seeds, in parallel, with one CSV row per
//! run (`sweep.csv`) and one SVG per metric against the swept value.
//!
//! The field is named by its dotted TOML path (`marketplace.providers.
//! cheater_fraction`, `network.loss`, `faults.0.at_ms`) and set in the
//! parsed document before it is deserialized, so any field works, fields
//! left to their defaults included; a path that is not a scenario field is
//! an error naming it.
//!
//! ```
//! use idlegrid_sim::sweep::scenario_with;
//! let text = idlegrid_sim::scenario::builtin("cheaters").unwrap();
//! let s = scenario_with(text, "marketplace.providers.cheat_rate", "0.5").unwrap();
//! assert_eq!(s.marketplace.unwrap().providers.cheat_rate, 0.5);
//! let e = scenario_with(text, "marketplace.providers.cheat_rat", "0.5").unwrap_err();
//! assert!(e.to_string().contains("`marketplace.providers.cheat_rat`"));
//! ```

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::plot::{SweepPoint, write_sweep_svg};
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

/// One run of a sweep.
#[derive(Debug)]
pub struct GridRun {
    /// The swept value as given (empty for a seed-only sweep).
    pub value: String,
    /// The seed.
    pub seed: u64,
    /// Its outcome.
    pub outcome: Result<Summary, RunError>,
}

/// Runs every `(value, scenario)` variant for every seed on up to `jobs`
/// threads. Results are ordered by variant, then seed; a failing run does
/// not stop the others.
pub fn run_grid(
    variants: &[(String, Scenario)],
    scenario_path: Option<&str>,
    seeds: std::ops::Range<u64>,
    jobs: usize,
) -> Vec<GridRun> {
    let grid: Vec<(usize, u64)> = (0..variants.len())
        .flat_map(|v| seeds.clone().map(move |s| (v, s)))
        .collect();
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(grid.len()));
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, 64).min(grid.len().max(1)) {
            scope.spawn(|| {
                while let Some(&(v, seed)) = grid.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let opts = RunOptions {
                        seed: Some(seed),
                        scenario_path: scenario_path.map(str::to_string),
                        progress: false,
                    };
                    let outcome = runner::run(&variants[v].1, &opts).map(|o| o.summary);
                    let run = GridRun {
                        value: variants[v].0.clone(),
                        seed,
                        outcome,
                    };
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((v, run));
                }
            });
        }
    });
    let mut out = results.into_inner().unwrap_or_else(|e| e.into_inner());
    out.sort_by_key(|(v, r)| (*v, r.seed));
    out.into_iter().map(|(_, r)| r).collect()
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

/// `sweep.csv`: `param,value,seed,status,<metrics…>,run_digest`, one row per
/// run (metrics empty for a failed run or a metric the summary lacks).
pub fn csv(param: &str, runs: &[GridRun], metrics: &[String]) -> String {
    let mut out = format!("param,value,seed,status,{},run_digest\n", metrics.join(","));
    for r in runs {
        let (status, cells, digest) = match &r.outcome {
            Ok(s) => {
                let json = serde_json::to_value(s).unwrap_or_default();
                let cells: Vec<String> = metrics
                    .iter()
                    .map(|m| metric(&json, m).map(|x| x.to_string()).unwrap_or_default())
                    .collect();
                ("ok", cells, s.run_digest.clone())
            }
            Err(_) => ("failed", vec![String::new(); metrics.len()], String::new()),
        };
        out += &format!(
            "{param},{},{},{status},{},{digest}\n",
            r.value,
            r.seed,
            cells.join(",")
        );
    }
    out
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

/// Writes one SVG per metric (mean over seeds with min/max whiskers against
/// the swept value) into `dir`; returns the files written. Values that are
/// all numbers are placed at their value, others evenly in the given order.
/// A metric no successful run reports is skipped.
pub fn write_plots(
    dir: &Path,
    scenario: &str,
    param: &str,
    values: &[String],
    runs: &[GridRun],
    metrics: &[String],
) -> std::io::Result<Vec<std::path::PathBuf>> {
    let numeric: Option<Vec<f64>> = values.iter().map(|v| v.trim().parse().ok()).collect();
    let jsons: Vec<(&str, serde_json::Value)> = runs
        .iter()
        .filter_map(|r| {
            let s = r.outcome.as_ref().ok()?;
            Some((r.value.as_str(), serde_json::to_value(s).ok()?))
        })
        .collect();
    let mut written = Vec::new();
    for m in metrics {
        let points: Vec<SweepPoint> = values
            .iter()
            .enumerate()
            .map(|(i, v)| SweepPoint {
                x: numeric.as_ref().map_or(i as f64, |n| n[i]),
                label: v.clone(),
                values: jsons
                    .iter()
                    .filter(|(val, _)| val == v)
                    .filter_map(|(_, j)| metric(j, m))
                    .collect(),
            })
            .collect();
        if points.iter().all(|p| p.values.is_empty()) {
            continue;
        }
        let path = dir.join(svg_name(m));
        let seeds = runs.iter().filter(|r| r.value == values[0]).count();
        let title = format!("{scenario}: {m} vs {param} ({seeds} seeds)");
        write_sweep_svg(&path, &title, param, m, &points)?;
        written.push(path);
    }
    Ok(written)
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
