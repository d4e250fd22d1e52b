//! `idlegrid bench --compare-sim`: the same committee size, latency matrix,
//! offered load and transaction size in the simulator's `consensus`
//! scenario. The CLI does not depend on the simulator crate (both drive
//! `idlegrid-node`; neither drives the other), so it writes a scenario file
//! and runs the `idlegrid-sim` binary on it, reading its `summary.json`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::Latency;
use crate::CliError;

/// The simulator's figures for one run.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SimFigures {
    /// Committed transactions per virtual second.
    pub committed_tx_per_s: f64,
    /// Submission → commit at the submitting validator, ms.
    pub latency_ms_p50: f64,
    /// Same, 99th percentile.
    pub latency_ms_p99: f64,
}

/// What the scenario mirrors.
#[derive(Debug, Clone)]
pub struct SimRun {
    /// Validators.
    pub validators: usize,
    /// Offered load, total tx/s.
    pub load: f64,
    /// Bytes per transaction.
    pub tx_bytes: usize,
    /// The real validators' leader timeout, ms.
    pub leader_timeout_ms: u64,
    /// The real validators' leaders per round.
    pub leaders_per_round: u32,
    /// Virtual time, ms.
    pub duration_ms: u64,
    /// Latency between validators.
    pub latency: Latency,
}

/// The scenario file for `run`: no faults, no Byzantine validators, no
/// jitter or loss, unlimited bandwidth; validators placed round-robin over
/// the matrix's regions as the relay places them.
pub fn scenario_toml(run: &SimRun) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "name = \"bench-compare\"\nseed = 1\nduration_ms = {}\nmachine = \"consensus\"\n",
        run.duration_ms
    );
    let _ = writeln!(
        s,
        "[network]\npreset = \"custom\"\njitter = 0.0\nloss = 0.0\nupload_mbps = 0.0\n"
    );
    let (names, ms): (Vec<String>, Vec<Vec<u64>>) = match &run.latency {
        Latency::None => (vec!["loopback".into()], vec![vec![0]]),
        Latency::Relay(m) => (m.names.clone(), m.one_way_ms.clone()),
    };
    for (name, row) in names.iter().zip(&ms) {
        let row: Vec<String> = row.iter().map(u64::to_string).collect();
        let _ = writeln!(
            s,
            "[[network.regions]]\nname = \"{name}\"\nlatency_ms = [{}]\n",
            row.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "[nodes]\ncount = {}\n\n[consensus]\ntx_per_second = {:?}\ntx_bytes = {}\nleader_timeout_ms = {}\nleaders_per_round = {}",
        run.validators,
        run.load / run.validators as f64,
        run.tx_bytes,
        run.leader_timeout_ms,
        run.leaders_per_round
    );
    s
}

/// Where the `idlegrid-sim` binary is: `given`, or beside this executable.
pub fn sim_binary(given: Option<&Path>) -> Result<PathBuf, CliError> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()
            .map_err(|e| CliError::io(Path::new("idlegrid"), e))?
            .with_file_name("idlegrid-sim"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(CliError::Invalid(format!(
            "no simulator at {}: build it (`cargo build --release -p idlegrid-sim`) or pass --sim-bin",
            path.display()
        )))
    }
}

/// Runs the scenario for `run` with `sim` in a scratch dir under `work`.
pub fn run_sim(sim: &Path, run: &SimRun, work: &Path) -> Result<SimFigures, CliError> {
    std::fs::create_dir_all(work).map_err(|e| CliError::io(work, e))?;
    let file = work.join("scenario.toml");
    std::fs::write(&file, scenario_toml(run)).map_err(|e| CliError::io(&file, e))?;
    let out = work.join("out");
    let o = std::process::Command::new(sim)
        .arg("run")
        .arg(&file)
        .args(["--no-progress", "--out"])
        .arg(&out)
        .output()
        .map_err(|e| CliError::io(sim, e))?;
    if !o.status.success() {
        return Err(CliError::Invalid(format!(
            "{} run {} failed: {}",
            sim.display(),
            file.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    let summary = out.join("summary.json");
    let text = std::fs::read_to_string(&summary).map_err(|e| CliError::io(&summary, e))?;
    parse_summary(&text).ok_or_else(|| CliError::Config {
        path: summary,
        detail: "no consensus figures in the summary".into(),
    })
}

/// The consensus figures of a simulator `summary.json`.
pub fn parse_summary(text: &str) -> Option<SimFigures> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let c = &v["consensus"];
    Some(SimFigures {
        committed_tx_per_s: c["transactions_per_second"].as_f64()?,
        latency_ms_p50: c["commit_latency_ms"]["p50"].as_f64()?,
        latency_ms_p99: c["commit_latency_ms"]["p99"].as_f64()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::relay::LatencyMatrix;

    #[test]
    fn scenario_carries_size_load_and_matrix() {
        let run = SimRun {
            validators: 4,
            load: 400.0,
            tx_bytes: 150,
            leader_timeout_ms: 200,
            leaders_per_round: 1,
            duration_ms: 10_000,
            latency: Latency::Relay(LatencyMatrix::world6()),
        };
        let s = scenario_toml(&run);
        let v: toml::Value = toml::from_str(&s).unwrap();
        assert_eq!(v["nodes"]["count"].as_integer(), Some(4));
        assert_eq!(v["consensus"]["tx_per_second"].as_float(), Some(100.0));
        assert_eq!(v["consensus"]["tx_bytes"].as_integer(), Some(150));
        assert_eq!(v["consensus"]["leader_timeout_ms"].as_integer(), Some(200));
        assert_eq!(v["consensus"]["leaders_per_round"].as_integer(), Some(1));
        let regions = v["network"]["regions"].as_array().unwrap();
        assert_eq!(regions.len(), 6);
        assert_eq!(regions[2]["name"].as_str(), Some("eu-central"));
        assert_eq!(regions[0]["latency_ms"][2].as_integer(), Some(45));
    }

    #[test]
    fn summary_figures_are_read_or_refused() {
        let ok = r#"{"consensus":{"transactions_per_second":192.5,
            "commit_latency_ms":{"p50":315.4,"p90":409.6,"p99":573.4}}}"#;
        let f = parse_summary(ok).unwrap();
        assert_eq!(f.committed_tx_per_s, 192.5);
        assert_eq!((f.latency_ms_p50, f.latency_ms_p99), (315.4, 573.4));
        assert!(parse_summary(r#"{"marketplace":{}}"#).is_none());
        assert!(parse_summary("not json").is_none());
    }
}
