//! Invariant checkers shared by tests, the simulator and auditors.
//!
//! Each returns `Ok(())` or a [`InvariantViolation`] that says what broke
//! and where; none panics.

use std::collections::{BTreeMap, BTreeSet};

use idlegrid_primitives::Digest;
use thiserror::Error;

use super::block::{BlockRef, Transaction};
use super::dag::DagStore;
use super::linearizer::CommittedSubDag;

/// A broken consensus invariant.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InvariantViolation {
    /// Two validators' commit sequences diverge.
    #[error("validators {a} and {b} diverge at commit index {index}")]
    Divergence {
        /// First validator (position in the input).
        a: usize,
        /// Second validator.
        b: usize,
        /// First differing index.
        index: usize,
    },
    /// Commit indices are not 0, 1, 2, …
    #[error("commit index {found} at position {position}")]
    IndexGap {
        /// Position in the sequence.
        position: usize,
        /// Index found there.
        found: u64,
    },
    /// A transaction was output twice.
    #[error("transaction {0:?} committed twice")]
    DuplicateTransaction(Transaction),
    /// A block was ordered twice.
    #[error("block {0:?} ordered twice")]
    DuplicateBlock(BlockRef),
    /// A block was ordered before one of its parents.
    #[error("block {block:?} ordered before its parent {parent:?}")]
    CausalityViolated {
        /// The block.
        block: BlockRef,
        /// Its parent that came later.
        parent: BlockRef,
    },
}

/// Safety: every validator's sequence of running commit digests is a prefix
/// of every longer one. Input: one digest sequence per validator (the
/// `digest` of each [`CommittedSubDag`], in order).
pub fn check_prefix_consistency<S: AsRef<[Digest]>>(
    sequences: &[S],
) -> Result<(), InvariantViolation> {
    // Compare everyone with the longest sequence.
    let Some((longest, _)) = sequences
        .iter()
        .enumerate()
        .max_by_key(|(_, s)| s.as_ref().len())
    else {
        return Ok(());
    };
    let reference = sequences[longest].as_ref();
    for (i, s) in sequences.iter().enumerate() {
        if let Some(index) = s.as_ref().iter().zip(reference).position(|(x, y)| x != y) {
            return Err(InvariantViolation::Divergence {
                a: i,
                b: longest,
                index,
            });
        }
    }
    Ok(())
}

/// One validator's sub-DAG sequence: indices are gap-free from 0, no block
/// and no transaction (by bytes) appears twice.
///
/// Transactions are compared by bytes, so callers submitting the same bytes
/// twice will see a duplicate here by design.
pub fn check_commit_sequence(subdags: &[CommittedSubDag]) -> Result<(), InvariantViolation> {
    let mut blocks = BTreeSet::new();
    let mut txs = BTreeSet::new();
    for (position, s) in subdags.iter().enumerate() {
        if s.index != position as u64 {
            return Err(InvariantViolation::IndexGap {
                position,
                found: s.index,
            });
        }
        for b in &s.blocks {
            if !blocks.insert(*b) {
                return Err(InvariantViolation::DuplicateBlock(*b));
            }
        }
        for t in &s.transactions {
            if !txs.insert(t) {
                return Err(InvariantViolation::DuplicateTransaction(t.clone()));
            }
        }
    }
    Ok(())
}

/// Causality: in the concatenated block order, every block present in
/// `store` comes after each of its parents that is also ordered.
pub fn check_causal_order(order: &[BlockRef], store: &DagStore) -> Result<(), InvariantViolation> {
    let pos: BTreeMap<BlockRef, usize> = order.iter().enumerate().map(|(i, r)| (*r, i)).collect();
    for (i, r) in order.iter().enumerate() {
        let Some(b) = store.get(r) else { continue };
        for p in b.parents() {
            if pos.get(p).is_some_and(|&j| j > i) {
                return Err(InvariantViolation::CausalityViolated {
                    block: *r,
                    parent: *p,
                });
            }
        }
    }
    Ok(())
}
