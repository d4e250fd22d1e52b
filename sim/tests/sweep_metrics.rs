//! The metric names a sweep accepts (`sweep::known`) cover every number of
//! a real summary, so a new summary field cannot go unlisted.

use idlegrid_sim::runner::{RunOptions, run};
use idlegrid_sim::scenario::Scenario;
use idlegrid_sim::sweep::{check_metrics, default_metrics};

const TINY_MARKET: &str = "name = \"tiny\"\nduration_ms = 40_000\nmachine = \"marketplace\"\n\
[nodes]\ncount = 4\n[marketplace]\nactive_secs = 6\n\
[marketplace.providers]\ncount = 12\n[marketplace.clients]\ncount = 4\n";
const TINY_CONSENSUS: &str = "name = \"c\"\nduration_ms = 2000\n[nodes]\ncount = 8\n";

fn numeric_leaves(v: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                numeric_leaves(x, &p, out);
            }
        }
        serde_json::Value::String(s) if s.parse::<f64>().is_err() => {}
        serde_json::Value::Array(_) => {}
        _ => out.push(prefix.to_string()),
    }
}

#[test]
fn every_summary_leaf_is_known() {
    for text in [TINY_MARKET, TINY_CONSENSUS] {
        let s = Scenario::parse(text).unwrap();
        let out = run(&s, &RunOptions::default()).expect("run succeeds");
        let json = serde_json::to_value(&out.summary).unwrap();
        let mut leaves = Vec::new();
        numeric_leaves(&json, "", &mut leaves);
        assert!(leaves.len() > 20, "{leaves:?}");
        check_metrics(s.machine, &leaves).expect("every summary number is a known metric");
        check_metrics(s.machine, &default_metrics(s.machine)).unwrap();
    }
}

#[test]
fn misspelt_metrics_name_their_section() {
    let s = Scenario::parse(TINY_MARKET).unwrap();
    let e = check_metrics(s.machine, &["market.volumme".into()])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`market.volumme`") && e.contains("market.volume,"),
        "{e}"
    );
    assert!(!e.contains("entrap."), "{e}");
    let e = check_metrics(s.machine, &["nosuch".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("entrap.…"), "{e}");
}
