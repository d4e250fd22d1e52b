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
//! 32 bytes returns (the stored key bytes are compared in full), so no
//! result depends on what was cached. It is bounded by construction: a
//! [`SetAssoc`] table of [`SLOTS`] entries ([`WAYS`]-way, least recently
//! used first out), a new key replacing the oldest of its set. Only valid
//! keys are stored, so garbage keys cannot evict anything by failing to
//! parse, and at worst (keys colliding in one set) every lookup costs one
//! decompression, as without the cache. One cache per thread: no lock,
//! nothing shared between a simulator's parallel runs, and nothing
//! observable but time.

use std::cell::RefCell;

use crate::memo::SetAssoc;

/// Number of cached keys per thread. About 230 bytes each: under a
/// megabyte per thread, enough for a large committee plus the few thousand
/// accounts whose transactions a validator applies batch after batch (a
/// ledger bench of 1,000 senders missed on every key with 256).
pub(crate) const SLOTS: usize = 4096;
/// Keys per set.
const WAYS: usize = 4;

type KeyTable = SetAssoc<[u8; 32], schnorrkel::PublicKey, WAYS>;

thread_local! {
    static CACHE: RefCell<KeyTable> = RefCell::new(SetAssoc::new(SLOTS / WAYS));
}

/// The set of a key. Byte 0 of a canonical Ristretto encoding is always
/// even, so bytes 1 and 2 pick the set.
fn set_bits(bytes: &[u8; 32]) -> u64 {
    u64::from(bytes[1]) | u64::from(bytes[2]) << 8
}

/// Decompresses `bytes` as a schnorrkel public key, through the cache.
/// `None` if they are not a valid key.
pub(crate) fn parse(bytes: &[u8; 32]) -> Option<schnorrkel::PublicKey> {
    let cached = CACHE
        .try_with(|c| {
            let mut c = c.borrow_mut();
            let set = c.set_of(set_bits(bytes));
            c.get(set, bytes)
        })
        .ok()
        .flatten();
    if let Some(pk) = cached {
        debug_assert_eq!(pk.as_compressed().as_bytes(), bytes);
        return Some(pk);
    }
    let pk = schnorrkel::PublicKey::from_bytes(bytes).ok()?;
    // During thread teardown the cache may be gone: then just do not store.
    let _ = CACHE.try_with(|c| {
        let mut c = c.borrow_mut();
        let set = c.set_of(set_bits(bytes));
        c.insert(set, *bytes, pk);
    });
    Some(pk)
}

/// The number of keys cached on this thread (for tests).
#[cfg(test)]
pub(crate) fn len() -> usize {
    CACHE.with(|c| c.borrow().len())
}

/// The set index of a key (for tests).
#[cfg(test)]
fn set_index(bytes: &[u8; 32]) -> usize {
    CACHE.with(|c| c.borrow().set_of(set_bits(bytes)))
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
        // More keys than one set holds, all in one set.
        let mut keys =
            (0..20_000u64).map(|s| Keypair::from_seed(&Seed::from_u64(s)).public().to_bytes());
        let first = keys.next().expect("a key");
        let same: Vec<[u8; 32]> = std::iter::once(first)
            .chain(keys.filter(|k| set_index(k) == set_index(&first)))
            .take(WAYS + 1)
            .collect();
        assert_eq!(same.len(), WAYS + 1, "enough keys share a set");
        for _ in 0..3 {
            for k in &same {
                assert_eq!(cached(k), Some(*k));
            }
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
