//! Memoized certificate verdicts for the [`Committer`](super::Committer).
//!
//! Whether a round `r+2` block is a certificate for a round `r` leader block
//! is a pure function of the two blocks and of the round `r+1` blocks the
//! first one references. Blocks are immutable and named by their digest, so
//! a verdict computed once stays true for as long as both blocks exist: the
//! committer computes it once per `(leader, block)` pair (`O(n log n)` for a
//! committee of `n`) and afterwards only looks it up (`O(log n)`).
//!
//! The one input that is not fixed by the digests is whether the round
//! `r+1` parents are in the store. The store keeps every block's parents
//! above the gc round, and the leader's round is above it whenever the
//! verdict is asked for, so in practice they always are; a negative verdict
//! computed while a parent was missing is nevertheless not remembered.
//!
//! Entries are keyed by the leader block and dropped as soon as the store's
//! gc round passes the leader's round, so the memo is bounded by (leader
//! blocks in the store) × (blocks of one round).

use std::collections::BTreeMap;
use std::fmt;

use idlegrid_primitives::Round;

use crate::consensus::block::BlockRef;

/// Certificate verdicts by leader block, then by round `r+2` block.
#[derive(Default)]
pub(super) struct CertificateMemo {
    /// The store's gc round when last synchronized.
    gc_round: Round,
    /// `leader -> (candidate certificate -> verdict)`.
    verdicts: BTreeMap<BlockRef, BTreeMap<BlockRef, bool>>,
}

impl fmt::Debug for CertificateMemo {
    /// Sizes only: the verdicts themselves are many and uninteresting.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateMemo")
            .field("gc_round", &self.gc_round)
            .field("leaders", &self.verdicts.len())
            .field(
                "verdicts",
                &self.verdicts.values().map(BTreeMap::len).sum::<usize>(),
            )
            .finish()
    }
}

/// The outcome of counting one certificate from scratch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Count {
    /// The candidate's voting parents hold a quorum.
    pub is_certificate: bool,
    /// Every round `r+1` parent of the candidate was found in the store.
    pub complete: bool,
}

impl CertificateMemo {
    /// Drops the verdicts of leaders below `gc_round` when it moved up.
    pub fn sync_gc(&mut self, gc_round: Round) {
        if gc_round > self.gc_round {
            self.verdicts.retain(|leader, _| leader.round >= gc_round);
        }
        self.gc_round = gc_round;
    }

    /// The verdict for `(leader, cert)`, computed with `count` on a miss.
    pub fn certificate(
        &mut self,
        leader: BlockRef,
        cert: BlockRef,
        count: impl FnOnce() -> Count,
    ) -> bool {
        assert_eq!(cert.round, leader.round.plus(2), "certificates are at r+2");
        let per_leader = self.verdicts.entry(leader).or_default();
        if let Some(&v) = per_leader.get(&cert) {
            return v;
        }
        let c = count();
        if c.is_certificate || c.complete {
            per_leader.insert(cert, c.is_certificate);
        }
        c.is_certificate
    }

    #[cfg(test)]
    /// Number of leader blocks with memoized verdicts.
    pub fn leaders(&self) -> usize {
        self.verdicts.len()
    }

    #[cfg(test)]
    /// Number of memoized verdicts.
    pub fn len(&self) -> usize {
        self.verdicts.values().map(BTreeMap::len).sum()
    }

    #[cfg(test)]
    /// The lowest leader round with memoized verdicts.
    pub fn lowest_round(&self) -> Option<Round> {
        self.verdicts.keys().next().map(|r| r.round)
    }
}
