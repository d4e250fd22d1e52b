//! The crate's error type.

use idlegrid_primitives::{DecodeError, NodeId};
use thiserror::Error;

use crate::frame::FrameError;
use crate::session::SessionError;
use crate::tcp::HandshakeError;

/// Why a transport operation failed.
///
/// Peer mistakes (bad frames, failed handshakes) end that peer's connection
/// and never the node: they surface here only from the functions that handle
/// one connection, or as counters. Local mistakes (unknown peer, oversized
/// payload, full queue) are returned to the caller.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TransportError {
    /// A frame could not be encoded or decoded.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A frame of the encrypted session was refused (tampered, replayed,
    /// reordered, dropped, truncated or malformed); the connection was
    /// dropped and the peer reconnects with a fresh session.
    #[error("session closed: {0}")]
    Session(#[from] SessionError),
    /// The mutually authenticated handshake failed; the connection was dropped.
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// The destination is not a known peer.
    #[error(
        "unknown peer {0:?}: add it to the address book (TCP) or join it to the network (in-memory)"
    )]
    UnknownPeer(NodeId),
    /// The bounded send queue to `peer` is full, so this message was dropped.
    /// The peer is slow or disconnected; retry later or rely on the
    /// protocol's own retransmission.
    #[error("send queue to {peer:?} is full ({capacity} messages); the message was dropped")]
    QueueFull {
        /// The slow peer.
        peer: NodeId,
        /// The queue's capacity in messages.
        capacity: usize,
    },
    /// The send queue to `peer` holds too many bytes for this message
    /// (TCP's `send_queue_bytes`), so it was dropped. As for
    /// [`QueueFull`](Self::QueueFull): retry later or rely on the protocol's
    /// own retransmission.
    #[error("send queue to {peer:?} is full ({bytes} bytes); the message was dropped")]
    QueueBytesFull {
        /// The slow peer.
        peer: NodeId,
        /// The queue's capacity in payload bytes.
        bytes: usize,
    },
    /// The transport has been shut down.
    #[error("the transport is shut down")]
    Closed,
    /// A deadline passed (handshake, dial, idle peer, slow frame, slow write).
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The peer broke the protocol after the handshake (for example a second
    /// handshake message); the connection was dropped.
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A machine message did not decode (runner codec).
    #[error("message does not decode: {0}")]
    Codec(#[from] DecodeError),
    /// An operating-system I/O error (bind, connect, read, write).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
