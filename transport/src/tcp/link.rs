//! The data path of one authenticated connection: the peer's send queue →
//! a writer that seals and batches frames into a 64 KiB buffer → the socket
//! → a reader that opens frames (from its read buffer when they are whole)
//! → the inbound byte budget and queue that `recv` drains.
//!
//! The path is generic over the frame cipher ([`SealFrames`],
//! [`OpenFrames`]) only so that the benchmark can measure this very code
//! with the cipher taken out (see [`super::bench_support`]). The transport
//! itself names the cipher: [`PeerTask`](super::peer::PeerTask) calls
//! [`run_session`] with the [`Sealer`] and [`Opener`] that the handshake's
//! [`SessionKeys`](crate::session::SessionKeys) split into, and nothing —
//! no configuration field, feature, cfg or environment variable — chooses
//! another.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};

use idlegrid_primitives::NodeId;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, interval_at, timeout};

use super::Shared;
use super::io::{read_sealed, write_sealed};
use crate::error::TransportError;
use crate::frame::HEADER_LEN;
use crate::session::{Opened, Opener, SealKind, SealedHeader, Sealer, SessionError};

/// Messages taken from the queue per flush, so a busy peer still gets
/// keepalives and fair scheduling.
const WRITE_BATCH: usize = 64;

/// The sending half of a frame cipher, as the data path drives it. The
/// transport's only implementation is the session's [`Sealer`].
pub trait SealFrames: Send + 'static {
    /// Turns `body` into the frame body in place and returns the header to
    /// write before it (see [`Sealer::seal`]).
    fn seal(
        &mut self,
        kind: SealKind,
        body: &mut Vec<u8>,
    ) -> Result<[u8; HEADER_LEN], SessionError>;
    /// Switches to the next key, right after sealing a
    /// [`SealKind::Rekey`] frame (see [`Sealer::rekey`]).
    fn rekey(&mut self);
    /// Bytes sealed since the last rekey.
    fn bytes_since_rekey(&self) -> u64;
}

/// The receiving half of a frame cipher, as the data path drives it. The
/// transport's only implementation is the session's [`Opener`].
pub trait OpenFrames: Send + 'static {
    /// A checked header.
    type Header: Send;
    /// Checks a header and returns it with the length of the body that
    /// follows (see [`Opener::parse_header`]). Allocates nothing.
    fn parse_header(&self, h: &[u8; HEADER_LEN]) -> Result<(Self::Header, usize), SessionError>;
    /// Opens a body of exactly the announced length (see [`Opener::open`]).
    fn open(&mut self, header: Self::Header, body: Vec<u8>) -> Result<Opened, SessionError>;
    /// Opens the first frame of `bytes`, returning the bytes it used;
    /// [`FrameError::Truncated`](crate::frame::FrameError::Truncated) means
    /// "wait for more" (see [`Opener::decode`]).
    fn decode(&mut self, bytes: &[u8]) -> Result<(Opened, usize), SessionError>;
}

impl SealFrames for Sealer {
    fn seal(
        &mut self,
        kind: SealKind,
        body: &mut Vec<u8>,
    ) -> Result<[u8; HEADER_LEN], SessionError> {
        Sealer::seal(self, kind, body)
    }
    fn rekey(&mut self) {
        Sealer::rekey(self);
    }
    fn bytes_since_rekey(&self) -> u64 {
        Sealer::bytes_since_rekey(self)
    }
}

impl OpenFrames for Opener {
    type Header = SealedHeader;
    fn parse_header(&self, h: &[u8; HEADER_LEN]) -> Result<(SealedHeader, usize), SessionError> {
        Opener::parse_header(self, h).map(|h| (h, h.body_len()))
    }
    fn open(&mut self, header: SealedHeader, body: Vec<u8>) -> Result<Opened, SessionError> {
        Opener::open(self, header, body)
    }
    fn decode(&mut self, bytes: &[u8]) -> Result<(Opened, usize), SessionError> {
        Opener::decode(self, bytes)
    }
}

/// Runs one session on `stream` until either direction fails: frames from
/// `queue` are sealed and written, frames read are opened and delivered as
/// from `peer`. A read error is counted in the transport's stats.
pub(crate) async fn run_session<S: SealFrames, O: OpenFrames>(
    shared: &Shared,
    peer: NodeId,
    stream: TcpStream,
    (sealer, opener): (S, O),
    queue: &mut mpsc::Receiver<Vec<u8>>,
    queued: &AtomicUsize,
) -> TransportError {
    let (rd, wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut wr = BufWriter::with_capacity(64 << 10, wr);
    tokio::select! {
        Err(e) = read_loop(shared, peer, &mut rd, opener) => {
            shared.count_session_error(&e);
            e
        }
        Err(e) = write_loop(shared, &mut wr, queue, queued, sealer) => e,
    }
}

async fn read_loop<O: OpenFrames>(
    shared: &Shared,
    peer: NodeId,
    rd: &mut BufReader<OwnedReadHalf>,
    mut opener: O,
) -> Result<Infallible, TransportError> {
    loop {
        match read_sealed(rd, &mut opener, shared.deadlines()).await? {
            Opened::Data(d) => shared.deliver(peer, d).await?,
            Opened::Ping | Opened::Rekey => {}
        }
    }
}

/// The sending half of a session: its sealer and when it last rekeyed.
struct Sending<'a, S> {
    shared: &'a Shared,
    sealer: S,
    rekeyed_at: Instant,
}

impl<S: SealFrames> Sending<'_, S> {
    /// Seals and writes one frame, rekeying first when the policy says so.
    async fn write(
        &mut self,
        wr: &mut BufWriter<OwnedWriteHalf>,
        kind: SealKind,
        body: Vec<u8>,
    ) -> Result<(), TransportError> {
        let cfg = &self.shared.config;
        if self.sealer.bytes_since_rekey() >= cfg.rekey_after_bytes
            || self.rekeyed_at.elapsed() >= cfg.rekey_interval
        {
            write_sealed(wr, &mut self.sealer, SealKind::Rekey, Vec::new()).await?;
            self.sealer.rekey();
            self.rekeyed_at = Instant::now();
            self.shared.stats.rekeys.fetch_add(1, Ordering::Relaxed);
        }
        write_sealed(wr, &mut self.sealer, kind, body).await
    }
}

async fn write_loop<S: SealFrames>(
    shared: &Shared,
    wr: &mut BufWriter<OwnedWriteHalf>,
    queue: &mut mpsc::Receiver<Vec<u8>>,
    queued: &AtomicUsize,
    sealer: S,
) -> Result<Infallible, TransportError> {
    let cfg = &shared.config;
    let mut tx = Sending {
        shared,
        sealer,
        rekeyed_at: Instant::now(),
    };
    let mut tick = interval_at(
        Instant::now() + cfg.keepalive_interval,
        cfg.keepalive_interval,
    );
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let slow = || TransportError::Timeout("the peer did not read within the write timeout");
    loop {
        tokio::select! {
            m = queue.recv() => {
                let Some(first) = m else { return Err(TransportError::Closed) };
                timeout(cfg.write_timeout, async {
                    let mut next = Some(first);
                    for _ in 0..WRITE_BATCH {
                        let Some(m) = next.take().or_else(|| queue.try_recv().ok()) else {
                            break;
                        };
                        queued.fetch_sub(m.len(), Ordering::Relaxed);
                        tx.write(wr, SealKind::Data, m).await?;
                    }
                    wr.flush().await?;
                    Ok::<_, TransportError>(())
                })
                .await
                .map_err(|_| slow())??;
            }
            _ = tick.tick() => {
                timeout(cfg.write_timeout, async {
                    tx.write(wr, SealKind::Ping, Vec::new()).await?;
                    wr.flush().await?;
                    Ok::<_, TransportError>(())
                })
                .await
                .map_err(|_| slow())??;
            }
        }
    }
}
