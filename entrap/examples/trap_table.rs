//! Prints the optimizer's table of trap counts and overheads for typical
//! parameters (the table in the crate docs comes from this command):
//!
//! ```text
//! cargo run -p idlegrid-entrap --example trap_table
//! ```

use idlegrid_entrap::{Params, TrapCount, optimize_traps};
use idlegrid_primitives::Amount;

fn show(k: Option<TrapCount>) -> String {
    k.map_or("—".into(), |k| k.to_string())
}

fn main() {
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
