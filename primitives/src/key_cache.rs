//! A small per-thread cache of decompressed public keys.
//!
//! Every signature or VRF check parses its public key: a Ristretto point
//! decompression (an inverse square root, about 4.4 µs, a fifth of an
//! sr25519 verification). A node verifies the same few keys again and
//! again — its committee's block signatures, the senders of the
//! transactions it applies — so [`PublicKey`](crate::PublicKey) remembers
//! the last decompressed keys here.
//!
//! The cache is a pure memo: a hit returns exactly what parsing the same
//! 32 bytes returns (the stored point's compressed bytes are compared in
//! full), so no result depends on what was cached. It is bounded by
//! construction: [`SLOTS`] slots, direct-mapped by the key bytes, a new key
//! replacing whatever shared its slot. Only valid keys are stored, so
//! garbage keys cannot evict anything by failing to parse, and at worst
//! (keys colliding in one slot) every lookup costs one decompression, as
//! without the cache. One cache per thread: no lock, nothing shared between
//! a simulator's parallel runs, and nothing observable but time.

use std::cell::RefCell;

/// Number of cached keys per thread (a power of two). About 200 bytes each.
pub(crate) const SLOTS: usize = 256;

struct KeyCache {
    slots: Vec<Option<schnorrkel::PublicKey>>,
}

thread_local! {
    static CACHE: RefCell<KeyCache> = RefCell::new(KeyCache { slots: vec![None; SLOTS] });
}

/// The slot of a key. Byte 0 of a canonical Ristretto encoding is always
/// even, so bytes 1 and 2 pick the slot.
fn slot(bytes: &[u8; 32]) -> usize {
    (usize::from(bytes[1]) | usize::from(bytes[2]) << 8) % SLOTS
}

/// Decompresses `bytes` as a schnorrkel public key, through the cache.
/// `None` if they are not a valid key.
pub(crate) fn parse(bytes: &[u8; 32]) -> Option<schnorrkel::PublicKey> {
    let cached = CACHE
        .try_with(|c| {
            let c = c.borrow();
            c.slots[slot(bytes)].filter(|pk| pk.as_compressed().as_bytes() == bytes)
        })
        .ok()
        .flatten();
    if cached.is_some() {
        return cached;
    }
    let pk = schnorrkel::PublicKey::from_bytes(bytes).ok()?;
    // During thread teardown the cache may be gone: then just do not store.
    let _ = CACHE.try_with(|c| c.borrow_mut().slots[slot(bytes)] = Some(pk));
    Some(pk)
}

/// The number of keys cached on this thread (for tests).
#[cfg(test)]
pub(crate) fn len() -> usize {
    CACHE.with(|c| c.borrow().slots.iter().flatten().count())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::{Keypair, Seed};

    fn uncached(bytes: &[u8; 32]) -> Option<[u8; 32]> {
        schnorrkel::PublicKey::from_bytes(bytes)
            .ok()
            .map(|pk| pk.to_bytes())
    }

    fn cached(bytes: &[u8; 32]) -> Option<[u8; 32]> {
        parse(bytes).map(|pk| pk.to_bytes())
    }

    /// Valid keys (some sharing slots) and arbitrary bytes (mostly invalid).
    fn key_bytes() -> impl Strategy<Value = [u8; 32]> {
        prop_oneof![
            (0u64..600).prop_map(|s| Keypair::from_seed(&Seed::from_u64(s)).public().to_bytes()),
            any::<[u8; 32]>(),
        ]
    }

    proptest! {
        /// Any sequence of lookups gives what parsing without the cache
        /// gives, and the cache never holds more than its slots.
        #[test]
        fn cache_is_a_bounded_memo(keys in proptest::collection::vec(key_bytes(), 1..400)) {
            for k in keys.iter().chain(keys.iter().rev()) {
                prop_assert_eq!(cached(k), uncached(k));
                prop_assert!(len() <= SLOTS);
            }
        }
    }

    #[test]
    fn colliding_keys_replace_each_other_and_stay_correct() {
        // 257 keys in 256 slots: at least two share one.
        let keys: Vec<[u8; 32]> = (0..=SLOTS as u64)
            .map(|s| Keypair::from_seed(&Seed::from_u64(s)).public().to_bytes())
            .collect();
        let (a, b) = keys
            .iter()
            .enumerate()
            .find_map(|(i, a)| {
                keys[i + 1..]
                    .iter()
                    .find(|b| slot(b) == slot(a))
                    .map(|b| (*a, *b))
            })
            .expect("pigeonhole");
        assert_ne!(a, b);
        for _ in 0..3 {
            assert_eq!(cached(&a), Some(a));
            assert_eq!(cached(&b), Some(b));
        }
        assert!(len() <= SLOTS);
    }

    #[test]
    fn invalid_keys_are_not_stored() {
        let before = len();
        let mut bad = [0xffu8; 32];
        for i in 0..64u8 {
            bad[1] = i;
            assert_eq!(cached(&bad), None);
        }
        assert_eq!(len(), before);
    }
}
