//! What a sweep is — a scenario, a grid of field values, seeds, metrics and
//! plot options — its digest, and its shards.
//!
//! The runs of a sweep are the grid points (the first field outermost) ×
//! the seeds, in that order. Shard `I/N` takes the runs whose position `k`
//! has `k % N == I − 1`, so the shards are disjoint, cover every run, and
//! each gets a share of every grid point.
//!
//! ```
//! use idlegrid_sim::sweep::{Param, Shard, SweepSpec};
//! let spec = SweepSpec {
//!     scenario_name: "t".into(),
//!     scenario_text: "name = \"t\"".into(),
//!     params: vec![Param::new("a", &["1", "2"]), Param::new("b", &["x", "y", "z"])],
//!     seeds: 1..3,
//!     metrics: vec!["events".into()],
//!     plot: Default::default(),
//!     series: false,
//! };
//! assert_eq!(spec.points().len(), 6);
//! assert_eq!(spec.runs().len(), 12);
//! let shard: Shard = "2/5".parse().unwrap();
//! assert_eq!(spec.shard_runs(shard).unwrap().len(), 3); // runs 1, 6 and 11 of 0..12
//! assert!("6/5".parse::<Shard>().is_err());
//! ```

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::SweepError;

/// One swept field and its values (as given: TOML literals or bare words).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    /// Dotted TOML path of the field.
    pub path: String,
    /// Its values, in the order given.
    pub values: Vec<String>,
}

impl Param {
    /// A field with its values.
    pub fn new(path: &str, values: &[&str]) -> Self {
        Self {
            path: path.to_string(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }
}

/// Axis scales of the plots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlotOptions {
    /// Logarithmic x axis (the first swept field).
    pub log_x: bool,
    /// Logarithmic y axis (the metric).
    pub log_y: bool,
}

/// A whole sweep: everything its outputs depend on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepSpec {
    /// The scenario's `name` (plot titles).
    pub scenario_name: String,
    /// The scenario's TOML text, before any field is set.
    pub scenario_text: String,
    /// The grid: every combination of these fields' values.
    pub params: Vec<Param>,
    /// Seeds, end exclusive.
    pub seeds: Range<u64>,
    /// summary.json metrics (dotted paths) in the CSV and the plots.
    pub metrics: Vec<String>,
    /// Plot scales.
    pub plot: PlotOptions,
    /// Keep every run's per-second series (`--series`): `series/*.csv` and,
    /// for the marketplace, `price_over_time.svg`.
    #[serde(default)]
    pub series: bool,
}

/// One run of a sweep: a grid point (index into [`SweepSpec::points`]) and
/// a seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunKey {
    /// Grid point.
    pub point: usize,
    /// Seed.
    pub seed: u64,
}

/// Most runs one sweep may have.
pub const MAX_RUNS: usize = 10_000_000;

impl SweepSpec {
    /// Every grid point: one value per field, the first field outermost
    /// (one empty point when no field is swept).
    pub fn points(&self) -> Vec<Vec<String>> {
        self.params.iter().fold(vec![Vec::new()], |acc, p| {
            acc.iter()
                .flat_map(|pre| {
                    p.values.iter().map(move |v| {
                        let mut point = pre.clone();
                        point.push(v.clone());
                        point
                    })
                })
                .collect()
        })
    }

    /// Grid point `i` as `a = 1, b = x`.
    pub fn describe(&self, i: usize) -> String {
        let points = self.points();
        self.params
            .iter()
            .zip(&points[i])
            .map(|(p, v)| format!("{} = {v}", p.path))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Number of runs (grid points × seeds), without building the grid.
    pub fn run_count(&self) -> usize {
        let points = self
            .params
            .iter()
            .fold(1usize, |n, p| n.saturating_mul(p.values.len()));
        let seeds =
            usize::try_from(self.seeds.end.saturating_sub(self.seeds.start)).unwrap_or(usize::MAX);
        points.saturating_mul(seeds)
    }

    /// Every run, by grid point then seed.
    pub fn runs(&self) -> Vec<RunKey> {
        let seeds = self.seeds.clone();
        (0..self.points().len())
            .flat_map(|point| seeds.clone().map(move |seed| RunKey { point, seed }))
            .collect()
    }

    /// The runs of `shard`; an error if the shard does not fit the sweep.
    pub fn shard_runs(&self, shard: Shard) -> Result<Vec<RunKey>, SweepError> {
        let total = self.run_count();
        if shard.count as usize > total {
            return Err(SweepError::Shard(format!(
                "{shard}: a sweep of {total} runs has at most {total} shards"
            )));
        }
        Ok(self
            .runs()
            .into_iter()
            .enumerate()
            .filter(|(k, _)| shard.owns(*k))
            .map(|(_, r)| r)
            .collect())
    }

    /// Checks the grid's shape: fields named once, values present and
    /// CSV-safe, and not too many runs.
    pub fn check(&self) -> Result<(), SweepError> {
        for (i, p) in self.params.iter().enumerate() {
            if self.params[..i].iter().any(|q| q.path == p.path) {
                return Err(SweepError::Grid(format!("`{}` is swept twice", p.path)));
            }
            if p.values.is_empty() {
                return Err(SweepError::Grid(format!("`{}` has no values", p.path)));
            }
            let twice = (1..p.values.len()).find(|&k| p.values[..k].contains(&p.values[k]));
            if let Some(v) = twice.map(|k| &p.values[k]) {
                return Err(SweepError::Grid(format!(
                    "`{}`: value `{v}` is given twice",
                    p.path
                )));
            }
            if let Some(v) = p.values.iter().find(|v| v.contains([',', '"', '\n'])) {
                return Err(SweepError::Grid(format!(
                    "`{}`: value `{v}` may not hold a comma, quote or newline",
                    p.path
                )));
            }
        }
        if self.run_count() > MAX_RUNS {
            return Err(SweepError::Grid(format!(
                "{} runs; a sweep may have at most {MAX_RUNS}",
                self.run_count()
            )));
        }
        Ok(())
    }

    /// The sweep digest (hex): blake3 over the scenario text, the grid, the
    /// seeds, the metrics and the plot options. Shards of one sweep share
    /// it; `sweep merge` refuses shards whose digests differ.
    pub fn digest(&self) -> String {
        let canonical = serde_json::to_vec(self).expect("a spec serializes");
        let mut h = blake3::Hasher::new();
        h.update(b"idlegrid/sim/sweep-spec");
        h.update(&canonical);
        h.finalize().to_hex().to_string()
    }
}

/// Shard `index` of `count` (`--shard I/N`, 1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shard {
    /// 1..=count.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

impl Shard {
    /// Whether run position `k` of the sweep belongs to this shard.
    pub fn owns(&self, k: usize) -> bool {
        k % self.count as usize == (self.index - 1) as usize
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "shard {}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = SweepError;

    fn from_str(s: &str) -> Result<Self, SweepError> {
        let bad = |why: &str| SweepError::Shard(format!("`{s}`: {why}"));
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| bad("expected I/N (e.g. 2/8)"))?;
        let index: u32 = i.trim().parse().map_err(|_| bad("I is not a number"))?;
        let count: u32 = n.trim().parse().map_err(|_| bad("N is not a number"))?;
        if count == 0 {
            return Err(bad("N must be at least 1"));
        }
        if index == 0 || index > count {
            return Err(bad(&format!("I must be in 1..={count}")));
        }
        Ok(Self { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(params: Vec<Param>, seeds: Range<u64>) -> SweepSpec {
        SweepSpec {
            scenario_name: "t".into(),
            scenario_text: "x".into(),
            params,
            seeds,
            metrics: vec!["events".into()],
            plot: PlotOptions::default(),
            series: false,
        }
    }

    #[test]
    fn shards_partition_the_runs() {
        let s = spec(
            vec![
                Param::new("a", &["1", "2", "3"]),
                Param::new("b", &["x", "y"]),
            ],
            5..9,
        );
        assert_eq!(s.points()[1], vec!["1".to_string(), "y".to_string()]);
        let all = s.runs();
        assert_eq!(all.len(), s.run_count());
        for n in [1, 3, 7, 24] {
            let mut joined: Vec<RunKey> = (1..=n)
                .flat_map(|i| s.shard_runs(Shard { index: i, count: n }).unwrap())
                .collect();
            joined.sort();
            assert_eq!(joined, all, "{n} shards");
        }
        assert!(
            s.shard_runs(Shard {
                index: 1,
                count: 25
            })
            .is_err()
        );
    }

    #[test]
    fn digest_covers_every_part() {
        let base = spec(vec![Param::new("a", &["1", "2"])], 1..3);
        let mut variants = vec![base.clone(); 5];
        variants[0].scenario_text.push(' ');
        variants[1].params[0].values[1] = "3".into();
        variants[2].seeds = 1..4;
        variants[3].metrics.push("seed".into());
        variants[4].plot.log_y = true;
        for v in &variants {
            assert_ne!(v.digest(), base.digest());
        }
        assert_eq!(base.clone().digest(), base.digest());
    }

    #[test]
    fn bad_shards_and_grids() {
        for s in ["0/3", "4/3", "1/0", "x/3", "2", "1/y"] {
            assert!(s.parse::<Shard>().is_err(), "{s}");
        }
        let twice = spec(vec![Param::new("a", &["1"]), Param::new("a", &["2"])], 1..2);
        assert!(twice.check().is_err());
        let empty = spec(vec![Param::new("a", &[])], 1..2);
        assert!(empty.check().is_err());
    }
}
