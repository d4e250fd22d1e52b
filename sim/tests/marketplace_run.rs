//! The whole marketplace: a small run settles every job, conserves money,
//! makes cheating unprofitable and is deterministic.

use idlegrid_sim::marketplace::{MarketplaceConfig, run_marketplace};

fn small(seed: u64) -> MarketplaceConfig {
    MarketplaceConfig {
        seed,
        validators: 7,
        providers: 40,
        clients: 8,
        cheater_fraction: 0.2,
        framing_clients: 1,
        active_secs: 20,
        drain_secs: 50,
        job_interval_secs: 2.0,
        ..MarketplaceConfig::default()
    }
}

#[test]
fn small_marketplace_settles_conserves_and_punishes_cheaters() {
    let r = run_marketplace(&small(3)).expect("run succeeds");
    println!("{}", r.render());
    println!(
        "{}",
        serde_json::to_string_pretty(&r.summary_json()).unwrap()
    );
    assert!(r.supply_conserved);
    assert!(r.jobs_completed > 0);
    assert!(
        r.honest_profit_mean > 0.0,
        "honest profit {}",
        r.honest_profit_mean
    );
    assert!(
        r.cheater_profit_mean < 0.0,
        "cheater profit {}",
        r.cheater_profit_mean
    );
    for key in [
        "ledger",
        "market",
        "jobs",
        "entrap",
        "economics",
        "reputation",
    ] {
        assert!(r.summary_json().get(key).is_some(), "{key}");
    }
}

#[test]
fn marketplace_is_deterministic() {
    let cfg = MarketplaceConfig {
        active_secs: 8,
        drain_secs: 40,
        providers: 20,
        clients: 4,
        ..small(5)
    };
    let a = run_marketplace(&cfg).expect("run");
    let b = run_marketplace(&cfg).expect("run");
    assert_eq!(a.digest, b.digest);
    assert_eq!(a.ledger_digest, b.ledger_digest);
}

#[test]
fn bad_config_names_the_field() {
    let cfg = MarketplaceConfig {
        cheat_rate: 2.0,
        ..MarketplaceConfig::default()
    };
    let e = run_marketplace(&cfg).unwrap_err().to_string();
    assert!(e.contains("cheat_rate"), "{e}");
}

#[test]
#[ignore = "the default marketplace (24 validators, 300 providers, 30 clients); run with --release"]
fn default_marketplace() {
    #[allow(clippy::disallowed_methods)] // wall time of a benchmark-like run
    let t = std::time::Instant::now();
    let r = run_marketplace(&MarketplaceConfig::default()).expect("run succeeds");
    println!("{}\nwall {:?}", r.render(), t.elapsed());
    println!(
        "{}",
        serde_json::to_string_pretty(&r.summary_json()).unwrap()
    );
}
