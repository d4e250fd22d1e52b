//! Pairing a component's winning units: best bid first, each with the
//! cheapest compatible winning asks.
//!
//! What pairing and the matches need of each winning order is first
//! gathered, in sorted order, into compact records: a tight loop whose
//! reads of the (large, scattered) orders are independent, so the memory
//! system overlaps them. Pairing then walks the records in order; it reads
//! an order again only to compare feature sets, when a bid requires some.

use idlegrid_primitives::{AccountId, Timestamp};

use super::{Pricing, Unit, Winners};
use crate::clearing::{ClearingBuilder, ClearingContext, Party};
use crate::error::MarketError;
use crate::order::{Ask, Bid, compatible};
use crate::types::{
    ExecutorKind, ExecutorSet, Region, RegionSet, Reputation, ReputationLookup, Resources,
};

/// The pairing's buffers, kept between calls by [`super::ClearingScratch`].
#[derive(Default)]
pub(super) struct PairBuffers {
    offers: Vec<Offer>,
    needs: Vec<Need>,
    alive: NextAlive,
}

/// What pairing reads of a winning ask, and the units it has left.
#[derive(Clone, Copy)]
struct Offer {
    provider: AccountId,
    resources: Resources,
    window_start: Timestamp,
    executors: ExecutorSet,
    region: Region,
    reputation: Reputation,
    has_features: bool,
    units: u32,
}

/// What pairing reads of a winning bid, and the units it trades.
#[derive(Clone, Copy)]
struct Need {
    client: AccountId,
    demand: Resources,
    deadline: Timestamp,
    regions: RegionSet,
    executor: ExecutorKind,
    min_reputation: Reputation,
    requires_features: bool,
    units: u32,
}

impl Offer {
    fn of(a: &Ask, units: u32, rep: &dyn ReputationLookup) -> Self {
        Self {
            provider: a.provider,
            resources: a.resources,
            window_start: a.window_start,
            executors: a.executors,
            region: a.region,
            reputation: rep.reputation(&a.provider),
            has_features: !a.features.is_empty(),
            units,
        }
    }

    /// [`compatible`] on the gathered fields; `features` compares the
    /// orders' feature sets, called only when the bid requires some.
    fn serves(&self, n: &Need, features: impl FnOnce() -> bool) -> bool {
        self.resources.fits(&n.demand)
            && self.executors.contains(n.executor)
            && n.regions.contains(self.region)
            && self.reputation >= n.min_reputation
            && self.window_start < n.deadline
            && (!n.requires_features || (self.has_features && features()))
    }
}

impl Need {
    fn of(b: &Bid, units: u32) -> Self {
        Self {
            client: b.client,
            demand: b.demand,
            deadline: b.deadline,
            regions: b.regions,
            executor: b.executor,
            min_reputation: b.min_reputation,
            requires_features: !b.requires.is_empty(),
            units,
        }
    }
}

/// The units (quantity) of each of the first winning orders of a sorted
/// side that together make `units`, as (position, quantity).
fn take_units(side: &[Unit], mut units: u64) -> impl Iterator<Item = (&Unit, u32)> {
    side.iter().map_while(move |u| {
        if units == 0 {
            return None;
        }
        let q = u64::from(u.slots).min(units);
        units -= q;
        // q <= u.slots, a u32.
        Some((u, q as u32))
    })
}

/// Gathers the records of the winning orders of both sides.
fn gather(
    asks: &[Ask],
    bids: &[Bid],
    ctx: &ClearingContext<'_>,
    w: &Winners<'_>,
    buf: &mut PairBuffers,
) {
    buf.offers.clear();
    let rep = ctx.reputation;
    let offers = take_units(w.asks, w.units).map(|(u, q)| Offer::of(&asks[u.idx as usize], q, rep));
    buf.offers.extend(offers);
    buf.needs.clear();
    let needs = take_units(w.bids, w.units).map(|(u, q)| Need::of(&bids[u.idx as usize], q));
    buf.needs.extend(needs);
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
    gather(asks, bids, ctx, w, buf);
    let (offers, alive) = (&mut buf.offers, &mut buf.alive);
    // Usually every winner trades, each with at least one match.
    out.reserve(buf.needs.len().max(offers.len()));
    alive.reset(offers.len());
    for (need, bu) in buf.needs.iter().zip(w.bids) {
        let mut left = need.units;
        let bid = Party {
            idx: bu.idx,
            id: bu.id,
            account: need.client,
            price: bu.price,
        };
        let mut j = alive.find(0);
        let mut scanned = 0usize;
        while left > 0 && j < offers.len() && scanned < ctx.limits.max_scan {
            scanned += 1;
            let (offer, au) = (&mut offers[j], &w.asks[j]);
            let (ai, bi) = (au.idx as usize, bu.idx as usize);
            let features = || asks[ai].features.contains_all(&bids[bi].requires);
            debug_assert_eq!(
                offer.serves(need, features),
                compatible(&asks[ai], &bids[bi], offer.reputation)
            );
            if offer.serves(need, features) {
                let t = left.min(offer.units);
                let (buyer, seller) = match w.pricing {
                    Pricing::Uniform { buyer, seller } => (*buyer, *seller),
                    Pricing::PerBid => (bu.price, bu.price),
                    Pricing::PerAsk => (au.price, au.price),
                };
                let ask = Party {
                    idx: au.idx,
                    id: au.id,
                    account: offer.provider,
                    price: au.price,
                };
                out.push_parties(&ask, &bid, t, buyer, seller)?;
                left -= t;
                offer.units -= t;
                if offer.units == 0 {
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
