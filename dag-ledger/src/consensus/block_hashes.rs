//! What hashing a block computes, remembered in the block.
//!
//! Every recipient of a block checks it: the header's digest (its identity,
//! what the signature signs) and the transactions' digest against the
//! header. Blocks travel as
//! `Arc<Block>`, so in one process (the simulator's validators, or a node
//! handing a block to its store, its fetch responses and its peers) they
//! are one allocation: [`HashMemo`] lets the first check pay for hashing
//! and every later one read the result — header encoding and hashing once
//! per block per process.
//!
//! The memo can never return a stale result, whatever a caller does with
//! the block's public fields. It keeps a copy of the header it hashed and
//! the transactions' shared byte buffers (pointer copies; a
//! [`Transaction`] is immutable), and answers only when the block's header
//! is equal and its transactions are the very same buffers. Comparing a
//! header costs a few hundred nanoseconds where encoding and hashing it
//! cost microseconds. Otherwise the hashes are recomputed (and not
//! stored: the memo is written once). A cloned block starts with an empty
//! memo, so a clone altered by a test or a Byzantine wrapper simply hashes
//! again. The memo is never serialized and is ignored by `==`.
//!
//! The same entry remembers that the block passed its structural check
//! ([`Block::verify_structure`](super::Block::verify_structure)) for one
//! committee and one set of size limits ([`StructureKey`]): a pure function
//! of the fields the entry was checked against, so every later recipient
//! with the same committee and limits skips the walk over its parents. A
//! failed check is not remembered (it is cheap to repeat and rare).

use std::sync::OnceLock;

use idlegrid_primitives::{CacheCell, Digest};

use super::block::{BlockHeader, Transaction};

/// The results of hashing one block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Hashes {
    /// The header's digest (the block's identity).
    pub(super) header: Digest,
    /// The digest of the transactions actually carried.
    pub(super) transactions: Digest,
}

/// What a block's structural check depends on besides the block: the
/// committee (by digest) and the size limits of the configuration.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct StructureKey {
    pub(super) committee: Digest,
    pub(super) limits: [usize; 3],
}

/// What was hashed, and the results.
struct Hashed {
    header: BlockHeader,
    transactions: Vec<Transaction>,
    hashes: Hashes,
    /// The key of the first structural check this block passed (a failed
    /// one is not remembered).
    structure: OnceLock<StructureKey>,
}

/// A write-once memo of a block's [`Hashes`]; see the module docs. Empty
/// in a clone, ignored by `==` ([`CacheCell`]).
#[derive(Default, Clone, PartialEq, Eq, Debug)]
pub(super) struct HashMemo(CacheCell<Box<Hashed>>);

impl HashMemo {
    /// The remembered hashes, if they are for exactly this header and these
    /// transaction buffers.
    pub(super) fn get(&self, header: &BlockHeader, transactions: &[Transaction]) -> Option<Hashes> {
        self.entry(header, transactions).map(|h| h.hashes)
    }

    /// The remembered hashes, as [`Self::get`], if this block also passed
    /// the structural check of `key`.
    pub(super) fn get_checked(
        &self,
        header: &BlockHeader,
        transactions: &[Transaction],
        key: &StructureKey,
    ) -> Option<Hashes> {
        let h = self.entry(header, transactions)?;
        (h.structure.get() == Some(key)).then_some(h.hashes)
    }

    /// Remembers that the block passed the structural check of `key`, if
    /// its hashes are remembered (for this header and these buffers) and
    /// no other check is.
    pub(super) fn remember_checked(
        &self,
        header: &BlockHeader,
        transactions: &[Transaction],
        key: StructureKey,
    ) {
        if let Some(h) = self.entry(header, transactions) {
            let _ = h.structure.set(key);
        }
    }

    fn entry(&self, header: &BlockHeader, transactions: &[Transaction]) -> Option<&Hashed> {
        let h = self.0.get()?;
        let same = h.header == *header
            && h.transactions.len() == transactions.len()
            && h.transactions
                .iter()
                .zip(transactions)
                .all(|(a, b)| a.shares_bytes(b));
        same.then_some(&**h)
    }

    /// Remembers `hashes` for `header` and `transactions`, unless something
    /// is remembered already.
    pub(super) fn remember(
        &self,
        header: &BlockHeader,
        transactions: &[Transaction],
        hashes: Hashes,
    ) {
        let _ = self.0.get_or_init(|| {
            Box::new(Hashed {
                header: header.clone(),
                transactions: transactions.to_vec(),
                hashes,
                structure: OnceLock::new(),
            })
        });
    }

    /// True if something is remembered (for tests).
    #[cfg(test)]
    pub(super) fn is_set(&self) -> bool {
        self.0.get().is_some()
    }
}
