//! Heterogeneous demand: assignment of bids to compatible asks.
//!
//! Only compatible pairs trade ([`crate::compatible`]: resources fit,
//! executor kind, region, reputation, timing). A pair `(ask, bid)` creates
//! `bid.max_price − ask.price` of welfare per slot; bids may be split
//! across several asks (partial fills).
//!
//! Two mechanisms share one payment rule — each pair trades at
//! `ask.price + ⌊(bid.max_price − ask.price) · split_bps / 10 000⌋` — which
//! makes every trade individually rational and the batch strongly budget
//! balanced:
//!
//! - [`OptimalAssignment`]: the welfare-maximizing transportation plan,
//!   solved exactly by successive shortest paths (min-cost flow). Its cost
//!   grows quickly with the number of compatible pairs, so it refuses
//!   batches above `max_pairs`.
//! - [`GreedyAssignment`]: bids by price descending, each filled from the
//!   cheapest compatible asks. Runs in `O(n log n + n · scan)`; property
//!   tests check it reaches at least half of the optimum.
//!
//! Truthfulness: neither is dominant-strategy truthful (payments are not
//! threshold prices). What they keep: a bid's allocation is monotone in its
//! price (raising it never loses slots) and an ask's in its price
//! (lowering it never loses slots) under the greedy rule, and misreporting
//! requirements can only lose compatible partners. For truthfulness on a
//! standardized product use [`crate::McAfee`] within one lane.

use idlegrid_primitives::Amount;

use crate::clearing::{
    Clearing, ClearingBuilder, ClearingContext, MatchedFlags, Mechanism, Prepared, ask_reputations,
    prepare,
};
use crate::error::MarketError;
use crate::order::{Ask, Bid, compatible};
use crate::types::Reputation;
use crate::unit::NextAlive;

/// Greedy assignment: highest bid first, cheapest compatible ask first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GreedyAssignment {
    split_bps: u16,
}

/// Exact welfare-maximizing assignment (min-cost flow), for batches with at
/// most `max_pairs` compatible (ask, bid) pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptimalAssignment {
    split_bps: u16,
    max_pairs: usize,
}

fn check_split(split_bps: u16) -> Result<u16, MarketError> {
    if split_bps > 10_000 {
        return Err(MarketError::InvalidParameter(
            "split_bps must be at most 10000",
        ));
    }
    Ok(split_bps)
}

fn pair_price(ask: &Ask, bid: &Bid, split_bps: u16) -> Result<Amount, MarketError> {
    let gap = bid.max_price.checked_sub(ask.price)?;
    Ok(ask
        .price
        .checked_add(gap.mul_ratio(u128::from(split_bps), 10_000)?)?)
}

impl GreedyAssignment {
    /// Greedy assignment; `split_bps` shares each pair's gains (0 = buyer keeps all).
    pub fn new(split_bps: u16) -> Result<Self, MarketError> {
        Ok(Self {
            split_bps: check_split(split_bps)?,
        })
    }
    /// Midpoint pricing.
    pub const fn midpoint() -> Self {
        Self { split_bps: 5_000 }
    }
}

impl OptimalAssignment {
    /// Exact assignment; `split_bps` shares each pair's gains; batches with
    /// more than `max_pairs` compatible pairs are refused.
    pub fn new(split_bps: u16, max_pairs: usize) -> Result<Self, MarketError> {
        Ok(Self {
            split_bps: check_split(split_bps)?,
            max_pairs,
        })
    }
    /// Midpoint pricing, at most 4096 compatible pairs.
    pub const fn midpoint() -> Self {
        Self {
            split_bps: 5_000,
            max_pairs: 4096,
        }
    }
}

/// Live asks sorted by price ascending, live bids by price descending
/// (ties by id).
fn sorted(asks: &[Ask], bids: &[Bid], live: &Prepared) -> (Vec<u32>, Vec<u32>) {
    let mut sa = live.asks.clone();
    sa.sort_unstable_by(|&x, &y| {
        let (x, y) = (&asks[x as usize], &asks[y as usize]);
        x.price.cmp(&y.price).then(x.id.cmp(&y.id))
    });
    let mut sb = live.bids.clone();
    sb.sort_unstable_by(|&x, &y| {
        let (x, y) = (&bids[x as usize], &bids[y as usize]);
        y.max_price.cmp(&x.max_price).then(x.id.cmp(&y.id))
    });
    (sa, sb)
}

impl Mechanism for GreedyAssignment {
    fn name(&self) -> &'static str {
        "greedy_assignment"
    }
    fn strongly_budget_balanced(&self) -> bool {
        true
    }
    fn clear(
        &self,
        asks: &[Ask],
        bids: &[Bid],
        ctx: &ClearingContext<'_>,
    ) -> Result<Clearing, MarketError> {
        let live = prepare(asks, bids, ctx)?;
        let reps = ask_reputations(asks, &live.asks, ctx.reputation);
        let (sa, sb) = sorted(asks, bids, &live);
        let mut cap: Vec<u32> = sa.iter().map(|&i| asks[i as usize].slots.get()).collect();
        let mut alive = NextAlive::new(sa.len());
        let (mut c, mut flags) = (Clearing::default(), MatchedFlags::default());
        let mut out = ClearingBuilder::new(asks, bids, live.expired, &mut c, &mut flags);
        for &bi in &sb {
            let bid = &bids[bi as usize];
            let mut need = bid.slots.get();
            let mut j = alive.find(0);
            let mut scanned = 0usize;
            while need > 0 && j < sa.len() && scanned < ctx.limits.max_scan {
                let ai = sa[j] as usize;
                let ask = &asks[ai];
                if ask.price > bid.max_price {
                    break;
                }
                scanned += 1;
                if compatible(ask, bid, reps[ai]) {
                    let t = need.min(cap[j]);
                    let p = pair_price(ask, bid, self.split_bps)?;
                    out.push(ai, bi as usize, t, p, p)?;
                    need -= t;
                    cap[j] -= t;
                    if cap[j] == 0 {
                        alive.remove(j);
                    }
                }
                j = alive.find(j + 1);
            }
        }
        out.finish(live.asks.len(), live.bids.len())?;
        Ok(c)
    }
}

impl Mechanism for OptimalAssignment {
    fn name(&self) -> &'static str {
        "optimal_assignment"
    }
    fn strongly_budget_balanced(&self) -> bool {
        true
    }
    fn clear(
        &self,
        asks: &[Ask],
        bids: &[Bid],
        ctx: &ClearingContext<'_>,
    ) -> Result<Clearing, MarketError> {
        let live = prepare(asks, bids, ctx)?;
        let reps = ask_reputations(asks, &live.asks, ctx.reputation);
        let (sa, sb) = sorted(asks, bids, &live);
        let flows = max_welfare_flow(asks, bids, &reps, &sa, &sb, self.max_pairs)?;
        let (mut c, mut flags) = (Clearing::default(), MatchedFlags::default());
        let mut out = ClearingBuilder::new(asks, bids, live.expired, &mut c, &mut flags);
        for (ai, bi, slots) in flows {
            let p = pair_price(&asks[ai], &bids[bi], self.split_bps)?;
            out.push(ai, bi, slots, p, p)?;
        }
        out.finish(live.asks.len(), live.bids.len())?;
        Ok(c)
    }
}

/// A residual graph for min-cost flow; edge `e ^ 1` is the reverse of `e`.
struct FlowGraph {
    adj: Vec<Vec<usize>>,
    to: Vec<usize>,
    cap: Vec<u64>,
    cost: Vec<i128>,
}

impl FlowGraph {
    fn new(nodes: usize) -> Self {
        Self {
            adj: vec![Vec::new(); nodes],
            to: Vec::new(),
            cap: Vec::new(),
            cost: Vec::new(),
        }
    }

    /// Adds `from -> to` and its zero-capacity reverse; returns the forward edge.
    fn add(&mut self, from: usize, to: usize, cap: u64, cost: i128) -> usize {
        let e = self.to.len();
        for (a, b, c, k) in [(from, to, cap, cost), (to, from, 0, -cost)] {
            self.adj[a].push(self.to.len());
            self.to.push(b);
            self.cap.push(c);
            self.cost.push(k);
        }
        e
    }

    /// Bellman–Ford from `src` over edges with capacity (negative costs are
    /// fine: the residual graph never has a negative cycle). Returns the
    /// distance to `sink` and the edge reaching each node.
    fn shortest_path(&self, src: usize, sink: usize) -> (Option<i128>, Vec<usize>) {
        let n = self.adj.len();
        let mut dist: Vec<Option<i128>> = vec![None; n];
        let mut via = vec![usize::MAX; n];
        dist[src] = Some(0);
        for _ in 0..n {
            let mut changed = false;
            for u in 0..n {
                let Some(du) = dist[u] else { continue };
                for &e in &self.adj[u] {
                    if self.cap[e] == 0 {
                        continue;
                    }
                    let nd = du + self.cost[e];
                    let v = self.to[e];
                    if dist[v].is_none_or(|d| nd < d) {
                        dist[v] = Some(nd);
                        via[v] = e;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        (dist[sink], via)
    }

    /// Pushes the bottleneck flow along the path recorded in `via`.
    fn augment(&mut self, src: usize, sink: usize, via: &[usize]) {
        let mut push = u64::MAX;
        let mut v = sink;
        while v != src {
            let e = via[v];
            push = push.min(self.cap[e]);
            v = self.to[e ^ 1];
        }
        let mut v = sink;
        while v != src {
            let e = via[v];
            self.cap[e] -= push;
            self.cap[e ^ 1] += push;
            v = self.to[e ^ 1];
        }
    }

    /// Flow on forward edge `e` (the capacity of its reverse).
    fn flow(&self, e: usize) -> u64 {
        self.cap[e ^ 1]
    }
}

/// Min-cost flow by successive shortest paths, stopping when no path has
/// negative cost, i.e. no augmentation raises welfare. Returns
/// `(ask index, bid index, slots)` in (bid order, ask order).
fn max_welfare_flow(
    asks: &[Ask],
    bids: &[Bid],
    reps: &[Reputation],
    sa: &[u32],
    sb: &[u32],
    max_pairs: usize,
) -> Result<Vec<(usize, usize, u32)>, MarketError> {
    let (na, nb) = (sa.len(), sb.len());
    let (src, sink) = (na + nb, na + nb + 1);
    let mut g = FlowGraph::new(na + nb + 2);
    for (x, &ai) in sa.iter().enumerate() {
        g.add(src, x, u64::from(asks[ai as usize].slots.get()), 0);
    }
    for (y, &bi) in sb.iter().enumerate() {
        g.add(na + y, sink, u64::from(bids[bi as usize].slots.get()), 0);
    }
    let mut pairs = Vec::new();
    for (y, &bi) in sb.iter().enumerate() {
        let bid = &bids[bi as usize];
        for (x, &ai) in sa.iter().enumerate() {
            let ask = &asks[ai as usize];
            if ask.price > bid.max_price {
                break;
            }
            if compatible(ask, bid, reps[ai as usize]) {
                if pairs.len() >= max_pairs {
                    return Err(MarketError::Full {
                        what: "compatible pairs for exact assignment",
                        max: max_pairs,
                    });
                }
                // Prices are bounded by Limits::max_price (validated), far below i128::MAX.
                let gain = bid.max_price.get() as i128 - ask.price.get() as i128;
                let e = g.add(x, na + y, u64::from(bid.slots.get()), -gain);
                pairs.push((x, y, e));
            }
        }
    }
    loop {
        let (d, via) = g.shortest_path(src, sink);
        match d {
            Some(d) if d < 0 => g.augment(src, sink, &via),
            _ => break,
        }
    }
    Ok(pairs
        .into_iter()
        .filter_map(|(x, y, e)| {
            let f = g.flow(e);
            // f <= bid slots, a u32.
            (f > 0).then(|| (sa[x] as usize, sb[y] as usize, f as u32))
        })
        .collect())
}
