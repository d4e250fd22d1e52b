//! A bounded set-associative table: the storage of the crate's pure-function
//! memos (decompressed keys, [`key_cache`](crate::key_cache); verified
//! signatures, [`SignatureMemo`](crate::SignatureMemo)).
//!
//! `sets × WAYS` entries, fixed at construction; a key lives in the one set
//! its caller picks (from bits of the key), and within a set the least
//! recently used entry makes room for a new one. Nothing grows: memory is
//! `sets × WAYS × size_of::<Option<(K, V)>>()` for the table's life, and
//! the worst case (every key in one set) costs what no memo costs.

/// A bounded set-associative table with LRU replacement within each set.
#[derive(Clone)]
pub(crate) struct SetAssoc<K, V, const WAYS: usize> {
    /// Each set holds its entries most recently used first.
    sets: Vec<[Option<(K, V)>; WAYS]>,
}

impl<K: Copy + Eq, V: Copy, const WAYS: usize> SetAssoc<K, V, WAYS> {
    /// A table of `sets` sets (a power of two, at least 1).
    pub(crate) fn new(sets: usize) -> Self {
        assert!(
            sets.is_power_of_two() && WAYS > 0,
            "sets ({sets}) must be a power of two and WAYS positive"
        );
        Self {
            sets: vec![[None; WAYS]; sets],
        }
    }

    /// The set for `bits` (any well-mixed bits of the key).
    pub(crate) fn set_of(&self, bits: u64) -> usize {
        (bits as usize) & (self.sets.len() - 1)
    }

    /// Entries the table can hold.
    pub(crate) fn capacity(&self) -> usize {
        self.sets.len() * WAYS
    }

    /// Entries held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.sets.iter().flatten().flatten().count()
    }

    /// The value of `key` in `set`, which becomes the set's most recently
    /// used entry.
    pub(crate) fn get(&mut self, set: usize, key: &K) -> Option<V> {
        let s = &mut self.sets[set];
        let i = s.iter().position(|e| e.is_some_and(|(k, _)| k == *key))?;
        s[..=i].rotate_right(1);
        s[0].map(|(_, v)| v)
    }

    /// Stores `key` in `set` as its most recently used entry, evicting the
    /// least recently used one if the set is full (or replacing `key`'s
    /// old value).
    pub(crate) fn insert(&mut self, set: usize, key: K, value: V) {
        let s = &mut self.sets[set];
        let i = s
            .iter()
            .position(|e| e.is_none_or(|(k, _)| k == key))
            .unwrap_or(WAYS - 1);
        s[..=i].rotate_right(1);
        s[0] = Some((key, value));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::*;

    /// The reference: each set a list, most recent first, cut at `WAYS`.
    fn model(ops: &[(bool, u8, u8)]) -> Vec<Option<u8>> {
        let mut sets: Vec<VecDeque<(u8, u8)>> = vec![VecDeque::new(); 4];
        let mut out = Vec::new();
        for &(insert, key, value) in ops {
            let s = &mut sets[usize::from(key) % 4];
            let found = s.iter().position(|(k, _)| *k == key);
            if insert {
                if let Some(i) = found {
                    s.remove(i);
                }
                s.push_front((key, value));
                s.truncate(2);
                out.push(None);
            } else {
                let got = found.map(|i| s.remove(i).expect("found"));
                if let Some(e) = got {
                    s.push_front(e);
                }
                out.push(got.map(|(_, v)| v));
            }
        }
        out
    }

    proptest! {
        /// The table behaves as per-set LRU lists and never holds more
        /// than its capacity.
        #[test]
        fn table_is_per_set_lru(ops in proptest::collection::vec((any::<bool>(), 0u8..16, any::<u8>()), 0..200)) {
            let mut t: SetAssoc<u8, u8, 2> = SetAssoc::new(4);
            let mut got = Vec::new();
            for &(insert, key, value) in &ops {
                let set = t.set_of(u64::from(key));
                if insert {
                    t.insert(set, key, value);
                    got.push(None);
                } else {
                    got.push(t.get(set, &key));
                }
                prop_assert!(t.len() <= t.capacity());
            }
            prop_assert_eq!(got, model(&ops));
        }
    }

    #[test]
    #[should_panic(expected = "power of two")]
    fn set_counts_are_powers_of_two() {
        let _ = SetAssoc::<u8, u8, 2>::new(3);
    }
}
