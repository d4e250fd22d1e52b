//! Clients whose matched lots are never planned. A careless client's every
//! lot repeats one input, which its node refuses to plan (the provider
//! could tell traps from real subtasks); before the plan deadline its lots
//! stayed matched forever, holding the provider's slot and the job's
//! escrow. Now the ledger lapses each at its deadline: the slot is free,
//! the lot bond burned, the escrow refunded, and every job closes.

use idlegrid_sim::marketplace::run::CLIENT_BOND;
use idlegrid_sim::marketplace::{MarketplaceConfig, run_marketplace};

mod summary;
use summary::get;

fn cfg(seed: u64) -> MarketplaceConfig {
    MarketplaceConfig {
        seed,
        validators: 7,
        providers: 30,
        clients: 8,
        cheater_fraction: 0.1,
        framing_clients: 1,
        careless_clients: 2,
        active_secs: 12,
        drain_secs: 50,
        job_interval_secs: 2.0,
        ..MarketplaceConfig::default()
    }
}

#[test]
fn unplanned_lots_lapse_and_free_their_slots_two_seeds() {
    for seed in 1..=2 {
        // `every-job-settles` fails the run if a job is still open.
        let r = run_marketplace(&cfg(seed)).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(r.supply_conserved, "seed {seed}: supply");
        let s = r.summary_json();
        let unplanned = get(&s, "jobs.lots_unplanned");
        assert!(unplanned > 0, "seed {seed}: no careless lot was matched");
        assert_eq!(get(&s, "jobs.lots_unplanned_careful"), 0, "seed {seed}");
        // Each lapsed lot burned its whole lot bond, nothing else.
        let bond = u64::try_from(CLIENT_BOND).unwrap();
        assert_eq!(get(&s, "jobs.unplanned_bonds_burned"), unplanned * bond);
        assert_eq!(get(&s, "entrap.honest_slashed"), 0, "seed {seed}");
        assert_eq!(
            get(&s, "jobs.submitted") - get(&s, "jobs.refused"),
            get(&s, "jobs.completed"),
            "seed {seed}: every posted job closed"
        );
        let stalled = s["jobs"]["stalled_at"].as_object().unwrap();
        assert!(stalled.is_empty(), "seed {seed}: {stalled:?}");
    }
}
