//! The latency–throughput figure: two panels (p50 and p99 commit latency
//! against committed tx/s), one line per committee size joining its loads
//! in rising order (so a committee whose throughput falls past overload
//! bends back), a ring on each size's saturation point.

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::curve::{Curve, Point};
use crate::plot::tidy;

/// Which latency of a point a panel draws.
type Latency = fn(&Point) -> f64;

const COLORS: [RGBColor; 6] = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];

/// Draws `curves` into the SVG at `path`, titled `title`.
pub fn write_svg(path: &Path, title: &str, curves: &[Curve]) -> std::io::Result<()> {
    let root = SVGBackend::new(path, (1200, 520)).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| std::io::Error::other(e.to_string());
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(err)?;
    let panels = root.split_evenly((1, 2));
    let pick: [(&str, Latency); 2] = [
        ("p50 commit latency", |p| p.p50_ms),
        ("p99 commit latency", |p| p.p99_ms),
    ];
    for (area, (name, y)) in panels.iter().zip(pick) {
        panel(area, name, curves, y).map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One panel: latency `y` (ms) against committed tx/s.
fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    name: &str,
    curves: &[Curve],
    y: fn(&Point) -> f64,
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    let all = || curves.iter().flat_map(|c| c.points.iter());
    let xmax = all().map(|p| p.committed).fold(1.0, f64::max) * 1.08;
    // Room above the highest point for the legend.
    let hi = all().map(y).fold(1.0, f64::max) * 1.35;
    let mut chart = ChartBuilder::on(area)
        .caption(name, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..xmax, 0.0..hi)?;
    chart
        .configure_mesh()
        .x_desc("committed tx/s")
        .y_desc("ms")
        .x_label_formatter(&|x| tidy(*x))
        .y_label_formatter(&|v| tidy(*v))
        .light_line_style(WHITE)
        .draw()?;
    for (i, c) in curves.iter().enumerate() {
        draw_curve(&mut chart, c, COLORS[i % COLORS.len()], y)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// One size: its points joined by rising load, the saturation ringed.
fn draw_curve(
    chart: &mut Chart<'_, '_>,
    c: &Curve,
    color: RGBColor,
    y: fn(&Point) -> f64,
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    let pts: Vec<(f64, f64)> = c.points.iter().map(|p| (p.committed, y(p))).collect();
    chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    let label = match c.saturation.map(|i| c.points[i]) {
        Some(s) => format!(
            "{} validators (saturation {} tx/s)",
            c.size,
            tidy(s.committed.round())
        ),
        None => format!("{} validators (never keeps up)", c.size),
    };
    chart
        .draw_series(LineSeries::new(pts, &color))?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    if let Some(s) = c.saturation.map(|i| c.points[i]) {
        let at = (s.committed, y(&s));
        chart.draw_series([Circle::new(at, 9, color.stroke_width(2))])?;
    }
    Ok(())
}
