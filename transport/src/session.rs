//! The encrypted session layer: every frame after the handshake.
//!
//! ```text
//! sealed frame = version:u8 | kind:u8 | len:u32 little-endian | ciphertext[len - 16] | tag[16]
//! kind 4 = Data   plaintext = the application's bytes
//! kind 5 = Ping   plaintext = empty (keepalive)
//! kind 6 = Rekey  plaintext = empty: the sender's next frame uses the next key
//! ```
//!
//! Each direction has its own ChaCha20-Poly1305 key ([`SessionKeys`], from
//! the handshake's ephemeral X25519 exchange) and its own frame counter. The
//! nonce is the counter (`0u32 || counter:u64 LE`), which both sides
//! advance by one per frame and never reset; the associated data is the
//! frame's 6-byte header, so kind and length are authenticated too. A frame
//! that was altered, replayed, reordered, preceded by a dropped frame, or cut
//! short fails authentication at the receiver ([`SessionError::Authentication`])
//! and the [`Opener`] refuses everything after it: the session is over and the
//! transport reconnects.
//!
//! **Rekeying.** After a `Rekey` frame the sender replaces its key with
//! `blake3::derive_key(`[`REKEY_CONTEXT`]`, key)` and the receiver does the
//! same when it opens that frame, so both stay in lockstep on the ordered
//! stream. The raw keys held here are zeroized when replaced (ring's own
//! expanded key is dropped, not wiped); a key stolen from memory later does
//! not open frames sealed before the last rekey.
//!
//! The AEAD is ring's ChaCha20-Poly1305 (BoringSSL's assembly, the one
//! rustls and quinn use): 256-byte frames, the size of consensus votes and
//! acknowledgements, seal and open 5-10 times faster than with the
//! RustCrypto crate (`cargo bench -p idlegrid-transport --bench transport
//! -- transport::session`).
//!
//! This module holds no I/O and no clock: [`Opener::decode`] takes bytes, the
//! TCP transport feeds it from the socket, and the fuzz target
//! `transport_session` feeds it from the fuzzer. Decoding never panics and
//! allocates at most one body within the limit.

use idlegrid_primitives::NodeId;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce as AeadNonce, UnboundKey};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::frame::{FrameError, FrameLimit, HEADER_LEN, WIRE_VERSION, check_version};

/// Bytes of the Poly1305 tag at the end of every sealed frame.
pub const TAG_LEN: usize = 16;
/// The blake3 `derive_key` context of the session keys.
pub const KEY_CONTEXT: &str = "idlegrid 2026 transport session key v1";
/// The blake3 `derive_key` context of a rekey step.
pub const REKEY_CONTEXT: &str = "idlegrid 2026 transport session rekey v1";

const KIND_DATA: u8 = 4;
const KIND_PING: u8 = 5;
const KIND_REKEY: u8 = 6;

/// Why a sealed frame was refused. Any of these ends the session.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The header is malformed (version, oversize length), or the bytes end
    /// before the frame does ([`FrameError::Truncated`]: wait for more).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The kind byte names no sealed frame (a plaintext or handshake frame
    /// inside the session, or garbage).
    #[error("frame kind {0} is not allowed inside an encrypted session")]
    UnexpectedKind(u8),
    /// The announced length cannot hold what the kind needs (shorter than the
    /// tag, or a `Ping`/`Rekey` with a body).
    #[error("sealed frame of kind {kind} has a bad length {len}")]
    BadLength {
        /// The kind byte.
        kind: u8,
        /// The announced length.
        len: usize,
    },
    /// The frame does not authenticate under the expected key and counter: it
    /// was altered, replayed, reordered or truncated in transit, or a frame
    /// before it was dropped. The peer reconnects with a fresh session.
    #[error(
        "frame {counter} failed authentication (altered, replayed, reordered, dropped or truncated in transit)"
    )]
    Authentication {
        /// The receive counter at which it failed.
        counter: u64,
    },
    /// The frame counter is exhausted; reconnect for a fresh session.
    #[error("the session's frame counter is exhausted; reconnect")]
    CounterExhausted,
    /// An earlier frame failed; this session accepts nothing more.
    #[error("the session was closed by an earlier error")]
    Closed,
}

/// What an opened frame carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// Application bytes, authenticated.
    Data(Vec<u8>),
    /// A keepalive.
    Ping,
    /// The sender switched keys; the opener already followed.
    Rekey,
}

/// The kind of a frame to seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealKind {
    /// Application bytes.
    Data,
    /// A keepalive (empty body).
    Ping,
    /// The key switch (empty body); call [`Sealer::rekey`] right after.
    Rekey,
}

impl SealKind {
    const fn byte(self) -> u8 {
        match self {
            SealKind::Data => KIND_DATA,
            SealKind::Ping => KIND_PING,
            SealKind::Rekey => KIND_REKEY,
        }
    }
}

/// A 256-bit symmetric key, zeroized on drop.
type SecretKey = Zeroizing<[u8; 32]>;

/// The two directional keys of one session.
pub struct SessionKeys {
    send: SecretKey,
    recv: SecretKey,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

impl SessionKeys {
    /// Derives both directions' keys from the X25519 shared secret and the
    /// hash of the handshake both sides signed. The key of direction
    /// `from -> to` is `derive_key(KEY_CONTEXT, shared || transcript || from || to)`,
    /// so `me`'s send key is `peer`'s receive key and vice versa.
    pub fn derive(shared: &[u8; 32], transcript: &[u8; 32], me: NodeId, peer: NodeId) -> Self {
        assert_ne!(me, peer, "a session has two distinct ends");
        let key = |from: NodeId, to: NodeId| {
            let mut ikm = Zeroizing::new([0u8; 128]);
            ikm[..32].copy_from_slice(shared);
            ikm[32..64].copy_from_slice(transcript);
            ikm[64..96].copy_from_slice(&from.to_bytes());
            ikm[96..].copy_from_slice(&to.to_bytes());
            Zeroizing::new(blake3::derive_key(KEY_CONTEXT, &ikm[..]))
        };
        Self {
            send: key(me, peer),
            recv: key(peer, me),
        }
    }

    /// Test and fuzz helper: a session from raw directional keys.
    pub fn from_raw(send: [u8; 32], recv: [u8; 32]) -> Self {
        Self {
            send: Zeroizing::new(send),
            recv: Zeroizing::new(recv),
        }
    }

    /// The sealing and opening halves, both limited to bodies of `limit`
    /// plaintext bytes.
    pub fn split(self, limit: FrameLimit) -> (Sealer, Opener) {
        (
            Sealer {
                dir: Direction::new(self.send),
                limit,
                epoch_bytes: 0,
            },
            Opener {
                dir: Direction::new(self.recv),
                limit,
                closed: false,
            },
        )
    }
}

/// One direction's key, cipher and counter.
struct Direction {
    key: SecretKey,
    cipher: LessSafeKey,
    counter: u64,
}

/// ring's ChaCha20-Poly1305 under `key` (its nonces are managed here: one
/// per frame, from the counter).
fn cipher(key: &[u8; 32]) -> LessSafeKey {
    let k = UnboundKey::new(&CHACHA20_POLY1305, key).expect("32 bytes is a ChaCha20 key");
    LessSafeKey::new(k)
}

impl Direction {
    fn new(key: SecretKey) -> Self {
        let cipher = cipher(&key);
        Self {
            key,
            cipher,
            counter: 0,
        }
    }

    fn nonce(&self) -> AeadNonce {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&self.counter.to_le_bytes());
        AeadNonce::assume_unique_for_key(n)
    }

    /// The counter moves on; the last value is never used, so no nonce
    /// repeats even at exhaustion.
    fn advance(&mut self) -> Result<(), SessionError> {
        self.counter = self
            .counter
            .checked_add(1)
            .filter(|c| *c < u64::MAX)
            .ok_or(SessionError::CounterExhausted)?;
        Ok(())
    }

    fn rekey(&mut self) {
        let next = Zeroizing::new(blake3::derive_key(REKEY_CONTEXT, &self.key[..]));
        self.cipher = cipher(&next);
        self.key = next; // the old key is zeroized on drop
    }
}

fn header(kind: u8, len: usize) -> [u8; HEADER_LEN] {
    let l = u32::try_from(len)
        .expect("sealed length is bounded by MAX_FRAME_LEN + TAG_LEN")
        .to_le_bytes();
    [WIRE_VERSION, kind, l[0], l[1], l[2], l[3]]
}

/// The sending half of a session.
pub struct Sealer {
    dir: Direction,
    limit: FrameLimit,
    epoch_bytes: u64,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("counter", &self.dir.counter)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// Encrypts `body` in place, appends the tag, and returns the frame
    /// header to write before it. `Ping` and `Rekey` bodies must be empty.
    pub fn seal(
        &mut self,
        kind: SealKind,
        body: &mut Vec<u8>,
    ) -> Result<[u8; HEADER_LEN], SessionError> {
        self.limit.check(body.len())?;
        assert!(
            kind == SealKind::Data || body.is_empty(),
            "control frames are empty"
        );
        let h = header(kind.byte(), body.len() + TAG_LEN);
        let tag = self
            .dir
            .cipher
            .seal_in_place_separate_tag(self.dir.nonce(), Aad::from(h), body.as_mut_slice())
            .map_err(|_| SessionError::CounterExhausted)?; // only on > 256 GiB bodies
        body.extend_from_slice(tag.as_ref());
        self.dir.advance()?;
        self.epoch_bytes += body.len() as u64;
        Ok(h)
    }

    /// A complete sealed frame (header and body), for tests and tools.
    pub fn seal_frame(&mut self, kind: SealKind, body: &[u8]) -> Result<Vec<u8>, SessionError> {
        let mut b = body.to_vec();
        let h = self.seal(kind, &mut b)?;
        let mut out = h.to_vec();
        out.extend_from_slice(&b);
        Ok(out)
    }

    /// Switches to the next key. Call right after sealing a
    /// [`SealKind::Rekey`] frame, never otherwise.
    pub fn rekey(&mut self) {
        self.dir.rekey();
        self.epoch_bytes = 0;
    }

    /// Sealed bytes since the last rekey.
    pub fn bytes_since_rekey(&self) -> u64 {
        self.epoch_bytes
    }

    /// Frames sealed so far.
    pub fn counter(&self) -> u64 {
        self.dir.counter
    }
}

/// A checked sealed-frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedHeader {
    bytes: [u8; HEADER_LEN],
    len: usize,
}

impl SealedHeader {
    /// Bytes that follow the header (ciphertext and tag).
    pub const fn body_len(&self) -> usize {
        self.len
    }
}

/// The receiving half of a session.
pub struct Opener {
    dir: Direction,
    limit: FrameLimit,
    closed: bool,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("counter", &self.dir.counter)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Opener {
    /// Checks a header (version, sealed kind, length within the limit plus
    /// the tag). Allocates nothing.
    pub fn parse_header(&self, h: &[u8; HEADER_LEN]) -> Result<SealedHeader, SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        check_version(h[0])?;
        let kind = h[1];
        let len = u32::from_le_bytes([h[2], h[3], h[4], h[5]]) as usize;
        let body = match kind {
            KIND_DATA => len.checked_sub(TAG_LEN),
            KIND_PING | KIND_REKEY => (len == TAG_LEN).then_some(0),
            other => return Err(SessionError::UnexpectedKind(other)),
        };
        let body = body.ok_or(SessionError::BadLength { kind, len })?;
        self.limit.check(body)?;
        Ok(SealedHeader { bytes: *h, len })
    }

    /// Authenticates and decrypts a body of exactly `header.body_len()`
    /// bytes. Any error closes the opener for good.
    pub fn open(&mut self, header: SealedHeader, body: Vec<u8>) -> Result<Opened, SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        let r = self.open_inner(header, body);
        self.closed = r.is_err();
        r
    }

    fn open_inner(
        &mut self,
        header: SealedHeader,
        mut body: Vec<u8>,
    ) -> Result<Opened, SessionError> {
        if body.len() != header.len {
            return Err(FrameError::Truncated {
                needed: HEADER_LEN + header.len,
                got: HEADER_LEN + body.len(),
            }
            .into());
        }
        // parse_header: len >= TAG_LEN; the tag is the body's last bytes.
        let plain = self
            .dir
            .cipher
            .open_in_place(self.dir.nonce(), Aad::from(header.bytes), &mut body)
            .map_err(|_| SessionError::Authentication {
                counter: self.dir.counter,
            })?
            .len();
        body.truncate(plain);
        self.dir.advance()?;
        Ok(match header.bytes[1] {
            KIND_DATA => Opened::Data(body),
            KIND_PING => Opened::Ping,
            _ => {
                self.dir.rekey();
                Opened::Rekey
            }
        })
    }

    /// Opens the first sealed frame of `bytes` and returns it with the number
    /// of bytes it used. [`FrameError::Truncated`] means "not enough bytes
    /// yet" and leaves the session open; every other error closes it.
    pub fn decode(&mut self, bytes: &[u8]) -> Result<(Opened, usize), SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        let Some(h) = bytes.first_chunk::<HEADER_LEN>() else {
            if let Some(&v) = bytes.first() {
                check_version(v).inspect_err(|_| self.closed = true)?;
            }
            return Err(truncated(HEADER_LEN, bytes.len()));
        };
        let header = self.parse_header(h).inspect_err(|_| self.closed = true)?;
        let end = HEADER_LEN + header.len;
        let Some(body) = bytes.get(HEADER_LEN..end) else {
            return Err(truncated(end, bytes.len()));
        };
        Ok((self.open(header, body.to_vec())?, end))
    }

    /// Frames opened so far.
    pub fn counter(&self) -> u64 {
        self.dir.counter
    }

    /// True once a frame has failed: nothing more is accepted.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

fn truncated(needed: usize, got: usize) -> SessionError {
    FrameError::Truncated { needed, got }.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use idlegrid_primitives::{Keypair, Seed};

    fn pair() -> (Sealer, Opener) {
        let (a, b) = (
            Keypair::from_seed(&Seed::from_u64(1)).node_id(),
            Keypair::from_seed(&Seed::from_u64(2)).node_id(),
        );
        let ka = SessionKeys::derive(&[7; 32], &[8; 32], a, b);
        let kb = SessionKeys::derive(&[7; 32], &[8; 32], b, a);
        let (s, _) = ka.split(FrameLimit::DEFAULT);
        let (_, o) = kb.split(FrameLimit::DEFAULT);
        (s, o)
    }

    fn frames(s: &mut Sealer, n: u8) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| s.seal_frame(SealKind::Data, &[i; 40]).unwrap())
            .collect()
    }

    #[test]
    fn frames_round_trip_in_order_and_ciphertext_hides_the_payload() {
        let (mut s, mut o) = pair();
        for (i, f) in frames(&mut s, 5).iter().enumerate() {
            assert!(!f.windows(40).any(|w| w == [i as u8; 40]));
            assert_eq!(
                o.decode(f).unwrap(),
                (Opened::Data(vec![i as u8; 40]), f.len())
            );
        }
        let ping = s.seal_frame(SealKind::Ping, &[]).unwrap();
        assert_eq!(o.decode(&ping).unwrap().0, Opened::Ping);
    }

    #[test]
    fn tampering_of_every_kind_fails_and_closes() {
        let cases: [fn(&mut Vec<Vec<u8>>); 5] = [
            |f| f[1][HEADER_LEN + 3] ^= 1, // bit flip in the ciphertext
            |f| f[1][2] ^= 8,              // length in the header (AAD)
            |f| f[1] = f[0].clone(),       // replay
            |f| drop(f.remove(1)),         // drop
            |f| f.swap(1, 2),              // reorder
        ];
        for tamper in cases {
            let (mut s, mut o) = pair();
            let mut fs = frames(&mut s, 4);
            tamper(&mut fs);
            assert!(o.decode(&fs[0]).is_ok());
            let e = o.decode(&fs[1]).unwrap_err();
            assert!(
                matches!(
                    e,
                    SessionError::Authentication { counter: 1 } | SessionError::Frame(_)
                ),
                "{e:?}"
            );
            assert!(o.is_closed());
            assert_eq!(o.decode(&fs[2]).unwrap_err(), SessionError::Closed);
        }
    }

    #[test]
    fn truncation_waits_then_a_cut_frame_fails() {
        let (mut s, mut o) = pair();
        let f = s.seal_frame(SealKind::Data, b"hello").unwrap();
        for cut in 0..f.len() {
            assert!(matches!(
                o.decode(&f[..cut]),
                Err(SessionError::Frame(FrameError::Truncated { .. }))
            ));
        }
        // A frame whose header was rewritten to a shorter length fails.
        let mut short = f[..f.len() - 1].to_vec();
        short[2] -= 1;
        assert!(matches!(
            o.decode(&short),
            Err(SessionError::Authentication { .. })
        ));
    }

    #[test]
    fn rekey_keeps_both_sides_in_lockstep_and_old_keys_fail() {
        let (mut s, mut o) = pair();
        let before = s.seal_frame(SealKind::Data, b"epoch 0").unwrap();
        let rk = s.seal_frame(SealKind::Rekey, &[]).unwrap();
        s.rekey();
        assert_eq!(s.bytes_since_rekey(), 0);
        let after = s.seal_frame(SealKind::Data, b"epoch 1").unwrap();
        assert_eq!(
            o.decode(&before).unwrap().0,
            Opened::Data(b"epoch 0".to_vec())
        );
        assert_eq!(o.decode(&rk).unwrap().0, Opened::Rekey);
        assert_eq!(
            o.decode(&after).unwrap().0,
            Opened::Data(b"epoch 1".to_vec())
        );
        // A receiver that missed the rekey cannot open the new epoch.
        let (mut s2, mut o2) = pair();
        let _ = s2.seal_frame(SealKind::Data, b"x").unwrap();
        let _ = s2.seal_frame(SealKind::Ping, &[]).unwrap();
        s2.rekey(); // without telling the peer
        let f = s2.seal_frame(SealKind::Data, b"y").unwrap();
        let _ = o2.decode(&s.seal_frame(SealKind::Ping, &[]).unwrap()); // wrong stream: fails
        assert!(o2.decode(&f).is_err());
    }

    #[test]
    fn bad_headers_are_refused_without_allocating() {
        let (_, mut o) = pair();
        type Check = fn(&SessionError) -> bool;
        let bad: [(&[u8], Check); 5] = [
            (&[9, 4, 0, 0, 0, 0], |e| {
                matches!(
                    e,
                    SessionError::Frame(FrameError::UnsupportedVersion { .. })
                )
            }),
            (&[WIRE_VERSION, 2, 0, 0, 0, 0], |e| {
                matches!(e, SessionError::UnexpectedKind(2))
            }),
            (&[WIRE_VERSION, 4, 3, 0, 0, 0], |e| {
                matches!(e, SessionError::BadLength { .. })
            }),
            (&[WIRE_VERSION, 5, 17, 0, 0, 0], |e| {
                matches!(e, SessionError::BadLength { .. })
            }),
            (&[WIRE_VERSION, 4, 0xff, 0xff, 0xff, 0xff], |e| {
                matches!(e, SessionError::Frame(FrameError::TooLarge { .. }))
            }),
        ];
        for (bytes, ok) in bad {
            let (_, mut fresh) = pair();
            let e = fresh.decode(bytes).unwrap_err();
            assert!(ok(&e), "{bytes:?}: {e:?}");
            assert!(fresh.is_closed());
        }
        assert!(matches!(o.decode(&[9]), Err(SessionError::Frame(_))));
    }

    #[test]
    fn directions_use_distinct_keys() {
        let (a, b) = (
            Keypair::from_seed(&Seed::from_u64(1)).node_id(),
            Keypair::from_seed(&Seed::from_u64(2)).node_id(),
        );
        let (mut s, mut o) =
            SessionKeys::derive(&[7; 32], &[8; 32], a, b).split(FrameLimit::DEFAULT);
        // Reflecting a's own frame back to it does not open.
        let f = s.seal_frame(SealKind::Data, b"mine").unwrap();
        assert!(matches!(
            o.decode(&f),
            Err(SessionError::Authentication { counter: 0 })
        ));
    }
}
