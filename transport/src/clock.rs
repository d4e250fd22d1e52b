//! The real clock, converted to the workspace's virtual [`Timestamp`].

use idlegrid_primitives::{Duration, Timestamp};

/// Wall-clock time since an origin, as a [`Timestamp`] in microseconds.
///
/// This is the one place in the crate that reads the OS clock; machines only
/// ever see the `Timestamp`s it produces. Clones share the origin, so nodes
/// in one process can share a timeline.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: std::time::Instant,
}

impl Clock {
    /// A clock whose [`Timestamp::ZERO`] is now.
    // The runner drives machines with real time; reading the OS clock here is
    // the purpose of this type (the workspace forbids it elsewhere).
    #[allow(clippy::disallowed_methods)]
    pub fn start() -> Self {
        Self {
            origin: std::time::Instant::now(),
        }
    }

    /// A clock whose [`Timestamp::ZERO`] is `origin_unix_micros`
    /// microseconds after the Unix epoch: processes of one network (and a
    /// process restarted later) share a timeline. An origin in the future
    /// reads as now.
    // Reading the wall clock once, to place the origin, is this
    // constructor's purpose.
    #[allow(clippy::disallowed_methods)]
    pub fn since_unix_micros(origin_unix_micros: u64) -> Self {
        let now = std::time::Instant::now();
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let elapsed = wall.saturating_sub(std::time::Duration::from_micros(origin_unix_micros));
        Self {
            origin: now.checked_sub(elapsed).unwrap_or(now),
        }
    }

    /// The current time.
    // See `start`: the single real-clock read of the runner.
    #[allow(clippy::disallowed_methods)]
    pub fn now(&self) -> Timestamp {
        let elapsed: Duration = self.origin.elapsed().into();
        Timestamp::ZERO + elapsed
    }

    /// The tokio instant at which the clock reads `t`, or `None` if that is
    /// beyond what the OS clock can represent (treat as "never").
    pub fn instant_at(&self, t: Timestamp) -> Option<tokio::time::Instant> {
        let offset = std::time::Duration::from_micros(t.as_micros());
        self.origin
            .checked_add(offset)
            .map(tokio::time::Instant::from_std)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::start()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_and_far_future_is_never() {
        let c = Clock::start();
        let a = c.now();
        let b = c.now();
        assert!(b >= a);
        assert!(c.instant_at(Timestamp::from_millis(5)).is_some());
        // Far-future deadlines never panic (they are `None` or far away).
        let _ = c.instant_at(Timestamp::MAX);
    }
}
