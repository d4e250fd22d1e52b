//! Prints the optimizer's tables of trap counts and overheads for typical
//! parameters, per lot and over a provider's lifetime (the tables in the
//! crate docs come from this command):
//!
//! ```text
//! cargo run -p idlegrid-entrap --example trap_table
//! ```

use idlegrid_entrap::lifetime::{LifetimeParams, lifetime_catch_probability, plan};
use idlegrid_entrap::{Params, TrapCount, optimize_traps};
use idlegrid_primitives::Amount;

fn show(k: Option<TrapCount>) -> String {
    k.map_or("—".into(), |k| k.to_string())
}

fn main() {
    per_lot();
    println!();
    lifetime();
}

/// Lots a persistent cheater survives with probability 1 % at the floor
/// rate (first lot count whose catch probability reaches 99 %).
fn lots_to_catch(policy: &idlegrid_entrap::LifetimePolicy, m: u32, clean: u32) -> String {
    let mut at_floor = *policy;
    at_floor.new_rate = policy.rate(clean);
    at_floor.halving_lots = None;
    (1..=10_000u32)
        .find(|&l| lifetime_catch_probability(&at_floor, m, l) >= 0.99)
        .map_or("> 10000".into(), |l| l.to_string())
}

fn lifetime() {
    let model = [16u32, 64, 256]
        .into_iter()
        .flat_map(|n| [1_000u128, 10_000].map(|stake| (n, 8, 10, stake, None)));
    lifetime_table(model);
    // The `longrun` scenario's lots: 16 real subtasks + 4 trap slots, the
    // client's cost estimate 250 per subtask, pay 500 (a match at 10 000
    // per compute-second), at most 4 traps, stake per slot 50 000
    // (default) and 150 000.
    println!();
    let longrun = [50_000, 150_000].map(|stake| (20, 250, 500, stake, Some(4)));
    lifetime_table(longrun.into_iter());
}

/// One lifetime row per `(N, c, p, stake, trap cap)` (cap `None`: `N / 4`).
fn lifetime_table(rows: impl Iterator<Item = (u32, u128, u128, u128, Option<u32>)>) {
    println!(
        "//! | N | c / p | stake | k | q new | q floor | trap overhead new / floor | all-in at floor | lots to catch r = 10 % at 99 % (at q new / at q floor, no discount) |"
    );
    println!("//! |---|---|---|---|---|---|---|---|---|");
    for (n, c, pay, stake, cap) in rows {
        let mut p = LifetimeParams::new(n, Amount::new(c), Amount::new(pay), Amount::new(stake));
        p.max_traps = cap.unwrap_or(p.max_traps);
        let pol = plan(&p).expect("reachable target");
        let m = p.corrupted();
        let floor_overhead = pol.overhead(u32::MAX);
        println!(
            "//! | {n} | {c} / {pay} | {stake} | {} | {:.3} | {:.3} | {:.2} % / {:.2} % | {:.2} % | {} / {} |",
            pol.traps,
            pol.new_rate.as_f64(),
            pol.floor.as_f64(),
            100.0 * pol.overhead(0),
            100.0 * floor_overhead,
            200.0 * floor_overhead,
            lots_to_catch(&pol, m, 0),
            lots_to_catch(&pol, m, u32::MAX),
        );
    }
}

fn per_lot() {
    println!(
        "//! | n | deterrence k | assurance k (q = 0 / 0.9 / 0.99) | overhead k/n (q = 0 / 0.9 / 0.99) | deterrent stake if b = 10 |"
    );
    println!("//! |---|---|---|---|---|");
    for n in [4u32, 10, 40, 100, 1_000, 10_000] {
        let mut ks = Vec::new();
        let mut overheads = Vec::new();
        let mut deterrence = None;
        for q in [0.0, 0.9, 0.99] {
            let mut p = Params::new(n, Amount::new(8), Amount::new(10), Amount::new(1_000));
            p.credibility = q;
            let a = optimize_traps(&p).expect("valid parameters");
            deterrence = a.deterrence;
            ks.push(show(a.assurance));
            overheads.push(format!("{:.1} %", 100.0 * a.overhead(n)));
        }
        let mut attacked = Params::new(n, Amount::new(8), Amount::new(10), Amount::new(1_000));
        attacked.gain_per_corruption = Amount::new(10);
        let stake = optimize_traps(&attacked).expect("valid").deterrent_stake;
        println!(
            "//! | {n} | {} | {} | {} | {} |",
            show(deterrence),
            ks.join(" / "),
            overheads.join(" / "),
            stake.map_or("—".into(), |s| s.to_string())
        );
    }
}
