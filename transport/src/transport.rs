//! The [`Transport`] trait: bytes to and from authenticated peers.

use async_trait::async_trait;
use idlegrid_primitives::NodeId;

use crate::error::TransportError;

/// Unreliable, unordered-across-peers, authenticated datagrams between nodes.
///
/// Connection management (dialing, handshakes, reconnects, keepalive) is
/// hidden: callers name a peer by its [`NodeId`] and hand over bytes.
///
/// # Delivery contract
///
/// - `send` never blocks on a slow peer. Each peer has a bounded queue; when
///   it is full the message is dropped and [`TransportError::QueueFull`] (or,
///   for a byte-bounded queue, [`TransportError::QueueBytesFull`]) is
///   returned, so one slow peer never stalls the others.
/// - Delivery is at most once. Messages to one peer over one connection
///   arrive in order; a reconnect or (in-memory) a configured delay may
///   reorder or drop them. Protocols retransmit what they need.
/// - `recv` yields the authenticated sender of each message. When the
///   application reads slowly, the transport stops reading from the network
///   (TCP flow control pushes back on the senders) instead of buffering
///   without bound.
/// - After [`Transport::shutdown`] every method returns
///   [`TransportError::Closed`].
///
/// All methods take `&self`, so a transport can be shared (`Arc`) between a
/// receiving task and sending tasks. `recv` is cancel-safe: dropping its
/// future loses no message.
#[async_trait]
pub trait Transport: Send + Sync {
    /// This node's identity.
    fn local_id(&self) -> NodeId;

    /// The peers this node can address (not itself), in ascending order.
    fn peers(&self) -> Vec<NodeId>;

    /// Queues `payload` for `to`.
    async fn send(&self, to: NodeId, payload: Vec<u8>) -> Result<(), TransportError>;

    /// Queues `payload` for every peer; returns how many queues accepted it.
    /// Per-peer failures (full queue) are skipped; only
    /// [`TransportError::Closed`] and an oversized payload are errors.
    async fn broadcast(&self, payload: Vec<u8>) -> Result<usize, TransportError> {
        let mut accepted = 0;
        for peer in self.peers() {
            match self.send(peer, payload.clone()).await {
                Ok(()) => accepted += 1,
                Err(
                    TransportError::QueueFull { .. }
                    | TransportError::QueueBytesFull { .. }
                    | TransportError::UnknownPeer(_),
                ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(accepted)
    }

    /// The next message and its authenticated sender.
    async fn recv(&self) -> Result<(NodeId, Vec<u8>), TransportError>;

    /// Stops the transport: closes connections and listeners, ends its
    /// background tasks, and waits for them. Idempotent.
    async fn shutdown(&self);
}

/// A shared transport is a transport (for example one task runs a
/// [`Runner`](crate::Runner) while another shuts the transport down).
#[async_trait]
impl<T: Transport + ?Sized> Transport for std::sync::Arc<T> {
    fn local_id(&self) -> NodeId {
        (**self).local_id()
    }
    fn peers(&self) -> Vec<NodeId> {
        (**self).peers()
    }
    async fn send(&self, to: NodeId, payload: Vec<u8>) -> Result<(), TransportError> {
        (**self).send(to, payload).await
    }
    async fn broadcast(&self, payload: Vec<u8>) -> Result<usize, TransportError> {
        (**self).broadcast(payload).await
    }
    async fn recv(&self) -> Result<(NodeId, Vec<u8>), TransportError> {
        (**self).recv().await
    }
    async fn shutdown(&self) {
        (**self).shutdown().await
    }
}
