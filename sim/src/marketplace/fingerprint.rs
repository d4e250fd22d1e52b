//! Node messages' fingerprints in the run digest, each fact slice hashed
//! once however many copies of it are sent.
//!
//! A commit's facts travel as shared slices: a validator sends the same
//! `Arc<[Fact]>` to every subscriber it concerns, and validators that
//! applied the commit together share it, so one slice goes out from each of
//! a light node's sources (34 of `large`'s 100 validators). Hashing every
//! copy was the largest part of the engine's fingerprinting.
//!
//! [`Fingerprints`] remembers the fingerprints of recent fact messages by
//! (commit index, slice allocation) in a small direct-mapped table. Each
//! entry holds a clone of its slice's `Arc`, which pins the allocation: its
//! address cannot be reused by another slice while the entry lives, and an
//! `Arc<[Fact]>` is immutable, so an address match is a content match. The
//! remembered value is [`node_fingerprint`] of the message, computed on the
//! miss: a hit returns exactly what recomputing would, so the run digest is
//! the same with or without the table (the `marketplace` tests compare it
//! against the function).

use std::sync::Arc;

use idlegrid_node::wire::{CertifiedFacts, Fact, NodeMessage};
use idlegrid_primitives::Digest;

use super::run::node_fingerprint;

/// Entries of the table (fact slices in flight at once are far fewer: the
/// facts of the last few commits).
const SLOTS: usize = 4_096;

struct Slot {
    index: u64,
    shared: Shared,
    fingerprint: Digest,
}

/// The shared allocation a remembered message pins.
enum Shared {
    Facts(Arc<[Fact]>),
    Certified(Arc<CertifiedFacts>),
}

impl Shared {
    fn of(m: &NodeMessage) -> Option<(u64, Self)> {
        match m {
            NodeMessage::Facts(b) => Some((b.index, Self::Facts(Arc::clone(&b.facts)))),
            NodeMessage::Certified(c) => Some((c.index, Self::Certified(Arc::clone(c)))),
            _ => None,
        }
    }

    fn address(&self) -> usize {
        match self {
            Self::Facts(f) => Arc::as_ptr(f).cast::<u8>() as usize,
            Self::Certified(c) => Arc::as_ptr(c).cast::<u8>() as usize,
        }
    }

    fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Facts(a), Self::Facts(b)) => Arc::ptr_eq(a, b),
            (Self::Certified(a), Self::Certified(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// [`node_fingerprint`] with the fact messages' fingerprints remembered.
pub(crate) struct Fingerprints {
    slots: Vec<Option<Slot>>,
    hits: u64,
}

impl Default for Fingerprints {
    fn default() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| None).collect(),
            hits: 0,
        }
    }
}

impl std::fmt::Debug for Fingerprints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fingerprints")
            .field("hits", &self.hits)
            .finish_non_exhaustive()
    }
}

impl Fingerprints {
    /// The fingerprint of `m`: [`node_fingerprint`]`(m)`.
    pub(crate) fn of(&mut self, m: &NodeMessage) -> Digest {
        let Some((index, shared)) = Shared::of(m) else {
            return node_fingerprint(m);
        };
        let address = shared.address();
        let mixed = (address as u64 >> 4) ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let slot = &mut self.slots[(mixed % SLOTS as u64) as usize];
        match slot {
            Some(s) if s.index == index && s.shared.same(&shared) => {
                self.hits += 1;
                return s.fingerprint;
            }
            _ => {}
        }
        let fingerprint = node_fingerprint(m);
        *slot = Some(Slot {
            index,
            shared,
            fingerprint,
        });
        fingerprint
    }

    /// Fingerprints answered from the table.
    #[cfg(test)]
    fn hits(&self) -> u64 {
        self.hits
    }
}

#[cfg(test)]
mod tests {
    use idlegrid_node::market::BatchNo;
    use idlegrid_node::wire::FactBatch;

    use super::*;

    fn facts(n: u64) -> Arc<[Fact]> {
        (0..n)
            .map(|b| Fact::SealingClosed { batch: BatchNo(b) })
            .collect()
    }

    fn message(index: u64, facts: &Arc<[Fact]>) -> NodeMessage {
        NodeMessage::Facts(FactBatch {
            index,
            facts: Arc::clone(facts),
        })
    }

    #[test]
    fn a_remembered_fingerprint_is_the_computed_one() {
        let mut table = Fingerprints::default();
        let (a, b) = (facts(3), facts(3));
        let cases = [
            message(7, &a),
            message(7, &a),
            message(8, &a),
            message(7, &b),
        ];
        let got: Vec<Digest> = cases.iter().map(|m| table.of(m)).collect();
        let want: Vec<Digest> = cases.iter().map(node_fingerprint).collect();
        assert_eq!(got, want);
        // Only the second is a copy of a remembered message: the third is
        // another commit, the fourth an equal slice elsewhere.
        assert_eq!(table.hits(), 1);
        assert_ne!(got[0], got[2], "the commit index is part of it");
        assert_eq!(got[0], got[3], "equal content, equal fingerprint");
    }

    #[test]
    fn a_slot_pins_its_slice() {
        let mut table = Fingerprints::default();
        let a = facts(2);
        table.of(&message(1, &a));
        let weak = Arc::downgrade(&a);
        drop(a);
        // The table keeps the allocation alive, so no other slice can be
        // given its address while the entry can still match.
        assert!(weak.upgrade().is_some());
    }
}
