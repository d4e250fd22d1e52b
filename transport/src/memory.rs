//! An in-memory transport over futures channels, with optional seeded loss
//! and delay — for tests, examples and single-process demos.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use futures::StreamExt;
use futures::channel::mpsc;
use idlegrid_primitives::{ChaCha20Rng, NodeId, Seed};
use rand::Rng;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::TransportError;
use crate::frame::FrameLimit;
use crate::transport::Transport;

/// How the simulated links behave.
#[derive(Debug, Clone)]
pub struct MemoryConfig {
    /// Probability that a message is silently lost, in parts per million
    /// (`0..=1_000_000`).
    pub loss_ppm: u32,
    /// Smallest one-way delay.
    pub delay_min: std::time::Duration,
    /// Largest one-way delay; each message's delay is drawn uniformly from
    /// `delay_min..=delay_max`, so delays reorder messages.
    pub delay_max: std::time::Duration,
    /// Messages waiting at one receiver (plus one slot per sending peer, a
    /// property of futures' bounded channels). Beyond it,
    /// [`Transport::send`] returns [`TransportError::QueueFull`].
    pub inbox_capacity: usize,
    /// Largest payload.
    pub max_frame_len: FrameLimit,
    /// Seed of the loss and delay draws: reproducible for a fixed order of
    /// sends.
    pub seed: Seed,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            loss_ppm: 0,
            delay_min: std::time::Duration::ZERO,
            delay_max: std::time::Duration::ZERO,
            inbox_capacity: 1024,
            max_frame_len: FrameLimit::DEFAULT,
            seed: Seed::from_u64(0),
        }
    }
}

impl MemoryConfig {
    fn validate(&self) -> Result<(), TransportError> {
        if self.loss_ppm > 1_000_000 {
            return Err(TransportError::Config(format!(
                "loss_ppm {} exceeds 1_000_000",
                self.loss_ppm
            )));
        }
        if self.delay_min > self.delay_max {
            return Err(TransportError::Config(
                "delay_min must not exceed delay_max".into(),
            ));
        }
        if self.inbox_capacity == 0 {
            return Err(TransportError::Config("inbox_capacity must be > 0".into()));
        }
        Ok(())
    }
}

/// A message in flight: deliverable at `at`.
struct Item {
    at: Instant,
    from: NodeId,
    payload: Vec<u8>,
}

/// Pending deliveries ordered by time, then arrival.
struct Pending {
    at: Instant,
    seq: u64,
    from: NodeId,
    payload: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    /// Reversed, so that `BinaryHeap` pops the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

struct Net {
    config: MemoryConfig,
    registry: Mutex<BTreeMap<NodeId, mpsc::Sender<Item>>>,
    rng: Mutex<ChaCha20Rng>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short locks leaves consistent data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Net {
    /// Draws the fate of one message: `None` if lost, else its delay.
    fn draw(&self) -> Option<std::time::Duration> {
        let c = &self.config;
        let mut rng = lock(&self.rng);
        if c.loss_ppm > 0 && rng.gen_range(0..1_000_000) < c.loss_ppm {
            return None;
        }
        if c.delay_max.is_zero() {
            return Some(std::time::Duration::ZERO);
        }
        let lo = c.delay_min.as_micros() as u64;
        let hi = c.delay_max.as_micros() as u64;
        Some(std::time::Duration::from_micros(rng.gen_range(lo..=hi)))
    }
}

/// A simulated network that nodes [`join`](MemoryNetwork::join). Cheap to
/// clone; all clones are the same network.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use idlegrid_primitives::{Keypair, Seed};
/// use idlegrid_transport::{MemoryConfig, MemoryNetwork, Transport};
///
/// let net = MemoryNetwork::new(MemoryConfig::default()).unwrap();
/// let a = net.join(Keypair::from_seed(&Seed::from_u64(1)).node_id());
/// let b = net.join(Keypair::from_seed(&Seed::from_u64(2)).node_id());
/// a.send(b.local_id(), b"hi".to_vec()).await.unwrap();
/// assert_eq!(b.recv().await.unwrap(), (a.local_id(), b"hi".to_vec()));
/// # }
/// ```
#[derive(Clone)]
pub struct MemoryNetwork {
    net: Arc<Net>,
}

impl std::fmt::Debug for MemoryNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryNetwork")
            .field("config", &self.net.config)
            .field("nodes", &lock(&self.net.registry).len())
            .finish()
    }
}

impl MemoryNetwork {
    /// A new, empty network.
    pub fn new(config: MemoryConfig) -> Result<Self, TransportError> {
        config.validate()?;
        let rng = config.seed.derive("idlegrid/transport/memory").rng();
        Ok(Self {
            net: Arc::new(Net {
                config,
                registry: Mutex::new(BTreeMap::new()),
                rng: Mutex::new(rng),
            }),
        })
    }

    /// Attaches node `id`. Joining an id that is already attached replaces
    /// it (a restart): messages now go to the new transport.
    pub fn join(&self, id: NodeId) -> MemoryTransport {
        let cap = self.net.config.inbox_capacity;
        let (tx, rx) = mpsc::channel(cap - 1);
        lock(&self.net.registry).insert(id, tx.clone());
        let (closed, _) = watch::channel(false);
        MemoryTransport {
            id,
            net: self.net.clone(),
            own: tx,
            links: Mutex::new(HashMap::new()),
            inbox: futures::lock::Mutex::new(Inbox {
                rx,
                pending: BinaryHeap::new(),
                seq: 0,
            }),
            closed,
        }
    }
}

struct Inbox {
    rx: mpsc::Receiver<Item>,
    pending: BinaryHeap<Pending>,
    seq: u64,
}

impl Inbox {
    fn push(&mut self, item: Item) {
        self.seq += 1;
        self.pending.push(Pending {
            at: item.at,
            seq: self.seq,
            from: item.from,
            payload: item.payload,
        });
    }
}

/// One node's endpoint on a [`MemoryNetwork`].
pub struct MemoryTransport {
    id: NodeId,
    net: Arc<Net>,
    /// Our own inbox sender, to recognise our registry entry.
    own: mpsc::Sender<Item>,
    /// One persistent sender per destination, so that the futures channel's
    /// bound holds (a fresh clone per message would always get a slot).
    links: Mutex<HashMap<NodeId, mpsc::Sender<Item>>>,
    inbox: futures::lock::Mutex<Inbox>,
    closed: watch::Sender<bool>,
}

impl std::fmt::Debug for MemoryTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTransport")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl MemoryTransport {
    fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    fn leave(&self) {
        self.closed.send_replace(true);
        let mut reg = lock(&self.net.registry);
        if reg
            .get(&self.id)
            .is_some_and(|tx| tx.same_receiver(&self.own))
        {
            reg.remove(&self.id);
        }
        drop(reg);
        lock(&self.links).clear();
    }

    fn try_deliver(&self, to: NodeId, item: Item) -> Result<(), TransportError> {
        let mut links = lock(&self.links);
        let mut item = item;
        // At most two attempts: the cached link, then a fresh one if the
        // peer restarted (its old inbox is gone).
        for _ in 0..2 {
            let tx = match links.get_mut(&to) {
                Some(tx) => tx,
                None => {
                    let fresh = lock(&self.net.registry)
                        .get(&to)
                        .cloned()
                        .ok_or(TransportError::UnknownPeer(to))?;
                    links.entry(to).or_insert(fresh)
                }
            };
            match tx.try_send(item) {
                Ok(()) => return Ok(()),
                Err(e) if e.is_full() => {
                    return Err(TransportError::QueueFull {
                        peer: to,
                        capacity: self.net.config.inbox_capacity,
                    });
                }
                Err(e) => {
                    item = e.into_inner();
                    links.remove(&to);
                }
            }
        }
        // The peer left and did not come back: like a network, drop it.
        Ok(())
    }
}

impl Drop for MemoryTransport {
    fn drop(&mut self) {
        self.leave();
    }
}

#[async_trait]
impl Transport for MemoryTransport {
    fn local_id(&self) -> NodeId {
        self.id
    }

    fn peers(&self) -> Vec<NodeId> {
        lock(&self.net.registry)
            .keys()
            .copied()
            .filter(|p| *p != self.id)
            .collect()
    }

    async fn send(&self, to: NodeId, payload: Vec<u8>) -> Result<(), TransportError> {
        if self.is_closed() {
            return Err(TransportError::Closed);
        }
        self.net.config.max_frame_len.check(payload.len())?;
        if to == self.id {
            return Err(TransportError::UnknownPeer(to));
        }
        let Some(delay) = self.net.draw() else {
            return Ok(()); // lost
        };
        let item = Item {
            at: Instant::now() + delay,
            from: self.id,
            payload,
        };
        self.try_deliver(to, item)
    }

    async fn recv(&self) -> Result<(NodeId, Vec<u8>), TransportError> {
        let mut closed = self.closed.subscribe();
        let mut inbox = self.inbox.lock().await;
        let cap = self.net.config.inbox_capacity;
        loop {
            if *closed.borrow_and_update() {
                return Err(TransportError::Closed);
            }
            // Move what has arrived into the time-ordered pending set, bounded.
            while inbox.pending.len() < cap {
                match inbox.rx.try_recv() {
                    Ok(item) => inbox.push(item),
                    Err(_) => break,
                }
            }
            let next_at = inbox.pending.peek().map(|p| p.at);
            if next_at.is_some_and(|at| at <= Instant::now()) {
                let p = inbox.pending.pop().expect("peeked");
                return Ok((p.from, p.payload));
            }
            let room = inbox.pending.len() < cap;
            let sleep = async {
                match next_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                item = inbox.rx.next(), if room => match item {
                    Some(item) => inbox.push(item),
                    // Unreachable while `self.own` lives; closed either way.
                    None => return Err(TransportError::Closed),
                },
                () = sleep => {}
                _ = closed.changed() => {}
            }
        }
    }

    async fn shutdown(&self) {
        self.leave();
    }
}
