//! `longrun-collusion`: with guarded reuse of trap answers, a coalition of
//! every cheater (~30 % of capacity, pooling every input its members are
//! handed, honest for 2 000 subtasks, then cheating on inputs it has not
//! seen) is convicted within 3 standard deviations of the exact
//! probabilities (recognised slots left out), loses money from its first
//! cheat on, and no honest provider is slashed, while reused answers save
//! client compute. A release-build run of 2–3 minutes, ignored by default
//! and not part of CI (`cargo test --release -p idlegrid-sim --test
//! marketplace_collusion -- --ignored`).

use idlegrid_sim::marketplace::run_marketplace;
use idlegrid_sim::scenario::Scenario;

#[test]
#[ignore = "30 minutes virtual: run in release with --ignored"]
fn longrun_collusion_with_guarded_reuse_is_caught_at_the_stated_rate() {
    let s = Scenario::named_or_file("longrun-collusion").expect("built in");
    let cfg = s
        .marketplace_config(1, "longrun-collusion".into())
        .expect("valid");
    let r = run_marketplace(&cfg).expect("run succeeds");
    let v = r.summary_json();
    println!("{}", r.render_lines());
    assert!(r.supply_conserved);
    let e = &v["entrap"];
    assert_eq!(e["honest_slashed"].as_u64(), Some(0));
    assert!(e["reused_traps"].as_u64().unwrap() > 0);
    let by_source = &e["verification_overhead_by_source"];
    let answers = by_source["trap_answers"].as_f64().unwrap();
    let traps = by_source["provider_traps"].as_f64().unwrap();
    assert!(answers < traps, "reuse saves answers: {answers} vs {traps}");
    let steady = e["verification_overhead_steady"].as_f64().unwrap();
    assert!(steady <= 0.05, "steady all-in overhead {steady}");
    let profit = &v["economics"]["profit_by_behaviour"]["colluding"];
    let after = profit["after_first_cheat_mean"].as_f64().unwrap();
    assert!(
        after < 0.0,
        "the coalition profits from its first cheat on: {after}"
    );
    let by = e["detection_by_behaviour"].as_object().unwrap();
    for name in ["colluding", "whitewashing"] {
        let z = by[name]["z"].as_f64().unwrap_or(f64::NAN);
        assert!(z.abs() < 3.0, "{name}: z = {z}");
    }
}
