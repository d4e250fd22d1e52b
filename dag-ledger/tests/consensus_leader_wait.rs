//! The leader wait with a crashed leader: the committee still advances, no
//! round waits longer than `leader_timeout` for its leader, and the
//! adaptive wait (the default) makes the crashed leader's rounds cheaper
//! than a fixed `leader_timeout`.

use idlegrid_dag_ledger::consensus::ConsensusConfig;
use idlegrid_dag_ledger::consensus::harness::{Harness, HarnessConfig};
use idlegrid_primitives::{Duration, Round, Timestamp};

const TIMEOUT_MS: u64 = 200;
/// The harness's one-way delays are uniform in 10..=50 ms.
const MAX_DELAY_MS: u64 = 50;

/// Four validators; validator 3 crashes (is cut off from everyone) at
/// 300 ms. Returns, for each live validator, the times its proposed round
/// rose (sampled every millisecond) over the next `ms`.
fn run_with_crashed_leader(adaptive: bool, seed: u64, ms: u64) -> Vec<Vec<(Timestamp, Round)>> {
    let consensus = ConsensusConfig::default()
        .with_leader_timeout(Duration::from_millis(TIMEOUT_MS))
        .with_adaptive_leader_wait(adaptive);
    let mut h = Harness::new(HarnessConfig::new(4, seed).with_consensus(consensus));
    h.submit_load(10);
    h.run_until(Timestamp::from_millis(300));
    h.partition(vec![0, 0, 0, 1]);
    let mut seen: Vec<Vec<(Timestamp, Round)>> = vec![Vec::new(); 3];
    for _ in 0..ms {
        h.run_for(Duration::from_millis(1));
        for (i, s) in seen.iter_mut().enumerate() {
            let r = h.stats(i).proposed_round;
            if s.last().is_none_or(|(_, last)| r > *last) {
                s.push((h.now(), r));
            }
        }
    }
    h.check_safety().unwrap();
    seen
}

/// No live validator goes longer than the leader timeout plus the time a
/// quorum of the next round takes to arrive (two message delays and the
/// 1 ms sampling) without proposing, adaptive or not.
#[test]
fn a_crashed_leader_costs_at_most_the_timeout_per_round() {
    for adaptive in [false, true] {
        for seed in 1..4 {
            let seen = run_with_crashed_leader(adaptive, seed, 3_000);
            let bound = Duration::from_millis(TIMEOUT_MS + 2 * MAX_DELAY_MS + 1);
            for s in &seen {
                // At most timeout + delays per round: 3 s holds > 10 rounds.
                assert!(s.len() > 10, "adaptive {adaptive} seed {seed}: {s:?}");
                for w in s.windows(2).skip(1) {
                    assert!(
                        w[1].0.saturating_since(w[0].0) <= bound,
                        "adaptive {adaptive} seed {seed}: {:?} → {:?}",
                        w[0],
                        w[1]
                    );
                }
            }
        }
    }
}

/// With the adaptive wait the rounds the crashed validator leads cost
/// less than the whole timeout, so the committee advances more rounds.
#[test]
fn the_adaptive_wait_advances_faster_past_a_crashed_leader() {
    for seed in 1..4 {
        let last = |adaptive| {
            let seen = run_with_crashed_leader(adaptive, seed, 3_000);
            seen.iter()
                .map(|s| s.last().map_or(0, |(_, r)| r.get()))
                .min()
                .unwrap_or(0)
        };
        let (fixed, adaptive) = (last(false), last(true));
        assert!(
            adaptive > fixed + fixed / 5,
            "seed {seed}: {adaptive} vs {fixed}"
        );
    }
}
