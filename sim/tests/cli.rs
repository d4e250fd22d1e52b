//! The `idlegrid-sim` binary: default run, outputs, bad input, determinism.

mod cli_support;

use cli_support::{bin, read_summary, stdout_ok, tmp};

const SMALL: &str = "name = \"cli\"\nduration_ms = 2000\n[nodes]\ncount = 8\n";

#[test]
fn run_writes_summary_json_and_csv() {
    let dir = tmp("out");
    let scen = dir.join("s.toml");
    std::fs::write(&scen, SMALL).unwrap();
    let out = bin()
        .args([
            "run",
            scen.to_str().unwrap(),
            "--seed",
            "3",
            "--out",
            dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = stdout_ok(out);
    assert!(text.contains("run digest"), "{text}");
    let json: serde_json::Value = read_summary(&dir);
    for key in [
        "scenario",
        "seed",
        "virtual_seconds",
        "wall_seconds",
        "events",
        "events_per_second",
        "run_digest",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    assert_eq!(json["seed"], 3);
    assert!(json["events"].as_u64().unwrap() > 0);
    let csv = std::fs::read_to_string(dir.join("timeseries.csv")).unwrap();
    assert!(csv.starts_with("second,delivered,"));
    assert_eq!(csv.lines().count(), 3); // header + 2 seconds
    let svg = std::fs::read_to_string(dir.join("timeseries.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("rumors learned / s"),
        "{}",
        &svg[..200.min(svg.len())]
    );
}

#[test]
fn bad_scenario_fails_with_one_clear_message() {
    let dir = tmp("bad");
    let scen = dir.join("bad.toml");
    std::fs::write(&scen, format!("{SMALL}[network]\nloss = 2.0\n")).unwrap();
    let out = bin()
        .args(["run", scen.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("error: invalid scenario: `network.loss`"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains("panicked"));
}

#[test]
fn invariant_failure_exit_code_and_replay() {
    let dir = tmp("inv");
    let scen = dir.join("tight.toml");
    std::fs::write(
        &scen,
        format!("{SMALL}[invariants]\nmax_propagation_ms = 30\n"),
    )
    .unwrap();
    let out = bin()
        .args(["run", scen.to_str().unwrap(), "--seed", "9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("seed:   9"), "{err}");
    assert!(
        err.contains(&format!(
            "replay: idlegrid-sim run {} --seed 9",
            scen.display()
        )),
        "{err}"
    );
}

#[test]
fn check_determinism_passes() {
    let dir = tmp("det");
    let scen = dir.join("s.toml");
    std::fs::write(&scen, SMALL).unwrap();
    let out = bin()
        .args(["check-determinism", scen.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("deterministic")
    );
}

#[test]
#[ignore = "runs the full default marketplace (~15 s in release); use --release"]
fn no_arguments_runs_the_default_scenario() {
    let out = bin().output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "machine marketplace",
        "cheaters",
        "supply conserved: yes",
        "run digest",
    ] {
        assert!(text.contains(want), "{want} missing in:\n{text}");
    }
}

#[test]
fn consensus_summary_json_keys() {
    let dir = tmp("cons");
    let scen = dir.join("c.toml");
    std::fs::write(
        &scen,
        "name = \"c\"\nduration_ms = 2000\nmachine = \"consensus\"\n[nodes]\ncount = 4\n",
    )
    .unwrap();
    let out = bin()
        .args([
            "run",
            scen.to_str().unwrap(),
            "--format",
            "json",
            "--out",
            dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout: serde_json::Value = serde_json::from_str(&stdout_ok(out)).unwrap();
    let file: serde_json::Value = read_summary(&dir);
    assert_eq!(stdout, file);
    let c = &file["consensus"];
    for key in [
        "validators",
        "committed_blocks",
        "committed_transactions",
        "transactions_per_second",
        "equivocations_detected",
    ] {
        assert!(c[key].is_number(), "consensus.{key} missing: {c}");
    }
    for key in ["commit_latency_ms", "commit_latency_message_delays"] {
        for p in ["p50", "p90", "p99"] {
            assert!(c[key][p].is_number(), "consensus.{key}.{p} missing");
        }
    }
    assert!(file["events_per_second"].is_number());
    let csv = std::fs::read_to_string(dir.join("timeseries.csv")).unwrap();
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with("commits,committed_transactions")
    );
}

#[test]
fn sweep_reports_each_seed_and_failures() {
    let dir = tmp("sweep");
    let scen = dir.join("s.toml");
    std::fs::write(&scen, SMALL).unwrap();
    let out = bin()
        .args([
            "sweep",
            scen.to_str().unwrap(),
            "--seeds",
            "1..5",
            "--jobs",
            "2",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.contains(": ok,")).count(),
        4,
        "{text}"
    );
    assert!(text.ends_with("4 seeds, 0 failed\n"), "{text}");

    let tight = dir.join("tight.toml");
    std::fs::write(
        &tight,
        format!("{SMALL}[invariants]\nmax_propagation_ms = 30\n"),
    )
    .unwrap();
    let out = bin()
        .args(["sweep", tight.to_str().unwrap(), "--seeds", "3..5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!(
            "replay: idlegrid-sim run {} --seed 4",
            tight.display()
        )),
        "{text}"
    );
    let bad = bin().args(["sweep", "--seeds", "5..2"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
