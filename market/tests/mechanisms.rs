//! Individual rationality, budget balance, feasibility and determinism of
//! every mechanism on random markets (homogeneous and heterogeneous), plus
//! hand-built edge cases.

use idlegrid_market::strategies::{self, unit_ask, unit_bid};
use idlegrid_market::*;
use idlegrid_primitives::{AccountId, Amount, Timestamp, encode};
use proptest::prelude::*;

fn mechanisms() -> Vec<Box<dyn Mechanism>> {
    vec![
        Box::new(McAfee),
        Box::new(KDouble::half()),
        Box::new(KDouble::new(0).unwrap()),
        Box::new(KDouble::new(10_000).unwrap()),
        Box::new(PayAsBid),
        Box::new(PayAsAsk),
        Box::new(GreedyAssignment::midpoint()),
        Box::new(OptimalAssignment::new(5_000, 1 << 20).unwrap()),
    ]
}

fn ctx(reputation: &dyn ReputationLookup) -> ClearingContext<'_> {
    ClearingContext {
        now: Timestamp::ZERO,
        limits: Limits::default(),
        reputation,
    }
}

fn who(n: u8) -> AccountId {
    AccountId::from_bytes([n; 32])
}

fn check_all(asks: &[Ask], bids: &[Bid], rep: &dyn ReputationLookup) -> Result<(), TestCaseError> {
    let ctx = ctx(rep);
    for m in mechanisms() {
        let c = m
            .clear(asks, bids, &ctx)
            .map_err(|e| TestCaseError::fail(format!("{}: {e}", m.name())))?;
        if let Err(v) = check_clearing(asks, bids, &c, &ctx, m.strongly_budget_balanced()) {
            return Err(TestCaseError::fail(format!("{}: {v}", m.name())));
        }
        // Determinism: same input twice, and the input in reverse order,
        // give the same bytes.
        let again = m.clear(asks, bids, &ctx).unwrap();
        prop_assert_eq!(encode(&c), encode(&again));
        let (mut ra, mut rb) = (asks.to_vec(), bids.to_vec());
        ra.reverse();
        rb.reverse();
        let rev = m.clear(&ra, &rb, &ctx).unwrap();
        prop_assert_eq!(
            encode(&c),
            encode(&rev),
            "{} depends on input order",
            m.name()
        );
        let matched_bids = c
            .matches
            .iter()
            .map(|m| m.bid)
            .collect::<std::collections::BTreeSet<_>>();
        prop_assert_eq!(
            c.stats.unmatched_bids,
            (bids.len() - matched_bids.len()) as u64
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn homogeneous_markets_are_ir_bb_feasible((asks, bids) in strategies::homogeneous_market(120, 120, 5, 100)) {
        check_all(&asks, &bids, &FlatReputation(Reputation::MAX))?;
    }

    #[test]
    fn unit_markets_with_many_ties((asks, bids) in strategies::homogeneous_market(200, 200, 1, 5)) {
        check_all(&asks, &bids, &FlatReputation(Reputation::MAX))?;
    }

    #[test]
    fn heterogeneous_markets_are_ir_bb_feasible((asks, bids) in strategies::hetero_market(40, 40)) {
        check_all(&asks, &bids, &strategies::test_reputation)?;
    }

    #[test]
    fn efficient_mechanisms_trade_every_efficient_unit((asks, bids) in strategies::homogeneous_market(60, 60, 4, 50)) {
        let rep = FlatReputation(Reputation::MAX);
        let ctx = ctx(&rep);
        let opt = optimum_units(&asks, &bids);
        for m in [&KDouble::half() as &dyn Mechanism, &PayAsBid, &PayAsAsk, &GreedyAssignment::midpoint(), &OptimalAssignment::new(0, 1 << 20).unwrap()] {
            let c = m.clear(&asks, &bids, &ctx).unwrap();
            prop_assert_eq!(c.stats.welfare, opt.0, "{}", m.name());
        }
    }
}

/// Optimal gains from trade and number of efficient units of a
/// homogeneous market, computed independently: unit-expand, sort, pair.
fn optimum_units(asks: &[Ask], bids: &[Bid]) -> (Amount, u64) {
    let mut b: Vec<u128> = bids
        .iter()
        .flat_map(|b| std::iter::repeat_n(b.max_price.get(), b.slots.get() as usize))
        .collect();
    let mut s: Vec<u128> = asks
        .iter()
        .flat_map(|a| std::iter::repeat_n(a.price.get(), a.slots.get() as usize))
        .collect();
    b.sort_unstable_by(|x, y| y.cmp(x));
    s.sort_unstable();
    let (mut w, mut k) = (0u128, 0u64);
    for (x, y) in b.iter().zip(&s) {
        if x < y {
            break;
        }
        w += x - y;
        k += 1;
    }
    (Amount::new(w), k)
}

#[test]
fn empty_and_one_sided_markets_trade_nothing() {
    let rep = FlatReputation(Reputation::MAX);
    let ctx = ctx(&rep);
    let asks = [unit_ask(1, 10, 3, who(1))];
    let bids = [unit_bid(2, 20, 3, who(2))];
    for m in mechanisms() {
        for (a, b) in [
            (&[][..], &[][..]),
            (&asks[..], &[][..]),
            (&[][..], &bids[..]),
        ] {
            let c = m.clear(a, b, &ctx).unwrap();
            assert!(c.matches.is_empty(), "{}", m.name());
            assert_eq!(c.stats.volume_slots, 0);
        }
    }
}

#[test]
fn one_order_each_side() {
    let rep = FlatReputation(Reputation::MAX);
    let ctx = ctx(&rep);
    let asks = vec![unit_ask(1, 10, 1, who(1))];
    let bids = vec![unit_bid(2, 20, 1, who(2))];
    // McAfee cannot price a single trade without a loser: it drops it.
    assert!(McAfee.clear(&asks, &bids, &ctx).unwrap().matches.is_empty());
    let c = KDouble::half().clear(&asks, &bids, &ctx).unwrap();
    assert_eq!(c.matches[0].buyer_price, Amount::new(15));
    assert_eq!(
        PayAsBid.clear(&asks, &bids, &ctx).unwrap().matches[0].buyer_price,
        Amount::new(20)
    );
    assert_eq!(
        PayAsAsk.clear(&asks, &bids, &ctx).unwrap().matches[0].buyer_price,
        Amount::new(10)
    );
    // An unprofitable pair never trades.
    let bids = vec![unit_bid(2, 9, 1, who(2))];
    for m in mechanisms() {
        assert!(
            m.clear(&asks, &bids, &ctx).unwrap().matches.is_empty(),
            "{}",
            m.name()
        );
    }
}

#[test]
fn equal_prices_trade_at_that_price() {
    let rep = FlatReputation(Reputation::MAX);
    let ctx = ctx(&rep);
    let asks: Vec<_> = (0..3).map(|i| unit_ask(i, 10, 1, who(i as u8))).collect();
    let bids: Vec<_> = (3..6).map(|i| unit_bid(i, 10, 1, who(i as u8))).collect();
    for m in mechanisms() {
        let c = m.clear(&asks, &bids, &ctx).unwrap();
        assert!(
            c.matches.iter().all(|m| m.buyer_price == Amount::new(10)),
            "{}",
            m.name()
        );
        assert_eq!(c.stats.welfare, Amount::ZERO);
    }
    // Ties broken by id: the lowest-id bid and ask trade first.
    let c = PayAsAsk.clear(&asks, &bids, &ctx).unwrap();
    assert_eq!(
        (c.matches[0].bid, c.matches[0].ask),
        (OrderId::new(3), OrderId::new(0))
    );
}

#[test]
fn mcafee_uniform_price_case() {
    let rep = FlatReputation(Reputation::MAX);
    let ctx = ctx(&rep);
    // b = 100, 80, 60 | 30 ; s = 10, 20, 40 | 50: k = 3, p = (30 + 50) / 2 = 40 in [40, 60].
    let asks = vec![
        unit_ask(1, 10, 1, who(1)),
        unit_ask(2, 20, 1, who(2)),
        unit_ask(3, 40, 1, who(3)),
        unit_ask(4, 50, 1, who(4)),
    ];
    let bids = vec![
        unit_bid(5, 100, 1, who(5)),
        unit_bid(6, 80, 1, who(6)),
        unit_bid(7, 60, 1, who(7)),
        unit_bid(8, 30, 1, who(8)),
    ];
    let c = McAfee.clear(&asks, &bids, &ctx).unwrap();
    assert_eq!(c.stats.volume_slots, 3);
    assert!(
        c.matches
            .iter()
            .all(|m| m.buyer_price == Amount::new(40) && m.seller_price == Amount::new(40))
    );
    assert_eq!(c.stats.surplus, Amount::ZERO);
}

#[test]
fn lanes_clear_independently() {
    let rep = FlatReputation(Reputation::MAX);
    let ctx = ctx(&rep);
    let mut far_ask = unit_ask(3, 100, 1, who(3));
    far_ask.region = Region::new(5);
    let mut far_bid = unit_bid(4, 120, 1, who(4));
    far_bid.regions = RegionSet::single(Region::new(5));
    let asks = vec![unit_ask(1, 10, 1, who(1)), far_ask];
    let bids = vec![unit_bid(2, 20, 1, who(2)), far_bid];
    let c = KDouble::half().clear(&asks, &bids, &ctx).unwrap();
    let mut prices: Vec<_> = c.matches.iter().map(|m| m.buyer_price.get()).collect();
    prices.sort();
    assert_eq!(prices, vec![15, 110]);
}

#[test]
fn heterogeneous_assignment_respects_requirements() {
    // A GPU bid must go to the GPU ask even though a cheaper CPU ask exists.
    let rep = FlatReputation(Reputation::MAX);
    let ctx = ctx(&rep);
    let mut gpu = unit_ask(1, 50, 1, who(1));
    gpu.resources.gpu_units = 1;
    let cpu = unit_ask(2, 5, 1, who(2));
    let mut wants_gpu = unit_bid(3, 60, 1, who(3));
    wants_gpu.demand.gpu_units = 1;
    let any = unit_bid(4, 40, 1, who(4));
    let asks = vec![gpu, cpu];
    let bids = vec![wants_gpu, any];
    for m in [
        &OptimalAssignment::midpoint() as &dyn Mechanism,
        &GreedyAssignment::midpoint(),
    ] {
        let c = m.clear(&asks, &bids, &ctx).unwrap();
        assert_eq!(c.stats.welfare, Amount::new(10 + 35), "{}", m.name());
        check_clearing(&asks, &bids, &c, &ctx, true).unwrap();
    }
}

#[test]
fn expired_orders_are_excluded_not_matched() {
    let rep = FlatReputation(Reputation::MAX);
    let mut ctx = ctx(&rep);
    let asks = vec![unit_ask(1, 10, 1, who(1))];
    let mut bid = unit_bid(2, 20, 1, who(2));
    bid.deadline = Timestamp::from_millis(5);
    ctx.now = Timestamp::from_millis(5);
    for m in mechanisms() {
        let c = m.clear(&asks, std::slice::from_ref(&bid), &ctx).unwrap();
        assert!(c.matches.is_empty());
        assert_eq!(c.stats.expired, 1);
    }
}

fn slots_of(c: &Clearing, id: OrderId) -> u64 {
    c.matches
        .iter()
        .filter(|m| m.bid == id || m.ask == id)
        .map(|m| u64::from(m.slots.get()))
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Greedy assignment is monotone: raising a bid's price (or lowering an
    /// ask's) never loses it slots.
    #[test]
    fn greedy_allocation_is_monotone(
        (asks, bids) in strategies::hetero_market(30, 30),
        pick in any::<prop::sample::Index>(),
        delta in 1u128..50,
        side in any::<bool>(),
    ) {
        let rep = strategies::test_reputation;
        let ctx = ctx(&rep);
        let g = GreedyAssignment::midpoint();
        let before = g.clear(&asks, &bids, &ctx).unwrap();
        if side && !bids.is_empty() {
            let i = pick.index(bids.len());
            let mut b = bids.clone();
            b[i].max_price = Amount::new(b[i].max_price.get() + delta);
            let after = g.clear(&asks, &b, &ctx).unwrap();
            prop_assert!(slots_of(&after, b[i].id) >= slots_of(&before, b[i].id));
        } else if !asks.is_empty() {
            let i = pick.index(asks.len());
            let mut a = asks.clone();
            a[i].price = Amount::new(a[i].price.get().saturating_sub(delta).max(1));
            let after = g.clear(&a, &bids, &ctx).unwrap();
            prop_assert!(slots_of(&after, a[i].id) >= slots_of(&before, a[i].id));
        }
    }
}
