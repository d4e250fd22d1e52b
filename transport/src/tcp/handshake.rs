//! The mutually authenticated handshake and its key exchange.
//!
//! The dialer speaks first; the acceptor answers only a known identity:
//!
//! 1. each side sends `Hello { node, nonce, ephemeral }` — the identity it
//!    claims, a fresh 32-byte challenge, and a fresh X25519 public key
//!    (x25519-dalek `EphemeralSecret`, from the OS RNG, used once);
//! 2. on the other's `Hello`, each side checks the claimed identity (the
//!    expected peer when dialing; a known peer when accepting; never
//!    ourselves), the challenge (not our own reflected back, not one seen
//!    recently), and that the X25519 exchange is contributory (no low-order
//!    point);
//! 3. each side sends `Auth { signature }`: a schnorrkel signature under
//!    [`HANDSHAKE_DOMAIN`] over [`auth_transcript`]`(signer_hello,
//!    verifier_hello)` — both identities, both challenges and **both
//!    ephemeral keys**;
//! 4. each side verifies the other's `Auth` with the public key it claimed.
//!
//! Binding both ephemeral keys to both identities means a man in the middle
//! cannot substitute its own key-exchange key without forging a signature.
//! The session keys are derived from the X25519 shared secret and the hash of
//! both `Hello`s ([`SessionKeys::derive`]), one key per direction; every frame
//! after the handshake is sealed with ChaCha20-Poly1305 under them (see
//! [`crate::session`]).
//!
//! **Forward secrecy.** The ephemeral secrets are consumed by the exchange
//! and zeroized; the long-term node keys only sign. Someone who later steals
//! both node keys and holds a recording of the session still lacks the
//! ephemeral secrets, so cannot derive the session keys. A signature answers a
//! challenge that only this session has seen, so a recorded handshake cannot
//! be replayed either. A failed handshake drops the connection.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use idlegrid_primitives::{CryptoError, Domain, Keypair, NodeId, encode};
use rand::rngs::OsRng;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use x25519_dalek::{EphemeralSecret, PublicKey as XPublic, SharedSecret};

use super::io::{ReadDeadlines, read_frame, write_envelope};
use crate::error::TransportError;
use crate::frame::{Auth, Envelope, EphemeralKey, FrameLimit, Hello, Nonce, WIRE_VERSION};
use crate::session::SessionKeys;

/// The signing context of handshake signatures.
pub const HANDSHAKE_DOMAIN: Domain = Domain::new("idlegrid/transport/handshake");

/// The blake3 `derive_key` context of the handshake hash that keys the session.
const TRANSCRIPT_CONTEXT: &str = "idlegrid 2026 transport handshake transcript v1";

/// Why a peer failed the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The peer sent something other than the expected handshake message.
    #[error("expected a {expected} message")]
    UnexpectedMessage {
        /// The message that was expected.
        expected: &'static str,
    },
    /// We dialed one peer and another answered.
    #[error("dialed {expected:?} but {got:?} answered; check the address book")]
    WrongPeer {
        /// The identity in the address book.
        expected: NodeId,
        /// The identity the peer claimed.
        got: NodeId,
    },
    /// The peer is not in the address book.
    #[error("{0:?} is not in the address book")]
    UnknownPeer(NodeId),
    /// The peer claimed to be us.
    #[error("the peer claims our own identity")]
    SelfConnection,
    /// The peer's challenge is our own, reflected back.
    #[error("the peer reflected our nonce")]
    ReflectedNonce,
    /// The peer's challenge was used in a recent handshake.
    #[error("the peer replayed a recent nonce")]
    ReplayedNonce,
    /// The peer's ephemeral key is a low-order point: the exchange would not
    /// depend on our secret.
    #[error("the peer's ephemeral key is weak (non-contributory X25519 exchange)")]
    WeakEphemeralKey,
    /// The peer's signature does not verify for the identity it claimed.
    #[error("the peer's signature does not verify: {0}")]
    BadSignature(CryptoError),
}

/// The bytes each side signs: both `Hello`s — both identities, both
/// challenges and both ephemeral keys — so that a signature is valid for one
/// ordered pair of nodes in one session, with one key exchange, only.
pub fn auth_transcript(signer: &Hello, verifier: &Hello) -> Vec<u8> {
    encode(&(WIRE_VERSION, signer, verifier))
}

/// The hash both sides feed into the session keys: both `Hello`s in node-id
/// order (the same bytes on both ends).
fn transcript_hash(a: &Hello, b: &Hello) -> [u8; 32] {
    let (lo, hi) = if a.node < b.node { (a, b) } else { (b, a) };
    blake3::derive_key(TRANSCRIPT_CONTEXT, &encode(&(WIRE_VERSION, lo, hi)))
}

/// The session keys of an exchange (both sides compute the same pair,
/// mirrored). Fails on a non-contributory exchange.
pub fn session_keys(
    shared: &SharedSecret,
    mine: &Hello,
    theirs: &Hello,
) -> Result<SessionKeys, HandshakeError> {
    if !shared.was_contributory() {
        return Err(HandshakeError::WeakEphemeralKey);
    }
    let th = transcript_hash(mine, theirs);
    Ok(SessionKeys::derive(
        shared.as_bytes(),
        &th,
        mine.node,
        theirs.node,
    ))
}

/// A bounded memory of challenges seen in recent handshakes.
#[derive(Debug)]
pub(crate) struct NonceGuard {
    cap: usize,
    seen: Mutex<(VecDeque<Nonce>, HashSet<Nonce>)>,
}

impl NonceGuard {
    pub(crate) fn new(cap: usize) -> Self {
        assert!(cap > 0, "nonce memory must hold at least one nonce");
        Self {
            cap,
            seen: Mutex::new((VecDeque::new(), HashSet::new())),
        }
    }

    /// Records `n`; false if it was already recorded.
    pub(crate) fn insert(&self, n: Nonce) -> bool {
        let mut g = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let (order, set) = &mut *g;
        if !set.insert(n) {
            return false;
        }
        order.push_back(n);
        if order.len() > self.cap {
            let old = order.pop_front().expect("non-empty");
            set.remove(&old);
        }
        assert_eq!(order.len(), set.len());
        true
    }
}

/// What the local side brings to a handshake.
pub(crate) struct Local<'a> {
    pub keypair: &'a Keypair,
    pub nonce: Nonce,
    /// `Some` when dialing: the identity the address book names.
    pub expected: Option<NodeId>,
    pub is_known: &'a (dyn Fn(NodeId) -> bool + Sync),
    pub seen: &'a NonceGuard,
    /// Deadlines for the peer's first message (short: an idle connection
    /// holds a pending slot) and for its second.
    pub first: ReadDeadlines,
    pub deadlines: ReadDeadlines,
}

/// An authenticated peer and the keys of its session.
#[derive(Debug)]
pub(crate) struct Authenticated {
    pub peer: NodeId,
    pub keys: SessionKeys,
}

/// Runs the handshake on `stream` and returns the authenticated peer with
/// the session keys. The caller bounds the whole exchange with a timeout.
pub(crate) async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    local: Local<'_>,
) -> Result<Authenticated, TransportError> {
    let me = local.keypair.node_id();
    let limit = FrameLimit::HANDSHAKE;
    let secret = EphemeralSecret::random_from_rng(OsRng);
    let hello = Hello {
        node: me,
        nonce: local.nonce,
        ephemeral: EphemeralKey::from_bytes(XPublic::from(&secret).to_bytes()),
    };
    let dialing = local.expected.is_some();
    if dialing {
        write_envelope(stream, &Envelope::Hello(hello), limit).await?;
        stream.flush().await?;
    }
    let Envelope::Hello(theirs) = read_frame(stream, limit, local.first).await? else {
        return Err(HandshakeError::UnexpectedMessage { expected: "hello" }.into());
    };
    check_hello(&local, me, &theirs)?;
    let shared = secret.diffie_hellman(&XPublic::from(theirs.ephemeral.to_bytes()));
    let keys = session_keys(&shared, &hello, &theirs)?;
    drop(shared); // zeroized; only the derived keys remain
    if !dialing {
        write_envelope(stream, &Envelope::Hello(hello), limit).await?;
    }
    let auth = Auth {
        signature: local
            .keypair
            .sign(HANDSHAKE_DOMAIN, &auth_transcript(&hello, &theirs)),
    };
    write_envelope(stream, &Envelope::Auth(auth), limit).await?;
    stream.flush().await?;

    let Envelope::Auth(their_auth) = read_frame(stream, limit, local.deadlines).await? else {
        return Err(HandshakeError::UnexpectedMessage { expected: "auth" }.into());
    };
    theirs
        .node
        .public_key()
        .verify(
            HANDSHAKE_DOMAIN,
            &auth_transcript(&theirs, &hello),
            &their_auth.signature,
        )
        .map_err(HandshakeError::BadSignature)?;
    Ok(Authenticated {
        peer: theirs.node,
        keys,
    })
}

fn check_hello(local: &Local<'_>, me: NodeId, theirs: &Hello) -> Result<(), HandshakeError> {
    if theirs.node == me {
        return Err(HandshakeError::SelfConnection);
    }
    if let Some(expected) = local.expected
        && theirs.node != expected
    {
        return Err(HandshakeError::WrongPeer {
            expected,
            got: theirs.node,
        });
    }
    if !(local.is_known)(theirs.node) {
        return Err(HandshakeError::UnknownPeer(theirs.node));
    }
    if theirs.nonce == local.nonce {
        return Err(HandshakeError::ReflectedNonce);
    }
    if !local.seen.insert(theirs.nonce) {
        return Err(HandshakeError::ReplayedNonce);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Opened, SealKind};
    use idlegrid_primitives::Seed;
    use std::time::Duration;
    use tokio::io::{DuplexStream, duplex};

    fn kp(i: u64) -> Keypair {
        Keypair::from_seed(&Seed::from_u64(i))
    }

    const D: ReadDeadlines = ReadDeadlines {
        idle: Duration::from_secs(5),
        frame: Duration::from_secs(5),
    };

    fn eph() -> EphemeralKey {
        EphemeralKey::from_bytes(XPublic::from(&EphemeralSecret::random_from_rng(OsRng)).to_bytes())
    }

    fn hello(k: &Keypair, nonce: u8) -> Hello {
        Hello {
            node: k.node_id(),
            nonce: Nonce::from_bytes([nonce; 32]),
            ephemeral: eph(),
        }
    }

    async fn run(
        s: &mut DuplexStream,
        k: &Keypair,
        nonce: [u8; 32],
        expected: Option<NodeId>,
        seen: &NonceGuard,
    ) -> Result<Authenticated, TransportError> {
        let known = |_: NodeId| true;
        let local = Local {
            keypair: k,
            nonce: Nonce::from_bytes(nonce),
            expected,
            is_known: &known,
            seen,
            first: D,
            deadlines: D,
        };
        handshake(s, local).await
    }

    #[tokio::test]
    async fn honest_peers_authenticate_each_other_and_share_session_keys() {
        let (mut a, mut b) = duplex(1024);
        let (ka, kb) = (kp(1), kp(2));
        let (ga, gb) = (NonceGuard::new(8), NonceGuard::new(8));
        let (ra, rb) = tokio::join!(
            run(&mut a, &ka, [1; 32], Some(kb.node_id()), &ga),
            run(&mut b, &kb, [2; 32], None, &gb),
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(ra.peer, kb.node_id());
        assert_eq!(rb.peer, ka.node_id());
        let (mut sa, mut oa) = ra.keys.split(FrameLimit::DEFAULT);
        let (mut sb, mut ob) = rb.keys.split(FrameLimit::DEFAULT);
        let f = sa.seal_frame(SealKind::Data, b"a to b").unwrap();
        assert_eq!(ob.decode(&f).unwrap().0, Opened::Data(b"a to b".to_vec()));
        let f = sb.seal_frame(SealKind::Data, b"b to a").unwrap();
        assert_eq!(oa.decode(&f).unwrap().0, Opened::Data(b"b to a".to_vec()));
    }

    #[tokio::test]
    async fn dialing_the_wrong_peer_fails() {
        let (mut a, mut b) = duplex(1024);
        let (ka, kb) = (kp(1), kp(2));
        let (ga, gb) = (NonceGuard::new(8), NonceGuard::new(8));
        let (ra, rb) = tokio::join!(
            async {
                let r = run(&mut a, &ka, [1; 32], Some(kp(3).node_id()), &ga).await;
                drop(a); // hang up, as the transport does
                r
            },
            run(&mut b, &kb, [2; 32], None, &gb),
        );
        assert!(matches!(rb, Err(TransportError::Io(_))));
        assert!(matches!(
            ra,
            Err(TransportError::Handshake(HandshakeError::WrongPeer { .. }))
        ));
    }

    /// An impostor claims `victim`'s identity but can only sign with its own
    /// key.
    #[tokio::test]
    async fn wrong_key_is_rejected() {
        let (mut a, mut b) = duplex(1024);
        let (ka, victim, impostor) = (kp(1), kp(2), kp(3));
        let ga = NonceGuard::new(8);
        let attacker = async {
            let Envelope::Hello(h) = read_frame(&mut b, FrameLimit::HANDSHAKE, D).await.unwrap()
            else {
                panic!("expected hello")
            };
            let mine = hello(&victim, 9);
            let auth = Auth {
                signature: impostor.sign(HANDSHAKE_DOMAIN, &auth_transcript(&mine, &h)),
            };
            for env in [Envelope::Hello(mine), Envelope::Auth(auth)] {
                write_envelope(&mut b, &env, FrameLimit::HANDSHAKE)
                    .await
                    .unwrap();
            }
        };
        let (ra, ()) = tokio::join!(
            run(&mut a, &ka, [1; 32], Some(victim.node_id()), &ga),
            attacker
        );
        assert!(matches!(
            ra,
            Err(TransportError::Handshake(HandshakeError::BadSignature(_)))
        ));
    }

    /// A man in the middle who relays the identities but swaps in its own
    /// ephemeral key cannot produce a matching signature.
    #[tokio::test]
    async fn a_substituted_ephemeral_key_is_rejected() {
        let (mut a, mut b) = duplex(1024);
        let (ka, kb) = (kp(1), kp(2));
        let ga = NonceGuard::new(8);
        // B signed an honest transcript with its own ephemeral key; the
        // attacker forwards B's Auth but announces a key it controls.
        let attacker = async {
            let Envelope::Hello(h) = read_frame(&mut b, FrameLimit::HANDSHAKE, D).await.unwrap()
            else {
                panic!("expected hello")
            };
            let honest = hello(&kb, 9);
            let signature = kb.sign(HANDSHAKE_DOMAIN, &auth_transcript(&honest, &h));
            let swapped = Hello {
                ephemeral: eph(),
                ..honest
            };
            for env in [Envelope::Hello(swapped), Envelope::Auth(Auth { signature })] {
                write_envelope(&mut b, &env, FrameLimit::HANDSHAKE)
                    .await
                    .unwrap();
            }
        };
        let (ra, ()) = tokio::join!(run(&mut a, &ka, [1; 32], Some(kb.node_id()), &ga), attacker);
        assert!(matches!(
            ra,
            Err(TransportError::Handshake(HandshakeError::BadSignature(_)))
        ));
    }

    #[tokio::test]
    async fn a_low_order_ephemeral_key_is_rejected() {
        let (mut a, mut b) = duplex(1024);
        let (ka, kb) = (kp(1), kp(2));
        let ga = NonceGuard::new(8);
        let weak = Hello {
            ephemeral: EphemeralKey::from_bytes([0; 32]),
            ..hello(&kb, 9)
        };
        let weak = Envelope::Hello(weak);
        let (ra, _) = tokio::join!(
            run(&mut a, &ka, [1; 32], Some(kb.node_id()), &ga),
            write_envelope(&mut b, &weak, FrameLimit::HANDSHAKE)
        );
        assert!(matches!(
            ra,
            Err(TransportError::Handshake(HandshakeError::WeakEphemeralKey))
        ));
    }

    /// A recorded `Hello`/`Auth` pair replayed into a new session fails, and
    /// a reused or reflected challenge is refused up front.
    #[tokio::test]
    async fn replayed_handshake_and_nonces_are_rejected() {
        let (ka, kb) = (kp(1), kp(2));
        let ga = NonceGuard::new(8);
        // Session 1, honest: A's guard records B's nonce [2; 32].
        let (mut a, mut b) = duplex(1024);
        let gb = NonceGuard::new(8);
        let (r1, _) = tokio::join!(
            run(&mut a, &ka, [1; 32], Some(kb.node_id()), &ga),
            run(&mut b, &kb, [2; 32], None, &gb),
        );
        r1.unwrap();
        // What an eavesdropper recorded from B (signed for session 1's A).
        let b_hello = hello(&kb, 2);
        let a_hello = hello(&ka, 1);
        let recorded = (
            b_hello,
            Auth {
                signature: kb.sign(HANDSHAKE_DOMAIN, &auth_transcript(&b_hello, &a_hello)),
            },
        );
        let (ka_ref, ga_ref, kb_id) = (&ka, &ga, kb.node_id());
        let replay = |hello: Hello, auth: Auth| async move {
            let (mut a, mut b) = duplex(1024);
            let attacker = async {
                write_envelope(&mut b, &Envelope::Hello(hello), FrameLimit::HANDSHAKE).await?;
                write_envelope(&mut b, &Envelope::Auth(auth), FrameLimit::HANDSHAKE).await?;
                Ok::<_, TransportError>(b)
            };
            let (r, _b) = tokio::join!(run(&mut a, ka_ref, [3; 32], Some(kb_id), ga_ref), attacker);
            r
        };
        // The nonce memory catches it first...
        assert!(matches!(
            replay(recorded.0, recorded.1).await,
            Err(TransportError::Handshake(HandshakeError::ReplayedNonce))
        ));
        // ...and with a new nonce, the old signature does not verify.
        let fresh = Hello {
            nonce: Nonce::from_bytes([4; 32]),
            ..recorded.0
        };
        assert!(matches!(
            replay(fresh, recorded.1).await,
            Err(TransportError::Handshake(HandshakeError::BadSignature(_)))
        ));
        // Reflecting the acceptor's own challenge back.
        let (mut a, mut b) = duplex(1024);
        let reflected = Envelope::Hello(hello(&kb, 5));
        let (r, _) = tokio::join!(
            run(&mut a, &ka, [5; 32], None, &ga),
            write_envelope(&mut b, &reflected, FrameLimit::HANDSHAKE)
        );
        assert!(matches!(
            r,
            Err(TransportError::Handshake(HandshakeError::ReflectedNonce))
        ));
    }

    #[tokio::test]
    async fn garbage_and_data_before_auth_fail() {
        let ka = kp(1);
        let ga = NonceGuard::new(8);
        let (mut a, mut b) = duplex(1024);
        let (r, _) = tokio::join!(run(&mut a, &ka, [1; 32], None, &ga), async {
            b.write_all(b"GET / HTTP/1.1\r\n").await
        });
        assert!(matches!(r, Err(TransportError::Frame(_))));
        let (mut a, mut b) = duplex(1024);
        let data = Envelope::Data(vec![1; 4]);
        let (r, _) = tokio::join!(
            run(&mut a, &ka, [1; 32], None, &ga),
            write_envelope(&mut b, &data, FrameLimit::HANDSHAKE)
        );
        assert!(matches!(
            r,
            Err(TransportError::Handshake(
                HandshakeError::UnexpectedMessage { .. }
            ))
        ));
    }

    #[test]
    fn nonce_memory_is_bounded() {
        let g = NonceGuard::new(2);
        let n = |i: u8| Nonce::from_bytes([i; 32]);
        assert!(g.insert(n(1)));
        assert!(!g.insert(n(1)));
        assert!(g.insert(n(2)));
        assert!(g.insert(n(3)));
        assert!(g.insert(n(1)), "evicted after cap");
    }
}
