//! A broken invariant stops the run and reports the seed and the replay
//! command.

use idlegrid_sim::SimError;
use idlegrid_sim::runner::{self, RunError, RunOptions};
use idlegrid_sim::scenario::Scenario;

const TIGHT: &str = r#"
name = "tight"
duration_ms = 5_000
[nodes]
count = 12
[invariants]
max_propagation_ms = 60    # far below WAN latencies: must fail
"#;

#[test]
fn failure_reports_seed_and_replay_command() {
    let s = Scenario::parse(TIGHT).unwrap();
    let opts = RunOptions {
        threads: 1,
        seed: Some(42),
        scenario_path: Some("tight.toml".into()),
        progress: false,
        no_sharing: false,
        no_workers: false,
    };
    let err = runner::run(&s, &opts).unwrap_err();
    let RunError::Sim(SimError::Invariant(f)) = &err else {
        panic!("expected an invariant failure, got {err}");
    };
    assert_eq!(f.violation.invariant, "max-propagation");
    assert_eq!(f.seed, 42);
    assert_eq!(f.replay_command, "idlegrid-sim run tight.toml --seed 42");
    // It stopped during the run, not at the end.
    assert!(f.at.as_millis() < 5_000);
    let text = err.to_string();
    assert!(text.contains("seed:   42"), "{text}");
    assert!(
        text.contains("replay: idlegrid-sim run tight.toml --seed 42"),
        "{text}"
    );
    // The replay reproduces the same failure.
    let again = runner::run(&s, &opts).unwrap_err().to_string();
    assert_eq!(again, text);
}

#[test]
fn generous_bound_passes() {
    let s = Scenario::parse(&TIGHT.replace("= 60 ", "= 5000 ")).unwrap();
    runner::run(&s, &RunOptions::default()).unwrap();
}
