//! The mutually authenticated handshake.
//!
//! Both sides, concurrently:
//!
//! 1. send `Hello { node, nonce }` — the identity they claim and a fresh
//!    32-byte challenge from the OS RNG;
//! 2. on the other's `Hello`, check the claimed identity (the expected peer
//!    when dialing; a known peer when accepting; never ourselves) and the
//!    challenge (not our own reflected back, not one seen recently);
//! 3. send `Auth { signature }`: a signature under [`HANDSHAKE_DOMAIN`] over
//!    [`auth_transcript`]`(signer, verifier, signer_nonce, verifier_nonce)`;
//! 4. verify the other's `Auth` with the public key it claimed.
//!
//! A signature answers a challenge that only this session has seen, so a
//! recorded handshake cannot be replayed, and binding both identities stops
//! a relay between two sessions. A failed handshake drops the connection.
//!
//! The handshake authenticates the peer at connection time only; frames that
//! follow are neither encrypted nor individually authenticated (an on-path
//! attacker could inject them). Integrators who need that run over a secure
//! channel (WireGuard, TLS, Noise).

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use idlegrid_primitives::{CryptoError, Domain, Keypair, NodeId, encode};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::io::{ReadDeadlines, read_frame, write_envelope};
use crate::error::TransportError;
use crate::frame::{Auth, Envelope, FrameLimit, Hello, Nonce, WIRE_VERSION};

/// The signing context of handshake signatures.
pub const HANDSHAKE_DOMAIN: Domain = Domain::new("idlegrid/transport/handshake");

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
    /// The peer's signature does not verify for the identity it claimed.
    #[error("the peer's signature does not verify: {0}")]
    BadSignature(CryptoError),
}

/// The bytes each side signs: both identities and both challenges, so that
/// a signature is valid for one ordered pair of nodes in one session only.
pub fn auth_transcript(
    signer: NodeId,
    verifier: NodeId,
    signer_nonce: &Nonce,
    verifier_nonce: &Nonce,
) -> Vec<u8> {
    encode(&(WIRE_VERSION, signer, verifier, signer_nonce, verifier_nonce))
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
    pub deadlines: ReadDeadlines,
}

/// Runs the handshake on `stream` and returns the authenticated peer.
/// The caller bounds the whole exchange with a timeout.
pub(crate) async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    local: Local<'_>,
) -> Result<NodeId, TransportError> {
    let me = local.keypair.node_id();
    let limit = FrameLimit::HANDSHAKE;
    let hello = Hello {
        node: me,
        nonce: local.nonce,
    };
    write_envelope(stream, &Envelope::Hello(hello), limit).await?;
    stream.flush().await?;

    let Envelope::Hello(theirs) = read_frame(stream, limit, local.deadlines).await? else {
        return Err(HandshakeError::UnexpectedMessage { expected: "hello" }.into());
    };
    check_hello(&local, me, &theirs)?;

    let transcript = auth_transcript(me, theirs.node, &local.nonce, &theirs.nonce);
    let auth = Auth {
        signature: local.keypair.sign(HANDSHAKE_DOMAIN, &transcript),
    };
    write_envelope(stream, &Envelope::Auth(auth), limit).await?;
    stream.flush().await?;

    let Envelope::Auth(their_auth) = read_frame(stream, limit, local.deadlines).await? else {
        return Err(HandshakeError::UnexpectedMessage { expected: "auth" }.into());
    };
    let expected_transcript = auth_transcript(theirs.node, me, &theirs.nonce, &local.nonce);
    theirs
        .node
        .public_key()
        .verify(
            HANDSHAKE_DOMAIN,
            &expected_transcript,
            &their_auth.signature,
        )
        .map_err(HandshakeError::BadSignature)?;
    Ok(theirs.node)
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

    async fn run(
        s: &mut DuplexStream,
        k: &Keypair,
        nonce: [u8; 32],
        expected: Option<NodeId>,
        seen: &NonceGuard,
    ) -> Result<NodeId, TransportError> {
        let known = |_: NodeId| true;
        let local = Local {
            keypair: k,
            nonce: Nonce::from_bytes(nonce),
            expected,
            is_known: &known,
            seen,
            deadlines: D,
        };
        handshake(s, local).await
    }

    #[tokio::test]
    async fn honest_peers_authenticate_each_other() {
        let (mut a, mut b) = duplex(1024);
        let (ka, kb) = (kp(1), kp(2));
        let (ga, gb) = (NonceGuard::new(8), NonceGuard::new(8));
        let (ra, rb) = tokio::join!(
            run(&mut a, &ka, [1; 32], Some(kb.node_id()), &ga),
            run(&mut b, &kb, [2; 32], None, &gb),
        );
        assert_eq!(ra.unwrap(), kb.node_id());
        assert_eq!(rb.unwrap(), ka.node_id());
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
            let hello = Hello {
                node: victim.node_id(),
                nonce: Nonce::from_bytes([9; 32]),
            };
            write_envelope(&mut b, &Envelope::Hello(hello), FrameLimit::HANDSHAKE)
                .await
                .unwrap();
            let Envelope::Hello(h) = read_frame(&mut b, FrameLimit::HANDSHAKE, D).await.unwrap()
            else {
                panic!("expected hello")
            };
            let t = auth_transcript(victim.node_id(), h.node, &hello.nonce, &h.nonce);
            let auth = Auth {
                signature: impostor.sign(HANDSHAKE_DOMAIN, &t),
            };
            write_envelope(&mut b, &Envelope::Auth(auth), FrameLimit::HANDSHAKE)
                .await
                .unwrap();
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

    /// A recorded honest handshake replayed against a fresh challenge fails,
    /// and a reused or reflected challenge is refused up front.
    #[tokio::test]
    async fn replayed_handshake_and_nonces_are_rejected() {
        let (ka, kb) = (kp(1), kp(2));
        let ga = NonceGuard::new(8);
        // Session 1, honest, recording what B sent.
        let (mut a, mut b) = duplex(1024);
        let gb = NonceGuard::new(8);
        let (r1, _) = tokio::join!(
            run(&mut a, &ka, [1; 32], Some(kb.node_id()), &ga),
            run(&mut b, &kb, [2; 32], None, &gb),
        );
        r1.unwrap();
        let t = auth_transcript(
            kb.node_id(),
            ka.node_id(),
            &Nonce::from_bytes([2; 32]),
            &Nonce::from_bytes([1; 32]),
        );
        let recorded = (
            Hello {
                node: kb.node_id(),
                nonce: Nonce::from_bytes([2; 32]),
            },
            Auth {
                signature: kb.sign(HANDSHAKE_DOMAIN, &t),
            },
        );
        // Replaying B's exact messages into a new session with a fresh A
        // challenge: the nonce memory catches it first...
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
        // Reflecting A's own challenge back.
        let reflected = Hello {
            nonce: Nonce::from_bytes([5; 32]),
            ..recorded.0
        };
        let (mut a, mut b) = duplex(1024);
        let reflected = Envelope::Hello(reflected);
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
