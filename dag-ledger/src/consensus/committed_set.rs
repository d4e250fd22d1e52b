//! The blocks commits have ordered, from a garbage-collection round up:
//! what the linearizer skips when it orders the next leader's history, and
//! what a restarted validator must never order again.
//!
//! Committed blocks sit a few dozen rounds deep and about one per author a
//! round, so the set keeps, per round from its lowest live one, one digest
//! slot per author: a membership test is two indexings and one digest
//! comparison instead of a tree search over every committed reference, and
//! a round's entries are one allocation. Further blocks of an author in one
//! round (an equivocator's other variants, both committed through
//! different histories) go to a small ordered set beside it, and so do
//! references too far from the others for slots ([`CommittedSet::MAX_SPAN`]
//! rounds, [`MAX_COMMITTEE_SIZE`] authors: a frontier read from a peer
//! cannot make the set allocate for rounds it does not hold). Iteration is
//! in [`BlockRef`] order either way.
//!
//! ```
//! use idlegrid_dag_ledger::consensus::{AuthorityIndex, BlockRef, CommittedSet};
//! use idlegrid_primitives::{Digest, Round};
//! let at = |round, author, d| BlockRef {
//!     round: Round::new(round),
//!     author: AuthorityIndex::new(author),
//!     digest: Digest::from_bytes([d; 32]),
//! };
//! let mut set = CommittedSet::default();
//! set.extend([at(5, 1, 7), at(6, 0, 8)]);
//! assert!(set.contains(&at(5, 1, 7)));
//! assert!(!set.contains(&at(5, 1, 9)));
//! set.prune(Round::new(6));
//! assert_eq!(set.iter().collect::<Vec<_>>(), vec![at(6, 0, 8)]);
//! ```

use std::collections::{BTreeSet, VecDeque};

use idlegrid_primitives::{Digest, Round};

use super::block::BlockRef;
use super::committee::{AuthorityIndex, MAX_COMMITTEE_SIZE};

/// A set of block references above a floor round (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommittedSet {
    /// The round of `rounds[0]`.
    base: Round,
    /// Per round from `base` on, per author, the first committed digest.
    rounds: VecDeque<Vec<Option<Digest>>>,
    /// Committed blocks whose `(round, author)` slot was already taken.
    extra: BTreeSet<BlockRef>,
    len: usize,
}

impl CommittedSet {
    /// Rounds the slots span at most, from the lowest to the highest.
    pub const MAX_SPAN: u64 = 4_096;

    /// True if `r` is in the set.
    pub fn contains(&self, r: &BlockRef) -> bool {
        self.slot(r.round, r.author) == Some(r.digest)
            || (!self.extra.is_empty() && self.extra.contains(r))
    }

    /// The digest in `(round, author)`'s slot.
    fn slot(&self, round: Round, author: AuthorityIndex) -> Option<Digest> {
        let i = usize::try_from(round.get().checked_sub(self.base.get())?).ok()?;
        *self.rounds.get(i)?.get(author.as_usize())?
    }

    /// `(round, author)`'s slot, made if it is within reach; `None` if it
    /// is too far from the rounds held or the author is out of range.
    fn slot_mut(&mut self, round: Round, author: AuthorityIndex) -> Option<&mut Option<Digest>> {
        let a = author.as_usize();
        if a >= MAX_COMMITTEE_SIZE {
            return None;
        }
        if self.rounds.is_empty() {
            self.base = round;
        }
        let held = self.rounds.len() as u64;
        if round < self.base {
            let below = self.base.get() - round.get();
            if below.saturating_add(held) > Self::MAX_SPAN {
                return None;
            }
            for _ in 0..below {
                self.rounds.push_front(Vec::new());
            }
            self.base = round;
        }
        let i = round.get() - self.base.get();
        if i >= Self::MAX_SPAN {
            return None;
        }
        let i = i as usize;
        if self.rounds.len() <= i {
            self.rounds.resize_with(i + 1, Vec::new);
        }
        let slots = &mut self.rounds[i];
        if slots.len() <= a {
            slots.resize(a + 1, None);
        }
        Some(&mut slots[a])
    }

    /// Adds `r`; false if it was there.
    pub fn insert(&mut self, r: BlockRef) -> bool {
        if self.contains(&r) {
            return false;
        }
        match self.slot_mut(r.round, r.author) {
            Some(slot @ None) => *slot = Some(r.digest),
            _ => {
                self.extra.insert(r);
            }
        }
        self.len += 1;
        true
    }

    /// Adds every reference of `refs`.
    pub fn extend(&mut self, refs: impl IntoIterator<Item = BlockRef>) {
        for r in refs {
            self.insert(r);
        }
    }

    /// Removes every reference below round `floor`.
    pub fn prune(&mut self, floor: Round) {
        while self.base < floor
            && let Some(round) = self.rounds.pop_front()
        {
            self.len -= round.iter().flatten().count();
            self.base = self.base.next();
        }
        let kept = self.extra.split_off(&BlockRef {
            round: floor,
            author: AuthorityIndex::new(0),
            digest: Digest::from_bytes([0; 32]),
        });
        self.len -= self.extra.len();
        self.extra = kept;
    }

    /// The number of references held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the set holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The references in [`BlockRef`] order.
    pub fn iter(&self) -> impl Iterator<Item = BlockRef> + '_ {
        let mut slots = self
            .rounds
            .iter()
            .enumerate()
            .flat_map(move |(i, slots)| {
                let round = Round::new(self.base.get() + i as u64);
                slots.iter().enumerate().filter_map(move |(a, d)| {
                    Some(BlockRef {
                        round,
                        author: AuthorityIndex::new(a as u32),
                        digest: (*d)?,
                    })
                })
            })
            .peekable();
        let mut extra = self.extra.iter().copied().peekable();
        // Both are in order: merge them.
        std::iter::from_fn(move || match (slots.peek(), extra.peek()) {
            (Some(s), Some(e)) if e < s => extra.next(),
            (Some(_), _) => slots.next(),
            (None, _) => extra.next(),
        })
    }
}

impl FromIterator<BlockRef> for CommittedSet {
    fn from_iter<I: IntoIterator<Item = BlockRef>>(refs: I) -> Self {
        let mut set = Self::default();
        set.extend(refs);
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(round: u64, author: u32, d: u8) -> BlockRef {
        BlockRef {
            round: Round::new(round),
            author: AuthorityIndex::new(author),
            digest: Digest::from_bytes([d; 32]),
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u64, u32, u8),
        Prune(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..40, 0u32..6, 0u8..3).prop_map(|(r, a, d)| Op::Insert(r, a, d)),
            1 => (0u64..45).prop_map(Op::Prune),
        ]
    }

    proptest! {
        /// The set behaves as the ordered set of references it replaces,
        /// with pruning as `split_off` at the floor round.
        #[test]
        fn is_an_ordered_set_of_refs(ops in proptest::collection::vec(op(), 0..200)) {
            let (mut set, mut model) = (CommittedSet::default(), BTreeSet::new());
            for o in ops {
                match o {
                    Op::Insert(r, a, d) => {
                        prop_assert_eq!(set.insert(at(r, a, d)), model.insert(at(r, a, d)));
                    }
                    Op::Prune(f) => {
                        set.prune(Round::new(f));
                        model = model.split_off(&at(f, 0, 0));
                    }
                }
                prop_assert_eq!(set.len(), model.len());
                prop_assert!(set.iter().eq(model.iter().copied()));
                for r in 0..42 {
                    for a in 0..7 {
                        for d in 0..3 {
                            prop_assert_eq!(set.contains(&at(r, a, d)), model.contains(&at(r, a, d)));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn far_references_are_held_without_slots_for_the_rounds_between() {
        let far = CommittedSet::MAX_SPAN + 10;
        let mut set: CommittedSet = [at(far, 0, 1), at(0, 0, 1), at(u64::MAX, 1, 2)]
            .into_iter()
            .collect();
        let big = BlockRef {
            author: AuthorityIndex::new(MAX_COMMITTEE_SIZE as u32),
            ..at(far, 0, 3)
        };
        assert!(set.insert(big));
        assert_eq!(set.rounds.len(), 1, "one round of slots");
        assert_eq!(set.len(), 4);
        assert!(
            set.contains(&at(0, 0, 1)) && set.contains(&at(u64::MAX, 1, 2)) && set.contains(&big)
        );
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![at(0, 0, 1), at(far, 0, 1), big, at(u64::MAX, 1, 2)]
        );
        set.prune(Round::new(far));
        assert_eq!(set.len(), 3);
    }

    #[test]
    fn an_equivocator_s_second_block_is_its_own_entry() {
        let mut set: CommittedSet = [at(3, 1, 1), at(3, 1, 2)].into_iter().collect();
        assert_eq!(set.len(), 2);
        assert!(set.contains(&at(3, 1, 2)) && set.contains(&at(3, 1, 1)));
        assert!(!set.insert(at(3, 1, 2)));
        set.prune(Round::new(4));
        assert!(set.is_empty());
    }
}
