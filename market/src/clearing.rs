//! The clearing contract: the [`Mechanism`] trait, its [`ClearingContext`]
//! input and its [`Clearing`] output of [`Match`]es plus statistics.

use idlegrid_primitives::{AccountId, Amount, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::MarketError;
use crate::order::{Ask, Bid, Limits};
use crate::registry::OwnerFee;
use crate::types::{OrderId, Reputation, ReputationLookup, Slots};
use crate::unit::ClearingScratch;

/// One trade: `slots` slots of `ask` sold to `bid`.
///
/// Prices are per slot-second. The buyer pays `buyer_price`, the provider
/// receives `seller_price`; they differ only under McAfee's trade reduction,
/// where the difference is the market's surplus. Owners of the apps and
/// datasets the job uses are paid their `fees` per slot on top, fixed at
/// match time. The composition root turns a match into an escrow of
/// [`Match::escrow_total`] (which is `buyer_total(seconds)` without goods).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Match {
    /// The bid.
    pub bid: OrderId,
    /// The ask.
    pub ask: OrderId,
    /// Who pays.
    pub client: AccountId,
    /// Who serves and is paid.
    pub provider: AccountId,
    /// Slots traded.
    pub slots: Slots,
    /// Price per slot-second the buyer pays.
    pub buyer_price: Amount,
    /// Price per slot-second the seller receives.
    pub seller_price: Amount,
    /// App and dataset owners' prices per use (per slot), fixed at match
    /// time; empty for plain compute jobs.
    pub fees: Vec<OwnerFee>,
}

impl Match {
    /// What the buyer pays for `seconds` of all matched slots.
    pub fn buyer_total(&self, seconds: u64) -> Result<Amount, MarketError> {
        Ok(self
            .buyer_price
            .checked_mul(u128::from(self.slots.get()))?
            .checked_mul(u128::from(seconds))?)
    }
    /// What the seller receives for `seconds` of all matched slots.
    pub fn seller_total(&self, seconds: u64) -> Result<Amount, MarketError> {
        Ok(self
            .seller_price
            .checked_mul(u128::from(self.slots.get()))?
            .checked_mul(u128::from(seconds))?)
    }
}

/// Per-batch statistics (all money per second of running the matched slots).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearingStats {
    /// Slots traded.
    pub volume_slots: u64,
    /// Gains from trade at reported prices: `Σ slots·(bid.max_price − ask.price)`.
    ///
    /// All money statistics saturate at `Amount::MAX` (they are metrics).
    pub welfare: Amount,
    /// `Σ slots·buyer_price`.
    pub buyer_payments: Amount,
    /// `Σ slots·seller_price`.
    pub seller_receipts: Amount,
    /// `buyer_payments − seller_receipts` (zero for strongly budget-balanced mechanisms).
    pub surplus: Amount,
    /// Lowest buyer price of any match.
    pub min_price: Option<Amount>,
    /// Highest buyer price of any match.
    pub max_price: Option<Amount>,
    /// Live bids with no match.
    pub unmatched_bids: u64,
    /// Live asks with no match.
    pub unmatched_asks: u64,
    /// Orders excluded because they had expired.
    pub expired: u64,
}

/// The result of clearing a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clearing {
    /// The trades, in a deterministic order.
    pub matches: Vec<Match>,
    /// Aggregates over the trades.
    pub stats: ClearingStats,
}

/// What a mechanism needs besides the orders.
pub struct ClearingContext<'a> {
    /// The clearing instant; expired orders are excluded.
    pub now: Timestamp,
    /// Size and sanity limits.
    pub limits: Limits,
    /// Provider reputation.
    pub reputation: &'a dyn ReputationLookup,
}

impl core::fmt::Debug for ClearingContext<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClearingContext")
            .field("now", &self.now)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// A batch clearing rule. Implementations are pure: the same orders (in any
/// order — they are sorted canonically by price, then id) and context give
/// the same [`Clearing`], byte for byte.
///
/// Every implementation validates its input first: malformed orders or
/// duplicate ids make the whole call fail with nothing matched.
///
/// `Send + Sync`: being pure, a rule can be shared by nodes handled on
/// several threads (the simulator's validators share one).
pub trait Mechanism: Send + Sync {
    /// A short stable name (for metrics and benchmark ids).
    fn name(&self) -> &'static str;
    /// True if buyers' payments always equal sellers' receipts.
    fn strongly_budget_balanced(&self) -> bool;
    /// Clears one batch.
    fn clear(
        &self,
        asks: &[Ask],
        bids: &[Bid],
        ctx: &ClearingContext<'_>,
    ) -> Result<Clearing, MarketError>;
    /// [`Mechanism::clear`] into `out`, reusing its match buffer and the
    /// buffers of `scratch` from call to call: the same result, byte for
    /// byte, without allocating once the buffers have grown to the batch
    /// size. On error `out` is left empty (no matches, default statistics).
    ///
    /// The built-in unit mechanisms ([`crate::McAfee`], [`crate::KDouble`],
    /// [`crate::PayAsBid`], [`crate::PayAsAsk`]) implement it; the default
    /// calls [`Mechanism::clear`], so a custom mechanism need not.
    fn clear_into(
        &self,
        asks: &[Ask],
        bids: &[Bid],
        ctx: &ClearingContext<'_>,
        scratch: &mut ClearingScratch,
        out: &mut Clearing,
    ) -> Result<(), MarketError> {
        let _ = scratch;
        out.matches.clear();
        out.stats = ClearingStats::default();
        *out = self.clear(asks, bids, ctx)?;
        Ok(())
    }
}

/// A batch's validated, live input, as indices into the caller's slices.
/// Produced by [`prepare`], which every built-in [`Mechanism`] calls first;
/// a custom mechanism should too, so that it rejects exactly what they do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// Indices of the live asks, in input order.
    pub asks: Vec<u32>,
    /// Indices of the live bids, in input order.
    pub bids: Vec<u32>,
    /// Orders dropped because their window or deadline has passed.
    pub expired: u64,
}

/// Checks a batch's size against `ctx.limits`, every order's shape, and
/// order-id uniqueness across both sides; returns the live orders and the
/// number of expired ones. Errors are the same typed [`MarketError`]s the
/// built-in mechanisms return.
pub fn prepare(
    asks: &[Ask],
    bids: &[Bid],
    ctx: &ClearingContext<'_>,
) -> Result<Prepared, MarketError> {
    let mut p = Prepared {
        asks: Vec::with_capacity(asks.len()),
        bids: Vec::with_capacity(bids.len()),
        expired: 0,
    };
    p.expired = prepare_with(
        asks,
        bids,
        ctx,
        |i, _| p.asks.push(i),
        |i, _| p.bids.push(i),
    )?;
    Ok(p)
}

/// [`prepare`] with a visitor instead of index lists: `on_ask(i, &asks[i])`
/// for every live ask and `on_bid` for every live bid, in input order, in
/// the same single pass that validates them; returns the number expired.
/// On error the visitors may have seen some orders: discard what they built.
pub(crate) fn prepare_with(
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
    let (mut ask_ids, mut bid_ids) = (IdRun::default(), IdRun::default());
    let mut expired = 0u64;
    // Indices fit in u32: total <= u32::MAX was checked above.
    for (i, a) in asks.iter().enumerate() {
        a.validate_shape(&ctx.limits)?;
        ask_ids.push(a.id.get());
        if a.is_live(ctx.now) {
            on_ask(i as u32, a);
        } else {
            expired += 1;
        }
    }
    for (i, b) in bids.iter().enumerate() {
        b.validate_shape(&ctx.limits)?;
        bid_ids.push(b.id.get());
        if b.is_live(ctx.now) {
            on_bid(i as u32, b);
        } else {
            expired += 1;
        }
    }
    if !ask_ids.distinct_from(&bid_ids) {
        let ids = asks.iter().map(|a| a.id.get());
        let ids = ids.chain(bids.iter().map(|b| b.id.get())).collect();
        if let Some(dup) = first_duplicate(ids) {
            return Err(MarketError::DuplicateOrderId(OrderId::new(dup)));
        }
    }
    Ok(expired)
}

/// The ids of one side in input order: their bounds and whether they
/// strictly ascend (the usual case: ids from ledger positions).
#[derive(Debug, Clone, Copy)]
struct IdRun {
    lo: u64,
    hi: u64,
    ascending: bool,
    empty: bool,
}

impl Default for IdRun {
    fn default() -> Self {
        Self {
            lo: u64::MAX,
            hi: 0,
            ascending: true,
            empty: true,
        }
    }
}

impl IdRun {
    fn push(&mut self, id: u64) {
        self.ascending &= self.empty || id > self.hi;
        self.lo = self.lo.min(id);
        self.hi = self.hi.max(id);
        self.empty = false;
    }
    /// True if no id can occur twice in the two sides together: each side
    /// strictly ascends, and their ranges do not overlap. `false` means
    /// "unknown" (the ids must then be scanned).
    fn distinct_from(&self, other: &IdRun) -> bool {
        self.ascending
            && other.ascending
            && (self.empty || other.empty || self.hi < other.lo || other.hi < self.lo)
    }
}

/// The smallest id occurring twice, if any. Dense ids (a range at most 64
/// times their number, the usual case of sequential ids) are checked with
/// a bitmap in one pass; others by an LSD radix sort on bytes, skipping
/// bytes that are equal in every id, then a scan for neighbours.
pub(crate) fn first_duplicate(ids: Vec<u64>) -> Option<u64> {
    let (Some(&lo), Some(&hi)) = (ids.iter().min(), ids.iter().max()) else {
        return None;
    };
    let span = hi - lo;
    if span / 64 <= ids.len() as u64 {
        return first_duplicate_dense(&ids, lo, span);
    }
    first_duplicate_sorted(ids)
}

/// [`first_duplicate`] for ids in `lo..=lo + span`, `span / 64 <= ids.len()`.
fn first_duplicate_dense(ids: &[u64], lo: u64, span: u64) -> Option<u64> {
    // span / 64 + 1 words: at most ids.len() + 1, already allocated once.
    let mut seen = vec![0u64; (span / 64 + 1) as usize];
    let mut smallest: Option<u64> = None;
    for &x in ids {
        let off = x - lo;
        let (word, bit) = ((off / 64) as usize, 1u64 << (off % 64));
        if seen[word] & bit != 0 {
            smallest = Some(smallest.map_or(x, |s| s.min(x)));
        }
        seen[word] |= bit;
    }
    smallest
}

/// [`first_duplicate`] by sorting.
fn first_duplicate_sorted(mut ids: Vec<u64>) -> Option<u64> {
    let mut tmp = vec![0u64; ids.len()];
    let (or, and) = ids
        .iter()
        .fold((0u64, u64::MAX), |(o, a), &x| (o | x, a & x));
    for byte in 0..8 {
        let shift = byte * 8;
        if ((or ^ and) >> shift) & 0xff == 0 {
            continue; // every id has the same byte here
        }
        let mut count = [0usize; 257];
        for &x in &ids {
            count[((x >> shift) & 0xff) as usize + 1] += 1;
        }
        for i in 0..256 {
            count[i + 1] += count[i];
        }
        for &x in &ids {
            let d = ((x >> shift) & 0xff) as usize;
            tmp[count[d]] = x;
            count[d] += 1;
        }
        core::mem::swap(&mut ids, &mut tmp);
    }
    debug_assert!(ids.windows(2).all(|w| w[0] <= w[1]));
    ids.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}

/// What a [`ClearingBuilder`] records of one side of a trade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Party {
    /// Index of the order in the caller's slice.
    pub idx: u32,
    pub id: OrderId,
    /// The provider (of an ask) or the client (of a bid).
    pub account: AccountId,
    /// The ask's price or the bid's limit price.
    pub price: Amount,
}

impl Party {
    pub fn ask(idx: u32, a: &Ask) -> Self {
        Self {
            idx,
            id: a.id,
            account: a.provider,
            price: a.price,
        }
    }
    pub fn bid(idx: u32, b: &Bid) -> Self {
        Self {
            idx,
            id: b.id,
            account: b.client,
            price: b.max_price,
        }
    }
}

/// Per-order "has a match" flags of a [`ClearingBuilder`], kept between
/// calls by [`crate::ClearingScratch`].
#[derive(Default)]
pub(crate) struct MatchedFlags {
    asks: Vec<bool>,
    bids: Vec<bool>,
}

/// Accumulates matches and statistics with checked arithmetic, into a
/// caller's [`Clearing`] (whose match buffer is reused).
pub(crate) struct ClearingBuilder<'a> {
    asks: &'a [Ask],
    bids: &'a [Bid],
    flags: &'a mut MatchedFlags,
    /// Distinct asks and bids with at least one match.
    matched: (u64, u64),
    out: &'a mut Clearing,
}

impl<'a> ClearingBuilder<'a> {
    /// Empties `out` (keeping its allocation) and starts a clearing.
    pub fn new(
        asks: &'a [Ask],
        bids: &'a [Bid],
        expired: u64,
        out: &'a mut Clearing,
        flags: &'a mut MatchedFlags,
    ) -> Self {
        out.matches.clear();
        out.stats = ClearingStats {
            expired,
            ..ClearingStats::default()
        };
        flags.asks.clear();
        flags.asks.resize(asks.len(), false);
        flags.bids.clear();
        flags.bids.resize(bids.len(), false);
        Self {
            asks,
            bids,
            flags,
            matched: (0, 0),
            out,
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
        // Indices of the caller's slices fit in u32 (`prepare` checks it).
        let ask = Party::ask(ai as u32, &self.asks[ai]);
        let bid = Party::bid(bi as u32, &self.bids[bi]);
        self.push_parties(&ask, &bid, slots, buyer_price, seller_price)
    }

    /// [`ClearingBuilder::push`] with what it reads of the two orders
    /// gathered by the caller.
    pub fn push_parties(
        &mut self,
        ask: &Party,
        bid: &Party,
        slots: u32,
        buyer_price: Amount,
        seller_price: Amount,
    ) -> Result<(), MarketError> {
        debug_assert!(*ask == Party::ask(ask.idx, &self.asks[ask.idx as usize]));
        debug_assert!(*bid == Party::bid(bid.idx, &self.bids[bid.idx as usize]));
        // Our own invariants: every mechanism only emits IR, BB trades.
        assert!(slots > 0);
        assert!(ask.price <= seller_price && seller_price <= buyer_price);
        assert!(buyer_price <= bid.price);
        let flag =
            |v: &mut Vec<bool>, i: u32| u64::from(!core::mem::replace(&mut v[i as usize], true));
        self.matched.0 += flag(&mut self.flags.asks, ask.idx);
        self.matched.1 += flag(&mut self.flags.bids, bid.idx);
        let n = u128::from(slots);
        let s = &mut self.out.stats;
        s.volume_slots = s.volume_slots.saturating_add(u64::from(slots));
        // Statistics are metrics, not balances: they saturate, so that no
        // combination of valid orders can make a whole batch fail. Money is
        // computed per match, checked, by `Match::buyer_total`.
        let times = |p: Amount| Amount::new(p.get().saturating_mul(n));
        s.welfare = s
            .welfare
            .saturating_add(times(bid.price.saturating_sub(ask.price)));
        s.buyer_payments = s.buyer_payments.saturating_add(times(buyer_price));
        s.seller_receipts = s.seller_receipts.saturating_add(times(seller_price));
        s.min_price = Some(s.min_price.map_or(buyer_price, |p| p.min(buyer_price)));
        s.max_price = Some(s.max_price.map_or(buyer_price, |p| p.max(buyer_price)));
        self.out.matches.push(Match {
            bid: bid.id,
            ask: ask.id,
            client: bid.account,
            provider: ask.account,
            slots: Slots::new(slots),
            buyer_price,
            seller_price,
            fees: Vec::new(),
        });
        Ok(())
    }

    /// Completes the clearing, given how many asks and bids were live
    /// (every matched order is live, so the rest of them went unmatched).
    pub fn finish(self, live_asks: usize, live_bids: usize) -> Result<(), MarketError> {
        let s = &mut self.out.stats;
        s.surplus = s.buyer_payments.saturating_sub(s.seller_receipts);
        assert!(self.matched.0 <= live_asks as u64 && self.matched.1 <= live_bids as u64);
        s.unmatched_asks = live_asks as u64 - self.matched.0;
        s.unmatched_bids = live_bids as u64 - self.matched.1;
        Ok(())
    }
}

/// Looks up each live ask's provider reputation once.
pub(crate) fn ask_reputations(
    asks: &[Ask],
    live: &[u32],
    rep: &dyn ReputationLookup,
) -> Vec<Reputation> {
    let mut out = vec![Reputation::ZERO; asks.len()];
    for &i in live {
        out[i as usize] = rep.reputation(&asks[i as usize].provider);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::first_duplicate;
    use idlegrid_primitives::RngCore;

    #[test]
    fn dense_and_sparse_duplicate_scans_agree() {
        use super::{first_duplicate_dense, first_duplicate_sorted};
        let mut rng = idlegrid_primitives::Seed::from_u64(5).rng();
        for round in 0..200u64 {
            let n = 1 + (rng.next_u64() % 300) as usize;
            let range = 1 + rng.next_u64() % (n as u64 * (1 + round % 80));
            let base = rng.next_u64() % (u64::MAX - range);
            let ids: Vec<u64> = (0..n).map(|_| base + rng.next_u64() % range).collect();
            let sorted = first_duplicate_sorted(ids.clone());
            assert_eq!(first_duplicate(ids.clone()), sorted);
            let (lo, hi) = (*ids.iter().min().unwrap(), *ids.iter().max().unwrap());
            assert_eq!(first_duplicate_dense(&ids, lo, hi - lo), sorted);
        }
    }

    #[test]
    fn radix_duplicate_scan() {
        assert_eq!(first_duplicate(vec![]), None);
        assert_eq!(first_duplicate(vec![7]), None);
        assert_eq!(first_duplicate(vec![5, 3, 9, 1 << 40, 3]), Some(3));
        assert_eq!(first_duplicate(vec![u64::MAX, 0, u64::MAX]), Some(u64::MAX));
        let v: Vec<u64> = (0..10_000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        assert_eq!(first_duplicate(v.clone()), None);
        let mut w = v;
        w.push(17u64.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        assert_eq!(
            first_duplicate(w),
            Some(17u64.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        );
    }
}
