//! A consensus stall longer than a stage deadline: 7 validators split 3/4
//! (no quorum) for 30 s while rounds are open. Consensus time runs on
//! through the stall, so measured in it every 15 s stage deadline passed
//! at the first commit after: deliveries, plans and verifications that
//! waited the stall out were refused as late, honest providers slashed and
//! careful clients' lot bonds burned. Deadlines granted to a party are now
//! in live time (`idlegrid_node::market::LiveClock`), which a stall
//! advances by at most 2 s.

use idlegrid_sim::scenario::Scenario;

mod summary;
use summary::run_seed;

const STALL: &str = r#"
name = "stall-small"
duration_ms = 90_000
machine = "marketplace"
[nodes]
count = 7
[[faults]]
kind = "partition"
at_ms = 8_000
groups = [[0, 1, 2], [3, 4, 5, 6]]
[[faults]]
kind = "heal"
at_ms = 38_000
[marketplace]
active_secs = 12
[marketplace.providers]
count = 40
cheater_fraction = 0.1
[marketplace.clients]
count = 8
framing = 1
job_interval_ms = 2_000
"#;

#[test]
fn a_stall_longer_than_a_stage_slashes_no_honest_provider_two_seeds() {
    let s = Scenario::parse(STALL).unwrap();
    for seed in 1..=2 {
        let sum = run_seed(&s, seed);
        let entrap = sum.entrap.as_ref().unwrap();
        assert_eq!(entrap["honest_slashed"], 0, "seed {seed}: {entrap}");
        let jobs = sum.jobs.as_ref().unwrap();
        assert_eq!(jobs["open"], 0, "seed {seed}: {jobs}");
        assert_eq!(jobs["lots_unplanned_careful"], 0, "seed {seed}: {jobs}");
        assert!(jobs["lots_settled"].as_u64().unwrap() > 0, "seed {seed}");
        // No honest round ended for a deadline the stall used up.
        let outcomes = jobs["outcomes"].as_object().unwrap();
        for bad in ["honest/ClientAbandoned", "honest/ProviderDefaulted"] {
            assert!(!outcomes.contains_key(bad), "seed {seed}: {outcomes:?}");
        }
        let stalled = jobs["stalled_at"].as_object().unwrap();
        assert!(stalled.is_empty(), "seed {seed}: {stalled:?}");
    }
}
