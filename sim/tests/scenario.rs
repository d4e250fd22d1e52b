//! Scenario files: the embedded default is valid; bad input gets one clear
//! error naming the field.

use idlegrid_sim::RestartMode;
use idlegrid_sim::scenario::{DEFAULT_SCENARIO, MachineKind, Scenario, ScenarioError};

fn err(text: &str) -> String {
    match Scenario::parse(text) {
        Ok(_) => panic!("accepted invalid scenario:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const BASE: &str = "name = \"t\"\nduration_ms = 1000\n[nodes]\ncount = 4\n";

#[test]
fn default_scenario_is_valid() {
    let d = Scenario::parse(DEFAULT_SCENARIO).unwrap();
    assert_eq!(d.machine, MachineKind::Marketplace);
    assert_eq!(d.nodes.count, 24);
    let s = Scenario::parse(include_str!("../scenarios/consensus.toml")).unwrap();
    assert_eq!(s.machine, MachineKind::Consensus);
    assert_eq!(s.nodes.count, 20);
    assert_eq!(s.restart_mode(), RestartMode::Store);
    assert_eq!(d.restart_mode(), RestartMode::Store);
    let g = Scenario::parse(include_str!("../scenarios/gossip.toml")).unwrap();
    assert_eq!(g.machine, MachineKind::Gossip);
    assert_eq!(g.restart_mode(), RestartMode::Fresh);
    assert_eq!(s.network_config().unwrap().regions.len(), 6);
    assert!(!s.fault_schedule().is_empty());
    Scenario::parse(BASE).unwrap();
}

#[test]
fn malformed_toml() {
    let e = err("name = \"t\"\nduration_ms = = 3\n");
    assert!(e.starts_with("invalid scenario:"), "{e}");
    assert!(e.contains("line 2"), "{e}");
}

#[test]
fn unknown_fields_are_rejected_everywhere() {
    let e = err(&format!("{BASE}colour = 3\n"));
    assert!(e.contains("unknown field `colour`"), "{e}");
    let e = err(&format!("{BASE}[network]\nlos = 0.1\n"));
    assert!(e.contains("unknown field `los`"), "{e}");
    let e = err(&format!(
        "{BASE}[[faults]]\nkind = \"heal\"\nat_ms = 5\nnodes = [1]\n"
    ));
    assert!(e.contains("unknown field `nodes`"), "{e}");
    let e = err(&format!(
        "{BASE}[[faults]]\nkind = \"explode\"\nat_ms = 5\n"
    ));
    assert!(e.contains("explode"), "{e}");
}

#[test]
fn the_removed_signature_switch_says_what_to_do() {
    // Signatures are always verified now; an old scenario that still sets
    // the switch (either way) is refused with the fix, on every machine.
    for machine in ["consensus", "gossip", "crashes"] {
        for on in [false, true] {
            let e = err(&format!(
                "machine = \"{machine}\"\n{BASE}[consensus]\nverify_signatures = {on}\n"
            ));
            assert!(e.contains("`consensus.verify_signatures`"), "{e}");
            assert!(e.contains("always verified"), "{e}");
            assert!(e.contains("delete the line"), "{e}");
        }
    }
}

#[test]
fn invalid_values_name_the_field() {
    let cases = [
        (format!("{BASE}[network]\nloss = 1.5\n"), "`network.loss`"),
        (
            format!("{BASE}[network]\njitter = -0.1\n"),
            "`network.jitter`",
        ),
        (
            format!("{BASE}[network]\nupload_mbps = -5.0\n"),
            "`network.upload_mbps`",
        ),
        (
            format!("{BASE}[network]\nupload_mbps = 1e-9\n"),
            "`network.upload_mbps`",
        ),
        (
            format!("{BASE}[network]\nmax_in_flight_per_link = 0\n"),
            "`network.max_in_flight_per_link`",
        ),
        (
            "name = \"t\"\nduration_ms = 10\nmax_events = 0\n[nodes]\ncount = 4\n".to_string(),
            "`max_events`",
        ),
        (
            "name = \"t\"\nduration_ms = 0\n[nodes]\ncount = 4\n".to_string(),
            "`duration_ms`",
        ),
        (
            "name = \"t\"\nduration_ms = 10\n[nodes]\ncount = 0\n".to_string(),
            "`nodes.count`",
        ),
        (
            "name = \"t\"\nduration_ms = 10\n[nodes]\ncount = 200000\n".to_string(),
            "`nodes.count`",
        ),
        (
            format!("{BASE}[[faults]]\nkind = \"crash\"\nat_ms = 5\nnodes = [9]\n"),
            "`faults[0]`",
        ),
        (
            format!("{BASE}[[faults]]\nkind = \"heal\"\nat_ms = 5000\n"),
            "`faults[0].at_ms`",
        ),
        (
            format!(
                "{BASE}[[faults]]\nkind = \"partition\"\nat_ms = 5\ngroups = [[0, 1], [1, 2]]\n"
            ),
            "`faults[0].groups`",
        ),
        (
            format!("{BASE}[gossip]\ninterval_ms = 0\n"),
            "`gossip.interval_ms`",
        ),
        (
            format!("{BASE}[network]\npreset = \"mars\"\n"),
            "`network.preset`",
        ),
        (
            "name = \"t\"\nduration_ms = 10\n[nodes]\ncount = 2\nregions = [\"atlantis\"]\n"
                .to_string(),
            "`nodes.regions`",
        ),
        (
            "name = \"t\"\nduration_ms = 10\nmachine = \"consensus\"\n[nodes]\ncount = 4\n\
             [[consensus.byzantine]]\nnodes = [1]\nbehavior = \"clock_ahead\"\nahead_ms = 5\n"
                .to_string(),
            "`consensus.byzantine[0].behavior`",
        ),
        (
            "name = \"t\"\nduration_ms = 10\nmachine = \"marketplace\"\n[nodes]\ncount = 4\n\
             [[consensus.byzantine]]\nnodes = [1]\nbehavior = \"clock_ahead\"\n"
                .to_string(),
            "`consensus.byzantine[0].ahead_ms`",
        ),
    ];
    for (text, field) in cases {
        let e = err(&text);
        assert!(e.contains(field), "expected {field} in: {e}");
    }
}

#[test]
fn negative_integer_is_a_type_error() {
    let e = err("name = \"t\"\nduration_ms = -5\n[nodes]\ncount = 4\n");
    assert!(e.contains("duration_ms"), "{e}");
}

#[test]
fn custom_regions() {
    let ok = format!(
        "{BASE}regions = [\"a\", \"b\"]\n[network]\npreset = \"custom\"\n\
         [[network.regions]]\nname = \"a\"\nlatency_ms = [0.5, 40]\n\
         [[network.regions]]\nname = \"b\"\nlatency_ms = [60, 0.5]\n"
    );
    let s = Scenario::parse(&ok).unwrap();
    let r = s.network_config().unwrap().regions;
    let (a, b) = (r.find("a").unwrap(), r.find("b").unwrap());
    assert_eq!(r.latency(a, b).as_millis(), 40);
    assert_eq!(r.latency(b, a).as_millis(), 60);
    assert_eq!(r.latency(a, a).as_micros(), 500);

    let bad = format!(
        "{BASE}[network]\npreset = \"custom\"\n[[network.regions]]\nname = \"a\"\nlatency_ms = [1, 2]\n"
    );
    assert!(err(&bad).contains("`network.regions[0].latency_ms`"));
}

#[test]
fn missing_file_is_an_io_error() {
    let e = Scenario::load(std::path::Path::new("/nonexistent/x.toml")).unwrap_err();
    assert!(matches!(e, ScenarioError::Io { .. }));
    assert!(e.to_string().contains("/nonexistent/x.toml"));
}

#[test]
fn a_bad_fact_window_names_the_field() {
    let window = "fact_window = \"quorum\"";
    let patience = "fact_patience_ms = 2000";
    assert!(DEFAULT_SCENARIO.contains(window) && DEFAULT_SCENARIO.contains(patience));
    let e = err(&DEFAULT_SCENARIO.replace(window, "fact_window = \"half\""));
    assert!(
        e.contains("unknown variant `half`, expected `quorum` or `validity`"),
        "{e}"
    );
    let e = err(&DEFAULT_SCENARIO.replace(patience, "fact_patience_ms = 0"));
    assert!(
        e.contains("`marketplace.fact_patience_ms` must be in 1..=600000, got 0"),
        "{e}"
    );
    let validity = DEFAULT_SCENARIO.replace(window, "fact_window = \"validity\"");
    assert!(Scenario::parse(&validity).is_ok());
}
