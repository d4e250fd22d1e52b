//! The engine's parallel windows (`Simulation::set_threads`): a run is the
//! same — digest, every counter, every observed event — for any number of
//! threads, through partitions, crashes, restarts and loss changes.

use idlegrid_primitives::{Duration, Timestamp};
use idlegrid_sim::demo::{Gossip, GossipConfig, GossipEvent};
use idlegrid_sim::{
    Fault, InvariantFailure, NetworkConfig, NodeIndex, NodeSpec, Observer, RegionId, RestartMode,
    RunReport, SimConfig, Simulation, Violation,
};

/// Every application event, with when and where it happened.
#[derive(Default)]
struct Seen(Vec<(Timestamp, u32, String)>);

impl Observer<GossipEvent> for Seen {
    fn on_event(
        &mut self,
        now: Timestamp,
        node: NodeIndex,
        e: &GossipEvent,
    ) -> Result<(), Violation> {
        self.0.push((now, node.get() as u32, format!("{e:?}")));
        Ok(())
    }
}

fn ms(v: u64) -> Timestamp {
    Timestamp::from_millis(v)
}

fn nodes(v: &[u32]) -> Vec<NodeIndex> {
    v.iter().copied().map(NodeIndex::new).collect()
}

/// The gossip machine on `threads` threads with `faults` scheduled (at
/// milliseconds): the report and every observed event.
fn gossip_run(
    (cfg, net, specs): (SimConfig, NetworkConfig, Vec<NodeSpec>),
    gossip: GossipConfig,
    threads: usize,
    faults: Vec<(u64, Fault)>,
) -> (RunReport, Vec<(Timestamp, u32, String)>) {
    let mut sim = Simulation::new(
        cfg,
        net,
        specs,
        move |ctx| Gossip::new(ctx, gossip.clone()),
        Seen::default(),
    )
    .expect("valid setup");
    sim.set_threads(threads);
    for (at, f) in faults {
        sim.schedule(ms(at), f).expect("valid fault");
    }
    let report = sim.run().expect("no invariant to break");
    let seen = std::mem::take(&mut sim.observer_mut().0);
    (report, seen)
}

fn run(
    seed: u64,
    threads: usize,
    restart: RestartMode,
    jitter: f64,
) -> (RunReport, Vec<(Timestamp, u32, String)>) {
    let mut cfg = SimConfig::new(seed);
    cfg.max_time = ms(4_000);
    cfg.restart = restart;
    // Six regions, 1 ms inside one; no jitter puts arrivals and timers on
    // whole milliseconds, where they tie.
    let net = NetworkConfig {
        jitter,
        loss: 0.01,
        ..NetworkConfig::default()
    };
    let specs = (0..36)
        .map(|i| NodeSpec::in_region(RegionId::new(i % 6)))
        .collect();
    let gossip = GossipConfig {
        interval: Duration::from_millis(150),
        ..GossipConfig::default()
    };
    let faults = vec![
        (
            700,
            Fault::Partition {
                groups: vec![nodes(&[0, 1, 2, 3]), nodes(&[4, 5, 6, 7])],
            },
        ),
        (
            1_100,
            Fault::Crash {
                nodes: nodes(&[5, 9, 30]),
            },
        ),
        (1_100, Fault::Heal),
        (
            2_000,
            Fault::Restart {
                nodes: nodes(&[5, 9]),
            },
        ),
        (2_500, Fault::SetLoss { loss: 0.0 }),
        (
            2_500,
            Fault::Restart {
                nodes: nodes(&[30]),
            },
        ),
    ];
    gossip_run((cfg, net, specs), gossip, threads, faults)
}

#[test]
fn any_number_of_threads_gives_the_serial_run() {
    let runs = [
        (1, RestartMode::Fresh, 0.3),
        (2, RestartMode::Resume, 0.3),
        (3, RestartMode::Fresh, 0.0),
    ];
    for (seed, restart, jitter) in runs {
        let (serial, seen) = run(seed, 1, restart, jitter);
        assert!(serial.stats.dropped_partition > 0 && serial.stats.dropped_crashed > 0);
        assert!(seen.len() > 1_000, "a busy run: {} events", seen.len());
        for threads in [2, 3] {
            let (parallel, seen_parallel) = run(seed, threads, restart, jitter);
            assert_eq!(
                parallel.digest, serial.digest,
                "seed {seed}, {threads} threads"
            );
            assert_eq!(parallel.events, serial.events);
            assert_eq!(parallel.stats, serial.stats);
            assert_eq!(parallel.checkpoints, serial.checkpoints);
            assert_eq!(parallel.message_latency_us, serial.message_latency_us);
            assert_eq!(
                seen_parallel, seen,
                "the observer saw the same events in the same order"
            );
        }
    }
}

/// A run whose nodes share regions ten to one, on a network that makes
/// every part of a message's way matter: slow uplinks that queue, slow
/// senders, loss, jitter on FIFO links and an in-flight bound that drops.
fn constrained(threads: usize, seed: u64) -> (RunReport, Vec<(Timestamp, u32, String)>) {
    use idlegrid_sim::Bandwidth;
    let mut cfg = SimConfig::new(seed);
    cfg.max_time = ms(3_000);
    let net = NetworkConfig {
        jitter: 0.5,
        loss: 0.05,
        upload: Bandwidth::from_mbps(2),
        max_in_flight_per_link: 2,
        fifo: true,
        ..NetworkConfig::default()
    };
    let specs = (0..30)
        .map(|i| {
            let mut s = NodeSpec::in_region(RegionId::new(i % 3));
            if i % 7 == 0 {
                s.egress_delay = Duration::from_millis(3);
            }
            s
        })
        .collect();
    let gossip = GossipConfig {
        interval: Duration::from_millis(100),
        fanout: 6,
        ..GossipConfig::default()
    };
    let crash = Fault::Crash {
        nodes: nodes(&[3, 4]),
    };
    gossip_run((cfg, net, specs), gossip, threads, vec![(1_500, crash)])
}

#[test]
fn a_constrained_network_gives_the_serial_run() {
    for seed in [1, 2] {
        let (serial, seen) = constrained(1, seed);
        let s = &serial.stats;
        assert!(
            s.dropped_loss > 0 && s.dropped_overflow > 0 && s.dropped_crashed > 0,
            "every way to lose a message is taken: {s:?}"
        );
        assert!(
            serial.upload_wait_us.p50 > 100,
            "uplinks queue: {:?}",
            serial.upload_wait_us
        );
        let (parallel, seen_parallel) = constrained(2, seed);
        assert_eq!(parallel.digest, serial.digest, "seed {seed}");
        assert_eq!(parallel.stats, serial.stats);
        assert_eq!(parallel.checkpoints, serial.checkpoints);
        assert_eq!(parallel.upload_wait_us, serial.upload_wait_us);
        assert_eq!(seen_parallel, seen);
    }
}

/// An observer that fails at a given event.
struct FailAt(u64, u64);

impl Observer<GossipEvent> for FailAt {
    fn on_event(&mut self, now: Timestamp, _: NodeIndex, _: &GossipEvent) -> Result<(), Violation> {
        self.1 += 1;
        match self.1 == self.0 {
            true => Err(Violation::new(
                "test",
                format!("event {} at {now:?}", self.1),
            )),
            false => Ok(()),
        }
    }
}

#[test]
fn a_failure_inside_a_window_is_the_serial_failure() {
    let fail = |threads: usize| -> Box<InvariantFailure> {
        let mut cfg = SimConfig::new(5);
        cfg.max_time = ms(3_000);
        let specs = (0..24)
            .map(|i| NodeSpec::in_region(RegionId::new(i % 6)))
            .collect();
        let mut sim = Simulation::new(
            cfg,
            NetworkConfig::default(),
            specs,
            |ctx| Gossip::new(ctx, GossipConfig::default()),
            FailAt(700, 0),
        )
        .expect("valid setup");
        sim.set_threads(threads);
        match sim.run() {
            Err(idlegrid_sim::SimError::Invariant(f)) => f,
            other => panic!(
                "expected the observer's failure, got {:?}",
                other.map(|r| r.digest)
            ),
        }
    };
    let (serial, parallel) = (fail(1), fail(2));
    assert_eq!(parallel.at, serial.at);
    assert_eq!(parallel.event, serial.event);
    assert_eq!(
        format!("{:?}", parallel.violation),
        format!("{:?}", serial.violation)
    );
}

#[test]
fn marketplaces_get_two_threads_other_runs_one() {
    use idlegrid_sim::runner::auto_threads;
    use idlegrid_sim::scenario::Scenario;
    let two = std::thread::available_parallelism().map_or(1, usize::from) >= 2;
    let threads = |name: &str| auto_threads(&Scenario::named_or_file(name).expect("built in"));
    for market in ["default", "demand", "large", "huge"] {
        assert_eq!(threads(market), if two { 2 } else { 1 }, "{market}");
    }
    assert_eq!(threads("gossip"), 1);
    assert_eq!(threads("consensus"), 1);
}

/// A machine whose output depends on the order of its inputs: node 0
/// sends node 1 a message at 3 ms and 6 ms; node 1, hearing the first
/// (at 8 ms), sets its timer for 11 ms — when the second arrives — and on
/// the timer tells node 0 how many messages it had heard.
struct Counter {
    me: usize,
    peers: Vec<idlegrid_primitives::NodeId>,
    timers: std::collections::VecDeque<Timestamp>,
    heard: u32,
    out: Vec<idlegrid_primitives::Transmit<u32>>,
    said: Vec<u32>,
}

impl idlegrid_primitives::Machine for Counter {
    type Message = u32;
    type Event = u32;
    fn handle_message(&mut self, now: Timestamp, _: idlegrid_primitives::NodeId, _: u32) {
        self.heard += 1;
        if self.me == 1 && self.heard == 1 {
            self.timers.push_back(now + Duration::from_millis(3));
        }
    }
    fn handle_timeout(&mut self, _: Timestamp) {
        self.timers.pop_front();
        let to = self.peers[1 - self.me];
        self.out
            .push(idlegrid_primitives::Transmit::to(to, self.heard));
        if self.me == 1 {
            self.said.push(self.heard);
        }
    }
    fn poll_transmit(&mut self) -> Option<idlegrid_primitives::Transmit<u32>> {
        self.out.pop()
    }
    fn poll_event(&mut self) -> Option<u32> {
        self.said.pop()
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        self.timers.front().copied()
    }
}

/// Nodes 0 and 1 share a region (5 ms apart), node 2 is in another (50 ms
/// away), so one window runs from 3 ms to 53 ms with nodes 0 and 1 in one
/// group. Node 1's timer, set at 8 ms, falls at 11 ms with the message
/// node 0 sent at 6 ms: both pushed inside the window by the group, the
/// message first, so it goes first (as its lower sequence number makes it
/// go first in the serial run) and node 1 had heard 2 — on any number of
/// threads.
#[test]
fn a_queued_input_goes_before_an_own_timer_set_in_the_window() {
    struct Said(Vec<u32>);
    impl Observer<u32> for Said {
        fn on_event(&mut self, _: Timestamp, _: NodeIndex, e: &u32) -> Result<(), Violation> {
            self.0.push(*e);
            Ok(())
        }
    }
    let run = |threads: usize| {
        let mut cfg = SimConfig::new(9);
        cfg.max_time = ms(50);
        let specs = [0, 0, 1].map(|r| NodeSpec::in_region(RegionId::new(r)));
        let (near, far) = (Duration::from_millis(5), Duration::from_millis(50));
        let regions = idlegrid_sim::Regions::new(
            vec!["a".into(), "b".into()],
            vec![vec![near, far], vec![far, near]],
        );
        let net = NetworkConfig {
            regions,
            ..NetworkConfig::ideal(near)
        };
        let mut sim = Simulation::new(
            cfg,
            net,
            specs.to_vec(),
            |ctx| Counter {
                me: ctx.index.get(),
                peers: ctx.nodes[..2].to_vec(),
                timers: match ctx.index.get() {
                    0 => [ms(3), ms(6)].into(),
                    _ => Default::default(),
                },
                heard: 0,
                out: Vec::new(),
                said: Vec::new(),
            },
            Said(Vec::new()),
        )
        .expect("valid setup");
        sim.set_threads(threads);
        let report = sim.run().expect("runs");
        (report.digest, std::mem::take(&mut sim.observer_mut().0))
    };
    let (serial, said) = run(1);
    assert_eq!(said, vec![2], "the serial engine: the queued message first");
    assert_eq!(run(2), (serial, said));
}
