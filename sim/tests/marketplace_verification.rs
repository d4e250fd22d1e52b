//! The clients' verification modes run on the same jobs, providers and
//! cheaters (same seed): every mode conserves supply and slashes no honest
//! provider; replication spends its verification on replicas and catches
//! cheaters without traps; with no verification nothing is caught and
//! cheated lots are accepted.

use idlegrid_node::verification::VerificationMode;
use idlegrid_sim::marketplace::{MarketplaceConfig, run_marketplace};
use idlegrid_sim::scenario::Scenario;

fn cfg(verification: VerificationMode) -> MarketplaceConfig {
    MarketplaceConfig {
        seed: 7,
        validators: 7,
        providers: 24,
        clients: 4,
        cheater_fraction: 0.25,
        framing_clients: 0,
        active_secs: 10,
        drain_secs: 50,
        job_interval_secs: 2.0,
        verification,
        ..MarketplaceConfig::default()
    }
}

fn get(v: &serde_json::Value, path: &str) -> f64 {
    path.split('.')
        .fold(v, |v, k| &v[k])
        .as_f64()
        .unwrap_or_else(|| panic!("{path} missing"))
}

#[test]
fn the_four_modes_run_on_the_same_jobs_and_conserve_supply() {
    let mut runs = Vec::new();
    for mode in VerificationMode::ALL {
        let r = run_marketplace(&cfg(mode)).unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert!(r.supply_conserved, "{mode}: supply");
        let s = r.summary_json();
        assert_eq!(get(&s, "entrap.honest_slashed"), 0.0, "{mode}");
        assert_eq!(
            get(&s, "jobs.submitted"),
            get(&s, "jobs.completed"),
            "{mode}: every job the clients posted closed (replica jobs not counted)"
        );
        assert_eq!(
            get(&s, "jobs.lots_unplanned"),
            0.0,
            "{mode}: a held lot was planned before its plan deadline"
        );
        runs.push((mode, s));
    }
    let submitted = get(&runs[0].1, "jobs.submitted");
    assert!(submitted > 0.0);
    for (mode, s) in &runs {
        assert_eq!(get(s, "jobs.submitted"), submitted, "{mode}: same jobs");
    }
    let by = |m: VerificationMode| &runs.iter().find(|(x, _)| *x == m).unwrap().1;
    let (entrap, rep, none) = (
        by(VerificationMode::Entrap),
        by(VerificationMode::Replication),
        by(VerificationMode::None),
    );
    // Replication: no traps, verification spent on replicas, cheaters caught.
    let src = "entrap.verification_overhead_by_source";
    assert_eq!(get(rep, &format!("{src}.provider_traps")), 0.0);
    assert!(get(rep, &format!("{src}.replicas")) > 0.5, "{rep}");
    assert!(get(rep, "entrap.cheaters_caught") > 0.0, "{rep}");
    // None: nothing verified, nothing caught, cheated lots accepted.
    assert_eq!(get(none, "entrap.verification_overhead"), 0.0);
    assert_eq!(get(none, "entrap.traps_planted"), 0.0);
    assert_eq!(get(none, "entrap.cheaters_caught"), 0.0);
    assert!(
        get(none, "entrap.cheated_lots_accepted") > get(entrap, "entrap.cheated_lots_accepted")
    );
    assert!(get(entrap, "entrap.cheaters_caught") > 0.0);
}

#[test]
fn the_mode_is_a_scenario_field_defaulting_to_entrap() {
    let text = idlegrid_sim::scenario::builtin("cheaters").expect("built in");
    let cfg = |t: &str| {
        Scenario::parse(t)
            .and_then(|s| s.marketplace_config(1, String::new()))
            .map(|c| c.verification)
    };
    assert_eq!(cfg(text).unwrap(), VerificationMode::Entrap);
    for mode in VerificationMode::ALL {
        let t = format!("{text}\n[marketplace.entrap]\nverification = \"{mode}\"\n");
        assert_eq!(cfg(&t).unwrap(), mode);
    }
    let e = cfg(&format!(
        "{text}\n[marketplace.entrap]\nverification = \"traps\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("`marketplace.entrap.verification`"), "{e}");
    assert!(e.contains("adaptive_replication"), "{e}");
}
