//! The commit latency an ideal three-message-delay protocol reaches on a
//! latency matrix: the yardstick "latency in quorum delays" is measured
//! against.
//!
//! Take `n` nodes placed in regions, the one-way delay `d(i, j)` = the base
//! latency of their regions × (1 + jitter / 2) (the mean of the uniform
//! jitter), `d(i, i) = 0`, and a quorum `q = 2f + 1` with `f = ⌊(n − 1) / 3⌋`.
//! For a leader `L`, the three quorum hops of a DAG BFT commit (Mysticeti's
//! proposal → votes → certificates) are:
//!
//! 1. `t1(j) = d(L, j)`: node `j` receives the proposal;
//! 2. `t2(k)` = the `q`-th smallest of `t1(j) + d(j, k)` over all `j`:
//!    node `k` holds a quorum of votes (its certificate goes out);
//! 3. `t3(m)` = the `q`-th smallest of `t2(k) + d(k, m)` over all `k`:
//!    node `m` holds a quorum of certificates and commits.
//!
//! The **ideal commit latency** is the mean of `t3(m)` over every leader
//! `L` and every node `m` (leaders rotate over all nodes); one **quorum
//! delay** is a third of it. Transmission time, CPU and waiting for the
//! next block are left out: no protocol of three message delays commits
//! faster on this matrix, so a measured latency divided by the quorum delay
//! says how many "ideal hops" it costs. `O(n³ log n)`: 10 ms for 100 nodes.
//!
//! The `_of` variants take the leaders instead of every node (a schedule
//! that elects some validators more often, e.g. by reputation), and
//! [`leaders_by_ideal`] ranks the nodes by their own ideal as leader; the
//! `leader_ideals` example prints what electing only the fastest would
//! save on a scenario's matrix.
//!
//! ```
//! use idlegrid_primitives::Duration;
//! use idlegrid_sim::network::quorum::ideal_commit_latency;
//! use idlegrid_sim::{RegionId, Regions};
//! // Four nodes 10 ms apart, no jitter: every hop waits 10 ms.
//! let r = Regions::single(Duration::from_millis(10));
//! let at = vec![RegionId::new(0); 4];
//! assert_eq!(ideal_commit_latency(&r, &at, 0.0), Duration::from_millis(30));
//! ```

use idlegrid_primitives::Duration;

use super::{RegionId, Regions};

/// The quorum of `n` equal-stake nodes: `2f + 1`, `f = ⌊(n − 1) / 3⌋`.
pub fn quorum(n: usize) -> usize {
    2 * (n.saturating_sub(1) / 3) + 1
}

/// The ideal three-hop commit latency of nodes at `placement` on `regions`
/// with mean jitter (see the module docs); zero for no nodes.
pub fn ideal_commit_latency(regions: &Regions, placement: &[RegionId], jitter: f64) -> Duration {
    let all: Vec<usize> = (0..placement.len()).collect();
    ideal_commit_latency_of(regions, placement, jitter, &all)
}

/// [`ideal_commit_latency`] with only the nodes `leaders` (indices into
/// `placement`; others are ignored) leading, each equally often; zero if
/// none does.
pub fn ideal_commit_latency_of(
    regions: &Regions,
    placement: &[RegionId],
    jitter: f64,
    leaders: &[usize],
) -> Duration {
    let n = placement.len();
    let leaders = leaders_in(leaders, n);
    if leaders.is_empty() {
        return Duration::ZERO;
    }
    let d = mean_delays(regions, placement, jitter);
    let q = quorum(n);
    let t3 = |leader: usize, scratch: &mut Vec<f64>| {
        let t1: Vec<f64> = (0..n).map(|j| d[leader * n + j]).collect();
        let t2 = hop(&t1, &d, q, scratch);
        hop(&t2, &d, q, scratch).iter().sum::<f64>()
    };
    let mut scratch = vec![0.0; n];
    let total: f64 = leaders.iter().map(|&l| t3(l, &mut scratch)).sum();
    Duration::from_micros((total / (leaders.len() * n) as f64).round() as u64)
}

/// The nodes in the order of their own three-hop ideal as leader (the mean
/// over every node of [`ideal_commit_latency`]'s `t3` when they lead),
/// fastest first, ties by index: the leaders a schedule that rewards
/// early, well-connected validators (HammerHead's and Mysticeti's leader
/// reputation) tends towards on a steady network.
pub fn leaders_by_ideal(regions: &Regions, placement: &[RegionId], jitter: f64) -> Vec<usize> {
    let mut by: Vec<(Duration, usize)> = (0..placement.len())
        .map(|l| (ideal_commit_latency_of(regions, placement, jitter, &[l]), l))
        .collect();
    by.sort_unstable();
    by.into_iter().map(|(_, l)| l).collect()
}

/// Rounds the threshold-clock recurrence runs before its leaders are
/// measured (it settles into its periodic regime within a few).
pub const CLOCK_WARMUP_ROUNDS: usize = 8;
/// Times each node leads in the measured rounds.
pub const CLOCK_CYCLES: usize = 3;

/// The commit latency of an ideal DAG protocol **with Mysticeti's proposal
/// rule** on the same matrix: like [`ideal_commit_latency`], no CPU,
/// transmission or jitter beyond its mean, no timeout, but a vote is a
/// block of the next round, and node `i` proposes its round `r + 1` block
/// once it holds a quorum of round `r` blocks *and* round `r`'s leader:
///
/// `s(r + 1, i) = max(q-th smallest of s(r, j) + d(j, i), s(r, L_r) + d(L_r, i))`.
///
/// Every round `r + 2` block then certifies `L_r` (its quorum of round
/// `r + 1` parents all waited for `L_r`), and node `m` commits `L_r` when
/// a quorum of them has reached it: the latency is that time minus
/// `s(r, L_r)`, averaged over every node and over leaders that rotate
/// through every node [`CLOCK_CYCLES`] times after
/// [`CLOCK_WARMUP_ROUNDS`] rounds. It is at least the ideal three-hop
/// latency: the gap between the two is what the rule itself costs (the
/// quorum of parents a vote waits for, and a certificate waiting for the
/// next round's leader), which a protocol following the rule cannot save.
/// `O(n³)` time ([`CLOCK_CYCLES`] cycles of `n` rounds of `O(n²)` each),
/// `O(n²)` memory (the delays; three rounds of proposal times).
pub fn threshold_clock_commit_latency(
    regions: &Regions,
    placement: &[RegionId],
    jitter: f64,
) -> Duration {
    let all: Vec<usize> = (0..placement.len()).collect();
    threshold_clock_commit_latency_of(regions, placement, jitter, &all)
}

/// [`threshold_clock_commit_latency`] with round `r`'s leader
/// `leaders[r mod leaders.len()]` (indices into `placement`; others are
/// ignored), measured over [`CLOCK_CYCLES`] cycles of that list; zero if
/// the list is empty.
pub fn threshold_clock_commit_latency_of(
    regions: &Regions,
    placement: &[RegionId],
    jitter: f64,
    leaders: &[usize],
) -> Duration {
    let n = placement.len();
    let leaders = leaders_in(leaders, n);
    if leaders.is_empty() {
        return Duration::ZERO;
    }
    let d = mean_delays(regions, placement, jitter);
    let q = quorum(n);
    let mut scratch = vec![0.0; n];
    let leader = |r: usize| leaders[r % leaders.len()];
    let measured = CLOCK_WARMUP_ROUNDS..CLOCK_WARMUP_ROUNDS + CLOCK_CYCLES * leaders.len();
    // Every node's proposal time of rounds r, r + 1 and r + 2 (a window:
    // round r's leader commits on round r + 2's blocks).
    let mut s: [Vec<f64>; 3] = [vec![0.0; n], vec![0.0; n], vec![0.0; n]];
    let next = |prev: &[f64], l: usize, scratch: &mut [f64]| -> Vec<f64> {
        let quorum_in = hop(prev, &d, q, scratch);
        (0..n)
            .map(|i| quorum_in[i].max(prev[l] + d[l * n + i]))
            .collect()
    };
    s[1] = next(&s[0], leader(0), &mut scratch);
    s[2] = next(&s[1], leader(1), &mut scratch);
    let mut total = 0.0;
    for r in 0..measured.end {
        if measured.contains(&r) {
            let proposed = s[0][leader(r)];
            let commits = hop(&s[2], &d, q, &mut scratch);
            total += commits.iter().map(|t| t - proposed).sum::<f64>();
        }
        let after = next(&s[2], leader(r + 2), &mut scratch);
        s.rotate_left(1);
        s[2] = after;
    }
    let mean = total / (measured.len() * n) as f64;
    Duration::from_micros(mean.round() as u64)
}

/// The mean one-way delay `d(i, j)` between the nodes at `placement`, µs,
/// row-major (`d[i · n + j]`): their regions' base latency × (1 + jitter /
/// 2), zero from a node to itself.
pub fn mean_delays(regions: &Regions, placement: &[RegionId], jitter: f64) -> Vec<f64> {
    let n = placement.len();
    let factor = 1.0 + jitter.max(0.0) / 2.0;
    placement
        .iter()
        .flat_map(|a| placement.iter().map(move |b| (*a, *b)))
        .enumerate()
        .map(|(k, (a, b))| match k / n == k % n {
            true => 0.0,
            false => regions.latency(a, b).as_micros() as f64 * factor,
        })
        .collect()
}

/// The leaders of `leaders` that are nodes of an `n`-node placement.
fn leaders_in(leaders: &[usize], n: usize) -> Vec<usize> {
    leaders.iter().copied().filter(|&l| l < n).collect()
}

/// `out(k)` = the `q`-th smallest of `t(j) + d(j, k)` over `j`.
fn hop(t: &[f64], d: &[f64], q: usize, scratch: &mut [f64]) -> Vec<f64> {
    let n = t.len();
    (0..n)
        .map(|k| {
            for (j, s) in scratch.iter_mut().enumerate() {
                *s = t[j] + d[j * n + k];
            }
            let (_, qth, _) = scratch.select_nth_unstable_by(q - 1, f64::total_cmp);
            *qth
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regions `a` and `b`, 1 ms inside each, 50 ms between.
    fn two_regions() -> Regions {
        let ms = Duration::from_millis;
        Regions::new(
            vec!["a".into(), "b".into()],
            vec![vec![ms(1), ms(50)], vec![ms(50), ms(1)]],
        )
    }

    #[test]
    fn quorum_sizes() {
        assert_eq!(quorum(1), 1);
        assert_eq!(quorum(4), 3);
        assert_eq!(quorum(10), 7);
        assert_eq!(quorum(100), 67);
    }

    #[test]
    fn a_near_quorum_is_waited_for_and_a_far_minority_is_not() {
        // Two regions 1 ms apart inside, 50 ms between; nodes 0-2 in A,
        // node 3 in B; q = 3. Worked by hand:
        // leader in A: t1 = [0,1,1,50], t2 = [2,2,2,51], t3 = [3,3,3,52]
        //   (sum 61, three such leaders);
        // leader B: t1 = [50,50,50,0], t2 = [51,51,51,100],
        //   t3 = [52,52,52,101] (sum 257).
        // Mean = (3 × 61 + 257) / 16 = 27.5 ms.
        let r = two_regions();
        let (a, b) = (RegionId::new(0), RegionId::new(1));
        let lat = ideal_commit_latency(&r, &[a, a, a, b], 0.0);
        assert_eq!(lat, Duration::from_micros(27_500));
        // Jitter scales every delay by its mean.
        let j = ideal_commit_latency(&r, &[a, a, a, b], 0.2);
        assert_eq!(j, Duration::from_micros(30_250));
    }

    #[test]
    fn one_datacenter_costs_three_one_way_hops() {
        let r = Regions::datacenter();
        let at = vec![RegionId::new(0); 10];
        assert_eq!(
            ideal_commit_latency(&r, &at, 0.0),
            Duration::from_micros(750)
        );
        assert_eq!(ideal_commit_latency(&r, &[], 0.0), Duration::ZERO);
        // A lone node is its own quorum: it commits at once.
        assert_eq!(ideal_commit_latency(&r, &at[..1], 0.0), Duration::ZERO);
    }

    #[test]
    fn world6_lies_between_its_nearest_and_farthest_hops() {
        let r = Regions::world6();
        let at: Vec<_> = (0..100).map(|i| RegionId::new(i % 6)).collect();
        let lat = ideal_commit_latency(&r, &at, 0.0).as_micros();
        // Three hops, each at least the 1 ms inside a region and at most
        // the farthest pair (163 ms).
        assert!((3_000..=3 * 163_000).contains(&lat), "{lat}");
        // A 2f+1 quorum spans regions: well above three local hops.
        assert!(lat > 3 * 33_000, "{lat}");
    }

    #[test]
    fn the_threshold_clock_costs_its_waits_and_nothing_else() {
        // One region: every wait is one 0.25 ms hop, as in the ideal.
        let r = Regions::datacenter();
        let at = vec![RegionId::new(0); 10];
        assert_eq!(
            threshold_clock_commit_latency(&r, &at, 0.0),
            ideal_commit_latency(&r, &at, 0.0)
        );
        assert_eq!(threshold_clock_commit_latency(&r, &[], 0.0), Duration::ZERO);
        // The ideal's two regions (1 ms inside, 50 ms between; nodes 0-2
        // in A, 3 in B; q = 3; 27.5 ms). Worked by hand, leaders 0, 1, 2,
        // 3 in turn: A moves a round per 1 ms while A leads, and B proposes
        // round r 50 ms after A's round r - 1 (it needs A's blocks). Led by
        // node 0 or 1 at t (the next leader in A too): A's round r + 2 at
        // t + 2, A commits at t + 3, B at t + 52 (mean 15.25 ms). Led by
        // node 2 at t: round r + 1's leader is B (at t + 50), so A's round
        // r + 2 is at t + 100; A commits at t + 101, B at t + 150 (113.25).
        // Led by B at P: A's round r is at P - 49 and r + 1 at P + 50, r + 2
        // at P + 51; A commits at P + 52, B at P + 101 (64.25). Mean 52 ms:
        // the rule nearly doubles the ideal where a far node leads.
        let two = two_regions();
        let (a, b) = (RegionId::new(0), RegionId::new(1));
        let clock = threshold_clock_commit_latency(&two, &[a, a, a, b], 0.0);
        assert_eq!(clock, Duration::from_millis(52));
        let ideal = ideal_commit_latency(&two, &[a, a, a, b], 0.0);
        assert!(clock >= ideal, "{clock:?} < {ideal:?}");
    }

    #[test]
    fn near_leaders_spare_everyone_the_far_nodes_stall() {
        // The two regions above (nodes 0-2 in A, 3 in B; q = 3). Each A
        // node's own ideal is 61 / 4 = 15.25 ms, B's 257 / 4 = 64.25 ms.
        let two = two_regions();
        let (a, b) = (RegionId::new(0), RegionId::new(1));
        let at = [a, a, a, b];
        assert_eq!(leaders_by_ideal(&two, &at, 0.0), vec![0, 1, 2, 3]);
        let ms = |us: u64| Duration::from_micros(us);
        assert_eq!(
            ideal_commit_latency_of(&two, &at, 0.0, &[0, 1, 2]),
            ms(15_250)
        );
        assert_eq!(ideal_commit_latency_of(&two, &at, 0.0, &[3]), ms(64_250));
        // Led by A's nodes only, the rule never waits for B: A moves a
        // round per 1 ms hop and commits 3 ms after each proposal, B 52 ms
        // after (it hears A's round r + 2 blocks 50 ms late): 15.25 ms,
        // the ideal of the same leaders — against 52 ms when B leads a
        // round in four (the test above).
        let near = threshold_clock_commit_latency_of(&two, &at, 0.0, &[0, 1, 2]);
        assert_eq!(near, ms(15_250));
        // Indices outside the placement are ignored; none leaves nothing.
        assert_eq!(
            threshold_clock_commit_latency_of(&two, &at, 0.0, &[0, 1, 2, 9]),
            near
        );
        assert_eq!(
            ideal_commit_latency_of(&two, &at, 0.0, &[9]),
            Duration::ZERO
        );
        assert_eq!(
            threshold_clock_commit_latency_of(&two, &at, 0.0, &[]),
            Duration::ZERO
        );
    }

    proptest::proptest! {
        /// The ideal over some leaders is the mean of their own ideals,
        /// and the rule with any leader list is never faster than the
        /// ideal of the same leaders (each hop waits at least the ideal's).
        #[test]
        fn leader_lists_keep_the_laws(
            ms in proptest::collection::vec(1u64..200, 9),
            place in proptest::collection::vec(0u16..3, 1..12),
            pick in proptest::collection::vec(0usize..12, 1..8),
        ) {
            let m: Vec<Vec<Duration>> = (0..3)
                .map(|a| (0..3).map(|b| Duration::from_millis(ms[a * 3 + b])).collect())
                .collect();
            let r = Regions::new(["a", "b", "c"].iter().map(|s| s.to_string()).collect(), m);
            let at: Vec<_> = place.iter().map(|&i| RegionId::new(i)).collect();
            let n = at.len();
            let leaders: Vec<usize> = pick.iter().map(|&l| l % n).collect();
            let of = |l: &[usize]| ideal_commit_latency_of(&r, &at, 0.0, l).as_micros();
            let each: u64 = leaders.iter().map(|&l| of(&[l])).sum();
            let k = leaders.len() as u64;
            proptest::prop_assert!(each.abs_diff(of(&leaders) * k) <= k, "{} vs {} × {}", each, of(&leaders), k);
            let clock = threshold_clock_commit_latency_of(&r, &at, 0.0, &leaders).as_micros();
            proptest::prop_assert!(clock + 1 >= of(&leaders), "{} < {}", clock, of(&leaders));
        }
    }

    proptest::proptest! {
        /// Scaling every delay scales the ideal latency; the order nodes
        /// are listed in does not matter.
        #[test]
        fn homogeneous_and_order_free(
            ms in proptest::collection::vec(1u64..200, 9),
            place in proptest::collection::vec(0u16..3, 1..12),
            k in 1u64..5,
            rot in 0usize..12,
        ) {
            let m = |f: u64| -> Vec<Vec<Duration>> {
                (0..3).map(|a| (0..3).map(|b| Duration::from_millis(ms[a * 3 + b] * f)).collect())
                    .collect()
            };
            let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
            let (r1, rk) = (Regions::new(names.clone(), m(1)), Regions::new(names, m(k)));
            let at: Vec<_> = place.iter().map(|&i| RegionId::new(i)).collect();
            let base = ideal_commit_latency(&r1, &at, 0.0).as_micros();
            let scaled = ideal_commit_latency(&rk, &at, 0.0).as_micros();
            proptest::prop_assert!(scaled.abs_diff(base * k) <= k, "{} vs {} × {}", scaled, base, k);
            // The threshold clock is never faster than the ideal (each of
            // its hops waits at least the ideal's), and scales the same way.
            let clock = threshold_clock_commit_latency(&r1, &at, 0.0).as_micros();
            proptest::prop_assert!(clock + 1 >= base, "{} < {}", clock, base);
            let clock_k = threshold_clock_commit_latency(&rk, &at, 0.0).as_micros();
            proptest::prop_assert!(clock_k.abs_diff(clock * k) <= k, "{} vs {} × {}", clock_k, clock, k);
            let mut turned = at.clone();
            turned.rotate_left(rot % at.len());
            let again = ideal_commit_latency(&r1, &turned, 0.0).as_micros();
            proptest::prop_assert!(again.abs_diff(base) <= 1, "{} vs {}", again, base);
        }
    }
}
