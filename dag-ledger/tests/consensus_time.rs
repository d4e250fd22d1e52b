//! Consensus time: a commit's timestamp is the stake-weighted median of
//! its leader's parents' clocks, so validators whose clocks run ahead (up
//! to `f` of them, Byzantine or misconfigured) cannot move it.

use idlegrid_dag_ledger::consensus::harness::{Harness, HarnessConfig};
use idlegrid_dag_ledger::consensus::weighted_median;
use idlegrid_primitives::{Duration, Timestamp};
use proptest::prelude::*;

/// Every commit validator `i` saw: its timestamp is never ahead of the
/// run's time when it committed, nor more than `lag` behind it.
fn check_times(h: &Harness, i: usize, lag: Duration) -> Result<(), String> {
    let mut last = Timestamp::ZERO;
    for (sub, at) in h.commits(i).iter().zip(h.commit_times(i)) {
        if sub.timestamp > *at {
            return Err(format!(
                "commit {} of validator {i} is timestamped {} at run time {at}",
                sub.index, sub.timestamp
            ));
        }
        if sub.index > 10 && *at - sub.timestamp > lag {
            return Err(format!(
                "commit {} of validator {i} lags: {} at run time {at}",
                sub.index, sub.timestamp
            ));
        }
        if sub.timestamp < last {
            return Err(format!("commit {} goes back in time", sub.index));
        }
        last = sub.timestamp;
    }
    Ok(())
}

#[test]
fn a_clock_an_hour_ahead_does_not_move_consensus_time() {
    let cfg = HarnessConfig::new(4, 3).with_clock_ahead(2, Duration::from_secs(3_600));
    let mut h = Harness::new(cfg);
    h.submit_load(20);
    h.run_until(Timestamp::from_millis(3_000));
    h.check_safety().unwrap();
    assert!(
        h.min_honest_commits() > 20,
        "{} commits",
        h.min_honest_commits()
    );
    // Validator 2 leads about a quarter of the commits; none of them (nor
    // any other) carries its clock.
    let led = h
        .commits(0)
        .iter()
        .filter(|s| s.leader.author.get() == 2)
        .count();
    assert!(led > 3, "validator 2 led {led} commits");
    for i in 0..4 {
        check_times(&h, i, Duration::from_millis(500)).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// With up to f clocks ahead by any amount (up to a day), every commit
    /// is timestamped between the honest clocks: not ahead of the run's
    /// time, and less than a second behind it.
    #[test]
    fn at_most_f_clocks_ahead_never_move_consensus_time(
        n in 4usize..=7,
        seed in 0u64..1_000,
        aheads in proptest::collection::vec(1u64..86_400_000, 2),
    ) {
        let f = (n - 1) / 3;
        let mut cfg = HarnessConfig::new(n, seed);
        for (k, ms) in aheads.iter().take(f).enumerate() {
            cfg = cfg.with_clock_ahead((k * 2 + seed as usize) % n, Duration::from_millis(*ms));
        }
        let mut h = Harness::new(cfg);
        h.submit_load(10);
        h.run_until(Timestamp::from_millis(1_500));
        prop_assert!(h.check_safety().is_ok());
        prop_assert!(h.min_honest_commits() > 5);
        for i in 0..n {
            if let Err(e) = check_times(&h, i, Duration::from_secs(1)) {
                prop_assert!(false, "{}", e);
            }
        }
    }

    /// The weighted median's law: more than half of the stake lies at or
    /// below it, at least half at or above it; so with less than half of
    /// the stake Byzantine, it lies between two honest timestamps.
    #[test]
    fn the_weighted_median_splits_the_stake(
        stamps in proptest::collection::vec((0u64..1_000, 1u64..100), 1..20),
    ) {
        let stamps: Vec<(Timestamp, u64)> =
            stamps.into_iter().map(|(t, s)| (Timestamp::from_micros(t), s)).collect();
        let m = weighted_median(stamps.clone());
        let total: u64 = stamps.iter().map(|s| s.1).sum();
        let below: u64 = stamps.iter().filter(|s| s.0 <= m).map(|s| s.1).sum();
        let above: u64 = stamps.iter().filter(|s| s.0 >= m).map(|s| s.1).sum();
        prop_assert!(2 * below > total, "{} of {} at or below {}", below, total, m);
        prop_assert!(2 * above >= total, "{} of {} at or above {}", above, total, m);
        prop_assert!(stamps.iter().any(|s| s.0 == m));
    }
}
