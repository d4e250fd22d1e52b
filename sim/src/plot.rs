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

/// One panel of [`write_line_panels`]: a caption and named lines (index =
/// virtual second; `None` leaves a gap).
pub type Panel = (String, Vec<(String, Vec<Option<f64>>)>);

const PALETTE: [RGBColor; 4] = [BLUE, RED, GREEN, MAGENTA];

/// Draws stacked panels of one or more lines each (a legend names the
/// lines when a panel has several).
pub fn write_line_panels(path: &Path, title: &str, panels: &[Panel]) -> std::io::Result<()> {
    let n = panels.len().max(1);
    let root = SVGBackend::new(path, (900, 40 + 240 * n as u32)).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| std::io::Error::other(e.to_string());
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(err)?;
    for (area, (name, lines)) in root.split_evenly((n, 1)).iter().zip(panels) {
        let values = || lines.iter().flat_map(|(_, v)| v.iter().flatten().copied());
        let len = lines.iter().map(|(_, v)| v.len()).max().unwrap_or(0).max(1);
        let (lo, hi) = y_range(values());
        let mut chart = ChartBuilder::on(area)
            .caption(name, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..len as f64, lo..hi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("virtual second")
            .light_line_style(WHITE)
            .draw()
            .map_err(err)?;
        for (i, (label, v)) in lines.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            // Split at gaps so missing seconds are not bridged.
            let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
            for (s, y) in v.iter().enumerate() {
                match y {
                    Some(y) => runs.last_mut().expect("non-empty").push((s as f64, *y)),
                    None => runs.push(Vec::new()),
                }
            }
            for (k, run) in runs.into_iter().filter(|r| !r.is_empty()).enumerate() {
                let drawn = if run.len() == 1 {
                    chart.draw_series(run.into_iter().map(|p| Circle::new(p, 2, color.filled())))
                } else {
                    chart.draw_series(LineSeries::new(run, &color))
                }
                .map_err(err)?;
                if k == 0 && lines.len() > 1 {
                    drawn
                        .label(label.as_str())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
                }
            }
        }
        if lines.len() > 1 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }
    }
    root.present().map_err(err)?;
    Ok(())
}

fn y_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let pad = ((hi - lo) * 0.1).max(1e-9);
    (if lo < 0.0 { lo - pad } else { lo }, hi + pad)
}

/// One swept value: its x position, its label and the metric's values over
/// the seeds.
#[derive(Debug, Clone)]
pub struct SweepPoint {
    /// Position on the x axis (the value itself when numeric, else its index).
    pub x: f64,
    /// The value as given on the command line.
    pub label: String,
    /// The metric, one per successful seed.
    pub values: Vec<f64>,
}

/// Draws a metric against the swept parameter: the mean over seeds as a
/// line with points, min/max whiskers, and every seed as a small dot.
pub fn write_sweep_svg(
    path: &Path,
    title: &str,
    param: &str,
    metric: &str,
    points: &[SweepPoint],
) -> std::io::Result<()> {
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| std::io::Error::other(e.to_string());
    root.fill(&WHITE).map_err(err)?;
    let (xlo, xhi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.x), b.max(p.x))
        });
    let (xlo, xhi) = if xlo.is_finite() {
        (xlo, xhi)
    } else {
        (0.0, 1.0)
    };
    let xpad = if xhi > xlo { (xhi - xlo) * 0.08 } else { 0.5 };
    let (ylo, yhi) = y_range(points.iter().flat_map(|p| p.values.iter().copied()));
    let numeric_labels: Vec<(f64, String)> =
        points.iter().map(|p| (p.x, p.label.clone())).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(90)
        .build_cartesian_2d((xlo - xpad)..(xhi + xpad), ylo..yhi)
        .map_err(err)?;
    let fmt_x = |x: &f64| {
        numeric_labels
            .iter()
            .find(|(v, _)| (v - x).abs() < 1e-9)
            .map(|(_, l)| l.clone())
            .unwrap_or_else(|| format!("{x:.3}"))
    };
    chart
        .configure_mesh()
        .x_desc(param)
        .y_desc(metric)
        .x_label_formatter(&fmt_x)
        .light_line_style(WHITE)
        .draw()
        .map_err(err)?;
    let stats: Vec<(f64, f64, f64, f64)> = points
        .iter()
        .filter(|p| !p.values.is_empty())
        .map(|p| {
            let mean = p.values.iter().sum::<f64>() / p.values.len() as f64;
            let lo = p.values.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = p.values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (p.x, mean, lo, hi)
        })
        .collect();
    let w = (xhi - xlo + 2.0 * xpad) * 0.01;
    for &(x, _, lo, hi) in &stats {
        let style = BLACK.stroke_width(1);
        chart
            .draw_series([
                PathElement::new(vec![(x, lo), (x, hi)], style),
                PathElement::new(vec![(x - w, lo), (x + w, lo)], style),
                PathElement::new(vec![(x - w, hi), (x + w, hi)], style),
            ])
            .map_err(err)?;
    }
    chart
        .draw_series(points.iter().flat_map(|p| {
            p.values
                .iter()
                .map(move |v| Circle::new((p.x, *v), 2, RED.filled()))
        }))
        .map_err(err)?
        .label("seed")
        .legend(|(x, y)| Circle::new((x + 10, y), 2, RED.filled()));
    chart
        .draw_series(LineSeries::new(stats.iter().map(|s| (s.0, s.1)), &BLUE))
        .map_err(err)?
        .label("mean over seeds (whiskers: min..max)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .draw_series(
            stats
                .iter()
                .map(|s| Circle::new((s.0, s.1), 4, BLUE.filled())),
        )
        .map_err(err)?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
