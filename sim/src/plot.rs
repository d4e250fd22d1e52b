//! SVG plots of a run's per-second series (`timeseries.svg`).

use std::path::Path;

use plotters::prelude::*;

use crate::engine::RunReport;
use crate::metrics::Metrics;

/// Panels drawn at most (one per series).
const MAX_PANELS: usize = 8;

/// The series to plot: delivered messages per second, then every series of
/// the observer's metrics.
pub fn series(report: &RunReport, extra: Option<&Metrics>) -> Vec<(String, Vec<u64>)> {
    let mut out = vec![(
        "messages delivered / s".to_string(),
        report.series.iter().map(|s| s.delivered).collect(),
    )];
    if let Some(m) = extra {
        for (name, v) in &m.series {
            out.push((format!("{} / s", name.replace('_', " ")), v.clone()));
        }
    }
    out.truncate(MAX_PANELS);
    out
}

/// Draws one stacked line chart per series into an SVG file.
pub fn write_svg(path: &Path, title: &str, series: &[(String, Vec<u64>)]) -> std::io::Result<()> {
    let panels = series.len().max(1);
    let height = 40 + 220 * panels as u32;
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| std::io::Error::other(e.to_string());
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(err)?;
    for (area, (name, values)) in root.split_evenly((panels, 1)).iter().zip(series) {
        let seconds = values.len().max(1) as u64;
        let top = values.iter().copied().max().unwrap_or(0).max(1);
        let mut chart = ChartBuilder::on(area)
            .caption(name, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(0u64..seconds, 0u64..top + top / 10 + 1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("virtual second")
            .light_line_style(WHITE)
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                values.iter().enumerate().map(|(s, v)| (s as u64, *v)),
                &BLUE,
            ))
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}
