//! The network model: regions and latency, jitter, per-node upload and
//! download bandwidth, random loss, partitions, and the per-link state
//! behind them.
//!
//! A message from `a` to `b` of `size` bytes sent at `now`:
//!
//! 1. is dropped if the link `a → b` is cut by a partition;
//! 2. is lost with probability `loss` (a draw from the link's own RNG);
//! 3. is **transmitted**, in one of two models:
//!    - *uplink FIFO* (every downlink unlimited, the default): it waits for
//!      `a`'s uplink (messages leave one after another, so a broadcast of
//!      a big block to 99 peers costs 99 transmissions) and then takes
//!      `size / upload_bandwidth` to leave;
//!    - *max-min fair* (some node has a finite `download` bandwidth): the
//!      link `a → b` is a connection whose messages go one after another;
//!      all busy connections share every node's uplink and downlink
//!      max-min fairly ([`fair`]), so a transfer never goes faster than
//!      the slower of `a`'s uplink and `b`'s downlink, a broadcast's 99
//!      copies share `a`'s uplink, and 99 blocks arriving at once share
//!      `b`'s downlink;
//! 4. arrives after the end of its transmission plus the one-way base
//!    latency of `(region(a), region(b))` plus a uniform jitter in
//!    `[0, jitter × base)` plus `a`'s egress delay (a slow or delaying
//!    node); with `fifo` a link never reorders;
//! 5. is dropped on arrival if the link has been cut meanwhile or `b` is
//!    down.
//!
//! At most `max_in_flight_per_link` messages may be in flight (queued or
//! propagating) on one link; more are dropped and counted.
//!
//! Nothing here is `n²`: a link's state exists once it has carried a
//! message (`LinkTable`), and partitions and blocks are kept as the lists
//! of nodes they name (`Cuts`), so a run's memory follows the links its
//! nodes use and a partition of `k` nodes costs `O(k log k)` to apply.
//!
//! The uplink-FIFO model is the one every run used before download limits
//! existed; it stays the default so that the built-in scenarios' digests
//! and speed do not change. The `throughput` scenario sets a download
//! limit. [`quorum`] computes, from a latency matrix, the commit latency an
//! ideal three-message-delay protocol would reach on it.

mod cuts;
pub mod fair;
pub mod hops;
mod link;
pub mod quorum;
mod regions;

pub(crate) use cuts::Cuts;
pub use fair::FairShare;
pub use link::LinkRng;
pub(crate) use link::{LinkSlot, LinkState, LinkTable};
pub use regions::{MAX_REGIONS, RegionId, Regions, WORLD6};

use idlegrid_primitives::Duration;
use serde::{Deserialize, Serialize};

/// A link or uplink rate in bits per second; zero means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Bandwidth(u64);

impl Bandwidth {
    /// No limit: messages leave instantly.
    pub const UNLIMITED: Bandwidth = Bandwidth(0);

    /// From bits per second (zero means unlimited).
    pub const fn from_bits_per_sec(bps: u64) -> Self {
        Self(bps)
    }
    /// From megabits per second (saturating).
    pub const fn from_mbps(mbps: u64) -> Self {
        Self(mbps.saturating_mul(1_000_000))
    }
    /// Bits per second; zero means unlimited.
    pub const fn bits_per_sec(self) -> u64 {
        self.0
    }
    /// Whether there is no limit.
    pub const fn is_unlimited(self) -> bool {
        self.0 == 0
    }
    /// How long `bytes` take to leave at this rate (rounded up to a µs).
    pub fn transmit_time(self, bytes: u64) -> Duration {
        if self.0 == 0 {
            return Duration::ZERO;
        }
        let bits = u128::from(bytes) * 8 * 1_000_000;
        let us = bits.div_ceil(u128::from(self.0));
        Duration::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
    }
}

/// How the network behaves (before scheduled faults change it).
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Regions and their one-way latency matrix.
    pub regions: Regions,
    /// Extra uniform delay in `[0, jitter × base latency)`; `0.1` = up to +10%.
    pub jitter: f64,
    /// Probability that a message is lost, in `[0, 1]`.
    pub loss: f64,
    /// Default upload bandwidth of every node (a node may override it).
    pub upload: Bandwidth,
    /// Default download bandwidth of every node (a node may override it);
    /// any finite one switches on the max-min fair model.
    pub download: Bandwidth,
    /// Bound on messages in flight on one directed link; more are dropped.
    pub max_in_flight_per_link: u32,
    /// Links deliver in order (like a TCP stream) even with jitter.
    pub fifo: bool,
}

impl Default for NetworkConfig {
    /// The six world regions, 10% jitter, no loss, 1 Gbit/s uplinks,
    /// unlimited downlinks.
    fn default() -> Self {
        Self {
            regions: Regions::world6(),
            jitter: 0.1,
            loss: 0.0,
            upload: Bandwidth::from_mbps(1_000),
            download: Bandwidth::UNLIMITED,
            max_in_flight_per_link: 100_000,
            fifo: true,
        }
    }
}

impl NetworkConfig {
    /// A single-region network with a fixed latency, no jitter, no loss and
    /// unlimited bandwidth (for tests).
    pub fn ideal(latency: Duration) -> Self {
        Self {
            regions: Regions::single(latency),
            jitter: 0.0,
            loss: 0.0,
            upload: Bandwidth::UNLIMITED,
            download: Bandwidth::UNLIMITED,
            max_in_flight_per_link: 100_000,
            fifo: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmit_time() {
        // 1 MB at 8 Mbit/s = 1 s.
        assert_eq!(
            Bandwidth::from_mbps(8).transmit_time(1_000_000),
            Duration::from_secs(1)
        );
        assert_eq!(Bandwidth::UNLIMITED.transmit_time(u64::MAX), Duration::ZERO);
        assert_eq!(
            Bandwidth::from_bits_per_sec(3).transmit_time(1),
            Duration::from_micros(2_666_667)
        );
    }
}
