//! 32-byte blake3 digests with domain separation.

use serde::Serialize;

use crate::bytes32::bytes32_newtype;

bytes32_newtype!(
    /// A blake3 digest (32 bytes). `Display`/`FromStr` use lowercase hex.
    Digest
);

/// A static domain-separation label, e.g. `Domain::new("idlegrid/dag/block")`.
///
/// Every hashed, committed or signed message carries one so that bytes valid
/// in one context can never be replayed as valid in another. By convention a
/// label is `idlegrid/<crate>/<message kind>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Domain(&'static str);

impl Domain {
    /// Creates a domain label. Labels should be unique across the workspace.
    pub const fn new(label: &'static str) -> Self {
        Self(label)
    }
    /// The label text.
    pub const fn label(&self) -> &'static str {
        self.0
    }
}

impl Digest {
    /// Hashes `bytes` under `domain` (blake3 in key-derivation mode, whose
    /// context string is the domain label).
    pub fn hash(domain: Domain, bytes: &[u8]) -> Self {
        DigestHasher::new(domain).update(bytes).finalize()
    }

    /// Hashes several byte strings under `domain`, each prefixed by its
    /// length so that the split between parts is unambiguous.
    pub fn hash_parts(domain: Domain, parts: &[&[u8]]) -> Self {
        let mut h = domain_hasher(domain);
        for p in parts {
            h.update(&(p.len() as u64).to_le_bytes());
            h.update(p);
        }
        Self::from_bytes(*h.finalize().as_bytes())
    }

    /// The digest of a value's canonical encoding under `domain` (equal to
    /// `Digest::hash(domain, &encode(value))`, streamed into the hasher
    /// through a small buffer instead of a heap-allocated encoding).
    pub fn of<T: Serialize + ?Sized>(domain: Domain, value: &T) -> Self {
        let mut hasher = domain_hasher(domain);
        let mut buf = [0; HASH_BUF];
        // The flavor borrows the hasher and the buffer: postcard moves its
        // flavor by value, and moving a 2 KB hasher in and out cost a
        // quarter of the time of hashing a short value.
        let flavor = HashFlavor {
            hasher: &mut hasher,
            buf: &mut buf,
            len: 0,
        };
        postcard::serialize_with_flavor(value, flavor).expect("type must be postcard-serializable");
        Self::from_bytes(*hasher.finalize().as_bytes())
    }

    /// Chains `self` with the next item: `H(domain, self || next)`. Used for
    /// running digests over sequences (commits, simulator events).
    pub fn chain(&self, domain: Domain, next: &[u8]) -> Self {
        Self::hash_parts(domain, &[self.as_bytes(), next])
    }
}

/// Incremental hashing under a domain: the digest of the parts fed to
/// [`DigestHasher::update`] is [`Digest::hash`] of their concatenation, so a
/// caller can hash fixed-size pieces without first encoding them into one
/// buffer. A clone of a fresh hasher is a fresh hasher.
#[derive(Clone, Debug)]
pub struct DigestHasher(blake3::Hasher);

impl DigestHasher {
    /// A hasher for `domain`, with nothing fed yet.
    pub fn new(domain: Domain) -> Self {
        Self(domain_hasher(domain))
    }

    /// Feeds more bytes.
    pub fn update(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update(bytes);
        self
    }

    /// The digest of everything fed so far (the hasher can be fed further).
    pub fn finalize(&self) -> Digest {
        Digest::from_bytes(*self.0.finalize().as_bytes())
    }
}

/// A blake3 hasher in key-derivation mode for `domain`'s label, exactly
/// `blake3::Hasher::new_derive_key(domain.label())`.
///
/// Deriving the context key costs a blake3 compression of the label: as
/// much as hashing a short message itself, and most digests here are of
/// short messages (facts, ids, headers). So each thread remembers the context
/// keys of the labels it used, in a small direct-mapped table keyed by the
/// label's address and length (a `&'static str`'s bytes never change, and a
/// label at another address is only another entry); a label evicted by
/// another one that maps to the same slot is derived again.
fn domain_hasher(domain: Domain) -> blake3::Hasher {
    use blake3::hazmat::{ContextKey, HasherExt, hash_derive_key_context};
    use std::cell::RefCell;

    const SLOTS: usize = 256;
    type Slot = (usize, usize, ContextKey);
    thread_local! {
        static KEYS: RefCell<[Slot; SLOTS]> = const { RefCell::new([(0, 0, [0; 32]); SLOTS]) };
    }

    let label = domain.label();
    let (at, len) = (label.as_ptr() as usize, label.len());
    let slot = (at >> 3 ^ at >> 11 ^ len) % SLOTS;
    let key = KEYS
        .try_with(|keys| {
            let mut keys = keys.borrow_mut();
            let entry = &mut keys[slot];
            // Address 0 is never a label's, so an empty slot never matches.
            if entry.0 != at || entry.1 != len {
                *entry = (at, len, hash_derive_key_context(label));
            }
            entry.2
        })
        // The thread is being torn down: derive without remembering.
        .unwrap_or_else(|_| hash_derive_key_context(label));
    blake3::Hasher::new_from_context_key(&key)
}

const HASH_BUF: usize = 512;

/// A postcard output that feeds the encoding into a hasher.
struct HashFlavor<'a> {
    hasher: &'a mut blake3::Hasher,
    buf: &'a mut [u8; HASH_BUF],
    len: usize,
}

impl HashFlavor<'_> {
    // Out of line: keeps the inlined pushes small (it runs once per
    // 512 bytes and once at the end).
    #[inline(never)]
    fn flush(&mut self) {
        self.hasher.update(&self.buf[..self.len]);
        self.len = 0;
    }
}

// The pushes are inlined into the callers' serializers: postcard writes a
// 32-byte id or digest (a `[u8; 32]`, a tuple to serde) one byte at a time,
// and a call per byte was a tenth of the default run's instructions.
impl postcard::ser_flavors::Flavor for HashFlavor<'_> {
    type Output = ();

    #[inline]
    fn try_push(&mut self, b: u8) -> postcard::Result<()> {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
        } else {
            self.flush();
            self.buf[0] = b;
        }
        self.len += 1;
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if data.len() > HASH_BUF - self.len {
            self.flush();
            if data.len() >= HASH_BUF {
                self.hasher.update(data);
                return Ok(());
            }
        }
        self.buf[self.len..self.len + data.len()].copy_from_slice(data);
        self.len += data.len();
        Ok(())
    }

    fn finalize(mut self) -> postcard::Result<()> {
        self.flush();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::encode;

    const A: Domain = Domain::new("idlegrid/test/a");
    const B: Domain = Domain::new("idlegrid/test/b");

    #[test]
    fn of_streams_exactly_the_encoding() {
        for n in [0usize, 1, 31, 511, 512, 513, 2_000, 70_000] {
            let v: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let value = (n as u64, "x", v.clone(), [v.len() as u16; 3]);
            assert_eq!(Digest::of(A, &value), Digest::hash(A, &encode(&value)));
        }
    }

    #[test]
    fn remembered_context_keys_are_the_derived_ones() {
        // Far more labels than slots, so slots are shared and evicted; the
        // same text at another address, and labels differing only in length.
        let labels: Vec<&'static str> = (0..2_000)
            .map(|i| &*Box::leak(format!("idlegrid/test/label-{i}").into_boxed_str()))
            .chain(["idlegrid/test/a", "idlegrid/test/ab", "idlegrid/test/", ""])
            .chain([&*Box::leak(
                String::from("idlegrid/test/a").into_boxed_str(),
            )])
            .collect();
        for round in 0..3u8 {
            for (i, label) in labels.iter().enumerate() {
                if (i + usize::from(round)) % 3 == 0 {
                    continue; // vary which labels evict which
                }
                let mut want = blake3::Hasher::new_derive_key(label);
                want.update(&[round]);
                let got = Digest::hash(Domain::new(label), &[round]);
                assert_eq!(got.as_bytes(), want.finalize().as_bytes(), "{label}");
            }
        }
    }

    #[test]
    fn domains_separate() {
        assert_ne!(Digest::hash(A, b"x"), Digest::hash(B, b"x"));
        assert_eq!(Digest::hash(A, b"x"), Digest::hash(A, b"x"));
    }

    #[test]
    fn incremental_hashing_is_hashing_the_concatenation() {
        let base = DigestHasher::new(A);
        assert_eq!(base.finalize(), Digest::hash(A, b""));
        let mut h = base.clone();
        h.update(b"hel").update(b"").update(b"lo");
        assert_eq!(h.finalize(), Digest::hash(A, b"hello"));
        // The clone did not touch the base, and domains still separate.
        assert_eq!(base.clone().update(b"hello").finalize(), h.finalize());
        assert_ne!(
            DigestHasher::new(B).update(b"hello").finalize(),
            h.finalize()
        );
        let long = vec![7u8; 5_000];
        let mut h = DigestHasher::new(A);
        for piece in long.chunks(32) {
            h.update(piece);
        }
        assert_eq!(h.finalize(), Digest::hash(A, &long));
    }

    #[test]
    fn parts_are_unambiguous() {
        assert_ne!(
            Digest::hash_parts(A, &[b"ab", b"c"]),
            Digest::hash_parts(A, &[b"a", b"bc"])
        );
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let d = Digest::hash(A, b"hello");
        let s = d.to_string();
        assert_eq!(s.len(), 64);
        assert_eq!(s.parse::<Digest>().unwrap(), d);
        assert!("abc".parse::<Digest>().is_err());
        assert!("zz".repeat(32).parse::<Digest>().is_err());
        // Non-ASCII input of the right byte length must not panic.
        let weird = "é".repeat(32);
        assert!(weird.parse::<Digest>().is_err());
    }
}
