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
//! against the function). Certified facts are remembered the same way by
//! their certificate (shared by every subscriber of a commit): its digest
//! is remembered, the leaves each message carries are hashed; and a block
//! with the votes riding on it by both allocations (a validator sends the
//! same to every other).

use std::sync::Arc;

use idlegrid_dag_ledger::consensus::{Block, ConsensusMessage};
use idlegrid_node::wire::{Fact, FactsCertificate, FactsVote, NodeMessage};
use idlegrid_primitives::Digest;

use super::run::{certificate_digest, node_fingerprint, node_fingerprint_with};

/// Entries of the table (fact slices in flight at once are far fewer: the
/// facts of the last few commits).
const SLOTS: usize = 4_096;

struct Slot {
    index: u64,
    shared: Shared,
    fingerprint: Digest,
}

/// The shared allocation a remembered fingerprint pins.
enum Shared {
    Facts(Arc<[Fact]>),
    Certificate(Arc<FactsCertificate>),
    /// A block and the votes riding on it (every copy of a broadcast).
    Voted(Arc<Block>, Arc<[FactsVote]>),
}

impl Shared {
    fn address(&self) -> usize {
        match self {
            Self::Facts(f) => Arc::as_ptr(f).cast::<u8>() as usize,
            Self::Certificate(c) => Arc::as_ptr(c).cast::<u8>() as usize,
            Self::Voted(_, v) => Arc::as_ptr(v).cast::<u8>() as usize,
        }
    }

    fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Facts(a), Self::Facts(b)) => Arc::ptr_eq(a, b),
            (Self::Certificate(a), Self::Certificate(b)) => Arc::ptr_eq(a, b),
            (Self::Voted(a, v), Self::Voted(b, w)) => Arc::ptr_eq(a, b) && Arc::ptr_eq(v, w),
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
        match m {
            NodeMessage::Facts(b) => {
                let shared = Shared::Facts(Arc::clone(&b.facts));
                self.remembered(b.index, shared, || node_fingerprint(m))
            }
            NodeMessage::Certified(p) => {
                let shared = Shared::Certificate(Arc::clone(&p.cert));
                let cert = self.remembered(p.cert.index, shared, || certificate_digest(&p.cert));
                node_fingerprint_with(m, |_| cert)
            }
            NodeMessage::Voted {
                consensus: ConsensusMessage::Block(b),
                votes,
            } => {
                let shared = Shared::Voted(Arc::clone(b), Arc::clone(votes));
                self.remembered(b.header.round.get(), shared, || node_fingerprint(m))
            }
            _ => node_fingerprint(m),
        }
    }

    /// What `compute` gives for the allocation `shared` of commit `index`,
    /// remembered.
    fn remembered(
        &mut self,
        index: u64,
        shared: Shared,
        compute: impl FnOnce() -> Digest,
    ) -> Digest {
        let mixed = (shared.address() as u64 >> 4) ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let slot = &mut self.slots[(mixed % SLOTS as u64) as usize];
        match slot {
            Some(s) if s.index == index && s.shared.same(&shared) => {
                self.hits += 1;
                return s.fingerprint;
            }
            _ => {}
        }
        let fingerprint = compute();
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
    fn a_voted_block_is_remembered_and_sized_as_encoded() {
        use idlegrid_dag_ledger::consensus::{AuthorityIndex, Committee};
        use idlegrid_primitives::{Digest, Domain, Keypair, Seed, encoded_len};
        let key = Keypair::from_seed(&Seed::from_u64(3));
        let committee = Committee::equal([key.node_id()]).unwrap();
        let root = Digest::hash(Domain::new("idlegrid/test/root"), b"r");
        let votes: Arc<[FactsVote]> = [7, 300]
            .map(|i| FactsVote::sign(&key, &committee, i, root))
            .into();
        let block = Arc::new(Block::genesis(AuthorityIndex::new(0)));
        let m = NodeMessage::Voted {
            consensus: ConsensusMessage::Block(Arc::clone(&block)),
            votes: Arc::clone(&votes),
        };
        assert_eq!(super::super::run::node_wire_size(&m), encoded_len(&m));
        let mut table = Fingerprints::default();
        assert_eq!(table.of(&m), node_fingerprint(&m));
        assert_eq!(table.of(&m.clone()), node_fingerprint(&m));
        assert_eq!(table.hits(), 1, "a copy of the broadcast");
        let other = NodeMessage::Voted {
            consensus: ConsensusMessage::Block(block),
            votes: votes[..1].into(),
        };
        assert_ne!(table.of(&other), node_fingerprint(&m), "other votes");
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
