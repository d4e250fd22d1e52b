//! Pairing a component's winning units: best bid first, each with the
//! cheapest compatible winning asks.

use super::{Pricing, Unit, Winners};
use crate::clearing::{ClearingBuilder, ClearingContext};
use crate::error::MarketError;
use crate::order::{Ask, Bid, compatible};
use crate::types::Reputation;

/// The pairing's buffers, kept between calls by [`super::ClearingScratch`].
#[derive(Default)]
pub(super) struct PairBuffers {
    /// Winning bids as (order index, units).
    bids: Vec<(u32, u32)>,
    /// Winning asks as (order index, units left).
    asks: Vec<(u32, u32)>,
    /// Each winning ask's provider reputation.
    reps: Vec<Reputation>,
    alive: NextAlive,
}

/// The first `units` units of a sorted side as (order index, quantity).
fn take_units(side: &[Unit], mut units: u64, out: &mut Vec<(u32, u32)>) {
    out.clear();
    for u in side {
        if units == 0 {
            break;
        }
        let q = u64::from(u.slots).min(units);
        units -= q;
        // q <= u.slots, a u32.
        out.push((u.idx, q as u32));
    }
}

/// Pairs winning bids (best first) with compatible winning asks (cheapest
/// first), examining at most `ctx.limits.max_scan` live asks per bid.
pub(super) fn pair_winners(
    asks: &[Ask],
    bids: &[Bid],
    ctx: &ClearingContext<'_>,
    w: &Winners<'_>,
    buf: &mut PairBuffers,
    out: &mut ClearingBuilder<'_>,
) -> Result<(), MarketError> {
    take_units(w.bids, w.units, &mut buf.bids);
    take_units(w.asks, w.units, &mut buf.asks);
    let (wb, wa) = (&buf.bids, &mut buf.asks);
    // Usually every winner trades, each with at least one match.
    out.reserve(wb.len().max(wa.len()));
    // Reputation is only needed for winning asks.
    buf.reps.clear();
    let rep = ctx.reputation;
    let looked_up = wa
        .iter()
        .map(|&(ai, _)| rep.reputation(&asks[ai as usize].provider));
    buf.reps.extend(looked_up);
    let alive = &mut buf.alive;
    alive.reset(wa.len());
    for &(bi, mut need) in wb {
        let bid = &bids[bi as usize];
        let mut j = alive.find(0);
        let mut scanned = 0usize;
        while need > 0 && j < wa.len() && scanned < ctx.limits.max_scan {
            scanned += 1;
            let (ai, cap) = &mut wa[j];
            let ask = &asks[*ai as usize];
            if compatible(ask, bid, buf.reps[j]) {
                let t = need.min(*cap);
                let (buyer, seller) = match w.pricing {
                    Pricing::Uniform { buyer, seller } => (*buyer, *seller),
                    Pricing::PerBid => (bid.max_price, bid.max_price),
                    Pricing::PerAsk => (ask.price, ask.price),
                };
                out.push(*ai as usize, bi as usize, t, buyer, seller)?;
                need -= t;
                *cap -= t;
                if *cap == 0 {
                    alive.remove(j);
                }
            }
            j = alive.find(j + 1);
        }
    }
    Ok(())
}

/// "Next position still alive" with path compression, to skip exhausted
/// counterparties in amortised constant time.
#[derive(Default)]
pub(crate) struct NextAlive {
    next: Vec<u32>,
}

impl NextAlive {
    /// Positions `0..n`, all alive.
    pub fn new(n: usize) -> Self {
        let mut s = Self::default();
        s.reset(n);
        s
    }
    /// Makes positions `0..n` all alive again, keeping the allocation.
    pub fn reset(&mut self, n: usize) {
        self.next.clear();
        self.next.extend(0..=n as u32);
    }
    /// The first alive position `>= i` (or `n`).
    pub fn find(&mut self, mut i: usize) -> usize {
        let n = self.next.len() - 1;
        if i >= n {
            return n;
        }
        let mut root = i;
        while self.next[root] as usize != root {
            root = self.next[root] as usize;
        }
        while self.next[i] as usize != root {
            let nx = self.next[i] as usize;
            self.next[i] = root as u32;
            i = nx;
        }
        root
    }
    /// Marks position `i` dead.
    pub fn remove(&mut self, i: usize) {
        self.next[i] = (i + 1) as u32;
    }
}
