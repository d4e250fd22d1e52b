//! Validators' audits on a worker thread (`idlegrid_sim::audit`): a
//! marketplace run reaches the same digest, outcome and summary with them
//! there or inline.

use idlegrid_sim::marketplace::{MarketplaceConfig, run_marketplace};

#[test]
fn a_run_is_the_same_with_or_without_worker_threads() {
    let cfg = MarketplaceConfig {
        seed: 4,
        validators: 7,
        providers: 30,
        clients: 6,
        cheater_fraction: 0.2,
        active_secs: 8,
        drain_secs: 40,
        job_interval_secs: 2.0,
        ..MarketplaceConfig::default()
    };
    let on = run_marketplace(&cfg).expect("run");
    let off = run_marketplace(&MarketplaceConfig {
        background_audits: false,
        ..cfg.clone()
    })
    .expect("run");
    assert!(on.jobs_completed > 0);
    assert_eq!(on.digest, off.digest);
    assert_eq!(on.ledger_digest, off.ledger_digest);
    // Audits ran on the worker in one run and inline in the other: the same
    // number, none failed.
    assert_eq!(on.summary.ledger, off.summary.ledger);
    assert!(on.summary.ledger["batches_checked"].as_u64() > Some(0));
    assert_eq!(on.summary.ledger["invariant_violations"], 0);
    // And the market's whole summary, welfare benchmark included.
    assert!(on.summary.market["welfare_periods"].as_u64() > Some(0));
    assert!(on.summary.market["welfare_optimal"].is_string());
    assert_eq!(on.summary.market, off.summary.market);
    // And with the engine's windows on two threads: the same run, the same
    // counts of shared and computed batches.
    let threads = run_marketplace(&MarketplaceConfig {
        engine_threads: 2,
        ..cfg
    })
    .expect("run");
    assert_eq!(threads.digest, on.digest);
    assert_eq!(threads.ledger_digest, on.ledger_digest);
    assert_eq!(threads.summary.ledger, on.summary.ledger);
    assert_eq!(threads.summary.market, on.summary.market);
}
