//! The network half of the engine: per-link state, uplinks, the event
//! queue, the run digest and counters. Kept apart from the machines so the
//! engine can borrow a node and the network at once.

use std::collections::HashMap;

use idlegrid_primitives::{Destination, Digest, Domain, Duration, NodeId, Timestamp, encode};
use serde::Serialize;

use crate::fault::Fault;
use crate::metrics::{Histogram, MAX_SERIES_SECONDS};
use crate::network::{
    Bandwidth, Cuts, FairShare, LinkSlot, LinkState, LinkTable, NetworkConfig, RegionId,
};
use crate::node::NodeIndex;
use crate::queue::{EventQueue, QueueFull};

use super::run_digest::{Record, RunDigest};
use super::stats::{Checkpoint, NetStats, SecondStats};

pub(super) const RUN_DOMAIN: Domain = Domain::new("idlegrid/sim/run");
const MSG_DOMAIN: Domain = Domain::new("idlegrid/sim/message");

/// The fingerprint of a message without a fingerprint function: an
/// encoding shorter than 32 bytes is its own fingerprint (its length, then
/// the bytes, then zeros: injective, and no hashing for the small messages
/// of demos and benches); a longer one is hashed. A short message's
/// fingerprint equals a long one's only if blake3 hits that exact 32-byte
/// value, a preimage, which is harder than the collision the run digest
/// already assumes away.
pub(super) fn default_fingerprint(bytes: &[u8]) -> Digest {
    let len = bytes.len();
    if len >= 32 {
        return Digest::hash(MSG_DOMAIN, bytes);
    }
    let mut fp = [0u8; 32];
    fp[0] = len as u8; // < 32
    fp[1..=len].copy_from_slice(bytes);
    Digest::from_bytes(fp)
}

/// A message on its way: its envelope, the message, and whether its CPU
/// cost at the recipient is paid.
pub(super) struct InFlight<Msg> {
    pub(super) env: Envelope,
    pub(super) msg: Msg,
    /// Arrived, and its CPU cost at the recipient has been paid.
    pub(super) cpu_done: bool,
}

/// What the network knows of a message besides its content (the parallel
/// engine's windows hand the content to the node and keep this; see
/// `parallel.rs`).
pub(super) struct Envelope {
    pub(super) from: NodeIndex,
    pub(super) to: NodeIndex,
    /// The link `from → to`'s slot in the link table.
    pub(super) link: LinkSlot,
    pub(super) sent_at: Timestamp,
    pub(super) size: u64,
    pub(super) fingerprint: Digest,
}

/// A message in the max-min fair model, waiting for its transfer to end.
pub(super) struct Transfer<Msg> {
    m: InFlight<Msg>,
    jitter: Duration,
}

/// CPU time a received message costs its recipient.
pub(super) type CpuCostFn<Msg> = Box<dyn Fn(&Msg) -> Duration>;
/// A message's fingerprint in the run digest (see
/// `Simulation::set_message_fingerprint`).
pub(super) type FingerprintFn<Msg> = Box<dyn FnMut(&Msg) -> Digest>;

pub(super) enum Event<Msg> {
    Deliver(InFlight<Msg>),
    /// The next transfer of the max-min fair model ends (stale when its
    /// generation is not the latest).
    TransferDone {
        generation: u64,
    },
    Timer {
        node: NodeIndex,
        generation: u64,
    },
    Fault(Fault),
}

/// Network state and bookkeeping, split from the machines so the engine can
/// borrow a node and the network at once.
pub(super) struct Net<Msg> {
    pub(super) config: NetworkConfig,
    pub(super) now: Timestamp,
    pub(super) queue: EventQueue<Event<Msg>>,
    pub(super) n: usize,
    /// The state of every link that has carried a message.
    pub(super) links: LinkTable,
    /// Links cut by partitions and blocks.
    pub(super) cuts: Cuts,
    pub(super) regions: Vec<RegionId>,
    pub(super) upload: Vec<Bandwidth>,
    pub(super) download: Vec<Bandwidth>,
    /// The max-min fair model, when some downlink is limited.
    pub(super) fair: Option<FairShare<Transfer<Msg>>>,
    /// The generation and time of the pending `TransferDone` event.
    pub(super) transfer_timer: (u64, Option<Timestamp>),
    pub(super) egress_delay: Vec<Duration>,
    pub(super) upload_free_at: Vec<Timestamp>,
    pub(super) alive: Vec<bool>,
    pub(super) ids: Vec<NodeId>,
    pub(super) index_of: HashMap<NodeId, NodeIndex>,
    pub(super) digest: RunDigest,
    pub(super) events: u64,
    pub(super) stats: NetStats,
    pub(super) series: Vec<SecondStats>,
    pub(super) checkpoints: Vec<Checkpoint>,
    pub(super) latency: Histogram,
    pub(super) upload_wait: Histogram,
    pub(super) size_of: Option<fn(&Msg) -> usize>,
    pub(super) fingerprint_of: Option<FingerprintFn<Msg>>,
    /// CPU time a received message costs its recipient (see
    /// `Simulation::set_cpu_cost`).
    pub(super) cpu_cost: Option<CpuCostFn<Msg>>,
    /// When each node's CPU is next free.
    pub(super) cpu_free_at: Vec<Timestamp>,
}

impl<Msg: Clone + Serialize> Net<Msg> {
    pub(super) fn bump(&mut self, f: impl FnOnce(&mut SecondStats)) {
        let s = (self.now.as_micros() / 1_000_000) as usize;
        if s >= MAX_SERIES_SECONDS {
            return;
        }
        if self.series.len() <= s {
            self.series.resize(s + 1, SecondStats::default());
        }
        f(&mut self.series[s]);
    }

    pub(super) fn chain(&mut self, kind: u8, a: u32, b: u32, fingerprint: &[u8; 32]) {
        self.digest.record(&Record {
            kind,
            at: self.now,
            a,
            b,
            fingerprint,
        });
    }

    /// A message reached the end of its link: false if a partition cut it
    /// (counted as dropped).
    pub(super) fn arrive(&mut self, link: LinkSlot, from: NodeIndex, to: NodeIndex) -> bool {
        self.links.get(link).in_flight -= 1;
        if self.cuts.is_cut(from, to) {
            self.stats.dropped_partition += 1;
            self.bump(|s| s.dropped += 1);
            return false;
        }
        true
    }

    /// A message reached a crashed node.
    pub(super) fn dropped_crashed(&mut self) {
        self.stats.dropped_crashed += 1;
        self.bump(|s| s.dropped += 1);
    }

    /// A message is handed to its recipient: recorded and counted.
    pub(super) fn delivered(
        &mut self,
        from: NodeIndex,
        to: NodeIndex,
        fingerprint: &Digest,
        size: u64,
    ) {
        self.chain(
            1,
            from.get() as u32,
            to.get() as u32,
            fingerprint.as_bytes(),
        );
        self.stats.delivered += 1;
        self.stats.bytes_delivered += size;
        self.bump(|s| {
            s.delivered += 1;
            s.bytes_delivered += size;
        });
    }

    /// A node's timer fires: recorded and counted.
    pub(super) fn timer_fired(&mut self, node: NodeIndex, incarnation: u32) {
        self.chain(2, node.get() as u32, incarnation, &[0; 32]);
        self.stats.timers += 1;
    }

    pub(super) fn transmit(
        &mut self,
        from: NodeIndex,
        to: Destination,
        msg: Msg,
    ) -> Result<(), QueueFull> {
        let (size, fingerprint) = match (self.size_of, &mut self.fingerprint_of) {
            (Some(size), Some(fp)) => (size(&msg), fp(&msg)),
            (size, fp) => {
                let bytes = encode(&msg);
                (
                    size.map_or(bytes.len(), |f| f(&msg)),
                    fp.as_mut()
                        .map_or_else(|| default_fingerprint(&bytes), |f| f(&msg)),
                )
            }
        };
        let size = size as u64;
        match to {
            Destination::To(id) => match self.index_of.get(&id) {
                Some(&to) => self.send(from, to, msg, size, fingerprint)?,
                None => {
                    self.stats.dropped_unknown += 1;
                    self.bump(|s| s.dropped += 1);
                }
            },
            Destination::Broadcast => {
                // Start after the sender and wrap, so no peer is always last
                // in the uplink queue.
                let n = self.n;
                for k in 1..n {
                    let to = NodeIndex::new(((from.get() + k) % n) as u32);
                    self.send(from, to, msg.clone(), size, fingerprint)?;
                }
            }
        }
        Ok(())
    }

    fn send(
        &mut self,
        from: NodeIndex,
        to: NodeIndex,
        msg: Msg,
        size: u64,
        fingerprint: Digest,
    ) -> Result<(), QueueFull> {
        self.stats.sent += 1;
        self.stats.bytes_sent += size;
        if self.cuts.is_cut(from, to) {
            self.stats.dropped_partition += 1;
            self.bump(|s| s.dropped += 1);
            return Ok(());
        }
        let slot = self.links.slot(from.get(), to.get());
        let draws = Draws::take(self.links.get(slot), self.config.loss);
        // The uplink is busy even with a message lost on the way.
        let now = self.now;
        let depart = self.fair.is_none().then(|| {
            let free_at = &mut self.upload_free_at[from.get()];
            let (start, depart) = uplink(now, free_at, &self.upload[from.get()], size);
            self.upload_wait.record((start - now).as_micros());
            depart
        });
        if draws.lost {
            self.stats.dropped_loss += 1;
            self.bump(|s| s.dropped += 1);
            return Ok(());
        }
        let link = self.links.get(slot);
        if !admit(link, self.config.max_in_flight_per_link) {
            self.stats.dropped_overflow += 1;
            self.bump(|s| s.dropped += 1);
            return Ok(());
        }
        let base = self
            .config
            .regions
            .latency(self.regions[from.get()], self.regions[to.get()]);
        let jitter = draws.jitter(base, self.config.jitter);
        let env = Envelope {
            from,
            to,
            link: slot,
            sent_at: now,
            size,
            fingerprint,
        };
        let m = InFlight {
            env,
            msg,
            cpu_done: false,
        };
        match (depart, self.fair.as_mut()) {
            (Some(depart), _) => self.propagate(depart, m, jitter),
            (None, Some(fair)) => {
                let t = Transfer { m, jitter };
                match fair.push(now, from.get() as u32, to.get() as u32, size, t) {
                    Some(t) => self.propagate(now, t.m, t.jitter),
                    None => Ok(()),
                }
            }
            (None, None) => unreachable!("no fair model without a departure time"),
        }
    }

    /// Schedules the arrival of `m`, whose last byte left at `depart`.
    fn propagate(
        &mut self,
        depart: Timestamp,
        m: InFlight<Msg>,
        jitter: Duration,
    ) -> Result<(), QueueFull> {
        let (from, to) = (m.env.from.get(), m.env.to.get());
        let base = self
            .config
            .regions
            .latency(self.regions[from], self.regions[to]);
        let link = self.links.get(m.env.link);
        let depart = depart + self.egress_delay[from];
        let at = arrival(depart, base + jitter, self.config.fifo, link);
        self.queue.push(at, Event::Deliver(m))?;
        Ok(())
    }

    /// Hands every finished transfer of the fair model to propagation.
    pub(super) fn finish_transfers(&mut self) -> Result<(), QueueFull> {
        let now = self.now;
        let Some(fair) = self.fair.as_mut() else {
            return Ok(());
        };
        for (from, to, t) in fair.complete(now) {
            // Time beyond the message's own transmission at the slower end.
            let alone = self.upload[from as usize]
                .transmit_time(t.m.env.size)
                .max(self.download[to as usize].transmit_time(t.m.env.size));
            let waited = (now - t.m.env.sent_at).as_micros();
            self.upload_wait
                .record(waited.saturating_sub(alone.as_micros()));
            self.propagate(now, t.m, t.jitter)?;
        }
        Ok(())
    }

    /// Keeps one `TransferDone` event at the fair model's next completion.
    pub(super) fn rearm_transfers(&mut self) -> Result<(), QueueFull> {
        let Some(fair) = self.fair.as_mut() else {
            return Ok(());
        };
        let next = fair.next_completion();
        if next != self.transfer_timer.1 {
            self.transfer_timer.0 += 1;
            self.transfer_timer.1 = next;
            if let Some(t) = next {
                let generation = self.transfer_timer.0;
                self.queue
                    .push(t.max(self.now), Event::TransferDone { generation })?;
            }
        }
        Ok(())
    }
}

/// The link's side of one message, shared by the serial engine
/// ([`Net::send`]) and a parallel window's groups (`parallel.rs`), so both
/// decide a message's fate by the same arithmetic: the two draws every
/// message takes from its link's RNG, lost or not.
pub(super) struct Draws {
    pub(super) lost: bool,
    jitter: f64,
}

impl Draws {
    pub(super) fn take(link: &mut LinkState, loss: f64) -> Self {
        let lost = link.rng.unit() < loss;
        let jitter = link.rng.unit();
        Self { lost, jitter }
    }

    /// The extra delay on a link of latency `base`, `jitter` the network's.
    pub(super) fn jitter(&self, base: Duration, jitter: f64) -> Duration {
        Duration::from_micros((base.as_micros() as f64 * jitter * self.jitter) as u64)
    }
}

/// A message of `size` bytes on the sender's uplink, free from `free_at`:
/// when its transmission starts and when its last byte leaves (the uplink
/// is busy until then).
pub(super) fn uplink(
    now: Timestamp,
    free_at: &mut Timestamp,
    upload: &Bandwidth,
    size: u64,
) -> (Timestamp, Timestamp) {
    let start = now.max(*free_at);
    *free_at = start + upload.transmit_time(size);
    (start, *free_at)
}

/// Takes a message onto `link` unless its in-flight bound is reached.
pub(super) fn admit(link: &mut LinkState, max_in_flight: u32) -> bool {
    let open = link.in_flight < max_in_flight;
    link.in_flight += u32::from(open);
    open
}

/// When a message that left at `depart` (egress delay included) arrives
/// after `delay` (base latency and jitter): on a FIFO link never before
/// the link's previous message.
pub(super) fn arrival(
    depart: Timestamp,
    delay: Duration,
    fifo: bool,
    link: &mut LinkState,
) -> Timestamp {
    let mut at = depart + delay;
    if fifo {
        at = at.max(link.last_arrival);
    }
    link.last_arrival = at;
    at
}

#[cfg(test)]
mod tests {
    use super::default_fingerprint;

    #[test]
    fn short_encodings_are_their_own_injective_fingerprints() {
        let inputs: [&[u8]; 6] = [b"", b"\0", b"\0\0", b"a", &[7; 31], &[7; 32]];
        let fps: Vec<_> = inputs.iter().map(|b| default_fingerprint(b)).collect();
        for (i, a) in fps.iter().enumerate() {
            for b in &fps[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // 31 bytes are inlined, 32 are hashed.
        assert_eq!(fps[4].as_bytes()[0], 31);
        assert_eq!(&fps[4].as_bytes()[1..], &[7; 31]);
        assert_ne!(&fps[5].as_bytes()[1..], &[7; 31]);
    }
}
