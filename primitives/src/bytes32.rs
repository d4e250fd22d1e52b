//! A macro for 32-byte values shown as hex (digests, public keys, salts, seeds).

use thiserror::Error;

/// Why a hex string could not be parsed into a fixed-size value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseHexError {
    /// The string had the wrong number of characters.
    #[error("expected {expected} hex characters, got {got}")]
    WrongLength {
        /// Number of hex characters required.
        expected: usize,
        /// Number of characters given.
        got: usize,
    },
    /// The string contained a character that is not a hex digit.
    #[error("invalid hex character: {0}")]
    InvalidChar(String),
}

pub(crate) fn parse_hex_32(s: &str) -> Result<[u8; 32], ParseHexError> {
    if s.len() != 64 {
        return Err(ParseHexError::WrongLength {
            expected: 64,
            got: s.len(),
        });
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|e| ParseHexError::InvalidChar(e.to_string()))?;
    Ok(out)
}

/// Compares two 32-byte values in lexicographic byte order, as `[u8; 32]`'s
/// own `Ord` does, but as four big-endian words: inlined, where the slice
/// comparison is a call to `memcmp`. Ids and digests are the keys of every
/// ordered map of the ledger and the node, and these calls were a fifth of
/// applying a batch of transfers with signatures unchecked
/// (`cargo bench -p idlegrid-dag-ledger --bench ledger -- sig=skip`).
#[inline]
pub(crate) fn cmp_32(a: &[u8; 32], b: &[u8; 32]) -> core::cmp::Ordering {
    for i in 0..4 {
        let (x, y) = (word(a, i), word(b, i));
        if x != y {
            return x.cmp(&y);
        }
    }
    core::cmp::Ordering::Equal
}

/// Word `i` (0..4) of `b`, big-endian.
#[inline]
fn word(b: &[u8; 32], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[i * 8..i * 8 + 8]);
    u64::from_be_bytes(w)
}

/// Defines a `Copy` newtype over `[u8; 32]` with hex `Display`/`FromStr`/`Debug`,
/// byte accessors, and serde that is a fixed 32-byte tuple for binary formats
/// (canonical in postcard) and a hex string for human-readable formats (JSON).
macro_rules! bytes32_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name([u8; 32]);

        // Lexicographic byte order, as a derive would give, compared a word
        // at a time (see `cmp_32`).
        impl Ord for $name {
            #[inline]
            fn cmp(&self, other: &Self) -> ::core::cmp::Ordering {
                $crate::bytes32::cmp_32(&self.0, &other.0)
            }
        }

        impl PartialOrd for $name {
            #[inline]
            fn partial_cmp(&self, other: &Self) -> Option<::core::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl $name {
            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }
            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
            /// The raw bytes, by value.
            pub const fn to_bytes(self) -> [u8; 32] {
                self.0
            }
            /// A short prefix for logs (first 4 bytes as hex).
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.short())
            }
        }

        impl ::core::str::FromStr for $name {
            type Err = $crate::bytes32::ParseHexError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $crate::bytes32::parse_hex_32(s).map(Self)
            }
        }

        impl TryFrom<&[u8]> for $name {
            type Error = $crate::bytes32::ParseHexError;
            fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
                let arr: [u8; 32] = bytes.try_into().map_err(|_| {
                    $crate::bytes32::ParseHexError::WrongLength {
                        expected: 64,
                        got: bytes.len() * 2,
                    }
                })?;
                Ok(Self(arr))
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&hex::encode(self.0))
                } else {
                    ::serde::Serialize::serialize(&self.0, s)
                }
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = <String as ::serde::Deserialize>::deserialize(d)?;
                    s.parse().map_err(<D::Error as ::serde::de::Error>::custom)
                } else {
                    <[u8; 32] as ::serde::Deserialize>::deserialize(d).map(Self)
                }
            }
        }
    };
}
pub(crate) use bytes32_newtype;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::cmp_32;

    /// Two arrays equal up to a random position, then random: every
    /// prefix length is reached, not only a difference in the first word.
    fn pair() -> impl Strategy<Value = ([u8; 32], [u8; 32])> {
        (any::<[u8; 32]>(), any::<[u8; 32]>(), 0usize..=32).prop_map(|(a, mut b, same)| {
            b[..same].copy_from_slice(&a[..same]);
            (a, b)
        })
    }

    proptest! {
        #[test]
        fn word_order_is_byte_order((a, b) in pair()) {
            prop_assert_eq!(cmp_32(&a, &b), a.cmp(&b));
            prop_assert_eq!(cmp_32(&b, &a), b.cmp(&a));
            prop_assert_eq!(cmp_32(&a, &a), core::cmp::Ordering::Equal);
        }
    }

    proptest! {
        #[test]
        fn ids_sort_as_their_bytes(pairs in proptest::collection::vec(pair(), 0..32)) {
            let bytes: Vec<[u8; 32]> = pairs.iter().flat_map(|(a, b)| [*a, *b]).collect();
            let mut ids: Vec<crate::Digest> =
                bytes.iter().map(|b| crate::Digest::from_bytes(*b)).collect();
            ids.sort();
            let mut expected = bytes;
            expected.sort();
            let got: Vec<[u8; 32]> = ids.iter().map(|d| d.to_bytes()).collect();
            prop_assert_eq!(got, expected);
        }
    }
}
