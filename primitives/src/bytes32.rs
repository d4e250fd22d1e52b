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

/// Defines a `Copy` newtype over `[u8; 32]` with hex `Display`/`FromStr`/`Debug`,
/// byte accessors, and serde that is a fixed 32-byte tuple for binary formats
/// (canonical in postcard) and a hex string for human-readable formats (JSON).
macro_rules! bytes32_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name([u8; 32]);

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
