//! Equivocation evidence: two signed headers of one author for one round.
//!
//! [`Evidence`] is self-contained: anyone holding the committee can check it
//! with [`Evidence::verify`] — no DAG, no validator state. The ledger turns
//! verified evidence into slashing. Headers commit to their transactions by
//! digest, so evidence stays small whatever the blocks carried.

use idlegrid_primitives::{Digest, NodeId, Round};
use serde::{Deserialize, Serialize};

use super::block::SignedHeader;
use super::committee::{AuthorityIndex, Committee};
use super::error::ConsensusError;

/// Proof that an authority signed two different blocks for one round.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Evidence {
    /// One block header (the one with the smaller digest).
    pub first: SignedHeader,
    /// The other block header.
    pub second: SignedHeader,
}

impl Evidence {
    /// Builds evidence from two headers in canonical order (smaller digest
    /// first), so that the same pair always yields the same value. Does not
    /// verify anything; see [`Evidence::verify`].
    pub fn new(a: SignedHeader, b: SignedHeader) -> Self {
        if a.header.digest() <= b.header.digest() {
            Self {
                first: a,
                second: b,
            }
        } else {
            Self {
                first: b,
                second: a,
            }
        }
    }

    /// The accused authority (as claimed; verify first).
    pub fn author(&self) -> AuthorityIndex {
        self.first.header.author
    }
    /// The round (as claimed; verify first).
    pub fn round(&self) -> Round {
        self.first.header.round
    }
    /// A digest identifying this evidence (for deduplication).
    pub fn digest(&self) -> Digest {
        Digest::of(
            idlegrid_primitives::Domain::new("idlegrid/dag/evidence"),
            self,
        )
    }

    /// Checks that both headers are by the same committee member for the
    /// same round, differ, and carry valid signatures of that member.
    /// Returns the equivocator's node id.
    pub fn verify(&self, committee: &Committee) -> Result<NodeId, ConsensusError> {
        let (a, b) = (&self.first.header, &self.second.header);
        if a.author != b.author || a.round != b.round {
            return Err(ConsensusError::EvidenceNotSameSlot);
        }
        if a.digest() == b.digest() {
            return Err(ConsensusError::EvidenceIdenticalBlocks);
        }
        let node = committee.authority(a.author)?.node;
        let pk = node.public_key();
        self.first.verify_signature(&pk)?;
        self.second.verify_signature(&pk)?;
        Ok(node)
    }
}
