//! # idlegrid-transport
//!
//! The wire for idlegrid nodes. The protocol crates are sans-IO state
//! machines ([`idlegrid_primitives::Machine`]); this crate moves their
//! messages between processes and drives them with the real clock.
//!
//! - [`Transport`]: an async trait — send bytes to a [`NodeId`], broadcast,
//!   receive `(NodeId, bytes)` from authenticated peers. Connection
//!   management is hidden behind it. Bounded queues; a full queue drops the
//!   new message with [`TransportError::QueueFull`].
//! - [`frame`]: the wire format — version byte, kind, length prefix, hard
//!   maximum size ([`MAX_FRAME_LEN`]); decoding untrusted bytes never panics
//!   and never allocates from an unchecked length.
//! - [`MemoryNetwork`] / [`MemoryTransport`]: in-process, on futures
//!   channels, with seeded loss and delay, for tests and examples.
//! - [`TcpTransport`]: TCP on tokio with an [`AddressBook`], a mutually
//!   authenticated handshake (each side signs both fresh nonces and both
//!   ephemeral X25519 keys under [`HANDSHAKE_DOMAIN`]) followed by an
//!   encrypted, authenticated [`session`] (ChaCha20-Poly1305, per-direction
//!   keys, counter nonces, rekeying; forward secrecy), limits on
//!   unauthenticated connections (per address and in total, with eviction of
//!   the oldest), queues bounded in messages and bytes, reconnect with
//!   backoff, keepalive, and the policies documented in [`tcp`].
//! - [`session`]: the sans-IO sealing and opening of frames after the
//!   handshake; a tampered, replayed, reordered, dropped or truncated frame is
//!   a typed [`SessionError`](session::SessionError) that ends the session.
//! - [`Runner`]: drives any `Machine` over any `Transport` with a [`Clock`]
//!   and a [`Codec`] for the machine's messages ([`PostcardCodec`] for any
//!   `Serialize + DeserializeOwned` type).
//!
//! ## Time
//!
//! [`Clock`] is the only reader of the OS clock. Machines receive
//! [`idlegrid_primitives::Timestamp`]s (microseconds since the clock
//! started) and never sleep; the runner sleeps until `poll_timeout`.
//!
//! ## Example: two nodes ping-pong over the in-memory transport
//!
//! ```
//! use idlegrid_primitives::{Keypair, Machine, NodeId, Seed, Timestamp, Transmit};
//! use idlegrid_transport::{MemoryConfig, MemoryNetwork, PostcardCodec, Runner, Transport};
//!
//! /// Sends `0` to its peer at start; answers `n` with `n + 1` up to 10.
//! struct PingPong { peer: NodeId, start: bool, out: Vec<Transmit<u32>>, last: Option<u32> }
//!
//! impl Machine for PingPong {
//!     type Message = u32;
//!     type Event = u32;
//!     fn handle_message(&mut self, _now: Timestamp, from: NodeId, n: u32) {
//!         self.last = Some(n);
//!         if n < 10 { self.out.push(Transmit::to(from, n + 1)); }
//!     }
//!     fn handle_timeout(&mut self, _now: Timestamp) {
//!         self.start = false;
//!         self.out.push(Transmit::to(self.peer, 0));
//!     }
//!     fn poll_transmit(&mut self) -> Option<Transmit<u32>> { self.out.pop() }
//!     fn poll_event(&mut self) -> Option<u32> { self.last.take() }
//!     fn poll_timeout(&self) -> Option<Timestamp> { self.start.then_some(Timestamp::ZERO) }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let net = MemoryNetwork::new(MemoryConfig::default()).unwrap();
//! let (a, b) = (Keypair::from_seed(&Seed::from_u64(1)), Keypair::from_seed(&Seed::from_u64(2)));
//! let (ta, tb) = (net.join(a.node_id()), net.join(b.node_id()));
//! let ma = PingPong { peer: b.node_id(), start: true, out: vec![], last: None };
//! let mb = PingPong { peer: a.node_id(), start: false, out: vec![], last: None };
//!
//! // a receives the odd numbers and stops at 9; b the even ones and stops at 10.
//! let (stop_b, b_done) = tokio::sync::oneshot::channel::<()>();
//! let mut stop_b = Some(stop_b);
//! let node_b = Runner::new(mb, tb, PostcardCodec::default()).run(
//!     async { let _ = b_done.await; },
//!     move |n| if n == 10 { stop_b.take().map(|s| s.send(())); },
//! );
//! let (stop_a, a_done) = tokio::sync::oneshot::channel::<()>();
//! let mut stop_a = Some(stop_a);
//! let node_a = Runner::new(ma, ta, PostcardCodec::default()).run(
//!     async { let _ = a_done.await; },
//!     move |n| if n == 9 { stop_a.take().map(|s| s.send(())); },
//! );
//! let (a, b) = tokio::join!(node_a, node_b);
//! assert_eq!(a.stats.messages_delivered, 5); // 1, 3, 5, 7, 9
//! assert_eq!(b.stats.messages_delivered, 6); // 0, 2, 4, 6, 8, 10
//! a.transport.shutdown().await;
//! b.transport.shutdown().await;
//! # }
//! ```
//!
//! ## For auditors
//!
//! With the `strategies` feature, the `strategies` module exports proptest strategies
//! for the wire types. The frame decoder is property-tested on arbitrary and
//! mutated bytes in the normal test suite, and has a cargo-fuzz target in
//! `fuzz/` (`transport_frame`); the session decoder has `transport_session`
//! (an honest sealer, fuzzer tampering, and the rule that only a prefix of
//! what was sealed ever opens).
//!
//! Encryption cannot be turned off: no configuration, feature, `cfg` or
//! environment variable gives a [`TcpTransport`] another cipher (see
//! [`tcp`], "Encryption cannot be turned off", for the one generic seam and
//! why the benchmark's use of it carries no node's traffic).
//!
//! ## Cryptography
//!
//! Nothing here is hand-written: schnorrkel signatures (identities, via
//! `idlegrid-primitives`), x25519-dalek ephemeral Diffie-Hellman,
//! ring's ChaCha20-Poly1305 AEAD (BoringSSL's assembly), and blake3's `derive_key` as the KDF
//! for session keys and rekeying, each with its own context string.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod clock;
mod codec;
mod error;
pub mod frame;
mod memory;
mod runner;
pub mod session;
pub mod tcp;
mod transport;

#[cfg(feature = "strategies")]
pub mod strategies;

pub use clock::Clock;
pub use codec::{Codec, FnCodec, PostcardCodec};
pub use error::TransportError;
pub use frame::{
    Envelope, FrameError, FrameLimit, MAX_FRAME_LEN, WIRE_VERSION, decode_frame,
    decode_frame_exact, encode_frame,
};
pub use memory::{MemoryConfig, MemoryNetwork, MemoryTransport};
pub use runner::{Runner, RunnerStats, StopReason, Stopped};
pub use tcp::{AddressBook, HANDSHAKE_DOMAIN, TcpConfig, TcpStats, TcpTransport};
pub use transport::Transport;

pub use idlegrid_primitives::NodeId;
