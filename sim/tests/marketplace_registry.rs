//! The app and dataset registry inside the marketplace: owners of the paid
//! app and the dataset are paid out of clients' escrows, money conserved.

use idlegrid_sim::marketplace::{MarketplaceConfig, run_marketplace};

#[test]
fn registry_owners_are_paid_and_supply_is_conserved() {
    // The small scenario of `marketplace_run.rs`.
    let cfg = MarketplaceConfig {
        seed: 3,
        validators: 7,
        providers: 40,
        clients: 8,
        cheater_fraction: 0.2,
        framing_clients: 1,
        active_secs: 20,
        drain_secs: 50,
        job_interval_secs: 2.0,
        ..MarketplaceConfig::default()
    };
    let r = run_marketplace(&cfg).expect("run succeeds");
    assert!(r.supply_conserved);
    let v = r.summary_json();
    let reg = v.get("registry").expect("registry section");
    for key in ["apps", "datasets", "owner_revenue"] {
        assert!(reg.get(key).is_some(), "registry.{key}");
    }
    assert_eq!(reg["apps"].as_u64(), Some(1));
    assert_eq!(reg["datasets"].as_u64(), Some(1));
    let revenue: u128 = reg["owner_revenue"]
        .as_str()
        .expect("owner_revenue is a decimal string")
        .parse()
        .expect("decimal");
    assert!(revenue > 0, "owner revenue {revenue}");
    assert_eq!(v["ledger"]["invariant_violations"].as_u64(), Some(0));
    assert!(r.render().contains("registry"));
}
