//! What a reputation-based leader schedule could save, on the analytic
//! model alone: for a scenario at several committee sizes, the ideal
//! three-hop latency and the ideal of Mysticeti's proposal rule
//! (`network::quorum`) with leaders rotating through every node, and with
//! leaders drawn only from the fastest nodes (ranked by their own
//! three-hop ideal, as a schedule rewarding early, well-connected
//! validators tends to on a steady network): the `2f + 1` fastest, and
//! the fastest 80 % (a milder swap of the slowest out). No run: the
//! placement, latency matrix and mean jitter are the scenario's.
//!
//! `cargo run --release -p idlegrid-sim --example leader_ideals -- [SCENARIO] [N,N,...]`
//! (defaults: `throughput`, `10,50,100`).

use idlegrid_primitives::Duration;
use idlegrid_sim::network::quorum::{
    ideal_commit_latency_of, leaders_by_ideal, quorum, threshold_clock_commit_latency_of,
};
use idlegrid_sim::scenario::Scenario;
use idlegrid_sim::sweep::set_param;

fn ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1e3
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "throughput".into());
    let counts = args.next().unwrap_or_else(|| "10,50,100".into());
    let text = Scenario::source_text(&name)?;
    println!(
        "| validators | leaders | ideal 3-hop ms | rule's ideal ms | rule / 3-hop of these leaders | rule / 3-hop of all |"
    );
    println!("|---:|---|---:|---:|---:|---:|");
    for n in counts.split(',') {
        let mut doc: toml::Value = toml::from_str(&text)?;
        set_param(&mut doc, "nodes.count", n.trim())?;
        let s = Scenario::from_toml(doc)?;
        let at: Vec<_> = s.node_specs()?.iter().map(|spec| spec.region).collect();
        let (regions, jitter) = (s.regions()?, s.network.jitter);
        let order = leaders_by_ideal(&regions, &at, jitter);
        let size = at.len();
        let fifth = size - size / 5;
        let sets = [
            ("all", size),
            ("fastest 80 %", fifth),
            ("fastest 2f + 1", quorum(size)),
        ];
        let everyone: Vec<usize> = (0..size).collect();
        let all = ms(ideal_commit_latency_of(&regions, &at, jitter, &everyone));
        for (label, k) in sets {
            // The chosen leaders take turns in index order, as every node
            // does in the rule's ideal the simulator reports: which leader
            // follows which moves the rule's figure, not the chosen set.
            let mut leaders = order[..k].to_vec();
            leaders.sort_unstable();
            let ideal = ms(ideal_commit_latency_of(&regions, &at, jitter, &leaders));
            let rule = ms(threshold_clock_commit_latency_of(
                &regions, &at, jitter, &leaders,
            ));
            println!(
                "| {size} | {label} ({k}) | {ideal:.1} | {rule:.1} | {:.3} | {:.3} |",
                rule / ideal,
                rule / all
            );
        }
    }
    Ok(())
}
