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
    let n = placement.len();
    if n == 0 {
        return Duration::ZERO;
    }
    let d = mean_delays(regions, placement, jitter);
    let q = quorum(n);
    let mut total = 0.0;
    let mut scratch = vec![0.0; n];
    for leader in 0..n {
        let t1: Vec<f64> = (0..n).map(|j| d[leader * n + j]).collect();
        let t2 = hop(&t1, &d, q, &mut scratch);
        let t3 = hop(&t2, &d, q, &mut scratch);
        total += t3.iter().sum::<f64>();
    }
    Duration::from_micros((total / (n * n) as f64).round() as u64)
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
        let ms = Duration::from_millis;
        let r = Regions::new(
            vec!["a".into(), "b".into()],
            vec![vec![ms(1), ms(50)], vec![ms(50), ms(1)]],
        );
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
            let mut turned = at.clone();
            turned.rotate_left(rot % at.len());
            let again = ideal_commit_latency(&r1, &turned, 0.0).as_micros();
            proptest::prop_assert!(again.abs_diff(base) <= 1, "{} vs {}", again, base);
        }
    }
}
