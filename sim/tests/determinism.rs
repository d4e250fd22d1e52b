//! Same seed ⇒ same run digest; different seed ⇒ different digest.

use idlegrid_sim::runner::{self, RunOptions};
use idlegrid_sim::scenario::Scenario;

const SMALL: &str = r#"
name = "determinism"
duration_ms = 6_000
[network]
jitter = 0.2
loss = 0.02
upload_mbps = 20.0
[nodes]
count = 18
[gossip]
interval_ms = 200
payload_bytes = 4096
fanout = 3
[[faults]]
kind = "partition"
at_ms = 1_000
groups = [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]
[[faults]]
kind = "crash"
at_ms = 2_000
nodes = [3, 4]
[[faults]]
kind = "heal"
at_ms = 3_000
[[faults]]
kind = "restart"
at_ms = 4_000
nodes = [3, 4]
[[faults]]
kind = "set_loss"
at_ms = 4_500
loss = 0.0
"#;

fn digest(seed: u64) -> (String, u64) {
    let s = Scenario::parse(SMALL).unwrap();
    let out = runner::run(
        &s,
        &RunOptions {
            seed: Some(seed),
            ..RunOptions::default()
        },
    )
    .unwrap();
    assert!(out.report.stats.dropped_partition > 0);
    assert!(out.report.stats.dropped_loss > 0);
    assert!(out.report.stats.dropped_crashed > 0);
    (out.summary.run_digest, out.report.events)
}

#[test]
fn same_seed_same_digest() {
    let a = digest(11);
    let b = digest(11);
    assert_eq!(a, b);
    assert!(a.1 > 10_000, "a real run: {} events", a.1);
}

#[test]
fn different_seed_different_digest() {
    assert_ne!(digest(11).0, digest(12).0);
}

#[test]
fn check_determinism_reports_identical_runs() {
    let s = Scenario::parse(SMALL).unwrap();
    let r = runner::check_determinism(&s, Some(5)).unwrap();
    assert!(r.is_deterministic(), "{}", r.describe());
    assert!(r.divergence().is_none());
    assert!(r.describe().starts_with("deterministic"));
}

#[test]
fn divergence_is_located_by_checkpoints() {
    use idlegrid_sim::runner::DeterminismReport;
    let text = |ms: u64| {
        format!(
            "name = \"d\"\nduration_ms = {ms}\n[nodes]\ncount = 18\n[gossip]\ninterval_ms = 100\n"
        )
    };
    let opts = RunOptions {
        seed: Some(3),
        ..RunOptions::default()
    };
    let long = runner::run(&Scenario::parse(&text(4_000)).unwrap(), &opts)
        .unwrap()
        .report;
    let short = runner::run(&Scenario::parse(&text(2_000)).unwrap(), &opts)
        .unwrap()
        .report;
    assert!(short.checkpoints.len() >= 2, "{}", short.events);
    let r = DeterminismReport {
        first: long.clone(),
        second: short.clone(),
    };
    assert!(!r.is_deterministic());
    let (agree, differ) = r.divergence().unwrap();
    // The short run is a prefix of the long one: they agree on its last
    // checkpoint and the long run's next checkpoint is the first difference.
    assert_eq!(agree, short.checkpoints.last().copied());
    assert_eq!(
        differ,
        long.checkpoints.get(short.checkpoints.len()).copied()
    );
    let text = r.describe();
    assert!(text.starts_with("NOT deterministic"), "{text}");
    assert!(text.contains("identical up to event"), "{text}");
}
