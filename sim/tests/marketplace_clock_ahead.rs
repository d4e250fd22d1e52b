//! A validator whose clock reads an hour ahead of everybody's. Its blocks
//! carry its clock; while a commit took its time from its leader's block,
//! every commit it led moved consensus time an hour forward, and with it
//! every deadline on the ledger at once: every job's bid lapsed, every
//! sealed batch closed, no lot was ever matched (the default scenario with
//! such a validator: 623 jobs closed, 0 lots run). A commit's time is now
//! the stake-weighted median of its leader's parents' clocks, so up to `f`
//! such clocks move nothing.

use idlegrid_primitives::Duration;
use idlegrid_sim::consensus::Behavior;
use idlegrid_sim::marketplace::{MarketplaceConfig, run_marketplace};

mod summary;
use summary::get;

fn cfg(seed: u64) -> MarketplaceConfig {
    let mut byzantine = vec![Behavior::Honest; 7];
    // f = 2 of 7: two clocks ahead, by an hour and by a day.
    byzantine[2] = Behavior::ClockAhead {
        ahead: Duration::from_secs(3_600),
    };
    byzantine[5] = Behavior::ClockAhead {
        ahead: Duration::from_secs(86_400),
    };
    MarketplaceConfig {
        seed,
        validators: 7,
        providers: 30,
        clients: 8,
        cheater_fraction: 0.1,
        framing_clients: 1,
        active_secs: 12,
        drain_secs: 40,
        job_interval_secs: 2.0,
        byzantine,
        ..MarketplaceConfig::default()
    }
}

#[test]
fn clocks_ahead_move_no_deadline_two_seeds() {
    for seed in 1..=2 {
        // `every-job-settles` fails the run if a job is still open.
        let r = run_marketplace(&cfg(seed)).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(r.supply_conserved, "seed {seed}: supply");
        let s = r.summary_json();
        assert_eq!(
            get(&s, "jobs.submitted") - get(&s, "jobs.refused"),
            get(&s, "jobs.completed"),
            "seed {seed}: every posted job closed"
        );
        // Every job ran: no bid lapsed for a deadline that had not come.
        assert_eq!(get(&s, "jobs.unrun"), 0, "seed {seed}");
        assert_eq!(get(&s, "jobs.lots_lapsed"), 0, "seed {seed}");
        assert_eq!(get(&s, "jobs.lots_unplanned"), 0, "seed {seed}");
        assert!(get(&s, "jobs.lots_settled") >= get(&s, "jobs.completed"));
        assert_eq!(get(&s, "entrap.honest_slashed"), 0, "seed {seed}");
        let stalled = s["jobs"]["stalled_at"].as_object().unwrap();
        assert!(stalled.is_empty(), "seed {seed}: {stalled:?}");
    }
}
