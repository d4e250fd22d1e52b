//! A new clearing rule compared with McAfee: `cargo run --release --example custom_mechanism`.
use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    idlegrid_examples::custom_mechanism::run(Default::default())?;
    Ok(())
}
