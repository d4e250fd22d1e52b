//! The continuous order book: priority rules and invariants under random
//! operation sequences.

use std::collections::BTreeMap;

use idlegrid_market::strategies::{self, unit_ask, unit_bid};
use idlegrid_market::*;
use idlegrid_primitives::{AccountId, Amount, Timestamp};
use proptest::prelude::*;

fn who(n: u8) -> AccountId {
    AccountId::from_bytes([n; 32])
}

fn rep() -> FlatReputation {
    FlatReputation(Reputation::MAX)
}

const T0: Timestamp = Timestamp::ZERO;

#[test]
fn price_time_priority_and_resting_price() {
    let mut book = OrderBook::new(Limits::default());
    book.insert(T0, Order::Ask(unit_ask(1, 12, 2, who(1))), &rep())
        .unwrap();
    book.insert(T0, Order::Ask(unit_ask(2, 10, 1, who(2))), &rep())
        .unwrap();
    book.insert(T0, Order::Ask(unit_ask(3, 10, 1, who(3))), &rep())
        .unwrap();
    assert_eq!(book.best_ask(), Some(Amount::new(10)));
    // A bid for 3 at 12: best price first, then oldest at equal price.
    let fills = book
        .insert(T0, Order::Bid(unit_bid(4, 12, 3, who(4))), &rep())
        .unwrap();
    let got: Vec<_> = fills
        .iter()
        .map(|m| (m.ask.get(), m.slots.get(), m.buyer_price.get()))
        .collect();
    assert_eq!(got, vec![(2, 1, 10), (3, 1, 10), (1, 1, 12)]);
    assert_eq!(book.remaining(OrderId::new(1)), Some(Slots::new(1)));
    assert!(book.remaining(OrderId::new(4)).is_none());
    // A bid below the best ask rests.
    assert!(
        book.insert(T0, Order::Bid(unit_bid(5, 11, 2, who(5))), &rep())
            .unwrap()
            .is_empty()
    );
    assert_eq!(book.best_bid(), Some(Amount::new(11)));
    // An incoming ask trades at the resting bid's price.
    let fills = book
        .insert(T0, Order::Ask(unit_ask(6, 9, 1, who(6))), &rep())
        .unwrap();
    assert_eq!(fills[0].buyer_price, Amount::new(11));
    book.check_invariants().unwrap();
}

#[test]
fn cancel_expire_duplicates_and_depth() {
    let limits = Limits {
        max_book_depth: 2,
        ..Limits::default()
    };
    let mut book = OrderBook::new(limits);
    book.insert(T0, Order::Ask(unit_ask(1, 10, 1, who(1))), &rep())
        .unwrap();
    assert_eq!(
        book.insert(T0, Order::Ask(unit_ask(1, 10, 1, who(1))), &rep()),
        Err(MarketError::DuplicateOrderId(OrderId::new(1)))
    );
    let mut short = unit_bid(2, 5, 1, who(2));
    short.deadline = Timestamp::from_millis(1);
    book.insert(T0, Order::Bid(short), &rep()).unwrap();
    assert!(matches!(
        book.insert(T0, Order::Bid(unit_bid(3, 5, 1, who(3))), &rep()),
        Err(MarketError::Full { .. })
    ));
    assert_eq!(
        book.expire(Timestamp::from_millis(1)),
        vec![OrderId::new(2)]
    );
    let (o, left) = book.cancel(OrderId::new(1)).unwrap();
    assert_eq!((o.id(), left), (OrderId::new(1), Slots::new(1)));
    assert_eq!(
        book.cancel(OrderId::new(1)),
        Err(MarketError::UnknownOrder(OrderId::new(1)))
    );
    assert!(book.is_empty());
    book.check_invariants().unwrap();
}

#[test]
fn incompatible_orders_are_skipped() {
    let mut book = OrderBook::new(Limits::default());
    let mut gpu_bid = unit_bid(1, 50, 1, who(1));
    gpu_bid.demand.gpu_units = 1;
    book.insert(T0, Order::Bid(gpu_bid), &rep()).unwrap();
    book.insert(T0, Order::Bid(unit_bid(2, 40, 1, who(2))), &rep())
        .unwrap();
    let fills = book
        .insert(T0, Order::Ask(unit_ask(3, 30, 1, who(3))), &rep())
        .unwrap();
    assert_eq!(fills[0].bid, OrderId::new(2));
    assert_eq!(book.best_bid(), Some(Amount::new(50)));
}

#[derive(Debug, Clone)]
enum Op {
    Insert(Order),
    Cancel(prop::sample::Index),
    Expire(u64),
}

fn ops(hetero: bool) -> impl Strategy<Value = Vec<Op>> {
    let order = move |i: u64| -> BoxedStrategy<Order> {
        if hetero {
            prop_oneof![
                strategies::hetero_ask(i).prop_map(Order::Ask),
                strategies::hetero_bid(i).prop_map(Order::Bid)
            ]
            .boxed()
        } else {
            (any::<bool>(), 1u128..=30, 1u32..=5)
                .prop_map(move |(ask, p, s)| {
                    let a = AccountId::from_bytes([(i % 200) as u8; 32]);
                    if ask {
                        Order::Ask(unit_ask(i, p, s, a))
                    } else {
                        Order::Bid(unit_bid(i, p, s, a))
                    }
                })
                .boxed()
        }
    };
    let orders: Vec<_> = (0..150u64).map(order).collect();
    (
        orders,
        prop::collection::vec((0u8..10, any::<prop::sample::Index>(), 0u64..2_000), 150),
    )
        .prop_map(|(orders, extra)| {
            orders
                .into_iter()
                .zip(extra)
                .map(|(o, (k, idx, t))| match k {
                    0 => Op::Cancel(idx),
                    1 if t < 20 => Op::Expire(t * 50_000_000),
                    _ => Op::Insert(o),
                })
                .collect()
        })
}

fn run(ops: Vec<Op>, hetero: bool) -> Result<(), TestCaseError> {
    let reputation = strategies::test_reputation;
    let mut book = OrderBook::new(Limits::default());
    let mut placed: BTreeMap<OrderId, Order> = BTreeMap::new();
    let mut filled: BTreeMap<OrderId, u64> = BTreeMap::new();
    let mut now = T0;
    for op in ops {
        match op {
            Op::Insert(o) => {
                let Ok(fills) = book.insert(now, o.clone(), &reputation) else {
                    continue;
                };
                placed.insert(o.id(), o);
                for m in fills {
                    let (Order::Ask(a), Order::Bid(b)) = (&placed[&m.ask], &placed[&m.bid]) else {
                        return Err(TestCaseError::fail("fill with wrong sides"));
                    };
                    prop_assert!(m.buyer_price <= b.max_price && m.seller_price >= a.price);
                    prop_assert_eq!(m.buyer_price, m.seller_price);
                    prop_assert!(compatible(a, b, reputation(&a.provider)));
                    prop_assert!(a.is_live(now) && b.is_live(now));
                    *filled.entry(m.ask).or_default() += u64::from(m.slots.get());
                    *filled.entry(m.bid).or_default() += u64::from(m.slots.get());
                }
                if !hetero {
                    // Everything is compatible: the book is never crossed.
                    if let (Some(b), Some(a)) = (book.best_bid(), book.best_ask()) {
                        prop_assert!(b < a, "crossed book: bid {:?} ask {:?}", b, a);
                    }
                }
            }
            Op::Cancel(i) => {
                if !placed.is_empty() {
                    let id = *placed.keys().nth(i.index(placed.len())).unwrap();
                    let _ = book.cancel(id);
                }
            }
            Op::Expire(t) => {
                now = now.max(Timestamp::from_micros(t));
                book.expire(now);
            }
        }
        book.check_invariants()
            .map_err(|v| TestCaseError::fail(v.to_string()))?;
    }
    for (id, o) in &placed {
        let slots = match o {
            Order::Ask(a) => u64::from(a.slots.get()),
            Order::Bid(b) => u64::from(b.slots.get()),
        };
        let f = filled.get(id).copied().unwrap_or(0);
        let rest = book.remaining(*id).map_or(0, |s| u64::from(s.get()));
        prop_assert!(f + rest <= slots, "order {} over-filled", id);
        if rest > 0 {
            prop_assert_eq!(f + rest, slots);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn homogeneous_book_invariants(ops in ops(false)) {
        run(ops, false)?;
    }

    #[test]
    fn heterogeneous_book_invariants(ops in ops(true)) {
        run(ops, true)?;
    }
}
