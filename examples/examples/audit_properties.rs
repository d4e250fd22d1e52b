//! An auditor's own properties over the crates' proptest strategies:
//! `cargo run --release --example audit_properties`.
use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let r = idlegrid_examples::audit_properties::run(Default::default())?;
    if r.results.iter().any(|(_, _, f)| f.is_some()) {
        return Err("a property failed".into());
    }
    Ok(())
}
