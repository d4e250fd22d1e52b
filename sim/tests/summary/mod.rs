//! Reading a run's `summary.json` in tests.

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
