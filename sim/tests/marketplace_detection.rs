//! Detection rates per cheating behaviour agree with the entrap optimizer's
//! exact (hypergeometric) probabilities: on a reduced `cheaters`-like run,
//! the lots convicted per behaviour are within 4 standard deviations of
//! `Σ p_i`, and a conviction happens exactly when a corrupted subtask was
//! a trap.

use std::collections::BTreeMap;

use idlegrid_sim::marketplace::{CheaterMix, MarketplaceConfig, run_marketplace};

/// Lots a behaviour needs (pooled over the seeds) before its z-score is
/// checked.
const MIN_LOTS: u64 = 30;

fn cheaters_like(seed: u64) -> MarketplaceConfig {
    MarketplaceConfig {
        seed,
        validators: 7,
        providers: 80,
        clients: 12,
        cheater_fraction: 0.5,
        // Subtle cheating: a lot is caught with probability ~0.5..1, and a
        // cheater survives some lots, so every behaviour collects lots.
        cheat_rate: 0.08,
        framing_clients: 0,
        active_secs: 20,
        drain_secs: 30,
        job_interval_secs: 1.5,
        mix: CheaterMix::default(),
        ..MarketplaceConfig::default()
    }
}

/// Pooled over seeds: lots, detected, expected, variance, uniform.
#[derive(Debug, Default)]
struct Pooled {
    lots: u64,
    detected: u64,
    expected: f64,
    variance: f64,
    uniform: bool,
}

#[test]
fn detection_matches_the_hypergeometric_expectation() {
    let mut pooled: BTreeMap<String, Pooled> = BTreeMap::new();
    for seed in 1..=3 {
        let r = run_marketplace(&cheaters_like(seed)).expect("run succeeds");
        let v = r.summary_json();
        let by = v["entrap"]["detection_by_behaviour"]
            .as_object()
            .expect("entrap.detection_by_behaviour")
            .clone();
        println!("seed {seed}\n{}", r.render_lines());
        assert!(r.supply_conserved);
        assert!(r.render().contains("vs the hypergeometric expectation"));
        let mut lots = 0;
        for (name, x) in &by {
            let n = x["cheated_lots"].as_u64().unwrap();
            let d = x["detected"].as_u64().unwrap();
            let sd = x["sd"].as_f64().unwrap();
            assert!(
                d <= n && x["expected"].as_f64().unwrap() <= n as f64,
                "{name}: {x}"
            );
            lots += n;
            // Without framing or faults, a conviction is exactly a
            // corrupted trap: none missed (deadline, referee) and none
            // without one.
            assert_eq!(x["trap_hits_not_convicted"], 0, "{name}: {x}");
            assert_eq!(x["convicted_without_trap_hit"], 0, "{name}: {x}");
            assert_eq!(x["trap_hits"].as_u64(), Some(d), "{name}: {x}");
            if let Some(z) = x["z"].as_f64().filter(|_| x["uniform"] == true) {
                assert!(z.abs() < 4.0, "seed {seed} {name}: z = {z}: {x}");
            }
            let p = pooled.entry(name.clone()).or_default();
            p.lots += n;
            p.detected += d;
            p.expected += x["expected"].as_f64().unwrap();
            p.variance += sd * sd;
            p.uniform = x["uniform"] == true;
        }
        // The report's overall counter agrees with the per-behaviour ones.
        assert_eq!(v["entrap"]["cheated_lots"].as_u64(), Some(lots));
    }
    println!("{pooled:#?}");
    let mut checked = 0;
    for (name, p) in &pooled {
        if !p.uniform || p.lots < MIN_LOTS {
            continue;
        }
        let z = (p.detected as f64 - p.expected) / p.variance.sqrt();
        assert!(z.abs() < 4.0, "{name}: pooled z = {z}: {p:?}");
        checked += 1;
    }
    // Not vacuous: every behaviour had enough lots, and detection was
    // probabilistic (cheated lots got through).
    assert!(
        checked >= 4,
        "only {checked} behaviours with {MIN_LOTS}+ lots"
    );
    let (lots, detected) = pooled
        .values()
        .fold((0, 0), |(l, d), p| (l + p.lots, d + p.detected));
    assert!(
        detected * 10 < lots * 9,
        "{detected} of {lots} lots caught: the test has no power"
    );
}
