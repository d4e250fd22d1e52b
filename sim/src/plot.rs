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
            .x_label_formatter(&|x| tidy(*x))
            .y_label_formatter(&|y| tidy(*y))
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

/// One line of a sweep plot: the points of one combination of the other
/// swept fields' values (`label`, empty when only one field is swept).
#[derive(Debug, Clone)]
pub struct SweepSeries {
    /// The other fields' values, comma-separated.
    pub label: String,
    /// One point per value of the first field.
    pub points: Vec<SweepPoint>,
}

const SWEEP_COLORS: [RGBColor; 8] = [
    BLUE,
    RED,
    GREEN,
    MAGENTA,
    CYAN,
    BLACK,
    RGBColor(255, 140, 0),
    RGBColor(128, 0, 128),
];

/// A tick label: at most four significant digits, no trailing zeros
/// (`1500`, `0.25`, `1.2e7`).
pub fn tidy(v: f64) -> String {
    if !v.is_finite() || v == 0.0 {
        return if v == 0.0 { "0".into() } else { v.to_string() };
    }
    let mag = v.abs().log10().floor() as i32;
    if !(-3..6).contains(&mag) {
        let m = v / 10f64.powi(mag);
        return format!("{}e{mag}", tidy(m));
    }
    let decimals = (3 - mag).max(0) as usize;
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    if s == "-0" { "0".into() } else { s.to_string() }
}

/// An axis: maps a value to plot space (log10 for a log axis; `None` for
/// a value a log axis cannot show).
#[derive(Clone, Copy)]
struct Axis {
    log: bool,
}

impl Axis {
    fn to(&self, v: f64) -> Option<f64> {
        match self.log {
            true if v > 0.0 => Some(v.log10()),
            true => None,
            false => Some(v),
        }
    }
    /// A tick's label; a log axis labels only ticks near 1, 2 or 5 × 10ⁿ.
    fn label(&self, t: f64) -> String {
        if !self.log {
            return tidy(t);
        }
        let v = 10f64.powf(t);
        let decade = 10f64.powf(v.log10().floor());
        match [1.0, 2.0, 5.0, 10.0]
            .iter()
            .find(|&&m| (v / (m * decade) - 1.0).abs() < 0.02)
        {
            Some(m) => tidy(m * decade),
            None => String::new(),
        }
    }
    /// The plotted range of `values` (padded; a linear axis includes 0).
    fn range(&self, values: impl Iterator<Item = f64>, pad_frac: f64) -> (f64, f64) {
        let (lo, hi) = values
            .filter_map(|v| self.to(v))
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        if !lo.is_finite() {
            return (0.0, 1.0);
        }
        let pad = if hi > lo { (hi - lo) * pad_frac } else { 0.5 };
        (lo - pad, hi + pad)
    }
}

/// Mean, and the 95 % interval's ends (min..max with one seed).
fn point_stats(values: &[f64]) -> Option<(f64, f64, f64)> {
    let (mean, ci) = crate::sweep::mean_ci95(values)?;
    let ci = ci.unwrap_or(0.0);
    Some((mean, mean - ci, mean + ci))
}

/// Draws a metric against the first swept field: per series the mean over
/// seeds as a line with points, 95 % CI whiskers, and every seed as a
/// small dot. `axes` names the x and y axes; `legend` the fields that
/// tell the series apart. Log axes plot log10 of the value and label
/// ticks with the value; values a log axis cannot show are left out.
pub fn write_sweep_svg(
    path: &Path,
    title: &str,
    axes: (&str, &str),
    legend: &str,
    series: &[SweepSeries],
    opts: crate::sweep::PlotOptions,
) -> std::io::Result<()> {
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| std::io::Error::other(e.to_string());
    root.fill(&WHITE).map_err(err)?;
    let (ax, ay) = (Axis { log: opts.log_x }, Axis { log: opts.log_y });
    let all = || series.iter().flat_map(|s| s.points.iter());
    let (xlo, xhi) = ax.range(all().map(|p| p.x), 0.08);
    let (ylo, yhi) = if opts.log_y {
        ay.range(all().flat_map(|p| p.values.iter().copied()), 0.1)
    } else {
        y_range(all().flat_map(|p| p.values.iter().copied()))
    };
    let labels: Vec<(f64, String)> = all()
        .filter_map(|p| Some((ax.to(p.x)?, p.label.clone())))
        .collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(90)
        .build_cartesian_2d(xlo..xhi, ylo..yhi)
        .map_err(err)?;
    let fmt_x = |x: &f64| {
        labels
            .iter()
            .find(|(v, _)| (v - x).abs() < if opts.log_x { 0.005 } else { 1e-9 })
            .map(|(_, l)| l.clone())
            .unwrap_or_else(|| ax.label(*x))
    };
    let fmt_y = |y: &f64| ay.label(*y);
    chart
        .configure_mesh()
        .x_desc(if opts.log_x {
            format!("{} (log)", axes.0)
        } else {
            axes.0.to_string()
        })
        .y_desc(if opts.log_y {
            format!("{} (log)", axes.1)
        } else {
            axes.1.to_string()
        })
        .x_label_formatter(&fmt_x)
        .y_label_formatter(&fmt_y)
        .light_line_style(WHITE)
        .draw()
        .map_err(err)?;
    let w = (xhi - xlo) * 0.01;
    for (i, s) in series.iter().enumerate() {
        let color = SWEEP_COLORS[i % SWEEP_COLORS.len()];
        let name = if series.len() > 1 {
            format!("{legend} = {}", s.label)
        } else {
            "mean over seeds (whiskers: 95 % CI)".to_string()
        };
        draw_series(&mut chart, s, color, &name, (ax, ay), w).map_err(err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

type SweepChart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// One series of a sweep plot: seeds as dots, whiskers, the mean line.
fn draw_series(
    chart: &mut SweepChart<'_, '_>,
    s: &SweepSeries,
    color: RGBColor,
    name: &str,
    (ax, ay): (Axis, Axis),
    w: f64,
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    let mut means = Vec::new();
    for p in &s.points {
        let Some(x) = ax.to(p.x) else { continue };
        let dots = p.values.iter().filter_map(|v| ay.to(*v));
        chart.draw_series(dots.map(|y| Circle::new((x, y), 2, color.mix(0.5).filled())))?;
        let Some((mean, lo, hi)) = point_stats(&p.values) else {
            continue;
        };
        let Some(m) = ay.to(mean) else { continue };
        let (lo, hi) = (ay.to(lo).unwrap_or(m), ay.to(hi).unwrap_or(m));
        let style = color.stroke_width(1);
        chart.draw_series([
            PathElement::new(vec![(x, lo), (x, hi)], style),
            PathElement::new(vec![(x - w, lo), (x + w, lo)], style),
            PathElement::new(vec![(x - w, hi), (x + w, hi)], style),
        ])?;
        means.push((x, m));
    }
    chart.draw_series(means.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
    chart
        .draw_series(LineSeries::new(means, &color))?
        .label(name)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::tidy;

    #[test]
    fn tick_labels_are_tidy() {
        for (v, want) in [
            (1500.0, "1500"),
            (0.25, "0.25"),
            (0.1 + 0.2, "0.3"),
            (1234.5678, "1235"),
            (12_000_000.0, "1.2e7"),
            (-0.0004, "-4e-4"),
            (0.0, "0"),
            (-0.00001, "-1e-5"),
        ] {
            assert_eq!(tidy(v), want, "{v}");
        }
        let log = super::Axis { log: true };
        assert_eq!(log.label(2000f64.log10()), "2000");
        assert_eq!(log.label(0.5f64.log10()), "0.5");
        assert_eq!(log.label(1259f64.log10()), "");
    }
}
