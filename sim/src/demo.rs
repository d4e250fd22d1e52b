//! A small demonstration machine: rumor-mongering gossip.
//!
//! Every node originates a rumor every `interval`, and forwards each rumor
//! it learns for the first time to `fanout` random peers (or to all peers
//! with `fanout = 0`). It exercises everything the engine offers — timers,
//! unicast and broadcast, payload sizes against bandwidth, per-node seeded
//! RNGs, restarts — without depending on any protocol crate.
//!
//! [`GossipObserver`] collects propagation latency and checks an optional
//! bound on it (an invariant a scenario can set deliberately tight to see a
//! failure report).

use std::collections::{BTreeSet, VecDeque};

use idlegrid_primitives::{ChaCha20Rng, Duration, Machine, NodeId, Timestamp, Transmit};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;
use crate::node::{NodeContext, NodeIndex};
use crate::observer::{Observer, Violation};

/// Gossip parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GossipConfig {
    /// How often each node originates a rumor.
    pub interval: Duration,
    /// Payload bytes per rumor.
    pub payload_bytes: usize,
    /// Peers each new rumor is forwarded to; 0 = all.
    pub fanout: usize,
    /// Rumors older than this are ignored and forgotten.
    pub forget_after: Duration,
    /// Bound on remembered rumors.
    pub max_seen: usize,
}

impl Default for GossipConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(500),
            payload_bytes: 1_024,
            fanout: 4,
            forget_after: Duration::from_secs(10),
            max_seen: 100_000,
        }
    }
}

/// A rumor on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rumor {
    /// Who started it.
    pub origin: NodeId,
    /// The origin's sequence number.
    pub seq: u64,
    /// When it started.
    pub created_at: Timestamp,
    /// Forwarding steps so far.
    pub hops: u16,
    /// Bytes of opaque filler the rumor carries on the wire. The filler
    /// itself is not materialized: [`Gossip::wire_size`] adds it to the
    /// encoded size, which is what the network charges for.
    pub payload_len: u32,
}

/// What a gossip node reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GossipEvent {
    /// This node started a rumor.
    Originated {
        /// Its sequence number.
        seq: u64,
    },
    /// This node heard a rumor for the first time.
    Learned {
        /// Who started it.
        origin: NodeId,
        /// The origin's sequence number.
        seq: u64,
        /// When it started.
        created_at: Timestamp,
        /// Forwarding steps it took.
        hops: u16,
    },
}

/// A gossip node (see the module docs).
pub struct Gossip {
    peers: Vec<NodeId>,
    config: GossipConfig,
    rng: ChaCha20Rng,
    id: NodeId,
    next_origin: Timestamp,
    seq: u64,
    seen: BTreeSet<(Timestamp, NodeId, u64)>,
    outbox: VecDeque<Transmit<Rumor>>,
    events: VecDeque<GossipEvent>,
}

impl Gossip {
    /// A node built from the engine's context.
    pub fn new(ctx: &NodeContext<'_>, config: GossipConfig) -> Self {
        let mut rng = ctx.seed.rng();
        let phase = rng.gen_range(0..config.interval.as_micros().max(1));
        Self {
            peers: ctx.nodes.iter().copied().filter(|p| *p != ctx.id).collect(),
            rng,
            id: ctx.id,
            next_origin: ctx.now + Duration::from_micros(phase),
            // Rumors of a restarted node never reuse an old sequence number.
            seq: u64::from(ctx.incarnation) << 32,
            seen: BTreeSet::new(),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            config,
        }
    }

    /// Size of a rumor on the wire: its encoding plus its filler. Pass to
    /// [`Simulation::set_size_of_message`](crate::Simulation::set_size_of_message).
    pub fn wire_size(msg: &Rumor) -> usize {
        idlegrid_primitives::encoded_len(msg) + msg.payload_len as usize
    }

    /// Rumors currently remembered.
    pub fn seen_len(&self) -> usize {
        self.seen.len()
    }

    fn remember(&mut self, now: Timestamp, key: (Timestamp, NodeId, u64)) {
        self.seen.insert(key);
        let cutoff = Timestamp::from_micros(
            now.as_micros()
                .saturating_sub(self.config.forget_after.as_micros()),
        );
        while let Some(first) = self.seen.first() {
            if first.0 < cutoff || self.seen.len() > self.config.max_seen {
                self.seen.pop_first();
            } else {
                break;
            }
        }
    }

    fn forward(&mut self, rumor: Rumor, except: Option<NodeId>) {
        if self.config.fanout == 0 || self.config.fanout >= self.peers.len() {
            self.outbox.push_back(Transmit::broadcast(rumor));
            return;
        }
        let picks = rand::seq::index::sample(&mut self.rng, self.peers.len(), self.config.fanout);
        for i in picks.iter() {
            let peer = self.peers[i];
            if Some(peer) != except {
                self.outbox.push_back(Transmit::to(peer, rumor.clone()));
            }
        }
    }
}

impl Machine for Gossip {
    type Message = Rumor;
    type Event = GossipEvent;

    fn handle_message(&mut self, now: Timestamp, from: NodeId, msg: Rumor) {
        let too_old = now.saturating_since(msg.created_at) > self.config.forget_after;
        let key = (msg.created_at, msg.origin, msg.seq);
        if too_old || msg.origin == self.id || self.seen.contains(&key) {
            return;
        }
        self.remember(now, key);
        self.events.push_back(GossipEvent::Learned {
            origin: msg.origin,
            seq: msg.seq,
            created_at: msg.created_at,
            hops: msg.hops.saturating_add(1),
        });
        let fwd = Rumor {
            hops: msg.hops.saturating_add(1),
            ..msg
        };
        self.forward(fwd, Some(from));
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        if now < self.next_origin {
            return;
        }
        self.seq += 1;
        let rumor = Rumor {
            origin: self.id,
            seq: self.seq,
            created_at: now,
            hops: 0,
            payload_len: u32::try_from(self.config.payload_bytes).unwrap_or(u32::MAX),
        };
        self.remember(now, (now, self.id, self.seq));
        self.events
            .push_back(GossipEvent::Originated { seq: self.seq });
        self.forward(rumor, None);
        self.next_origin = now + self.config.interval;
    }

    fn poll_transmit(&mut self) -> Option<Transmit<Rumor>> {
        self.outbox.pop_front()
    }

    fn poll_event(&mut self) -> Option<GossipEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        Some(self.next_origin)
    }
}

/// Collects gossip metrics and checks the propagation bound.
#[derive(Debug, Default)]
pub struct GossipObserver {
    metrics: Metrics,
    /// If set, a rumor learned later than this after its creation breaks the
    /// `max-propagation` invariant.
    pub max_propagation: Option<Duration>,
}

impl GossipObserver {
    /// An observer with an optional propagation bound.
    pub fn new(max_propagation: Option<Duration>) -> Self {
        Self {
            metrics: Metrics::default(),
            max_propagation,
        }
    }
}

impl Observer<GossipEvent> for GossipObserver {
    fn on_event(
        &mut self,
        now: Timestamp,
        _node: NodeIndex,
        event: &GossipEvent,
    ) -> Result<(), Violation> {
        let second = now.as_micros() / 1_000_000;
        match event {
            GossipEvent::Originated { .. } => {
                self.metrics.add("rumors_originated", 1);
                self.metrics.add_at("rumors_originated", second, 1);
            }
            GossipEvent::Learned {
                origin,
                seq,
                created_at,
                hops,
            } => {
                let latency = now.saturating_since(*created_at);
                self.metrics.add("rumors_learned", 1);
                self.metrics.add_at("rumors_learned", second, 1);
                self.metrics.record("propagation_us", latency.as_micros());
                self.metrics.record("hops", u64::from(*hops));
                if let Some(bound) = self.max_propagation
                    && latency > bound
                {
                    return Err(Violation::new(
                        "max-propagation",
                        format!(
                            "rumor {}#{seq} took {latency} to arrive (bound {bound})",
                            origin.short()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn metrics(&self) -> Option<&Metrics> {
        Some(&self.metrics)
    }
}
