//! The incremental state commitment behind [`super::Ledger::state_digest`].
//!
//! Hashing the whole state after every batch costs O(state): with ten
//! thousand accounts and a hundred validators that dominated a simulation.
//! Instead every entry (account, escrow, lock, slashed offense) has a leaf
//! digest over its key and canonical value; leaves fall into
//! [`BUCKETS`] buckets by key; a bucket digest covers its leaves in key
//! order; the state digest covers the scalar fields (parameters, supply,
//! burned, epoch, id counters) and the bucket digests. A batch re-hashes
//! only the entries it touched (the keys of the write journal, see
//! `StateTx::commit`) and the buckets they fall in: O(touched × bucket size),
//! not O(state).
//!
//! This is a two-level hash tree with a fixed fan-out, so the digest is as
//! collision resistant as blake3 and needs no new cryptography (unlike
//! homomorphic set hashes). [`StateCommitment::build`] recomputes it from
//! scratch; [`super::check_all`] compares the two, so an entry changed
//! behind the journal's back is caught.

use std::collections::{BTreeMap, BTreeSet};

use idlegrid_primitives::{AccountId, Amount, Digest, Domain, Epoch};
use serde::Serialize;

use super::genesis::Params;
use super::ids::{EscrowId, LockId};
use super::state::State;

/// Buckets of the commitment (its fan-out).
pub const BUCKETS: usize = 256;

const LEAF_DOMAIN: Domain = Domain::new("idlegrid/dag-ledger/state/leaf");
const BUCKET_DOMAIN: Domain = Domain::new("idlegrid/dag-ledger/state/bucket");
/// Domain label of the state digest.
pub const STATE_DOMAIN: Domain = Domain::new("idlegrid/dag-ledger/state");

/// The key of one state entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub(crate) enum EntryKey {
    Account(AccountId),
    Escrow(EscrowId),
    Lock(LockId),
    Slashed(Digest),
}

impl EntryKey {
    fn bucket(&self) -> usize {
        match self {
            // Byte 0 of a ristretto encoding is always even: use byte 1.
            Self::Account(id) => usize::from(id.as_bytes()[1]),
            Self::Slashed(d) => usize::from(d.as_bytes()[0]),
            // Ids are sequential: their low byte spreads them evenly.
            Self::Escrow(id) => (id.get() % BUCKETS as u64) as usize,
            Self::Lock(id) => (id.get() % BUCKETS as u64) as usize,
        }
    }

    /// The leaf digest of this entry in `state`, `None` if it is absent.
    fn leaf(&self, state: &State) -> Option<Digest> {
        match self {
            Self::Account(id) => state
                .accounts
                .get(id)
                .map(|a| Digest::of(LEAF_DOMAIN, &(self, a))),
            Self::Escrow(id) => state
                .escrows
                .get(id)
                .map(|e| Digest::of(LEAF_DOMAIN, &(self, e))),
            Self::Lock(id) => state
                .locks
                .get(id)
                .map(|l| Digest::of(LEAF_DOMAIN, &(self, l))),
            Self::Slashed(d) => state
                .slashed
                .contains(d)
                .then(|| Digest::of(LEAF_DOMAIN, self)),
        }
    }
}

/// Leaf and bucket digests of a state (not replicated: every node derives
/// it from its own state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StateCommitment {
    leaves: Vec<BTreeMap<EntryKey, Digest>>,
    buckets: Vec<Digest>,
}

#[derive(Serialize)]
struct Scalars<'a> {
    params: &'a Params,
    initial_supply: Amount,
    burned: Amount,
    epoch: Epoch,
    next_escrow: EscrowId,
    next_lock: LockId,
}

/// A bucket's digest: its leaves in key order (each leaf already commits
/// to its key, and leaves have a fixed size, so the concatenation is
/// unambiguous).
fn bucket_digest(leaves: &BTreeMap<EntryKey, Digest>) -> Digest {
    // One contiguous buffer lets blake3 hash whole chunks in parallel.
    let mut bytes = Vec::with_capacity(leaves.len() * 32);
    for d in leaves.values() {
        bytes.extend_from_slice(d.as_bytes());
    }
    Digest::hash(BUCKET_DOMAIN, &bytes)
}

impl StateCommitment {
    /// The commitment of `state`, computed from scratch.
    pub(crate) fn build(state: &State) -> Self {
        let mut leaves = vec![BTreeMap::new(); BUCKETS];
        let keys = state
            .accounts
            .keys()
            .map(|k| EntryKey::Account(*k))
            .chain(state.escrows.keys().map(|k| EntryKey::Escrow(*k)))
            .chain(state.locks.keys().map(|k| EntryKey::Lock(*k)))
            .chain(state.slashed.iter().map(|k| EntryKey::Slashed(*k)));
        for key in keys {
            if let Some(leaf) = key.leaf(state) {
                leaves[key.bucket()].insert(key, leaf);
            }
        }
        let buckets = leaves.iter().map(bucket_digest).collect();
        Self { leaves, buckets }
    }

    /// Re-hashes the entries in `touched` (present or removed) and their
    /// buckets.
    pub(crate) fn update(&mut self, state: &State, touched: &BTreeSet<EntryKey>) {
        let mut dirty = BTreeSet::new();
        for key in touched {
            let b = key.bucket();
            let changed = match key.leaf(state) {
                Some(leaf) => self.leaves[b].insert(*key, leaf) != Some(leaf),
                None => self.leaves[b].remove(key).is_some(),
            };
            if changed {
                dirty.insert(b);
            }
        }
        for b in dirty {
            self.buckets[b] = bucket_digest(&self.leaves[b]);
        }
    }

    /// The state digest: the scalar fields and every bucket digest.
    pub(crate) fn digest(&self, state: &State) -> Digest {
        let scalars = Scalars {
            params: &state.params,
            initial_supply: state.initial_supply,
            burned: state.burned,
            epoch: state.epoch,
            next_escrow: state.next_escrow,
            next_lock: state.next_lock,
        };
        Digest::of(STATE_DOMAIN, &(scalars, &self.buckets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Genesis, Ledger, check_commitment};
    use idlegrid_primitives::{Keypair, Seed};

    fn ledger(n: u64) -> Ledger {
        let balances = (0..n)
            .map(|i| {
                let id = Keypair::from_seed(&Seed::from_u64(i)).account_id();
                (id, Amount::new(1_000 + u128::from(i)))
            })
            .collect();
        Ledger::new(Genesis {
            balances,
            stakes: vec![],
            params: Params::default(),
        })
        .unwrap()
    }

    #[test]
    fn a_change_behind_the_journal_is_caught_and_every_entry_counts() {
        let mut l = ledger(40);
        check_commitment(&l).unwrap();
        let before = l.state_digest();
        let id = *l.state.accounts.keys().nth(7).unwrap();
        l.state.accounts.get_mut(&id).unwrap().balance = Amount::new(1);
        // The kept digest did not see it; the recomputation does.
        assert_eq!(l.state_digest(), before);
        assert!(check_commitment(&l).is_err());
        // Updating the touched key brings them back together, with a new digest.
        let touched = BTreeSet::from([EntryKey::Account(id)]);
        l.commitment.update(&l.state, &touched);
        check_commitment(&l).unwrap();
        assert_ne!(l.state_digest(), before);
        // Removing an entry changes the digest too, and so does a scalar.
        l.state.accounts.remove(&id);
        l.commitment.update(&l.state, &touched);
        check_commitment(&l).unwrap();
        let removed = l.state_digest();
        l.state.epoch = Epoch::new(9);
        assert_ne!(l.state_digest(), removed);
    }

    #[test]
    fn entries_spread_over_buckets() {
        let l = ledger(2_000);
        let used = l.commitment.leaves.iter().filter(|b| !b.is_empty()).count();
        assert!(used > BUCKETS * 9 / 10, "{used} buckets used");
    }
}
