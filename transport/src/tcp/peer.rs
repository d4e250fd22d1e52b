//! Background tasks: one per peer (dial or await, then drive the encrypted
//! session; reconnect with backoff) and one accept loop that admits
//! unauthenticated connections under the limits of [`super::admission`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use idlegrid_primitives::NodeId;
use rand::RngCore;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep, timeout};

use super::admission::{Admission, Ticket};
use super::handshake::{Authenticated, Local, handshake};
use super::io::ReadDeadlines;
use super::link::run_session;
use super::{Inbound, PeerSlot, Shared, SlotEnds};
use crate::error::TransportError;
use crate::frame::Nonce;
use crate::session::{SessionError, SessionKeys};

/// An authenticated connection and its session keys, on its way to the
/// peer's task.
pub(crate) type Handover = (TcpStream, SessionKeys);

/// Held by every background task; `shutdown` waits until all are dropped.
#[derive(Clone)]
pub(crate) struct TaskGuard(#[allow(dead_code)] pub(crate) mpsc::Sender<()>);

/// Resolves once shutdown is requested or the transport is dropped.
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

fn fresh_nonce() -> Nonce {
    let mut n = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut n);
    Nonce::from_bytes(n)
}

impl Shared {
    pub(super) fn deadlines(&self) -> ReadDeadlines {
        ReadDeadlines {
            idle: self.config.idle_timeout,
            frame: self.config.frame_timeout,
        }
    }

    /// Handshakes on `stream`; `expected` is the dialed peer, if any.
    async fn authenticate(
        &self,
        stream: &mut TcpStream,
        expected: Option<NodeId>,
    ) -> Result<Authenticated, TransportError> {
        stream.set_nodelay(true)?;
        let is_known = |n: NodeId| self.slots.contains_key(&n) || self.config.max_guests > 0;
        let cfg = &self.config;
        let local = Local {
            keypair: &self.keypair,
            nonce: fresh_nonce(),
            expected,
            is_known: &is_known,
            seen: &self.seen,
            first: ReadDeadlines {
                idle: cfg.hello_timeout,
                frame: cfg.hello_timeout,
            },
            deadlines: ReadDeadlines {
                idle: cfg.handshake_timeout,
                frame: cfg.handshake_timeout,
            },
        };
        let r = timeout(cfg.handshake_timeout, handshake(stream, local))
            .await
            .unwrap_or(Err(TransportError::Timeout("handshake")));
        let counter = match r {
            Ok(_) => &self.stats.handshakes_ok,
            Err(_) => &self.stats.handshakes_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        r
    }

    async fn dial(&self, peer: NodeId, addr: SocketAddr) -> Result<Handover, TransportError> {
        let mut stream = timeout(self.config.dial_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| TransportError::Timeout("dial"))??;
        let a = self.authenticate(&mut stream, Some(peer)).await?;
        Ok((stream, a.keys))
    }

    /// Hands an authenticated message to `recv`, waiting (and so not
    /// reading from the network) while the inbound byte budget is spent.
    pub(super) async fn deliver(
        &self,
        from: NodeId,
        payload: Vec<u8>,
    ) -> Result<(), TransportError> {
        let n = u32::try_from(payload.len()).expect("validated: max_frame_len fits u32");
        let budget = self
            .inbound_budget
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(|_| TransportError::Closed)?;
        let queued = self.config.inbound_bytes - self.inbound_budget.available_permits();
        self.stats.inbound_peak.fetch_max(queued, Ordering::Relaxed);
        let msg = Inbound {
            from,
            payload,
            _budget: budget,
        };
        self.inbound
            .send(msg)
            .await
            .map_err(|_| TransportError::Closed)
    }
}

/// Why a connection ended.
enum End {
    Shutdown,
    Replaced(Handover),
    Failed,
}

/// The task that owns one peer's send queue: a book peer's for the
/// transport's lifetime, a guest's while its connection lasts.
pub(crate) struct PeerTask {
    pub shared: Arc<Shared>,
    pub peer: NodeId,
    /// Where to dial this peer, if we dial it (our id is the smaller, or
    /// `dial_all`); `None`: we wait for it to dial us.
    pub dial: Option<SocketAddr>,
    /// A guest: its task ends with its connection.
    pub guest: bool,
    pub queue: mpsc::Receiver<Vec<u8>>,
    /// Payload bytes in `queue` (the sender adds, the writer subtracts).
    pub queued: Arc<AtomicUsize>,
    pub connected: Arc<AtomicBool>,
    pub conns: mpsc::Receiver<Handover>,
    pub shutdown: watch::Receiver<bool>,
    pub guard: TaskGuard,
}

impl PeerTask {
    pub(crate) fn new(
        shared: &Arc<Shared>,
        peer: NodeId,
        dial: Option<SocketAddr>,
        slot: &PeerSlot,
        ends: SlotEnds,
        shutdown: &watch::Receiver<bool>,
        guard: &TaskGuard,
    ) -> Self {
        Self {
            shared: shared.clone(),
            peer,
            dial,
            guest: false,
            queue: ends.queue,
            queued: slot.queued.clone(),
            connected: slot.connected.clone(),
            conns: ends.conns,
            shutdown: shutdown.clone(),
            guard: guard.clone(),
        }
    }

    pub(crate) async fn run(mut self) {
        let cfg = self.shared.config.clone();
        let connected = self.connected.clone();
        let mut backoff = cfg.backoff_min;
        let mut next = None;
        loop {
            let stream = match next.take() {
                Some(s) => s,
                None => match self.obtain(&mut backoff).await {
                    Some(s) => s,
                    None => break,
                },
            };
            backoff = cfg.backoff_min;
            connected.store(true, Ordering::Relaxed);
            let end = self.drive(stream).await;
            connected.store(false, Ordering::Relaxed);
            match end {
                End::Shutdown => break,
                End::Replaced(s) => next = Some(s),
                End::Failed => {
                    self.shared
                        .stats
                        .connections_failed
                        .fetch_add(1, Ordering::Relaxed);
                    if self.guest {
                        break;
                    }
                }
            }
        }
        if self.guest {
            self.shared.forget_guest(self.peer, &connected);
        }
        drop(self.guard);
    }

    /// The next authenticated connection: dialed (with exponential backoff
    /// between failures) or handed over by the accept loop.
    async fn obtain(&mut self, backoff: &mut Duration) -> Option<Handover> {
        loop {
            let Some(addr) = self.dial else {
                return tokio::select! {
                    () = stopped(&mut self.shutdown) => None,
                    c = self.conns.recv() => c,
                };
            };
            tokio::select! {
                () = stopped(&mut self.shutdown) => return None,
                c = self.conns.recv() => return c,
                r = self.shared.dial(self.peer, addr) => if let Ok(s) = r {
                    return Some(s);
                },
            }
            tokio::select! {
                () = stopped(&mut self.shutdown) => return None,
                c = self.conns.recv() => return c,
                () = sleep(*backoff) => {}
            }
            *backoff = (*backoff * 2).min(self.shared.config.backoff_max);
        }
    }
}

impl PeerTask {
    /// Runs one encrypted session until it fails, is replaced, or shutdown.
    async fn drive(&mut self, (stream, keys): Handover) -> End {
        let shared = &*self.shared;
        let cipher = keys.split(shared.config.max_frame_len);
        let session = run_session(
            shared,
            self.peer,
            stream,
            cipher,
            &mut self.queue,
            &self.queued,
        );
        tokio::select! {
            () = stopped(&mut self.shutdown) => End::Shutdown,
            c = self.conns.recv() => c.map_or(End::Shutdown, End::Replaced),
            _ = session => End::Failed,
        }
    }
}

impl Shared {
    pub(super) fn count_session_error(&self, e: &TransportError) {
        let bump = |c: &std::sync::atomic::AtomicU64| c.fetch_add(1, Ordering::Relaxed);
        if matches!(
            e,
            TransportError::Frame(_) | TransportError::Protocol(_) | TransportError::Session(_)
        ) {
            bump(&self.stats.bad_frames);
        }
        if matches!(
            e,
            TransportError::Session(SessionError::Authentication { .. })
        ) {
            bump(&self.stats.frames_failed_auth);
        }
    }
}

/// Accepts inbound connections, admits each under the per-address and
/// total limits, and handshakes it in its own task; authenticated streams go
/// to the peer's task.
pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    guard: TaskGuard,
) {
    let admission = Admission::new(shared.config.admission_limits());
    loop {
        let accepted = tokio::select! {
            () = stopped(&mut shutdown) => break,
            r = listener.accept() => r,
        };
        let Ok((stream, from)) = accepted else {
            // Out of file descriptors or similar: back off briefly.
            sleep(Duration::from_millis(10)).await;
            continue;
        };
        let bump = |c: &std::sync::atomic::AtomicU64| c.fetch_add(1, Ordering::Relaxed);
        let ticket = match admission.admit(from.ip(), Instant::now()) {
            Ok((ticket, evicted)) => {
                if evicted {
                    bump(&shared.stats.handshakes_evicted);
                }
                ticket
            }
            Err(_) => {
                bump(&shared.stats.handshakes_refused);
                continue; // dropping the stream closes it
            }
        };
        let task = inbound_handshake(
            shared.clone(),
            stream,
            ticket,
            shutdown.clone(),
            guard.clone(),
        );
        tokio::spawn(task);
    }
}

/// One admitted inbound connection: handshake unless evicted or shut down.
async fn inbound_handshake(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    mut ticket: Ticket,
    mut shutdown: watch::Receiver<bool>,
    guard: TaskGuard,
) {
    tokio::select! {
        () = stopped(&mut shutdown) => {}
        _ = &mut ticket.evicted => {}
        r = shared.authenticate(&mut stream, None) => if let Ok(a) = r {
            drop(ticket);
            shared.hand_over(a.peer, (stream, a.keys), &shutdown, &guard);
        },
    }
}

impl Shared {
    /// Gives an authenticated inbound stream to its peer's task: a book
    /// peer's, a connected guest's, or a new guest's while fewer than
    /// `max_guests` are served. A full hand-over slot means a fresher
    /// stream is already waiting; this one is dropped.
    fn hand_over(
        self: &Arc<Self>,
        peer: NodeId,
        stream: Handover,
        shutdown: &watch::Receiver<bool>,
        guard: &TaskGuard,
    ) {
        if let Some(slot) = self.slots.get(&peer) {
            let _ = slot.conns.try_send(stream);
            return;
        }
        let mut guests = self.guests();
        if let Some(slot) = guests.get(&peer) {
            let _ = slot.conns.try_send(stream);
            return;
        }
        if guests.len() >= self.config.max_guests {
            self.stats.guests_refused.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let (slot, ends) = PeerSlot::new(&self.config);
        let _ = slot.conns.try_send(stream);
        let mut task = PeerTask::new(self, peer, None, &slot, ends, shutdown, guard);
        task.guest = true;
        guests.insert(peer, slot);
        tokio::spawn(task.run());
    }

    /// Drops a guest whose connection ended (unless a newer slot took its
    /// place), with whatever was still queued for it.
    fn forget_guest(&self, peer: NodeId, connected: &Arc<AtomicBool>) {
        let mut guests = self.guests();
        if guests
            .get(&peer)
            .is_some_and(|s| Arc::ptr_eq(&s.connected, connected))
        {
            guests.remove(&peer);
        }
    }
}
