//! A tiny test machine: sends planned messages, reports what it receives.
#![allow(dead_code)]

use std::collections::VecDeque;

use idlegrid_primitives::{Duration, Machine, NodeId, Timestamp, Transmit};
use idlegrid_sim::{
    NetworkConfig, NodeContext, NodeIndex, NodeSpec, Observer, RegionId, SimConfig, Simulation,
    Violation,
};
use serde::Serialize;

/// A message: sequence number, send time and the size it claims on the wire.
#[derive(Debug, Clone, Serialize)]
pub struct Ping {
    pub seq: u64,
    pub sent_at: Timestamp,
    pub size: u32,
}

pub fn ping_size(p: &Ping) -> usize {
    p.size as usize
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProbeEvent {
    Booted {
        incarnation: u32,
    },
    Received {
        from: NodeId,
        seq: u64,
        sent_at: Timestamp,
    },
}

/// One planned send: at `at`, to node `to`, `size` bytes.
#[derive(Debug, Clone, Copy)]
pub struct Send {
    pub at: Timestamp,
    pub to: usize,
    pub size: u32,
}

pub struct Probe {
    plan: VecDeque<Send>,
    nodes: Vec<NodeId>,
    seq: u64,
    out: VecDeque<Transmit<Ping>>,
    events: VecDeque<ProbeEvent>,
}

impl Probe {
    pub fn new(ctx: &NodeContext<'_>, plan: Vec<Send>) -> Self {
        Self {
            plan: plan.into_iter().filter(|s| s.at >= ctx.now).collect(),
            nodes: ctx.nodes.to_vec(),
            seq: 0,
            out: VecDeque::new(),
            events: [ProbeEvent::Booted {
                incarnation: ctx.incarnation,
            }]
            .into(),
        }
    }
}

impl Machine for Probe {
    type Message = Ping;
    type Event = ProbeEvent;
    fn handle_message(&mut self, _now: Timestamp, from: NodeId, msg: Ping) {
        self.events.push_back(ProbeEvent::Received {
            from,
            seq: msg.seq,
            sent_at: msg.sent_at,
        });
    }
    fn handle_timeout(&mut self, now: Timestamp) {
        while self.plan.front().is_some_and(|s| s.at <= now) {
            let s = self.plan.pop_front().unwrap();
            self.seq += 1;
            self.out.push_back(Transmit::to(
                self.nodes[s.to],
                Ping {
                    seq: self.seq,
                    sent_at: now,
                    size: s.size,
                },
            ));
        }
    }
    fn poll_transmit(&mut self) -> Option<Transmit<Ping>> {
        self.out.pop_front()
    }
    fn poll_event(&mut self) -> Option<ProbeEvent> {
        self.events.pop_front()
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        self.plan.front().map(|s| s.at)
    }
}

/// Records every event with its time and node.
#[derive(Default)]
pub struct Log(pub Vec<(Timestamp, NodeIndex, ProbeEvent)>);

impl Observer<ProbeEvent> for Log {
    fn on_event(
        &mut self,
        now: Timestamp,
        node: NodeIndex,
        e: &ProbeEvent,
    ) -> Result<(), Violation> {
        self.0.push((now, node, e.clone()));
        Ok(())
    }
}

impl Log {
    /// (arrival time, sender index, seq) of messages received by `node`.
    pub fn received_by(&self, node: usize, ids: &[NodeId]) -> Vec<(Timestamp, usize, u64)> {
        self.0
            .iter()
            .filter(|(_, n, _)| n.get() == node)
            .filter_map(|(t, _, e)| match e {
                ProbeEvent::Received { from, seq, .. } => {
                    Some((*t, ids.iter().position(|i| i == from).unwrap(), *seq))
                }
                _ => None,
            })
            .collect()
    }
}

pub fn ms(v: u64) -> Timestamp {
    Timestamp::from_millis(v)
}

/// `count` sends from one node every `period_ms`, starting at `start_ms`.
pub fn periodic(to: usize, start_ms: u64, period_ms: u64, count: u64, size: u32) -> Vec<Send> {
    (0..count)
        .map(|k| Send {
            at: ms(start_ms + k * period_ms),
            to,
            size,
        })
        .collect()
}

/// A simulation of `plans.len()` probes on `net`, one region.
pub fn probes(
    seed: u64,
    net: NetworkConfig,
    plans: Vec<Vec<Send>>,
    end_ms: u64,
) -> Simulation<Probe, Log> {
    let nodes = (0..plans.len())
        .map(|_| NodeSpec::in_region(RegionId::new(0)))
        .collect();
    probes_on(seed, net, nodes, plans, end_ms)
}

/// [`probes`] with each node's own spec (region, bandwidths).
pub fn probes_on(
    seed: u64,
    net: NetworkConfig,
    nodes: Vec<NodeSpec>,
    plans: Vec<Vec<Send>>,
    end_ms: u64,
) -> Simulation<Probe, Log> {
    let mut cfg = SimConfig::new(seed);
    cfg.max_time = ms(end_ms);
    let mut sim = Simulation::new(
        cfg,
        net,
        nodes,
        move |ctx| Probe::new(ctx, plans[ctx.index.get()].clone()),
        Log::default(),
    )
    .unwrap();
    sim.set_size_of_message(ping_size);
    sim
}

pub fn lan(latency_ms: u64) -> NetworkConfig {
    NetworkConfig::ideal(Duration::from_millis(latency_ms))
}
