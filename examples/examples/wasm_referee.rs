//! Disputed traps settled by deterministic re-execution: `cargo run --release --example wasm_referee`.
use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let r = idlegrid_examples::wasm_referee::run(Default::default())?;
    for c in [&r.framing, &r.cheating] {
        println!(
            "{}: verdict {:?}, client {:+}, provider {:+}",
            c.name, c.verdict, c.client_delta, c.provider_delta
        );
    }
    Ok(())
}
