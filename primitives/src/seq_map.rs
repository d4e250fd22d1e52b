//! An ordered map of keys numbered in sequence (escrow and lock ids) whose
//! copies share its contents, chunk by chunk, until one of them writes.
//!
//! A [`CowMap`](crate::CowMap) shards by the leading bits of its keys: right for ids
//! and digests spread uniformly, useless for counters, whose live entries
//! all sit in one narrow, moving range. A [`SeqMap`] groups keys by their
//! number: each chunk holds the keys of 64 consecutive numbers in
//! an ordered map behind an [`Arc`], and the chunks sit, by number, in an
//! ordered map that is itself behind an [`Arc`]. A copy clones one pointer;
//! a write copies the chunk directory (a pointer per non-empty chunk) and
//! the one chunk it touches, when another version still shares them.
//!
//! A key's number never decreases as keys increase ([`SeqKey`]), so the
//! chunks in order are the map in key order: iteration, equality, `Debug`
//! and serialization are exactly those of the `BTreeMap` with the same
//! entries.
//!
//! ```
//! use idlegrid_primitives::{SeqKey, SeqMap};
//!
//! #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
//! struct Id(u64);
//! impl SeqKey for Id {
//!     fn seq(&self) -> u64 {
//!         self.0
//!     }
//! }
//! let mut a: SeqMap<Id, &str> = (0..200).map(|i| (Id(i), "x")).collect();
//! let b = a.clone();
//! a.insert(Id(7), "y");
//! assert_eq!((a.get(&Id(7)), b.get(&Id(7))), (Some(&"y"), Some(&"x")));
//! assert_eq!(a.shared_chunks_with(&b), 3, "only the written chunk was copied");
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

/// A chunk holds the keys of `1 << CHUNK_BITS` consecutive numbers.
const CHUNK_BITS: u32 = 6;

/// A key numbered in sequence.
pub trait SeqKey: Ord + Copy {
    /// The key's number: never smaller for a larger key.
    fn seq(&self) -> u64;
}

type Chunk<K, V> = Arc<BTreeMap<K, V>>;

/// An ordered map of sequence-numbered keys, shared chunk by chunk (see
/// the module docs).
pub struct SeqMap<K, V> {
    chunks: Arc<BTreeMap<u64, Chunk<K, V>>>,
    len: usize,
}

fn chunk_of<K: SeqKey>(key: &K) -> u64 {
    key.seq() >> CHUNK_BITS
}

impl<K: SeqKey, V: Clone> SeqMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self {
            chunks: Arc::new(BTreeMap::new()),
            len: 0,
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value at `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.chunks.get(&chunk_of(key))?.get(key)
    }

    /// True if `key` has a value.
    pub fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// Inserts `value` at `key`; returns the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let chunk = Arc::make_mut(&mut self.chunks)
            .entry(chunk_of(&key))
            .or_default();
        let old = Arc::make_mut(chunk).insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes `key`'s value (copying nothing when there is none).
    pub fn remove(&mut self, key: &K) -> Option<V> {
        if !self.contains_key(key) {
            return None;
        }
        let c = chunk_of(key);
        let chunks = Arc::make_mut(&mut self.chunks);
        let chunk = chunks.get_mut(&c)?;
        let old = Arc::make_mut(chunk).remove(key);
        if chunk.is_empty() {
            chunks.remove(&c);
        }
        self.len -= usize::from(old.is_some());
        old
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.chunks.values().flat_map(|c| c.iter())
    }

    /// Keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.iter().map(|(k, _)| k)
    }

    /// Values in key order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }

    /// Chunks this map and `other` share (neither has copied).
    pub fn shared_chunks_with(&self, other: &Self) -> usize {
        self.chunks
            .iter()
            .filter(|(c, a)| other.chunks.get(c).is_some_and(|b| Arc::ptr_eq(a, b)))
            .count()
    }
}

impl<K: SeqKey, V: Clone> Default for SeqMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

/// A copy shares every chunk (the point of the type).
impl<K, V> Clone for SeqMap<K, V> {
    fn clone(&self) -> Self {
        Self {
            chunks: Arc::clone(&self.chunks),
            len: self.len,
        }
    }
}

crate::cow_map::ordered_map_impls!(SeqMap, SeqKey);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
    struct Id(u64);
    impl SeqKey for Id {
        fn seq(&self) -> u64 {
            self.0
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64, u8),
        Remove(u64),
        Copy,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u64..2_000, any::<u8>()).prop_map(|(k, v)| Op::Insert(k, v)),
            (0u64..2_000).prop_map(Op::Remove),
            Just(Op::Copy),
        ]
    }

    proptest! {
        /// Any sequence of writes, with copies taken along the way, leaves
        /// every copy equal to a `BTreeMap` given the same writes up to its
        /// copy: in entries, order, length and serialized bytes.
        #[test]
        fn behaves_as_a_btree_map_and_copies_never_see_later_writes(
            ops in proptest::collection::vec(op(), 0..200),
        ) {
            let (mut m, mut b) = (SeqMap::<Id, u8>::new(), BTreeMap::new());
            let mut copies = Vec::new();
            for o in ops {
                match o {
                    Op::Insert(k, v) => prop_assert_eq!(m.insert(Id(k), v), b.insert(Id(k), v)),
                    Op::Remove(k) => prop_assert_eq!(m.remove(&Id(k)), b.remove(&Id(k))),
                    Op::Copy => copies.push((m.clone(), b.clone())),
                }
            }
            copies.push((m, b));
            for (m, b) in &copies {
                prop_assert_eq!(m.len(), b.len());
                prop_assert!(m.iter().eq(b.iter()));
                prop_assert_eq!(crate::encode(m), crate::encode(b));
                let back: SeqMap<Id, u8> = crate::decode(&crate::encode(b), 1 << 20).unwrap();
                prop_assert!(back == *m);
            }
        }
    }

    #[test]
    fn a_removal_of_nothing_copies_nothing() {
        let a: SeqMap<Id, u8> = (0..100).map(|i| (Id(i), 1)).collect();
        let mut b = a.clone();
        assert_eq!(b.remove(&Id(5_000)), None);
        assert!(Arc::ptr_eq(&a.chunks, &b.chunks));
        b.remove(&Id(3));
        assert_eq!(
            b.shared_chunks_with(&a),
            1,
            "the other chunk is still shared"
        );
    }
}
