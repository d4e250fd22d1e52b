//! The engine's side of a parallel window: popping its events, handing
//! each group of nodes its own, and replaying the window in the serial
//! order (see `parallel.rs` for why that order is the serial run's).

use std::collections::VecDeque;
use std::sync::Arc;

use idlegrid_primitives::{Duration, Machine, Timestamp};
use serde::Serialize;

use super::net::{Envelope, Event};
use super::parallel::{
    Entry, Group, Grouping, Input, Outputs, Pool, Topology, WindowData, Workers,
};
use super::{SimError, Simulation, WINDOW_EVENT_MARGIN, observe};
use crate::node::NodeIndex;
use crate::observer::Observer;
use crate::queue::EventSeq;

/// A window's event as the replay sees it: a message's envelope (its
/// content went to the node) or a timer.
enum Popped {
    Deliver(Envelope),
    Timer { node: NodeIndex },
}

/// A window's events queued before it, in `(time, sequence)` order.
type Window = Vec<(Timestamp, EventSeq, Popped)>;

/// Per group, per node (by position), what the group logged.
type Logs<M> = Vec<Vec<VecDeque<Entry<M>>>>;

/// A group's queued events, in `(time, sequence)` order.
type Inputs<Msg> = Vec<(Timestamp, u64, Input<Msg>)>;

/// Below this many queued events a window runs on the calling thread
/// alone: waking a helper costs more than it saves.
const MIN_INPUTS_TO_SHARE: usize = 16;

/// How a simulation runs its windows: its threads, its groups, and what
/// the groups read (built with the first window).
pub(super) struct Parallel<M: Machine> {
    pool: Box<dyn Workers<M>>,
    grouping: Arc<Grouping>,
    pub(super) topology: Option<Arc<Topology<M::Message>>>,
}

impl<M, O> Simulation<M, O>
where
    M: Machine + Send + 'static,
    M::Message: Clone + Serialize + Send + 'static,
    M::Event: Send + 'static,
    O: Observer<M::Event>,
{
    /// Handles windows of events on `threads` threads (at most 1: one event
    /// at a time, as always). The run is the same for any count — every
    /// message, queue sequence number, observer call and so the run
    /// digest — see `parallel.rs`. Needs nodes in at least two regions,
    /// with a positive latency between any two of them; without them the
    /// run stays serial.
    pub fn set_threads(&mut self, threads: usize) {
        let grouping = (threads > 1)
            .then(|| Grouping::by_region(&self.net.config, &self.net.regions))
            .flatten();
        let one = vec![0; self.net.n];
        self.nodes
            .regroup(grouping.as_ref().map_or(&one, |g| &g.group_of));
        self.parallel = grouping.map(|grouping| Parallel {
            pool: Box::new(Pool::<M>::new(threads)),
            grouping: Arc::new(grouping),
            topology: None,
        });
    }
}

impl<M, O> Simulation<M, O>
where
    M: Machine,
    M::Message: Clone + Serialize,
    O: Observer<M::Event>,
{
    /// The end (exclusive) of a parallel window whose first event is at
    /// `first`, if one may run: threads are set, nothing couples nodes
    /// inside a window, the event bound is far, and no tick, fault or the
    /// run's end falls at `first`.
    pub(super) fn window_end(&self, first: Timestamp, until: Timestamp) -> Option<Timestamp> {
        let parallel = self.parallel.as_ref()?;
        if self.net.fair.is_some() || self.net.cpu_cost.is_some() {
            return None;
        }
        let room = self.config.max_events.saturating_sub(self.net.events);
        if room < 2 * self.net.queue.len() as u64 + WINDOW_EVENT_MARGIN {
            return None;
        }
        let mut end = (first + parallel.grouping.lookahead)
            .min(self.next_tick)
            .min(until + Duration::from_micros(1));
        if let Some((&fault, _)) = self.pending_faults.first_key_value() {
            end = end.min(fault);
        }
        (end > first).then_some(end)
    }

    /// Pops every event before `end`, has the groups handle them on the
    /// pool's threads, and replays the window.
    pub(super) fn run_window(&mut self, end: Timestamp) -> Result<(), SimError> {
        let mut parallel = self.parallel.take().expect("a window runs with threads");
        let grouping = Arc::clone(&parallel.grouping);
        let topology = match &parallel.topology {
            Some(t) => Arc::clone(t),
            None => Arc::new(self.topology(&grouping)),
        };
        parallel.topology = Some(Arc::clone(&topology));
        let (popped, inputs) = self.take_window(&grouping, end);
        let share = inputs.iter().map(Vec::len).sum::<usize>() >= MIN_INPUTS_TO_SHARE;
        let groups = self.lend(&grouping, inputs);
        let window = WindowData {
            links: std::mem::take(&mut self.net.links),
            cuts: std::mem::take(&mut self.net.cuts),
            loss: self.net.config.loss,
            end,
            next_seq: self.net.queue.next_seq(),
            budget: self.config.max_events.saturating_sub(self.net.events),
        };
        let (groups, window) = parallel.pool.run(groups, &topology, window, share);
        (self.net.links, self.net.cuts) = (window.links, window.cuts);
        let logs = groups
            .into_iter()
            .map(|g| {
                self.nodes.groups[g.id as usize] = g.slots;
                g.logs
            })
            .collect();
        let result = self.replay_window(popped, logs, &grouping, end);
        self.parallel = Some(parallel);
        result
    }

    /// What the groups read, from the network as set up.
    fn topology(&self, grouping: &Arc<Grouping>) -> Topology<M::Message> {
        let net = &self.net;
        Topology {
            grouping: Arc::clone(grouping),
            latency: net.config.regions.clone(),
            jitter: net.config.jitter,
            fifo: net.config.fifo,
            max_in_flight: net.config.max_in_flight_per_link,
            regions: net.regions.clone(),
            egress_delay: net.egress_delay.clone(),
            upload: net.upload.clone(),
            ids: net.ids.clone(),
            index_of: net.index_of.clone(),
            size_of: net.size_of,
        }
    }

    /// The window's events in order, and each group's inputs.
    fn take_window(
        &mut self,
        grouping: &Grouping,
        end: Timestamp,
    ) -> (Window, Vec<Inputs<M::Message>>) {
        let mut popped = Vec::new();
        let mut inputs: Vec<Inputs<M::Message>> =
            (0..grouping.groups()).map(|_| Vec::new()).collect();
        while self.net.queue.peek_time().is_some_and(|t| t < end) {
            let Some((at, seq, event)) = self.net.queue.pop() else {
                break;
            };
            let (node, input) = match event {
                Event::Deliver(m) => {
                    debug_assert!(!m.cpu_done, "windows run without CPU costs");
                    let (env, msg) = (m.env, m.msg);
                    let (from, to) = (env.from, env.to);
                    let open = !self.net.cuts.is_cut(from, to);
                    popped.push((at, seq, Popped::Deliver(env)));
                    (to, open.then_some(Input::Message { from, to, msg }))
                }
                Event::Timer { node, generation } => {
                    popped.push((at, seq, Popped::Timer { node }));
                    (node, Some(Input::Timer { node, generation }))
                }
                Event::Fault(_) | Event::TransferDone { .. } => {
                    unreachable!("a window ends before a fault, and the fair model runs serially")
                }
            };
            if let Some(input) = input {
                inputs[grouping.group_of[node.get()] as usize].push((at, seq.get(), input));
            }
        }
        (popped, inputs)
    }

    /// Each group with its nodes' slots (moved out until the window is
    /// over), their uplinks and its inputs.
    fn lend(&mut self, grouping: &Grouping, inputs: Vec<Inputs<M::Message>>) -> Vec<Group<M>> {
        inputs
            .into_iter()
            .enumerate()
            .map(|(g, inputs)| {
                let members = &grouping.members[g];
                Group {
                    id: g as u32,
                    slots: std::mem::take(&mut self.nodes.groups[g]),
                    free_at: members
                        .iter()
                        .map(|i| self.net.upload_free_at[i.get()])
                        .collect(),
                    logs: members.iter().map(|_| VecDeque::new()).collect(),
                    inputs,
                }
            })
            .collect()
    }

    /// The serial loop over the window: its popped events and the events
    /// pushed inside it (messages between a group's nodes, timers), in
    /// `(time, sequence)` order, each one's logged outputs applied where
    /// the serial drain applies them.
    fn replay_window(
        &mut self,
        popped: Window,
        mut logs: Logs<M>,
        grouping: &Grouping,
        end: Timestamp,
    ) -> Result<(), SimError> {
        let mut popped = popped.into_iter().peekable();
        loop {
            let queued = self.net.queue.peek_key().filter(|(t, _)| *t < end);
            let from_window = match (popped.peek(), queued) {
                (Some((t, s, _)), Some(q)) => (*t, *s) < q,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return Ok(()),
            };
            let (at, event) = match from_window {
                true => popped.next().map(|(at, _, e)| (at, e)),
                false => self.net.queue.pop().map(|(at, _, e)| match e {
                    Event::Deliver(m) => (at, Popped::Deliver(m.env)),
                    Event::Timer { node, .. } => (at, Popped::Timer { node }),
                    _ => unreachable!("only messages and timers are pushed into a window"),
                }),
            }
            .expect("peeked");
            self.net.now = at;
            if self.replay_event(event, &mut logs, grouping)? {
                self.counted(at);
            }
            self.check_failure()?;
            if self.net.events >= self.config.max_events {
                return Ok(()); // reported by the loop
            }
        }
    }

    /// One event of the replay; true if it is an event of the run.
    fn replay_event(
        &mut self,
        event: Popped,
        logs: &mut Logs<M>,
        grouping: &Grouping,
    ) -> Result<bool, SimError> {
        let mut next = |node: NodeIndex| {
            let (g, p) = (grouping.group_of[node.get()], grouping.position[node.get()]);
            logs[g as usize][p as usize]
                .pop_front()
                .expect("the group handled this event")
        };
        match event {
            Popped::Deliver(a) => {
                if !self.net.arrive(a.link, a.from, a.to) {
                    return Ok(true);
                }
                let Entry::Handled(out) = next(a.to) else {
                    debug_assert!(!self.net.alive[a.to.get()]);
                    self.net.dropped_crashed();
                    return Ok(true);
                };
                let now = self.net.now;
                self.net.latency.record((now - a.sent_at).as_micros());
                self.net.delivered(a.from, a.to, &a.fingerprint, a.size);
                self.apply_outputs(a.to, out)?;
                Ok(true)
            }
            Popped::Timer { node } => {
                let Entry::Handled(out) = next(node) else {
                    return Ok(false); // superseded, or its node crashed
                };
                let incarnation = self.nodes[node.get()].incarnation;
                self.net.timer_fired(node, incarnation);
                self.apply_outputs(node, out)?;
                Ok(true)
            }
        }
    }

    /// What the serial drain does with a machine's outputs.
    fn apply_outputs(&mut self, node: NodeIndex, out: Outputs<M>) -> Result<(), SimError> {
        for t in out.transmits {
            self.net.transmit(node, t.to, t.msg)?;
        }
        self.net.rearm_transfers()?;
        for e in &out.events {
            if !observe(
                &mut self.net,
                &mut self.observer,
                &mut self.failure,
                &self.config,
                node,
                e,
            ) {
                break;
            }
        }
        if let Some(c) = out.timer
            && let Some(t) = c.at
        {
            let generation = c.generation;
            self.net.queue.push(t, Event::Timer { node, generation })?;
        }
        Ok(())
    }
}
