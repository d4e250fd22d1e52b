//! An ordered map whose copies share its contents, shard by shard, until
//! one of them writes.
//!
//! Replicated state is copied whole whenever two versions must live at
//! once, as in a simulator whose validators share one state (the first to
//! apply a commit copies it while the others still hold the old one). With
//! a plain
//! `BTreeMap`, a copy costs every entry (and an allocation for every entry
//! that owns one), and dropping the old version frees them all, however few
//! entries the batch changed. A [`CowMap`] keeps its entries in
//! [`SHARDS`] ordered shards, each behind an [`Arc`]: a copy clones the
//! shard pointers, and a write copies only the shard it touches
//! ([`Arc::make_mut`]) when another version still shares it.
//!
//! Keys say which shard they belong to ([`ShardKey`]) by a value that never
//! decreases as keys increase (the leading bits of an id or digest), so
//! the shards, taken in order, are the map in key order: iteration,
//! equality, `Debug` and serialization are exactly those of the
//! `BTreeMap` with the same entries (a snapshot's bytes do not change).
//!
//! ```
//! use idlegrid_primitives::{AccountId, CowMap};
//!
//! let ids: Vec<AccountId> = (0u8..3).map(|b| AccountId::from_bytes([b * 100; 32])).collect();
//! let mut a = CowMap::new();
//! for (n, id) in ids.iter().enumerate() {
//!     a.insert(*id, n as u64);
//! }
//! let b = a.clone();
//! *a.get_mut(&ids[1]).unwrap() = 9;
//! assert_eq!((a.get(&ids[1]), b.get(&ids[1])), (Some(&9), Some(&1)));
//! assert_eq!(a.shared_shards_with(&b), 2, "only the written shard was copied");
//! let keys: Vec<_> = a.keys().copied().collect();
//! assert_eq!(keys, ids, "in key order");
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{AccountId, Digest, NodeId};

/// Shards of a [`CowMap`]: with uniformly spread keys a batch that writes
/// `w` entries of an `n`-entry map copies about `min(w, SHARDS) · n /
/// SHARDS` of them.
pub const SHARDS: usize = 1 << SHARD_BITS;
const SHARD_BITS: u32 = 10;

/// A key that names its shard of a [`CowMap`].
pub trait ShardKey: Ord {
    /// The key's shard, below [`SHARDS`], and never smaller for a larger
    /// key (`a <= b` implies `a.shard() <= b.shard()`).
    fn shard(&self) -> usize;
}

/// The leading [`SHARD_BITS`] bits of 32 big-endian-ordered bytes.
fn leading_bits(b: &[u8; 32]) -> usize {
    (usize::from(u16::from_be_bytes([b[0], b[1]])) >> (16 - SHARD_BITS)) & (SHARDS - 1)
}

macro_rules! shard_by_leading_bits {
    ($($t:ty),*) => {$(
        impl ShardKey for $t {
            fn shard(&self) -> usize {
                leading_bits(self.as_bytes())
            }
        }
    )*};
}
shard_by_leading_bits!(AccountId, NodeId, Digest);

/// A pair orders by its first part first, so it shards by it.
impl<A: ShardKey, B: Ord> ShardKey for (A, B) {
    fn shard(&self) -> usize {
        self.0.shard()
    }
}

/// One shard: `None` when empty (no allocation).
type Shard<K, V> = Option<Arc<BTreeMap<K, V>>>;

/// An ordered map of sharded, shared contents (see the module docs).
pub struct CowMap<K, V> {
    shards: Box<[Shard<K, V>]>,
    len: usize,
}

impl<K: ShardKey + Clone, V: Clone> CowMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| None).collect(),
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
        self.shards[key.shard()].as_ref()?.get(key)
    }

    /// True if `key` has a value.
    pub fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// The value at `key`, to change: its shard is copied first if another
    /// version of the map shares it (and only if `key` is present).
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let shard = self.shards[key.shard()].as_mut()?;
        if !shard.contains_key(key) {
            return None;
        }
        Arc::make_mut(shard).get_mut(key)
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let shard = self.shards[key.shard()].get_or_insert_with(Default::default);
        let old = Arc::make_mut(shard).insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// The value at `key`, inserting `make()` first if there is none.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let shard = self.shards[key.shard()].get_or_insert_with(Default::default);
        let map = Arc::make_mut(shard);
        if !map.contains_key(&key) {
            self.len += 1;
        }
        map.entry(key).or_insert_with(make)
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let slot = &mut self.shards[key.shard()];
        let shard = slot.as_mut()?;
        if !shard.contains_key(key) {
            return None;
        }
        let map = Arc::make_mut(shard);
        let old = map.remove(key);
        if map.is_empty() {
            *slot = None;
        }
        self.len -= 1;
        old
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flatten().flat_map(|m| m.iter())
    }

    /// Keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.iter().map(|(k, _)| k)
    }

    /// Values in key order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }

    /// Shards this map and `other` share (neither has copied), counted
    /// over the non-empty ones: how much of a copy a batch left shared.
    pub fn shared_shards_with(&self, other: &Self) -> usize {
        self.shards
            .iter()
            .zip(other.shards.iter())
            .filter(|(a, b)| matches!((a, b), (Some(a), Some(b)) if Arc::ptr_eq(a, b)))
            .count()
    }
}

impl<K: ShardKey + Clone, V: Clone> Default for CowMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

/// A copy shares every shard (the point of the type).
impl<K, V> Clone for CowMap<K, V> {
    fn clone(&self) -> Self {
        Self {
            shards: self.shards.clone(),
            len: self.len,
        }
    }
}

/// The value at `key`; panics if there is none (as `BTreeMap` does).
impl<K: ShardKey + Clone, V: Clone> std::ops::Index<&K> for CowMap<K, V> {
    type Output = V;
    fn index(&self, key: &K) -> &V {
        self.get(key).expect("no entry for the key")
    }
}

impl<'a, K: ShardKey + Clone, V: Clone> IntoIterator for &'a CowMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Box<dyn Iterator<Item = (&'a K, &'a V)> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// The impls an ordered map of shared chunks has like a `BTreeMap`, given
/// `len()`, `iter()` in key order and `insert`: collecting, equality,
/// `Debug`, and serialization as the `BTreeMap` with the same entries
/// (same bytes).
macro_rules! ordered_map_impls {
    ($map:ident, $key:path) => {
        impl<K: $key + Clone, V: Clone> FromIterator<(K, V)> for $map<K, V> {
            fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
                let mut m = Self::new();
                for (k, v) in entries {
                    m.insert(k, v);
                }
                m
            }
        }

        impl<K: $key + Clone, V: Clone + PartialEq> PartialEq for $map<K, V> {
            fn eq(&self, other: &Self) -> bool {
                self.len() == other.len() && self.iter().eq(other.iter())
            }
        }

        impl<K: $key + Clone, V: Clone + Eq> Eq for $map<K, V> {}

        impl<K: $key + Clone + std::fmt::Debug, V: Clone + std::fmt::Debug> std::fmt::Debug
            for $map<K, V>
        {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_map().entries(self.iter()).finish()
            }
        }

        impl<K: $key + Clone + serde::Serialize, V: Clone + serde::Serialize> serde::Serialize
            for $map<K, V>
        {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(self.len()))?;
                for (k, v) in self.iter() {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }

        impl<'de, K, V> serde::Deserialize<'de> for $map<K, V>
        where
            K: $key + Clone + serde::Deserialize<'de>,
            V: Clone + serde::Deserialize<'de>,
        {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok(std::collections::BTreeMap::<K, V>::deserialize(d)?
                    .into_iter()
                    .collect())
            }
        }
    };
}
pub(crate) use ordered_map_impls;

ordered_map_impls!(CowMap, ShardKey);

/// An ordered set shared shard by shard like a [`CowMap`] (its keys with
/// no values); serialized as the `BTreeSet` with the same elements.
pub struct CowSet<K>(CowMap<K, ()>);

impl<K: ShardKey + Clone> CowSet<K> {
    /// An empty set.
    pub fn new() -> Self {
        Self(CowMap::new())
    }

    /// Elements held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if no element is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True if `key` is in the set.
    pub fn contains(&self, key: &K) -> bool {
        self.0.contains_key(key)
    }

    /// Adds `key`; false if it was there (nothing is copied then).
    pub fn insert(&mut self, key: K) -> bool {
        !self.contains(&key) && self.0.insert(key, ()).is_none()
    }

    /// Removes `key`; false if it was not there.
    pub fn remove(&mut self, key: &K) -> bool {
        self.0.remove(key).is_some()
    }

    /// Elements in order.
    pub fn iter(&self) -> impl Iterator<Item = &K> {
        self.0.keys()
    }
}

impl<K: ShardKey + Clone> Default for CowSet<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K> Clone for CowSet<K> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<K: ShardKey + Clone> PartialEq for CowSet<K> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<K: ShardKey + Clone> Eq for CowSet<K> {}

impl<K: ShardKey + Clone> FromIterator<K> for CowSet<K> {
    fn from_iter<I: IntoIterator<Item = K>>(keys: I) -> Self {
        Self(keys.into_iter().map(|k| (k, ())).collect())
    }
}

impl<K: ShardKey + Clone + std::fmt::Debug> std::fmt::Debug for CowSet<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl<K: ShardKey + Clone + Serialize> Serialize for CowSet<K> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for k in self.iter() {
            seq.serialize_element(k)?;
        }
        seq.end()
    }
}

impl<'de, K: ShardKey + Clone + Deserialize<'de>> Deserialize<'de> for CowSet<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(std::collections::BTreeSet::<K>::deserialize(d)?
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn id(b: u16) -> AccountId {
        let mut bytes = [0u8; 32];
        bytes[..2].copy_from_slice(&b.to_be_bytes());
        bytes[31] = b as u8;
        AccountId::from_bytes(bytes)
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, u32),
        Remove(u16),
        Change(u16, u32),
        GetOrInsert(u16, u32),
        Copy,
    }

    fn op() -> impl Strategy<Value = Op> {
        // Keys from a small set, so writes hit present and absent keys and
        // share shards (the low byte varies within a shard).
        let key = prop_oneof![0u16..64, any::<u16>()];
        prop_oneof![
            (key.clone(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            key.clone().prop_map(Op::Remove),
            (key.clone(), any::<u32>()).prop_map(|(k, v)| Op::Change(k, v)),
            (key, any::<u32>()).prop_map(|(k, v)| Op::GetOrInsert(k, v)),
            Just(Op::Copy),
        ]
    }

    proptest! {
        /// Every operation does to a `CowMap` what it does to a `BTreeMap`,
        /// and copies taken along the way keep the contents they had:
        /// writes to one version never show through another.
        #[test]
        fn behaves_as_a_btree_map_and_copies_stay_put(ops in prop::collection::vec(op(), 1..200)) {
            let (mut map, mut model) = (CowMap::new(), BTreeMap::new());
            let mut copies: Vec<(CowMap<AccountId, u32>, BTreeMap<AccountId, u32>)> = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => prop_assert_eq!(map.insert(id(k), v), model.insert(id(k), v)),
                    Op::Remove(k) => prop_assert_eq!(map.remove(&id(k)), model.remove(&id(k))),
                    Op::Change(k, v) => {
                        let got = map.get_mut(&id(k)).map(|x| { *x = v; });
                        let want = model.get_mut(&id(k)).map(|x| { *x = v; });
                        prop_assert_eq!(got, want);
                    }
                    Op::GetOrInsert(k, v) => prop_assert_eq!(
                        *map.get_or_insert_with(id(k), || v),
                        *model.entry(id(k)).or_insert(v)
                    ),
                    Op::Copy => copies.push((map.clone(), model.clone())),
                }
                prop_assert_eq!(map.len(), model.len());
            }
            prop_assert!(map.iter().eq(model.iter()));
            prop_assert_eq!(crate::encode(&map), crate::encode(&model));
            for (copy, then) in &copies {
                prop_assert!(copy.iter().eq(then.iter()));
                prop_assert_eq!(copy.len(), then.len());
            }
            let back: CowMap<AccountId, u32> = crate::decode(&crate::encode(&map), 1 << 20).unwrap();
            prop_assert!(back == map);
        }

        /// Shards follow key order: a larger key never has a smaller shard.
        #[test]
        fn shards_are_monotone(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            let (a, b) = (AccountId::from_bytes(a), AccountId::from_bytes(b));
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(lo.shard() <= hi.shard());
            prop_assert!(hi.shard() < SHARDS);
        }
    }

    proptest! {
        /// A `CowSet` holds what a `BTreeSet` given the same inserts and
        /// removals holds, and encodes to the same bytes.
        #[test]
        fn a_cow_set_is_a_btree_set(ops in prop::collection::vec((any::<bool>(), 0u16..512), 0..200)) {
            let (mut set, mut model) = (CowSet::new(), std::collections::BTreeSet::new());
            for (add, k) in ops {
                let k = id(k << 7);
                if add {
                    prop_assert_eq!(set.insert(k), model.insert(k));
                } else {
                    prop_assert_eq!(set.remove(&k), model.remove(&k));
                }
            }
            prop_assert!(set.iter().eq(model.iter()));
            prop_assert_eq!(crate::encode(&set), crate::encode(&model));
            let back: CowSet<AccountId> = crate::decode(&crate::encode(&set), 1 << 20).unwrap();
            prop_assert!(back == set);
        }
    }

    #[test]
    fn a_write_copies_only_its_shard() {
        let mut a: CowMap<AccountId, u32> = (0..SHARDS as u16).map(|s| (id(s << 6), 0)).collect();
        let b = a.clone();
        assert_eq!(a.shared_shards_with(&b), SHARDS);
        *a.get_mut(&id(5 << 6)).unwrap() = 1;
        a.insert(id((5 << 6) + 1), 2);
        assert_eq!(a.shared_shards_with(&b), SHARDS - 1);
        assert_eq!(b.get(&id(5 << 6)), Some(&0));
        assert_eq!(b.get(&id((5 << 6) + 1)), None);
    }
}
