//! The discrete-event engine that drives any [`Machine`] over the simulated
//! network.
//!
//! One [`EventQueue`] ordered by `(time, sequence)` holds every pending
//! message delivery, timer and scheduled fault. The loop pops the earliest
//! event, advances virtual time to it, hands it to the node, then drains the
//! node's outputs (`poll_transmit`, `poll_event`) and re-arms its timer from
//! `poll_timeout` — exactly the driving contract of [`Machine`].
//!
//! Every delivered message, fired timer and applied fault is written as a
//! 49-byte record (kind, time, sender/recipient or node/incarnation, the
//! message's or fault's fingerprint) into the run digest: a blake3 chain
//! sealed every 1,024 records, `d ← H(d ‖ batch)`, read at any point as the
//! chain sealed with the records buffered so far (see `run_digest.rs`). Two
//! runs with the same seed and scenario produce the same digest, and runs
//! that differ in any event differ in it. A run is bounded by virtual time
//! ([`SimConfig::max_time`]) and by event count ([`SimConfig::max_events`]).
//!
//! With [`Simulation::set_threads`] the loop takes a window of events at a
//! time — everything before the earliest event plus the lowest latency
//! between two regions — has each region's nodes run it on one of several
//! threads (messages inside a region delivered there), and replays the
//! window in the order above with their outputs: the same run, digest
//! included, for any number of threads (see `parallel.rs`).

use idlegrid_primitives::{Digest, Domain, Duration, Keypair, Machine, NodeId, Seed, Timestamp};
use serde::Serialize;
use thiserror::Error;

use crate::fault::Fault;
use crate::metrics::Histogram;
use crate::network::{Cuts, FairShare, LinkTable, NetworkConfig};
use crate::node::{NodeContext, NodeIndex, NodeSpec};
use crate::observer::{InvariantFailure, Observer, Violation};
use crate::queue::{EventQueue, QueueFull};

mod net;
mod parallel;
mod run_digest;
mod stats;
mod window;

use std::collections::BTreeMap;

use net::{Event, InFlight, Net, RUN_DOMAIN};
use run_digest::RunDigest;
pub use stats::{Checkpoint, NetStats, Progress, RunReport, SecondStats, StopReason};
use window::Parallel;

const FAULT_DOMAIN: Domain = Domain::new("idlegrid/sim/fault");

/// The most nodes one simulation may hold: room for the `huge` scenario's
/// 110 200. Nothing in the engine is `n²` (links are kept once used, cuts
/// as the nodes they name), so the bound is on the per-node vectors and a
/// broadcast's `n − 1` copies.
pub const MAX_NODES: usize = 120_000;
/// A digest checkpoint is recorded every this many events.
pub const CHECKPOINT_EVERY: u64 = 4_096;
const MAX_CHECKPOINTS: usize = 1 << 20;
const PROGRESS_EVERY: u64 = 1 << 12;
/// Events a parallel window may not come this close to the event bound
/// (beyond twice the queue's length): near it the run goes on serially, so
/// a run stopped by the bound leaves its machines where the serial run
/// does, not up to a window ahead. A window's events are those queued when
/// it starts and those its regions push inside it (messages within a
/// region, timers), a few hundred to a few tens of thousands on the
/// built-in scenarios; should one ever hold more, its groups still stop at
/// the bound and the run's report and digest are the serial run's, but
/// machines of other regions may have run past it.
const WINDOW_EVENT_MARGIN: u64 = 1_000_000;

/// Run-wide settings of the engine.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The root seed (every node's and link's RNG derives from it).
    pub seed: u64,
    /// Virtual time at which [`Simulation::run`] stops.
    pub max_time: Timestamp,
    /// Number of events after which a run stops.
    pub max_events: u64,
    /// Bound on pending events; exceeding it is [`SimError::QueueFull`].
    pub max_queue_len: usize,
    /// Period of [`Observer::on_tick`].
    pub tick: Duration,
    /// The command that replays this run, printed with invariant failures.
    /// `None` gives `idlegrid-sim run --seed <seed>`.
    pub replay_command: Option<String>,
    /// What a restarted node remembers.
    pub restart: RestartMode,
    /// The first `hubs` nodes talk to nearly every node (a marketplace's
    /// validators): their links are found by index, `8 · hubs · n` bytes
    /// allocated up front, instead of through a map (0: none).
    pub hubs: usize,
}

/// What a node keeps across a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartMode {
    /// Nothing: the factory builds a fresh machine (amnesia).
    #[default]
    Fresh,
    /// Everything (as if its state were on durable storage): the same
    /// machine resumes, having missed every message and timer while down.
    Resume,
    /// What its simulated disk held: the factory rebuilds the node from
    /// its [`SimDisk`](crate::durable::SimDisk), with the un-synced writes
    /// the crash lost (see [`crate::durable`]). The engine treats it as
    /// [`RestartMode::Fresh`]; the scenario's factory reads the disk.
    Store,
}

impl SimConfig {
    /// Ten virtual seconds, ten million events, a 100 ms tick.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            max_time: Timestamp::from_millis(10_000),
            max_events: 10_000_000,
            max_queue_len: 4_000_000,
            tick: Duration::from_millis(100),
            replay_command: None,
            restart: RestartMode::Fresh,
            hubs: 0,
        }
    }

    /// The replay command for this run.
    pub fn replay(&self) -> String {
        self.replay_command
            .clone()
            .unwrap_or_else(|| format!("idlegrid-sim run --seed {}", self.seed))
    }
}

/// Why a simulation could not run or stopped early.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SimError {
    /// The event queue bound was hit.
    #[error(transparent)]
    QueueFull(#[from] QueueFull),
    /// An observer found a broken invariant.
    #[error("{0}")]
    Invariant(Box<InvariantFailure>),
    /// The setup is inconsistent.
    #[error("invalid simulation setup: {0}")]
    Setup(String),
}

struct Slot<M> {
    machine: Option<M>,
    /// A crashed machine kept for [`RestartMode::Resume`].
    stash: Option<M>,
    incarnation: u32,
    timer_generation: u64,
    timer_at: Option<Timestamp>,
}

impl<M> Default for Slot<M> {
    fn default() -> Self {
        Self {
            machine: None,
            stash: None,
            incarnation: 0,
            timer_generation: 0,
            timer_at: None,
        }
    }
}

/// The machines' slots, kept per group of a parallel window (see
/// `parallel.rs`) so a window can lend each group its own; one group
/// when the run is serial.
struct Nodes<M> {
    groups: Vec<Vec<Slot<M>>>,
    /// Each node's group and position in it.
    place: Vec<(u32, u32)>,
}

impl<M> Nodes<M> {
    fn new(slots: Vec<Slot<M>>) -> Self {
        let place = (0..slots.len() as u32).map(|i| (0, i)).collect();
        Self {
            groups: vec![slots],
            place,
        }
    }

    /// Regroups the slots: node `i` into group `group_of[i]` (in index
    /// order within each group).
    fn regroup(&mut self, group_of: &[u32]) {
        let count = group_of.iter().max().map_or(1, |g| *g as usize + 1);
        let mut old = std::mem::take(&mut self.groups);
        let slots: Vec<Slot<M>> = (self.place.iter())
            .map(|&(g, p)| std::mem::take(&mut old[g as usize][p as usize]))
            .collect();
        let mut groups: Vec<Vec<Slot<M>>> = (0..count).map(|_| Vec::new()).collect();
        for (i, slot) in slots.into_iter().enumerate() {
            let g = group_of[i] as usize;
            self.place[i] = (g as u32, groups[g].len() as u32);
            groups[g].push(slot);
        }
        self.groups = groups;
    }

    fn get(&self, i: usize) -> Option<&Slot<M>> {
        let (g, p) = *self.place.get(i)?;
        self.groups[g as usize].get(p as usize)
    }

    fn get_mut(&mut self, i: usize) -> Option<&mut Slot<M>> {
        let (g, p) = *self.place.get(i)?;
        self.groups[g as usize].get_mut(p as usize)
    }
}

impl<M> std::ops::Index<usize> for Nodes<M> {
    type Output = Slot<M>;
    fn index(&self, i: usize) -> &Slot<M> {
        self.get(i).expect("a node of the simulation")
    }
}

impl<M> std::ops::IndexMut<usize> for Nodes<M> {
    fn index_mut(&mut self, i: usize) -> &mut Slot<M> {
        self.get_mut(i).expect("a node of the simulation")
    }
}

/// A deterministic simulation of `M` machines on a simulated network, with
/// an observer `O` (metrics and invariant checkers).
///
/// ```
/// use idlegrid_sim::{NetworkConfig, NodeSpec, RegionId, SimConfig, Simulation};
/// use idlegrid_sim::demo::{Gossip, GossipConfig};
/// use idlegrid_primitives::Timestamp;
///
/// let mut cfg = SimConfig::new(7);
/// cfg.max_time = Timestamp::from_millis(2_000);
/// let net = NetworkConfig::default(); // six world regions
/// let nodes = (0..12).map(|i| NodeSpec::in_region(RegionId::new(i % 6))).collect();
/// let gossip = GossipConfig::default();
/// let mut sim = Simulation::new(cfg, net, nodes, move |ctx| Gossip::new(ctx, gossip.clone()), ())
///     .unwrap();
/// let report = sim.run().unwrap();
/// assert!(report.stats.delivered > 0);
/// // Same seed, same run.
/// # let _ = report.digest;
/// ```
pub struct Simulation<M: Machine, O> {
    config: SimConfig,
    root: Seed,
    net: Net<M::Message>,
    nodes: Nodes<M>,
    key_seeds: Vec<Seed>,
    factory: Box<dyn FnMut(&NodeContext<'_>) -> M>,
    observer: O,
    started: bool,
    next_tick: Timestamp,
    failure: Option<Box<InvariantFailure>>,
    progress: Option<Box<dyn FnMut(Progress)>>,
    /// How windows of events run on several threads (see `parallel.rs`);
    /// `None`: one event at a time.
    parallel: Option<Parallel<M>>,
    /// Times of scheduled faults not yet applied (each bounds a window).
    pending_faults: BTreeMap<Timestamp, u32>,
}

impl<M, O> Simulation<M, O>
where
    M: Machine,
    M::Message: Clone + Serialize,
    O: Observer<M::Event>,
{
    /// A simulation of `nodes.len()` machines built by `factory`.
    ///
    /// Node `i`'s key is `Keypair::from_seed(root.derive_indexed("node-key", i))`;
    /// its RNG seed and every link's RNG derive from the same root seed.
    pub fn new(
        config: SimConfig,
        network: NetworkConfig,
        nodes: Vec<NodeSpec>,
        factory: impl FnMut(&NodeContext<'_>) -> M + 'static,
        observer: O,
    ) -> Result<Self, SimError> {
        let n = nodes.len();
        if n == 0 || n > MAX_NODES {
            return Err(SimError::Setup(format!(
                "node count must be in 1..={MAX_NODES}, got {n}"
            )));
        }
        if let Some(bad) = nodes
            .iter()
            .find(|s| s.region.index() >= network.regions.len())
        {
            return Err(SimError::Setup(format!(
                "node placed in {} but only {} regions exist",
                bad.region,
                network.regions.len()
            )));
        }
        if config.max_queue_len == 0 || network.max_in_flight_per_link == 0 {
            return Err(SimError::Setup(
                "max_queue_len and max_in_flight_per_link must be positive".into(),
            ));
        }
        if !(0.0..=1.0).contains(&network.loss) || !(0.0..=10.0).contains(&network.jitter) {
            return Err(SimError::Setup(
                "loss must be in [0, 1] and jitter in [0, 10]".into(),
            ));
        }
        let root = Seed::from_u64(config.seed);
        let key_seeds: Vec<Seed> = (0..n as u64)
            .map(|i| root.derive_indexed("node-key", i))
            .collect();
        let ids: Vec<NodeId> = key_seeds
            .iter()
            .map(|s| Keypair::from_seed(s).node_id())
            .collect();
        let index_of = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, NodeIndex::new(i as u32)))
            .collect();
        let mut seed_bytes = root.as_bytes().to_vec();
        seed_bytes.extend_from_slice(&(n as u64).to_le_bytes());
        let net = Net {
            now: Timestamp::ZERO,
            queue: EventQueue::new(config.max_queue_len),
            n,
            links: LinkTable::new(n, config.hubs, root.derive("link")),
            cuts: Cuts::default(),
            regions: nodes.iter().map(|s| s.region).collect(),
            upload: nodes
                .iter()
                .map(|s| s.upload.unwrap_or(network.upload))
                .collect(),
            egress_delay: nodes.iter().map(|s| s.egress_delay).collect(),
            download: nodes
                .iter()
                .map(|s| s.download.unwrap_or(network.download))
                .collect(),
            fair: None,
            transfer_timer: (0, None),
            upload_free_at: vec![Timestamp::ZERO; n],
            alive: vec![true; n],
            ids,
            index_of,
            digest: RunDigest::new(RUN_DOMAIN, Digest::hash(RUN_DOMAIN, &seed_bytes)),
            events: 0,
            stats: NetStats::default(),
            series: Vec::new(),
            checkpoints: Vec::new(),
            latency: Histogram::new(),
            upload_wait: Histogram::new(),
            size_of: None,
            fingerprint_of: None,
            cpu_cost: None,
            cpu_free_at: vec![Timestamp::ZERO; n],
            config: network,
        };
        let mut net = net;
        if net.download.iter().any(|d| !d.is_unlimited()) {
            net.fair = Some(FairShare::new(net.upload.clone(), net.download.clone()));
        }
        Ok(Self {
            root,
            net,
            nodes: Nodes::new((0..n).map(|_| Slot::default()).collect()),
            key_seeds,
            factory: Box::new(factory),
            observer,
            started: false,
            next_tick: Timestamp::ZERO.saturating_add(config.tick),
            failure: None,
            progress: None,
            parallel: None,
            pending_faults: BTreeMap::new(),
            config,
        })
    }

    /// Uses `f` for message sizes instead of the canonical encoded length.
    pub fn set_size_of_message(&mut self, f: fn(&M::Message) -> usize) {
        self.net.size_of = Some(f);
        if let Some(p) = self.parallel.as_mut() {
            p.topology = None; // rebuilt with the new size function
        }
    }

    /// Uses `f` to identify a message in the run digest instead of hashing
    /// its canonical encoding. `f` must be collision-resistant over the
    /// message's content (e.g. a block's signed header digest, which commits
    /// to its transactions). With a size function too, the engine never
    /// encodes messages. `f` may remember what it computed (a cache), as
    /// long as its answer depends on the message's content alone.
    pub fn set_message_fingerprint(&mut self, f: impl FnMut(&M::Message) -> Digest + 'static) {
        self.net.fingerprint_of = Some(Box::new(f));
    }

    /// Charges every received message `f(msg)` of its recipient's CPU: a
    /// node handles one message at a time, so a message that arrives while
    /// the CPU is busy waits, and each is handed to the machine when its
    /// cost has been paid (verification happens before handling). Timers
    /// and a node's own sends cost nothing. Without it, CPU is free.
    pub fn set_cpu_cost(&mut self, f: impl Fn(&M::Message) -> Duration + 'static) {
        self.net.cpu_cost = Some(Box::new(f));
    }

    /// Calls `f` every few thousand events (for progress bars).
    pub fn set_progress(&mut self, f: impl FnMut(Progress) + 'static) {
        self.progress = Some(Box::new(f));
    }

    /// Schedules `fault` at `at`.
    pub fn schedule(&mut self, at: Timestamp, fault: Fault) -> Result<(), SimError> {
        if let Some(bad) = fault.nodes().iter().find(|i| i.get() >= self.net.n) {
            return Err(SimError::Setup(format!(
                "{} fault names node {bad} but there are {} nodes",
                fault.kind(),
                self.net.n
            )));
        }
        if let Fault::SetLoss { loss } = fault
            && !(0.0..=1.0).contains(&loss)
        {
            return Err(SimError::Setup(format!(
                "loss must be in [0, 1], got {loss}"
            )));
        }
        let at = at.max(self.net.now);
        self.net.queue.push(at, Event::Fault(fault))?;
        *self.pending_faults.entry(at).or_default() += 1;
        Ok(())
    }

    /// Current virtual time.
    pub fn now(&self) -> Timestamp {
        self.net.now
    }
    /// The run digest so far.
    pub fn digest(&self) -> Digest {
        self.net.digest.digest()
    }
    /// Events processed so far.
    pub fn events(&self) -> u64 {
        self.net.events
    }
    /// Network counters so far.
    pub fn stats(&self) -> &NetStats {
        &self.net.stats
    }
    /// Identities of all nodes, by index.
    pub fn node_ids(&self) -> &[NodeId] {
        &self.net.ids
    }
    /// The machine of node `i`, if it is up.
    pub fn node(&self, i: NodeIndex) -> Option<&M> {
        self.nodes.get(i.get())?.machine.as_ref()
    }
    /// Whether node `i` is up.
    pub fn is_alive(&self, i: NodeIndex) -> bool {
        self.net.alive.get(i.get()).copied().unwrap_or(false)
    }
    /// The observer.
    pub fn observer(&self) -> &O {
        &self.observer
    }
    /// The observer, mutably.
    pub fn observer_mut(&mut self) -> &mut O {
        &mut self.observer
    }
    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Gives node `i`'s machine an external input (e.g. a client request)
    /// at the current time, then drains its outputs. Returns `false` if the
    /// node is down.
    pub fn with_node(
        &mut self,
        i: NodeIndex,
        f: impl FnOnce(&mut M, Timestamp),
    ) -> Result<bool, SimError> {
        self.start()?;
        let now = self.net.now;
        let Some(slot) = self.nodes.get_mut(i.get()) else {
            return Ok(false);
        };
        let Some(m) = slot.machine.as_mut() else {
            return Ok(false);
        };
        f(m, now);
        self.drain(i)?;
        self.check_failure()?;
        Ok(true)
    }

    /// Runs to [`SimConfig::max_time`] (or the event bound), then runs the
    /// observer's end-of-run checks.
    pub fn run(&mut self) -> Result<RunReport, SimError> {
        let stop = self.run_until(self.config.max_time)?;
        self.finish(stop)
    }

    /// Runs the observer's end-of-run checks and reports.
    pub fn finish(&mut self, stop: StopReason) -> Result<RunReport, SimError> {
        if let Err(v) = self.observer.finish(self.net.now) {
            self.fail(v);
        }
        self.check_failure()?;
        Ok(self.report(stop))
    }

    /// The report of the run so far.
    pub fn report(&self, stop: StopReason) -> RunReport {
        RunReport {
            seed: self.config.seed,
            virtual_time: self.net.now,
            events: self.net.events,
            digest: self.net.digest.digest(),
            stop,
            stats: self.net.stats,
            message_latency_us: self.net.latency.summary(),
            upload_wait_us: self.net.upload_wait.summary(),
            series: self.net.series.clone(),
            checkpoints: self.net.checkpoints.clone(),
        }
    }

    /// Processes events up to and including virtual time `until` (capped by
    /// [`SimConfig::max_time`]), or until the event bound.
    pub fn run_until(&mut self, until: Timestamp) -> Result<StopReason, SimError> {
        self.start()?;
        let until = until.min(self.config.max_time);
        loop {
            self.check_failure()?;
            if self.net.events >= self.config.max_events {
                return Ok(StopReason::EventLimit);
            }
            let next = self.net.queue.peek_time();
            let horizon = next.unwrap_or(until).min(until);
            // Periodic checks due before the next event.
            while self.next_tick <= horizon {
                let t = self.next_tick;
                self.net.now = self.net.now.max(t);
                if let Err(v) = self.observer.on_tick(t) {
                    self.fail(v);
                    self.check_failure()?;
                }
                self.next_tick = t.saturating_add(self.config.tick.max(Duration::from_micros(1)));
            }
            match next {
                Some(t) if t <= until => {}
                Some(_) => {
                    self.net.now = self.net.now.max(until);
                    return Ok(StopReason::TimeLimit);
                }
                None => {
                    self.net.now = self.net.now.max(until);
                    return Ok(StopReason::Idle);
                }
            }
            if let Some(first) = next
                && let Some(end) = self.window_end(first, until)
            {
                self.run_window(end)?;
                continue;
            }
            let (at, _seq, event) = self.net.queue.pop().expect("peeked");
            debug_assert!(at >= self.net.now, "time never goes backwards");
            self.net.now = at;
            if self.process(event)? {
                self.counted(at);
            } // else a superseded timer: not an event of the run
        }
    }

    /// Counts one event of the run: checkpoints and progress.
    fn counted(&mut self, at: Timestamp) {
        self.net.events += 1;
        if self.net.events % CHECKPOINT_EVERY == 0 && self.net.checkpoints.len() < MAX_CHECKPOINTS {
            self.net.checkpoints.push(Checkpoint {
                events: self.net.events,
                at,
                digest: self.net.digest.digest(),
            });
        }
        if self.net.events % PROGRESS_EVERY == 0
            && let Some(p) = self.progress.as_mut()
        {
            p(Progress {
                now: at,
                events: self.net.events,
                max_time: self.config.max_time,
            });
        }
    }

    fn start(&mut self) -> Result<(), SimError> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        for i in 0..self.net.n {
            self.build(NodeIndex::new(i as u32))?;
        }
        Ok(())
    }

    fn build(&mut self, i: NodeIndex) -> Result<(), SimError> {
        let slot = &mut self.nodes[i.get()];
        let ctx = NodeContext {
            index: i,
            id: self.net.ids[i.get()],
            key_seed: self.key_seeds[i.get()],
            seed: self
                .root
                .derive_indexed("node", i.get() as u64)
                .derive_indexed("incarnation", u64::from(slot.incarnation)),
            incarnation: slot.incarnation,
            region: self.net.regions[i.get()],
            now: self.net.now,
            nodes: &self.net.ids,
        };
        slot.machine = Some((self.factory)(&ctx));
        self.net.alive[i.get()] = true;
        self.drain(i)
    }

    fn fail(&mut self, violation: Violation) {
        if self.failure.is_none() {
            self.failure = Some(Box::new(InvariantFailure {
                violation,
                seed: self.config.seed,
                at: self.net.now,
                event: self.net.events,
                replay_command: self.config.replay(),
            }));
        }
    }

    fn check_failure(&self) -> Result<(), SimError> {
        match &self.failure {
            Some(f) => Err(SimError::Invariant(f.clone())),
            None => Ok(()),
        }
    }

    fn process(&mut self, event: Event<M::Message>) -> Result<bool, SimError> {
        let now = self.net.now;
        match event {
            Event::Deliver(m) => self.deliver(m),
            Event::TransferDone { generation } => {
                if generation != self.net.transfer_timer.0 {
                    return Ok(false); // superseded
                }
                self.net.transfer_timer.1 = None;
                self.net.finish_transfers()?;
                self.net.rearm_transfers()?;
                Ok(false) // the deliveries it schedules are the events
            }
            Event::Timer { node, generation } => {
                let slot = &mut self.nodes[node.get()];
                if slot.timer_generation != generation {
                    return Ok(false); // superseded
                }
                let Some(machine) = slot.machine.as_mut() else {
                    return Ok(false);
                };
                slot.timer_at = None;
                self.net.timer_fired(node, slot.incarnation);
                machine.handle_timeout(now);
                self.drain(node)?;
                Ok(true)
            }
            Event::Fault(fault) => {
                if let Some(n) = self.pending_faults.get_mut(&now) {
                    *n -= 1;
                    if *n == 0 {
                        self.pending_faults.remove(&now);
                    }
                }
                let fp = Digest::of(FAULT_DOMAIN, &fault);
                self.net.chain(3, 0, 0, fp.as_bytes());
                self.net.stats.faults += 1;
                self.apply(&fault)?;
                if let Err(v) = self.observer.on_fault(now, &fault) {
                    self.fail(v);
                }
                Ok(true)
            }
        }
    }

    /// A message arrives at its recipient (or, with a CPU cost, has been
    /// verified by it).
    fn deliver(&mut self, mut m: InFlight<M::Message>) -> Result<bool, SimError> {
        let now = self.net.now;
        let (from, to) = (m.env.from, m.env.to);
        if !m.cpu_done && !self.net.arrive(m.env.link, from, to) {
            return Ok(true);
        }
        let slot = &mut self.nodes[to.get()];
        let Some(machine) = slot.machine.as_mut() else {
            self.net.dropped_crashed();
            return Ok(true);
        };
        if !m.cpu_done {
            self.net.latency.record((now - m.env.sent_at).as_micros());
        }
        if !m.cpu_done
            && let Some(cost) = self.net.cpu_cost.as_ref().map(|f| f(&m.msg))
            && cost > Duration::ZERO
        {
            let done = now.max(self.net.cpu_free_at[to.get()]) + cost;
            self.net.cpu_free_at[to.get()] = done;
            m.cpu_done = true;
            self.net.queue.push(done, Event::Deliver(m))?;
            return Ok(false); // handled when verified
        }
        self.net.delivered(from, to, &m.env.fingerprint, m.env.size);
        let from_id = self.net.ids[from.get()];
        machine.handle_message(now, from_id, m.msg);
        self.drain(to)?;
        Ok(true)
    }

    fn apply(&mut self, fault: &Fault) -> Result<(), SimError> {
        match fault {
            Fault::Partition { groups } => self.net.cuts.partition(groups),
            Fault::Block { from, to } => self.net.cuts.block(from, to),
            Fault::Heal => self.net.cuts.heal(),
            Fault::Crash { nodes } => {
                for i in nodes {
                    let slot = &mut self.nodes[i.get()];
                    if let Some(m) = slot.machine.take() {
                        if self.config.restart == RestartMode::Resume {
                            slot.stash = Some(m);
                        }
                        slot.timer_generation += 1;
                        slot.timer_at = None;
                        self.net.alive[i.get()] = false;
                        self.net.upload_free_at[i.get()] = self.net.now;
                        self.net.cpu_free_at[i.get()] = self.net.now;
                    }
                }
            }
            Fault::Restart { nodes } => {
                for i in nodes {
                    let slot = &mut self.nodes[i.get()];
                    if slot.machine.is_some() {
                        continue;
                    }
                    slot.incarnation += 1;
                    match slot.stash.take() {
                        Some(m) => {
                            slot.machine = Some(m);
                            self.net.alive[i.get()] = true;
                            self.drain(*i)?;
                        }
                        None => self.build(*i)?,
                    }
                }
            }
            Fault::SetLoss { loss } => self.net.config.loss = *loss,
        }
        Ok(())
    }

    /// Drains node `i`'s outputs and re-arms its timer.
    fn drain(&mut self, i: NodeIndex) -> Result<(), SimError> {
        let now = self.net.now;
        let slot = &mut self.nodes[i.get()];
        let Some(machine) = slot.machine.as_mut() else {
            return Ok(());
        };
        while let Some(t) = machine.poll_transmit() {
            self.net.transmit(i, t.to, t.msg)?;
        }
        self.net.rearm_transfers()?;
        while let Some(e) = machine.poll_event() {
            if !observe(
                &mut self.net,
                &mut self.observer,
                &mut self.failure,
                &self.config,
                i,
                &e,
            ) {
                break;
            }
        }
        let next = machine.poll_timeout();
        if next != slot.timer_at {
            slot.timer_generation += 1;
            slot.timer_at = next;
            if let Some(t) = next {
                let generation = slot.timer_generation;
                self.net.queue.push(
                    t.max(now),
                    Event::Timer {
                        node: i,
                        generation,
                    },
                )?;
            }
        }
        Ok(())
    }
}

/// Counts an application event of node `i` and shows it to the observer;
/// false if the observer found a broken invariant (then recorded as the
/// run's failure unless one was already).
fn observe<Msg: Clone + Serialize, E, O: Observer<E>>(
    net: &mut Net<Msg>,
    observer: &mut O,
    failure: &mut Option<Box<InvariantFailure>>,
    config: &SimConfig,
    i: NodeIndex,
    e: &E,
) -> bool {
    let now = net.now;
    net.stats.app_events += 1;
    net.bump(|s| s.app_events += 1);
    let Err(violation) = observer.on_event(now, i, e) else {
        return true;
    };
    if failure.is_none() {
        *failure = Some(Box::new(InvariantFailure {
            violation,
            seed: config.seed,
            at: now,
            event: net.events,
            replay_command: config.replay(),
        }));
    }
    false
}
