//! The TCP transport on tokio: authenticated, encrypted sessions with limits
//! for hostile networks.
//!
//! [`TcpTransport::bind`] listens on an address and, for every peer in the
//! [`AddressBook`], starts a task that owns the peer's bounded send queue.
//! Between two peers the smaller [`NodeId`] dials; the other accepts. Each
//! new connection runs the [handshake](self::auth_transcript) — signed by
//! both node keys, with an ephemeral X25519 exchange — and every frame after
//! it is sealed with ChaCha20-Poly1305 under per-direction session keys and
//! counter nonces ([`crate::session`]). A dialer reconnects with exponential
//! backoff (`backoff_min` doubling to `backoff_max`); an acceptor waits for
//! the peer to dial again, and a fresh authenticated connection from a peer
//! replaces its old one (a restarted peer is back at once).
//!
//! # Policies
//!
//! - **Tampering on the path**: a frame that was altered, replayed,
//!   reordered, cut short, or follows a dropped frame fails authentication
//!   ([`SessionError::Authentication`](crate::session::SessionError)); the
//!   session is closed, nothing from that frame is delivered, and the peers
//!   reconnect through the normal backoff with fresh keys.
//! - **Rekeying**: each direction moves to the next key after
//!   `rekey_after_bytes` sealed bytes or `rekey_interval`, whichever comes
//!   first.
//! - **Send queue full** (slow or disconnected peer): more than
//!   `send_queue_capacity` messages or `send_queue_bytes` bytes queued — the
//!   new message is dropped and `send` returns [`TransportError::QueueFull`];
//!   other peers are unaffected. Queued messages survive reconnects.
//! - **Slow reader**: a write blocked for `write_timeout` drops the
//!   connection (then the queue fills, see above).
//! - **Slow application**: when `inbound_capacity` messages or
//!   `inbound_bytes` bytes wait for `recv`, connections stop reading and TCP
//!   flow control pushes back.
//! - **Bad peer**: a malformed, oversized or wrong-version frame, a
//!   plaintext or handshake frame inside the session, nothing received for
//!   `idle_timeout` (keepalive pings are sent every `keepalive_interval`),
//!   or a frame not completed within `frame_timeout` (slowloris) drops that
//!   connection; the node keeps serving the others.
//! - **Floods of connections** (before authentication): per source IP at
//!   most `handshakes_per_addr_per_sec` new handshakes a second and
//!   `max_pending_per_addr` in progress; in total `max_pending_handshakes`
//!   in progress, the oldest evicted when a new one arrives; the first
//!   handshake message must arrive within `hello_timeout` and the whole
//!   handshake within `handshake_timeout`; handshake frames are limited to
//!   128 bytes; the acceptor answers (and does its key exchange) only after
//!   a `Hello` from a peer in the address book.
//! - **Guests** (`max_guests` > 0): an authenticated peer outside the book
//!   (a light node that is not a member of the network) is served while
//!   its connection lasts — at most `max_guests` at once, more are closed
//!   once authenticated and counted in [`TcpStats::guests_refused`]; a
//!   guest is never dialed, and its queue goes with its connection. The
//!   guest's side sets `dial_all`, since its peers cannot dial it.
//!
//! # Encryption cannot be turned off
//!
//! After the handshake a connection's data path (`link.rs`: send queue →
//! sealing writer with batched flushes → socket → opening reader → inbound
//! budget and queue) is generic over the frame cipher, and a
//! [`TcpTransport`] instantiates it in one place only, with the
//! [`Sealer`](crate::session::Sealer) and [`Opener`](crate::session::Opener)
//! of the keys its handshake derived. No [`TcpConfig`] field, cargo
//! feature, `cfg` or environment variable selects another cipher, and this
//! crate contains no other implementation of the cipher traits.
//!
//! The genericity exists for one reader, the benchmark: to measure what the
//! transport's own framing and queueing cost before encryption (issue 22),
//! `benches/transport.rs` runs this same data path with a pass-through
//! cipher defined in the bench, through the doc-hidden `bench_support`
//! module. That module connects two loopback sockets of the calling process
//! to each other and nothing else: it takes no address, runs no handshake,
//! knows no peer and implements no [`Transport`], so it cannot carry a
//! node's traffic.

mod admission;
#[doc(hidden)]
pub mod bench_support;
mod config;
mod handshake;
mod io;
mod link;
mod peer;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use idlegrid_primitives::{Keypair, NodeId};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, mpsc, watch};

pub use config::{AddressBook, TcpConfig};
pub use handshake::{HANDSHAKE_DOMAIN, HandshakeError, auth_transcript, session_keys};

use crate::error::TransportError;
use crate::transport::Transport;
use handshake::NonceGuard;
use peer::{Handover, PeerTask, TaskGuard, accept_loop, stopped};

/// Authenticated connections waiting to be taken over by a peer's task.
const HANDOVER_SLOTS: usize = 2;

#[derive(Clone)]
pub(crate) struct PeerSlot {
    /// The peer's bounded send queue (its task holds the receiver).
    queue: mpsc::Sender<Vec<u8>>,
    conns: mpsc::Sender<Handover>,
    connected: Arc<AtomicBool>,
    /// Payload bytes in the peer's send queue.
    queued: Arc<AtomicUsize>,
}

/// The receiving ends of a new [`PeerSlot`], for its task.
pub(crate) struct SlotEnds {
    queue: mpsc::Receiver<Vec<u8>>,
    conns: mpsc::Receiver<Handover>,
}

impl PeerSlot {
    fn new(config: &TcpConfig) -> (Self, SlotEnds) {
        let (q_tx, q_rx) = mpsc::channel(config.send_queue_capacity);
        let (c_tx, c_rx) = mpsc::channel(HANDOVER_SLOTS);
        let slot = Self {
            queue: q_tx,
            conns: c_tx,
            connected: Arc::new(AtomicBool::new(false)),
            queued: Arc::new(AtomicUsize::new(0)),
        };
        (
            slot,
            SlotEnds {
                queue: q_rx,
                conns: c_rx,
            },
        )
    }

    fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Queues `payload` for the peer `to`, or drops it with a typed error
    /// when it is too large or the queue is full in messages or bytes.
    fn push(&self, config: &TcpConfig, to: NodeId, payload: Vec<u8>) -> Result<(), TransportError> {
        config.max_frame_len.check(payload.len())?;
        let (queue, queued) = (&self.queue, &self.queued);
        let len = payload.len();
        if queued.fetch_add(len, Ordering::Relaxed) + len > config.send_queue_bytes {
            queued.fetch_sub(len, Ordering::Relaxed);
            return Err(TransportError::QueueBytesFull {
                peer: to,
                bytes: config.send_queue_bytes,
            });
        }
        queue.try_send(payload).map_err(|e| {
            queued.fetch_sub(len, Ordering::Relaxed);
            match e {
                mpsc::error::TrySendError::Full(_) => TransportError::QueueFull {
                    peer: to,
                    capacity: config.send_queue_capacity,
                },
                mpsc::error::TrySendError::Closed(_) => TransportError::Closed,
            }
        })
    }
}

/// A received message waiting for `recv`, holding its share of the inbound
/// byte budget until it is taken.
pub(crate) struct Inbound {
    from: NodeId,
    payload: Vec<u8>,
    _budget: OwnedSemaphorePermit,
}

#[derive(Default)]
pub(crate) struct Counters {
    handshakes_ok: AtomicU64,
    handshakes_failed: AtomicU64,
    handshakes_refused: AtomicU64,
    handshakes_evicted: AtomicU64,
    connections_failed: AtomicU64,
    bad_frames: AtomicU64,
    frames_failed_auth: AtomicU64,
    rekeys: AtomicU64,
    guests_refused: AtomicU64,
    inbound_peak: AtomicUsize,
}

/// A snapshot of a [`TcpTransport`]'s counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpStats {
    /// Handshakes completed (both directions).
    pub handshakes_ok: u64,
    /// Handshakes failed: bad signature, unknown or wrong peer, replay,
    /// garbage, timeout, refused connection.
    pub handshakes_failed: u64,
    /// Inbound connections closed unhandled by the admission limits
    /// (handshakes per address per second, pending per address, tracked
    /// addresses).
    pub handshakes_refused: u64,
    /// Pending inbound handshakes evicted (oldest first) because
    /// `max_pending_handshakes` were in progress.
    pub handshakes_evicted: u64,
    /// Established connections that ended on an error (peer gone, bad frame,
    /// idle, slow).
    pub connections_failed: u64,
    /// Of those, connections dropped for a malformed frame, a protocol
    /// violation or a session error.
    pub bad_frames: u64,
    /// Of those, sessions closed because a frame failed authentication
    /// (altered, replayed, reordered, dropped or truncated on the path).
    pub frames_failed_auth: u64,
    /// Rekeys of our sending direction, over all sessions.
    pub rekeys: u64,
    /// Guests (authenticated peers outside the address book) served now.
    pub guests: usize,
    /// Guests turned away because `max_guests` were served.
    pub guests_refused: u64,
    /// Received payload bytes waiting for `recv` right now.
    pub inbound_bytes_queued: usize,
    /// The most that ever waited (never above `inbound_bytes`).
    pub inbound_bytes_peak: usize,
}

/// The next received message, or `Closed` once shutdown is requested.
async fn next_inbound(
    inbound: &Mutex<mpsc::Receiver<Inbound>>,
    shutdown: &watch::Sender<bool>,
) -> Result<(NodeId, Vec<u8>), TransportError> {
    let mut stop = shutdown.subscribe();
    let mut rx = inbound.lock().await;
    tokio::select! {
        biased;
        () = stopped(&mut stop) => Err(TransportError::Closed),
        // Dropping `Inbound` returns its bytes to the budget.
        m = rx.recv() => m.map(|m| (m.from, m.payload)).ok_or(TransportError::Closed),
    }
}

/// State shared by the transport and its tasks.
pub(crate) struct Shared {
    keypair: Keypair,
    config: TcpConfig,
    /// The address book's peers (fixed for the transport's lifetime).
    slots: BTreeMap<NodeId, PeerSlot>,
    /// Guests: authenticated peers outside the book, while connected (at
    /// most `max_guests`).
    guests: StdMutex<BTreeMap<NodeId, PeerSlot>>,
    seen: NonceGuard,
    inbound: mpsc::Sender<Inbound>,
    /// One permit per received payload byte waiting for `recv`.
    inbound_budget: Arc<Semaphore>,
    stats: Counters,
}

impl Shared {
    /// The state of a transport with `keypair`, `config` and the book's
    /// `slots`, and the receiving end of its inbound queue.
    fn new(
        keypair: Keypair,
        config: TcpConfig,
        slots: BTreeMap<NodeId, PeerSlot>,
    ) -> (Arc<Self>, mpsc::Receiver<Inbound>) {
        let (inbound, inbound_rx) = mpsc::channel(config.inbound_capacity);
        let shared = Arc::new(Self {
            keypair,
            seen: NonceGuard::new(config.nonce_memory),
            inbound_budget: Arc::new(Semaphore::new(config.inbound_bytes)),
            config,
            slots,
            guests: StdMutex::new(BTreeMap::new()),
            inbound,
            stats: Counters::default(),
        });
        (shared, inbound_rx)
    }

    /// The guests served now (a poisoned lock still holds a consistent
    /// map: every update is one insert or remove).
    fn guests(&self) -> MutexGuard<'_, BTreeMap<NodeId, PeerSlot>> {
        self.guests.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The slot of a book peer or a connected guest.
    fn slot(&self, peer: &NodeId) -> Option<PeerSlot> {
        match self.slots.get(peer) {
            Some(s) => Some(s.clone()),
            None => self.guests().get(peer).cloned(),
        }
    }
}

/// A [`Transport`] over TCP with mutually authenticated connections (see
/// the module docs for its policies).
pub struct TcpTransport {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    inbound: Mutex<mpsc::Receiver<Inbound>>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<mpsc::Receiver<()>>,
}

impl std::fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpTransport")
            .field("id", &self.shared.keypair.node_id())
            .field("local_addr", &self.local_addr)
            .field("peers", &self.shared.slots.len())
            .finish_non_exhaustive()
    }
}

impl TcpTransport {
    /// Listens on `listen` (port 0 picks a free port, see
    /// [`local_addr`](Self::local_addr)) and starts connecting to every peer
    /// in `book` (an entry for this node itself is ignored). Must be called
    /// within a tokio runtime.
    pub async fn bind(
        keypair: Keypair,
        listen: SocketAddr,
        book: AddressBook,
        config: TcpConfig,
    ) -> Result<Self, TransportError> {
        config.validate()?;
        let listener = TcpListener::bind(listen).await?;
        Self::from_listener(keypair, listener, book, config)
    }

    /// Like [`bind`](Self::bind) on an already bound listener — handy to
    /// learn every node's port before building the address book. Fails with
    /// [`TransportError::Config`] outside a tokio runtime.
    pub fn from_listener(
        keypair: Keypair,
        listener: TcpListener,
        book: AddressBook,
        config: TcpConfig,
    ) -> Result<Self, TransportError> {
        config.validate()?;
        tokio::runtime::Handle::try_current()
            .map_err(|_| TransportError::Config("TcpTransport needs a tokio runtime".into()))?;
        let me = keypair.node_id();
        let local_addr = listener.local_addr()?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (guard_tx, guard_rx) = mpsc::channel(1);
        let guard = TaskGuard(guard_tx);

        let mut slots = BTreeMap::new();
        let mut tasks = Vec::new();
        for (peer, addr) in book.iter().filter(|(p, _)| *p != me) {
            let (slot, ends) = PeerSlot::new(&config);
            let dial = (me < peer || config.dial_all).then_some(addr);
            tasks.push((peer, dial, slot.clone(), ends));
            slots.insert(peer, slot);
        }
        let (shared, inbound_rx) = Shared::new(keypair, config, slots);
        for (peer, dial, slot, ends) in tasks {
            let task = PeerTask::new(&shared, peer, dial, &slot, ends, &shutdown_rx, &guard);
            tokio::spawn(task.run());
        }
        tokio::spawn(accept_loop(shared.clone(), listener, shutdown_rx, guard));
        Ok(Self {
            shared,
            local_addr,
            inbound: Mutex::new(inbound_rx),
            shutdown,
            tasks: Mutex::new(guard_rx),
        })
    }

    /// The address actually listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// True if an authenticated connection to `peer` (a book peer or a
    /// guest) is up right now.
    pub fn is_connected(&self, peer: &NodeId) -> bool {
        self.shared.slot(peer).is_some_and(|s| s.is_connected())
    }

    /// Peers with an authenticated connection right now, guests included.
    pub fn connected_peers(&self) -> Vec<NodeId> {
        let mut up: Vec<NodeId> = self
            .shared
            .slots
            .iter()
            .filter(|(_, s)| s.is_connected())
            .map(|(p, _)| *p)
            .collect();
        let guests = self.shared.guests();
        up.extend(
            guests
                .iter()
                .filter(|(_, s)| s.is_connected())
                .map(|(p, _)| *p),
        );
        up
    }

    /// The counters so far.
    pub fn stats(&self) -> TcpStats {
        let c = &self.shared.stats;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TcpStats {
            handshakes_ok: get(&c.handshakes_ok),
            handshakes_failed: get(&c.handshakes_failed),
            handshakes_refused: get(&c.handshakes_refused),
            handshakes_evicted: get(&c.handshakes_evicted),
            connections_failed: get(&c.connections_failed),
            bad_frames: get(&c.bad_frames),
            frames_failed_auth: get(&c.frames_failed_auth),
            rekeys: get(&c.rekeys),
            guests: self.shared.guests().len(),
            guests_refused: get(&c.guests_refused),
            inbound_bytes_queued: self.shared.config.inbound_bytes
                - self.shared.inbound_budget.available_permits(),
            inbound_bytes_peak: c.inbound_peak.load(Ordering::Relaxed),
        }
    }

    fn is_shut_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

#[async_trait]
impl Transport for TcpTransport {
    fn local_id(&self) -> NodeId {
        self.shared.keypair.node_id()
    }

    fn peers(&self) -> Vec<NodeId> {
        let mut all: Vec<NodeId> = self.shared.slots.keys().copied().collect();
        all.extend(self.shared.guests().keys().copied());
        all
    }

    async fn send(&self, to: NodeId, payload: Vec<u8>) -> Result<(), TransportError> {
        if self.is_shut_down() {
            return Err(TransportError::Closed);
        }
        let slot = self
            .shared
            .slot(&to)
            .ok_or(TransportError::UnknownPeer(to))?;
        slot.push(&self.shared.config, to, payload)
    }

    async fn recv(&self) -> Result<(NodeId, Vec<u8>), TransportError> {
        next_inbound(&self.inbound, &self.shutdown).await
    }

    async fn shutdown(&self) {
        self.shutdown.send_replace(true);
        let mut tasks = self.tasks.lock().await;
        while tasks.recv().await.is_some() {}
    }
}
