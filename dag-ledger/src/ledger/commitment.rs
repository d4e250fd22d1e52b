//! The incremental state commitment behind [`super::Ledger::state_digest`].
//!
//! Hashing the whole state after every batch costs O(state): with ten
//! thousand accounts and a hundred validators that dominated a simulation.
//! Instead every entry (account, escrow, lock, slashed offense) has a leaf
//! digest over its key and canonical value; leaves fall into
//! [`BUCKETS`] buckets by key; a bucket digest covers its leaves in key
//! order; the bucket root covers the bucket digests; the state digest
//! covers the scalar fields (parameters, supply, burned, epoch, id
//! counters) and the bucket root. A batch re-hashes only the entries it
//! touched (the keys of the write journal, see `StateTx::commit`), the
//! buckets they fall in and the root: O(touched × bucket size + buckets),
//! not O(state). Reading the digest hashes only the scalars and the root,
//! so it is cheap however often it is asked for.
//!
//! This is a hash tree with a fixed fan-out, so the digest is as collision
//! resistant as blake3 and needs no new cryptography (unlike homomorphic
//! set hashes). [`StateCommitment::build`] recomputes it from scratch;
//! [`super::check_all`] compares the two, so an entry changed behind the
//! journal's back is caught.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use idlegrid_primitives::{AccountId, Amount, Digest, DigestHasher, Domain, Epoch};
use serde::Serialize;

use super::genesis::Params;
use super::ids::{EscrowId, LockId};
use super::state::State;

/// Buckets of the commitment (its fan-out).
pub const BUCKETS: usize = 256;

const LEAF_DOMAIN: Domain = Domain::new("idlegrid/dag-ledger/state/leaf");
const BUCKET_DOMAIN: Domain = Domain::new("idlegrid/dag-ledger/state/bucket");
const ROOT_DOMAIN: Domain = Domain::new("idlegrid/dag-ledger/state/buckets");
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
    fn leaf(&self, state: &State, h: &Hashers) -> Option<Digest> {
        match self {
            Self::Account(id) => state.accounts.get(id).map(|a| h.leaf(&(self, a))),
            Self::Escrow(id) => state.escrows.get(id).map(|e| h.leaf(&(self, e))),
            Self::Lock(id) => state.locks.get(id).map(|l| h.leaf(&(self, l))),
            Self::Slashed(d) => state.slashed.contains(d).then(|| h.leaf(self)),
        }
    }
}

/// The keys of the entries a batch wrote, in the order written, repeats
/// and all: grouped by bucket and deduplicated once, by
/// [`StateCommitment::update`] (a `Vec` pushed per write; a sorted set
/// searched and rebalanced at every write cost a fifth of applying a batch
/// of transfers). Bounded by the batch's write journal.
#[derive(Debug, Default)]
pub(crate) struct Touched(Vec<EntryKey>);

impl Touched {
    /// Notes a write to `key`.
    pub(crate) fn add(&mut self, key: EntryKey) {
        self.0.push(key);
    }

    /// The keys grouped by bucket by a counting sort (one pass counts, one
    /// places: a comparison sort of them cost a fifth of applying a batch
    /// of transfers), repeats and all; bucket `b`'s keys end at `ends[b]`.
    fn grouped(self) -> (Vec<EntryKey>, [usize; BUCKETS]) {
        let keys = self.0;
        let mut ends = [0usize; BUCKETS];
        for k in &keys {
            ends[k.bucket()] += 1;
        }
        let mut starts = [0usize; BUCKETS];
        let mut sum = 0;
        for (s, e) in starts.iter_mut().zip(ends.iter_mut()) {
            *s = sum;
            sum += *e;
            *e = sum;
        }
        let Some(&filler) = keys.first() else {
            return (keys, ends);
        };
        let mut out = vec![filler; keys.len()];
        for k in keys {
            let s = &mut starts[k.bucket()];
            out[*s] = k;
            *s += 1;
        }
        debug_assert_eq!(starts, ends);
        (out, ends)
    }
}

/// Leaf and bucket digests of a state and their root (not replicated:
/// every node derives it from its own state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StateCommitment {
    /// Each bucket behind its own `Arc`: a copy of the state shares the
    /// buckets, and a batch copies only those it changes.
    leaves: Vec<Arc<BTreeMap<EntryKey, Digest>>>,
    buckets: Vec<Digest>,
    /// Over `buckets`, kept up to date on every write.
    root: Digest,
}

/// The root over the bucket digests (fixed size and count: their
/// concatenation is unambiguous).
fn bucket_root(buckets: &[Digest]) -> Digest {
    assert_eq!(buckets.len(), BUCKETS);
    // One contiguous buffer lets blake3 hash whole chunks in parallel.
    let mut bytes = [0u8; BUCKETS * 32];
    for (out, b) in bytes.chunks_exact_mut(32).zip(buckets) {
        out.copy_from_slice(b.as_bytes());
    }
    Digest::hash(ROOT_DOMAIN, &bytes)
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

impl<'a> Scalars<'a> {
    fn of(state: &'a State) -> Self {
        Self {
            params: &state.params,
            initial_supply: state.initial_supply,
            burned: state.burned,
            epoch: state.epoch,
            next_escrow: state.next_escrow,
            next_lock: state.next_lock,
        }
    }
}

/// The commitment's hashing: leaves and buckets under their domains, and
/// the digest of an empty bucket (most of them in a small state) computed
/// once per process. The domains' context keys are remembered per thread by
/// `idlegrid_primitives` itself.
struct Hashers {
    empty_bucket: Digest,
}

/// Leaves of a bucket hashed from a stack buffer (more go through the heap).
const STACK_LEAVES: usize = 8;

impl Hashers {
    fn get() -> &'static Self {
        static H: OnceLock<Hashers> = OnceLock::new();
        H.get_or_init(|| Self {
            empty_bucket: DigestHasher::new(BUCKET_DOMAIN).finalize(),
        })
    }

    /// A leaf's digest: its canonical encoding streamed into the hasher,
    /// with no intermediate buffer.
    fn leaf<T: Serialize>(&self, value: &T) -> Digest {
        Digest::of(LEAF_DOMAIN, value)
    }

    /// A bucket's digest: its leaves in key order (each leaf already
    /// commits to its key, and leaves have a fixed size, so the
    /// concatenation is unambiguous).
    ///
    /// Callers check for an empty bucket first (`empty_bucket`): a ledger
    /// has mostly empty buckets, and under AddressSanitizer even a call
    /// that returns at once sets up this function's large frame (hence
    /// never inlined into the loop over all buckets either).
    #[inline(never)]
    fn bucket(&self, leaves: &BTreeMap<EntryKey, Digest>) -> Digest {
        // One contiguous update: blake3 hashes whole chunks in parallel
        // and pays its per-call cost once.
        let mut h = DigestHasher::new(BUCKET_DOMAIN);
        if leaves.len() <= STACK_LEAVES {
            let mut bytes = [0u8; STACK_LEAVES * 32];
            for (out, d) in bytes.chunks_exact_mut(32).zip(leaves.values()) {
                out.copy_from_slice(d.as_bytes());
            }
            h.update(&bytes[..leaves.len() * 32]);
        } else {
            let bytes: Vec<u8> = leaves.values().flat_map(|d| d.to_bytes()).collect();
            h.update(&bytes);
        }
        h.finalize()
    }

    /// [`Hashers::bucket`], or the empty bucket's digest.
    fn bucket_or_empty(&self, leaves: &BTreeMap<EntryKey, Digest>) -> Digest {
        if leaves.is_empty() {
            self.empty_bucket
        } else {
            self.bucket(leaves)
        }
    }
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
        let h = Hashers::get();
        for key in keys {
            if let Some(leaf) = key.leaf(state, h) {
                leaves[key.bucket()].insert(key, leaf);
            }
        }
        let buckets: Vec<Digest> = leaves.iter().map(|l| h.bucket_or_empty(l)).collect();
        let root = bucket_root(&buckets);
        Self {
            leaves: leaves.into_iter().map(Arc::new).collect(),
            buckets,
            root,
        }
    }

    /// Re-hashes the entries in `touched` (present or removed), their
    /// buckets and the root.
    pub(crate) fn update(&mut self, state: &State, touched: Touched) {
        if touched.0.is_empty() {
            return;
        }
        let (mut keys, ends) = touched.grouped();
        let h = Hashers::get();
        let (mut start, mut any) = (0, false);
        for (b, &end) in ends.iter().enumerate() {
            let group = &mut keys[start..end];
            start = end;
            // A bucket's few keys: sorted so that repeats are adjacent.
            group.sort_unstable();
            let mut changed = false;
            for (i, key) in group.iter().enumerate() {
                if i == 0 || group[i - 1] != *key {
                    changed |= self.rehash_leaf(state, h, b, key);
                }
            }
            if changed {
                self.buckets[b] = h.bucket_or_empty(&self.leaves[b]);
                any = true;
            }
        }
        if any {
            self.root = bucket_root(&self.buckets);
        }
    }

    /// Re-hashes the leaf of `key` (in bucket `b`); true if it changed.
    fn rehash_leaf(&mut self, state: &State, h: &Hashers, b: usize, key: &EntryKey) -> bool {
        // Looked up first: writing copies a bucket another copy of the
        // state shares.
        match key.leaf(state, h) {
            Some(leaf) if self.leaves[b].get(key) != Some(&leaf) => {
                Arc::make_mut(&mut self.leaves[b]).insert(*key, leaf);
                true
            }
            None if self.leaves[b].contains_key(key) => {
                Arc::make_mut(&mut self.leaves[b]).remove(key);
                true
            }
            _ => false,
        }
    }

    /// The state digest: the scalar fields and the bucket root.
    pub(crate) fn digest(&self, state: &State) -> Digest {
        Digest::of(STATE_DOMAIN, &(Scalars::of(state), self.root))
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
        let touched = || Touched(vec![EntryKey::Account(id)]);
        l.commitment.update(&l.state, touched());
        check_commitment(&l).unwrap();
        assert_ne!(l.state_digest(), before);
        // Removing an entry changes the digest too, and so does a scalar.
        l.state.accounts.remove(&id);
        l.commitment.update(&l.state, touched());
        check_commitment(&l).unwrap();
        let removed = l.state_digest();
        l.state.epoch = Epoch::new(9);
        assert_ne!(l.state_digest(), removed);
    }

    /// A copy of the ledger shares its accounts and leaf buckets with the
    /// original until one of them writes, and then only what the write
    /// touched is copied: the other keeps its contents and its digest.
    #[test]
    fn a_copy_shares_all_but_what_a_write_touches() {
        let mut l = ledger(3_000);
        let copy = l.clone();
        let shards = |a: &Ledger| a.state.accounts.shared_shards_with(&copy.state.accounts);
        let buckets = |a: &Ledger| {
            let pairs = a.commitment.leaves.iter().zip(&copy.commitment.leaves);
            pairs.filter(|(x, y)| Arc::ptr_eq(x, y)).count()
        };
        let (all_shards, before) = (shards(&l), copy.state_digest());
        assert_eq!(buckets(&l), BUCKETS);
        let id = *l.state.accounts.keys().nth(1_234).unwrap();
        l.state.accounts.get_mut(&id).unwrap().balance = Amount::new(1);
        l.commitment
            .update(&l.state, Touched(vec![EntryKey::Account(id)]));
        assert_eq!(shards(&l), all_shards - 1);
        assert_eq!(buckets(&l), BUCKETS - 1);
        assert_eq!(copy.state_digest(), before);
        check_commitment(&copy).unwrap();
        check_commitment(&l).unwrap();
        assert_ne!(l.state_digest(), before);
        // Rewriting a leaf with its own value copies nothing.
        let written = EntryKey::Account(id).bucket();
        let same = l.state.accounts.keys().map(|k| EntryKey::Account(*k));
        let same = same.filter(|k| k.bucket() != written).nth(99).unwrap();
        l.commitment.update(&l.state, Touched(vec![same]));
        assert_eq!(buckets(&l), BUCKETS - 1);
    }

    /// The definition the kept commitment must match: every leaf over its
    /// key and value, every bucket digest over its leaves' concatenation,
    /// the root over the buckets', the state digest over the canonical
    /// encoding of the scalars and the root.
    fn reference_digest(l: &Ledger) -> Digest {
        let c = &l.commitment;
        for (id, a) in &l.state.accounts {
            let key = EntryKey::Account(*id);
            let leaf = c.leaves[key.bucket()][&key];
            assert_eq!(leaf, Digest::of(LEAF_DOMAIN, &(key, a)));
        }
        for (leaves, bucket) in c.leaves.iter().zip(&c.buckets) {
            let bytes: Vec<u8> = leaves.values().flat_map(|d| d.to_bytes()).collect();
            assert_eq!(*bucket, Digest::hash(BUCKET_DOMAIN, &bytes));
        }
        let all: Vec<u8> = c.buckets.iter().flat_map(|d| d.to_bytes()).collect();
        let root = Digest::hash(ROOT_DOMAIN, &all);
        Digest::of(STATE_DOMAIN, &(Scalars::of(&l.state), root))
    }

    #[test]
    fn kept_digests_match_the_definition() {
        for n in [0, 1, 40, 600] {
            let mut l = ledger(n);
            assert_eq!(l.state_digest(), reference_digest(&l), "n = {n}");
            assert_eq!(l.state_digest_recomputed(), l.state_digest());
            // After an incremental update and a scalar change too.
            let first = l.state.accounts.keys().next().copied();
            if let Some(id) = first {
                l.state.accounts.get_mut(&id).unwrap().balance = Amount::new(3);
                // Written twice: one re-hash, the same digest.
                let touched = Touched(vec![EntryKey::Account(id); 2]);
                l.commitment.update(&l.state, touched);
            }
            l.state.epoch = Epoch::new(5);
            assert_eq!(l.state_digest(), reference_digest(&l), "n = {n}, changed");
        }
    }

    #[test]
    fn entries_spread_over_buckets() {
        let l = ledger(2_000);
        let used = l.commitment.leaves.iter().filter(|b| !b.is_empty()).count();
        assert!(used > BUCKETS * 9 / 10, "{used} buckets used");
    }
}
