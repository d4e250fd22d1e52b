//! 32-byte blake3 digests with domain separation.

use serde::Serialize;

use crate::bytes32::bytes32_newtype;
use crate::encoding::encode;

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
        let mut h = blake3::Hasher::new_derive_key(domain.label());
        h.update(bytes);
        Self::from_bytes(*h.finalize().as_bytes())
    }

    /// Hashes several byte strings under `domain`, each prefixed by its
    /// length so that the split between parts is unambiguous.
    pub fn hash_parts(domain: Domain, parts: &[&[u8]]) -> Self {
        let mut h = blake3::Hasher::new_derive_key(domain.label());
        for p in parts {
            h.update(&(p.len() as u64).to_le_bytes());
            h.update(p);
        }
        Self::from_bytes(*h.finalize().as_bytes())
    }

    /// The digest of a value's canonical encoding under `domain`.
    pub fn of<T: Serialize + ?Sized>(domain: Domain, value: &T) -> Self {
        Self::hash(domain, &encode(value))
    }

    /// Chains `self` with the next item: `H(domain, self || next)`. Used for
    /// running digests over sequences (commits, simulator events).
    pub fn chain(&self, domain: Domain, next: &[u8]) -> Self {
        Self::hash_parts(domain, &[self.as_bytes(), next])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Domain = Domain::new("idlegrid/test/a");
    const B: Domain = Domain::new("idlegrid/test/b");

    #[test]
    fn domains_separate() {
        assert_ne!(Digest::hash(A, b"x"), Digest::hash(B, b"x"));
        assert_eq!(Digest::hash(A, b"x"), Digest::hash(A, b"x"));
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
