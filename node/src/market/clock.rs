//! Live time: consensus time with its stalls taken out, the time every
//! deadline the marketplace grants a party (a round's stages, a matched
//! lot's plan, a referee ticket window) is measured in.
//!
//! Consensus time is the honest validators' clocks (a commit's median
//! parent timestamp), so it runs on through a stall — a partition without
//! quorum, an outage — during which nothing commits. Measured in it, a
//! 40 s stall would pass every 15 s stage deadline at the first commit
//! after it: a delivery, a plan or a verification that waited in a
//! mempool all along would be refused as late, and the honest party
//! slashed or its bond burned for the network's fault. Live time advances
//! by each commit's step in consensus time, but by at most [`STALL_STEP`]
//! per commit: a stall costs a deadline at most that much, and the
//! transactions queued during it land in the commits that follow.
//!
//! The stall time taken out stays out: live time trails consensus time by
//! the sum of every stall's excess. Deadlines are replicated state only;
//! a light node never compares one to its own clock in a way that would
//! make it act *later* (a client plans held lots early; a provider forgets
//! an unopened lot by count, not by time). Absolute times a user chose
//! (a job's bidding deadline) and the sealed-bid batches (stretched over a
//! stall by their own commit count) stay in consensus time.
//!
//! ```
//! use idlegrid_node::market::LiveClock;
//! use idlegrid_primitives::Timestamp;
//!
//! let mut c = LiveClock::default();
//! let t = Timestamp::from_millis;
//! c.record(t(1_000));
//! c.record(t(1_300));
//! assert_eq!(c.at(t(1_500)), t(1_500)); // no stall: consensus time
//! // The next commit comes 40 s later: live time advances 2 s only.
//! assert_eq!(c.at(t(41_300)), t(3_300));
//! c.record(t(41_300));
//! assert_eq!(c.at(t(41_500)), t(3_500));
//! ```

use idlegrid_primitives::{Duration, Timestamp};
use serde::{Deserialize, Serialize};

/// Most live time one commit advances: a gap between two commits longer
/// than this is a stall, and only this much of it counts. Commits in a
/// working network are well under a second apart.
pub const STALL_STEP: Duration = Duration::from_secs(2);

/// Live time (see the module docs): replicated state, advanced once per
/// committed batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveClock {
    /// Consensus time of the last recorded batch (`None` before the first).
    last: Option<Timestamp>,
    /// Stall time taken out so far.
    paused: Duration,
}

impl LiveClock {
    /// Live time of a batch at consensus time `now`, given the batches
    /// recorded before it.
    pub fn at(&self, now: Timestamp) -> Timestamp {
        Timestamp::ZERO + self.offset(now)
    }

    /// Records a finished batch at consensus time `now`.
    pub fn record(&mut self, now: Timestamp) {
        self.paused = self.paused.saturating_add(self.excess(now));
        self.last = Some(now.max(self.last.unwrap_or(Timestamp::ZERO)));
    }

    /// Stall time taken out so far.
    pub fn paused(&self) -> Duration {
        self.paused
    }

    /// `now` less every stall's excess, as a duration since zero.
    fn offset(&self, now: Timestamp) -> Duration {
        let total = self.paused.saturating_add(self.excess(now));
        (now - Timestamp::ZERO).saturating_sub(total)
    }

    /// How much of the step from the last batch to `now` is stall.
    fn excess(&self, now: Timestamp) -> Duration {
        self.last
            .map_or(Duration::ZERO, |l| (now - l).saturating_sub(STALL_STEP))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Each batch advances live time by its step in consensus time,
        /// at most [`STALL_STEP`]; live time trails consensus time by the
        /// excess of every longer step, and never runs backwards.
        #[test]
        fn live_time_advances_by_each_step_up_to_the_stall_step(
            start in 0u64..1_000_000_000,
            steps in proptest::collection::vec(0u64..120_000_000, 1..60),
        ) {
            let mut c = LiveClock::default();
            let mut t = Timestamp::from_micros(start);
            prop_assert_eq!(c.at(t), t);
            c.record(t);
            let mut excess = Duration::ZERO;
            for s in steps {
                let before = c.at(t);
                let step = Duration::from_micros(s);
                t = t + step;
                let live = c.at(t);
                prop_assert_eq!(live - before, step.min(STALL_STEP));
                excess = excess.saturating_add(step.saturating_sub(STALL_STEP));
                prop_assert_eq!(t - live, excess);
                c.record(t);
                prop_assert_eq!(c.at(t), live, "recording a batch keeps its live time");
            }
            prop_assert_eq!(c.paused(), excess);
        }
    }
}
