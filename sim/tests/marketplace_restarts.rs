//! Durable validators in the marketplace: the `byzantine` scenario's
//! committee (Byzantine validators that equivocate and withhold) with honest
//! validators crashed and restarted from their simulated disks (a crash
//! loses part of the un-synced writes). The observer fails the run on an
//! honest validator's equivocation, a ledger digest that differs at a
//! commit index, a commit index reported again or skipped across a restart
//! (a committed transaction lost), a broken ledger invariant (supply), or a
//! restarted validator more than 20 commits behind 5 s after its restart.

use idlegrid_sim::report::Summary;
use idlegrid_sim::runner::{self, RunOptions};
use idlegrid_sim::scenario::Scenario;

mod summary;
use summary::run_seed as run;

/// A Byzantine marketplace small enough for a debug test.
const SMALL: &str = r#"
name = "byzantine-restarts"
duration_ms = 40_000
machine = "marketplace"
[nodes]
count = 7
lose_unsynced = 1.0
[[consensus.byzantine]]
nodes = [0]
behavior = "equivocate"
[[consensus.byzantine]]
nodes = [1]
behavior = "withhold"
recipients = 2
[[faults]]
kind = "crash"
at_ms = 3_000
nodes = [4]
[[faults]]
kind = "restart"
at_ms = 6_000
nodes = [4]
[[faults]]
kind = "crash"
at_ms = 8_000
nodes = [5]
[[faults]]
kind = "restart"
at_ms = 8_500
nodes = [5]
[marketplace]
active_secs = 10
gateways = 2
[marketplace.providers]
count = 30
cheater_fraction = 0.2
[marketplace.clients]
count = 5
framing = 1
job_interval_ms = 2_000
"#;

fn check(s: &Scenario, seed: u64) -> u64 {
    let sum = run(s, seed);
    let ledger = sum.ledger.as_ref().unwrap();
    let amount = |k: &str| ledger[k].as_str().unwrap().parse::<u128>().unwrap();
    assert_eq!(
        amount("initial_supply") - amount("burned"),
        amount("final_supply"),
        "seed {seed}: {ledger}"
    );
    assert_eq!(ledger["invariant_violations"], 0, "seed {seed}: {ledger}");
    let jobs = sum.jobs.as_ref().unwrap();
    assert!(
        jobs["completed"].as_u64().unwrap() > 0,
        "seed {seed}: {jobs}"
    );
    // Only careless clients' lots lapse unplanned (the `byzantine`
    // scenario has two), whatever the Byzantine validators do.
    assert_eq!(jobs["lots_unplanned_careful"], 0, "seed {seed}: {jobs}");
    let d = sum.storage.unwrap();
    assert!(d.syncs > 0, "seed {seed}: {d:?}");
    d.lost_writes
}

#[test]
fn byzantine_committee_with_restarts_from_store_ten_seeds() {
    let s = Scenario::parse(SMALL).unwrap();
    let lost: u64 = (1..=10).map(|seed| check(&s, seed)).sum();
    assert!(lost > 0, "no crash cut an un-synced write");
}

/// A validator that puts transfers out of the richest account, signed with
/// its own key, into its blocks (`forge`, next to the equivocator and
/// restarts from disk): every validator refuses every forgery, the run's
/// `forgeries-move-nothing` invariant holds (it fails the run when
/// validators apply committed batches without checking signatures), and
/// the summary counts the forgeries. Forging is a marketplace behaviour: a
/// consensus scenario naming it is refused with the field.
#[test]
fn forged_transfers_in_a_byzantine_block_move_nothing() {
    let text = SMALL.replace(
        "behavior = \"withhold\"\nrecipients = 2",
        "behavior = \"forge\"",
    );
    let s = Scenario::parse(&text).unwrap();
    for seed in 1..=2 {
        check(&s, seed);
        let ledger = run(&s, seed).ledger.unwrap();
        assert_eq!(
            ledger["forged_transactions"].as_u64(),
            Some(idlegrid_node::byzantine::Forger::MAX),
            "seed {seed}: {ledger}"
        );
    }
    let consensus = "name = \"c\"\nduration_ms = 1000\nmachine = \"consensus\"\n[nodes]\ncount = 4\n\
        [[consensus.byzantine]]\nnodes = [1]\nbehavior = \"forge\"\n";
    let err = Scenario::parse(consensus).unwrap_err().to_string();
    assert!(err.contains("consensus.byzantine[0].behavior"), "{err}");
}

/// Light nodes listening to a window of 2f + 1 of the stake only
/// (`fact_sources`), in a committee where a window may hold the
/// equivocator, the withholder and validators crashed and restarted from
/// their disks (which forget their subscribers): every job still settles,
/// safely.
#[test]
fn light_nodes_on_a_window_of_the_committee_settle_every_job() {
    every_job_settles(&SMALL.replace("gateways = 2", "gateways = 2\nfact_sources = 1"));
}

/// Runs `text` with seeds 1 to 3: checked (see `check`), every job
/// completed or failed.
fn every_job_settles(text: &str) {
    let s = Scenario::parse(text).unwrap();
    for seed in 1..=3 {
        check(&s, seed);
        let jobs = run(&s, seed).jobs.unwrap();
        let n = |k: &str| jobs[k].as_u64().unwrap();
        assert_eq!(
            n("completed") + n("failed"),
            n("submitted"),
            "seed {seed}: {jobs}"
        );
    }
}

/// The same with a window of f + 1 of the stake (`fact_window =
/// "validity"`): every source must report a fact, so a window holding a
/// silent validator (the withholder, a crashed one, one restarted without
/// its subscribers) widens after the patience and its new sources replay
/// the facts still undecided; every job still settles, safely.
#[test]
fn light_nodes_on_a_validity_window_settle_every_job() {
    every_job_settles(&SMALL.replace(
        "gateways = 2",
        "gateways = 2\nfact_sources = 1\nfact_window = \"validity\"",
    ));
}

/// Validators that hold the very same state share one copy of it; the check
/// mode (`--no-sharing`) computes every batch on every validator's own copy.
/// With equivocating and withholding validators and two honest validators
/// restarted from their disks (each then holds a state of its own), both
/// modes reach the same run digest, and sharing computed fewer batches.
#[test]
fn sharing_state_changes_nothing_but_the_work() {
    let s = Scenario::parse(SMALL).unwrap();
    let run = |no_sharing: bool| {
        let opts = RunOptions {
            seed: Some(3),
            no_sharing,
            ..RunOptions::default()
        };
        runner::run(&s, &opts).unwrap().summary
    };
    let (shared, alone) = (run(false), run(true));
    assert_eq!(shared.run_digest, alone.run_digest);
    let count = |sum: &Summary, k: &str| sum.ledger.as_ref().unwrap()[k].as_u64().unwrap();
    let applications = count(&alone, "batches_compared");
    assert_eq!(count(&alone, "batches_computed"), applications);
    assert_eq!(count(&alone, "batches_shared"), 0);
    assert_eq!(count(&shared, "batches_compared"), applications);
    assert_eq!(
        count(&shared, "batches_computed") + count(&shared, "batches_shared"),
        applications
    );
    // 7 validators, of which the 2 restarted ones compute their own
    // commits after their restart: well under half are computed.
    assert!(
        count(&shared, "batches_computed") * 2 < applications,
        "{:?}",
        shared.ledger
    );
}

/// The built-in `byzantine` scenario (16 validators, 5 Byzantine, an
/// honest validator restarted from its disk) over 200 seeds, shortened to
/// 60 s (jobs for 15 s, then 45 s for every dispute to settle), two seeds
/// at a time: `cargo test --release -p idlegrid-sim --test
/// marketplace_restarts -- --ignored`.
#[test]
#[ignore = "sweep: 200 seeds, release"]
fn byzantine_scenario_200_seeds() {
    let text = Scenario::source_text("byzantine")
        .unwrap()
        .replace("duration_ms = 120000", "duration_ms = 60000")
        .replace("active_secs = 30", "active_secs = 15");
    let s = Scenario::parse(&text).unwrap();
    assert_eq!(s.duration_ms, 60_000);
    std::thread::scope(|t| {
        for half in [1..=100, 101..=200] {
            let s = &s;
            t.spawn(move || {
                for seed in half {
                    check(s, seed);
                }
            });
        }
    });
}
