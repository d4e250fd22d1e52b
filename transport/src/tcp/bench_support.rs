//! Benchmark support: the TCP data path between two sockets of one process,
//! over any frame cipher. Not part of the API; not for nodes.
//!
//! The issue asks what the transport's own framing, queueing and
//! connection path cost *before* encryption. The transport cannot answer
//! that itself: it has no way to run without its AEAD, by design (see
//! "Encryption cannot be turned off" in [`crate::tcp`]). This module lets
//! `benches/transport.rs` drive the very same code — the send queue and its
//! byte accounting of [`TcpTransport::send`](super::TcpTransport), the
//! session's writer and reader (`run_session` in `link.rs`), the inbound budget and
//! queue of `recv` — with a pass-through cipher that lives in the bench,
//! not in this crate.
//!
//! Why this is not a way to send plaintext: a [`LoopbackLink`] binds its own
//! listener on 127.0.0.1, connects to it and keeps both ends; it takes no
//! address, runs no handshake, knows no peer and implements no
//! [`Transport`](crate::Transport). Its bytes never leave the process.

use std::collections::BTreeMap;
use std::sync::Arc;

use idlegrid_primitives::{Keypair, NodeId, Seed};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc, watch};

use super::link::run_session;
pub use super::link::{OpenFrames, SealFrames};
use super::peer::stopped;
use super::{Inbound, PeerSlot, Shared, SlotEnds, TcpConfig, next_inbound};
use crate::error::TransportError;

/// A one-way link between two loopback sockets of this process, each end
/// running the transport's session data path with the given cipher halves.
pub struct LoopbackLink {
    /// The sending end's slot for the receiving end.
    slot: PeerSlot,
    far: NodeId,
    config: TcpConfig,
    /// The receiving end's inbound queue.
    inbound: Mutex<mpsc::Receiver<Inbound>>,
    /// The receiving end's (empty) slot; held so its writer stays up.
    _back: PeerSlot,
    shutdown: watch::Sender<bool>,
}

impl std::fmt::Debug for LoopbackLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopbackLink").finish_non_exhaustive()
    }
}

impl LoopbackLink {
    /// Connects two loopback sockets and runs a session on each: `near`
    /// seals what [`send`](Self::send) queues, `far` opens it for
    /// [`recv`](Self::recv). Needs a tokio runtime.
    pub async fn new<S1, O1, S2, O2>(
        config: TcpConfig,
        near: (S1, O1),
        far: (S2, O2),
    ) -> Result<Self, TransportError>
    where
        S1: SealFrames,
        O1: OpenFrames,
        S2: SealFrames,
        O2: OpenFrames,
    {
        config.validate()?;
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let a = TcpStream::connect(listener.local_addr()?).await?;
        let (b, _) = listener.accept().await?;
        a.set_nodelay(true)?;
        b.set_nodelay(true)?;
        let (shutdown, stop) = watch::channel(false);
        let key = |n| Keypair::from_seed(&Seed::from_u64(n));
        let (near_key, far_key) = (key(1), key(2));
        let (far_id, near_id) = (far_key.node_id(), near_key.node_id());
        let (slot, near_ends) = PeerSlot::new(&config);
        let (near_shared, _) = Shared::new(near_key, config.clone(), BTreeMap::new());
        let (back, far_ends) = PeerSlot::new(&config);
        let (far_shared, inbound) = Shared::new(far_key, config.clone(), BTreeMap::new());
        tokio::spawn(end(
            near_shared,
            far_id,
            a,
            near,
            near_ends,
            &slot,
            stop.clone(),
        ));
        tokio::spawn(end(far_shared, near_id, b, far, far_ends, &back, stop));
        Ok(Self {
            slot,
            far: far_id,
            config,
            inbound: Mutex::new(inbound),
            _back: back,
            shutdown,
        })
    }

    /// Queues a message, as [`TcpTransport::send`](super::TcpTransport) does.
    pub fn send(&self, payload: Vec<u8>) -> Result<(), TransportError> {
        self.slot.push(&self.config, self.far, payload)
    }

    /// The next message delivered at the far end, as
    /// [`TcpTransport`](super::TcpTransport)'s `recv` returns it.
    pub async fn recv(&self) -> Result<Vec<u8>, TransportError> {
        next_inbound(&self.inbound, &self.shutdown)
            .await
            .map(|(_, m)| m)
    }

    /// Stops both ends.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}

/// One end of the link: its session until it fails or the link stops.
fn end<S: SealFrames, O: OpenFrames>(
    shared: Arc<Shared>,
    peer: NodeId,
    stream: TcpStream,
    cipher: (S, O),
    ends: SlotEnds,
    slot: &PeerSlot,
    mut stop: watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let queued = slot.queued.clone();
    let mut queue = ends.queue;
    async move {
        tokio::select! {
            () = stopped(&mut stop) => {}
            _ = run_session(&shared, peer, stream, cipher, &mut queue, &queued) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::SessionKeys;
    use crate::{FrameLimit, TransportError};

    fn cipher(key: u8) -> (crate::session::Sealer, crate::session::Opener) {
        let (s, _) = SessionKeys::from_raw([key; 32], [0; 32]).split(FrameLimit::DEFAULT);
        let (_, o) = SessionKeys::from_raw([0; 32], [key; 32]).split(FrameLimit::DEFAULT);
        (s, o)
    }

    #[tokio::test]
    async fn the_link_runs_the_session_path_in_order_with_its_limits() {
        let config = TcpConfig {
            send_queue_capacity: 4,
            ..TcpConfig::default()
        };
        let link = LoopbackLink::new(config, cipher(1), cipher(1))
            .await
            .unwrap();
        for round in 0..3u8 {
            for i in 0..4u8 {
                link.send(vec![round, i]).unwrap();
            }
            for i in 0..4u8 {
                assert_eq!(link.recv().await.unwrap(), vec![round, i]);
            }
        }
        // The send queue's limits are the transport's (the current-thread
        // runtime runs the writer only when this test awaits).
        for i in 0..4u8 {
            link.send(vec![i]).unwrap();
        }
        assert!(matches!(
            link.send(vec![4]),
            Err(TransportError::QueueFull { capacity: 4, .. })
        ));
        for i in 0..4u8 {
            assert_eq!(link.recv().await.unwrap(), vec![i]);
        }
        let too_big = vec![0; FrameLimit::DEFAULT.get() + 1];
        assert!(matches!(link.send(too_big), Err(TransportError::Frame(_))));
        link.shutdown();
        assert!(matches!(link.recv().await, Err(TransportError::Closed)));
    }

    #[tokio::test]
    async fn a_far_end_with_another_key_delivers_nothing() {
        let link = LoopbackLink::new(TcpConfig::default(), cipher(1), cipher(2))
            .await
            .unwrap();
        link.send(b"sealed under key 1".to_vec()).unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_millis(200), link.recv()).await;
        // The frame fails authentication, the far end's session ends, and
        // its inbound queue closes with nothing delivered.
        assert!(matches!(got, Ok(Err(TransportError::Closed))), "{got:?}");
        link.shutdown();
    }
}
