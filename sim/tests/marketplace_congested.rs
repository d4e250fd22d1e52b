//! The marketplace on congested links: validators' 3 Mbit/s uplinks carry
//! every light node's certified facts, so a batch closing often comes a
//! cadence and a quarter late with nothing withheld, and a sealing light
//! node asks other validators to replay its facts. Those asks must not add
//! the congestion that makes the next closing late: before a late closing's
//! replay started after the last closing's commit, seed 1 left 61 jobs open
//! past the drain period (the `huge` scenario's regression, at a scale a
//! debug test runs). Every job must settle (the run fails otherwise), no
//! honest provider may be slashed, and the closing asks must happen (the
//! test exercises them) and be mostly spurious (no source withholds).

use idlegrid_sim::scenario::Scenario;

mod summary;
use summary::{get, run_seed as run};

const CONGESTED: &str = r#"
name = "congested"
duration_ms = 30_000
machine = "marketplace"
[nodes]
count = 10
[network]
upload_mbps = 3
[marketplace]
active_secs = 12
facts = "certified"
certified_sources = 2
certified_patience_ms = 3000
[marketplace.providers]
count = 200
cheater_fraction = 0.1
[marketplace.clients]
count = 20
job_interval_ms = 2_000
"#;

#[test]
fn late_closings_on_congested_links_cost_replays_not_jobs() {
    let s = Scenario::parse(CONGESTED).unwrap();
    for seed in [1, 4] {
        let sum = run(&s, seed);
        let ledger = sum.ledger.as_ref().unwrap();
        assert_eq!(ledger["invariant_violations"], 0, "seed {seed}: {ledger}");
        assert_eq!(ledger["withheld_fact_messages"], 0, "seed {seed}");
        let entrap = sum.entrap.as_ref().unwrap();
        assert_eq!(entrap["honest_slashed"], 0, "seed {seed}: {entrap}");
        let jobs = sum.jobs.as_ref().unwrap();
        let (submitted, unrun) = (get(jobs, "submitted"), get(jobs, "unrun"));
        assert_eq!(get(jobs, "completed"), submitted, "seed {seed}: {jobs}");
        assert!(unrun * 5 <= submitted, "seed {seed}: {jobs}");
        let asks = get(ledger, "light_node_closing_asks");
        let spurious = get(ledger, "light_node_closing_asks_spurious");
        assert!(asks >= 50, "seed {seed}: closings came late: {ledger}");
        assert!(2 * spurious >= asks, "seed {seed}: {ledger}");
    }
}
