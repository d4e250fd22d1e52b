//! Per-client valuations, the price spreads in the summary and the
//! reputation filter as scenario settings: validation, determinism per
//! seed, and that each switch changes what the market does.

use idlegrid_sim::runner::{self, RunOptions};
use idlegrid_sim::scenario::Scenario;
use serde_json::Value;

/// A marketplace small enough for a debug test (a couple of seconds).
const SMALL: &str = r#"
name = "valuation"
duration_ms = 40_000
machine = "marketplace"
[nodes]
count = 7
[marketplace]
active_secs = 10
[marketplace.providers]
count = 30
cheater_fraction = 0.0
[marketplace.clients]
count = 8
framing = 0
job_interval_ms = 2_000
"#;

fn with(extra: &str) -> String {
    format!("{SMALL}{extra}")
}

fn err(text: &str) -> String {
    match Scenario::parse(text) {
        Ok(_) => panic!("accepted invalid scenario:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn run(text: &str, seed: u64) -> Value {
    let s = Scenario::parse(text).unwrap();
    let opts = RunOptions {
        seed: Some(seed),
        ..RunOptions::default()
    };
    serde_json::to_value(runner::run(&s, &opts).unwrap().summary).unwrap()
}

fn spread(v: &Value, k: &str) -> [u64; 5] {
    let s = &v["market"]["price_spread"][k];
    ["min", "p10", "p50", "p90", "max"].map(|q| s[q].as_u64().unwrap_or_else(|| panic!("{k}.{q}")))
}

const LOGNORMAL: &str = r#"[marketplace.clients.valuation]
kind = "lognormal"
median = 9_000.0
sigma = 0.4
min = 2_000
max = 30_000
"#;

#[test]
fn bad_valuations_and_filters_name_the_field_and_range() {
    let cases = [
        (
            with("[marketplace.clients.valuation]\nkind = \"uniform\"\nmin = 9_000\nmax = 8_000\n"),
            "`marketplace.clients.valuation.max` must be in 9000..=",
        ),
        (
            with(
                "[marketplace.clients.valuation]\nkind = \"normal\"\nmean = 1.0\nstd_dev = 5.0\nmin = 6_000\nmax = 9_000\n",
            ),
            "`marketplace.clients.valuation.mean` must be in 6000..=9000",
        ),
        (
            with(&LOGNORMAL.replace("sigma = 0.4", "sigma = 0.0")),
            "`marketplace.clients.valuation.sigma` must be in (0, 4], got 0",
        ),
        (
            with(&LOGNORMAL.replace("sigma = 0.4", "sigma = 9.0")),
            "`marketplace.clients.valuation.sigma` must be in (0, 4]",
        ),
        (
            with(&LOGNORMAL.replace("max = 30_000", "max = 3_000")),
            "`marketplace.clients.valuation.median`",
        ),
        (
            with(
                &LOGNORMAL
                    .replace("min = 2_000\nmax = 30_000", "min = 100\nmax = 5_000")
                    .replace("9_000.0", "1_000.0"),
            ),
            "`marketplace.clients.valuation.max` is below every provider's ask",
        ),
        (
            SMALL.replace("framing = 0", "framing = 0\nmax_price = 9_000") + LOGNORMAL,
            "`marketplace.clients.max_price` conflicts with `marketplace.clients.valuation`",
        ),
        (
            with("[marketplace.clients.valuation]\nkind = \"pareto\"\n"),
            "unknown variant `pareto`",
        ),
        (
            with(&LOGNORMAL.replace("median", "mean")),
            "unknown field `mean`",
        ),
        (
            with("[marketplace.reputation]\nfilter = \"min\"\n"),
            "`marketplace.reputation.min_score_bps` is required",
        ),
        (
            with("[marketplace.reputation]\nfilter = \"min\"\nmin_score_bps = 10_001\n"),
            "`marketplace.reputation.min_score_bps` must be in 0..=10000",
        ),
        (
            with("[marketplace.reputation]\nfilter = \"off\"\nmin_score_bps = 10\n"),
            "`marketplace.reputation.min_score_bps` is only used with",
        ),
        (
            with("[marketplace.reputation]\nfilter = \"eigen\"\n"),
            "unknown variant `eigen`",
        ),
        (
            with("[marketplace.reputation]\nmin_trust_bps_of_mean = 5_000\n"),
            "`marketplace.reputation.min_trust_bps_of_mean` is only used with `global_trust = true`",
        ),
        (
            with(
                "[marketplace.reputation]\nglobal_trust = true\nmin_trust_bps_of_mean = 1_000_001\n",
            ),
            "`marketplace.reputation.min_trust_bps_of_mean` must be in 0..=1000000",
        ),
    ];
    for (text, want) in &cases {
        let e = err(text);
        assert!(e.contains(want), "expected {want:?} in: {e}");
    }
}

#[test]
fn limits_are_drawn_per_client_from_the_seed() {
    let text = with(LOGNORMAL);
    let (a, b, c) = (run(&text, 5), run(&text, 5), run(&text, 6));
    let limits = spread(&a, "client_limit");
    assert_eq!(limits, spread(&b, "client_limit"));
    assert_eq!(a["run_digest"], b["run_digest"]);
    assert_ne!(
        limits,
        spread(&c, "client_limit"),
        "another seed, other limits"
    );
    assert!(limits[0] >= 2_000 && limits[4] <= 30_000, "{limits:?}");
    assert!(limits[0] < limits[4], "clients differ: {limits:?}");
    // The providers' side: asks uniform in [6000, 10000], cost half the
    // first ask, adaptive floors 10 % over cost.
    let (ask, cost, floor) = (
        spread(&a, "provider_first_ask"),
        spread(&a, "provider_cost"),
        spread(&a, "provider_ask_floor"),
    );
    assert!(ask[0] >= 6_000 && ask[4] <= 10_000, "{ask:?}");
    assert_eq!(
        cost.map(|x| x * 2 / 100),
        ask.map(|x| x / 100),
        "{cost:?} {ask:?}"
    );
    assert_eq!(floor, cost.map(|x| x * 11 / 10));
}

#[test]
fn a_degenerate_distribution_runs_exactly_as_one_max_price() {
    // Limits come from their own seed stream: a uniform draw that can only
    // give 10,000 leaves every other draw, hence the digest, unchanged.
    let fixed = run(SMALL, 2);
    let uniform = run(
        &with("[marketplace.clients.valuation]\nkind = \"uniform\"\nmin = 10_000\nmax = 10_000\n"),
        2,
    );
    assert_eq!(fixed["run_digest"], uniform["run_digest"]);
    assert_eq!(spread(&fixed, "client_limit"), [10_000; 5]);
}

#[test]
fn valuations_and_the_filter_change_the_market() {
    let matches = |v: &Value| v["market"]["matches"].as_u64().unwrap();
    let base = run(SMALL, 3);
    assert!(matches(&base) > 0);
    // Clients who value compute below most first asks pay less for it:
    // their limit caps the price, and idle providers undercut towards
    // their floors to trade.
    let low = run(
        &with("[marketplace.clients.valuation]\nkind = \"uniform\"\nmin = 6_000\nmax = 7_000\n"),
        3,
    );
    let price = |v: &Value| v["market"]["clearing_price"]["mean"].as_f64().unwrap();
    assert!(matches(&low) > 0);
    assert!(price(&low) <= 7_000.0, "a limit is a cap: {}", price(&low));
    assert!(
        price(&low) < price(&base) - 500.0,
        "low limits {} vs {}",
        price(&low),
        price(&base)
    );
    // A filter nobody passes (a perfect score) stops every match.
    let strict = run(
        &with("[marketplace.reputation]\nfilter = \"min\"\nmin_score_bps = 10_000\n"),
        3,
    );
    assert_eq!(matches(&strict), 0);
    // No filter at all still trades.
    let off = run(&with("[marketplace.reputation]\nfilter = \"off\"\n"), 3);
    assert!(matches(&off) > 0);
    assert_eq!(off["reputation"]["global_trust"]["enabled"], false);
}

#[test]
fn global_trust_gates_records_from_the_first_epoch() {
    // Clients post for 30 s: three reputation epochs. Gated at 100 times
    // the mean trust no provider's record counts once trust is computed:
    // the scores validators filter by fall to a newcomer's, while the same
    // run without the gate ends with proven providers.
    let long = SMALL.replace("active_secs = 10", "active_secs = 30");
    let plain = run(&long, 4);
    let gated = run(
        &format!(
            "{long}[marketplace.reputation]\nglobal_trust = true\nmin_trust_bps_of_mean = 1_000_000\n"
        ),
        4,
    );
    let honest = |v: &Value| {
        v["reputation"]["mean_score_by_behaviour"]["honest"]
            .as_f64()
            .unwrap()
    };
    let g = &gated["reputation"]["global_trust"];
    assert_eq!(g["enabled"], true);
    assert_eq!(g["computed"], true);
    assert!(g["providers_gated"].as_u64().unwrap() > 0, "{g}");
    assert!(honest(&plain) > 0.0, "{}", plain["reputation"]);
    assert_eq!(honest(&gated), 0.0, "{}", gated["reputation"]);
    assert_eq!(gated["ledger"]["invariant_violations"], 0);
}
