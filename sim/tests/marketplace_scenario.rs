//! Marketplace scenarios: the TOML format (built-ins, unknown fields, bad
//! values), the library entry point and the CLI (`run`, `scenarios`).

mod cli_support;

use cli_support::{bin, read_summary, stdout_ok, tmp};
use idlegrid_sim::runner::{self, RunOptions};
use idlegrid_sim::scenario::{BUILTIN_SCENARIOS, MachineKind, Scenario};

/// A marketplace small enough for a debug test (a few seconds).
const SMALL: &str = r#"
name = "small-market"
duration_ms = 40_000
machine = "marketplace"
[nodes]
count = 7
[marketplace]
active_secs = 10
[marketplace.providers]
count = 40
cheater_fraction = 0.2
[marketplace.clients]
count = 6
framing = 1
job_interval_ms = 2_000
"#;

fn err(text: &str) -> String {
    match Scenario::parse(text) {
        Ok(_) => panic!("accepted invalid scenario:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// A scenario's bound on pending events is the marketplace engine's: a
/// run whose start-up subscriptions exceed it stops there, naming it (the
/// marketplace once built its engine settings without it).
#[test]
fn the_scenario_s_event_queue_bound_reaches_the_marketplace_engine() {
    let text = SMALL
        .replace(
            "machine = \"marketplace\"",
            "machine = \"marketplace\"\nmax_queue_len = 1_000",
        )
        .replace("count = 40", "count = 300");
    let s = Scenario::parse(&text).expect("valid");
    let cfg = s.marketplace_config(1, "replay".into()).expect("valid");
    assert_eq!(cfg.max_queue_len, 1_000);
    let Err(e) = idlegrid_sim::marketplace::run::run_marketplace(&cfg) else {
        panic!("300 light nodes subscribing to 7 validators overflow 1 000 events");
    };
    assert!(
        e.to_string()
            .contains("event queue is full (1000 pending events)"),
        "{e}"
    );
    let huge = Scenario::named_or_file("huge").unwrap();
    let cfg = huge.marketplace_config(1, "replay".into()).unwrap();
    assert_eq!(cfg.max_queue_len, 40_000_000);
}

#[test]
fn builtin_scenarios_parse_and_large_is_large() {
    let names: Vec<_> = BUILTIN_SCENARIOS.iter().map(|(n, _)| *n).collect();
    for want in [
        "default",
        "cheaters",
        "framing",
        "partition",
        "byzantine",
        "large",
        "huge",
        "consensus",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for (name, text) in BUILTIN_SCENARIOS {
        let s = Scenario::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!s.description.is_empty(), "{name} has no description");
        if s.machine == MachineKind::Marketplace {
            s.marketplace_config(1, "replay".into())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
    let large = Scenario::named_or_file("large").unwrap();
    let m = large.marketplace.as_ref().unwrap();
    assert!(large.nodes.count >= 100);
    assert!(m.providers.count >= 10_000 && m.clients.count >= 1_000);
    let huge = Scenario::named_or_file("huge").unwrap();
    let m = huge.marketplace.as_ref().unwrap();
    assert_eq!(huge.nodes.count, 200);
    assert!(m.providers.count == 100_000 && m.clients.count == 10_000);
    assert_eq!(huge.duration_ms, 60_000);
}

#[test]
fn unknown_marketplace_fields_are_named() {
    let e = err(&SMALL.replace("cheater_fraction", "cheeter_fraction"));
    assert!(e.contains("unknown field `cheeter_fraction`"), "{e}");
    let e = err(&format!("{SMALL}[marketplace.providers.mix]\nsybil = 1\n"));
    assert!(e.contains("unknown field `sybil`"), "{e}");
    let e = err(&SMALL.replace("active_secs", "active_ms"));
    assert!(e.contains("active_ms"), "{e}");
}

#[test]
fn bad_marketplace_values_name_the_field() {
    let cases = [
        (
            SMALL.replace("cheater_fraction = 0.2", "cheater_fraction = 1.5"),
            "`marketplace.providers.cheater_fraction`",
        ),
        (
            SMALL.replace("framing = 1", "framing = 9"),
            "`marketplace.clients.framing`",
        ),
        (
            SMALL.replace("active_secs = 10", "active_secs = 40"),
            "`marketplace.active_secs`",
        ),
        (
            format!("{SMALL}max_price = 10\n"),
            "`marketplace.clients.max_price`",
        ),
        (
            format!("{SMALL}[marketplace.entrap]\nverification = \"replicate\"\n"),
            "`marketplace.entrap.verification`",
        ),
        (
            SMALL.replace("machine = \"marketplace\"", "machine = \"consensus\""),
            "`marketplace`",
        ),
        (
            SMALL.replace("[marketplace]\nactive_secs = 10\n", "").replace(
                "[marketplace.providers]\ncount = 40\ncheater_fraction = 0.2\n[marketplace.clients]\ncount = 6\nframing = 1\njob_interval_ms = 2_000\n",
                "",
            ),
            "`marketplace`",
        ),
    ];
    for (text, field) in cases {
        let e = err(&text);
        assert!(e.contains(field), "expected {field} in: {e}");
    }
    let e = Scenario::named_or_file("no-such-scenario")
        .unwrap_err()
        .to_string();
    assert!(e.contains("default, cheaters"), "{e}");
}

#[test]
fn unreachable_trap_targets_are_refused_before_the_run_with_the_fix() {
    let small_lots = format!("{SMALL}subtasks_per_lot = 4\n");
    // Four subtasks per lot: catching 10 % corruption 99 % of the time
    // needs 17 traps, above the default cap of 2 n + 4 = 12 — refused, not
    // silently run with fewer traps.
    let e = err(&small_lots);
    assert!(e.contains("`marketplace.entrap`"), "{e}");
    assert!(e.contains("needs 17 traps, above the cap of 12"), "{e}");
    // Raising the cap meets it.
    let entrap = "[marketplace.entrap]\nmax_traps_per_lot = 17\n";
    let ok = small_lots.replace(
        "[marketplace.providers]",
        &format!("{entrap}[marketplace.providers]"),
    );
    let s = Scenario::parse(&ok).unwrap();
    assert_eq!(
        s.marketplace_config(1, String::new())
            .unwrap()
            .trap_targets
            .max_traps,
        Some(17)
    );
    // A stake too small to deter names the stake that does: cost 250 per
    // subtask against pay 165 at the lowest ask floor, 17 slots with one
    // trap, so 17 · 85 + 1.
    let stake = |s: u64| {
        SMALL.replace(
            "active_secs = 10\n",
            &format!("active_secs = 10\nstake_per_slot = {s}\n"),
        )
    };
    let e = err(&stake(1_445));
    assert!(e.contains("`marketplace.stake_per_slot`"), "{e}");
    assert!(e.contains("a stake of at least 1446 deters it"), "{e}");
    Scenario::parse(&stake(1_446)).unwrap();
    // Lifetime mode: a stake that cannot deter even with traps in every
    // lot names the one that does (20 slots: 20 · 250 > 20 · 165 + S until
    // S = 1 701), and an assurance four-subtask lots cannot reach within
    // five lots names the horizon that would.
    let lifetime = |text: &str, lots: u32| {
        text.replace(
            "[marketplace.providers]",
            &format!("[marketplace.entrap]\nlifetime_lots = {lots}\n[marketplace.providers]"),
        )
    };
    Scenario::parse(&lifetime(SMALL, 20)).unwrap();
    let e = err(&lifetime(&stake(1_700), 20));
    assert!(e.contains("`marketplace.stake_per_slot`"), "{e}");
    assert!(e.contains("a stake of at least 1701 deters it"), "{e}");
    Scenario::parse(&lifetime(&stake(1_701), 20)).unwrap();
    let e = err(&lifetime(&small_lots, 5));
    assert!(e.contains("`marketplace.entrap`"), "{e}");
    assert!(e.contains("a horizon of 21 lots would meet it"), "{e}");
    // Out-of-range fields are named.
    for (field, line) in [
        ("`marketplace.entrap.confidence`", "confidence = 1.0"),
        ("`marketplace.entrap.cheat_rate`", "cheat_rate = 0.0"),
        (
            "`marketplace.entrap.max_traps_per_lot`",
            "max_traps_per_lot = 0",
        ),
    ] {
        let text = SMALL.replace(
            "[marketplace.providers]",
            &format!("[marketplace.entrap]\n{line}\n[marketplace.providers]"),
        );
        let e = err(&text);
        assert!(e.contains(field), "expected {field} in: {e}");
    }
}

#[test]
fn reuse_rule_fields_are_checked_and_named() {
    let entrap = |lines: &str| {
        SMALL.replace(
            "[marketplace.providers]",
            &format!("[marketplace.entrap]\n{lines}\n[marketplace.providers]"),
        )
    };
    let ok = "lifetime_lots = 20\nreuse_fraction = 0.75\nreuse_max_uses = 4\nreuse_max_age_s = 600";
    Scenario::parse(&entrap(ok)).unwrap();
    Scenario::parse(&entrap(&format!("{ok}\nreuse_guarded = false"))).unwrap();
    for (field, lines) in [
        (
            "`marketplace.entrap.reuse_fraction`",
            "reuse_fraction = 0.5",
        ),
        (
            "`marketplace.entrap.reuse_fraction`",
            "lifetime_lots = 20\nreuse_fraction = 1.5",
        ),
        (
            "`marketplace.entrap.reuse_max_uses`",
            "lifetime_lots = 20\nreuse_fraction = 0.5\nreuse_max_uses = 0",
        ),
        (
            "`marketplace.entrap.reuse_max_age_s`",
            "lifetime_lots = 20\nreuse_fraction = 0.5\nreuse_max_age_s = 0",
        ),
        ("unknown field `reuse_rate`", "reuse_rate = 0.5"),
    ] {
        let e = err(&entrap(lines));
        assert!(e.contains(field), "expected {field} in: {e}");
    }
    let e = err(&entrap("reuse_fraction = 0.5"));
    assert!(e.contains("needs lifetime mode"), "{e}");
}

#[test]
fn library_run_reports_the_issue_keys_and_is_deterministic() {
    let s = Scenario::parse(SMALL).unwrap();
    let out = runner::run(&s, &RunOptions::default()).unwrap();
    let v = serde_json::to_value(&out.summary).unwrap();
    let keys: &[(&str, &[&str])] = &[
        (
            "ledger",
            &[
                "initial_supply",
                "final_supply",
                "burned",
                "invariant_violations",
            ],
        ),
        (
            "market",
            &["orders", "matches", "volume", "clearing_price", "welfare"],
        ),
        (
            "jobs",
            &["submitted", "completed", "failed", "latency_seconds"],
        ),
        (
            "entrap",
            &[
                "traps_planted",
                "trap_ratio",
                "cheating_providers",
                "cheaters_caught",
                "detection_rate",
                "honest_slashed",
                "framing_attempts",
                "framings_caught",
                "verification_overhead",
                "verification_overhead_steady",
                "verification_overhead_by_source",
            ],
        ),
        (
            "economics",
            &[
                "honest_profit_mean",
                "cheater_profit_mean",
                "profit_by_behaviour",
            ],
        ),
        ("reputation", &["mean_score_by_behaviour"]),
    ];
    for (section, names) in keys {
        for k in *names {
            assert!(v[section].get(k).is_some(), "{section}.{k} missing");
        }
    }
    for k in ["mean", "p50", "p90"] {
        assert!(v["market"]["clearing_price"][k].is_number(), "{k}");
    }
    for k in ["p50", "p90", "p99"] {
        assert!(v["jobs"]["latency_seconds"][k].is_number(), "{k}");
    }
    for k in [
        "scenario",
        "seed",
        "run_digest",
        "events",
        "network",
        "replay_command",
    ] {
        assert!(v.get(k).is_some(), "engine key {k} missing");
    }
    assert_eq!(v["machine"], "marketplace");
    // The engine's consensus interface keys hold for the marketplace too.
    for k in [
        "validators",
        "committed_blocks",
        "committed_transactions",
        "transactions_per_second",
        "equivocations_detected",
    ] {
        assert!(v["consensus"][k].is_number(), "consensus.{k} missing");
    }
    assert!(v["consensus"]["committed_blocks"].as_u64().unwrap() > 0);
    for k in ["p50", "p90", "p99"] {
        assert!(v["consensus"]["commit_latency_ms"][k].is_number(), "{k}");
        assert!(
            v["consensus"]["commit_latency_message_delays"][k].is_number(),
            "{k}"
        );
    }
    assert_eq!(v["ledger"]["invariant_violations"], 0);
    assert!(v["jobs"]["completed"].as_u64().unwrap() > 0);
    assert_eq!(v["jobs"]["failed"], 0);
    let honest = &v["economics"]["profit_by_behaviour"]["honest"];
    assert!(honest["mean"].as_f64().unwrap() > 0.0, "{honest}");
    assert!(v["economics"]["cheater_profit_mean"].as_f64().unwrap() < 0.0);
    let text = out.summary.to_text();
    for want in [
        "jobs",
        "cheaters",
        "detection rate",
        "honest mean",
        "supply conserved: yes",
    ] {
        assert!(text.contains(want), "{want} missing in:\n{text}");
    }
    let det = runner::check_determinism(&s, Some(2)).unwrap();
    assert!(det.is_deterministic(), "{}", det.describe());
}

#[test]
fn cli_lists_scenarios_and_runs_a_marketplace_file() {
    let out = bin().arg("scenarios").output().unwrap();
    assert!(out.status.success());
    let list = String::from_utf8(out.stdout).unwrap();
    for name in [
        "default",
        "cheaters",
        "framing",
        "partition",
        "byzantine",
        "large",
        "huge",
    ] {
        assert!(
            list.lines().any(|l| l.starts_with(name) && l.len() > 30),
            "{name} not listed with a description:\n{list}"
        );
    }
    let dir = tmp("market");
    let scen = dir.join("small.toml");
    std::fs::write(&scen, SMALL).unwrap();
    let out = bin()
        .args([
            "run",
            scen.to_str().unwrap(),
            "--no-progress",
            "--plots",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    let text = stdout_ok(out);
    assert!(text.contains("supply conserved: yes"), "{text}");
    let json: serde_json::Value = read_summary(&dir);
    assert!(json["entrap"]["detection_rate"].is_number());
    // `--plots`: the marketplace time series, as SVG and CSV.
    let svg = std::fs::read_to_string(dir.join("marketplace.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("polyline"), "{svg}");
    let series = std::fs::read_to_string(dir.join("marketplace.csv")).unwrap();
    assert!(series.starts_with(
        "second,clearing_price,matches,jobs_completed,honest_balance,cheater_balance\n"
    ));
    assert!(series.lines().count() > 30, "{series}");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, SMALL.replace("count = 40", "count = 40\ncolour = 1")).unwrap();
    let out = bin().args(["run", bad.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8(out.stderr).unwrap();
    assert!(e.contains("unknown field `colour`"), "{e}");
    let out = bin().args(["run", "nosuch"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sweep_over_a_parameter_writes_csv_and_svg() {
    let dir = std::env::temp_dir().join(format!("idlegrid-sim-psweep-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let scen = dir.join("small.toml");
    std::fs::write(&scen, SMALL).unwrap();
    let out = bin()
        .args([
            "sweep",
            scen.to_str().unwrap(),
            "--param",
            "marketplace.providers.cheater_fraction",
            "--values",
            "0.1,0.3",
            "--seeds",
            "1..2",
            "--jobs",
            "2",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("2 points x 1 seeds = 2 runs, 0 failed"),
        "{text}"
    );
    let csv = std::fs::read_to_string(dir.join("sweep.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("marketplace.providers.cheater_fraction,seed,status,entrap.detection_rate,economics.cheater_profit_mean,economics.honest_profit_mean,market.clearing_price.mean,jobs.completed"), "{csv}");
    for (line, value) in lines[1..].iter().zip(["0.1", "0.3"]) {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells[..3], [value, "1", "ok"], "{line}");
        for c in &cells[3..8] {
            c.parse::<f64>()
                .unwrap_or_else(|_| panic!("not a number `{c}` in {line}"));
        }
    }
    // The override took effect: different populations, different runs.
    assert_ne!(lines[1].rsplit(',').next(), lines[2].rsplit(',').next());
    let svg = std::fs::read_to_string(dir.join("entrap_detection_rate.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("circle"), "{svg}");
    assert!(dir.join("economics_cheater_profit_mean.svg").exists());

    let out = bin()
        .args([
            "sweep",
            scen.to_str().unwrap(),
            "--param",
            "marketplace.providers.cheeter_fraction",
            "--values",
            "0.1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8(out.stderr).unwrap();
    assert!(
        e.contains("`marketplace.providers.cheeter_fraction` is not a scenario field"),
        "{e}"
    );
}
