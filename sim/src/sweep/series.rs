//! Per-run time series of a sweep (`--series`): `price_over_time.svg`, the
//! clearing price per virtual second of each grid point (mean over the
//! seeds that matched lots in that second), read from the runs'
//! `marketplace.csv` text so a merged sweep draws the same plot.

use std::path::{Path, PathBuf};

use super::SweepError;
use super::spec::{RunKey, SweepSpec};
use crate::plot::{Panel, write_line_panels};

/// The header of a marketplace series (`MarketSeries::to_csv`).
const MARKET_HEADER: &str = "second,clearing_price,";

/// The clearing price column of a marketplace series CSV (`None` for a
/// second without matches), or `None` for another kind of series.
pub fn clearing_prices(csv: &str) -> Option<Vec<Option<f64>>> {
    let mut lines = csv.lines();
    if !lines.next()?.starts_with(MARKET_HEADER) {
        return None;
    }
    Some(
        lines
            .map(|l| l.split(',').nth(1).and_then(|c| c.parse().ok()))
            .collect(),
    )
}

/// Mean over runs of each second's value (seconds where no run has one
/// stay `None`).
fn mean_by_second(runs: &[Vec<Option<f64>>]) -> Vec<Option<f64>> {
    let len = runs.iter().map(Vec::len).max().unwrap_or(0);
    (0..len)
        .map(|s| {
            let v: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.get(s).copied().flatten())
                .collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        })
        .collect()
}

/// Writes `price_over_time.svg` into `dir` when the series are a
/// marketplace's; returns the file written, if any.
pub fn write_price_plot(
    dir: &Path,
    spec: &SweepSpec,
    series: &[(RunKey, String)],
) -> Result<Option<PathBuf>, SweepError> {
    let Some(parsed) = series
        .iter()
        .map(|(k, csv)| Some((k.point, clearing_prices(csv)?)))
        .collect::<Option<Vec<_>>>()
        .filter(|p| !p.is_empty())
    else {
        return Ok(None);
    };
    let lines = (0..spec.points().len())
        .filter_map(|i| {
            let runs: Vec<Vec<Option<f64>>> = parsed
                .iter()
                .filter(|(p, _)| *p == i)
                .map(|(_, v)| v.clone())
                .collect();
            let label = match spec.params.is_empty() {
                true => "all runs".to_string(),
                false => spec.describe(i),
            };
            (!runs.is_empty()).then(|| (label, mean_by_second(&runs)))
        })
        .collect();
    let seeds = spec.seeds.end - spec.seeds.start;
    let panel: Panel = (
        format!("mean clearing price per compute-second, mean over {seeds} seeds"),
        lines,
    );
    let path = dir.join("price_over_time.svg");
    let title = format!("{}: clearing price over time", spec.scenario_name);
    write_line_panels(&path, &title, &[panel])
        .map_err(|e| SweepError::Io(format!("{}: {e}", path.display())))?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_and_means_by_second() {
        let csv = "second,clearing_price,matches\n0,,0\n1,10.5,2\n2,7,1\n";
        let a = clearing_prices(csv).unwrap();
        assert_eq!(a, vec![None, Some(10.5), Some(7.0)]);
        assert_eq!(clearing_prices("second,delivered\n0,3\n"), None);
        let b = vec![Some(1.0), Some(1.5)];
        assert_eq!(
            mean_by_second(&[a, b]),
            vec![Some(1.0), Some(6.0), Some(7.0)]
        );
    }
}
