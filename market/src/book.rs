//! The continuous double auction (price-time-priority order book).

use core::cmp::Reverse;
use std::collections::BTreeMap;

use idlegrid_primitives::{Amount, Timestamp};

use crate::check::Violation;
use crate::clearing::Match;
use crate::error::MarketError;
use crate::order::{Ask, Bid, Limits, Order, compatible};
use crate::types::{OrderId, ReputationLookup, Slots};

#[derive(Clone, Debug)]
struct Resting {
    order: Order,
    remaining: u32,
    seq: u64,
}

/// A continuous double auction: a price-time-priority order book for
/// latency-sensitive jobs.
///
/// An incoming order is matched at once against compatible resting orders
/// on the other side, best price first and, at equal price, oldest first;
/// each fill trades at the **resting** order's price (so the incoming order
/// never pays more than its limit and the resting order gets exactly its
/// price). What is left rests in the book. Incompatible resting orders are
/// skipped, so the book may stay crossed between incompatible orders; at
/// most `limits.max_scan` resting orders are examined per insert.
///
/// Bounded: at most `limits.max_book_depth` resting orders. Expired orders
/// are dropped lazily when met and by [`OrderBook::expire`]. Order-id
/// uniqueness is checked against resting orders; the composition root
/// assigns globally unique ids.
#[derive(Clone, Debug)]
pub struct OrderBook {
    limits: Limits,
    seq: u64,
    asks: BTreeMap<(Amount, u64), OrderId>,
    bids: BTreeMap<(Reverse<Amount>, u64), OrderId>,
    orders: BTreeMap<OrderId, Resting>,
}

impl OrderBook {
    /// An empty book.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            seq: 0,
            asks: BTreeMap::new(),
            bids: BTreeMap::new(),
            orders: BTreeMap::new(),
        }
    }

    /// Resting orders on both sides.
    pub fn len(&self) -> usize {
        self.orders.len()
    }
    /// True if nothing rests.
    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }
    /// The highest resting bid price.
    pub fn best_bid(&self) -> Option<Amount> {
        self.bids.keys().next().map(|k| k.0.0)
    }
    /// The lowest resting ask price.
    pub fn best_ask(&self) -> Option<Amount> {
        self.asks.keys().next().map(|k| k.0)
    }
    /// Unfilled slots of a resting order.
    pub fn remaining(&self, id: OrderId) -> Option<Slots> {
        self.orders.get(&id).map(|r| Slots::new(r.remaining))
    }

    /// Matches `order` against the book at `now` and rests what is left.
    /// Returns the fills in execution order.
    pub fn insert(
        &mut self,
        now: Timestamp,
        order: Order,
        reputation: &dyn ReputationLookup,
    ) -> Result<Vec<Match>, MarketError> {
        order.validate(&self.limits, now)?;
        if let Order::Bid(b) = &order
            && !b.goods.is_empty()
        {
            return Err(MarketError::GoodsNotSupported(b.id));
        }
        if self.orders.contains_key(&order.id()) {
            return Err(MarketError::DuplicateOrderId(order.id()));
        }
        if self.orders.len() >= self.limits.max_book_depth {
            return Err(MarketError::Full {
                what: "resting orders in the book",
                max: self.limits.max_book_depth,
            });
        }
        let mut fills = Vec::new();
        let remaining = match &order {
            Order::Bid(b) => self.match_bid(now, b, reputation, &mut fills),
            Order::Ask(a) => self.match_ask(now, a, reputation, &mut fills),
        };
        if remaining > 0 {
            self.seq += 1;
            let seq = self.seq;
            match &order {
                Order::Ask(a) => self.asks.insert((a.price, seq), a.id),
                Order::Bid(b) => self.bids.insert((Reverse(b.max_price), seq), b.id),
            };
            self.orders.insert(
                order.id(),
                Resting {
                    order,
                    remaining,
                    seq,
                },
            );
        }
        Ok(fills)
    }

    fn match_bid(
        &mut self,
        now: Timestamp,
        bid: &Bid,
        rep: &dyn ReputationLookup,
        fills: &mut Vec<Match>,
    ) -> u32 {
        let mut need = bid.slots.get();
        let mut gone = Vec::new();
        for (scanned, (&key, id)) in self.asks.iter().enumerate() {
            if need == 0 || key.0 > bid.max_price || scanned >= self.limits.max_scan {
                break;
            }
            let Some(r) = self.orders.get_mut(id) else {
                continue;
            };
            let Order::Ask(ask) = &r.order else { continue };
            if !ask.is_live(now) {
                gone.push(key);
                continue;
            }
            if !compatible(ask, bid, rep.reputation(&ask.provider)) {
                continue;
            }
            let t = need.min(r.remaining);
            need -= t;
            r.remaining -= t;
            fills.push(fill(ask, bid, t, ask.price));
            if r.remaining == 0 {
                gone.push(key);
            }
        }
        for key in gone {
            if let Some(id) = self.asks.remove(&key) {
                self.orders.remove(&id);
            }
        }
        need
    }

    fn match_ask(
        &mut self,
        now: Timestamp,
        ask: &Ask,
        rep: &dyn ReputationLookup,
        fills: &mut Vec<Match>,
    ) -> u32 {
        let mut cap = ask.slots.get();
        let provider_rep = rep.reputation(&ask.provider);
        let mut gone = Vec::new();
        for (scanned, (&key, id)) in self.bids.iter().enumerate() {
            if cap == 0 || key.0.0 < ask.price || scanned >= self.limits.max_scan {
                break;
            }
            let Some(r) = self.orders.get_mut(id) else {
                continue;
            };
            let Order::Bid(bid) = &r.order else { continue };
            if !bid.is_live(now) {
                gone.push(key);
                continue;
            }
            if !compatible(ask, bid, provider_rep) {
                continue;
            }
            let t = cap.min(r.remaining);
            cap -= t;
            r.remaining -= t;
            fills.push(fill(ask, bid, t, bid.max_price));
            if r.remaining == 0 {
                gone.push(key);
            }
        }
        for key in gone {
            if let Some(id) = self.bids.remove(&key) {
                self.orders.remove(&id);
            }
        }
        cap
    }

    /// Removes a resting order; returns it with its unfilled slots.
    pub fn cancel(&mut self, id: OrderId) -> Result<(Order, Slots), MarketError> {
        let r = self
            .orders
            .remove(&id)
            .ok_or(MarketError::UnknownOrder(id))?;
        match &r.order {
            Order::Ask(a) => self.asks.remove(&(a.price, r.seq)),
            Order::Bid(b) => self.bids.remove(&(Reverse(b.max_price), r.seq)),
        };
        Ok((r.order, Slots::new(r.remaining)))
    }

    /// Drops every order expired at `now`; returns their ids, ascending.
    pub fn expire(&mut self, now: Timestamp) -> Vec<OrderId> {
        let dead: Vec<OrderId> = self
            .orders
            .iter()
            .filter(|(_, r)| match &r.order {
                Order::Ask(a) => !a.is_live(now),
                Order::Bid(b) => !b.is_live(now),
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &dead {
            // Present: collected from `orders` just above.
            let _ = self.cancel(*id);
        }
        dead
    }

    /// Checks the book's internal consistency: both price indexes point at
    /// live entries of the right side and price, every resting order has
    /// unfilled slots within its size, and depth is within the limit.
    pub fn check_invariants(&self) -> Result<(), Violation> {
        let bad = |what: &'static str| Err(Violation::Book(what));
        if self.orders.len() != self.asks.len() + self.bids.len() {
            return bad("index sizes disagree with the order map");
        }
        if self.orders.len() > self.limits.max_book_depth {
            return bad("depth above the limit");
        }
        for (&(price, seq), id) in &self.asks {
            match self.orders.get(id) {
                Some(Resting {
                    order: Order::Ask(a),
                    seq: s,
                    ..
                }) if a.price == price && *s == seq => {}
                _ => return bad("ask index entry does not match a resting ask"),
            }
        }
        for (&(Reverse(price), seq), id) in &self.bids {
            match self.orders.get(id) {
                Some(Resting {
                    order: Order::Bid(b),
                    seq: s,
                    ..
                }) if b.max_price == price && *s == seq => {}
                _ => return bad("bid index entry does not match a resting bid"),
            }
        }
        for r in self.orders.values() {
            let slots = match &r.order {
                Order::Ask(a) => a.slots.get(),
                Order::Bid(b) => b.slots.get(),
            };
            if r.remaining == 0 || r.remaining > slots {
                return bad("resting order with no or too many unfilled slots");
            }
        }
        Ok(())
    }
}

fn fill(ask: &Ask, bid: &Bid, slots: u32, price: Amount) -> Match {
    Match {
        bid: bid.id,
        ask: ask.id,
        client: bid.client,
        provider: ask.provider,
        slots: Slots::new(slots),
        buyer_price: price,
        seller_price: price,
        fees: Vec::new(),
    }
}
