//! Seeded statistical tests: trap positions are uniform, and measured
//! detection rates match the optimizer's exact probabilities.

mod common;

use common::plan;
use idlegrid_entrap::Bps;
use idlegrid_entrap::harness::{
    self, ClientBehaviour, HarnessConfig, ProviderBehaviour, expected_detection,
};
use idlegrid_primitives::Seed;

/// Chi-square over trap frequency per position, 4 000 plans of 15 + 5.
/// 19 degrees of freedom; the 99.9 % critical value is 43.82.
#[test]
fn trap_positions_are_uniform() {
    let (n, k, plans) = (15u64, 5u64, 4_000u64);
    let slots = (n + k) as usize;
    let mut counts = vec![0u64; slots];
    let mut first = vec![0u64; slots];
    for seed in 0..plans {
        let p = plan(n, k, 0, seed);
        for pos in p.trap_positions() {
            counts[pos.as_usize()] += 1;
        }
        first[p.trap_positions()[0].as_usize()] += 1;
    }
    let expected = (plans * k) as f64 / slots as f64;
    let chi2: f64 = counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum();
    assert!(chi2 < 43.82, "chi2 = {chi2:.1}, counts = {counts:?}");
    // The first trap's position follows its exact law:
    // P(first = i) = C(slots − 1 − i, k − 1) / C(slots, k).
    let choose = |a: u64, b: u64| -> f64 {
        if b > a {
            0.0
        } else {
            (0..b).map(|i| (a - i) as f64 / (i + 1) as f64).product()
        }
    };
    let total = choose(slots as u64, k);
    let mut chi2_first = 0.0;
    let mut cells = 0;
    for (i, &c) in first.iter().enumerate() {
        let e = plans as f64 * choose((slots - 1 - i) as u64, k - 1) / total;
        if e >= 5.0 {
            chi2_first += (c as f64 - e).powi(2) / e;
            cells += 1;
        }
    }
    // At most 16 cells → ≤ 15 df; 99.9 % critical value for 15 df is 37.70.
    assert!(
        cells <= 16 && chi2_first < 37.70,
        "chi2 = {chi2_first:.1} over {cells} cells"
    );
}

fn check_rate(provider: ProviderBehaviour, rate: Bps, n: u32, k: u32, rounds: u32, seed: u64) {
    let report = harness::run(&HarnessConfig {
        seed: Seed::from_u64(seed),
        rounds,
        n,
        k,
        provider,
        client: ClientBehaviour::Honest,
        committee_size: 3,
    })
    .unwrap();
    let p = expected_detection(n, k, rate);
    let measured = report.detection_rate();
    let sigma = (p * (1.0 - p) / f64::from(report.cheating_rounds)).sqrt();
    assert!(
        (measured - p).abs() <= 4.0 * sigma + 1e-9,
        "{provider:?}: measured {measured:.4}, exact {p:.4} ± {:.4}",
        4.0 * sigma
    );
    assert_eq!(report.honest_slashed, 0);
    assert_eq!(report.invariant_failures, 0);
    assert_eq!(report.cheating_rounds, rounds);
}

#[test]
fn lazy_cheater_detection_matches_hypergeometric() {
    let rate = Bps::new(500).unwrap();
    check_rate(
        ProviderBehaviour::LazyCheater { rate },
        rate,
        40,
        3,
        2_000,
        1,
    );
}

#[test]
fn trap_guessing_does_no_better_than_chance() {
    let rate = Bps::new(1_000).unwrap();
    check_rate(
        ProviderBehaviour::TrapGuesser { rate },
        rate,
        30,
        2,
        2_000,
        2,
    );
}
