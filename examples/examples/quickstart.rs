//! One client, three providers, one job with traps: `cargo run --release --example quickstart`.
use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let report = idlegrid_examples::quickstart::run(Default::default())?;
    println!(
        "\nquickstart done: {} lots, price {}, {} slashed to the client, {} burned",
        report.lots.len(),
        report.price,
        report.slashed_to_client,
        report.burned
    );
    Ok(())
}
