//! Validators that withhold from light nodes the certified facts they must
//! act on (a lot's match, its round's opening, its delivery, an
//! accusation) while serving every other fact, so they never look silent.
//! A certificate proves what a leaf says, not that every leaf was sent: the
//! light nodes must notice by themselves (their expectations: inputs came
//! but no opening, a delivery but no verdict, a job that heard nothing)
//! and ask other validators to replay. No honest provider may be slashed,
//! no lot may stall, and every job must settle (the run fails otherwise).

use idlegrid_sim::scenario::Scenario;

mod summary;
use summary::run_seed as run;

/// f = 3 of 10 validators withholding, consecutive in committee order (a
/// light node's two certified sources are neighbours): small enough for a
/// debug test.
const SMALL: &str = r#"
name = "withholding-small"
duration_ms = 45_000
machine = "marketplace"
[nodes]
count = 10
[[consensus.byzantine]]
nodes = [0, 1, 2]
behavior = "withhold_facts"
[marketplace]
active_secs = 12
facts = "certified"
certified_sources = 2
certified_patience_ms = 3000
[marketplace.providers]
count = 60
cheater_fraction = 0.1
[marketplace.clients]
count = 8
framing = 1
job_interval_ms = 2_000
"#;

/// The run's figures that the withholding must leave untouched, and how
/// much was withheld, asked again, and how many jobs ran nothing.
fn check(s: &Scenario, seed: u64) -> (u64, u64, u64) {
    let sum = run(s, seed);
    let ledger = sum.ledger.as_ref().unwrap();
    assert_eq!(ledger["invariant_violations"], 0, "seed {seed}: {ledger}");
    let entrap = sum.entrap.as_ref().unwrap();
    assert_eq!(entrap["honest_slashed"], 0, "seed {seed}: {entrap}");
    assert_eq!(entrap["framings_unresolved"], 0, "seed {seed}: {entrap}");
    let jobs = sum.jobs.as_ref().unwrap();
    assert!(
        jobs["completed"].as_u64().unwrap() > 0,
        "seed {seed}: {jobs}"
    );
    assert_eq!(jobs["lots_unplanned"], 0, "seed {seed}: {jobs}");
    let stalled = jobs["stalled_at"].as_object().unwrap();
    assert!(stalled.is_empty(), "seed {seed}: lots stalled: {stalled:?}");
    // Light nodes replace the sources they see withholding, and only those.
    assert!(
        ledger["light_sources_replaced"].as_u64().unwrap() > 0,
        "seed {seed}: {ledger}"
    );
    assert_eq!(
        ledger["light_sources_replaced_honest"], 0,
        "seed {seed}: {ledger}"
    );
    (
        ledger["withheld_fact_messages"].as_u64().unwrap(),
        ledger["light_node_suspicions"].as_u64().unwrap(),
        jobs["unrun"].as_u64().unwrap(),
    )
}

#[test]
fn withheld_facts_cost_no_honest_party_its_lot_three_seeds() {
    let s = Scenario::parse(SMALL).unwrap();
    let mut unrun = 0;
    for seed in 1..=3 {
        let (withheld, asked, u) = check(&s, seed);
        assert!(withheld > 0, "seed {seed}: nothing was withheld");
        assert!(asked > 0, "seed {seed}: nobody asked another validator");
        unrun += u;
    }
    // A withheld batch closing costs a bid its reveal, and its job every
    // lot: 6 jobs of 136 before sources seen withholding were replaced and
    // reveals also followed the node's own orders sealed in later batches
    // and closings expected on their cadence; 2 now (seeds 1 and 3, both
    // before the first replacement).
    assert!(unrun <= 3, "{unrun} jobs ran no lot");
}

/// The built-in `withholding` scenario (24 validators, 7 withholding, 300
/// providers, 30 clients) over 20 seeds, two at a time: `cargo test
/// --release -p idlegrid-sim --test marketplace_withholding -- --ignored`.
#[test]
#[ignore = "sweep: 20 seeds, release"]
fn withholding_scenario_20_seeds() {
    let s = Scenario::named_or_file("withholding").unwrap();
    std::thread::scope(|t| {
        for half in [1..=10, 11..=20] {
            let s = &s;
            t.spawn(move || {
                for seed in half {
                    check(s, seed);
                }
            });
        }
    });
}
