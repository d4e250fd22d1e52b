//! Where a leader block's commit latency goes beyond the ideal, hop by hop.
//!
//! The [ideal](super::quorum) three-hop commit sends every vote the moment
//! the leader's block arrives, every certificate the moment a quorum of
//! votes does, and commits the moment a quorum of certificates does. A DAG
//! protocol sends its votes and certificates as its next blocks, so each
//! hop may wait longer. From the proposal times of every validator's blocks
//! and the commit times of each leader, and the network's mean one-way
//! delays `d(i, j)` (as the ideal uses), for a leader block `L` of round
//! `r` proposed at `P`:
//!
//! 1. **vote**: validator `j` proposes its round `r+1` block at `S1(j)`;
//!    `L` reached it at `P + d(L, j)` and a quorum of round `r` blocks
//!    (what a round `r+1` block must reference) at `Q(j)`. The hop's extra
//!    time `S1(j) − (P + d(L, j))` splits into the **parents** wait
//!    `max(0, Q(j) − P − d(L, j))` and the rest (**vote**: the proposal
//!    rule's other waits, such as for the leaders of round `r`, and CPU);
//! 2. **certificate**: validator `k` proposes its round `r+2` block at
//!    `S2(k)`, a quorum of the votes having reached it at `V(k)` (the `q`-th
//!    smallest `S1(j) + d(j, k)`): the extra is `S2(k) − V(k)`, mostly the
//!    wait for round `r+1`'s leader;
//! 3. **commit**: validator `m` commits `L` at `T(m)`, a quorum of the
//!    certificates having reached it at `C(m)` (the `q`-th smallest `S2(k) +
//!    d(k, m)`): the extra is `T(m) − C(m)` (fetching missing ancestors,
//!    CPU, transmission).
//!
//! The means of the four waits over every (leader, validator) add up to
//! about the gap between the measured and the ideal latency (not exactly:
//! a quorum is an order statistic of the previous hop's times). Memory is
//! bounded: at most [`MAX_PROPOSALS`] proposal times and [`MAX_LEADERS`]
//! leaders are kept.

use std::collections::{BTreeMap, HashMap};

use idlegrid_primitives::Timestamp;

use super::quorum::quorum;

/// Proposal times kept at most.
pub const MAX_PROPOSALS: usize = 1_000_000;
/// Leaders whose commits are kept at most.
pub const MAX_LEADERS: usize = 20_000;

/// The waits of [the module docs](self), means in µs over every (leader,
/// validator) they were measured at.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HopWaits {
    /// Leaders measured.
    pub leaders: u64,
    /// Hop 1: waiting for a quorum of the leader's round after the leader.
    pub parents_us: f64,
    /// Hop 1: the rest of the vote's wait after the leader and the quorum.
    pub vote_us: f64,
    /// Hop 2: the certificate's wait after a quorum of votes.
    pub certificate_us: f64,
    /// Hop 3: the commit's wait after a quorum of certificates.
    pub commit_us: f64,
}

/// Proposal and commit times of one run (see the module docs).
#[derive(Debug, Default)]
pub struct HopLog {
    /// Mean one-way delays, µs, `d[i · n + j]` by node index.
    delays: Vec<f64>,
    n: usize,
    /// First proposal of each `(node, round)`.
    proposals: HashMap<(usize, u64), Timestamp>,
    /// Per leader `(round, node)`, where and when it was committed.
    commits: BTreeMap<(u64, usize), Vec<(usize, Timestamp)>>,
}

impl HopLog {
    /// A log for nodes whose mean one-way delays are `delays` (`n × n`,
    /// row-major, µs).
    pub fn new(delays: Vec<f64>) -> Self {
        let n = (delays.len() as f64).sqrt() as usize;
        assert_eq!(n * n, delays.len(), "an n × n delay matrix");
        Self {
            delays,
            n,
            ..Self::default()
        }
    }

    /// `node` proposed its block of `round` at `at`.
    pub fn proposed(&mut self, node: usize, round: u64, at: Timestamp) {
        if node < self.n && self.proposals.len() < MAX_PROPOSALS {
            self.proposals.entry((node, round)).or_insert(at);
        }
    }

    /// `node` committed the block `leader` proposed for `round` at `at`.
    pub fn committed(&mut self, leader: usize, round: u64, node: usize, at: Timestamp) {
        if node >= self.n || leader >= self.n {
            return;
        }
        let key = (round, leader);
        if self.commits.len() >= MAX_LEADERS && !self.commits.contains_key(&key) {
            return;
        }
        self.commits.entry(key).or_default().push((node, at));
    }

    /// The mean waits over the leaders whose rounds `r`, `r+1` and `r+2`
    /// were proposed by a quorum (see the module docs).
    pub fn waits(&self) -> HopWaits {
        let mut sum = [0.0; 4];
        let mut count = [0u64; 3];
        let mut leaders = 0;
        for (&(round, leader), commits) in &self.commits {
            if self.add_leader(round, leader, commits, &mut sum, &mut count) {
                leaders += 1;
            }
        }
        let mean = |s: f64, c: u64| if c == 0 { 0.0 } else { s / c as f64 };
        HopWaits {
            leaders,
            parents_us: mean(sum[0], count[0]),
            vote_us: mean(sum[1], count[0]),
            certificate_us: mean(sum[2], count[1]),
            commit_us: mean(sum[3], count[2]),
        }
    }

    /// Adds one leader's waits; false if a round lacks a quorum of
    /// proposals (the run ended, or crashes).
    fn add_leader(
        &self,
        round: u64,
        leader: usize,
        commits: &[(usize, Timestamp)],
        sum: &mut [f64; 4],
        count: &mut [u64; 3],
    ) -> bool {
        let times = |r| self.round_times(r);
        let (Some(p), [rt, s1, s2]) = (
            self.proposals.get(&(leader, round)),
            [times(round), times(round + 1), times(round + 2)],
        ) else {
            return false;
        };
        let q = quorum(self.n);
        if [&rt, &s1, &s2]
            .iter()
            .any(|t| t.iter().flatten().count() < q)
        {
            return false;
        }
        let p = us(*p);
        for (j, s) in s1.iter().enumerate() {
            let Some(s) = s else { continue };
            let arrived = p + self.d(leader, j);
            let parents = self.quorum_at(&rt, j);
            sum[0] += (parents - arrived).max(0.0);
            sum[1] += (s - arrived.max(parents)).max(0.0);
            count[0] += 1;
        }
        for (k, s) in s2.iter().enumerate() {
            let Some(s) = s else { continue };
            sum[2] += (s - self.quorum_at(&s1, k)).max(0.0);
            count[1] += 1;
        }
        for &(m, t) in commits {
            sum[3] += (us(t) - self.quorum_at(&s2, m)).max(0.0);
            count[2] += 1;
        }
        true
    }

    /// Each node's proposal time for `round`, µs.
    fn round_times(&self, round: u64) -> Vec<Option<f64>> {
        (0..self.n)
            .map(|i| self.proposals.get(&(i, round)).map(|t| us(*t)))
            .collect()
    }

    /// When a quorum of messages sent at `sent` reached node `k`.
    fn quorum_at(&self, sent: &[Option<f64>], k: usize) -> f64 {
        let mut at: Vec<f64> = sent
            .iter()
            .enumerate()
            .filter_map(|(j, s)| Some((*s)? + self.d(j, k)))
            .collect();
        let q = quorum(self.n).min(at.len()).max(1);
        at.select_nth_unstable_by(q - 1, f64::total_cmp);
        at[q - 1]
    }

    fn d(&self, from: usize, to: usize) -> f64 {
        self.delays[from * self.n + to]
    }
}

fn us(t: Timestamp) -> f64 {
    t.as_micros() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four nodes 10 ms apart (q = 3); node `i` proposes round `r + 1` at
    /// `proposed[r][i]` ms and commits node 0's round 1 block at
    /// `committed[i]` ms.
    fn log(proposed: [[u64; 4]; 3], committed: [u64; 4]) -> HopLog {
        let mut d = vec![10_000.0; 16];
        (0..4).for_each(|i| d[i * 4 + i] = 0.0);
        let mut log = HopLog::new(d);
        let ms = Timestamp::from_millis;
        for (r, at) in proposed.iter().enumerate() {
            for (i, t) in at.iter().enumerate() {
                log.proposed(i, r as u64 + 1, ms(*t));
            }
        }
        for (m, t) in committed.iter().enumerate() {
            log.committed(0, 1, m, ms(*t));
        }
        log
    }

    #[test]
    fn an_ideal_run_waits_nothing() {
        // The leader (node 0) proposes round 1 at 10 ms, after the others
        // (so a quorum of round 1 is everywhere when it arrives); each
        // votes the moment the leader's block arrives (10, 20, 20, 20),
        // certifies the moment a quorum of votes does (30) and commits the
        // moment a quorum of certificates does (40).
        let w = log([[10, 0, 0, 0], [10, 20, 20, 20], [30; 4]], [40; 4]).waits();
        assert_eq!(w.leaders, 1);
        assert_eq!(
            (w.parents_us, w.vote_us, w.certificate_us, w.commit_us),
            (0.0, 0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn each_hop_s_wait_is_told_apart() {
        // Round 1: nodes 2 and 3 propose 6 ms late. The leader (node 0)
        // reaches nodes 0..3 at 0, 10, 10, 10 and a quorum of round 1 at
        // 16, 16, 10, 10: parents waits 16, 6, 0, 0 (mean 5.5 ms). Votes go
        // 1 ms later (17, 17, 11, 11); a quorum of them arrives at 21, 21,
        // 27, 27 and certificates go 4 ms later (25, 25, 31, 31); a quorum
        // of those arrives at 41, 41, 35, 35 and commits are 2 ms later.
        let w = log(
            [[0, 0, 6, 6], [17, 17, 11, 11], [25, 25, 31, 31]],
            [43, 43, 37, 37],
        )
        .waits();
        assert_eq!(w.leaders, 1);
        assert_eq!(
            (w.parents_us, w.vote_us, w.certificate_us, w.commit_us),
            (5_500.0, 1_000.0, 4_000.0, 2_000.0)
        );
    }

    #[test]
    fn a_round_short_of_a_quorum_is_not_measured() {
        let mut l = log([[0; 4], [10; 4], [20; 4]], [30; 4]);
        l.proposals.retain(|(i, r), _| *r != 3 || *i < 2);
        assert_eq!(l.waits(), HopWaits::default());
    }
}
