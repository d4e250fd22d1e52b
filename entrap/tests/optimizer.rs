//! The optimizer's laws: deterrence and assurance are met and minimal, and
//! the needed traps shrink as stake, reputation and credibility grow.

use idlegrid_entrap::optimizer::*;
use idlegrid_entrap::*;
use idlegrid_primitives::Amount;
use proptest::prelude::*;

fn base(n: u32) -> Params {
    let mut p = Params::new(n, Amount::new(8), Amount::new(10), Amount::new(1_000));
    p.gain_per_corruption = Amount::new(20);
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Deterrence k makes cheating lose at every m and at every rate of a
    /// fine grid; k − 1 does not deter.
    #[test]
    fn deterrence_is_met_and_minimal(params in strategies::params()) {
        let Some(k) = deterrence_traps(&params).unwrap() else { return Ok(()); };
        let k = k.get();
        let slots = params.n + k;
        if k > 0 {
            for m in 1..=slots {
                prop_assert!(cheating_gain(&params, k, m) < 0.0, "m={m} k={k}");
            }
            for step in 1..=1_000u32 {
                let m = ((u64::from(step) * u64::from(slots)).div_ceil(1_000)) as u32;
                prop_assert!(cheating_gain(&params, k, m.max(1)) < 0.0);
            }
            prop_assert!(!deters(&params, k - 1));
            if k > 1 {
                let worst = (1..=params.n + k - 1).any(|m| cheating_gain(&params, k - 1, m) >= 0.0);
                prop_assert!(worst);
            }
        }
    }

    /// Assurance k reaches 1 − δ' at its boundary and k − 1 does not.
    #[test]
    fn assurance_is_met_exactly_at_its_boundary(params in strategies::params()) {
        let Some(k) = assurance_traps(&params).unwrap() else { return Ok(()); };
        let k = k.get();
        let slots = params.n + k;
        let m = assurance_corrupted(&params, slots);
        let miss = 1.0 - detection_with_reliability(slots, k, m, params.trap_reliability);
        prop_assert!(miss <= allowed_miss(&params));
        if k > 0 {
            let m1 = assurance_corrupted(&params, slots - 1);
            prop_assert!(1.0 - detection_with_reliability(slots - 1, k - 1, m1, params.trap_reliability) > allowed_miss(&params));
        }
    }

    /// More stake or more reputation value never needs more traps; more
    /// credibility never needs more assurance traps.
    #[test]
    fn traps_shrink_with_stake_reputation_and_credibility(params in strategies::params(), more in 1u128..100_000, cred in 0.0f64..0.05) {
        let k = |p: &Params| deterrence_traps(p).unwrap().map_or(u32::MAX, |k| k.get());
        let mut richer = params;
        richer.stake = Amount::new(params.stake.get() + more);
        prop_assert!(k(&richer) <= k(&params));
        let mut known = params;
        known.reputation_value = Amount::new(params.reputation_value.get() + more);
        prop_assert!(k(&known) <= k(&params));
        let a = |p: &Params| assurance_traps(p).unwrap().map_or(u32::MAX, |k| k.get());
        let mut trusted = params;
        trusted.credibility = (params.credibility + cred).min(1.0);
        prop_assert!(a(&trusted) <= a(&params));
    }
}

#[test]
fn hand_picked_shrinkage_is_strict() {
    let p = base(100);
    // c + b = 28 > p = 10: with S = 1000 corrupting all 101 subtasks pays.
    assert_eq!(deterrence_traps(&p).unwrap(), None);
    let d = |p: &Params| deterrence_traps(p).unwrap().map_or(u32::MAX, |k| k.get());
    let mut rich = p;
    rich.stake = Amount::new(10_000);
    assert!(d(&rich) < d(&p), "{} vs {}", d(&rich), d(&p));
    let mut reputed = p;
    reputed.reputation_value = Amount::new(10_000);
    assert!(d(&reputed) < d(&p));
    assert_eq!(d(&rich), 1);
    let a = |p: &Params| assurance_traps(p).unwrap().unwrap().get();
    let mut trusted = p;
    trusted.credibility = 0.9;
    assert!(a(&trusted) < a(&p), "{} vs {}", a(&trusted), a(&p));
}

#[test]
fn cross_check_traps_need_more_than_precomputed() {
    let p = base(200);
    let mut cross = p;
    cross.trap_reliability = 0.8;
    let adv = optimize_traps(&p).unwrap();
    let adv_x = optimize_traps(&cross).unwrap();
    assert!(adv_x.recommended >= adv.recommended);
    assert!(adv_x.assurance.unwrap() > adv.assurance.unwrap());
}

#[test]
fn undeterrable_attackers_are_reported() {
    let mut p = base(10);
    p.gain_per_corruption = Amount::new(1_000_000_000);
    p.max_traps = 50;
    let adv = optimize_traps(&p).unwrap();
    assert_eq!(adv.deterrence, None);
    // Falls back to assurance, and says how much stake deterrence needs.
    assert_eq!(adv.recommended, adv.assurance.unwrap());
    assert!(adv.deterrent_stake.unwrap() > Amount::new(1_000_000_000));
}

#[test]
fn deterrent_stake_is_the_exact_threshold() {
    for n in [1u32, 10, 100, 1_000] {
        let p = base(n);
        let s = deterrent_stake(&p, 1).unwrap();
        let mut at = p;
        at.stake = s;
        assert!(deters(&at, 1), "n={n}: one trap deters with stake {s}");
        let mut below = p;
        below.stake = Amount::new(s.get() - 1);
        assert!(
            !deters(&below, 1),
            "n={n}: stake {} is not enough",
            below.stake
        );
    }
}
