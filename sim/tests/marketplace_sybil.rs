//! Whitewashing: a slashed lazy cheater comes back under a fresh key
//! (funded from its old one by a ledger transfer) and keeps cheating; honest
//! newcomers that offer late are the control group. Whitewashed identities
//! must not get work faster than the newcomers, must face the traps of a
//! fresh identity and be caught again; money is conserved and the run is
//! deterministic.

use idlegrid_sim::marketplace::run::SybilConfig;
use idlegrid_sim::marketplace::{MarketplaceConfig, run_marketplace};
use idlegrid_sim::scenario::{BUILTIN_SCENARIOS, Scenario};

fn small(seed: u64) -> MarketplaceConfig {
    MarketplaceConfig {
        seed,
        validators: 7,
        providers: 40,
        clients: 8,
        cheater_fraction: 0.0,
        framing_clients: 0,
        // Long enough for several catch-and-return cycles: a fresh key's
        // first match waits for a sealed batch to close and clear.
        active_secs: 30,
        drain_secs: 30,
        job_interval_secs: 2.0,
        sybil: SybilConfig {
            whitewashers: 6,
            max_identities: 8,
            newcomers: 6,
            join_from_secs: 2,
            join_until_secs: 10,
        },
        ..MarketplaceConfig::default()
    }
}

fn num(v: &serde_json::Value, path: &[&str]) -> f64 {
    path.iter()
        .try_fold(v, |x, k| x.get(*k))
        .and_then(serde_json::Value::as_f64)
        .unwrap_or_else(|| panic!("{} missing in {v}", path.join(".")))
}

/// One group's figures pooled over runs.
#[derive(Debug, Default)]
struct Pool {
    entered: f64,
    matched: f64,
    first_match_s: f64,
    matches: f64,
    presence_s: f64,
    first_lot_traps: Vec<f64>,
    convicted: f64,
    lots_to_conviction: f64,
}

impl Pool {
    fn add(&mut self, g: &serde_json::Value) {
        let matched = num(g, &["identities"]) - num(g, &["never_matched"]);
        self.entered += num(g, &["identities"]);
        self.matched += matched;
        self.first_match_s += matched * num(g, &["time_to_first_match_s", "mean"]);
        self.matches += num(g, &["matches_while_present"]);
        self.presence_s += num(g, &["presence_s"]);
        if matched > 0.0 {
            self.first_lot_traps.push(num(g, &["first_lot_trap_ratio"]));
        }
        self.convicted += num(g, &["convicted"]);
        self.lots_to_conviction += num(g, &["convicted"]) * num(g, &["lots_to_conviction_mean"]);
    }

    fn time_to_first_match_s(&self) -> f64 {
        self.first_match_s / self.matched
    }

    fn work_rate(&self) -> f64 {
        self.matches / self.presence_s
    }
}

/// Whitewashed keys and newcomers are both fresh identities, so their time
/// to a first match has the same distribution (both enter with a fresh
/// ask from the same range); pooled over a few seeds the test allows 30 %
/// of sampling noise and would catch a real head start. Per second of
/// presence the whitewashed keys get less work, because each is caught
/// again on its first lot or soon after.
#[test]
fn whitewashed_identities_do_not_regain_work_faster_than_newcomers() {
    let (mut ww, mut fresh) = (Pool::default(), Pool::default());
    let mut whitewashes = 0.0;
    for seed in 1..=6 {
        let r = run_marketplace(&small(seed)).expect("run succeeds");
        let v = r.summary_json();
        let y = &v["reputation"]["sybil"];
        println!("seed {seed}\n{}", r.render_lines());
        assert!(r.supply_conserved, "seed {seed}: money must be conserved");
        assert_eq!(v["ledger"]["invariant_violations"], 0);
        assert!(r.render().contains("whitewashes by 6 whitewashers"));
        // Whitewashing does not pay.
        let by = &v["economics"]["profit_by_behaviour"];
        assert!(
            num(by, &["whitewashing", "mean"]) < 0.0,
            "seed {seed}: {by}"
        );
        whitewashes += num(y, &["whitewashes"]);
        ww.add(&y["whitewashed"]);
        fresh.add(&y["newcomer"]);
    }
    println!("whitewashed {ww:?}\nnewcomers {fresh:?}");
    // Not vacuous: whitewashing happened and both groups got work.
    assert!(whitewashes >= 15.0, "only {whitewashes} whitewashes");
    assert!(
        ww.matched >= 15.0,
        "only {} whitewashed keys got work",
        ww.matched
    );
    assert!(
        fresh.matched >= 15.0,
        "only {} newcomers got work",
        fresh.matched
    );
    assert!(fresh.work_rate() > 0.0);

    let (a, b) = (ww.time_to_first_match_s(), fresh.time_to_first_match_s());
    assert!(
        a >= 0.7 * b,
        "whitewashed keys matched after {a:.2} s, newcomers after {b:.2} s"
    );
    let (a, b) = (ww.work_rate(), fresh.work_rate());
    assert!(
        a <= b,
        "whitewashed keys got {a:.3} lots/s of presence, newcomers {b:.3}"
    );
    // A fresh key faces a fresh identity's traps on its first lot, and is
    // caught again on it.
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (a, b) = (mean(&ww.first_lot_traps), mean(&fresh.first_lot_traps));
    assert!(
        a >= 0.9 * b && a > 0.5,
        "first-lot traps per real subtask: whitewashed {a:.2}, newcomers {b:.2}"
    );
    assert!(
        ww.convicted >= 0.9 * ww.matched,
        "{} of {} matched whitewashed keys caught again",
        ww.convicted,
        ww.matched
    );
    assert!(ww.lots_to_conviction / ww.convicted <= 1.5);
    assert_eq!(fresh.convicted, 0.0, "an honest newcomer was convicted");

    let a = run_marketplace(&small(1)).expect("run succeeds");
    let b = run_marketplace(&small(1)).expect("run succeeds");
    assert_eq!(a.digest, b.digest, "same seed, same run");
    assert_eq!(a.ledger_digest, b.ledger_digest);
}

#[test]
fn sybil_fields_are_validated_by_name() {
    let base = r#"
name = "s"
duration_ms = 40_000
machine = "marketplace"
[nodes]
count = 7
[marketplace]
active_secs = 16
[marketplace.providers]
count = 40
[marketplace.clients]
count = 6
[marketplace.sybil]
whitewashers = 3
newcomers = 3
join_from_secs = 2
join_until_secs = 10
"#;
    Scenario::parse(base).expect("valid");
    let cases = [
        (
            base.replace("join_until_secs = 10", "join_until_secs = 16"),
            "`marketplace.sybil.join_until_secs`",
        ),
        (
            base.replace("join_from_secs = 2", "join_from_secs = 12"),
            "`marketplace.sybil.join_from_secs`",
        ),
        (
            format!("{base}max_identities = 0\n"),
            "`marketplace.sybil.max_identities`",
        ),
        (
            base.replace("newcomers = 3", "newcomers = 100001"),
            "`marketplace.sybil.newcomers`",
        ),
        (
            base.replace("join_until_secs = 10", "join_until_secs = 0")
                .replace("join_from_secs = 2", "join_from_secs = 0"),
            "`marketplace.sybil.join_until_secs`",
        ),
        (
            base.replace("whitewashers = 3", "whitewashes = 3"),
            "unknown field `whitewashes`",
        ),
    ];
    for (text, want) in cases {
        let e = Scenario::parse(&text).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains(want), "expected {want} in: {e}");
    }
    let cfg = MarketplaceConfig {
        sybil: SybilConfig {
            newcomers: 1,
            join_until_secs: 500,
            ..SybilConfig::default()
        },
        ..MarketplaceConfig::default()
    };
    let e = run_marketplace(&cfg).unwrap_err().to_string();
    assert!(e.contains("sybil.join_until_secs"), "{e}");
    let sybil = BUILTIN_SCENARIOS
        .iter()
        .find(|(n, _)| *n == "sybil")
        .expect("built-in `sybil`");
    let s = Scenario::parse(sybil.1).unwrap();
    let m = s.marketplace_config(1, "replay".into()).unwrap();
    assert!(m.sybil.whitewashers > 0 && m.sybil.newcomers > 0);
}
