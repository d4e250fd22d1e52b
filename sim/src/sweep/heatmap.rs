//! Heat maps of two-field sweeps: one SVG per metric
//! (`heatmap_<metric>.svg`), the first field's values across, the
//! second's up, each cell coloured by the metric's mean over seeds and
//! labelled with it; a colour bar with clean ticks on the right. Cells
//! without a successful run are grey and labelled `n/a`.

use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::{SegmentValue, SegmentedCoord};
use plotters::coord::types::RangedCoordi32;
use plotters::prelude::*;

use super::SweepError;
use super::spec::SweepSpec;
use super::table::{self, RunRow};
use crate::plot::tidy;

/// The file name of a metric's heat map.
pub fn heatmap_name(metric: &str) -> String {
    format!("heatmap_{}", super::svg_name(metric))
}

/// The grid of one metric: `cells[y][x]`, the mean over seeds of grid
/// point (first field = x, second = y), `None` without a successful run.
pub fn grid(spec: &SweepSpec, rows: &[RunRow], metric: usize) -> Vec<Vec<Option<f64>>> {
    let (nx, ny) = (spec.params[0].values.len(), spec.params[1].values.len());
    (0..ny)
        .map(|y| {
            (0..nx)
                .map(|x| {
                    let v = table::values_at(rows, x * ny + y, metric);
                    super::mean_ci95(&v).map(|(mean, _)| mean)
                })
                .collect()
        })
        .collect()
}

/// Writes one heat map per metric a run reported, when exactly two fields
/// are swept; returns the files.
pub fn write_heatmaps(
    dir: &Path,
    spec: &SweepSpec,
    rows: &[RunRow],
) -> Result<Vec<PathBuf>, SweepError> {
    if spec.params.len() != 2 {
        return Ok(Vec::new());
    }
    let mut written = Vec::new();
    for (m, name) in spec.metrics.iter().enumerate() {
        let cells = grid(spec, rows, m);
        if cells.iter().flatten().all(Option::is_none) {
            continue;
        }
        let path = dir.join(heatmap_name(name));
        let seeds = spec.seeds.end - spec.seeds.start;
        let title = format!("{}: mean {name} ({seeds} seeds)", spec.scenario_name);
        draw(&path, &title, spec, &cells)
            .map_err(|e| SweepError::Io(format!("{}: {e}", path.display())))?;
        written.push(path);
    }
    Ok(written)
}

/// A perceptually ordered colour (viridis' ends and middle) for `t` in
/// `0..=1`.
pub fn colour(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let f = t * (STOPS.len() - 1) as f64;
    let i = (f.floor() as usize).min(STOPS.len() - 2);
    let (a, b, u) = (STOPS[i], STOPS[i + 1], f - i as f64);
    let mix = |p: f64, q: f64| (p + (q - p) * u).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn draw(
    path: &Path,
    title: &str,
    spec: &SweepSpec,
    cells: &[Vec<Option<f64>>],
) -> std::io::Result<()> {
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(io)?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(io)?;
    let (main, bar) = root.split_horizontally(780);
    let values = || cells.iter().flatten().flatten().copied();
    let lo = values().fold(f64::INFINITY, f64::min);
    let hi = values().fold(f64::NEG_INFINITY, f64::max);
    let scale = |v: f64| if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
    draw_cells(&main, spec, cells, &scale)?;
    draw_bar(&bar, lo, hi)?;
    root.present().map_err(io)
}

fn draw_cells(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    spec: &SweepSpec,
    cells: &[Vec<Option<f64>>],
    scale: &dyn Fn(f64) -> f64,
) -> std::io::Result<()> {
    let (px, py) = (&spec.params[0], &spec.params[1]);
    let (nx, ny) = (px.values.len() as i32, py.values.len() as i32);
    let label = |values: &[String], s: &SegmentValue<i32>| match s {
        SegmentValue::CenterOf(i) => values.get(*i as usize).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    let mut chart = ChartBuilder::on(area)
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(90)
        .build_cartesian_2d((0..nx - 1).into_segmented(), (0..ny - 1).into_segmented())
        .map_err(io)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(px.path.as_str())
        .y_desc(py.path.as_str())
        .x_labels(nx as usize + 1)
        .y_labels(ny as usize + 1)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .x_label_formatter(&|s| label(&px.values, s))
        .y_label_formatter(&|s| label(&py.values, s))
        .draw()
        .map_err(io)?;
    for (y, row) in cells.iter().enumerate() {
        for (x, cell) in row.iter().enumerate() {
            draw_cell(&mut chart, (x as i32, y as i32), (nx, ny), *cell, scale)?;
        }
    }
    Ok(())
}

type Cells<'a> = ChartContext<
    'a,
    SVGBackend<'a>,
    Cartesian2d<SegmentedCoord<RangedCoordi32>, SegmentedCoord<RangedCoordi32>>,
>;

/// One cell: its colour and its value (`n/a` on grey without one).
fn draw_cell(
    chart: &mut Cells<'_>,
    (x, y): (i32, i32),
    (nx, ny): (i32, i32),
    cell: Option<f64>,
    scale: &dyn Fn(f64) -> f64,
) -> std::io::Result<()> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    // A cell spans its segment; the last one's right (top) edge is the
    // axis end.
    let edge = |i: i32, n: i32| match i < n {
        true => SegmentValue::Exact(i),
        false => SegmentValue::Last,
    };
    let fill = cell.map_or(RGBColor(200, 200, 200), |v| colour(scale(v)));
    let rect = [
        (edge(x, nx), edge(y, ny)),
        (edge(x + 1, nx), edge(y + 1, ny)),
    ];
    chart
        .draw_series([Rectangle::new(rect, fill.filled())])
        .map_err(io)?;
    let text = cell.map_or("n/a".to_string(), tidy);
    let ink = if cell.is_some_and(|v| scale(v) > 0.6) {
        BLACK
    } else {
        WHITE
    };
    let style = TextStyle::from(("sans-serif", 14).into_font())
        .color(&ink)
        .pos(Pos::new(HPos::Center, VPos::Center));
    let at = (SegmentValue::CenterOf(x), SegmentValue::CenterOf(y));
    chart
        .draw_series([Text::new(text, at, style)])
        .map_err(io)?;
    Ok(())
}

/// The colour bar: the gradient from the smallest to the largest mean,
/// with tidy ticks.
fn draw_bar(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    lo: f64,
    hi: f64,
) -> std::io::Result<()> {
    const STEPS: usize = 64;
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, lo + 0.5)
    };
    let mut chart = ChartBuilder::on(area)
        .margin_top(15)
        .margin_bottom(60)
        .margin_right(20)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..1.0, lo..hi)
        .map_err(io)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(6)
        .label_style(("sans-serif", 13))
        .y_label_formatter(&|v| tidy(*v))
        .draw()
        .map_err(io)?;
    let step = (hi - lo) / STEPS as f64;
    chart
        .draw_series((0..STEPS).map(|i| {
            let a = lo + step * i as f64;
            Rectangle::new(
                [(0.0, a), (1.0, a + step)],
                colour((i as f64 + 0.5) / STEPS as f64).filled(),
            )
        }))
        .map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::spec::{Param, PlotOptions, RunKey};

    fn spec(params: Vec<Param>) -> SweepSpec {
        SweepSpec {
            scenario_name: "t".into(),
            scenario_text: "x".into(),
            params,
            seeds: 1..3,
            metrics: vec!["m".into()],
            plot: PlotOptions::default(),
            series: false,
        }
    }

    /// Point `p`, seed `s`: the value `10 p + s` (point 4 failed).
    fn rows(points: usize) -> Vec<RunRow> {
        (0..points)
            .flat_map(|point| {
                (1..3).map(move |seed| RunRow {
                    key: RunKey { point, seed },
                    metrics: (point != 4).then(|| vec![Some((10 * point) as f64 + seed as f64)]),
                    digest: String::new(),
                })
            })
            .collect()
    }

    #[test]
    fn cells_are_first_field_across_second_up() {
        let s = spec(vec![
            Param::new("a", &["1", "2"]),
            Param::new("b", &["x", "y", "z"]),
        ]);
        let g = grid(&s, &rows(6), 0);
        // Point = x · 3 + y; mean over seeds 1 and 2 is 10 p + 1.5.
        assert_eq!(g.len(), 3);
        assert_eq!(g[0], vec![Some(1.5), Some(31.5)]);
        assert_eq!(g[2], vec![Some(21.5), Some(51.5)]);
        assert_eq!(g[1], vec![Some(11.5), None]);
    }

    #[test]
    fn only_two_field_grids_get_heat_maps() {
        let dir = std::env::temp_dir().join(format!("idlegrid-heat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let one = spec(vec![Param::new("a", &["1", "2"])]);
        assert!(write_heatmaps(&dir, &one, &rows(2)).unwrap().is_empty());
        let two = spec(vec![
            Param::new("a.b", &["1", "2"]),
            Param::new("c", &["x", "y", "z"]),
        ]);
        let files = write_heatmaps(&dir, &two, &rows(6)).unwrap();
        assert_eq!(files, vec![dir.join("heatmap_m.svg")]);
        let svg = std::fs::read_to_string(&files[0]).unwrap();
        for text in ["51.5", "1.5", "n/a", "a.b", "t: mean m (2 seeds)"] {
            assert!(svg.contains(text), "{text}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn colours_run_from_dark_to_light() {
        assert_eq!(colour(0.0), RGBColor(68, 1, 84));
        assert_eq!(colour(1.0), RGBColor(253, 231, 37));
        assert_eq!(colour(f64::NAN), colour(0.0));
        let lum = |c: RGBColor| 0.3 * c.0 as f64 + 0.59 * c.1 as f64 + 0.11 * c.2 as f64;
        let l: Vec<f64> = (0..=10).map(|i| lum(colour(i as f64 / 10.0))).collect();
        assert!(l.windows(2).all(|w| w[0] < w[1]), "{l:?}");
    }
}
