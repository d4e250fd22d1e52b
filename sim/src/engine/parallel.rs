//! Windows of events handled on several threads, with exactly the serial
//! run's outcome.
//!
//! No message arrives sooner than the network's lowest one-way latency `L`
//! after it is sent. So every event in `[t, t + L)`, `t` the earliest
//! pending one, is already in the queue or is a timer some node sets for
//! itself inside the window: what one node does there cannot reach another
//! node before the window ends (conservative lookahead, as in Chandy–Misra
//! simulation). The engine pops the window's events, hands each live node
//! its own ([`Job`]: the machine moved out of its slot, its inputs in
//! `(time, sequence)` order) to the workers, which call the machine exactly
//! as the serial loop would — its own in-window timers included — and log
//! what each handled input produced ([`Outputs`]). Then the engine replays
//! the window serially (`Simulation::replay_window`): the same pops in the
//! same order, each node's logged outputs in place of the call, so every
//! transmission, link draw, queue sequence number, digest record and
//! observer call happens in the serial order, and the run digest is the
//! serial one for any thread count (`sim/tests/parallel_engine.rs`; the
//! default scenario and `large` give their one-thread digests).
//!
//! What makes a node's order reproducible without the others: an event
//! already queued when the window starts has a lower sequence number than
//! any pushed during it, so at equal times it goes first; and the only
//! events pushed into the window are the node's own timers, ordered by the
//! node alone. Faults, observer ticks and the run's end bound a window
//! (they are handled between windows); the max-min fair network model and
//! CPU costs, whose events couple nodes inside a window, run serially. A
//! run that stops inside a window because the observer found a broken
//! invariant reports the serial run's failure, event and digest; its
//! machines have handled the rest of the window.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use idlegrid_primitives::{Machine, NodeId, Timestamp, Transmit};

use crate::durable::lock;
use crate::node::NodeIndex;

/// One node's share of a window: its machine, timer state and inputs, and
/// what handling them produced.
pub(super) struct Job<M: Machine> {
    pub(super) node: NodeIndex,
    pub(super) machine: M,
    pub(super) timer_generation: u64,
    pub(super) timer_at: Option<Timestamp>,
    /// In `(time, sequence)` order: the window's deliveries to the node
    /// (those not cut) and its queued timers, superseded ones included.
    pub(super) inputs: Vec<Input<M::Message>>,
    /// One entry per input or own timer the machine handled, in order.
    pub(super) log: Vec<Outputs<M>>,
}

/// An event of a [`Job`] queued before its window.
pub(super) enum Input<Msg> {
    Message {
        at: Timestamp,
        from: NodeId,
        msg: Msg,
    },
    Timer {
        at: Timestamp,
        generation: u64,
    },
}

impl<Msg> Input<Msg> {
    fn at(&self) -> Timestamp {
        match self {
            Input::Message { at, .. } | Input::Timer { at, .. } => *at,
        }
    }
}

/// What the machine produced after one handled input: the serial drain's
/// polls, and its timer if it changed.
pub(super) struct Outputs<M: Machine> {
    pub(super) transmits: Vec<Transmit<M::Message>>,
    pub(super) events: Vec<M::Event>,
    pub(super) timer: Option<TimerChange>,
}

/// A re-armed timer: its new generation and when it is queued (if set).
#[derive(Clone, Copy)]
pub(super) struct TimerChange {
    pub(super) generation: u64,
    pub(super) at: Option<Timestamp>,
}

impl<M: Machine> Job<M> {
    /// Handles the inputs, and the node's own timers that fall before
    /// `end`, in the serial engine's order.
    pub(super) fn run(&mut self, end: Timestamp) {
        let mut inputs = std::mem::take(&mut self.inputs).into_iter().peekable();
        // When the node's timer fires if it was set inside this window and
        // falls in it (one queued before the window is among the inputs).
        let mut own: Option<Timestamp> = None;
        loop {
            let own_first = match (own, inputs.peek()) {
                // At equal times the queued input has the lower sequence.
                (Some(t), Some(i)) => t < i.at(),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let now = if own_first {
                let Some(at) = own.take() else { break };
                self.fire(at)
            } else {
                match inputs.next() {
                    Some(Input::Message { at, from, msg }) => {
                        self.machine.handle_message(at, from, msg);
                        at
                    }
                    Some(Input::Timer { at, generation }) => {
                        if generation != self.timer_generation {
                            continue; // superseded: not handed to the machine
                        }
                        self.fire(at)
                    }
                    None => break,
                }
            };
            let out = self.drain(now);
            if let Some(c) = out.timer {
                own = c.at.filter(|t| *t < end);
            }
            self.log.push(out);
        }
    }

    fn fire(&mut self, at: Timestamp) -> Timestamp {
        self.timer_at = None;
        self.machine.handle_timeout(at);
        at
    }

    /// The serial engine's drain, its outputs kept for the replay.
    fn drain(&mut self, now: Timestamp) -> Outputs<M> {
        let transmits = std::iter::from_fn(|| self.machine.poll_transmit()).collect();
        let events = std::iter::from_fn(|| self.machine.poll_event()).collect();
        let next = self.machine.poll_timeout();
        let timer = (next != self.timer_at).then(|| {
            self.timer_generation += 1;
            self.timer_at = next;
            TimerChange {
                generation: self.timer_generation,
                at: next.map(|t| t.max(now)),
            }
        });
        Outputs {
            transmits,
            events,
            timer,
        }
    }
}

/// Runs a window's jobs, on however many threads it has.
pub(super) trait Workers<M: Machine> {
    /// Runs every job up to `end` and returns them in the same order.
    fn run(&mut self, jobs: Vec<Job<M>>, end: Timestamp) -> Vec<Job<M>>;
}

/// One window's jobs. Each thread first handles the nodes it owns
/// (`node % threads`: a node's state stays in one core's cache from window
/// to window), then takes what is left of the others' from their far end.
struct Batch<M: Machine> {
    jobs: Vec<Mutex<Job<M>>>,
    taken: Vec<AtomicBool>,
    /// Per thread, the indices of the jobs of the nodes it owns.
    owned: Vec<Vec<usize>>,
    end: Timestamp,
}

impl<M: Machine> Batch<M> {
    fn new(jobs: Vec<Job<M>>, threads: usize, end: Timestamp) -> Self {
        let mut owned = vec![Vec::new(); threads];
        for (i, j) in jobs.iter().enumerate() {
            owned[j.node.get() % threads].push(i);
        }
        Self {
            taken: jobs.iter().map(|_| AtomicBool::new(false)).collect(),
            jobs: jobs.into_iter().map(Mutex::new).collect(),
            owned,
            end,
        }
    }

    /// Thread `me`'s share, then whatever others have not started.
    fn work(&self, me: usize) {
        let others = (1..self.owned.len()).map(|k| (me + k) % self.owned.len());
        let own = self.owned[me].iter();
        let rest = others.flat_map(|k| self.owned[k].iter().rev());
        for &i in own.chain(rest) {
            if !self.taken[i].swap(true, Ordering::AcqRel) {
                lock(&self.jobs[i]).run(self.end);
            }
        }
    }
}

/// The calling thread and `threads - 1` helpers.
///
/// A window holds tens of microseconds of work, about what waking a
/// sleeping thread costs, so a helper waits for the next window spinning
/// (yielding the core to other threads between looks) and only sleeps
/// after [`IDLE_BEFORE_SLEEP`] looks without one.
pub(super) struct Pool<M: Machine> {
    shared: Arc<Shared<M>>,
    helpers: Vec<JoinHandle<()>>,
    /// Windows posted so far.
    epoch: u64,
}

/// What the calling thread and its helpers share.
struct Shared<M: Machine> {
    /// The window being worked on.
    batch: Mutex<Option<Arc<Batch<M>>>>,
    /// The latest window posted.
    epoch: AtomicU64,
    /// Helpers done with the latest window.
    finished: AtomicUsize,
    /// A helper's panic, to go on on the calling thread.
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
    stop: AtomicBool,
}

/// How many times a helper yields its core waiting for a window before it
/// sleeps (a millisecond or so; a run posts windows far more often).
const IDLE_BEFORE_SLEEP: u32 = 2_000;

/// Below this many jobs a window runs on the calling thread alone: waking
/// a helper costs more than it saves.
const MIN_JOBS_TO_SHARE: usize = 2;

impl<M> Pool<M>
where
    M: Machine + Send + 'static,
    M::Message: Send + 'static,
    M::Event: Send + 'static,
{
    /// A pool of `threads` (at least 1; 1 spawns nothing).
    pub(super) fn new(threads: usize) -> Self {
        let shared = Arc::new(Shared {
            batch: Mutex::new(None),
            epoch: AtomicU64::new(0),
            finished: AtomicUsize::new(0),
            panic: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let helpers = (1..threads.max(1))
            .map(|me| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name("sim-worker".into())
                    .spawn(move || shared.help(me))
                    .expect("the simulator could not start a worker thread")
            })
            .collect();
        Self {
            shared,
            helpers,
            epoch: 0,
        }
    }
}

impl<M: Machine> Shared<M> {
    /// Helper `me`'s loop (the calling thread is 0): each new window's
    /// jobs, until stopped.
    fn help(&self, me: usize) {
        let mut seen = 0;
        let mut idle = 0u32;
        loop {
            let epoch = self.epoch.load(Ordering::Acquire);
            if epoch == seen {
                if self.stop.load(Ordering::Acquire) {
                    return;
                }
                idle = idle.saturating_add(1);
                if idle < IDLE_BEFORE_SLEEP {
                    std::thread::yield_now();
                } else {
                    std::thread::park_timeout(std::time::Duration::from_millis(1));
                }
                continue;
            }
            seen = epoch;
            let batch = lock(&self.batch).clone();
            if let Some(batch) = batch {
                let worked =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| batch.work(me)));
                if let Err(panic) = worked {
                    lock(&self.panic).get_or_insert(panic);
                }
            }
            self.finished.fetch_add(1, Ordering::AcqRel);
            idle = 0;
        }
    }
}

impl<M> Workers<M> for Pool<M>
where
    M: Machine + Send + 'static,
    M::Message: Send + 'static,
    M::Event: Send + 'static,
{
    fn run(&mut self, jobs: Vec<Job<M>>, end: Timestamp) -> Vec<Job<M>> {
        let share = !self.helpers.is_empty() && jobs.len() >= MIN_JOBS_TO_SHARE;
        let threads = if share { self.helpers.len() + 1 } else { 1 };
        let batch = Arc::new(Batch::new(jobs, threads, end));
        if share {
            *lock(&self.shared.batch) = Some(Arc::clone(&batch));
            self.shared.finished.store(0, Ordering::Release);
            self.epoch += 1;
            self.shared.epoch.store(self.epoch, Ordering::Release);
            for h in &self.helpers {
                h.thread().unpark();
            }
        }
        batch.work(0);
        if share {
            let mut spins = 0u32;
            while self.shared.finished.load(Ordering::Acquire) < self.helpers.len() {
                spins += 1;
                match spins < 1_000 {
                    true => std::hint::spin_loop(),
                    false => std::thread::yield_now(),
                }
            }
            *lock(&self.shared.batch) = None;
            if let Some(panic) = lock(&self.shared.panic).take() {
                std::panic::resume_unwind(panic);
            }
        }
        let batch = Arc::into_inner(batch).expect("every helper let go of the window");
        batch
            .jobs
            .into_iter()
            .map(|j| j.into_inner().unwrap_or_else(PoisonError::into_inner))
            .collect()
    }
}

impl<M: Machine> Drop for Pool<M> {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        for h in self.helpers.drain(..) {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}
