//! The throughput scenario end to end: a committee under a load it keeps
//! up with commits what is offered, never faster than the ideal three-hop
//! latency; a committee whose CPU cannot keep up falls visibly behind.

use idlegrid_sim::report::Summary;
use idlegrid_sim::runner::{self, RunOptions};
use idlegrid_sim::scenario::Scenario;
use idlegrid_sim::sweep::set_param;
use idlegrid_sim::throughput::Plan;

/// The throughput scenario of `plan` (one size, one load) with `extra`
/// fields set, run for seed 1.
fn run(plan: &Plan, extra: &[(&str, &str)]) -> Summary {
    let spec = plan.spec().expect("a valid plan");
    let mut doc: toml::Value = toml::from_str(&spec.scenario_text).expect("toml");
    set_param(&mut doc, "nodes.count", &plan.sizes[0].to_string()).unwrap();
    let load = format!("{:?}", plan.loads[0]);
    set_param(&mut doc, "consensus.total_tx_per_second", &load).unwrap();
    for (path, raw) in extra {
        set_param(&mut doc, path, raw).unwrap();
    }
    let s = Scenario::from_toml(doc).unwrap_or_else(|e| panic!("{e}"));
    let opts = RunOptions {
        seed: Some(1),
        ..RunOptions::default()
    };
    runner::run(&s, &opts)
        .unwrap_or_else(|e| panic!("{e}"))
        .summary
}

fn plan(load: f64) -> Plan {
    Plan {
        sizes: vec![4],
        loads: vec![load],
        seeds: 1..2,
        duration_ms: 3_000,
        warmup_ms: 1_000,
        preset: "world6".into(),
        tx_bytes: 512,
    }
}

#[test]
fn a_committee_that_keeps_up_commits_the_offered_load_no_faster_than_ideal() {
    let s = run(&plan(2_000.0), &[]);
    let c = s.consensus.expect("a consensus run");
    let load = c.load.clone().expect("consensus.load");
    assert_eq!(load.offered_tx_per_second, 2_000.0);
    let ratio = load.committed_tx_per_second / load.offered_tx_per_second;
    assert!((0.9..1.1).contains(&ratio), "committed {ratio} of offered");
    // No three-message-delay protocol commits faster than the ideal.
    assert!(load.ideal_commit_latency_ms > 0.0);
    assert!(
        c.commit_latency_ms.p50 >= load.ideal_commit_latency_ms,
        "{c:?}"
    );
    assert!(load.commit_latency_quorum_delays.p50 >= 3.0, "{load:?}");
}

#[test]
fn a_validator_whose_cpu_cannot_keep_up_falls_behind() {
    // 1 ms per transaction: a ceiling of 1 000 tx/s per validator, which
    // applies every transaction, against 4 000 offered.
    let slow = [("consensus.cpu_us_per_tx_apply", "1000.0")];
    let s = run(&plan(4_000.0), &slow);
    let load = s.consensus.expect("consensus").load.expect("load");
    assert!(
        load.committed_tx_per_second < 0.5 * load.offered_tx_per_second,
        "{load:?}"
    );
    // The same load with the measured 16 µs keeps up.
    let s = run(&plan(4_000.0), &[]);
    let load = s.consensus.expect("consensus").load.expect("load");
    assert!(
        load.committed_tx_per_second > 0.9 * load.offered_tx_per_second,
        "{load:?}"
    );
}
