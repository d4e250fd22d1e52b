//! The adaptive leader wait: how long a validator that holds a quorum of
//! round `r` waits for round `r`'s leaders before proposing `r+1` anyway.
//!
//! A validator records, for each round it leaves, how long after its quorum
//! the round's leaders were all present (zero if they were there first; for
//! leaders that came after it gave up waiting, their actual arrival). It
//! keeps the last [`LeaderWait::WINDOW`] samples and, per authority, the
//! latest sample of a round it led. For a round it then waits
//! [`LeaderWait::MARGIN`] times the longer of the recent samples and the
//! round's leaders' own latest samples, at least `leader_timeout /`
//! [`LeaderWait::FLOOR_DIVISOR`], and never more than `leader_timeout`.
//! With no samples yet it waits the whole `leader_timeout`.
//!
//! So in a steady network it waits as long as leaders take to arrive there
//! — a leader far from the others keeps its own longer wait, since its
//! votes are what commit it — while a crashed leader, which leaves no new
//! sample, costs a round only the recent wait instead of the whole
//! timeout. Leaders that become slower are still seen arriving late and
//! lengthen the wait. The estimate is a function of the times passed in:
//! deterministic, memory bounded by the window and the committee size.

use std::collections::VecDeque;

use idlegrid_primitives::Duration;

use super::committee::AuthorityIndex;

/// Recent leader lateness and the wait it implies (see the module docs).
#[derive(Clone, Debug)]
pub struct LeaderWait {
    /// Lateness of the leaders of the last rounds, newest last.
    samples: VecDeque<Duration>,
    /// Per authority, the lateness of the latest round it led.
    per_leader: Vec<Option<Duration>>,
}

impl LeaderWait {
    /// Rounds remembered.
    pub const WINDOW: usize = 16;
    /// The wait is this many times the longest relevant lateness.
    pub const MARGIN: u64 = 2;
    /// The wait is at least `leader_timeout` divided by this.
    pub const FLOOR_DIVISOR: u64 = 8;

    /// An estimator for a committee of `n` authorities.
    pub fn new(n: usize) -> Self {
        Self {
            samples: VecDeque::with_capacity(Self::WINDOW.max(n)),
            per_leader: vec![None; n],
        }
    }

    /// Records how long after the quorum a round's `leaders` were all
    /// present.
    pub fn record(&mut self, leaders: &[AuthorityIndex], lateness: Duration) {
        if self.samples.len() >= self.window() {
            self.samples.pop_front();
        }
        self.samples.push_back(lateness);
        for a in leaders {
            if let Some(s) = self.per_leader.get_mut(a.as_usize()) {
                *s = Some(lateness);
            }
        }
    }

    /// Rounds remembered: [`LeaderWait::WINDOW`], or the committee size if
    /// larger (so that every leader of a rotation is in the window).
    fn window(&self) -> usize {
        Self::WINDOW.max(self.per_leader.len())
    }

    /// How long to wait for `leaders` after a quorum, given the configured
    /// `leader_timeout` (the upper bound).
    pub fn wait(&self, leaders: &[AuthorityIndex], leader_timeout: Duration) -> Duration {
        let Some(recent) = self.samples.iter().max() else {
            return leader_timeout;
        };
        let own = leaders
            .iter()
            .filter_map(|a| self.per_leader.get(a.as_usize()).copied().flatten())
            .max()
            .unwrap_or(Duration::ZERO);
        let longest = own.max(*recent);
        let floor = Duration::from_micros(leader_timeout.as_micros() / Self::FLOOR_DIVISOR);
        let estimate = Duration::from_micros(longest.as_micros().saturating_mul(Self::MARGIN));
        estimate.max(floor).min(leader_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn a(i: u32) -> AuthorityIndex {
        AuthorityIndex::new(i)
    }

    #[test]
    fn waits_the_timeout_until_it_has_seen_a_round() {
        let w = LeaderWait::new(4);
        let t = Duration::from_millis(250);
        assert_eq!(w.wait(&[a(0)], t), t);
    }

    #[test]
    fn waits_twice_the_recent_lateness_and_forgets_old_rounds() {
        let mut w = LeaderWait::new(4);
        let t = Duration::from_millis(250);
        w.record(&[a(0)], Duration::from_millis(60));
        assert_eq!(w.wait(&[a(1)], t), Duration::from_millis(120));
        for _ in 0..LeaderWait::WINDOW {
            w.record(&[a(1)], Duration::ZERO);
        }
        // Leaders that arrive first: the floor...
        assert_eq!(w.wait(&[a(1)], t), Duration::from_micros(31_250));
        // ...but a leader that was late itself keeps its own wait.
        assert_eq!(w.wait(&[a(0)], t), Duration::from_millis(120));
        // A much slower leader: capped at the timeout.
        w.record(&[a(2)], Duration::from_millis(200));
        assert_eq!(w.wait(&[a(3)], t), t);
    }

    proptest! {
        /// The adaptive wait never exceeds the configured timeout, and the
        /// memory stays bounded.
        #[test]
        fn never_exceeds_the_timeout(
            samples in proptest::collection::vec((0u32..6, 0u64..10_000_000), 0..40),
            timeout_us in 0u64..10_000_000,
        ) {
            let mut w = LeaderWait::new(4);
            let t = Duration::from_micros(timeout_us);
            for (l, s) in samples {
                w.record(&[a(l)], Duration::from_micros(s));
                for q in 0..6 {
                    prop_assert!(w.wait(&[a(q)], t) <= t);
                }
            }
            prop_assert!(w.samples.len() <= LeaderWait::WINDOW);
            prop_assert_eq!(w.per_leader.len(), 4);
        }
    }
}
