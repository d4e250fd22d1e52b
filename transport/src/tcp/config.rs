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
/// the handshake, unless the transport serves guests
/// ([`TcpConfig::max_guests`]). Between two peers the one with the smaller [`NodeId`]
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
/// queue and every wait is bounded; the defaults suit an open network.
///
/// Memory bounds that follow from these fields:
/// - per pending (unauthenticated) connection: one socket, one task and
///   handshake frames of at most 134 bytes — about a few KiB, times at most
///   `max_pending_handshakes`;
/// - per peer: `send_queue_bytes` of queued payloads, one frame being read
///   (at most `max_frame_len` + 22 bytes) and a 64 KiB write buffer;
/// - in total: `inbound_bytes` of received payloads waiting for `recv`.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// Largest frame body (application payload) sent or accepted.
    /// Default 4 MiB.
    pub max_frame_len: FrameLimit,
    /// Messages queued per peer (kept across reconnects). When full,
    /// `send` drops the new message and returns `QueueFull`. Default 1024.
    pub send_queue_capacity: usize,
    /// Bytes of payload queued per peer; like `send_queue_capacity`, a
    /// message that does not fit is dropped with `QueueFull`. At least
    /// `max_frame_len`. Default 16 MiB.
    pub send_queue_bytes: usize,
    /// Received messages waiting for `recv`. When full, connections stop
    /// reading and TCP flow control slows the senders down. Default 4096.
    pub inbound_capacity: usize,
    /// Received payload bytes waiting for `recv`, over all peers; same
    /// back-pressure as `inbound_capacity`. At least `max_frame_len`.
    /// Default 64 MiB.
    pub inbound_bytes: usize,
    /// Deadline for the peer's first handshake message (an idle connection
    /// holds a pending slot only this long). Default 2 s.
    pub hello_timeout: Duration,
    /// Whole-handshake deadline. Default 5 s.
    pub handshake_timeout: Duration,
    /// Deadline of one dial attempt. Default 5 s.
    pub dial_timeout: Duration,
    /// A ping is sent this often on every connection. Default 5 s.
    pub keepalive_interval: Duration,
    /// A connection on which nothing arrives for this long is dropped.
    /// Default 20 s.
    pub idle_timeout: Duration,
    /// Once a frame has started, it must complete within this time.
    /// Default 30 s.
    pub frame_timeout: Duration,
    /// A write blocked this long (peer not reading) drops the connection.
    /// Default 20 s.
    pub write_timeout: Duration,
    /// First reconnect delay; doubles after each failure. Default 50 ms.
    pub backoff_min: Duration,
    /// Largest reconnect delay. Default 5 s.
    pub backoff_max: Duration,
    /// Inbound connections allowed to be in the handshake at once; when
    /// full, the oldest pending handshake is evicted for the new one.
    /// Default 64.
    pub max_pending_handshakes: usize,
    /// Inbound handshakes in progress per source IP address; more are
    /// closed at once. Default 8.
    pub max_pending_per_addr: usize,
    /// New inbound handshakes per source IP address per second; more are
    /// closed at once. Default 16.
    pub handshakes_per_addr_per_sec: u32,
    /// Source addresses the limiter remembers; when all are busy, new
    /// addresses are refused. Default 4096.
    pub max_tracked_addrs: usize,
    /// Recent peer challenges remembered to refuse replays. Default 4096.
    pub nonce_memory: usize,
    /// Guests served at once: authenticated peers outside the address book
    /// (light nodes that are not members of the network, such as a wallet
    /// or an integrator's program). A guest is never dialed; it dials in,
    /// gets a send queue while its connection lasts, and loses the queue
    /// (with whatever was still in it) when the connection ends. More are
    /// refused once authenticated. Each costs what a book peer costs (see
    /// the memory bounds above). 0 (the default) keeps the book a strict
    /// allow-list.
    pub max_guests: usize,
    /// Dial every peer of the book whatever the id order — set by a node
    /// that is a guest of its peers (not in their books, so they cannot
    /// dial it). Its peers must not list it. Default false.
    pub dial_all: bool,
    /// A sender rekeys its direction after sealing this many bytes.
    /// Default 1 GiB.
    pub rekey_after_bytes: u64,
    /// A sender rekeys its direction at least this often (checked when it
    /// next sends, at the latest with the next keepalive). Default 10 min.
    pub rekey_interval: Duration,
}

impl Default for TcpConfig {
    fn default() -> Self {
        Self {
            max_frame_len: FrameLimit::DEFAULT,
            send_queue_capacity: 1024,
            send_queue_bytes: 16 << 20,
            inbound_capacity: 4096,
            inbound_bytes: 64 << 20,
            hello_timeout: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(5),
            dial_timeout: Duration::from_secs(5),
            keepalive_interval: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(20),
            frame_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(20),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            max_pending_handshakes: 64,
            max_pending_per_addr: 8,
            handshakes_per_addr_per_sec: 16,
            max_tracked_addrs: 4096,
            nonce_memory: 4096,
            max_guests: 0,
            dial_all: false,
            rekey_after_bytes: 1 << 30,
            rekey_interval: Duration::from_secs(600),
        }
    }
}

impl TcpConfig {
    pub(crate) fn admission_limits(&self) -> super::admission::Limits {
        super::admission::Limits {
            total: self.max_pending_handshakes,
            per_addr: self.max_pending_per_addr,
            per_addr_per_sec: self.handshakes_per_addr_per_sec,
            tracked_addrs: self.max_tracked_addrs,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), TransportError> {
        let bad = |m: &str| Err(TransportError::Config(m.to_owned()));
        if self.send_queue_capacity == 0 || self.inbound_capacity == 0 {
            return bad("queue capacities must be > 0");
        }
        let frame = self.max_frame_len.get();
        if self.send_queue_bytes < frame || self.inbound_bytes < frame {
            return bad("send_queue_bytes and inbound_bytes must be at least max_frame_len");
        }
        if u32::try_from(frame).is_err() || self.inbound_bytes > usize::MAX >> 4 {
            return bad("inbound_bytes is out of range");
        }
        let counts = [
            self.max_pending_handshakes,
            self.max_pending_per_addr,
            self.max_tracked_addrs,
            self.nonce_memory,
            self.handshakes_per_addr_per_sec as usize,
        ];
        if counts.contains(&0) {
            return bad("handshake limits and nonce_memory must be > 0");
        }
        if self.rekey_after_bytes == 0 || self.rekey_interval.is_zero() {
            return bad("rekey_after_bytes and rekey_interval must be > 0");
        }
        if self.keepalive_interval.is_zero() || self.idle_timeout <= self.keepalive_interval {
            return bad("idle_timeout must exceed a non-zero keepalive_interval");
        }
        if self.backoff_min.is_zero() || self.backoff_min > self.backoff_max {
            return bad("backoff_min must be non-zero and at most backoff_max");
        }
        let timeouts = [
            self.hello_timeout,
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
