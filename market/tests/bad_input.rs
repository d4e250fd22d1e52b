//! Bad input gets typed errors, nothing is matched, nothing panics.

use idlegrid_market::strategies::{self, unit_ask, unit_bid};
use idlegrid_market::*;
use idlegrid_primitives::{AccountId, Amount, Epoch, Salt, Timestamp, encode};
use proptest::prelude::*;

fn who(n: u8) -> AccountId {
    AccountId::from_bytes([n; 32])
}

fn all() -> Vec<Box<dyn Mechanism>> {
    vec![
        Box::new(McAfee),
        Box::new(KDouble::half()),
        Box::new(PayAsBid),
        Box::new(PayAsAsk),
        Box::new(GreedyAssignment::midpoint()),
        Box::new(OptimalAssignment::midpoint()),
    ]
}

fn ctx(reputation: &dyn ReputationLookup) -> ClearingContext<'_> {
    ClearingContext {
        now: Timestamp::ZERO,
        limits: Limits::default(),
        reputation,
    }
}

#[test]
fn duplicate_ids_fail_the_whole_clear() {
    let rep = FlatReputation(Reputation::MAX);
    let asks = vec![unit_ask(1, 10, 1, who(1)), unit_ask(2, 10, 1, who(2))];
    let bids = vec![unit_bid(1, 20, 1, who(3))];
    for m in all() {
        assert_eq!(
            m.clear(&asks, &bids, &ctx(&rep)),
            Err(MarketError::DuplicateOrderId(OrderId::new(1))),
            "{}",
            m.name()
        );
    }
}

#[test]
fn malformed_orders_fail_the_whole_clear() {
    let rep = FlatReputation(Reputation::MAX);
    let good = unit_ask(1, 10, 1, who(1));
    let bids = vec![unit_bid(2, 20, 1, who(2))];
    let mut zero_slots = unit_ask(3, 10, 0, who(3));
    zero_slots.slots = Slots::new(0);
    let zero_price = unit_ask(3, 0, 1, who(3));
    let huge_price = Ask {
        price: Amount::MAX,
        ..unit_ask(3, 1, 1, who(3))
    };
    let mut absurd = unit_ask(3, 10, 1, who(3));
    absurd.resources.memory_mib = u32::MAX;
    for bad in [zero_slots, zero_price, huge_price, absurd] {
        for m in all() {
            let r = m.clear(&[good.clone(), bad.clone()], &bids, &ctx(&rep));
            assert!(r.is_err(), "{} accepted {:?}", m.name(), bad);
        }
    }
}

#[test]
fn oversized_batches_and_parameters_are_refused() {
    let rep = FlatReputation(Reputation::MAX);
    let limits = Limits {
        max_batch_orders: 2,
        ..Limits::default()
    };
    let c = ClearingContext {
        now: Timestamp::ZERO,
        limits,
        reputation: &rep,
    };
    let asks: Vec<_> = (0..3).map(|i| unit_ask(i, 10, 1, who(i as u8))).collect();
    assert!(matches!(
        McAfee.clear(&asks, &[], &c),
        Err(MarketError::Full { .. })
    ));
    assert!(KDouble::new(10_001).is_err());
    assert!(GreedyAssignment::new(10_001).is_err());
    // The exact solver refuses batches above its pair budget.
    let asks: Vec<_> = (0..10).map(|i| unit_ask(i, 10, 1, who(i as u8))).collect();
    let bids: Vec<_> = (10..20).map(|i| unit_bid(i, 20, 1, who(i as u8))).collect();
    let small = OptimalAssignment::new(5_000, 50).unwrap();
    assert!(matches!(
        small.clear(&asks, &bids, &ctx(&rep)),
        Err(MarketError::Full { .. })
    ));
}

#[test]
fn money_overflow_is_an_error() {
    let m = Match {
        bid: OrderId::new(1),
        ask: OrderId::new(2),
        client: who(1),
        provider: who(2),
        slots: Slots::new(u32::MAX),
        buyer_price: Amount::new(u128::MAX / 2),
        seller_price: Amount::new(1),
        fees: Vec::new(),
    };
    assert!(m.buyer_total(2).is_err());
    assert_eq!(m.seller_total(1), Ok(Amount::new(u128::from(u32::MAX))));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary orders never panic anywhere; an accepted order is valid.
    #[test]
    fn wild_orders_never_panic(orders in prop::collection::vec(strategies::wild_order(), 0..12), now in any::<u64>()) {
        let now = Timestamp::from_micros(now);
        let rep = FlatReputation(Reputation::from_bps(5000));
        let limits = Limits::default();
        let (mut asks, mut bids) = (Vec::new(), Vec::new());
        let mut book = OrderBook::new(limits);
        for o in &orders {
            let valid = o.validate(&limits, now).is_ok();
            let inserted = book.insert(now, o.clone(), &rep);
            prop_assert!(inserted.is_err() || valid, "book accepted an invalid order");
            match o {
                Order::Ask(a) => asks.push(a.clone()),
                Order::Bid(b) => bids.push(b.clone()),
            }
        }
        prop_assert!(book.check_invariants().is_ok());
        let c = ClearingContext { now, limits, reputation: &rep };
        for m in all() {
            if let Ok(cl) = m.clear(&asks, &bids, &c) {
                prop_assert!(check_clearing(&asks, &bids, &cl, &c, m.strongly_budget_balanced()).is_ok());
            }
        }
        // Sealed reveal of wild orders: typed errors or success, never a panic.
        let mut batch = SealedBatch::open(Epoch::new(1), Timestamp::ZERO, BatchConfig::default()).unwrap();
        for (i, o) in orders.iter().enumerate() {
            let salt = Salt::from_bytes([i as u8; 32]);
            let cm = seal(Epoch::new(1), o, &salt);
            let _ = batch.commit(Timestamp::ZERO, o.owner(), cm, Amount::new(1));
            let _ = batch.reveal(batch.commit_deadline(), o.owner(), cm, o.clone(), salt);
        }
        let out = batch.close(batch.reveal_deadline(), &McAfee, &rep);
        prop_assert!(out.is_ok());
    }

    /// Orders round-trip through the canonical encoding; garbage bytes give
    /// a decode error, never a panic.
    #[test]
    fn orders_round_trip_and_garbage_is_rejected(o in strategies::wild_order(), junk in prop::collection::vec(any::<u8>(), 0..200)) {
        let bytes = o.to_bytes();
        prop_assert!(bytes.len() <= MAX_ORDER_BYTES);
        prop_assert_eq!(Order::from_bytes(&bytes).unwrap(), o);
        if let Ok(x) = Order::from_bytes(&junk) {
            prop_assert_eq!(encode(&x), junk);
        }
        prop_assert!(Order::from_bytes(&[0u8; MAX_ORDER_BYTES + 1]).is_err());
    }
}

#[test]
fn extreme_but_valid_orders_never_fail_a_batch() {
    // Limit prices and slot counts at the caps: per-match money fits, the
    // batch statistics saturate instead of failing the whole clearing.
    let rep = FlatReputation(Reputation::MAX);
    let l = Limits::default();
    let top = l.max_price.get();
    let asks: Vec<_> = (0..400)
        .map(|i| unit_ask(i, top - 1, l.max_slots, who(1)))
        .collect();
    let bids: Vec<_> = (400..800)
        .map(|i| unit_bid(i, top, l.max_slots, who(2)))
        .collect();
    for m in all() {
        if m.name() == "optimal_assignment" {
            continue; // pair budget
        }
        let c = m.clear(&asks, &bids, &ctx(&rep)).unwrap();
        assert!(!c.matches.is_empty(), "{}", m.name());
        assert!(c.matches[0].buyer_total(1).is_ok());
    }
}
