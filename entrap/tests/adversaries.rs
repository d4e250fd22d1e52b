//! The adversary harness at crate level: honest parties, lazy cheaters at
//! several rates, trap guessers, silent providers and framing clients.

use idlegrid_entrap::Bps;
use idlegrid_entrap::harness::{
    self, ClientBehaviour, HarnessConfig, HarnessReport, ProviderBehaviour,
};
use idlegrid_primitives::Seed;

fn run(provider: ProviderBehaviour, client: ClientBehaviour, rounds: u32) -> HarnessReport {
    harness::run(&HarnessConfig {
        seed: Seed::from_u64(2026),
        rounds,
        n: 50,
        k: 4,
        provider,
        client,
        committee_size: 3,
    })
    .unwrap()
}

#[test]
fn honest_parties_are_never_punished() {
    let r = run(ProviderBehaviour::Honest, ClientBehaviour::Honest, 200);
    assert_eq!(
        (
            r.caught,
            r.honest_slashed,
            r.framers_caught,
            r.disputes,
            r.invariant_failures
        ),
        (0, 0, 0, 0, 0)
    );
}

#[test]
fn framing_clients_always_lose_their_bond() {
    let r = run(ProviderBehaviour::Honest, ClientBehaviour::Framing, 200);
    assert_eq!(r.framers_caught, 200);
    assert_eq!(r.honest_slashed, 0);
    assert_eq!(r.invariant_failures, 0);
}

#[test]
fn heavy_cheaters_are_almost_always_caught() {
    // 30 % of 54 subtasks with 4 traps: P = 1 − C(50,16)/C(54,16) ≈ 0.77.
    let r = run(
        ProviderBehaviour::LazyCheater {
            rate: Bps::new(3_000).unwrap(),
        },
        ClientBehaviour::Honest,
        300,
    );
    assert!(r.detection_rate() > 0.65, "{r:?}");
    // Everything wrong: always caught.
    let r = run(
        ProviderBehaviour::LazyCheater { rate: Bps::FULL },
        ClientBehaviour::Honest,
        50,
    );
    assert_eq!(r.caught, 50);
    assert_eq!(r.invariant_failures, 0);
}

#[test]
fn silent_providers_settle_without_slash_burn() {
    let r = run(ProviderBehaviour::Silent, ClientBehaviour::Honest, 50);
    assert_eq!(
        (r.caught, r.honest_slashed, r.invariant_failures),
        (0, 0, 0)
    );
}

/// Larger sweep over cheating rates (run with `--ignored --nocapture`).
#[test]
#[ignore]
fn detection_rate_sweep() {
    for bps in [100u16, 200, 500, 1_000, 2_000, 5_000] {
        let rate = Bps::new(bps).unwrap();
        let r = run(
            ProviderBehaviour::LazyCheater { rate },
            ClientBehaviour::Honest,
            5_000,
        );
        println!(
            "rate {:>5.1} %: detected {:.4} (exact {:.4}) over {} rounds",
            f64::from(bps) / 100.0,
            r.detection_rate(),
            harness::expected_detection(50, 4, rate),
            r.rounds
        );
    }
}
