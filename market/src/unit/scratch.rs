//! The buffers unit clearing reuses between calls.

use core::ops::Range;
use std::collections::BTreeSet;

use super::Unit;
use super::lanes::lane;
use super::pair::PairBuffers;
use super::sort::sort_units;
use crate::clearing::MatchedFlags;
use crate::order::{Ask, Bid};
use crate::types::ExecutorKind;

/// Scratch buffers for [`crate::Mechanism::clear_into`]: the units of both
/// sides, their sort buffers, the pairing's lists and the per-order flags.
///
/// It holds no state between calls, only capacity: every call starts by
/// emptying what it uses, so a scratch reused across batches, mechanisms or
/// markets gives the same results as a fresh one. A clone is a fresh
/// (empty) scratch, and it has no bearing on what a holder compares,
/// hashes or snapshots. It keeps up to about 140 bytes per order of the
/// largest batch cleared with it (a 32-byte unit and its sort buffer, a
/// 72-byte record per winning order, flags and links): about 100 MB after
/// 500 000 asks and 500 000 bids of which half trade. Drop it to release
/// them.
///
/// ```
/// use idlegrid_market::strategies::{unit_ask, unit_bid};
/// use idlegrid_market::*;
/// use idlegrid_primitives::{AccountId, Timestamp};
///
/// let who = |n: u8| AccountId::from_bytes([n; 32]);
/// let rep = FlatReputation(Reputation::MAX);
/// let ctx = ClearingContext { now: Timestamp::ZERO, limits: Limits::default(), reputation: &rep };
/// let (mut scratch, mut out) = (ClearingScratch::new(), Clearing::default());
/// for batch in 0..3u64 {
///     let asks = [unit_ask(2 * batch, 10, 1, who(1)), unit_ask(100 + batch, 12, 1, who(2))];
///     let bids = [unit_bid(2 * batch + 1, 20, 1, who(3)), unit_bid(200 + batch, 11, 1, who(4))];
///     McAfee.clear_into(&asks, &bids, &ctx, &mut scratch, &mut out).unwrap();
///     assert_eq!(out, McAfee.clear(&asks, &bids, &ctx).unwrap());
/// }
/// ```
#[derive(Default)]
pub struct ClearingScratch {
    pub(super) asks: SideUnits,
    pub(super) bids: SideUnits,
    pub(super) pair: PairBuffers,
    pub(super) flags: MatchedFlags,
    /// The lane components of the current batch as (asks, bids) ranges.
    pub(super) components: Vec<(Range<usize>, Range<usize>)>,
}

impl ClearingScratch {
    /// An empty scratch; buffers grow on first use.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Clone for ClearingScratch {
    /// A fresh scratch: there is nothing to copy but capacity.
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl core::fmt::Debug for ClearingScratch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClearingScratch")
            .field("ask_capacity", &self.asks.units.capacity())
            .field("bid_capacity", &self.bids.units.capacity())
            .finish_non_exhaustive()
    }
}

/// One side's live orders as units, gathered in the validating pass so
/// that nothing after it reads the (large) orders again until matching.
#[derive(Default)]
pub(super) struct SideUnits {
    pub units: Vec<Unit>,
    /// The other buffer of the sort (and of the split into components).
    pub tmp: Vec<Unit>,
    /// Each unit's anchor lane (its first region × executor pair).
    pub anchors: Vec<u8>,
    /// The distinct lane keys seen: (region or region bits, executor bits).
    pub keys: BTreeSet<(u64, u8)>,
    last_key: Option<(u64, u8)>,
    /// Whether the live units' ids strictly ascend in input order.
    pub ids_ascending: bool,
    last_id: Option<u64>,
}

impl SideUnits {
    /// Empties the side, keeping its allocations.
    pub fn reset(&mut self) {
        self.units.clear();
        self.anchors.clear();
        self.keys.clear();
        self.last_key = None;
        self.ids_ascending = true;
        self.last_id = None;
    }
    fn note_key(&mut self, key: (u64, u8)) {
        // Consecutive repeats (the common case) skip the set.
        if self.last_key != Some(key) {
            self.keys.insert(key);
            self.last_key = Some(key);
        }
    }
    fn push(&mut self, u: Unit, anchor: usize) {
        let id = u.id.get();
        self.ids_ascending &= self.last_id.is_none_or(|last| last < id);
        self.last_id = Some(id);
        // lane() < LANES = 192: fits in a byte.
        self.anchors.push(anchor as u8);
        self.units.push(u);
    }
    pub fn push_ask(&mut self, i: u32, a: &Ask) {
        // Validated: executors non-empty, region < MAX_REGIONS.
        let e = a.executors.iter().next().unwrap_or(ExecutorKind::Wasm);
        self.note_key((u64::from(a.region.get()), a.executors.bits()));
        self.push(Unit::of_ask(i, a), lane(a.region.get(), e));
    }
    pub fn push_bid(&mut self, i: u32, b: &Bid) {
        // Validated: regions non-empty.
        let r = b.regions.bits().trailing_zeros().min(63) as u8;
        self.note_key((b.regions.bits(), b.executor.index() as u8));
        self.push(Unit::of_bid(i, b), lane(r, b.executor));
    }
    /// Makes `tmp` at least as long as `units`.
    pub fn grow_tmp(&mut self) {
        if self.tmp.len() < self.units.len() {
            self.tmp.resize(self.units.len(), Unit::ZERO);
        }
    }
    /// Sorts the units in `range` (asks by price ascending, or bids by
    /// price descending when `descending`, ties by id) and returns them.
    pub fn sorted(&mut self, range: Range<usize>, descending: bool) -> &[Unit] {
        self.grow_tmp();
        let whole = range == (0..self.units.len());
        let (src, dst) = (&mut self.units[range.clone()], &mut self.tmp[range.clone()]);
        if sort_units(src, dst, descending, self.ids_ascending) {
            if whole {
                core::mem::swap(&mut self.units, &mut self.tmp);
                self.units.truncate(range.end);
            } else {
                src.copy_from_slice(dst);
            }
        }
        &self.units[range]
    }
}
