//! Regions and the one-way latency matrix between them.

use core::fmt;

use idlegrid_primitives::Duration;
use serde::{Deserialize, Serialize};

/// Index of a region in a [`Regions`] table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RegionId(u16);

impl RegionId {
    /// Wraps a raw index.
    pub const fn new(i: u16) -> Self {
        Self(i)
    }
    /// The raw index.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for RegionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "region{}", self.0)
    }
}

/// Named regions and a one-way base latency for every ordered pair
/// (`latency(a, b)` need not equal `latency(b, a)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regions {
    names: Vec<String>,
    /// Row-major `n × n`, one-way latency in microseconds.
    latency_us: Vec<u64>,
}

/// The most regions a table may hold.
pub const MAX_REGIONS: usize = 64;

/// The names of the built-in six-region world table, in order.
pub const WORLD6: [&str; 6] = [
    "us-east",
    "us-west",
    "eu-central",
    "ap-northeast",
    "ap-southeast",
    "sa-east",
];

/// One-way latencies in milliseconds for [`WORLD6`]: half of typical public
/// cloud inter-region round-trip times (Virginia, Oregon, Frankfurt, Tokyo,
/// Singapore, São Paulo); 1 ms within a region.
const WORLD6_MS: [[u64; 6]; 6] = [
    //  use  usw  euc  apne apse  sae
    [1, 33, 45, 75, 110, 58],   // us-east
    [33, 1, 75, 50, 83, 88],    // us-west
    [45, 75, 1, 113, 80, 100],  // eu-central
    [75, 50, 113, 1, 35, 128],  // ap-northeast
    [110, 83, 80, 35, 1, 163],  // ap-southeast
    [58, 88, 100, 128, 163, 1], // sa-east
];

/// One-way latency inside [`Regions::datacenter`], µs.
pub const DATACENTER_ONE_WAY_US: u64 = 250;

impl Regions {
    /// A table from names and a square matrix of one-way latencies.
    ///
    /// # Panics
    /// If the matrix is not `names.len()` square, the table is empty or
    /// larger than [`MAX_REGIONS`] (scenario loading validates these first).
    pub fn new(names: Vec<String>, latency: Vec<Vec<Duration>>) -> Self {
        let n = names.len();
        assert!((1..=MAX_REGIONS).contains(&n), "1..={MAX_REGIONS} regions");
        assert_eq!(
            latency.len(),
            n,
            "latency matrix must have one row per region"
        );
        let mut latency_us = Vec::with_capacity(n * n);
        for row in &latency {
            assert_eq!(row.len(), n, "latency matrix must be square");
            latency_us.extend(row.iter().map(|d| d.as_micros()));
        }
        Self { names, latency_us }
    }

    /// The built-in six world regions (see [`WORLD6`]).
    pub fn world6() -> Self {
        Self::new(
            WORLD6.iter().map(|s| s.to_string()).collect(),
            WORLD6_MS
                .iter()
                .map(|row| row.iter().map(|ms| Duration::from_millis(*ms)).collect())
                .collect(),
        )
    }

    /// One datacenter: a single region `dc` with 0.25 ms one way (0.5 ms
    /// round trip, a typical intra-datacenter RTT).
    pub fn datacenter() -> Self {
        Self::new(
            vec!["dc".into()],
            vec![vec![Duration::from_micros(DATACENTER_ONE_WAY_US)]],
        )
    }

    /// A single region with the given local latency (for tests).
    pub fn single(latency: Duration) -> Self {
        Self::new(vec!["local".into()], vec![vec![latency]])
    }

    /// Number of regions.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the table is empty (never, by construction).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Name of a region.
    pub fn name(&self, r: RegionId) -> &str {
        &self.names[r.index()]
    }

    /// The region with this name.
    pub fn find(&self, name: &str) -> Option<RegionId> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| RegionId::new(i as u16))
    }

    /// One-way base latency from `a` to `b`.
    pub fn latency(&self, a: RegionId, b: RegionId) -> Duration {
        Duration::from_micros(self.latency_us[a.index() * self.len() + b.index()])
    }

    /// All region ids in order.
    pub fn ids(&self) -> impl Iterator<Item = RegionId> + '_ {
        (0..self.len()).map(|i| RegionId::new(i as u16))
    }
}

impl Default for Regions {
    fn default() -> Self {
        Self::world6()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world6_is_plausible() {
        let r = Regions::world6();
        assert_eq!(r.len(), 6);
        for a in r.ids() {
            assert_eq!(r.latency(a, a), Duration::from_millis(1));
            for b in r.ids() {
                assert_eq!(r.latency(a, b), r.latency(b, a));
                assert!(r.latency(a, b) <= Duration::from_millis(200));
            }
        }
        let use1 = r.find("us-east").unwrap();
        let euc = r.find("eu-central").unwrap();
        assert_eq!(r.latency(use1, euc), Duration::from_millis(45));
    }
}
