//! Node identities inside a simulation and what a node factory receives.

use core::fmt;

use idlegrid_primitives::{Duration, NodeId, Seed, Timestamp};
use serde::{Deserialize, Serialize};

use crate::network::{Bandwidth, RegionId};

/// A node's position in the simulation (0-based), stable across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeIndex(u32);

impl NodeIndex {
    /// Wraps a raw index.
    pub const fn new(i: u32) -> Self {
        Self(i)
    }
    /// The raw index as `usize`.
    pub const fn get(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for NodeIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// Where a node sits and how fast it uploads and downloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSpec {
    /// Its region.
    pub region: RegionId,
    /// Its upload bandwidth, or `None` for the network default.
    pub upload: Option<Bandwidth>,
    /// Its download bandwidth, or `None` for the network default.
    pub download: Option<Bandwidth>,
    /// Extra delay added to every message it sends (a slow or deliberately
    /// delaying node).
    pub egress_delay: Duration,
}

impl NodeSpec {
    /// A node in `region` with the default bandwidth.
    pub const fn in_region(region: RegionId) -> Self {
        Self {
            region,
            upload: None,
            download: None,
            egress_delay: Duration::ZERO,
        }
    }
}

/// Everything a node factory needs to build (or rebuild) a machine.
///
/// A crashed node loses its state; on restart the factory is called again
/// with the same `index`, `id` and `key_seed` and the next `incarnation`.
#[derive(Debug, Clone, Copy)]
pub struct NodeContext<'a> {
    /// The node's index.
    pub index: NodeIndex,
    /// The node's identity (the public key of `Keypair::from_seed(key_seed)`).
    pub id: NodeId,
    /// Seed of the node's long-term key; stable across restarts.
    pub key_seed: Seed,
    /// Seed of this incarnation's RNG (derived from the root seed).
    pub seed: Seed,
    /// 0 at the start, +1 at each restart.
    pub incarnation: u32,
    /// The node's region.
    pub region: RegionId,
    /// When the machine is (re)built.
    pub now: Timestamp,
    /// Identities of every node, by index.
    pub nodes: &'a [NodeId],
}
