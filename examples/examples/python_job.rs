//! A Python script split over providers with traps: `cargo run --release --example python_job`.
use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let r = idlegrid_examples::python_job::run(Default::default())?;
    println!(
        "\npython_job done: {} subtasks, merged output equals single run: {}",
        r.subtasks, r.merged_equals_single
    );
    Ok(())
}
