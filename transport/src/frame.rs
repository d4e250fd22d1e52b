//! The wire format: frames and the envelope they carry.
//!
//! ```text
//! frame  = version:u8 | kind:u8 | len:u32 little-endian | body[len]
//! kind 0 = Hello  body = canonical postcard (NodeId, Nonce, EphemeralKey)  (handshake)
//! kind 1 = Auth   body = canonical postcard Signature (64 bytes)          (handshake)
//! kind 2 = Data   body = the application's bytes, verbatim
//! kind 3 = Ping   body = empty                                             (keepalive)
//! ```
//!
//! The TCP transport sends only `Hello` and `Auth` in the clear; after the
//! handshake every frame is sealed by the [`session`](crate::session) layer
//! (kinds 4–6, same header layout), and a plaintext frame there ends the
//! connection. `Data` and `Ping` remain for plaintext framing elsewhere
//! (tests, tools, other transports).
//!
//! Decoding takes untrusted bytes and never panics: the header is checked
//! (version, kind, `len <= limit`) before anything is allocated, handshake
//! bodies go through the canonical [`idlegrid_primitives::decode`], and a
//! `Ping` with a body is rejected. Every accepted frame re-encodes to exactly
//! the bytes it came from.

use idlegrid_primitives::{DecodeError, NodeId, Signature, decode, encode};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The only wire version this crate speaks (2: ephemeral keys in `Hello`
/// and an encrypted session after the handshake).
pub const WIRE_VERSION: u8 = 2;
/// Bytes in a frame header.
pub const HEADER_LEN: usize = 6;
/// The hard upper bound on a frame body, whatever the configuration: 16 MiB.
pub const MAX_FRAME_LEN: usize = 16 << 20;
/// The limit on handshake bodies (`Hello` is 96 bytes, `Auth` 64).
pub const HANDSHAKE_BODY_LIMIT: usize = 128;

const KIND_HELLO: u8 = 0;
const KIND_AUTH: u8 = 1;
const KIND_DATA: u8 = 2;
const KIND_PING: u8 = 3;

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Fewer bytes than the header or the announced body; a stream reader
    /// waits for more, a one-shot decoder rejects.
    #[error("truncated frame: need {needed} bytes, have {got}")]
    Truncated {
        /// Bytes needed for the complete frame (or header).
        needed: usize,
        /// Bytes available.
        got: usize,
    },
    /// The version byte is not [`WIRE_VERSION`]; upgrade the older side.
    #[error("unsupported wire version {got} (this node speaks {supported})")]
    UnsupportedVersion {
        /// Version byte received.
        got: u8,
        /// Version this crate speaks.
        supported: u8,
    },
    /// The kind byte names no known envelope.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// The body is longer than the limit; nothing was allocated.
    #[error("frame body of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Announced or requested body length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// A handshake body is not the canonical encoding of its message.
    #[error("malformed {kind} body: {source}")]
    Malformed {
        /// Which envelope kind.
        kind: &'static str,
        /// The decoder's reason.
        source: DecodeError,
    },
    /// A `Ping` frame carried a body.
    #[error("ping frame carries {0} unexpected body bytes")]
    UnexpectedBody(usize),
    /// Bytes remain after the one frame that was expected.
    #[error("{0} trailing bytes after the frame")]
    TrailingBytes(usize),
    /// A configured limit is zero or above [`MAX_FRAME_LEN`].
    #[error("frame limit {0} is out of range 1..={MAX_FRAME_LEN}")]
    LimitOutOfRange(usize),
}

/// The largest frame body a node accepts or sends, in bytes
/// (`1..=`[`MAX_FRAME_LEN`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FrameLimit(usize);

impl FrameLimit {
    /// 4 MiB, the same as the default decode limit of primitives.
    pub const DEFAULT: FrameLimit = FrameLimit(4 << 20);
    /// The limit for handshake frames.
    pub const HANDSHAKE: FrameLimit = FrameLimit(HANDSHAKE_BODY_LIMIT);

    /// A limit of `bytes`, which must be in `1..=MAX_FRAME_LEN`.
    pub const fn new(bytes: usize) -> Result<Self, FrameError> {
        if bytes == 0 || bytes > MAX_FRAME_LEN {
            return Err(FrameError::LimitOutOfRange(bytes));
        }
        Ok(Self(bytes))
    }
    /// The limit in bytes.
    pub const fn get(self) -> usize {
        self.0
    }
    /// `Ok` if a body of `len` bytes fits.
    pub const fn check(self, len: usize) -> Result<(), FrameError> {
        if len > self.0 {
            return Err(FrameError::TooLarge { len, max: self.0 });
        }
        Ok(())
    }
}

impl Default for FrameLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A fresh 32-byte handshake challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Nonce([u8; 32]);

impl Nonce {
    /// Wraps raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
    /// The raw bytes.
    pub const fn to_bytes(self) -> [u8; 32] {
        self.0
    }
}

/// An ephemeral X25519 public key, fresh for every handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EphemeralKey([u8; 32]);

impl EphemeralKey {
    /// Wraps raw bytes (a Montgomery u-coordinate).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
    /// The raw bytes.
    pub const fn to_bytes(self) -> [u8; 32] {
        self.0
    }
}

/// The first handshake message: who I claim to be, my fresh challenge and
/// my ephemeral key-exchange key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The sender's claimed identity (its public key).
    pub node: NodeId,
    /// The challenge the other side must sign.
    pub nonce: Nonce,
    /// The sender's ephemeral X25519 public key for this session only.
    pub ephemeral: EphemeralKey,
}

/// The second handshake message: my signature over the handshake transcript
/// (see [`crate::tcp::auth_transcript`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auth {
    /// Signature under [`crate::tcp::HANDSHAKE_DOMAIN`].
    pub signature: Signature,
}

/// What a frame carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// Handshake step 1.
    Hello(Hello),
    /// Handshake step 2.
    Auth(Auth),
    /// Application bytes.
    Data(Vec<u8>),
    /// Keepalive.
    Ping,
}

impl Envelope {
    fn kind(&self) -> u8 {
        match self {
            Envelope::Hello(_) => KIND_HELLO,
            Envelope::Auth(_) => KIND_AUTH,
            Envelope::Data(_) => KIND_DATA,
            Envelope::Ping => KIND_PING,
        }
    }
}

/// A checked frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    kind: u8,
    len: usize,
}

impl FrameHeader {
    /// The body length announced by the header (already checked against the
    /// limit).
    pub const fn body_len(&self) -> usize {
        self.len
    }
}

/// The header bytes for a body of `len` bytes of kind `kind`.
fn header_bytes(kind: u8, len: usize) -> [u8; HEADER_LEN] {
    let len = u32::try_from(len).expect("body length is bounded by MAX_FRAME_LEN");
    let l = len.to_le_bytes();
    [WIRE_VERSION, kind, l[0], l[1], l[2], l[3]]
}

/// The header of a `Data` frame for a payload of `len` bytes, checked against
/// `limit` (the TCP writer sends it followed by the payload, without copying).
pub fn data_header(len: usize, limit: FrameLimit) -> Result<[u8; HEADER_LEN], FrameError> {
    limit.check(len)?;
    Ok(header_bytes(KIND_DATA, len))
}

/// Checks a header: version, kind, and `len <= limit`. Allocates nothing.
pub fn parse_header(
    header: &[u8; HEADER_LEN],
    limit: FrameLimit,
) -> Result<FrameHeader, FrameError> {
    check_version(header[0])?;
    let kind = header[1];
    if kind > KIND_PING {
        return Err(FrameError::UnknownKind(kind));
    }
    let len = u32::from_le_bytes([header[2], header[3], header[4], header[5]]) as usize;
    limit.check(len)?;
    Ok(FrameHeader { kind, len })
}

/// Checks the first byte of a frame on its own, so that a stream reader can
/// reject garbage before waiting for a whole header.
pub const fn check_version(byte: u8) -> Result<(), FrameError> {
    if byte != WIRE_VERSION {
        return Err(FrameError::UnsupportedVersion {
            got: byte,
            supported: WIRE_VERSION,
        });
    }
    Ok(())
}

/// Decodes a body of exactly `header.body_len()` bytes.
pub fn decode_body(header: FrameHeader, body: Vec<u8>) -> Result<Envelope, FrameError> {
    if body.len() != header.len {
        return Err(FrameError::Truncated {
            needed: HEADER_LEN + header.len,
            got: HEADER_LEN + body.len(),
        });
    }
    match header.kind {
        KIND_HELLO => decode(&body, HANDSHAKE_BODY_LIMIT)
            .map(Envelope::Hello)
            .map_err(|source| FrameError::Malformed {
                kind: "hello",
                source,
            }),
        KIND_AUTH => decode(&body, HANDSHAKE_BODY_LIMIT)
            .map(Envelope::Auth)
            .map_err(|source| FrameError::Malformed {
                kind: "auth",
                source,
            }),
        KIND_DATA => Ok(Envelope::Data(body)),
        KIND_PING if body.is_empty() => Ok(Envelope::Ping),
        KIND_PING => Err(FrameError::UnexpectedBody(body.len())),
        other => Err(FrameError::UnknownKind(other)),
    }
}

/// Encodes an envelope as one frame, appending to `out`.
pub fn encode_frame_into(
    env: &Envelope,
    limit: FrameLimit,
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    let body_owned;
    let body: &[u8] = match env {
        Envelope::Hello(h) => {
            body_owned = encode(h);
            &body_owned
        }
        Envelope::Auth(a) => {
            body_owned = encode(a);
            &body_owned
        }
        Envelope::Data(d) => d,
        Envelope::Ping => &[],
    };
    limit.check(body.len())?;
    out.reserve(HEADER_LEN + body.len());
    out.extend_from_slice(&header_bytes(env.kind(), body.len()));
    out.extend_from_slice(body);
    Ok(())
}

/// Encodes an envelope as one frame.
pub fn encode_frame(env: &Envelope, limit: FrameLimit) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::new();
    encode_frame_into(env, limit, &mut out)?;
    Ok(out)
}

/// Decodes the first frame of `bytes`, returning it and the number of bytes
/// it occupied. Untrusted input: never panics, allocates at most the body
/// (which is within `limit`). [`FrameError::Truncated`] means "not enough
/// bytes yet".
pub fn decode_frame(bytes: &[u8], limit: FrameLimit) -> Result<(Envelope, usize), FrameError> {
    if let Some(&first) = bytes.first() {
        check_version(first)?;
    }
    let Some(header) = bytes.first_chunk::<HEADER_LEN>() else {
        return Err(FrameError::Truncated {
            needed: HEADER_LEN,
            got: bytes.len(),
        });
    };
    let header = parse_header(header, limit)?;
    let end = HEADER_LEN + header.len;
    let Some(body) = bytes.get(HEADER_LEN..end) else {
        return Err(FrameError::Truncated {
            needed: end,
            got: bytes.len(),
        });
    };
    Ok((decode_body(header, body.to_vec())?, end))
}

/// Decodes `bytes` as exactly one frame; trailing bytes are an error.
pub fn decode_frame_exact(bytes: &[u8], limit: FrameLimit) -> Result<Envelope, FrameError> {
    let (env, used) = decode_frame(bytes, limit)?;
    if used != bytes.len() {
        return Err(FrameError::TrailingBytes(bytes.len() - used));
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use idlegrid_primitives::{Keypair, Seed};

    fn hello() -> Envelope {
        Envelope::Hello(Hello {
            node: Keypair::from_seed(&Seed::from_u64(1)).node_id(),
            nonce: Nonce::from_bytes([7; 32]),
            ephemeral: EphemeralKey::from_bytes([8; 32]),
        })
    }

    #[test]
    fn round_trips_every_kind() {
        let kp = Keypair::from_seed(&Seed::from_u64(2));
        let envs = [
            hello(),
            Envelope::Auth(Auth {
                signature: kp.sign(idlegrid_primitives::Domain::new("t"), b"x"),
            }),
            Envelope::Data(vec![]),
            Envelope::Data(vec![1, 2, 3]),
            Envelope::Ping,
        ];
        for env in envs {
            let bytes = encode_frame(&env, FrameLimit::DEFAULT).unwrap();
            assert_eq!(
                decode_frame_exact(&bytes, FrameLimit::DEFAULT).unwrap(),
                env
            );
            let mut two = bytes.clone();
            two.extend_from_slice(&bytes);
            let (first, used) = decode_frame(&two, FrameLimit::DEFAULT).unwrap();
            assert_eq!((first, used), (env, bytes.len()));
        }
    }

    #[test]
    fn typed_errors() {
        let limit = FrameLimit::new(16).unwrap();
        let ok = encode_frame(&Envelope::Data(vec![9; 10]), limit).unwrap();
        // Truncated header and body.
        assert_eq!(
            decode_frame(&ok[..3], limit),
            Err(FrameError::Truncated { needed: 6, got: 3 })
        );
        assert_eq!(
            decode_frame(&ok[..12], limit),
            Err(FrameError::Truncated {
                needed: 16,
                got: 12
            })
        );
        // Oversized: encoding refuses, decoding refuses from the header alone.
        assert_eq!(
            encode_frame(&Envelope::Data(vec![0; 17]), limit),
            Err(FrameError::TooLarge { len: 17, max: 16 })
        );
        let huge = [WIRE_VERSION, KIND_DATA, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            decode_frame(&huge, limit),
            Err(FrameError::TooLarge {
                len: u32::MAX as usize,
                max: 16
            })
        );
        // Wrong version, even on a single byte.
        assert!(matches!(
            decode_frame(&[1], limit),
            Err(FrameError::UnsupportedVersion {
                got: 1,
                supported: WIRE_VERSION
            })
        ));
        // Unknown kind, ping with a body, garbage handshake body.
        assert_eq!(
            decode_frame(&[WIRE_VERSION, 9, 0, 0, 0, 0], limit),
            Err(FrameError::UnknownKind(9))
        );
        assert_eq!(
            decode_frame(&[WIRE_VERSION, KIND_PING, 1, 0, 0, 0, 0], limit),
            Err(FrameError::UnexpectedBody(1))
        );
        assert!(matches!(
            decode_frame(&[WIRE_VERSION, KIND_HELLO, 2, 0, 0, 0, 1, 2], limit),
            Err(FrameError::Malformed { kind: "hello", .. })
        ));
        // Trailing bytes after one frame.
        let mut trailing = ok.clone();
        trailing.push(0);
        assert_eq!(
            decode_frame_exact(&trailing, limit),
            Err(FrameError::TrailingBytes(1))
        );
        assert_eq!(FrameLimit::new(0), Err(FrameError::LimitOutOfRange(0)));
        assert!(FrameLimit::new(MAX_FRAME_LEN + 1).is_err());
    }
}
