//! Background tasks: one per peer (dial or await, then drive the
//! connection; reconnect with backoff) and one accept loop.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use idlegrid_primitives::NodeId;
use rand::RngCore;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::{MissedTickBehavior, interval_at, sleep, timeout};

use super::Shared;
use super::handshake::{Local, handshake};
use super::io::{ReadDeadlines, read_frame, write_data, write_envelope};
use crate::error::TransportError;
use crate::frame::{Envelope, Nonce};

/// Held by every background task; `shutdown` waits until all are dropped.
#[derive(Clone)]
pub(crate) struct TaskGuard(#[allow(dead_code)] pub(crate) mpsc::Sender<()>);

/// Resolves once shutdown is requested or the transport is dropped.
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Messages taken from the queue per flush, so a busy peer still gets
/// keepalives and fair scheduling.
const WRITE_BATCH: usize = 64;

fn fresh_nonce() -> Nonce {
    let mut n = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut n);
    Nonce::from_bytes(n)
}

impl Shared {
    fn deadlines(&self) -> ReadDeadlines {
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
    ) -> Result<NodeId, TransportError> {
        stream.set_nodelay(true)?;
        let is_known = |n: NodeId| self.slots.contains_key(&n);
        let local = Local {
            keypair: &self.keypair,
            nonce: fresh_nonce(),
            expected,
            is_known: &is_known,
            seen: &self.seen,
            deadlines: ReadDeadlines {
                idle: self.config.handshake_timeout,
                frame: self.config.handshake_timeout,
            },
        };
        let r = timeout(self.config.handshake_timeout, handshake(stream, local))
            .await
            .unwrap_or(Err(TransportError::Timeout("handshake")));
        let counter = match r {
            Ok(_) => &self.stats.handshakes_ok,
            Err(_) => &self.stats.handshakes_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        r
    }

    async fn dial(&self, peer: NodeId, addr: SocketAddr) -> Result<TcpStream, TransportError> {
        let mut stream = timeout(self.config.dial_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| TransportError::Timeout("dial"))??;
        self.authenticate(&mut stream, Some(peer)).await?;
        Ok(stream)
    }
}

/// Why a connection ended.
enum End {
    Shutdown,
    Replaced(TcpStream),
    Failed,
}

/// The task that owns one peer's send queue for the transport's lifetime.
pub(crate) struct PeerTask {
    pub shared: Arc<Shared>,
    pub peer: NodeId,
    pub addr: SocketAddr,
    /// True if we dial this peer (our id is the smaller).
    pub dial: bool,
    pub queue: mpsc::Receiver<Vec<u8>>,
    pub conns: mpsc::Receiver<TcpStream>,
    pub shutdown: watch::Receiver<bool>,
    pub guard: TaskGuard,
}

impl PeerTask {
    pub(crate) async fn run(mut self) {
        let cfg = self.shared.config.clone();
        let connected = self.shared.slots[&self.peer].connected.clone();
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
            let end = drive(
                &self.shared,
                self.peer,
                stream,
                &mut self.queue,
                &mut self.conns,
                &mut self.shutdown,
            )
            .await;
            connected.store(false, Ordering::Relaxed);
            match end {
                End::Shutdown => break,
                End::Replaced(s) => next = Some(s),
                End::Failed => {
                    self.shared
                        .stats
                        .connections_failed
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        drop(self.guard);
    }

    /// The next authenticated connection: dialed (with exponential backoff
    /// between failures) or handed over by the accept loop.
    async fn obtain(&mut self, backoff: &mut Duration) -> Option<TcpStream> {
        loop {
            if !self.dial {
                return tokio::select! {
                    () = stopped(&mut self.shutdown) => None,
                    c = self.conns.recv() => c,
                };
            }
            tokio::select! {
                () = stopped(&mut self.shutdown) => return None,
                c = self.conns.recv() => return c,
                r = self.shared.dial(self.peer, self.addr) => if let Ok(s) = r {
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

/// Runs one connection until it fails, is replaced, or shutdown.
async fn drive(
    shared: &Shared,
    peer: NodeId,
    stream: TcpStream,
    queue: &mut mpsc::Receiver<Vec<u8>>,
    conns: &mut mpsc::Receiver<TcpStream>,
    shutdown: &mut watch::Receiver<bool>,
) -> End {
    let (rd, wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut wr = BufWriter::with_capacity(64 << 10, wr);
    tokio::select! {
        () = stopped(shutdown) => End::Shutdown,
        c = conns.recv() => c.map_or(End::Shutdown, End::Replaced),
        Err(e) = read_loop(shared, peer, &mut rd) => {
            if matches!(e, TransportError::Frame(_) | TransportError::Protocol(_)) {
                shared.stats.bad_frames.fetch_add(1, Ordering::Relaxed);
            }
            End::Failed
        }
        Err(_) = write_loop(shared, &mut wr, queue) => End::Failed,
    }
}

async fn read_loop(
    shared: &Shared,
    peer: NodeId,
    rd: &mut BufReader<OwnedReadHalf>,
) -> Result<Infallible, TransportError> {
    let limit = shared.config.max_frame_len;
    loop {
        match read_frame(rd, limit, shared.deadlines()).await? {
            Envelope::Data(d) => shared
                .inbound
                .send((peer, d))
                .await
                .map_err(|_| TransportError::Closed)?,
            Envelope::Ping => {}
            Envelope::Hello(_) | Envelope::Auth(_) => {
                return Err(TransportError::Protocol(
                    "handshake message after the handshake",
                ));
            }
        }
    }
}

async fn write_loop(
    shared: &Shared,
    wr: &mut BufWriter<OwnedWriteHalf>,
    queue: &mut mpsc::Receiver<Vec<u8>>,
) -> Result<Infallible, TransportError> {
    let cfg = &shared.config;
    let limit = cfg.max_frame_len;
    let start = tokio::time::Instant::now() + cfg.keepalive_interval;
    let mut tick = interval_at(start, cfg.keepalive_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let slow = || TransportError::Timeout("the peer did not read within the write timeout");
    loop {
        tokio::select! {
            m = queue.recv() => {
                let Some(first) = m else { return Err(TransportError::Closed) };
                timeout(cfg.write_timeout, async {
                    write_data(wr, &first, limit).await?;
                    for _ in 1..WRITE_BATCH {
                        let Ok(m) = queue.try_recv() else { break };
                        write_data(wr, &m, limit).await?;
                    }
                    wr.flush().await?;
                    Ok::<_, TransportError>(())
                })
                .await
                .map_err(|_| slow())??;
            }
            _ = tick.tick() => {
                timeout(cfg.write_timeout, async {
                    write_envelope(wr, &Envelope::Ping, limit).await?;
                    wr.flush().await?;
                    Ok::<_, TransportError>(())
                })
                .await
                .map_err(|_| slow())??;
            }
        }
    }
}

/// Accepts inbound connections, handshakes each in its own bounded task, and
/// hands authenticated streams to the peer's task.
pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    guard: TaskGuard,
) {
    let permits = Arc::new(Semaphore::new(shared.config.max_pending_handshakes));
    loop {
        let accepted = tokio::select! {
            () = stopped(&mut shutdown) => break,
            r = listener.accept() => r,
        };
        let Ok((mut stream, _)) = accepted else {
            // Out of file descriptors or similar: back off briefly.
            sleep(Duration::from_millis(10)).await;
            continue;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            shared
                .stats
                .handshakes_refused
                .fetch_add(1, Ordering::Relaxed);
            continue; // too many half-open peers: drop this one
        };
        let (shared, mut shutdown, guard) = (shared.clone(), shutdown.clone(), guard.clone());
        tokio::spawn(async move {
            let _held = (permit, guard);
            tokio::select! {
                () = stopped(&mut shutdown) => {}
                r = shared.authenticate(&mut stream, None) => if let Ok(peer) = r {
                    // A full hand-over slot means a fresher stream is already
                    // waiting; this one is dropped.
                    let _ = shared.slots[&peer].conns.try_send(stream);
                },
            }
        });
    }
}
