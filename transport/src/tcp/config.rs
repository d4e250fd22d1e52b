//! TCP configuration and the address book.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use idlegrid_primitives::NodeId;

use crate::error::TransportError;
use crate::frame::FrameLimit;

/// The peers a node talks to and where they listen.
///
/// The book is also the allow-list: an inbound peer that is not in it fails
/// the handshake. Between two peers the one with the smaller [`NodeId`]
/// dials and the other accepts, so a pair never races two connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressBook {
    entries: BTreeMap<NodeId, SocketAddr>,
}

impl AddressBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds or replaces a peer.
    pub fn insert(&mut self, node: NodeId, addr: SocketAddr) -> &mut Self {
        self.entries.insert(node, addr);
        self
    }
    /// The peer's address.
    pub fn get(&self, node: &NodeId) -> Option<SocketAddr> {
        self.entries.get(node).copied()
    }
    /// True if the peer is in the book.
    pub fn contains(&self, node: &NodeId) -> bool {
        self.entries.contains_key(node)
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// Entries in ascending id order.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, SocketAddr)> + '_ {
        self.entries.iter().map(|(n, a)| (*n, *a))
    }
}

impl FromIterator<(NodeId, SocketAddr)> for AddressBook {
    fn from_iter<I: IntoIterator<Item = (NodeId, SocketAddr)>>(iter: I) -> Self {
        Self {
            entries: iter.into_iter().collect(),
        }
    }
}

/// Limits and timers of a [`TcpTransport`](super::TcpTransport). Every
/// queue and every wait is bounded.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// Largest frame body sent or accepted.
    pub max_frame_len: FrameLimit,
    /// Messages queued per peer (kept across reconnects). When full,
    /// `send` drops the new message and returns `QueueFull`.
    pub send_queue_capacity: usize,
    /// Received messages waiting for `recv`. When full, connections stop
    /// reading and TCP flow control slows the senders down.
    pub inbound_capacity: usize,
    /// Whole-handshake deadline.
    pub handshake_timeout: Duration,
    /// Deadline of one dial attempt.
    pub dial_timeout: Duration,
    /// A ping is sent this often on every connection.
    pub keepalive_interval: Duration,
    /// A connection on which nothing arrives for this long is dropped.
    pub idle_timeout: Duration,
    /// Once a frame has started, it must complete within this time.
    pub frame_timeout: Duration,
    /// A write blocked this long (peer not reading) drops the connection.
    pub write_timeout: Duration,
    /// First reconnect delay; doubles after each failure.
    pub backoff_min: Duration,
    /// Largest reconnect delay.
    pub backoff_max: Duration,
    /// Inbound connections allowed to be in the handshake at once; more are
    /// closed immediately.
    pub max_pending_handshakes: usize,
    /// Recent peer challenges remembered to refuse replays.
    pub nonce_memory: usize,
}

impl Default for TcpConfig {
    fn default() -> Self {
        Self {
            max_frame_len: FrameLimit::DEFAULT,
            send_queue_capacity: 1024,
            inbound_capacity: 4096,
            handshake_timeout: Duration::from_secs(5),
            dial_timeout: Duration::from_secs(5),
            keepalive_interval: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(20),
            frame_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(20),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            max_pending_handshakes: 64,
            nonce_memory: 4096,
        }
    }
}

impl TcpConfig {
    pub(crate) fn validate(&self) -> Result<(), TransportError> {
        let bad = |m: &str| Err(TransportError::Config(m.to_owned()));
        if self.send_queue_capacity == 0 || self.inbound_capacity == 0 {
            return bad("queue capacities must be > 0");
        }
        if self.max_pending_handshakes == 0 || self.nonce_memory == 0 {
            return bad("max_pending_handshakes and nonce_memory must be > 0");
        }
        if self.keepalive_interval.is_zero() || self.idle_timeout <= self.keepalive_interval {
            return bad("idle_timeout must exceed a non-zero keepalive_interval");
        }
        if self.backoff_min.is_zero() || self.backoff_min > self.backoff_max {
            return bad("backoff_min must be non-zero and at most backoff_max");
        }
        let timeouts = [
            self.handshake_timeout,
            self.dial_timeout,
            self.frame_timeout,
            self.write_timeout,
        ];
        if timeouts.iter().any(|t| t.is_zero()) {
            return bad("timeouts must be non-zero");
        }
        Ok(())
    }
}
