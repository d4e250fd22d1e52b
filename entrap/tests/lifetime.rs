//! Laws of the lifetime trap schedule: probabilities in `[0, 1]` and
//! monotone, deterrence at every lot whenever a plan is returned, and the
//! minimum stake it reports being exactly the threshold.

use idlegrid_entrap::lifetime::{
    LifetimeError, LifetimeParams, LifetimePolicy, TrapRate, deters_exact,
    lifetime_catch_probability, lot_catch_probability, plan,
};
use idlegrid_entrap::{Bps, TrapCount};
use idlegrid_primitives::Amount;
use proptest::prelude::*;

fn policy(slots: u32, k: u32, q: u32, floor: u32, halving: Option<u32>) -> LifetimePolicy {
    LifetimePolicy {
        slots,
        traps: TrapCount::new(k),
        new_rate: TrapRate::new(q).unwrap(),
        floor: TrapRate::new(floor.min(q)).unwrap(),
        halving_lots: halving,
    }
}

fn params() -> impl Strategy<Value = LifetimeParams> {
    (
        4u32..=40,
        1u128..=1_000,
        1u128..=2_000,
        0u128..=100_000,
        0u128..=500,
        (1u16..=5_000, 1u32..=60, 1u32..=20),
        (1u32..=8, 1u32..=1_000_000, proptest::option::of(1u32..=20)),
    )
        .prop_map(
            |(slots, c, p, s, b, (r, lots, miss_pct), (k, cap, halving))| {
                let mut x =
                    LifetimeParams::new(slots, Amount::new(c), Amount::new(p), Amount::new(s));
                x.gain_per_corruption = Amount::new(b);
                x.target.cheat_rate = Bps::new(r).unwrap();
                x.target.lots = lots;
                x.target.miss_probability = f64::from(miss_pct) / 100.0;
                x.max_traps = k.min(slots - 1);
                x.max_rate = TrapRate::new(cap).unwrap();
                x.halving_lots = halving;
                x
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn lot_probability_is_a_probability_and_monotone(
        slots in 2u32..=64, k in 1u32..=16, m in 1u32..=64, q in 0u32..=1_000_000, dq in 0u32..=1_000
    ) {
        let k = k.min(slots - 1);
        let m = m.min(slots);
        let rate = TrapRate::new(q).unwrap();
        let p = lot_catch_probability(slots, k, rate, m);
        prop_assert!((0.0..=1.0).contains(&p));
        let more_q = TrapRate::new((q + dq).min(1_000_000)).unwrap();
        prop_assert!(lot_catch_probability(slots, k, more_q, m) >= p);
        if k + 1 < slots {
            prop_assert!(lot_catch_probability(slots, k + 1, rate, m) >= p - 1e-15);
        }
    }

    #[test]
    fn lifetime_probability_is_monotone_in_lots_and_rate(
        slots in 2u32..=32, k in 1u32..=8, m in 1u32..=32, q in 1u32..=1_000_000,
        floor in 0u32..=1_000_000, lots in 1u32..=80, halving in proptest::option::of(1u32..=10),
    ) {
        let k = k.min(slots - 1);
        let m = m.min(slots);
        let pol = policy(slots, k, q, floor, halving);
        let p = lifetime_catch_probability(&pol, m, lots);
        prop_assert!((0.0..=1.0).contains(&p));
        prop_assert!(lifetime_catch_probability(&pol, m, lots + 1) >= p - 1e-12);
        // Without the discount, more rate is more detection.
        let fixed = policy(slots, k, q, q, None);
        let higher = policy(slots, k, (q + q / 2).min(1_000_000), q, None);
        prop_assert!(
            lifetime_catch_probability(&higher, m, lots)
                >= lifetime_catch_probability(&fixed, m, lots) - 1e-12
        );
    }

    #[test]
    fn a_plan_deters_at_every_rate_and_every_point_of_life(x in params()) {
        let Ok(pol) = plan(&x) else { return Ok(()) };
        let m = x.corrupted();
        prop_assert!(
            lifetime_catch_probability(&pol, m, x.target.lots) >= 1.0 - x.target.miss_probability
        );
        prop_assert!(pol.new_rate <= x.max_rate && pol.floor <= pol.new_rate);
        // The rate after any history is at least the floor, and the floor
        // deters every cheating rate r = m / N, exactly.
        for clean in [0, 1, 3, 10, 100, 10_000] {
            let q = pol.rate(clean);
            prop_assert!(q >= pol.floor);
            prop_assert_eq!(deters_exact(&x, q, pol.traps.get()), Some(true));
        }
    }

    #[test]
    fn the_reported_minimum_stake_is_the_threshold(x in params()) {
        let Err(LifetimeError::DeterrenceUnreachable { min_stake, .. }) = plan(&x) else {
            return Ok(());
        };
        let deterred = |stake: Amount| {
            let mut y = x;
            y.stake = stake;
            !matches!(plan(&y), Err(LifetimeError::DeterrenceUnreachable { .. }))
        };
        prop_assert!(deterred(min_stake));
        prop_assert!(min_stake.get() > 0);
        prop_assert!(!deterred(Amount::new(min_stake.get() - 1)));
    }
}

/// A persistent cheater run against the schedule lot by lot (trap slots and
/// corrupted slots drawn independently and uniformly, the rate following
/// the client's count of clean trap-carrying lots): the share caught within
/// `M` lots matches [`lifetime_catch_probability`] (|z| < 4 on a fixed seed).
#[test]
fn monte_carlo_matches_the_composed_probability() {
    use idlegrid_primitives::{RngCore, Seed};
    let mut rng = Seed::from_u64(21).rng();
    let pick = |n: u32, rng: &mut dyn RngCore| -> Vec<bool> {
        // A uniform subset of size `n` of 16 slots (Fisher–Yates prefix).
        let mut slots: Vec<u32> = (0..16).collect();
        for i in 0..n as usize {
            let j = i + (rng.next_u32() as usize % (16 - i));
            slots.swap(i, j);
        }
        let mut mask = vec![false; 16];
        for s in &slots[..n as usize] {
            mask[*s as usize] = true;
        }
        mask
    };
    for (k, q, floor, halving, m, lots) in [
        (2, 400_000, 100_000, Some(2), 2, 12),
        (4, 300_000, 50_000, None, 1, 20),
        (1, 900_000, 200_000, Some(1), 3, 8),
    ] {
        let pol = policy(16, k, q, floor, halving);
        let runs = 20_000u32;
        let mut caught = 0u32;
        for _ in 0..runs {
            let mut clean = 0;
            for _ in 0..lots {
                let traps = pol.draw(clean, &mut rng);
                if traps == 0 {
                    continue;
                }
                let t = pick(traps, &mut rng);
                let c = pick(m, &mut rng);
                if t.iter().zip(&c).any(|(a, b)| *a && *b) {
                    caught += 1;
                    break;
                }
                clean += 1;
            }
        }
        let p = lifetime_catch_probability(&pol, m, lots);
        let n = f64::from(runs);
        let z = (f64::from(caught) - n * p) / (n * p * (1.0 - p)).sqrt();
        assert!(
            z.abs() < 4.0,
            "k {k} q {q}: caught {caught} of {runs}, expected {p}, z {z}"
        );
    }
}
