//! The engine's own throughput: events per second with a trivial machine,
//! the same against raw `BinaryHeap` push/pop, and a scaling table.
//!
//! Used by `idlegrid-sim bench` and the criterion bench.

use std::collections::{BinaryHeap, VecDeque};
use std::fmt::Write as _;
use std::time::Instant;

use idlegrid_primitives::{Duration, Machine, NodeId, Timestamp, Transmit};
use rand::Rng;

use crate::demo::{Gossip, GossipConfig};
use crate::engine::{SimConfig, Simulation};
use crate::network::{Bandwidth, NetworkConfig, RegionId};
use crate::node::{NodeContext, NodeSpec};

/// A trivial machine: every `period` it sends one 8-byte message to a
/// random peer; received messages are ignored.
pub struct Ticker {
    peers: Vec<NodeId>,
    rng: idlegrid_primitives::ChaCha20Rng,
    next: Timestamp,
    period: Duration,
    out: VecDeque<Transmit<u64>>,
}

impl Ticker {
    /// A ticker built from the engine's context.
    pub fn new(ctx: &NodeContext<'_>, period: Duration) -> Self {
        let mut rng = ctx.seed.rng();
        let phase = rng.gen_range(0..period.as_micros().max(1));
        Self {
            peers: ctx.nodes.iter().copied().filter(|p| *p != ctx.id).collect(),
            rng,
            next: ctx.now + Duration::from_micros(phase),
            period,
            out: VecDeque::new(),
        }
    }
}

impl Machine for Ticker {
    type Message = u64;
    type Event = ();
    fn handle_message(&mut self, _now: Timestamp, _from: NodeId, _msg: u64) {}
    fn handle_timeout(&mut self, now: Timestamp) {
        if now >= self.next && !self.peers.is_empty() {
            let to = self.peers[self.rng.gen_range(0..self.peers.len())];
            self.out.push_back(Transmit::to(to, now.as_micros()));
            self.next = now + self.period;
        }
    }
    fn poll_transmit(&mut self) -> Option<Transmit<u64>> {
        self.out.pop_front()
    }
    fn poll_event(&mut self) -> Option<()> {
        None
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        Some(self.next)
    }
}

#[allow(clippy::disallowed_methods)] // benchmarks measure wall time
fn wall_now() -> Instant {
    Instant::now()
}

/// One measured run.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// Nodes simulated.
    pub nodes: usize,
    /// Events processed.
    pub events: u64,
    /// Virtual seconds simulated.
    pub virtual_seconds: f64,
    /// Wall seconds taken.
    pub wall_seconds: f64,
    /// Peak resident memory of the process so far, if known (KiB).
    pub peak_rss_kib: Option<u64>,
}

impl Measured {
    /// Events per wall second.
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.wall_seconds.max(1e-9)
    }
    /// Wall seconds per virtual second.
    pub fn wall_per_virtual(&self) -> f64 {
        self.wall_seconds / self.virtual_seconds.max(1e-9)
    }
}

/// Resets the peak resident set size (Linux: `echo 5 > /proc/self/clear_refs`)
/// so that the next [`peak_rss_kib`] reflects only what follows.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size of this process (Linux `VmHWM`), KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `nodes` tickers (period 1 ms, six world regions, unlimited
/// bandwidth) for `virtual_ms`.
pub fn ticker_run(nodes: usize, virtual_ms: u64, seed: u64) -> Measured {
    let mut cfg = SimConfig::new(seed);
    cfg.max_time = Timestamp::from_millis(virtual_ms);
    cfg.max_events = u64::MAX;
    let net = NetworkConfig {
        upload: Bandwidth::UNLIMITED,
        ..NetworkConfig::default()
    };
    let specs = (0..nodes)
        .map(|i| NodeSpec::in_region(RegionId::new((i % 6) as u16)))
        .collect();
    let mut sim = Simulation::new(
        cfg,
        net,
        specs,
        |ctx| Ticker::new(ctx, Duration::from_millis(1)),
        (),
    )
    .expect("valid bench setup");
    let start = wall_now();
    let report = sim.run().expect("bench run");
    Measured {
        nodes,
        events: report.events,
        virtual_seconds: report.virtual_time.as_micros() as f64 / 1e6,
        wall_seconds: start.elapsed().as_secs_f64(),
        peak_rss_kib: peak_rss_kib(),
    }
}

/// Runs the default gossip machine on `nodes` nodes for `virtual_ms`.
pub fn gossip_run(nodes: usize, virtual_ms: u64, seed: u64) -> Measured {
    let mut cfg = SimConfig::new(seed);
    cfg.max_time = Timestamp::from_millis(virtual_ms);
    cfg.max_events = u64::MAX;
    let specs = (0..nodes)
        .map(|i| NodeSpec::in_region(RegionId::new((i % 6) as u16)))
        .collect();
    let g = GossipConfig::default();
    let mut sim = Simulation::new(
        cfg,
        NetworkConfig::default(),
        specs,
        move |ctx| Gossip::new(ctx, g.clone()),
        (),
    )
    .expect("valid bench setup");
    sim.set_size_of_message(Gossip::wire_size);
    let start = wall_now();
    let report = sim.run().expect("bench run");
    Measured {
        nodes,
        events: report.events,
        virtual_seconds: report.virtual_time.as_micros() as f64 / 1e6,
        wall_seconds: start.elapsed().as_secs_f64(),
        peak_rss_kib: peak_rss_kib(),
    }
}

/// Runs `n` honest consensus validators over the six world regions (100
/// transactions per second each) for `virtual_ms`.
pub fn consensus_run(n: usize, virtual_ms: u64, seed: u64) -> Measured {
    let text = format!(
        "name = \"bench-consensus-{n}\"\nduration_ms = {virtual_ms}\nmachine = \"consensus\"\n\
         [nodes]\ncount = {n}\n[consensus]\ntx_per_second = 100.0\nliveness_bound_ms = 60000\n"
    );
    let scenario = crate::scenario::Scenario::parse(&text).expect("valid bench scenario");
    reset_peak_rss();
    let out = crate::runner::run(
        &scenario,
        &crate::runner::RunOptions {
            seed: Some(seed),
            ..Default::default()
        },
    )
    .expect("bench run");
    Measured {
        nodes: n,
        events: out.summary.events,
        virtual_seconds: out.summary.virtual_seconds,
        wall_seconds: out.summary.wall_seconds,
        peak_rss_kib: peak_rss_kib(),
    }
}

/// Leader commit latency (p50, p99) in message delays for `n` honest
/// validators on a uniform 50 ms network without jitter (Mysticeti's bound
/// is 3).
pub fn synchronous_commit_delays(n: usize) -> (f64, f64) {
    let text = format!(
        "name = \"sync\"\nduration_ms = 10000\nmachine = \"consensus\"\n\
         [network]\npreset = \"custom\"\njitter = 0.0\nregions = [{{ name = \"dc\", latency_ms = [50] }}]\n\
         [nodes]\ncount = {n}\n"
    );
    let scenario = crate::scenario::Scenario::parse(&text).expect("valid bench scenario");
    let out =
        crate::runner::run(&scenario, &crate::runner::RunOptions::default()).expect("bench run");
    let c = out.summary.consensus.expect("consensus summary");
    (
        c.commit_latency_message_delays.p50,
        c.commit_latency_message_delays.p99,
    )
}

/// Raw `BinaryHeap` throughput: a steady-state heap of `size` entries
/// (time, sequence, payload), `ops` pop+push pairs; returns pairs per second.
pub fn heap_pairs_per_second(size: usize, ops: u64, seed: u64) -> f64 {
    let mut rng = idlegrid_primitives::Seed::from_u64(seed).rng();
    let mut heap = BinaryHeap::with_capacity(size + 1);
    for s in 0..size as u64 {
        heap.push(core::cmp::Reverse((rng.gen_range(0..100_000u64), s, 0u64)));
    }
    let start = wall_now();
    let mut sink = 0u64;
    for seq in size as u64..size as u64 + ops {
        let core::cmp::Reverse((t, _, p)) = heap.pop().expect("non-empty");
        sink = sink.wrapping_add(p);
        heap.push(core::cmp::Reverse((
            t + rng.gen_range(1..100_000u64),
            seq,
            sink,
        )));
    }
    let wall = start.elapsed().as_secs_f64();
    std::hint::black_box(sink);
    ops as f64 / wall.max(1e-9)
}

/// The engine's rate on the trivial machine over the raw heap's, measured
/// in `rounds` interleaved pairs of runs so both see the same machine load.
pub struct EngineRatio {
    /// Median ratio over the rounds.
    pub median: f64,
    /// Lowest ratio.
    pub min: f64,
    /// Highest ratio.
    pub max: f64,
    /// Rounds measured.
    pub rounds: usize,
    /// The ticker run of the median round.
    pub ticker: Measured,
    /// The heap's pairs per second in the median round.
    pub heap: f64,
}

/// Measures [`EngineRatio`]: each round runs 50 tickers for `virtual_ms`,
/// then the raw heap for two million pairs.
pub fn engine_ratio(rounds: usize, virtual_ms: u64) -> EngineRatio {
    let rounds = rounds.max(1);
    let mut all: Vec<(f64, Measured, f64)> = (0..rounds)
        .map(|_| {
            let t = ticker_run(50, virtual_ms, 1);
            let heap = heap_pairs_per_second(4_096, 2_000_000, 1);
            (t.events_per_second() / heap, t, heap)
        })
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (median, ticker, heap) = all[rounds / 2];
    EngineRatio {
        median,
        min: all[0].0,
        max: all[rounds - 1].0,
        rounds,
        ticker,
        heap,
    }
}

fn row(out: &mut String, m: &Measured) {
    let _ = writeln!(
        out,
        "  {:>5}  {:>9.2}  {:>10}  {:>10.0}  {:>16.4}  {:>12}",
        m.nodes,
        m.virtual_seconds,
        m.events,
        m.events_per_second(),
        m.wall_per_virtual(),
        m.peak_rss_kib
            .map(|k| format!("{:.1}", k as f64 / 1024.0))
            .unwrap_or_else(|| "n/a".into())
    );
}

/// Peak RSS is the process high-water mark (reset before each run where
/// the OS allows; freed heap is not always returned, so rows run smallest
/// first and read as upper bounds).
const HEADER: &str = "  nodes  virtual_s      events    events/s  wall_s/virtual_s  peak_rss_MiB";

/// The full bench table as text (`idlegrid-sim bench`). `quick` shortens
/// every run about fivefold.
pub fn bench_report(quick: bool) -> String {
    let scale = if quick { 1 } else { 5 };
    let mut out = String::new();
    let engine = engine_ratio(if quick { 5 } else { 9 }, 2_000 * scale);
    let t = engine.ticker;
    let heap = engine.heap;
    let c = consensus_run(10, 2_000 * scale, 1);
    let _ = writeln!(out, "engine throughput");
    let _ = writeln!(
        out,
        "  trivial machine (50 tickers, 1 ms period, world6): {:.0} events/s, {:.1}x real time",
        t.events_per_second(),
        t.virtual_seconds / t.wall_seconds.max(1e-9)
    );
    let _ = writeln!(
        out,
        "  consensus (10 validators, world6, 1000 tx/s):      {:.0} events/s, {:.1}x real time",
        c.events_per_second(),
        c.virtual_seconds / c.wall_seconds.max(1e-9)
    );
    let _ = writeln!(
        out,
        "  raw BinaryHeap pop+push (4096 entries):           {heap:.0} pairs/s"
    );
    let _ = writeln!(
        out,
        "  engine / raw heap: trivial {:.3} (median of {} interleaved rounds; range {:.3}..{:.3}), \
         consensus {:.4} (an event is one pop and about one push)",
        engine.median,
        engine.rounds,
        engine.min,
        engine.max,
        c.events_per_second() / heap
    );
    let sync = synchronous_commit_delays(10);
    let _ = writeln!(
        out,
        "  honest synchronous commit (10 validators, uniform 50 ms one-way): \
         leader commit p50 {:.2}, p99 {:.2} message delays",
        sync.0, sync.1
    );
    let _ = writeln!(
        out,
        "\nscaling, gossip demo (fanout 4, 1 KiB rumors every 500 ms, world6):"
    );
    let _ = writeln!(out, "{HEADER}");
    for n in [10, 50, 100] {
        reset_peak_rss();
        row(&mut out, &gossip_run(n, 2_000 * scale, 1));
    }
    let _ = writeln!(
        out,
        "\nscaling, consensus (honest, world6, 100 tx/s per validator):"
    );
    let _ = writeln!(out, "{HEADER}");
    for n in [10, 50, 100] {
        row(&mut out, &consensus_run(n, 1_000 * scale, 1));
    }
    out
}
