//! Accepted blocks, indexed by round and author.
//!
//! Invariant: every block in the store has all its parents in the store,
//! except parents below the garbage-collection round (causal completeness
//! above the gc round). The validator only inserts blocks whose ancestors
//! are present; hand-built DAGs must do the same.
//!
//! The store also keeps the order in which its live blocks arrived and a
//! count of insertions, so that an incremental reader (the committer's
//! vote tally) can catch up on what was added since it last looked; and an
//! identity token, so that such a reader can tell one store from another
//! (a clone gets a new token).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Weak};

use idlegrid_primitives::{Digest, Round};

use crate::consensus::block::{BlockRef, VerifiedBlock};
use crate::consensus::committee::AuthorityIndex;

/// Blocks of one round, one [`BlockSlot`] per author. A [`VerifiedBlock`]
/// shares its block, so the store holds no copy of what the network or the
/// proposer built.
#[derive(Clone, Debug)]
struct RoundBlocks {
    by_author: Vec<BlockSlot>,
    len: usize,
}

/// One author's blocks of one round, in arrival order: more than one only
/// if the author equivocated.
///
/// The first is held inline, so a round's slots are one array: looking up
/// the parents of a block (a whole committee of them, sorted by author)
/// reads that array in order instead of following a pointer per parent.
#[derive(Clone, Debug, Default)]
pub struct BlockSlot {
    first: Option<VerifiedBlock>,
    /// The further variants (an equivocator's).
    more: Vec<VerifiedBlock>,
}

/// The slot of an author with no block.
static EMPTY_SLOT: BlockSlot = BlockSlot {
    first: None,
    more: Vec::new(),
};

impl BlockSlot {
    /// The first-received block, if any.
    pub fn first(&self) -> Option<&VerifiedBlock> {
        self.first.as_ref()
    }

    /// The `v`-th block received (0 for the first).
    pub fn get(&self, v: usize) -> Option<&VerifiedBlock> {
        match v {
            0 => self.first.as_ref(),
            _ => self.more.get(v - 1),
        }
    }

    /// How many blocks the slot holds.
    pub fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.len()
    }

    /// True if the author has no block here.
    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// The blocks in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = &VerifiedBlock> {
        self.into_iter()
    }

    /// The blocks, cloned (each shares its block), in arrival order.
    pub fn to_vec(&self) -> Vec<VerifiedBlock> {
        self.iter().cloned().collect()
    }

    /// The block with this digest, if held.
    pub fn find(&self, digest: &Digest) -> Option<&VerifiedBlock> {
        self.iter().find(|b| b.reference().digest == *digest)
    }

    /// Appends a variant (`more` grows by exactly one: equivocators are
    /// rare, and a first push would make room for four).
    fn push(&mut self, block: VerifiedBlock) {
        if self.first.is_none() {
            self.first = Some(block);
        } else {
            self.more.reserve_exact(1);
            self.more.push(block);
        }
    }
}

impl<'a> IntoIterator for &'a BlockSlot {
    type Item = &'a VerifiedBlock;
    type IntoIter = core::iter::Chain<
        core::option::Iter<'a, VerifiedBlock>,
        core::slice::Iter<'a, VerifiedBlock>,
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.first.iter().chain(self.more.iter())
    }
}

/// Where an inserted block sits: `(round, author, variant)`.
type Arrival = (Round, u32, u32);

/// The accepted blocks of the local DAG.
#[derive(Debug)]
pub struct DagStore {
    committee_size: usize,
    rounds: BTreeMap<Round, RoundBlocks>,
    gc_round: Round,
    len: usize,
    /// Blocks inserted, in order, from the `log_base`-th insertion on;
    /// gc trims the entries below the gc round from the front (entries
    /// behind a live one stay until it goes: the log spans at most the
    /// rounds between the gc round and the highest one).
    log: VecDeque<Arrival>,
    /// Insertions trimmed from the log's front.
    log_base: u64,
    /// Names this store (and not its clones) for incremental readers.
    identity: Arc<()>,
}

/// The block `r` among one round's blocks (see
/// [`DagStore::round_by_author`]).
pub(crate) fn find_in<'a>(by_author: &'a [BlockSlot], r: &BlockRef) -> Option<&'a VerifiedBlock> {
    by_author.get(r.author.as_usize())?.find(&r.digest)
}

impl Clone for DagStore {
    /// The same blocks under a new identity.
    fn clone(&self) -> Self {
        Self {
            committee_size: self.committee_size,
            rounds: self.rounds.clone(),
            gc_round: self.gc_round,
            len: self.len,
            log: self.log.clone(),
            log_base: self.log_base,
            identity: Arc::new(()),
        }
    }
}

impl DagStore {
    /// An empty store for a committee of `committee_size`.
    pub fn new(committee_size: usize) -> Self {
        Self {
            committee_size,
            rounds: BTreeMap::new(),
            gc_round: Round::ZERO,
            len: 0,
            log: VecDeque::new(),
            log_base: 0,
            identity: Arc::new(()),
        }
    }

    /// Inserts a block; returns false if it was already present. Blocks
    /// below the gc round or from an unknown author are ignored.
    pub fn insert(&mut self, block: VerifiedBlock) -> bool {
        let r = block.reference();
        if r.round < self.gc_round || r.author.as_usize() >= self.committee_size {
            return false;
        }
        let n = self.committee_size;
        let rb = self.rounds.entry(r.round).or_insert_with(|| RoundBlocks {
            by_author: vec![BlockSlot::default(); n],
            len: 0,
        });
        let slot = &mut rb.by_author[r.author.as_usize()];
        if slot.iter().any(|b| b.reference() == r) {
            return false;
        }
        self.log
            .push_back((r.round, r.author.get(), slot.len() as u32));
        slot.push(block);
        rb.len += 1;
        self.len += 1;
        true
    }

    /// How many blocks were ever inserted (gc does not lower it).
    pub(crate) fn insertions(&self) -> u64 {
        self.log_base + self.log.len() as u64
    }

    /// The live blocks inserted after the first `seen` insertions, in
    /// insertion order (blocks collected since are left out).
    pub(crate) fn inserted_since(&self, seen: u64) -> impl Iterator<Item = &VerifiedBlock> {
        let from = seen.saturating_sub(self.log_base);
        let from = usize::try_from(from)
            .unwrap_or(usize::MAX)
            .min(self.log.len());
        self.log.range(from..).filter_map(|&(round, a, v)| {
            let rb = self.rounds.get(&round)?;
            rb.by_author.get(a as usize)?.get(v as usize)
        })
    }

    /// A weak handle naming this store: equal (`Weak::ptr_eq`) only for
    /// handles of the same store, never for a clone's or a dropped store's
    /// successor (the handle keeps the token's allocation alive).
    pub(crate) fn identity(&self) -> Weak<()> {
        Arc::downgrade(&self.identity)
    }

    /// True if `handle` came from [`DagStore::identity`] of this store.
    pub(crate) fn is(&self, handle: &Weak<()>) -> bool {
        Weak::ptr_eq(handle, &Arc::downgrade(&self.identity))
    }

    /// The block with this reference.
    pub fn get(&self, r: &BlockRef) -> Option<&VerifiedBlock> {
        self.slot(r.round, r.author).find(&r.digest)
    }

    /// The blocks of `round` by author (empty if none): look blocks of one
    /// round up with [`find_in`] without searching for the round each time.
    pub(crate) fn round_by_author(&self, round: Round) -> &[BlockSlot] {
        self.rounds
            .get(&round)
            .map_or(&[], |rb| rb.by_author.as_slice())
    }

    /// True if the block is present.
    pub fn contains(&self, r: &BlockRef) -> bool {
        self.get(r).is_some()
    }

    /// True if the block is present or garbage collected (below the gc
    /// round), i.e. it never needs fetching.
    pub fn contains_or_collected(&self, r: &BlockRef) -> bool {
        r.round < self.gc_round || self.contains(r)
    }

    /// The blocks of `author` at `round` (several if it equivocated).
    pub fn slot(&self, round: Round, author: AuthorityIndex) -> &BlockSlot {
        self.rounds
            .get(&round)
            .and_then(|rb| rb.by_author.get(author.as_usize()))
            .unwrap_or(&EMPTY_SLOT)
    }

    /// All blocks of `round`, by author then arrival.
    pub fn round_blocks(&self, round: Round) -> impl Iterator<Item = &VerifiedBlock> {
        self.rounds
            .get(&round)
            .into_iter()
            .flat_map(|rb| rb.by_author.iter().flat_map(BlockSlot::iter))
    }

    /// The first-received block of each author at `round`.
    pub fn first_per_author(&self, round: Round) -> impl Iterator<Item = &VerifiedBlock> {
        self.rounds
            .get(&round)
            .into_iter()
            .flat_map(|rb| rb.by_author.iter().filter_map(BlockSlot::first))
    }

    /// The highest round holding a block (zero when empty).
    pub fn highest_round(&self) -> Round {
        self.rounds
            .keys()
            .next_back()
            .copied()
            .unwrap_or(Round::ZERO)
    }

    /// The most recent block of `author` (first variant of its highest
    /// round).
    pub fn last_block_of(&self, author: AuthorityIndex) -> Option<&VerifiedBlock> {
        self.rounds.values().rev().find_map(|rb| {
            rb.by_author
                .get(author.as_usize())
                .and_then(BlockSlot::first)
        })
    }

    /// The most recent block of `author` strictly below `round`.
    pub fn last_block_before(
        &self,
        author: AuthorityIndex,
        round: Round,
    ) -> Option<&VerifiedBlock> {
        self.rounds.range(..round).rev().find_map(|(_, rb)| {
            rb.by_author
                .get(author.as_usize())
                .and_then(BlockSlot::first)
        })
    }

    /// Blocks below this round have been dropped.
    pub fn gc_round(&self) -> Round {
        self.gc_round
    }

    /// Drops every block below `round` (no-op if `round` is not higher than
    /// the current gc round).
    pub fn gc(&mut self, round: Round) {
        if round <= self.gc_round {
            return;
        }
        self.gc_round = round;
        let kept = self.rounds.split_off(&round);
        for rb in self.rounds.values() {
            self.len -= rb.len;
        }
        self.rounds = kept;
        while self.log.front().is_some_and(|(r, _, _)| *r < round) {
            self.log.pop_front();
            self.log_base += 1;
        }
    }

    /// Number of blocks held.
    pub fn len(&self) -> usize {
        self.len
    }
    /// True if no block is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Committee size the store was built for.
    pub fn committee_size(&self) -> usize {
        self.committee_size
    }

    /// The blocks of round `target` reachable from `from` (including `from`
    /// itself if it is at `target`), walking parents present in the store.
    pub fn reachable_at(&self, from: &VerifiedBlock, target: Round) -> Vec<VerifiedBlock> {
        let mut out = Vec::new();
        if from.round() < target {
            return out;
        }
        let mut seen: BTreeSet<BlockRef> = BTreeSet::new();
        let mut queue: BTreeSet<BlockRef> = BTreeSet::new();
        queue.insert(from.reference());
        // Highest round first, so every block is expanded once.
        while let Some(r) = queue.pop_last() {
            let Some(b) = self.get(&r) else { continue };
            if r.round == target {
                out.push(b.clone());
                continue;
            }
            for p in b.parents() {
                if p.round >= target && seen.insert(*p) {
                    queue.insert(*p);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::dag::DagBuilder;

    /// A slot holds an equivocator's variants in arrival order, finds each
    /// by digest, and the store answers through it as through a list.
    #[test]
    fn a_slot_keeps_variants_in_arrival_order() {
        let mut dag = DagBuilder::new(4);
        dag.layer(1).build();
        let refs = dag.layer(2).authors([1]).equivocate().build();
        let store = dag.store();
        let slot = store.slot(Round::new(2), AuthorityIndex::new(1));
        assert_eq!(slot.len(), 2);
        let got: Vec<BlockRef> = slot.iter().map(VerifiedBlock::reference).collect();
        assert_eq!(got, refs);
        assert_eq!(slot.to_vec().len(), 2);
        assert_eq!(slot.first().map(VerifiedBlock::reference), Some(refs[0]));
        assert_eq!(slot.get(1).map(VerifiedBlock::reference), Some(refs[1]));
        assert!(slot.get(2).is_none());
        for r in &refs {
            assert_eq!(slot.find(&r.digest).map(VerifiedBlock::reference), Some(*r));
            assert!(store.contains(r));
        }
        let empty = store.slot(Round::new(2), AuthorityIndex::new(0));
        assert!(empty.is_empty() && empty.first().is_none() && empty.iter().count() == 0);
        assert_eq!(store.round_blocks(Round::new(2)).count(), 2);
        assert_eq!(store.first_per_author(Round::new(2)).count(), 1);
    }
}
