//! What a run reports: counters, per-second activity, digest checkpoints.

use idlegrid_primitives::{Digest, Timestamp};
use serde::Serialize;

use crate::metrics::Percentiles;

/// Why a run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Virtual time reached the bound.
    TimeLimit,
    /// The event count reached the bound.
    EventLimit,
    /// No event was pending.
    Idle,
}

/// Network counters of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NetStats {
    /// Messages handed to the network (one per recipient).
    pub sent: u64,
    /// Messages handed to a live recipient.
    pub delivered: u64,
    /// Bytes handed to the network.
    pub bytes_sent: u64,
    /// Bytes delivered.
    pub bytes_delivered: u64,
    /// Dropped by random loss.
    pub dropped_loss: u64,
    /// Dropped because the link was cut (at send or at arrival).
    pub dropped_partition: u64,
    /// Dropped because the recipient was down on arrival.
    pub dropped_crashed: u64,
    /// Dropped because the link's in-flight bound was reached.
    pub dropped_overflow: u64,
    /// Addressed to an id no node has.
    pub dropped_unknown: u64,
    /// Timers fired.
    pub timers: u64,
    /// Faults applied.
    pub faults: u64,
    /// Application events emitted by machines.
    pub app_events: u64,
}

impl NetStats {
    /// All drops.
    pub fn dropped(&self) -> u64 {
        self.dropped_loss
            + self.dropped_partition
            + self.dropped_crashed
            + self.dropped_overflow
            + self.dropped_unknown
    }
}

/// Per-second network activity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SecondStats {
    /// Messages delivered in this second.
    pub delivered: u64,
    /// Bytes delivered in this second.
    pub bytes_delivered: u64,
    /// Messages dropped in this second.
    pub dropped: u64,
    /// Application events in this second.
    pub app_events: u64,
}

/// The running digest after a given number of events (for diffing runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Events processed.
    pub events: u64,
    /// Virtual time of the last of them.
    pub at: Timestamp,
    /// The run digest at that point.
    pub digest: Digest,
}

/// Progress of a long run, for progress bars.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Current virtual time.
    pub now: Timestamp,
    /// Events processed.
    pub events: u64,
    /// The virtual-time bound.
    pub max_time: Timestamp,
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The root seed.
    pub seed: u64,
    /// Virtual time at the end.
    pub virtual_time: Timestamp,
    /// Events processed (deliveries, timers, faults).
    pub events: u64,
    /// The run digest.
    pub digest: Digest,
    /// Why the run stopped.
    pub stop: StopReason,
    /// Network counters.
    pub stats: NetStats,
    /// Send-to-arrival time of delivered messages, µs.
    pub message_latency_us: Percentiles,
    /// Wait for the sender's uplink (bandwidth queueing), µs.
    pub upload_wait_us: Percentiles,
    /// Per-second network activity.
    pub series: Vec<SecondStats>,
    /// Digest checkpoints every [`CHECKPOINT_EVERY`](super::CHECKPOINT_EVERY) events.
    pub checkpoints: Vec<Checkpoint>,
}
