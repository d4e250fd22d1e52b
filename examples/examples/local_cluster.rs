//! Validators over TCP on 127.0.0.1 committing clients' transfers:
//! `cargo run --release --example local_cluster`.
use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let report = idlegrid_examples::local_cluster::run(Default::default())?;
    println!(
        "\nlocal_cluster done: {} validators, {} transfers, {} common commits (digest {}), \
         sequences agree: {}, states agree: {}, balances as planned: {}",
        report.nodes.len(),
        report.transfers,
        report.common_prefix,
        report.prefix_digest.short(),
        report.sequences_agree,
        report.states_agree,
        report.balances_as_expected
    );
    if !(report.sequences_agree && report.states_agree && report.balances_as_expected) {
        return Err("the validators disagree".into());
    }
    Ok(())
}
