//! Running a scenario and reading its summary in tests.
#![allow(dead_code)]

use idlegrid_sim::report::Summary;
use idlegrid_sim::runner::{self, RunOptions};
use idlegrid_sim::scenario::Scenario;

/// The whole number at dotted `path` (e.g. `jobs.completed`).
///
/// # Panics
/// If it is missing or not a whole number (a test failure).
pub fn get(v: &serde_json::Value, path: &str) -> u64 {
    path.split('.')
        .fold(v, |v, k| &v[k])
        .as_u64()
        .unwrap_or_else(|| panic!("{path} missing: {v}"))
}

/// The summary of `s` run with `seed`.
///
/// # Panics
/// If the run fails (an invariant, an unsettled job: a test failure).
pub fn run_seed(s: &Scenario, seed: u64) -> Summary {
    let opts = RunOptions {
        seed: Some(seed),
        ..RunOptions::default()
    };
    match runner::run(s, &opts) {
        Ok(out) => out.summary,
        Err(e) => panic!("seed {seed}: {e}"),
    }
}
