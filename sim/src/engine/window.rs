//! The engine's side of a parallel window: popping its events, handing
//! each node its own, and replaying the window in the serial order (see
//! `parallel.rs` for why that order is the serial run's).

use std::collections::HashMap;

use idlegrid_primitives::{Duration, Machine, Timestamp};
use serde::Serialize;

use super::net::{Envelope, Event};
use super::parallel::{Input, Job, Outputs, Pool, Workers};
use super::{SimError, Simulation, WINDOW_EVENT_MARGIN, observe};
use crate::node::NodeIndex;
use crate::observer::Observer;
use crate::queue::EventSeq;

/// A window's event as the replay sees it: a message's envelope (its
/// content went to the node) or a timer.
enum Popped {
    Deliver(Envelope),
    Timer { node: NodeIndex, generation: u64 },
}

/// A window's events in `(time, sequence)` order.
type Window = Vec<(Timestamp, EventSeq, Popped)>;

/// What the replay follows per job: its node's index, its log in order,
/// and the node's timer generation as the replay has seen it change.
struct Replay<M: Machine> {
    job_of: HashMap<usize, usize>,
    logs: Vec<std::vec::IntoIter<Outputs<M>>>,
    generations: Vec<u64>,
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
    /// digest — see `parallel.rs`. Needs a network whose lowest latency is
    /// positive; without one the run stays serial.
    pub fn set_threads(&mut self, threads: usize) {
        self.lookahead = self.net.config.regions.min_latency();
        self.workers = (threads > 1 && self.lookahead > Duration::ZERO)
            .then(|| Box::new(Pool::<M>::new(threads)) as Box<dyn Workers<M>>);
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
        self.workers.as_ref()?;
        if self.net.fair.is_some() || self.net.cpu_cost.is_some() {
            return None;
        }
        let room = self.config.max_events.saturating_sub(self.net.events);
        if room < 2 * self.net.queue.len() as u64 + WINDOW_EVENT_MARGIN {
            return None;
        }
        let mut end = (first + self.lookahead)
            .min(self.next_tick)
            .min(until + Duration::from_micros(1));
        if let Some((&fault, _)) = self.pending_faults.first_key_value() {
            end = end.min(fault);
        }
        (end > first).then_some(end)
    }

    /// Pops every event before `end`, has the workers handle each node's,
    /// replays the window and puts the machines back.
    pub(super) fn run_window(&mut self, end: Timestamp) -> Result<(), SimError> {
        let (popped, jobs, mut replay) = self.take_window(end);
        let workers = self.workers.as_mut().expect("a window runs with workers");
        let mut jobs = workers.run(jobs, end);
        replay.logs = jobs
            .iter_mut()
            .map(|j| std::mem::take(&mut j.log).into_iter())
            .collect();
        let result = self.replay_window(popped, &mut replay, end);
        for j in jobs {
            let slot = &mut self.nodes[j.node.get()];
            slot.machine = Some(j.machine);
            slot.timer_generation = j.timer_generation;
            slot.timer_at = j.timer_at;
        }
        result
    }

    /// The window's events in order, a job per live node that gets some
    /// (its machine moved out of its slot), and the replay's view of the
    /// jobs before they run.
    fn take_window(&mut self, end: Timestamp) -> (Window, Vec<Job<M>>, Replay<M>) {
        let mut popped = Vec::new();
        let mut jobs: Vec<Job<M>> = Vec::new();
        let mut replay = Replay {
            job_of: HashMap::new(),
            logs: Vec::new(),
            generations: Vec::new(),
        };
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
                    let from = self.net.ids[from.get()];
                    (to, open.then_some(Input::Message { at, from, msg }))
                }
                Event::Timer { node, generation } => {
                    popped.push((at, seq, Popped::Timer { node, generation }));
                    (node, Some(Input::Timer { at, generation }))
                }
                Event::Fault(_) | Event::TransferDone { .. } => {
                    unreachable!("a window ends before a fault, and the fair model runs serially")
                }
            };
            let Some(input) = input else { continue };
            let k = match replay.job_of.get(&node.get()) {
                Some(&k) => k,
                None => {
                    let slot = &mut self.nodes[node.get()];
                    let Some(machine) = slot.machine.take() else {
                        continue; // crashed: the replay drops it
                    };
                    jobs.push(Job {
                        node,
                        machine,
                        timer_generation: slot.timer_generation,
                        timer_at: slot.timer_at,
                        inputs: Vec::new(),
                        log: Vec::new(),
                    });
                    replay.generations.push(slot.timer_generation);
                    replay.job_of.insert(node.get(), jobs.len() - 1);
                    jobs.len() - 1
                }
            };
            jobs[k].inputs.push(input);
        }
        (popped, jobs, replay)
    }

    /// The serial loop over the window: its popped events and the timers
    /// nodes set inside it, in `(time, sequence)` order, each handled
    /// event's logged outputs applied where the serial drain applies them.
    fn replay_window(
        &mut self,
        popped: Window,
        replay: &mut Replay<M>,
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
                    Event::Timer { node, generation } => (at, Popped::Timer { node, generation }),
                    _ => unreachable!("only nodes' own timers are pushed into their window"),
                }),
            }
            .expect("peeked");
            self.net.now = at;
            if self.replay_event(event, replay)? {
                self.counted(at);
            }
            self.check_failure()?;
            if self.net.events >= self.config.max_events {
                return Ok(()); // reported by the loop
            }
        }
    }

    /// One event of the replay; true if it is an event of the run.
    fn replay_event(&mut self, event: Popped, replay: &mut Replay<M>) -> Result<bool, SimError> {
        let now = self.net.now;
        let (node, k) = match event {
            Popped::Deliver(a) => {
                if !self.net.arrive(a.link, a.from, a.to) {
                    return Ok(true);
                }
                if !self.net.alive[a.to.get()] {
                    self.net.dropped_crashed();
                    return Ok(true);
                }
                self.net.latency.record((now - a.sent_at).as_micros());
                self.net.delivered(a.from, a.to, &a.fingerprint, a.size);
                (a.to, replay.job_of[&a.to.get()])
            }
            Popped::Timer { node, generation } => {
                let Some(&k) = replay.job_of.get(&node.get()) else {
                    return Ok(false); // crashed
                };
                if replay.generations[k] != generation {
                    return Ok(false); // superseded
                }
                self.net
                    .timer_fired(node, self.nodes[node.get()].incarnation);
                (node, k)
            }
        };
        let out = replay.logs[k].next().expect("the node handled this event");
        if let Some(c) = out.timer {
            replay.generations[k] = c.generation;
        }
        self.apply_outputs(node, out)?;
        Ok(true)
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
