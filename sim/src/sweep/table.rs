//! The rows of a sweep: one per run, as `sweep.csv` holds them, and the
//! statistics over seeds of each grid point (`summary.csv`).
//!
//! A row is written with Rust's shortest round-trip float format and read
//! back exactly, so outputs built from rows read back from shard CSVs are
//! the bytes a local sweep writes from its rows in memory.

use super::SweepError;
use super::spec::{RunKey, SweepSpec};

/// One run's outcome as the sweep keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    /// Which run.
    pub key: RunKey,
    /// The metrics (`None`: not reported), or `None` for a failed run.
    pub metrics: Option<Vec<Option<f64>>>,
    /// The run digest (empty for a failed run).
    pub digest: String,
}

/// `sweep.csv`'s header: `<field paths…>,seed,status,<metrics…>,run_digest`.
pub fn csv_header(spec: &SweepSpec) -> String {
    let mut cols: Vec<&str> = spec.params.iter().map(|p| p.path.as_str()).collect();
    cols.extend(["seed", "status"]);
    cols.extend(spec.metrics.iter().map(String::as_str));
    cols.push("run_digest");
    cols.join(",")
}

/// One row of `sweep.csv`.
pub fn csv_row(point: &[String], row: &RunRow) -> String {
    let mut cols: Vec<String> = point.to_vec();
    cols.push(row.key.seed.to_string());
    match &row.metrics {
        Some(ms) => {
            cols.push("ok".into());
            cols.extend(
                ms.iter()
                    .map(|m| m.map(|x| x.to_string()).unwrap_or_default()),
            );
        }
        None => cols.push("failed".into()),
    }
    cols.push(row.digest.clone());
    cols.join(",")
}

/// `sweep.csv`: the header and one line per row, in the rows' order.
pub fn csv(spec: &SweepSpec, rows: &[RunRow]) -> String {
    let points = spec.points();
    let mut out = csv_header(spec);
    out.push('\n');
    for r in rows {
        out += &csv_row(&points[r.key.point], r);
        out.push('\n');
    }
    out
}

/// Reads back the rows of a `sweep.csv` written for `spec` (`what` names
/// the file in errors).
pub fn parse_csv(spec: &SweepSpec, text: &str, what: &str) -> Result<Vec<RunRow>, SweepError> {
    let bad = |line: usize, why: String| SweepError::Merge(format!("{what}:{line}: {why}"));
    let mut lines = text.lines();
    if lines.next() != Some(csv_header(spec).as_str()) {
        return Err(bad(1, "header does not match the sweep".into()));
    }
    let points = spec.points();
    let (np, nm) = (spec.params.len(), spec.metrics.len());
    lines
        .enumerate()
        .map(|(i, line)| {
            let cols: Vec<&str> = line.split(',').collect();
            let point = points
                .iter()
                .position(|p| cols.len() > np && p.iter().zip(&cols).all(|(a, b)| a == b))
                .ok_or_else(|| bad(i + 2, "values are not a grid point of the sweep".into()))?;
            let seed = cols[np]
                .parse()
                .map_err(|_| bad(i + 2, "bad seed".into()))?;
            let key = RunKey { point, seed };
            match (cols.get(np + 1).copied(), cols.len()) {
                (Some("failed"), n) if n == np + 3 => Ok(RunRow {
                    key,
                    metrics: None,
                    digest: cols[np + 2].to_string(),
                }),
                (Some("ok"), n) if n == np + 3 + nm => {
                    let metrics = cols[np + 2..np + 2 + nm]
                        .iter()
                        .map(|c| match *c {
                            "" => Ok(None),
                            c => c.parse().map(Some),
                        })
                        .collect::<Result<_, _>>()
                        .map_err(|_| bad(i + 2, "a metric is not a number".into()))?;
                    Ok(RunRow {
                        key,
                        metrics: Some(metrics),
                        digest: cols[np + 2 + nm].to_string(),
                    })
                }
                _ => Err(bad(i + 2, "wrong number of columns".into())),
            }
        })
        .collect()
}

/// Two-sided 95 % Student-t quantiles for 1..=30 degrees of freedom.
const T95: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// Mean and the half-width of its 95 % confidence interval (Student t;
/// `None` with fewer than two values).
pub fn mean_ci95(values: &[f64]) -> Option<(f64, Option<f64>)> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return Some((mean, None));
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let t = T95.get(n - 2).copied().unwrap_or(1.96);
    Some((mean, Some(t * (var / n as f64).sqrt())))
}

/// The values of metric `m` over the successful runs of grid point `point`.
pub fn values_at(rows: &[RunRow], point: usize, m: usize) -> Vec<f64> {
    rows.iter()
        .filter(|r| r.key.point == point)
        .filter_map(|r| r.metrics.as_ref()?.get(m).copied().flatten())
        .collect()
}

/// `summary.csv`: per grid point, the runs, the successful ones, and each
/// metric's mean and 95 % CI half-width over seeds.
pub fn summary_csv(spec: &SweepSpec, rows: &[RunRow]) -> String {
    let mut cols: Vec<String> = spec.params.iter().map(|p| p.path.clone()).collect();
    cols.extend(["runs".into(), "ok".into()]);
    for m in &spec.metrics {
        cols.extend([format!("{m}.mean"), format!("{m}.ci95")]);
    }
    let mut out = cols.join(",") + "\n";
    for (i, point) in spec.points().iter().enumerate() {
        let at: Vec<&RunRow> = rows.iter().filter(|r| r.key.point == i).collect();
        let ok = at.iter().filter(|r| r.metrics.is_some()).count();
        let mut cells = point.clone();
        cells.extend([at.len().to_string(), ok.to_string()]);
        for m in 0..spec.metrics.len() {
            let (mean, ci) = match mean_ci95(&values_at(rows, i, m)) {
                Some((mean, ci)) => (mean.to_string(), ci.map(|c| c.to_string())),
                None => (String::new(), None),
            };
            cells.extend([mean, ci.unwrap_or_default()]);
        }
        out += &(cells.join(",") + "\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::spec::{Param, PlotOptions};

    fn spec() -> SweepSpec {
        SweepSpec {
            scenario_name: "t".into(),
            scenario_text: "x".into(),
            params: vec![Param::new("a.b", &["0.1", "x"])],
            seeds: 1..4,
            metrics: vec!["m1".into(), "m2".into()],
            plot: PlotOptions::default(),
            series: false,
        }
    }

    #[test]
    fn rows_round_trip_exactly() {
        let s = spec();
        let rows = vec![
            RunRow {
                key: RunKey { point: 1, seed: 2 },
                metrics: Some(vec![Some(0.1 + 0.2), None]),
                digest: "ab".into(),
            },
            RunRow {
                key: RunKey { point: 0, seed: 3 },
                metrics: None,
                digest: String::new(),
            },
            RunRow {
                key: RunKey { point: 0, seed: 1 },
                metrics: Some(vec![Some(-1e300), Some(f64::MIN_POSITIVE)]),
                digest: "cd".into(),
            },
        ];
        let text = csv(&s, &rows);
        assert_eq!(parse_csv(&s, &text, "t").unwrap(), rows);
        let broken = text.replace("x,2,", "q,2,");
        assert_ne!(broken, text);
        assert!(parse_csv(&s, &broken, "t").is_err());
    }

    #[test]
    fn mean_and_interval() {
        assert_eq!(mean_ci95(&[]), None);
        assert_eq!(mean_ci95(&[4.0]), Some((4.0, None)));
        let (m, ci) = mean_ci95(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(m, 2.0);
        // s = 1, n = 3: t(2) · 1/√3.
        assert!((ci.unwrap() - 4.303 / 3f64.sqrt()).abs() < 1e-12);
    }
}
