//! Stateful: fuzzer-chosen orders (built or decoded from raw bytes) go
//! (1) through every clearing mechanism — each `Ok` clearing must pass
//! `check_clearing` (individual rationality, budget balance, feasibility);
//! (2) into a continuous `OrderBook` with cancels and expiries —
//! `check_invariants` after every step, fills individually rational;
//! (3) through a sealed-bid batch with honest, late, forged and missing
//! reveals — bonds are refunded or forfeited exactly once and the batch's
//! clearing passes `check_clearing`. Nothing may panic.
#![no_main]

use idlegrid_fuzz::market_fixture::{order, reputation};
use idlegrid_market::{
    Ask, BatchConfig, Bid, ClearingContext, GreedyAssignment, KDouble, Limits, McAfee, Mechanism,
    Order, OrderBook, OptimalAssignment, PayAsAsk, PayAsBid, SealedBatch,
    check_clearing, seal,
};
use idlegrid_primitives::{Amount, Duration, Epoch, Salt, Timestamp};
use libfuzzer_sys::arbitrary::{Result as AResult, Unstructured};
use libfuzzer_sys::fuzz_target;

const MAX_ORDERS: usize = 10;

fn split(orders: &[Order]) -> (Vec<Ask>, Vec<Bid>) {
    let mut asks = Vec::new();
    let mut bids = Vec::new();
    for o in orders {
        match o {
            Order::Ask(a) => asks.push(a.clone()),
            Order::Bid(b) => bids.push(b.clone()),
        }
    }
    (asks, bids)
}

fn clear_all(u: &mut Unstructured<'_>, orders: &[Order], now: Timestamp) -> AResult<()> {
    let limits = Limits::default();
    let valid: Vec<Order> = orders.iter().filter(|o| o.validate(&limits, now).is_ok()).cloned().collect();
    let (asks, bids) = split(&valid);
    let ctx = ClearingContext { now, limits, reputation: &reputation };
    let split_bps = u.int_in_range(0..=10_001)?;
    let mut mechs: Vec<Box<dyn Mechanism>> = vec![Box::new(McAfee), Box::new(PayAsBid), Box::new(PayAsAsk)];
    if let Ok(k) = KDouble::new(split_bps) {
        mechs.push(Box::new(k));
    }
    if let Ok(m) = OptimalAssignment::new(split_bps, u.int_in_range(0..=64)?) {
        mechs.push(Box::new(m));
    }
    if let Ok(m) = GreedyAssignment::new(split_bps) {
        mechs.push(Box::new(m));
    }
    for m in &mechs {
        if let Ok(c) = m.clear(&asks, &bids, &ctx) {
            if let Err(v) = check_clearing(&asks, &bids, &c, &ctx, m.strongly_budget_balanced()) {
                panic!("{} produced an invalid clearing: {v:?}", m.name());
            }
        }
    }
    Ok(())
}

fn book(u: &mut Unstructured<'_>, orders: &[Order]) -> AResult<()> {
    let mut limits = Limits::default();
    limits.max_book_depth = u.int_in_range(1..=8)?;
    limits.max_scan = u.int_in_range(1..=16)?;
    let mut b = OrderBook::new(limits);
    let mut now = Timestamp::ZERO;
    for o in orders {
        match u.int_in_range(0..=5u8)? {
            0 => {
                let _ = b.cancel(o.id());
            }
            1 => {
                now = now.saturating_add(Duration::from_secs(u.int_in_range(0..=1_800)?));
                let _ = b.expire(now);
            }
            _ => {}
        }
        if let Ok(fills) = b.insert(now, o.clone(), &reputation) {
            for f in &fills {
                assert!(f.buyer_price >= f.seller_price, "fill pays the seller more than the buyer: {f:?}");
            }
        }
        if let Err(v) = b.check_invariants() {
            panic!("order book invariant broken: {v:?}");
        }
        let _ = (b.best_bid(), b.best_ask(), b.remaining(o.id()), b.len());
    }
    Ok(())
}

fn sealed(u: &mut Unstructured<'_>, orders: &[Order]) -> AResult<()> {
    let epoch = Epoch::new(3);
    let mut config = BatchConfig::default();
    config.max_commitments = u.int_in_range(1..=12)?;
    let start = Timestamp::from_millis(u.int_in_range(0..=1_000)?);
    let Ok(mut batch) = SealedBatch::open(epoch, start, config) else { return Ok(()) };
    let mut committed = Vec::new();
    for (i, o) in orders.iter().enumerate() {
        let salt = Salt::from_bytes([i as u8; 32]);
        let c = seal(epoch, o, &salt);
        let bond = Amount::new(u.int_in_range(0..=3)?);
        let at = if u.ratio(1, 8)? { batch.commit_deadline() } else { start };
        if batch.commit(at, o.owner(), c, bond).is_ok() {
            committed.push((o.clone(), salt, c));
        }
    }
    let t = batch.commit_deadline();
    for (o, salt, c) in &committed {
        match u.int_in_range(0..=7u8)? {
            0 => {} // never revealed
            1 => {
                let _ = batch.reveal(batch.reveal_deadline(), o.owner(), *c, o.clone(), *salt);
            }
            2 => {
                let _ = batch.reveal(t, o.owner(), *c, o.clone(), Salt::from_bytes([0xFF; 32]));
            }
            3 => {
                let other = orders[u.choose_index(orders.len())?].clone();
                let _ = batch.reveal(t, o.owner(), *c, other, *salt);
            }
            _ => {
                let _ = batch.reveal(t, o.owner(), *c, o.clone(), *salt);
            }
        }
    }
    let now = batch.reveal_deadline();
    let _ = batch.poll_timeout(now);
    if let Ok(out) = batch.close(now, &McAfee, &reputation) {
        assert_eq!(out.refunds.len() + out.forfeits.len(), committed.len(), "every bond settles once");
        let revealed: Vec<Order> = orders.to_vec();
        let (asks, bids) = split(&revealed);
        let ctx = ClearingContext { now, limits: config.limits, reputation: &reputation };
        if let Err(v) = check_clearing(&asks, &bids, &out.clearing, &ctx, McAfee.strongly_budget_balanced()) {
            panic!("sealed batch produced an invalid clearing: {v:?}");
        }
    }
    Ok(())
}

fn run(data: &[u8]) -> AResult<()> {
    let mut u = Unstructured::new(data);
    let n = u.int_in_range(0..=MAX_ORDERS)?;
    let mut orders: Vec<Order> = Vec::with_capacity(n);
    for i in 0..n {
        if let Some(o) = order(&mut u, i as u64)? {
            if !orders.iter().any(|p| p.id() == o.id()) {
                orders.push(o);
            }
        }
    }
    let now = Timestamp::from_millis(u.int_in_range(0..=2_000_000)?);
    clear_all(&mut u, &orders, now)?;
    book(&mut u, &orders)?;
    sealed(&mut u, &orders)?;
    Ok(())
}

fuzz_target!(
    init: idlegrid_fuzz::write_seeds([
        (0u8..=255).collect::<Vec<u8>>(),
        (0u8..=255).map(|b| b.wrapping_mul(7)).collect(),
        (0u8..=255).map(|b| b.wrapping_mul(13).wrapping_add(5)).collect(),
    ]),
    |data: &[u8]| {
        let _ = run(data);
    }
);
