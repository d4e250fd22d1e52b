//! Double auctions over unit slots: McAfee trade reduction, the k-double
//! auction, and the pay-as-bid / pay-as-ask baselines.
//!
//! Each order of `n` slots counts as `n` unit traders with the same price.
//! The market is first **partitioned** into independent lanes by
//! (region, executor kind): an ask joins the lanes of its region × its
//! executor kinds, a bid the lanes of its executor kind × its regions, and
//! lanes linked by an order form one component. Each component is cleared
//! on its own: sort bids by price descending and asks ascending (ties by
//! order id), find the breakeven index `k` (the most units with
//! `b_k >= s_k`), price per the rule, then pair winning units greedily
//! (highest bid first, cheapest compatible ask first). Within a component
//! resources and reputation still **filter** pairs: a winning unit with no
//! compatible winning counterpart stays unmatched, which keeps individual
//! rationality and budget balance but costs efficiency — use
//! [`crate::GreedyAssignment`] for strongly heterogeneous demand.
//!
//! Cost: one validating pass over the orders gathers each live order as a
//! 32-byte unit; sides of 512 units or more are sorted by an LSD radix sort
//! on the bytes of (price, id) that vary (the id's bytes are skipped when
//! a side already ascends by id); what pairing needs of the winners is
//! gathered into compact records before pairing. [`Mechanism::clear_into`]
//! with a [`ClearingScratch`] reuses every buffer, and the caller's
//! [`Clearing`], from batch to batch; [`Mechanism::clear`] is the same
//! code with fresh buffers.
//!
//! | mechanism | IR | budget balance | truthful (unit traders, compatible lane) | efficiency |
//! |---|---|---|---|---|
//! | [`McAfee`] | yes | weak (surplus on reduction) | yes, both sides | ≥ (1 − 1/k) of optimal |
//! | [`KDouble`] | yes | strong | no | optimal |
//! | [`PayAsBid`] | yes | strong | no | optimal (at reported values) |
//! | [`PayAsAsk`] | yes | strong | no | optimal (at reported values) |

mod lanes;
mod pair;
#[cfg(test)]
mod reference;
mod scratch;
mod sort;

pub(crate) use pair::NextAlive;
pub use scratch::ClearingScratch;

use idlegrid_primitives::Amount;

use crate::clearing::{
    Clearing, ClearingBuilder, ClearingContext, ClearingStats, Mechanism, prepare_with,
};
use crate::error::MarketError;
use crate::order::{Ask, Bid};
use crate::types::OrderId;

/// McAfee's trade-reduction double auction (McAfee 1992).
///
/// With `k` efficient trades and the first excluded bid `b_{k+1}` and ask
/// `s_{k+1}`, let `p₀ = (b_{k+1} + s_{k+1}) / 2`, exactly. If
/// `s_k <= p₀ <= b_k` all `k` units trade at `⌊p₀⌋` (the test is on the
/// exact half, the rounding comes after, so `⌊p₀⌋` is still within
/// `[s_k, b_k]`). Otherwise the least valuable trade is dropped:
/// `k − 1` units trade, buyers pay `b_k`, sellers receive `s_k`, and the
/// difference is the market's surplus ([`crate::ClearingStats::surplus`]),
/// which the composition root burns or redistributes. If either side has no
/// `(k+1)`-th unit the reduction applies.
///
/// Properties (unit traders in a fully compatible lane): dominant-strategy
/// truthful for buyers and sellers, individually rational, weakly budget
/// balanced, gains from trade ≥ (1 − 1/k) of the optimum. An order of
/// several slots is not a unit trader: it can gain by shading its price or
/// reporting fewer slots (demand reduction); IR, budget balance and the
/// efficiency bound still hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct McAfee;

/// The k-double auction with one uniform price (Chatterjee–Samuelson,
/// Satterthwaite–Williams).
///
/// All `k` efficient units trade at
/// `p = lo + ⌊(hi − lo) · k_bps / 10 000⌋`, where
/// `lo = max(s_k, b_{k+1})` and `hi = min(b_k, s_{k+1})` bound the
/// market-clearing prices. `k_bps = 0` favours buyers, `10 000` sellers.
/// Individually rational, strongly budget balanced, efficient at reported
/// values; not truthful (traders on the margin shade).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KDouble {
    k_bps: u16,
}

impl KDouble {
    /// A k-double auction with `k = k_bps / 10 000`.
    pub fn new(k_bps: u16) -> Result<Self, MarketError> {
        if k_bps > 10_000 {
            return Err(MarketError::InvalidParameter("k_bps must be at most 10000"));
        }
        Ok(Self { k_bps })
    }
    /// The midpoint rule, `k = 1/2`.
    pub const fn half() -> Self {
        Self { k_bps: 5_000 }
    }
    /// `k` in basis points.
    pub const fn k_bps(&self) -> u16 {
        self.k_bps
    }
}

/// Baseline: the efficient units trade and each pair trades at the buyer's
/// bid (discriminatory). IR, strongly budget balanced, not truthful.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PayAsBid;

/// Baseline (iExec-style): the efficient units trade and each pair trades
/// at the seller's ask. IR, strongly budget balanced, not truthful.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PayAsAsk;

#[derive(Clone, Copy, Debug)]
enum Rule {
    McAfee,
    KDouble(u16),
    PayAsBid,
    PayAsAsk,
}

macro_rules! unit_mechanism {
    ($ty:ty, $name:literal, $strong:expr, |$s:ident| $rule:expr) => {
        impl Mechanism for $ty {
            fn name(&self) -> &'static str {
                $name
            }
            fn strongly_budget_balanced(&self) -> bool {
                $strong
            }
            fn clear(
                &self,
                asks: &[Ask],
                bids: &[Bid],
                ctx: &ClearingContext<'_>,
            ) -> Result<Clearing, MarketError> {
                let mut out = Clearing::default();
                let mut scratch = ClearingScratch::default();
                self.clear_into(asks, bids, ctx, &mut scratch, &mut out)?;
                Ok(out)
            }
            fn clear_into(
                &self,
                asks: &[Ask],
                bids: &[Bid],
                ctx: &ClearingContext<'_>,
                scratch: &mut ClearingScratch,
                out: &mut Clearing,
            ) -> Result<(), MarketError> {
                let $s = self;
                let r = clear_units($rule, asks, bids, ctx, scratch, out);
                if r.is_err() {
                    out.matches.clear();
                    out.stats = ClearingStats::default();
                }
                r
            }
        }
    };
}

unit_mechanism!(McAfee, "mcafee", false, |_s| Rule::McAfee);
unit_mechanism!(KDouble, "k_double", true, |s| Rule::KDouble(s.k_bps));
unit_mechanism!(PayAsBid, "pay_as_bid", true, |_s| Rule::PayAsBid);
unit_mechanism!(PayAsAsk, "pay_as_ask", true, |_s| Rule::PayAsAsk);

/// One order on a sorted side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

fn clear_units(
    rule: Rule,
    asks: &[Ask],
    bids: &[Bid],
    ctx: &ClearingContext<'_>,
    scratch: &mut ClearingScratch,
    out: &mut Clearing,
) -> Result<(), MarketError> {
    let ClearingScratch {
        asks: sa,
        bids: sb,
        pair,
        flags,
        components,
    } = scratch;
    sa.reset();
    sb.reset();
    let expired = prepare_with(
        asks,
        bids,
        ctx,
        |i, a| sa.push_ask(i, a),
        |i, b| sb.push_bid(i, b),
    )?;
    let live = (sa.units.len(), sb.units.len());
    let mut out = ClearingBuilder::new(asks, bids, expired, out, flags);
    lanes::partition(sa, sb, components);
    for (ra, rb) in components.iter().cloned() {
        let su = sa.sorted(ra, false);
        let bu = sb.sorted(rb, true);
        let be = breakeven(bu, su);
        if be.k == 0 {
            continue;
        }
        let (units, pricing) = price_rule(rule, &be)?;
        let winners = Winners {
            bids: bu,
            asks: su,
            units,
            pricing: &pricing,
        };
        pair::pair_winners(asks, bids, ctx, &winners, pair, &mut out)?;
    }
    out.finish(live.0, live.1)
}

/// The winners of one component and how they are priced.
struct Winners<'a> {
    /// Bids, best first.
    bids: &'a [Unit],
    /// Asks, cheapest first.
    asks: &'a [Unit],
    /// Units that trade.
    units: u64,
    pricing: &'a Pricing,
}

impl Unit {
    /// A placeholder for buffers being resized.
    const ZERO: Unit = Unit {
        price: Amount::ZERO,
        id: OrderId::new(0),
        idx: 0,
        slots: 0,
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn u(price: u128, id: u64, slots: u32) -> Unit {
        Unit {
            price: Amount::new(price),
            id: OrderId::new(id),
            idx: id as u32,
            slots,
        }
    }

    #[test]
    fn breakeven_on_runs() {
        let bids = [u(10, 0, 2), u(8, 1, 1), u(3, 2, 5)];
        let asks = [u(1, 3, 1), u(5, 4, 3), u(9, 5, 1)];
        let be = breakeven(&bids, &asks);
        assert_eq!(be.k, 3);
        assert_eq!((be.b_k, be.s_k), (Amount::new(8), Amount::new(5)));
        assert_eq!(be.b_next, Some(Amount::new(3)));
        assert_eq!(be.s_next, Some(Amount::new(5)));
        assert_eq!(breakeven(&[], &asks).k, 0);
    }

    #[test]
    fn mcafee_price_or_reduction() {
        // b = 10, 8 | 3 ; s = 1, 5 | 5: p = 4 not in [5, 8] -> reduce.
        let be = breakeven(
            &[u(10, 0, 1), u(8, 1, 1), u(3, 2, 1)],
            &[u(1, 3, 1), u(5, 4, 1), u(5, 5, 1)],
        );
        let (k, p) = price_rule(Rule::McAfee, &be).unwrap();
        assert_eq!(k, 1);
        assert!(
            matches!(p, Pricing::Uniform { buyer, seller } if buyer == Amount::new(8) && seller == Amount::new(5))
        );
        // b = 10, 8 | 7 ; s = 1, 5 | 9: p = 8 in [5, 8] -> all trade at 8.
        let be = breakeven(
            &[u(10, 0, 1), u(8, 1, 1), u(7, 2, 1)],
            &[u(1, 3, 1), u(5, 4, 1), u(9, 5, 1)],
        );
        let (k, p) = price_rule(Rule::McAfee, &be).unwrap();
        assert_eq!(k, 2);
        assert!(matches!(p, Pricing::Uniform { buyer, .. } if buyer == Amount::new(8)));
    }

    #[test]
    fn mcafee_compares_the_exact_half() {
        // Asks 1, 10; bids 7, 5: k = 1, p₀ = (5 + 10) / 2 = 7.5 > b_k = 7,
        // so McAfee (1992) reduces to no trade; the rounded 7 would trade.
        let be = breakeven(&[u(7, 0, 1), u(5, 1, 1)], &[u(1, 2, 1), u(10, 3, 1)]);
        let (k, _) = price_rule(Rule::McAfee, &be).unwrap();
        assert_eq!(k, 0);
        // One less on the ask side: p₀ = 7 exactly, one unit trades at 7.
        let be = breakeven(&[u(7, 0, 1), u(5, 1, 1)], &[u(1, 2, 1), u(9, 3, 1)]);
        let (k, p) = price_rule(Rule::McAfee, &be).unwrap();
        assert_eq!(k, 1);
        assert!(matches!(p, Pricing::Uniform { buyer, .. } if buyer == Amount::new(7)));
        // The lower edge: p₀ = s_k exactly is in range; no overflow at MAX.
        let (a, m) = (Amount::new(3), Amount::MAX);
        assert!(mcafee_price_in_range(Amount::new(2), Amount::new(4), a, a));
        assert!(!mcafee_price_in_range(Amount::new(2), Amount::new(3), a, m));
        assert!(mcafee_price_in_range(m, m, m, m));
        assert!(!mcafee_price_in_range(m, m, a, Amount::new(u128::MAX - 1)));
    }

    #[test]
    fn midpoint_never_overflows() {
        assert_eq!(midpoint(Amount::MAX, Amount::MAX), Amount::MAX);
        assert_eq!(midpoint(Amount::new(3), Amount::new(4)), Amount::new(3));
    }

    #[test]
    fn next_alive_skips() {
        let mut n = NextAlive::new(5);
        n.remove(1);
        n.remove(2);
        assert_eq!(n.find(0), 0);
        assert_eq!(n.find(1), 3);
        n.remove(3);
        n.remove(4);
        assert_eq!(n.find(0), 0);
        assert_eq!(n.find(1), 5);
        assert_eq!(n.find(7), 5);
    }
}
