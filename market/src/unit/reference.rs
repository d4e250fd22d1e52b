//! The unit clearing as it was before the reusable [`ClearingScratch`]
//! (issue 22), kept verbatim as the oracle of a differential proptest:
//! the fast path must give the same [`Clearing`], byte for byte, and fail
//! with the same error. Test-only; nothing here is compiled into the crate.
//!
//! [`ClearingScratch`]: crate::ClearingScratch
#![allow(clippy::too_many_arguments)]

use std::collections::BTreeSet;

use idlegrid_primitives::Amount;

use super::Rule;
use crate::clearing::{Clearing, ClearingContext, ClearingStats, Match, first_duplicate};
use crate::error::MarketError;
use crate::order::{Ask, Bid, compatible};
use crate::types::{
    ExecutorKind, ExecutorSet, MAX_REGIONS, OrderId, RegionSet, Reputation, ReputationLookup, Slots,
};

/// One order on a sorted side.
#[derive(Clone, Copy)]
struct Unit {
    price: Amount,
    id: OrderId,
    idx: u32,
    slots: u32,
}

/// The breakeven point of two sorted sides.
#[derive(Debug, PartialEq, Eq)]
struct Breakeven {
    k: u64,
    b_k: Amount,
    s_k: Amount,
    b_next: Option<Amount>,
    s_next: Option<Amount>,
}

fn breakeven(bids: &[Unit], asks: &[Unit]) -> Breakeven {
    let (mut i, mut j) = (0usize, 0usize);
    let mut ri = bids.first().map_or(0, |u| u.slots);
    let mut rj = asks.first().map_or(0, |u| u.slots);
    let mut out = Breakeven {
        k: 0,
        b_k: Amount::ZERO,
        s_k: Amount::ZERO,
        b_next: None,
        s_next: None,
    };
    while i < bids.len() && j < asks.len() && bids[i].price >= asks[j].price {
        let t = ri.min(rj);
        out.k += u64::from(t);
        out.b_k = bids[i].price;
        out.s_k = asks[j].price;
        ri -= t;
        rj -= t;
        if ri == 0 {
            i += 1;
            ri = bids.get(i).map_or(0, |u| u.slots);
        }
        if rj == 0 {
            j += 1;
            rj = asks.get(j).map_or(0, |u| u.slots);
        }
    }
    out.b_next = bids.get(i).map(|u| u.price);
    out.s_next = asks.get(j).map(|u| u.price);
    out
}

/// How the winners of one component are priced.
enum Pricing {
    /// Buyer pays, seller receives.
    Uniform {
        buyer: Amount,
        seller: Amount,
    },
    PerBid,
    PerAsk,
}

/// `⌊(a + b) / 2⌋` without overflow.
fn midpoint(a: Amount, b: Amount) -> Amount {
    let (a, b) = (a.get(), b.get());
    Amount::new(a / 2 + b / 2 + (a % 2 + b % 2) / 2)
}

/// McAfee's test `lo <= (b + s) / 2 <= hi` on the exact half, not the
/// rounded one: with `b + s = 2·hi + 1` the rounded half equals `hi` but
/// the exact one exceeds it. Doubled, so in integers; `u128` amounts are
/// split to stay exact without overflow.
fn mcafee_price_in_range(b: Amount, s: Amount, lo: Amount, hi: Amount) -> bool {
    // 2·x as (high bit, low 128 bits); sums compared the same way.
    let double = |x: u128| (x >> 127, x << 1);
    let (b, s) = (b.get(), s.get());
    let (low, carry) = b.overflowing_add(s);
    let sum = (u128::from(carry), low);
    double(lo.get()) <= sum && sum <= double(hi.get())
}

fn price_rule(rule: Rule, be: &Breakeven) -> Result<(u64, Pricing), MarketError> {
    Ok(match rule {
        Rule::McAfee => {
            let p = be.b_next.zip(be.s_next);
            match p {
                Some((b, s)) if mcafee_price_in_range(b, s, be.s_k, be.b_k) => (
                    be.k,
                    Pricing::Uniform {
                        buyer: midpoint(b, s),
                        seller: midpoint(b, s),
                    },
                ),
                _ => (
                    be.k.saturating_sub(1),
                    Pricing::Uniform {
                        buyer: be.b_k,
                        seller: be.s_k,
                    },
                ),
            }
        }
        Rule::KDouble(k_bps) => {
            let lo = be.s_k.max(be.b_next.unwrap_or(Amount::ZERO));
            let hi = be.b_k.min(be.s_next.unwrap_or(Amount::MAX));
            debug_assert!(lo <= hi);
            let p = lo.checked_add(hi.checked_sub(lo)?.mul_ratio(u128::from(k_bps), 10_000)?)?;
            (
                be.k,
                Pricing::Uniform {
                    buyer: p,
                    seller: p,
                },
            )
        }
        Rule::PayAsBid => (be.k, Pricing::PerBid),
        Rule::PayAsAsk => (be.k, Pricing::PerAsk),
    })
}

pub(super) fn clear_units(
    rule: Rule,
    asks: &[Ask],
    bids: &[Bid],
    ctx: &ClearingContext<'_>,
) -> Result<Clearing, MarketError> {
    let mut sa = SideUnits::with_capacity(asks.len());
    let mut sb = SideUnits::with_capacity(bids.len());
    let expired = prepare_with(
        asks,
        bids,
        ctx,
        |i, a| sa.push_ask(i, a),
        |i, b| sb.push_bid(i, b),
    )?;
    let live = (sa.units.len(), sb.units.len());
    let mut out = ClearingBuilder::new(asks, bids, expired);
    for (mut su, mut bu) in partition(sa, sb) {
        sort_sides(&mut bu, &mut su);
        let be = breakeven(&bu, &su);
        if be.k == 0 {
            continue;
        }
        let (units, pricing) = price_rule(rule, &be)?;
        pair_winners(
            asks,
            bids,
            ctx.reputation,
            &bu,
            &su,
            units,
            &pricing,
            ctx.limits.max_scan,
            &mut out,
        )?;
    }
    out.finish(live.0, live.1)
}

impl Unit {
    fn of_ask(idx: u32, a: &Ask) -> Self {
        Self {
            price: a.price,
            id: a.id,
            idx,
            slots: a.slots.get(),
        }
    }
    fn of_bid(idx: u32, b: &Bid) -> Self {
        Self {
            price: b.max_price,
            id: b.id,
            idx,
            slots: b.slots.get(),
        }
    }
}

/// Asks by price ascending, bids by price descending, ties by order id.
///
/// When every price fits in 64 bits (always, in practice) the two keys are
/// packed into one `u128`, so each comparison is a single integer compare.
fn sort_sides(bu: &mut [Unit], su: &mut [Unit]) {
    let small = |side: &[Unit]| side.iter().all(|u| u.price.get() <= u128::from(u64::MAX));
    if small(bu) && small(su) {
        let id = |u: &Unit| u128::from(u.id.get());
        su.sort_unstable_by_key(|u| (u.price.get() << 64) | id(u));
        bu.sort_unstable_by_key(|u| ((u128::from(u64::MAX) - u.price.get()) << 64) | id(u));
    } else {
        su.sort_unstable_by(|x, y| x.price.cmp(&y.price).then(x.id.cmp(&y.id)));
        bu.sort_unstable_by(|x, y| y.price.cmp(&x.price).then(x.id.cmp(&y.id)));
    }
}

/// The first `units` units of a sorted side as (order index, quantity).
fn take_units(side: &[Unit], mut units: u64) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for u in side {
        if units == 0 {
            break;
        }
        let q = u64::from(u.slots).min(units);
        units -= q;
        // q <= u.slots, a u32.
        out.push((u.idx, q as u32));
    }
    out
}

/// Pairs winning bids (best first) with compatible winning asks (cheapest
/// first), examining at most `max_scan` live asks per bid.
#[allow(clippy::too_many_arguments)]
fn pair_winners(
    asks: &[Ask],
    bids: &[Bid],
    reputation: &dyn ReputationLookup,
    bu: &[Unit],
    su: &[Unit],
    units: u64,
    pricing: &Pricing,
    max_scan: usize,
    out: &mut ClearingBuilder<'_>,
) -> Result<(), MarketError> {
    let wb = take_units(bu, units);
    let mut wa = take_units(su, units);
    // Usually every winner trades, each with at least one match.
    out.reserve(wb.len().max(wa.len()));
    // Reputation is only needed for winning asks.
    let reps: Vec<Reputation> = wa
        .iter()
        .map(|&(ai, _)| reputation.reputation(&asks[ai as usize].provider))
        .collect();
    let mut alive = NextAlive::new(wa.len());
    for &(bi, mut need) in &wb {
        let bid = &bids[bi as usize];
        let mut j = alive.find(0);
        let mut scanned = 0usize;
        while need > 0 && j < wa.len() && scanned < max_scan {
            scanned += 1;
            let (ai, cap) = &mut wa[j];
            let ask = &asks[*ai as usize];
            if compatible(ask, bid, reps[j]) {
                let t = need.min(*cap);
                let (buyer, seller) = match pricing {
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
struct NextAlive {
    next: Vec<u32>,
}

impl NextAlive {
    pub fn new(n: usize) -> Self {
        Self {
            next: (0..=n as u32).collect(),
        }
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

const LANES: usize = MAX_REGIONS as usize * ExecutorKind::ALL.len();

fn lane(region: u8, exec: ExecutorKind) -> usize {
    usize::from(region) * ExecutorKind::ALL.len() + exec.index()
}

fn uf_find(p: &mut [usize; LANES], mut x: usize) -> usize {
    while p[x] != x {
        p[x] = p[p[x]];
        x = p[x];
    }
    x
}

fn uf_union(p: &mut [usize; LANES], a: usize, b: usize) {
    let (ra, rb) = (uf_find(p, a), uf_find(p, b));
    // Smaller root wins: deterministic regardless of call order.
    let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
    p[hi] = lo;
}

/// One side's live orders as units, gathered in the validating pass so
/// that nothing after it reads the (large) orders again until matching.
#[derive(Default)]
struct SideUnits {
    units: Vec<Unit>,
    /// Each unit's anchor lane (its first region × executor pair).
    anchors: Vec<u8>,
    /// The distinct lane keys seen: (region or region bits, executor bits).
    keys: BTreeSet<(u64, u8)>,
    last_key: Option<(u64, u8)>,
}

impl SideUnits {
    fn with_capacity(n: usize) -> Self {
        Self {
            units: Vec::with_capacity(n),
            anchors: Vec::with_capacity(n),
            ..Self::default()
        }
    }
    fn note_key(&mut self, key: (u64, u8)) {
        // Consecutive repeats (the common case) skip the set.
        if self.last_key != Some(key) {
            self.keys.insert(key);
            self.last_key = Some(key);
        }
    }
    fn push_ask(&mut self, i: u32, a: &Ask) {
        // Validated: executors non-empty, region < MAX_REGIONS.
        let e = a.executors.iter().next().unwrap_or(ExecutorKind::Wasm);
        self.note_key((u64::from(a.region.get()), a.executors.bits()));
        self.anchors.push(lane(a.region.get(), e) as u8);
        self.units.push(Unit::of_ask(i, a));
    }
    fn push_bid(&mut self, i: u32, b: &Bid) {
        // Validated: regions non-empty.
        let r = b.regions.bits().trailing_zeros().min(63) as u8;
        self.note_key((b.regions.bits(), b.executor.index() as u8));
        self.anchors.push(lane(r, b.executor) as u8);
        self.units.push(Unit::of_bid(i, b));
    }
}

/// Joins the lanes an ask's executor set or a bid's region set connects.
fn lane_components(sa: &SideUnits, sb: &SideUnits) -> [usize; LANES] {
    let mut p = [0usize; LANES];
    for (i, x) in p.iter_mut().enumerate() {
        *x = i;
    }
    for &(r, bits) in &sa.keys {
        let mut it = ExecutorSet::from_bits(bits).iter();
        if let Some(first) = it.next() {
            for e in it {
                uf_union(&mut p, lane(r as u8, first), lane(r as u8, e));
            }
        }
    }
    for &(bits, e) in &sb.keys {
        let e = ExecutorKind::ALL[usize::from(e)];
        let mut it = RegionSet::from_bits(bits).iter();
        if let Some(first) = it.next() {
            for r in it {
                uf_union(&mut p, lane(first.get(), e), lane(r.get(), e));
            }
        }
    }
    for x in 0..LANES {
        p[x] = uf_find(&mut p, x);
    }
    p
}

/// Splits live orders into independent components of the
/// (region × executor kind) lane graph, in ascending lane order, as
/// unsorted (asks, bids) units. One component (the common case) moves the
/// gathered units without copying them.
fn partition(sa: SideUnits, sb: SideUnits) -> Vec<(Vec<Unit>, Vec<Unit>)> {
    let root = lane_components(&sa, &sb);
    let single = |s: &SideUnits| s.anchors.first().map(|&l| root[usize::from(l)]);
    if let (Some(ra), Some(rb)) = (single(&sa), single(&sb)) {
        let same = |s: &SideUnits| s.anchors.iter().all(|&l| root[usize::from(l)] == ra);
        if ra == rb && same(&sa) && same(&sb) {
            return vec![(sa.units, sb.units)];
        }
    }
    let mut buckets: Vec<(Vec<Unit>, Vec<Unit>)> = vec![(Vec::new(), Vec::new()); LANES];
    for (u, &l) in sa.units.into_iter().zip(&sa.anchors) {
        buckets[root[usize::from(l)]].0.push(u);
    }
    for (u, &l) in sb.units.into_iter().zip(&sb.anchors) {
        buckets[root[usize::from(l)]].1.push(u);
    }
    buckets
        .into_iter()
        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        .collect()
}

/// [`prepare`] with a visitor instead of index lists: `on_ask(i, &asks[i])`
/// for every live ask and `on_bid` for every live bid, in input order, in
/// the same single pass that validates them; returns the number expired.
/// On error the visitors may have seen some orders: discard what they built.
fn prepare_with(
    asks: &[Ask],
    bids: &[Bid],
    ctx: &ClearingContext<'_>,
    mut on_ask: impl FnMut(u32, &Ask),
    mut on_bid: impl FnMut(u32, &Bid),
) -> Result<u64, MarketError> {
    let total = asks.len().saturating_add(bids.len());
    let max = ctx.limits.max_batch_orders.min(u32::MAX as usize);
    if total > max {
        return Err(MarketError::Full {
            what: "orders in a batch",
            max,
        });
    }
    // One pass per side: shape, id and liveness (orders are large; each
    // extra pass over them costs as much as the sort that follows).
    let mut ids = Vec::with_capacity(total);
    let mut expired = 0u64;
    // Indices fit in u32: total <= u32::MAX was checked above.
    for (i, a) in asks.iter().enumerate() {
        a.validate_shape(&ctx.limits)?;
        ids.push(a.id.get());
        if a.is_live(ctx.now) {
            on_ask(i as u32, a);
        } else {
            expired += 1;
        }
    }
    for (i, b) in bids.iter().enumerate() {
        b.validate_shape(&ctx.limits)?;
        ids.push(b.id.get());
        if b.is_live(ctx.now) {
            on_bid(i as u32, b);
        } else {
            expired += 1;
        }
    }
    if let Some(dup) = first_duplicate(ids) {
        return Err(MarketError::DuplicateOrderId(OrderId::new(dup)));
    }
    Ok(expired)
}

/// Accumulates matches and statistics with checked arithmetic.
struct ClearingBuilder<'a> {
    asks: &'a [Ask],
    bids: &'a [Bid],
    ask_matched: Vec<bool>,
    bid_matched: Vec<bool>,
    /// Distinct asks and bids with at least one match.
    matched: (u64, u64),
    out: Clearing,
}

impl<'a> ClearingBuilder<'a> {
    pub fn new(asks: &'a [Ask], bids: &'a [Bid], expired: u64) -> Self {
        Self {
            asks,
            bids,
            ask_matched: vec![false; asks.len()],
            bid_matched: vec![false; bids.len()],
            matched: (0, 0),
            out: Clearing {
                matches: Vec::new(),
                stats: ClearingStats {
                    expired,
                    ..ClearingStats::default()
                },
            },
        }
    }

    /// Makes room for `n` more matches (a bound the caller knows).
    pub fn reserve(&mut self, n: usize) {
        self.out.matches.reserve(n);
    }

    /// Records a trade of `slots` between `asks[ai]` and `bids[bi]`.
    pub fn push(
        &mut self,
        ai: usize,
        bi: usize,
        slots: u32,
        buyer_price: Amount,
        seller_price: Amount,
    ) -> Result<(), MarketError> {
        let (a, b) = (&self.asks[ai], &self.bids[bi]);
        // Our own invariants: every mechanism only emits IR, BB trades.
        assert!(slots > 0);
        assert!(a.price <= seller_price && seller_price <= buyer_price);
        assert!(buyer_price <= b.max_price);
        self.matched.0 += u64::from(!core::mem::replace(&mut self.ask_matched[ai], true));
        self.matched.1 += u64::from(!core::mem::replace(&mut self.bid_matched[bi], true));
        let n = u128::from(slots);
        let s = &mut self.out.stats;
        s.volume_slots = s.volume_slots.saturating_add(u64::from(slots));
        // Statistics are metrics, not balances: they saturate, so that no
        // combination of valid orders can make a whole batch fail. Money is
        // computed per match, checked, by `Match::buyer_total`.
        let times = |p: Amount| Amount::new(p.get().saturating_mul(n));
        s.welfare = s
            .welfare
            .saturating_add(times(b.max_price.saturating_sub(a.price)));
        s.buyer_payments = s.buyer_payments.saturating_add(times(buyer_price));
        s.seller_receipts = s.seller_receipts.saturating_add(times(seller_price));
        s.min_price = Some(s.min_price.map_or(buyer_price, |p| p.min(buyer_price)));
        s.max_price = Some(s.max_price.map_or(buyer_price, |p| p.max(buyer_price)));
        self.out.matches.push(Match {
            bid: b.id,
            ask: a.id,
            client: b.client,
            provider: a.provider,
            slots: Slots::new(slots),
            buyer_price,
            seller_price,
            fees: Vec::new(),
        });
        Ok(())
    }

    /// The clearing, given how many asks and bids were live (every matched
    /// order is live, so the rest of them went unmatched).
    pub fn finish(mut self, live_asks: usize, live_bids: usize) -> Result<Clearing, MarketError> {
        let s = &mut self.out.stats;
        s.surplus = s.buyer_payments.saturating_sub(s.seller_receipts);
        assert!(self.matched.0 <= live_asks as u64 && self.matched.1 <= live_bids as u64);
        s.unmatched_asks = live_asks as u64 - self.matched.0;
        s.unmatched_bids = live_bids as u64 - self.matched.1;
        Ok(self.out)
    }
}

/// The fast path against the oracle above on random markets shaped to hit
/// every branch: one or many lane components, features and reputations
/// that filter pairs, expired orders, prices above 64 bits, ties, ids in
/// ascending, shuffled or overlapping order (and duplicated), sides below
/// and above the radix threshold, a small `max_scan`, and a scratch reused
/// from a different batch.
mod differential {
    use idlegrid_primitives::{AccountId, Amount, RngCore, Seed, Timestamp};
    use proptest::prelude::*;

    use super::super::{ClearingScratch, Rule};
    use crate::clearing::{Clearing, ClearingContext, Mechanism};
    use crate::order::{Ask, Bid, Limits};
    use crate::strategies::{feature_set, test_reputation, unit_ask, unit_bid};
    use crate::types::{ExecutorKind, ExecutorSet, OrderId, Region, RegionSet, Reputation, Slots};
    use crate::{KDouble, McAfee, PayAsAsk, PayAsBid};

    /// How a generated market looks.
    #[derive(Clone, Copy, Debug)]
    struct Shape {
        seed: u64,
        asks: usize,
        bids: usize,
        /// 0: unit orders in one lane; 1: a few lanes and features; 2: wild;
        /// 3: two separate lanes (two components).
        mix: u8,
        /// 0: ascending, disjoint; 1: shuffled; 2: sparse random; 3: overlapping
        /// ascending; 4: one duplicate.
        ids: u8,
        /// 0: 1..=50 (ties); 1: 1..=10^6; 2: around 2^64; 3: up to the limit.
        prices: u8,
        expired_pct: u64,
        max_scan: usize,
    }

    fn shape(max_side: usize) -> impl Strategy<Value = Shape> {
        (
            any::<u64>(),
            0..=max_side,
            0..=max_side,
            0u8..4,
            0u8..5,
            0u8..4,
            prop_oneof![2 => Just(0u64), 1 => 1u64..40],
            prop_oneof![3 => Just(1usize << 16), 1 => 1usize..6],
        )
            .prop_map(
                |(seed, asks, bids, mix, ids, prices, expired_pct, max_scan)| Shape {
                    seed,
                    asks,
                    bids,
                    mix,
                    ids,
                    prices,
                    expired_pct,
                    max_scan,
                },
            )
    }

    fn who(n: u64) -> AccountId {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&(n % 97).to_le_bytes());
        AccountId::from_bytes(b)
    }

    fn market(s: &Shape) -> (Vec<Ask>, Vec<Bid>) {
        let mut rng = Seed::from_u64(s.seed).rng();
        let mut r = move |m: u64| rng.next_u64() % m.max(1);
        let price = |r: &mut dyn FnMut(u64) -> u64| -> u128 {
            match s.prices {
                0 => 1 + u128::from(r(50)),
                1 => 1 + u128::from(r(1_000_000)),
                2 => u128::from(u64::MAX) - 20 + u128::from(r(40)),
                _ => {
                    1 + (u128::from(r(u64::MAX)) << 35) % 1_000_000_000_000_000_000_000_000_000_000
                }
            }
        };
        let n = (s.asks + s.bids) as u64;
        let mut ids: Vec<u64> = match s.ids {
            0 | 4 => (0..n).map(|i| 1000 + i).collect(),
            1 => {
                let mut v: Vec<u64> = (0..n).collect();
                for i in (1..v.len()).rev() {
                    v.swap(i, r(i as u64 + 1) as usize);
                }
                v
            }
            2 => (0..n).map(|i| (r(u64::MAX) & !0xffff) | i).collect(),
            // Each side ascending, the two interleaved.
            _ => (0..s.asks as u64)
                .map(|i| 2 * i)
                .chain((0..s.bids as u64).map(|i| 2 * i + 1))
                .collect(),
        };
        if s.ids == 4 && n >= 2 {
            let (i, j) = (r(n) as usize, r(n) as usize);
            ids[i] = ids[j];
        }
        let expired = |r: &mut dyn FnMut(u64) -> u64| r(100) < s.expired_pct;
        let asks = (0..s.asks)
            .map(|i| {
                let id = ids[i];
                let mut a = unit_ask(id, price(&mut r), 1 + r(3) as u32, who(id));
                if s.mix == 3 {
                    a.region = Region::new(r(2) as u8);
                } else if s.mix > 0 {
                    a.region = Region::new(r(if s.mix == 1 { 2 } else { 5 }) as u8);
                    a.executors = ExecutorSet::from_bits(1 + r(7) as u8);
                    a.features = feature_set(r(8) as u8);
                    a.resources.memory_mib *= 1 + r(3) as u32;
                    a.window_start = Timestamp::from_millis(r(3) * 100);
                }
                if expired(&mut r) {
                    a.window_end = Timestamp::from_millis(1 + r(5));
                    a.window_start = Timestamp::ZERO;
                }
                a
            })
            .collect();
        let bids = (0..s.bids)
            .map(|i| {
                let id = ids[s.asks + i];
                let mut b = unit_bid(id, price(&mut r), 1 + r(3) as u32, who(id + 7));
                if s.mix == 3 {
                    b.regions = RegionSet::single(Region::new(r(2) as u8));
                } else if s.mix > 0 {
                    let regions = if s.mix == 1 { 1 + r(3) } else { 1 + r(31) };
                    b.regions = RegionSet::from_bits(regions);
                    b.executor = ExecutorKind::ALL[r(3) as usize];
                    b.requires = feature_set(if r(3) == 0 { r(8) as u8 } else { 0 });
                    b.demand.memory_mib *= 1 + r(2) as u32;
                    b.min_reputation = Reputation::from_bps(r(8000) as u16);
                    b.deadline = Timestamp::from_millis(150 + r(1_000_000));
                }
                if expired(&mut r) {
                    b.deadline = Timestamp::from_millis(1 + r(5));
                }
                b
            })
            .collect();
        (asks, bids)
    }

    fn mechanism(rule: Rule) -> Box<dyn Mechanism> {
        match rule {
            Rule::McAfee => Box::new(McAfee),
            Rule::KDouble(k) => Box::new(KDouble::new(k).unwrap()),
            Rule::PayAsBid => Box::new(PayAsBid),
            Rule::PayAsAsk => Box::new(PayAsAsk),
        }
    }

    fn rule() -> impl Strategy<Value = Rule> {
        prop_oneof![
            Just(Rule::McAfee),
            (0u16..=10_000).prop_map(Rule::KDouble),
            Just(Rule::PayAsBid),
            Just(Rule::PayAsAsk),
        ]
    }

    /// Clears `s` (after `warm`, with the same scratch) three ways and
    /// compares each with the oracle.
    fn agree(rule: Rule, s: &Shape, warm: &Shape) -> Result<(), TestCaseError> {
        let (asks, bids) = market(s);
        let rep = test_reputation;
        let ctx = ClearingContext {
            now: Timestamp::from_millis(6),
            limits: Limits {
                max_scan: s.max_scan,
                ..Limits::default()
            },
            reputation: &rep,
        };
        let want = super::clear_units(rule, &asks, &bids, &ctx);
        let m = mechanism(rule);
        prop_assert_eq!(&m.clear(&asks, &bids, &ctx), &want);
        let (wa, wb) = market(warm);
        let mut scratch = ClearingScratch::new();
        let mut out = Clearing::default();
        let _ = m.clear_into(&wa, &wb, &ctx, &mut scratch, &mut out);
        let got = m.clear_into(&asks, &bids, &ctx, &mut scratch, &mut out);
        match &want {
            Ok(c) => prop_assert_eq!((got, &out), (Ok(()), c)),
            Err(e) => prop_assert_eq!((got, &out), (Err(e.clone()), &Clearing::default())),
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn small_batches_clear_as_before(rule in rule(), s in shape(40), warm in shape(40)) {
            agree(rule, &s, &warm)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Sides above the radix threshold.
        #[test]
        fn large_batches_clear_as_before(rule in rule(), s in shape(1500), warm in shape(1500)) {
            let s = Shape { asks: s.asks.max(600), bids: s.bids.max(600), ..s };
            agree(rule, &s, &warm)?;
        }
    }

    #[test]
    fn a_dirty_scratch_is_a_fresh_one() {
        // A big batch, then a small one with the same scratch and output.
        let big = Shape {
            seed: 1,
            asks: 2000,
            bids: 2000,
            mix: 0,
            ids: 1,
            prices: 1,
            expired_pct: 0,
            max_scan: 1 << 16,
        };
        let small = Shape {
            seed: 2,
            asks: 3,
            bids: 4,
            mix: 1,
            ids: 3,
            prices: 0,
            expired_pct: 10,
            max_scan: 1 << 16,
        };
        agree(Rule::McAfee, &small, &big).unwrap();
        agree(Rule::PayAsBid, &big, &small).unwrap();
        let _ = (OrderId::new(0), Slots::ONE, Amount::ZERO);
    }
}
