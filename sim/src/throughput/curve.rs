//! From a throughput sweep's rows to one latency–throughput curve per
//! committee size, and each curve's saturation point.
//!
//! **Saturation** (as Narwhal and Mysticeti read their curves): the point
//! of highest committed throughput among the loads the committee still
//! keeps up with — where the committed rate is at least
//! [`KEEPS_UP`] (95 %) of the offered one. Beyond it, more offered load
//! adds latency (queues at the CPU, the links or the mempool) and no
//! throughput.
//!
//! ```
//! use idlegrid_sim::throughput::curve::{Point, saturation};
//! let p = |offered: f64, committed: f64| Point {
//!     offered,
//!     committed,
//!     p50_ms: 0.0,
//!     p99_ms: 0.0,
//!     p50_quorum_delays: 0.0,
//!     p99_quorum_delays: 0.0,
//!     ideal_ms: 0.0,
//!     inclusion_wait_p50_ms: 0.0,
//!     leader_p50_ms: 0.0,
//!     block_p50_ms: 0.0,
//!     seeds: 1,
//! };
//! // Keeps up to 20 000 tx/s; at 40 000 it commits only 26 000.
//! let pts = [p(10e3, 10e3), p(20e3, 19.5e3), p(40e3, 26e3)];
//! assert_eq!(saturation(&pts), Some(1));
//! ```

use crate::sweep::{RunRow, SweepSpec};

use super::METRICS;

/// The committed share of the offered load a committee must reach to be
/// said to keep up with it.
pub const KEEPS_UP: f64 = 0.95;

/// One load of one committee size: means over its successful seeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Offered load, tx/s.
    pub offered: f64,
    /// Steady committed throughput, tx/s.
    pub committed: f64,
    /// Median transaction commit latency, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Median in quorum delays (a third of the ideal three-hop latency).
    pub p50_quorum_delays: f64,
    /// 99th percentile in quorum delays.
    pub p99_quorum_delays: f64,
    /// The ideal three-hop commit latency on the run's matrix, ms.
    pub ideal_ms: f64,
    /// Median wait of a transaction for its validator's block, ms.
    pub inclusion_wait_p50_ms: f64,
    /// Median leader block proposal → commit, ms (the protocol's three
    /// message delays).
    pub leader_p50_ms: f64,
    /// Median non-leader block proposal → commit, ms.
    pub block_p50_ms: f64,
    /// Seeds that ran.
    pub seeds: usize,
}

/// One committee size's points, by rising offered load.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// Validators.
    pub size: usize,
    /// Its loads.
    pub points: Vec<Point>,
    /// Index of the saturation point in `points` ([`saturation`]).
    pub saturation: Option<usize>,
}

/// The saturation point of points by rising load (see the module docs):
/// `None` when the committee keeps up with none of them.
pub fn saturation(points: &[Point]) -> Option<usize> {
    points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.committed >= KEEPS_UP * p.offered)
        .max_by(|a, b| a.1.committed.total_cmp(&b.1.committed))
        .map(|(i, _)| i)
}

/// The curves of a throughput sweep (`spec` from
/// [`Plan::spec`](super::Plan::spec)): one per size in the order given,
/// each point the mean over the seeds that ran; loads where every seed
/// failed are left out.
pub fn curves(spec: &SweepSpec, rows: &[RunRow]) -> Vec<Curve> {
    assert_eq!(spec.metrics, METRICS, "a throughput sweep's metrics");
    let (loads, sizes) = (&spec.params[0].values, &spec.params[1].values);
    sizes
        .iter()
        .enumerate()
        .map(|(si, size)| {
            let points: Vec<Point> = (0..loads.len())
                .filter_map(|li| point(rows, li * sizes.len() + si))
                .collect();
            Curve {
                size: size.parse().unwrap_or(0),
                saturation: saturation(&points),
                points,
            }
        })
        .collect()
}

/// The mean over the successful runs of grid point `at`.
fn point(rows: &[RunRow], at: usize) -> Option<Point> {
    let runs: Vec<&Vec<Option<f64>>> = rows
        .iter()
        .filter(|r| r.key.point == at)
        .filter_map(|r| r.metrics.as_ref())
        .collect();
    let mean = |m: usize| {
        let v: Vec<f64> = runs.iter().filter_map(|r| r[m]).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    Some(Point {
        offered: mean(0)?,
        committed: mean(1)?,
        p50_ms: mean(2)?,
        p99_ms: mean(3)?,
        p50_quorum_delays: mean(4)?,
        p99_quorum_delays: mean(5)?,
        ideal_ms: mean(6)?,
        inclusion_wait_p50_ms: mean(8)?,
        leader_p50_ms: mean(9)?,
        block_p50_ms: mean(10)?,
        seeds: runs.len(),
    })
}

/// The README table: per size, the saturation throughput and the
/// low-load (first load) latency in ms and in quorum delays beside the
/// ideal three-hop latency, and where the low-load latency goes: the wait
/// for a block, leader and non-leader blocks' proposal → commit over the
/// ideal (Markdown).
pub fn table(curves: &[Curve]) -> String {
    let mut out = String::from(
        "| validators | saturation (committed tx/s) | at offered tx/s | low-load p50 ms | low-load p99 ms | p50 in quorum delays | ideal 3-hop ms | p50 / ideal | wait for block p50 ms | leader block p50 / ideal | other block p50 / ideal |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for c in curves {
        let sat = c.saturation.map(|i| c.points[i]);
        let low = c.points.first();
        let f = |v: Option<f64>| v.map_or("—".into(), |x| format!("{x:.0}"));
        let g = |v: Option<f64>| v.map_or("—".into(), |x| format!("{x:.2}"));
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            c.size,
            f(sat.map(|p| p.committed)),
            f(sat.map(|p| p.offered)),
            f(low.map(|p| p.p50_ms)),
            f(low.map(|p| p.p99_ms)),
            g(low.map(|p| p.p50_quorum_delays)),
            f(low.map(|p| p.ideal_ms)),
            g(low.map(|p| p.p50_ms / p.ideal_ms)),
            f(low.map(|p| p.inclusion_wait_p50_ms)),
            g(low.map(|p| p.leader_p50_ms / p.ideal_ms)),
            g(low.map(|p| p.block_p50_ms / p.ideal_ms)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::{Param, RunKey};

    fn spec() -> SweepSpec {
        SweepSpec {
            scenario_name: "throughput".into(),
            scenario_text: String::new(),
            params: vec![
                Param::new("consensus.total_tx_per_second", &["1000.0", "2000.0"]),
                Param::new("nodes.count", &["10", "50"]),
            ],
            seeds: 1..3,
            metrics: METRICS.iter().map(|m| m.to_string()).collect(),
            plot: Default::default(),
            series: false,
        }
    }

    fn row(point: usize, seed: u64, offered: f64, committed: f64, p50: f64) -> RunRow {
        let m = [
            offered,
            committed,
            p50,
            2.0 * p50,
            p50 / 100.0,
            0.0,
            300.0,
            0.0,
            40.0,
            330.0,
            450.0,
        ];
        RunRow {
            key: RunKey { point, seed },
            metrics: Some(m.iter().map(|v| Some(*v)).collect()),
            digest: "d".into(),
        }
    }

    #[test]
    fn rows_fold_into_one_curve_per_size_by_load() {
        // Points: (1000, 10), (1000, 50), (2000, 10), (2000, 50).
        let rows = vec![
            row(0, 1, 1000.0, 1000.0, 400.0),
            row(0, 2, 1000.0, 990.0, 600.0),
            row(1, 1, 1000.0, 1000.0, 500.0),
            row(2, 1, 2000.0, 2000.0, 450.0),
            row(3, 1, 2000.0, 1500.0, 900.0),
            RunRow {
                key: RunKey { point: 3, seed: 2 },
                metrics: None,
                digest: String::new(),
            },
        ];
        let c = curves(&spec(), &rows);
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].size, c[1].size), (10, 50));
        assert_eq!(c[0].points[0].committed, 995.0);
        assert_eq!(c[0].points[0].p50_ms, 500.0);
        assert_eq!(c[0].points[0].seeds, 2);
        assert_eq!(c[1].points[1].seeds, 1);
        // 10 keeps up at both loads; 50 falls behind at 2000 (75 %).
        assert_eq!(c[0].saturation, Some(1));
        assert_eq!(c[1].saturation, Some(0));
        let t = table(&c);
        assert!(
            t.contains("| 10 | 2000 | 2000 | 500 | 1000 | 5.00 | 300 | 1.67 | 40 | 1.10 | 1.50 |"),
            "{t}"
        );
        assert!(t.contains("| 50 | 1000 | 1000 |"), "{t}");
    }

    #[test]
    fn a_committee_that_never_keeps_up_has_no_saturation_point() {
        let p = Point {
            offered: 100.0,
            committed: 50.0,
            p50_ms: 1.0,
            p99_ms: 1.0,
            p50_quorum_delays: 1.0,
            p99_quorum_delays: 1.0,
            ideal_ms: 1.0,
            inclusion_wait_p50_ms: 1.0,
            leader_p50_ms: 1.0,
            block_p50_ms: 1.0,
            seeds: 1,
        };
        assert_eq!(saturation(&[p, p]), None);
        assert_eq!(saturation(&[]), None);
    }
}
