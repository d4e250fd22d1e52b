//! Network model behaviours: ordering, partitions, crash/restart,
//! bandwidth, loss.

mod common;

use common::*;
use idlegrid_primitives::Duration;
use idlegrid_sim::{Bandwidth, Fault, NodeIndex, NodeSpec, RegionId};

fn idx(v: &[u32]) -> Vec<NodeIndex> {
    v.iter().copied().map(NodeIndex::new).collect()
}

#[test]
fn ties_are_broken_by_sequence() {
    // Nodes 0 and 2 both send to node 1 at t = 10 ms, twice each; with no
    // jitter all four arrive at t = 15 ms. Delivery follows scheduling order:
    // node 0's timer was armed first, and each node's two sends are in order.
    let plan = |to| {
        vec![
            Send {
                at: ms(10),
                to,
                size: 10,
            },
            Send {
                at: ms(10),
                to,
                size: 10,
            },
        ]
    };
    let mut net = lan(5);
    net.fifo = false;
    let mut sim = probes(1, net, vec![plan(1), vec![], plan(1)], 100);
    sim.run().unwrap();
    let got = sim.observer().received_by(1, sim.node_ids());
    assert_eq!(
        got,
        vec![
            (ms(15), 0, 1),
            (ms(15), 0, 2),
            (ms(15), 2, 1),
            (ms(15), 2, 2)
        ]
    );
}

#[test]
fn partition_blocks_delivery_then_heals() {
    // Node 0 pings node 1 every 10 ms; cut from 100 ms to 200 ms.
    let mut sim = probes(3, lan(5), vec![periodic(1, 0, 10, 30, 10), vec![]], 400);
    sim.schedule(
        ms(100),
        Fault::Partition {
            groups: vec![idx(&[0]), idx(&[1])],
        },
    )
    .unwrap();
    sim.schedule(ms(200), Fault::Heal).unwrap();
    let r = sim.run().unwrap();
    let got = sim.observer().received_by(1, sim.node_ids());
    let times: Vec<_> = got.iter().map(|(t, _, _)| t.as_millis()).collect();
    // Sent at 0..=90 arrive at 5..=95; sent at 100..=190 are cut; 200.. pass.
    assert!(times.iter().all(|t| *t < 100 || *t >= 205), "{times:?}");
    assert_eq!(times.iter().filter(|t| **t < 100).count(), 10);
    assert_eq!(times.iter().filter(|t| **t >= 205).count(), 10);
    assert_eq!(r.stats.dropped_partition, 10);
}

#[test]
fn a_partition_of_thousands_of_nodes_in_a_large_network() {
    // 5 000 nodes: links are kept once used and the partition as its node
    // lists (the dense table had 25 M links and a partition of these two
    // groups set 8 M flags). Groups [0, 2 000) and [2 000, 4 000); nodes
    // 4 000.. unlisted. Each plan sends every 10 ms from 10 ms, ten times;
    // cut until 55 ms.
    let n = 5_000;
    let mut plans = vec![Vec::new(); n];
    plans[0] = periodic(3_000, 10, 10, 10, 10); // across the cut
    plans[1] = periodic(2, 10, 10, 10, 10); // inside group 0
    plans[4_000] = periodic(3, 10, 10, 10, 10); // from an unlisted node
    let mut sim = probes(5, lan(5), plans, 200);
    let range = |r: std::ops::Range<u32>| r.map(NodeIndex::new).collect::<Vec<_>>();
    sim.schedule(
        ms(0),
        Fault::Partition {
            groups: vec![range(0..2_000), range(2_000..4_000)],
        },
    )
    .unwrap();
    sim.schedule(ms(55), Fault::Heal).unwrap();
    let r = sim.run().unwrap();
    let ids = sim.node_ids().to_vec();
    let across = sim.observer().received_by(3_000, &ids);
    assert!(
        across.iter().all(|(t, _, _)| t.as_millis() >= 65),
        "{across:?}"
    );
    assert_eq!(across.len(), 5);
    assert_eq!(sim.observer().received_by(2, &ids).len(), 10);
    assert_eq!(sim.observer().received_by(3, &ids).len(), 10);
    assert_eq!((r.stats.delivered, r.stats.dropped_partition), (25, 5));
}

#[test]
fn in_flight_messages_are_cut_on_arrival() {
    // 50 ms latency; the cut at 120 ms catches messages sent at 80..=110.
    let mut sim = probes(3, lan(50), vec![periodic(1, 0, 10, 20, 10), vec![]], 400);
    sim.schedule(
        ms(120),
        Fault::Partition {
            groups: vec![idx(&[0]), idx(&[1])],
        },
    )
    .unwrap();
    let r = sim.run().unwrap();
    assert_eq!(r.stats.delivered, 7); // sent at 0..=60, arriving before 120
    assert_eq!(r.stats.dropped_partition, 13);
}

#[test]
fn one_way_partition() {
    // 0 → 1 is cut, 1 → 0 still works.
    let mut sim = probes(
        4,
        lan(5),
        vec![periodic(1, 10, 10, 5, 10), periodic(0, 10, 10, 5, 10)],
        200,
    );
    sim.schedule(
        ms(0),
        Fault::Block {
            from: idx(&[0]),
            to: idx(&[1]),
        },
    )
    .unwrap();
    sim.run().unwrap();
    let ids = sim.node_ids().to_vec();
    assert!(sim.observer().received_by(1, &ids).is_empty());
    assert_eq!(sim.observer().received_by(0, &ids).len(), 5);
}

#[test]
fn crash_and_restart() {
    // Node 0 pings node 1 every 10 ms; node 1 is down from 100 ms to 200 ms.
    let mut sim = probes(5, lan(5), vec![periodic(1, 0, 10, 30, 10), vec![]], 400);
    sim.schedule(ms(100), Fault::Crash { nodes: idx(&[1]) })
        .unwrap();
    sim.run_until(ms(150)).unwrap();
    assert!(!sim.is_alive(NodeIndex::new(1)));
    assert!(sim.node(NodeIndex::new(1)).is_none());
    sim.schedule(ms(200), Fault::Restart { nodes: idx(&[1]) })
        .unwrap();
    let r = sim.run().unwrap();
    assert!(sim.is_alive(NodeIndex::new(1)));
    let boots: Vec<_> = sim
        .observer()
        .0
        .iter()
        .filter(|(_, n, e)| n.get() == 1 && matches!(e, ProbeEvent::Booted { .. }))
        .map(|(t, _, e)| (t.as_millis(), e.clone()))
        .collect();
    assert_eq!(
        boots,
        vec![
            (0, ProbeEvent::Booted { incarnation: 0 }),
            (200, ProbeEvent::Booted { incarnation: 1 })
        ]
    );
    let times: Vec<_> = sim
        .observer()
        .received_by(1, sim.node_ids())
        .iter()
        .map(|(t, _, _)| t.as_millis())
        .collect();
    assert!(times.iter().all(|t| *t < 100 || *t > 200), "{times:?}");
    // Sent at 100..=190 arrive at 105..=195 while node 1 is down.
    assert_eq!(r.stats.dropped_crashed, 10);
    assert_eq!(times.len(), 20);
}

#[test]
fn crashed_node_sends_nothing() {
    let mut sim = probes(6, lan(5), vec![periodic(1, 0, 10, 30, 10), vec![]], 400);
    sim.schedule(ms(95), Fault::Crash { nodes: idx(&[0]) })
        .unwrap();
    let r = sim.run().unwrap();
    assert_eq!(r.stats.sent, 10);
}

#[test]
fn bandwidth_delays_big_messages() {
    // 8 Mbit/s uplink: 1 MB takes 1 s to leave, 100 B takes 100 µs.
    let mut net = lan(10);
    net.upload = Bandwidth::from_mbps(8);
    let plan = vec![
        Send {
            at: ms(0),
            to: 1,
            size: 100,
        },
        Send {
            at: ms(0),
            to: 2,
            size: 1_000_000,
        },
        Send {
            at: ms(0),
            to: 1,
            size: 100,
        },
    ];
    let mut sim = probes(7, net, vec![plan, vec![], vec![]], 5_000);
    sim.run().unwrap();
    let ids = sim.node_ids().to_vec();
    let to1 = sim.observer().received_by(1, &ids);
    let to2 = sim.observer().received_by(2, &ids);
    // First small message: 100 µs + 10 ms.
    assert_eq!(to1[0].0.as_micros(), 10_100);
    // The big one: 100 µs queued + 1 s + 10 ms.
    assert_eq!(to2[0].0.as_micros(), 1_010_100);
    // The last small one waited behind the big one on the uplink.
    assert_eq!(to1[1].0.as_micros(), 1_010_200);
}

#[test]
fn a_limited_downlink_is_shared_max_min_fairly() {
    // Nodes 0, 1 and 2 each send 10 000 bytes to node 3 at t = 0; node 3
    // downloads at 8 Mbit/s (10 ms for one alone), node 2 uploads at only
    // 1 Mbit/s. Max-min: 2 → 3 gets its 1 Mbit/s, 0 → 3 and 1 → 3 share
    // the other 7 (3.5 each): 22 857 µs, then 2 → 3 alone at 1 Mbit/s
    // finishes its last 7 143 bytes at 80 ms. Plus 5 ms of latency.
    let mut net = lan(5);
    net.download = Bandwidth::from_mbps(8);
    let one = |at| {
        vec![Send {
            at: ms(at),
            to: 3,
            size: 10_000,
        }]
    };
    let mut specs = vec![NodeSpec::in_region(RegionId::new(0)); 4];
    specs[2].upload = Some(Bandwidth::from_mbps(1));
    let mut sim = probes_on(3, net, specs, vec![one(0), one(0), one(0), vec![]], 1_000);
    let r = sim.run().unwrap();
    let ids = sim.node_ids().to_vec();
    let got: Vec<_> = sim
        .observer()
        .received_by(3, &ids)
        .iter()
        .map(|(t, from, _)| (t.as_micros(), *from))
        .collect();
    assert_eq!(got, vec![(27_858, 0), (27_858, 1), (85_000, 2)]);
    // Every byte sent arrives, once.
    assert_eq!(r.stats.delivered, 3);
    assert_eq!(r.stats.bytes_delivered, 30_000);
}

#[test]
fn cpu_cost_serialises_received_messages() {
    // Three messages reach node 1 at 5 ms; each costs 10 ms of its CPU.
    let plan = vec![
        Send {
            at: ms(0),
            to: 1,
            size: 10,
        };
        3
    ];
    let mut sim = probes(3, lan(5), vec![plan, vec![]], 1_000);
    sim.set_cpu_cost(|_| Duration::from_millis(10));
    sim.run().unwrap();
    let ids = sim.node_ids().to_vec();
    let times: Vec<_> = sim
        .observer()
        .received_by(1, &ids)
        .iter()
        .map(|(t, _, _)| t.as_millis())
        .collect();
    assert_eq!(times, vec![15, 25, 35]);
}

#[test]
fn loss_rate_is_roughly_as_configured() {
    let mut net = lan(1);
    net.loss = 0.1;
    let sends = 10_000;
    let mut sim = probes(8, net, vec![periodic(1, 0, 1, sends, 10), vec![]], 20_000);
    let r = sim.run().unwrap();
    assert_eq!(r.stats.sent, sends);
    assert_eq!(r.stats.dropped_loss + r.stats.delivered, sends);
    let rate = r.stats.dropped_loss as f64 / sends as f64;
    assert!((0.09..0.11).contains(&rate), "loss rate {rate}");
    // Seeded: the exact count is reproducible.
    let mut net = lan(1);
    net.loss = 0.1;
    let mut again = probes(8, net, vec![periodic(1, 0, 1, sends, 10), vec![]], 20_000);
    assert_eq!(
        again.run().unwrap().stats.dropped_loss,
        r.stats.dropped_loss
    );
}

#[test]
fn jitter_stays_in_bounds_and_fifo_holds() {
    let mut net = lan(20);
    net.jitter = 0.5;
    let mut sim = probes(9, net, vec![periodic(1, 0, 1, 500, 10), vec![]], 2_000);
    sim.run().unwrap();
    let got = sim.observer().received_by(1, sim.node_ids());
    assert_eq!(got.len(), 500);
    for w in got.windows(2) {
        assert!(w[0].2 < w[1].2, "FIFO: sequence numbers arrive in order");
    }
    for (t, _, seq) in &got {
        let sent = ms(seq - 1);
        let delay = *t - sent;
        assert!(
            delay >= Duration::from_millis(20)
                && delay <= Duration::from_millis(30) + Duration::from_millis(1)
        );
    }
}

#[test]
fn in_flight_bound_drops_excess() {
    let mut net = lan(100);
    net.max_in_flight_per_link = 5;
    let mut sim = probes(10, net, vec![periodic(1, 0, 1, 20, 10), vec![]], 1_000);
    let r = sim.run().unwrap();
    assert_eq!(r.stats.dropped_overflow, 15);
    assert_eq!(r.stats.delivered, 5);
}

#[test]
fn resume_mode_keeps_state_across_restart() {
    use idlegrid_sim::RestartMode;
    // Node 0 keeps sending while node 0 itself is down 100..200 ms: in
    // resume mode it restarts with its plan and sequence counter intact.
    let mut sim = probes(5, lan(5), vec![periodic(1, 0, 10, 30, 10), vec![]], 400);
    assert_eq!(sim.config().restart, RestartMode::Fresh);
    let mut sim2 = {
        let mut cfg = sim.config().clone();
        cfg.restart = RestartMode::Resume;
        let plans = [periodic(1, 0, 10, 30, 10), vec![]];
        let nodes = (0..2)
            .map(|_| idlegrid_sim::NodeSpec::in_region(idlegrid_sim::RegionId::new(0)))
            .collect();
        let mut s = idlegrid_sim::Simulation::new(
            cfg,
            lan(5),
            nodes,
            move |ctx| Probe::new(ctx, plans[ctx.index.get()].clone()),
            Log::default(),
        )
        .unwrap();
        s.set_size_of_message(ping_size);
        s
    };
    for s in [&mut sim, &mut sim2] {
        s.schedule(ms(95), Fault::Crash { nodes: idx(&[0]) })
            .unwrap();
        s.schedule(ms(200), Fault::Restart { nodes: idx(&[0]) })
            .unwrap();
        s.run().unwrap();
    }
    let seqs = |s: &idlegrid_sim::Simulation<Probe, Log>| -> Vec<u64> {
        s.observer()
            .received_by(1, s.node_ids())
            .iter()
            .map(|r| r.2)
            .collect()
    };
    // Fresh: sequence restarts at 1 and only sends planned at or after 200 ms.
    let fresh = seqs(&sim);
    assert_eq!(fresh.len(), 20);
    assert_eq!(fresh[10], 1);
    // Resume: the overdue sends (100..=190) all go at 200 ms, numbering continues.
    let resumed = seqs(&sim2);
    assert_eq!(resumed, (1..=30).collect::<Vec<_>>());
}

#[test]
fn external_input_through_with_node() {
    // No plan at all: the test pushes a send into node 0 from outside.
    let mut sim = probes(11, lan(5), vec![vec![], vec![]], 100);
    sim.run_until(ms(10)).unwrap();
    let ids = sim.node_ids().to_vec();
    let delivered = sim
        .with_node(NodeIndex::new(0), |m, now| {
            use idlegrid_primitives::Machine;
            // An immediate planned send, then fire it.
            *m = Probe::new(
                &idlegrid_sim::NodeContext {
                    index: NodeIndex::new(0),
                    id: ids[0],
                    key_seed: idlegrid_primitives::Seed::from_u64(0),
                    seed: idlegrid_primitives::Seed::from_u64(0),
                    incarnation: 0,
                    region: idlegrid_sim::RegionId::new(0),
                    now,
                    nodes: &ids,
                },
                vec![Send {
                    at: now,
                    to: 1,
                    size: 10,
                }],
            );
            m.handle_timeout(now);
        })
        .unwrap();
    assert!(delivered);
    sim.run().unwrap();
    let got = sim.observer().received_by(1, &ids);
    assert_eq!(got, vec![(ms(15), 0, 1)]);
}
