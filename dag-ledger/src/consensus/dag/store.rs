//! Accepted blocks, indexed by round and author.
//!
//! Invariant: every block in the store has all its parents in the store,
//! except parents below the garbage-collection round (causal completeness
//! above the gc round). The validator only inserts blocks whose ancestors
//! are present; hand-built DAGs must do the same.

use std::collections::{BTreeMap, BTreeSet};

use idlegrid_primitives::Round;

use crate::consensus::block::{BlockRef, VerifiedBlock};
use crate::consensus::committee::AuthorityIndex;

/// Blocks of one round, one vector of variants per author (more than one
/// only if the author equivocated). A [`VerifiedBlock`] shares its block, so
/// the store holds no copy of what the network or the proposer built.
type RoundBlocks = Vec<Vec<VerifiedBlock>>;

/// The accepted blocks of the local DAG.
#[derive(Clone, Debug)]
pub struct DagStore {
    committee_size: usize,
    rounds: BTreeMap<Round, RoundBlocks>,
    gc_round: Round,
    len: usize,
}

impl DagStore {
    /// An empty store for a committee of `committee_size`.
    pub fn new(committee_size: usize) -> Self {
        Self {
            committee_size,
            rounds: BTreeMap::new(),
            gc_round: Round::ZERO,
            len: 0,
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
        let slot = &mut self
            .rounds
            .entry(r.round)
            .or_insert_with(|| vec![Vec::new(); n])[r.author.as_usize()];
        if slot.iter().any(|b| b.reference() == r) {
            return false;
        }
        slot.push(block);
        self.len += 1;
        true
    }

    /// The block with this reference.
    pub fn get(&self, r: &BlockRef) -> Option<&VerifiedBlock> {
        self.slot(r.round, r.author)
            .iter()
            .find(|b| b.reference().digest == r.digest)
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
    pub fn slot(&self, round: Round, author: AuthorityIndex) -> &[VerifiedBlock] {
        self.rounds
            .get(&round)
            .and_then(|rb| rb.get(author.as_usize()))
            .map_or(&[], Vec::as_slice)
    }

    /// All blocks of `round`, by author then arrival.
    pub fn round_blocks(&self, round: Round) -> impl Iterator<Item = &VerifiedBlock> {
        self.rounds.get(&round).into_iter().flatten().flatten()
    }

    /// The first-received block of each author at `round`.
    pub fn first_per_author(&self, round: Round) -> impl Iterator<Item = &VerifiedBlock> {
        self.rounds
            .get(&round)
            .into_iter()
            .flatten()
            .filter_map(|v| v.first())
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
        self.rounds
            .values()
            .rev()
            .find_map(|rb| rb.get(author.as_usize()).and_then(|v| v.first()))
    }

    /// The most recent block of `author` strictly below `round`.
    pub fn last_block_before(
        &self,
        author: AuthorityIndex,
        round: Round,
    ) -> Option<&VerifiedBlock> {
        self.rounds
            .range(..round)
            .rev()
            .find_map(|(_, rb)| rb.get(author.as_usize()).and_then(|v| v.first()))
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
            self.len -= rb.iter().map(Vec::len).sum::<usize>();
        }
        self.rounds = kept;
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
