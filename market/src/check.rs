//! Invariants as plain functions, for tests, the simulator and auditors.
//!
//! Each `check_*` returns the first [`Violation`] found.

use std::collections::BTreeMap;

use idlegrid_primitives::Amount;
use thiserror::Error;

use crate::clearing::{Clearing, ClearingContext, Match};
use crate::order::{Ask, Bid, compatible};
use crate::types::OrderId;

/// A broken market invariant.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Violation {
    /// A match names an order that is not in the input (or is on the wrong side).
    #[error("match names unknown order {0}")]
    UnknownOrder(OrderId),
    /// A match trades zero slots.
    #[error("match {bid}/{ask} trades zero slots")]
    ZeroSlots {
        /// The bid.
        bid: OrderId,
        /// The ask.
        ask: OrderId,
    },
    /// A buyer pays above its limit price.
    #[error("bid {bid} pays {price}, above its limit {limit}")]
    BuyerOverpays {
        /// The bid.
        bid: OrderId,
        /// The price paid.
        price: Amount,
        /// The bid's limit.
        limit: Amount,
    },
    /// A seller receives below its reserve price.
    #[error("ask {ask} receives {price}, below its reserve {reserve}")]
    SellerUnderpaid {
        /// The ask.
        ask: OrderId,
        /// The price received.
        price: Amount,
        /// The ask's reserve.
        reserve: Amount,
    },
    /// A match pays the seller more than the buyer pays.
    #[error("match {bid}/{ask} pays the seller more than the buyer pays")]
    PairDeficit {
        /// The bid.
        bid: OrderId,
        /// The ask.
        ask: OrderId,
    },
    /// Buyers pay less than sellers receive (or, for a strongly balanced
    /// mechanism, the two differ).
    #[error("budget imbalance: buyers pay {paid}, sellers receive {received}")]
    Budget {
        /// Total buyer payments.
        paid: Amount,
        /// Total seller receipts.
        received: Amount,
    },
    /// An incompatible or expired pair was matched.
    #[error("bid {bid} and ask {ask} are not compatible")]
    Incompatible {
        /// The bid.
        bid: OrderId,
        /// The ask.
        ask: OrderId,
    },
    /// An order trades more slots than it has.
    #[error("order {order} trades {filled} slots but has {slots}")]
    OverAllocated {
        /// The order.
        order: OrderId,
        /// Slots traded.
        filled: u64,
        /// Slots in the order.
        slots: u32,
    },
    /// The statistics disagree with the matches.
    #[error("clearing statistics disagree with the matches: {0}")]
    Stats(&'static str),
    /// The order book's internal state is inconsistent.
    #[error("order book inconsistency: {0}")]
    Book(&'static str),
    /// A settlement pays out more or less than the escrow.
    #[error("settlement pays {paid} out of an escrow of {escrow}")]
    Conservation {
        /// The escrow.
        escrow: Amount,
        /// Everything paid out.
        paid: Amount,
    },
    /// The registry's internal state is inconsistent.
    #[error("registry inconsistency: {0}")]
    Registry(&'static str),
    /// A settlement disagrees with its match.
    #[error("settlement disagrees with its match: {0}")]
    Settlement(&'static str),
}

fn index<'a>(
    asks: &'a [Ask],
    bids: &'a [Bid],
) -> (BTreeMap<OrderId, &'a Ask>, BTreeMap<OrderId, &'a Bid>) {
    (
        asks.iter().map(|a| (a.id, a)).collect(),
        bids.iter().map(|b| (b.id, b)).collect(),
    )
}

fn lookup<'a>(
    m: &Match,
    asks: &BTreeMap<OrderId, &'a Ask>,
    bids: &BTreeMap<OrderId, &'a Bid>,
) -> Result<(&'a Ask, &'a Bid), Violation> {
    let a = asks.get(&m.ask).ok_or(Violation::UnknownOrder(m.ask))?;
    let b = bids.get(&m.bid).ok_or(Violation::UnknownOrder(m.bid))?;
    Ok((a, b))
}

/// No buyer pays above its bid, no seller receives below its ask, and no
/// single match pays out more than it takes in.
pub fn check_individual_rationality(
    asks: &[Ask],
    bids: &[Bid],
    clearing: &Clearing,
) -> Result<(), Violation> {
    let (ai, bi) = index(asks, bids);
    for m in &clearing.matches {
        let (a, b) = lookup(m, &ai, &bi)?;
        if m.buyer_price > b.max_price {
            return Err(Violation::BuyerOverpays {
                bid: b.id,
                price: m.buyer_price,
                limit: b.max_price,
            });
        }
        if m.seller_price < a.price {
            return Err(Violation::SellerUnderpaid {
                ask: a.id,
                price: m.seller_price,
                reserve: a.price,
            });
        }
        if m.seller_price > m.buyer_price {
            return Err(Violation::PairDeficit {
                bid: b.id,
                ask: a.id,
            });
        }
    }
    Ok(())
}

/// What buyers pay is at least what sellers receive; with `strong`, exactly.
/// Also checks the totals in the statistics.
pub fn check_budget_balance(clearing: &Clearing, strong: bool) -> Result<(), Violation> {
    let mut paid = 0u128;
    let mut received = 0u128;
    for m in &clearing.matches {
        let n = u128::from(m.slots.get());
        paid = paid.saturating_add(m.buyer_price.get().saturating_mul(n));
        received = received.saturating_add(m.seller_price.get().saturating_mul(n));
    }
    let (paid, received) = (Amount::new(paid), Amount::new(received));
    if paid < received || (strong && paid != received) {
        return Err(Violation::Budget { paid, received });
    }
    let s = &clearing.stats;
    if s.buyer_payments != paid || s.seller_receipts != received {
        return Err(Violation::Stats("payment totals"));
    }
    if s.surplus != paid.saturating_sub(received) {
        return Err(Violation::Stats("surplus"));
    }
    Ok(())
}

/// Every match is compatible and live at `ctx.now`, trades at least one
/// slot, and no order trades more slots than it has.
pub fn check_feasibility(
    asks: &[Ask],
    bids: &[Bid],
    clearing: &Clearing,
    ctx: &ClearingContext<'_>,
) -> Result<(), Violation> {
    let (ai, bi) = index(asks, bids);
    let mut filled: BTreeMap<OrderId, u64> = BTreeMap::new();
    for m in &clearing.matches {
        let (a, b) = lookup(m, &ai, &bi)?;
        if m.slots.get() == 0 {
            return Err(Violation::ZeroSlots {
                bid: b.id,
                ask: a.id,
            });
        }
        let rep = ctx.reputation.reputation(&a.provider);
        if !compatible(a, b, rep) || !a.is_live(ctx.now) || !b.is_live(ctx.now) {
            return Err(Violation::Incompatible {
                bid: b.id,
                ask: a.id,
            });
        }
        if m.client != b.client || m.provider != a.provider {
            return Err(Violation::UnknownOrder(m.bid));
        }
        for (id, slots) in [(a.id, a.slots.get()), (b.id, b.slots.get())] {
            let f = filled.entry(id).or_default();
            *f += u64::from(m.slots.get());
            if *f > u64::from(slots) {
                return Err(Violation::OverAllocated {
                    order: id,
                    filled: *f,
                    slots,
                });
            }
        }
    }
    let volume: u64 = clearing
        .matches
        .iter()
        .map(|m| u64::from(m.slots.get()))
        .sum();
    if volume != clearing.stats.volume_slots {
        return Err(Violation::Stats("volume"));
    }
    Ok(())
}

/// All of the above, with strong budget balance if `strong`.
pub fn check_clearing(
    asks: &[Ask],
    bids: &[Bid],
    clearing: &Clearing,
    ctx: &ClearingContext<'_>,
    strong: bool,
) -> Result<(), Violation> {
    check_individual_rationality(asks, bids, clearing)?;
    check_budget_balance(clearing, strong)?;
    check_feasibility(asks, bids, clearing, ctx)
}
