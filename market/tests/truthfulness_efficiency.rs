//! McAfee truthfulness for unit traders and every mechanism's efficiency
//! bound against a brute-force optimum.

use idlegrid_market::strategies;
use idlegrid_market::*;
use idlegrid_primitives::{Amount, Timestamp};
use proptest::prelude::*;

fn ctx(reputation: &dyn ReputationLookup) -> ClearingContext<'_> {
    ClearingContext {
        now: Timestamp::ZERO,
        limits: Limits::default(),
        reputation,
    }
}

/// Quasi-linear utility of order `id` with true per-slot `value` (buyer) or
/// `cost` (seller), summed over its matches.
fn utility(c: &Clearing, id: OrderId, truth: u128, buyer: bool) -> i128 {
    c.matches
        .iter()
        .map(|m| {
            let n = i128::from(m.slots.get());
            if buyer && m.bid == id {
                n * (truth as i128 - m.buyer_price.get() as i128)
            } else if !buyer && m.ask == id {
                n * (m.seller_price.get() as i128 - truth as i128)
            } else {
                0
            }
        })
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// No unilateral misreport of a unit buyer's or seller's price raises
    /// its utility under McAfee (all misreports in the price range are tried).
    #[test]
    fn mcafee_is_truthful_for_unit_traders(
        (asks, bids) in strategies::homogeneous_market(25, 25, 1, 60),
        pick in any::<prop::sample::Index>(),
        buyer in any::<bool>(),
    ) {
        truthful_case(&asks, &bids, pick, buyer)?;
    }

    /// McAfee reaches at least (1 − 1/k) of the optimal gains from trade,
    /// where k is the number of efficient units; the efficient mechanisms
    /// reach the optimum (checked against exhaustive search).
    #[test]
    fn efficiency_bounds_on_small_markets((asks, bids) in strategies::homogeneous_market(5, 5, 1, 30)) {
        let rep = FlatReputation(Reputation::MAX);
        let ctx = ctx(&rep);
        let (opt, k) = brute_force(&asks, &bids, |_, _| true);
        let mc = McAfee.clear(&asks, &bids, &ctx).unwrap().stats.welfare.get();
        prop_assert!(mc * u128::from(k) >= opt * u128::from(k.saturating_sub(1)), "mcafee {} opt {} k {}", mc, opt, k);
        for m in [&KDouble::half() as &dyn Mechanism, &PayAsBid, &PayAsAsk, &OptimalAssignment::midpoint(), &GreedyAssignment::midpoint()] {
            prop_assert_eq!(m.clear(&asks, &bids, &ctx).unwrap().stats.welfare.get(), opt, "{}", m.name());
        }
    }

    /// On heterogeneous markets the exact assignment equals the brute-force
    /// optimum and the greedy one reaches at least half of it.
    /// The same bounds hold with multi-slot orders (McAfee drops one unit).
    #[test]
    fn efficiency_bounds_with_multi_slot_orders((asks, bids) in strategies::homogeneous_market(3, 3, 3, 30)) {
        let rep = FlatReputation(Reputation::MAX);
        let ctx = ctx(&rep);
        let (opt, k) = brute_force(&asks, &bids, |_, _| true);
        let mc = McAfee.clear(&asks, &bids, &ctx).unwrap().stats.welfare.get();
        prop_assert!(mc * u128::from(k) >= opt * u128::from(k.saturating_sub(1)), "mcafee {} opt {} k {}", mc, opt, k);
        for m in [&KDouble::half() as &dyn Mechanism, &PayAsBid, &PayAsAsk, &OptimalAssignment::midpoint(), &GreedyAssignment::midpoint()] {
            prop_assert_eq!(m.clear(&asks, &bids, &ctx).unwrap().stats.welfare.get(), opt, "{}", m.name());
        }
    }

    #[test]
    fn assignment_efficiency_on_heterogeneous_markets((asks, bids) in strategies::hetero_market(3, 3)) {
        hetero_case(&asks, &bids)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    #[ignore = "long sweep: cargo test -p idlegrid-market --release -- --ignored"]
    fn sweep_mcafee_truthful_on_larger_markets(
        (asks, bids) in strategies::homogeneous_market(60, 60, 1, 60),
        pick in any::<prop::sample::Index>(),
        buyer in any::<bool>(),
    ) {
        truthful_case(&asks, &bids, pick, buyer)?;
    }

    #[test]
    #[ignore = "long sweep: cargo test -p idlegrid-market --release -- --ignored"]
    fn sweep_assignment_efficiency_on_4x4_markets((asks, bids) in strategies::hetero_market(4, 4)) {
        hetero_case(&asks, &bids)?;
    }
}

/// No misreport in `1..=62` raises the picked trader's utility under McAfee.
fn truthful_case(
    asks: &[Ask],
    bids: &[Bid],
    pick: prop::sample::Index,
    buyer: bool,
) -> Result<(), TestCaseError> {
    let rep = FlatReputation(Reputation::MAX);
    let ctx = ctx(&rep);
    let truthful = McAfee.clear(asks, bids, &ctx).unwrap();
    if buyer && !bids.is_empty() {
        let i = pick.index(bids.len());
        let (id, value) = (bids[i].id, bids[i].max_price.get());
        let honest = utility(&truthful, id, value, true);
        prop_assert!(honest >= 0);
        for lie in 1..=62u128 {
            let mut b = bids.to_vec();
            b[i].max_price = Amount::new(lie);
            let c = McAfee.clear(asks, &b, &ctx).unwrap();
            prop_assert!(
                utility(&c, id, value, true) <= honest,
                "buyer {} value {} gains by bidding {}",
                id,
                value,
                lie
            );
        }
    } else if !asks.is_empty() {
        let i = pick.index(asks.len());
        let (id, cost) = (asks[i].id, asks[i].price.get());
        let honest = utility(&truthful, id, cost, false);
        prop_assert!(honest >= 0);
        for lie in 1..=62u128 {
            let mut a = asks.to_vec();
            a[i].price = Amount::new(lie);
            let c = McAfee.clear(&a, bids, &ctx).unwrap();
            prop_assert!(
                utility(&c, id, cost, false) <= honest,
                "seller {} cost {} gains by asking {}",
                id,
                cost,
                lie
            );
        }
    }
    Ok(())
}

/// Exact assignment = brute-force optimum; greedy >= half of it; the
/// lane-based unit mechanisms never exceed it.
fn hetero_case(asks: &[Ask], bids: &[Bid]) -> Result<(), TestCaseError> {
    let rep = strategies::test_reputation;
    let ctx = ctx(&rep);
    let (opt, _) = brute_force(asks, bids, |a, b| {
        compatible(a, b, strategies::test_reputation(&a.provider))
    });
    let exact = OptimalAssignment::midpoint()
        .clear(asks, bids, &ctx)
        .unwrap()
        .stats
        .welfare
        .get();
    prop_assert_eq!(exact, opt);
    let greedy = GreedyAssignment::midpoint()
        .clear(asks, bids, &ctx)
        .unwrap()
        .stats
        .welfare
        .get();
    prop_assert!(2 * greedy >= opt, "greedy {} opt {}", greedy, opt);
    for m in [
        &KDouble::half() as &dyn Mechanism,
        &McAfee,
        &PayAsBid,
        &PayAsAsk,
    ] {
        prop_assert!(m.clear(asks, bids, &ctx).unwrap().stats.welfare.get() <= opt);
    }
    Ok(())
}

/// Exhaustive optimum: every bid unit either stays out or takes one unit
/// of a compatible, profitable ask with capacity left. Returns the welfare
/// and the number of units traded in some optimum with the most trades.
fn brute_force(asks: &[Ask], bids: &[Bid], ok: impl Fn(&Ask, &Bid) -> bool + Copy) -> (u128, u64) {
    let units: Vec<usize> = bids
        .iter()
        .enumerate()
        .flat_map(|(i, b)| std::iter::repeat_n(i, b.slots.get() as usize))
        .collect();
    let mut cap: Vec<u32> = asks.iter().map(|a| a.slots.get()).collect();
    // Units of one bid are interchangeable: their choices (ask index, with
    // `asks.len()` = stay out) are taken non-decreasing to avoid repeats.
    fn go(
        u: usize,
        prev: usize,
        units: &[usize],
        asks: &[Ask],
        bids: &[Bid],
        cap: &mut [u32],
        ok: impl Fn(&Ask, &Bid) -> bool + Copy,
    ) -> (u128, u64) {
        let Some(&bi) = units.get(u) else {
            return (0, 0);
        };
        let from = if u > 0 && units[u - 1] == bi { prev } else { 0 };
        let mut best = go(u + 1, asks.len(), units, asks, bids, cap, ok);
        let b = &bids[bi];
        for (ai, a) in asks.iter().enumerate().skip(from) {
            if cap[ai] > 0 && a.price <= b.max_price && ok(a, b) {
                cap[ai] -= 1;
                let (w, k) = go(u + 1, ai, units, asks, bids, cap, ok);
                cap[ai] += 1;
                let cand = (w + (b.max_price.get() - a.price.get()), k + 1);
                best = best.max(cand);
            }
        }
        best
    }
    go(0, 0, &units, asks, bids, &mut cap, ok)
}
