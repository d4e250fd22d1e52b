//! Canonical binary encoding (serde + postcard).
//!
//! `encode` is deterministic. `decode` takes untrusted bytes: it enforces a
//! size limit before parsing, rejects trailing bytes, and rejects any input
//! that does not re-encode to exactly the same bytes (non-minimal varints,
//! non-canonical booleans, …), so every value has exactly one encoding and
//! digests of encodings are identities.

use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

/// Default upper bound for a decoded message, 4 MiB. Callers pass tighter
/// bounds where they know them.
pub const DEFAULT_MAX_DECODE_LEN: usize = 4 << 20;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is longer than the caller's limit; nothing was parsed.
    #[error("input of {len} bytes exceeds the limit of {max} bytes")]
    TooLong {
        /// Input length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The bytes are not a valid encoding of the expected type.
    #[error("malformed encoding: {0}")]
    Malformed(String),
    /// A value was decoded but bytes remain after it.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// The bytes decode, but are not the canonical encoding of the value.
    #[error("non-canonical encoding")]
    NonCanonical,
}

/// Encodes a value canonically.
///
/// # Panics
/// Only if `T`'s `Serialize` implementation is not representable in postcard
/// (for example a sequence of unknown length) — a programming error in the
/// type, never a property of data.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("type must be postcard-serializable")
}

/// The length of a value's canonical encoding.
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> usize {
    postcard::experimental::serialized_size(value).expect("type must be postcard-serializable")
}

/// Decodes untrusted bytes into a `T`, accepting only the canonical encoding
/// and at most `max_len` bytes.
pub fn decode<T: Serialize + DeserializeOwned>(
    bytes: &[u8],
    max_len: usize,
) -> Result<T, DecodeError> {
    if bytes.len() > max_len {
        return Err(DecodeError::TooLong {
            len: bytes.len(),
            max: max_len,
        });
    }
    let (value, rest): (T, &[u8]) =
        postcard::take_from_bytes(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes(rest.len()));
    }
    if !encodes_to(&value, bytes) {
        return Err(DecodeError::NonCanonical);
    }
    Ok(value)
}

/// Whether `value`'s canonical encoding is exactly `bytes`: serializes
/// against them byte by byte, with no allocation, stopping at the first
/// difference.
fn encodes_to<T: Serialize + ?Sized>(value: &T, bytes: &[u8]) -> bool {
    postcard::serialize_with_flavor(value, Compare { rest: bytes }).is_ok()
}

/// A postcard flavor that matches the output against expected bytes.
struct Compare<'a> {
    rest: &'a [u8],
}

impl postcard::ser_flavors::Flavor for Compare<'_> {
    type Output = ();

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        match self.rest.split_at_checked(data.len()) {
            Some((head, tail)) if head == data => {
                self.rest = tail;
                Ok(())
            }
            _ => Err(postcard::Error::SerializeBufferFull),
        }
    }

    // Inlined into the callers' serializers, like the digest's pushes:
    // postcard writes a 32-byte id one byte at a time.
    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        match self.rest.split_first() {
            Some((&b, tail)) if b == data => {
                self.rest = tail;
                Ok(())
            }
            _ => Err(postcard::Error::SerializeBufferFull),
        }
    }

    fn finalize(self) -> postcard::Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(postcard::Error::SerializeBufferFull)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_trailing_oversized_and_noncanonical() {
        let b = encode(&300u32);
        assert_eq!(decode::<u32>(&b, 16), Ok(300));
        let mut t = b.clone();
        t.push(0);
        assert_eq!(decode::<u32>(&t, 16), Err(DecodeError::TrailingBytes(1)));
        assert!(matches!(
            decode::<u32>(&b, 1),
            Err(DecodeError::TooLong { .. })
        ));
        // 5 as a two-byte varint (0x85 0x00) is valid LEB128 but not minimal.
        assert!(decode::<u32>(&[0x85, 0x00], 16).is_err());
        // A boolean must be 0 or 1.
        assert!(decode::<bool>(&[2], 16).is_err());
    }

    proptest::proptest! {
        /// The allocation-free canonical check agrees with comparing a
        /// fresh encoding, on the encoding itself and on every cut,
        /// extension and one-byte change of it.
        #[test]
        fn compare_flavor_agrees_with_reencoding(
            v in proptest::prelude::any::<(u64, Vec<u8>, Option<String>, i32)>(),
            cut in 0usize..64,
            at in 0usize..64,
            x in 1u8..=255,
        ) {
            let enc = encode(&v);
            proptest::prop_assert!(encodes_to(&v, &enc));
            let shorter = &enc[..enc.len().saturating_sub(cut % (enc.len() + 1)).min(enc.len())];
            proptest::prop_assert_eq!(encodes_to(&v, shorter), shorter == &enc[..]);
            let mut longer = enc.clone();
            longer.push(x);
            proptest::prop_assert!(!encodes_to(&v, &longer));
            let mut flipped = enc.clone();
            let i = at % flipped.len();
            flipped[i] ^= x;
            proptest::prop_assert!(!encodes_to(&v, &flipped));
        }
    }

    #[test]
    fn huge_length_prefix_does_not_allocate_unbounded() {
        // A Vec<u64> claiming 2^32 elements in 5 bytes: must fail, fast.
        let bytes = [0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(decode::<Vec<u64>>(&bytes, 1024).is_err());
    }
}
