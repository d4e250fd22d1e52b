//! Windows of events handled on several threads, with exactly the serial
//! run's outcome.
//!
//! The nodes split into *groups*, one per region: a message between two
//! regions takes at least `L`, the lowest latency between any two of them
//! (33 ms on `world6`), while nodes of one region reach each other in
//! 1 ms. So from `t`, the earliest pending event, nothing a group does in
//! `[t, t + L)` reaches another group before the window ends
//! (conservative lookahead, as in Chandy–Misra simulation, with each
//! region a logical process). The engine pops the window's events and
//! hands each group its own ([`Group`]: the group's node slots, moved out
//! of the engine, and its inputs in `(time, sequence)` order); each group
//! runs the serial loop on its own nodes — messages between them delivered inside
//! the window through a local queue, by the same link arithmetic as the
//! serial engine (`net.rs`: [`Draws`], [`uplink`], [`admit`],
//! [`arrival`]) on its own copies of its links and uplinks — and logs one
//! [`Entry`] per event it was handed. Then the engine replays the window
//! serially (`Simulation::replay_window`): the same pops in the same
//! order, each event's logged outputs in place of the call, so every
//! transmission, link draw, queue sequence number, digest record and
//! observer call happens in the serial order, and the run digest is the
//! serial one for any thread count (`sim/tests/parallel_engine.rs`; the
//! default scenario and `large` give their one-thread digests).
//!
//! Why a group's order is the serial one, restricted to the group: an
//! event queued before the window has a lower sequence number than any
//! pushed during it, so at equal times it goes first; every event pushed
//! into the window for a group's node is pushed by the group itself (a
//! local message or a node's own timer), and the group pushes them in the
//! order the serial run does — its events in serial order, each one's
//! messages in the order sent, then its timer — so a local sequence
//! counter orders them as the global one does. Faults, observer ticks and
//! the run's end bound a window (they are handled between windows); the
//! max-min fair network model and CPU costs, whose events couple nodes
//! inside a window, run serially, as does a network of one region. A run
//! that stops inside a window because the observer found a broken
//! invariant reports the serial run's failure, event and digest; its
//! machines have handled the rest of the window.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use idlegrid_primitives::{Destination, Duration, Machine, NodeId, Timestamp, Transmit, encode};
use serde::Serialize;

use super::Slot;
use super::net::{Draws, admit, arrival, uplink};
use crate::durable::lock;
use crate::network::{Bandwidth, Cuts, LinkState, LinkTable, NetworkConfig, RegionId, Regions};
use crate::node::NodeIndex;

/// How the nodes split into groups for windows: one per region that holds
/// nodes.
pub(super) struct Grouping {
    /// Each node's group.
    pub(super) group_of: Vec<u32>,
    /// Each node's position among its group's nodes (in index order).
    pub(super) position: Vec<u32>,
    /// Each group's nodes, in index order.
    pub(super) members: Vec<Vec<NodeIndex>>,
    /// No message between two groups arrives sooner than this after it is
    /// sent: the window's length.
    pub(super) lookahead: Duration,
}

impl Grouping {
    /// Groups by region, if at least two regions hold nodes and no two of
    /// them are closer than a microsecond.
    pub(super) fn by_region(config: &NetworkConfig, regions: &[RegionId]) -> Option<Self> {
        let mut group_of_region = vec![u32::MAX; config.regions.len()];
        let mut used = Vec::new();
        for r in regions {
            if group_of_region[r.index()] == u32::MAX {
                group_of_region[r.index()] = used.len() as u32;
                used.push(*r);
            }
        }
        let lookahead = used
            .iter()
            .flat_map(|a| used.iter().filter(move |b| *b != a).map(move |b| (*a, *b)))
            .map(|(a, b)| config.regions.latency(a, b))
            .min()?;
        if lookahead == Duration::ZERO {
            return None;
        }
        let mut members: Vec<Vec<NodeIndex>> = vec![Vec::new(); used.len()];
        let (mut group_of, mut position) = (Vec::new(), Vec::new());
        for (i, r) in regions.iter().enumerate() {
            let g = group_of_region[r.index()];
            group_of.push(g);
            position.push(members[g as usize].len() as u32);
            members[g as usize].push(NodeIndex::new(i as u32));
        }
        Some(Self {
            group_of,
            position,
            members,
            lookahead,
        })
    }

    pub(super) fn groups(&self) -> usize {
        self.members.len()
    }
}

/// An event of a window queued before it, for a group's node.
pub(super) enum Input<Msg> {
    /// A message not cut by a partition (its link's in-flight count is the
    /// group's to lower when it is a link inside the group).
    Message {
        from: NodeIndex,
        to: NodeIndex,
        msg: Msg,
    },
    Timer {
        node: NodeIndex,
        generation: u64,
    },
}

/// What a group did with one event it was handed, for the replay.
pub(super) enum Entry<M: Machine> {
    /// Not handed to the machine: a superseded timer, or a message to a
    /// crashed node.
    Skipped,
    /// Handed to the machine, which produced these.
    Handled(Outputs<M>),
}

/// What the machine produced after one handled event: the serial drain's
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

/// What every group reads and none writes, fixed for the run (built
/// with the first window, when the scenario's setup is done).
pub(super) struct Topology<Msg> {
    pub(super) grouping: Arc<Grouping>,
    pub(super) latency: Regions,
    pub(super) jitter: f64,
    pub(super) fifo: bool,
    pub(super) max_in_flight: u32,
    pub(super) regions: Vec<RegionId>,
    pub(super) egress_delay: Vec<Duration>,
    pub(super) upload: Vec<Bandwidth>,
    pub(super) ids: Vec<NodeId>,
    pub(super) index_of: HashMap<NodeId, NodeIndex>,
    pub(super) size_of: Option<fn(&Msg) -> usize>,
}

/// What every group of one window reads: the network state that changes
/// between windows, lent by the engine for the window.
pub(super) struct WindowData {
    pub(super) links: LinkTable,
    pub(super) cuts: Cuts,
    pub(super) loss: f64,
    /// The window ends before this.
    pub(super) end: Timestamp,
    /// Higher than the sequence number of every event queued before the
    /// window: a group's own pushes are numbered from here.
    pub(super) next_seq: u64,
    /// Counted events a group handles at most (the run's event bound).
    pub(super) budget: u64,
}

/// One group's share of a window: its nodes' slots (by position, moved
/// out of the engine for the window), their uplinks, its inputs in
/// `(time, sequence)` order, and one log per node.
pub(super) struct Group<M: Machine> {
    pub(super) id: u32,
    pub(super) slots: Vec<Slot<M>>,
    /// When each node's uplink is free, by position.
    pub(super) free_at: Vec<Timestamp>,
    pub(super) inputs: Vec<(Timestamp, u64, Input<M::Message>)>,
    pub(super) logs: Vec<VecDeque<Entry<M>>>,
}

/// What a group reads while it runs.
struct Ctx<'a, Msg> {
    topo: &'a Topology<Msg>,
    w: &'a WindowData,
}

/// A group's pushes inside its window: a local message or a node's timer.
struct Local<M: Machine> {
    /// `(time, sequence, index into events)`, earliest first.
    order: BinaryHeap<Reverse<(Timestamp, u64, usize)>>,
    events: Vec<Option<Input<M::Message>>>,
    /// The group's copies of the links between its nodes, by link number.
    links: HashMap<u64, LinkState>,
    next_seq: u64,
}

impl<M> Group<M>
where
    M: Machine,
    M::Message: Clone + Serialize,
{
    /// Runs the group's events before the window's end in the serial
    /// engine's order, logging one entry per event.
    fn run(&mut self, cx: &Ctx<'_, M::Message>) {
        let mut local = Local::<M> {
            order: BinaryHeap::new(),
            events: Vec::new(),
            links: HashMap::new(),
            next_seq: cx.w.next_seq,
        };
        let mut inputs = std::mem::take(&mut self.inputs).into_iter().peekable();
        let mut counted = 0u64;
        while counted < cx.w.budget {
            let queued = inputs.peek().map(|(t, s, _)| (*t, *s));
            let pushed = local.order.peek().map(|Reverse((t, s, _))| (*t, *s));
            let (at, input) = match (queued, pushed) {
                (Some(q), Some(p)) if p < q => local.pop(),
                (Some(_), _) => inputs.next().map(|(t, _, i)| (t, i)).expect("peeked"),
                (None, Some(_)) => local.pop(),
                (None, None) => break,
            };
            counted += u64::from(self.handle(cx, &mut local, at, input));
        }
    }

    /// One event, as the serial engine's `process`; true if it is an event
    /// of the run (counted).
    fn handle(
        &mut self,
        cx: &Ctx<'_, M::Message>,
        local: &mut Local<M>,
        at: Timestamp,
        input: Input<M::Message>,
    ) -> bool {
        let grouping = &cx.topo.grouping;
        let (node, counted) = match &input {
            Input::Message { from, to, .. } => {
                if grouping.group_of[from.get()] == self.id {
                    local.link(cx, *from, *to).in_flight -= 1;
                }
                (*to, true)
            }
            Input::Timer { node, .. } => (*node, false),
        };
        let pos = grouping.position[node.get()] as usize;
        let slot = &mut self.slots[pos];
        let handled = match (input, slot.machine.as_mut()) {
            (_, None) => false,
            (Input::Message { from, msg, .. }, Some(m)) => {
                m.handle_message(at, cx.topo.ids[from.get()], msg);
                true
            }
            (Input::Timer { generation, .. }, Some(m)) => {
                let current = slot.timer_generation == generation;
                if current {
                    slot.timer_at = None;
                    m.handle_timeout(at);
                }
                current
            }
        };
        let entry = match handled {
            true => Entry::Handled(self.drain(cx, local, node, at)),
            false => Entry::Skipped,
        };
        self.logs[pos].push_back(entry);
        counted || handled
    }

    /// The serial engine's drain of node `node`: its messages sent (those
    /// to the group's nodes delivered inside the window), its events kept,
    /// its timer re-armed.
    fn drain(
        &mut self,
        cx: &Ctx<'_, M::Message>,
        local: &mut Local<M>,
        node: NodeIndex,
        now: Timestamp,
    ) -> Outputs<M> {
        let pos = cx.topo.grouping.position[node.get()] as usize;
        let slot = &mut self.slots[pos];
        let machine = slot.machine.as_mut().expect("a handled event's machine");
        let transmits: Vec<_> = std::iter::from_fn(|| machine.poll_transmit()).collect();
        let events = std::iter::from_fn(|| machine.poll_event()).collect();
        let next = machine.poll_timeout();
        let free_at = &mut self.free_at[pos];
        for t in &transmits {
            local.transmit(cx, self.id, node, free_at, now, t);
        }
        let timer = (next != slot.timer_at).then(|| {
            slot.timer_generation += 1;
            slot.timer_at = next;
            let at = next.map(|t| t.max(now));
            let generation = slot.timer_generation;
            if let Some(t) = at {
                local.push(cx, t, Input::Timer { node, generation });
            }
            TimerChange { generation, at }
        });
        Outputs {
            transmits,
            events,
            timer,
        }
    }
}

impl<M> Local<M>
where
    M: Machine,
    M::Message: Clone + Serialize,
{
    fn pop(&mut self) -> (Timestamp, Input<M::Message>) {
        let Reverse((at, _, k)) = self.order.pop().expect("peeked");
        let input = self.events[k]
            .take()
            .expect("each pushed event is popped once");
        (at, input)
    }

    /// Pushes an event of the group inside the window (one at or after its
    /// end is the next window's, pushed by the replay).
    fn push(&mut self, cx: &Ctx<'_, M::Message>, at: Timestamp, input: Input<M::Message>) {
        if at < cx.w.end {
            self.order
                .push(Reverse((at, self.next_seq, self.events.len())));
            self.events.push(Some(input));
            self.next_seq += 1;
        }
    }

    /// The group's copy of link `from → to`.
    fn link(&mut self, cx: &Ctx<'_, M::Message>, from: NodeIndex, to: NodeIndex) -> &mut LinkState {
        let number = from.get() as u64 * cx.topo.ids.len() as u64 + to.get() as u64;
        self.links
            .entry(number)
            .or_insert_with(|| cx.w.links.state(from.get(), to.get()))
    }

    /// `Net::transmit` as far as the window sees it: every recipient's
    /// message takes the sender's uplink (free from `free_at`); one to a
    /// node of the group (`group`) also its link's draws and, unless lost
    /// or over the link's bound, is delivered inside the window if it
    /// arrives before its end.
    fn transmit(
        &mut self,
        cx: &Ctx<'_, M::Message>,
        group: u32,
        from: NodeIndex,
        free_at: &mut Timestamp,
        now: Timestamp,
        t: &Transmit<M::Message>,
    ) {
        let size = cx
            .topo
            .size_of
            .map_or_else(|| encode(&t.msg).len(), |f| f(&t.msg));
        let mut send = |to: NodeIndex| {
            if cx.w.cuts.is_cut(from, to) {
                return;
            }
            let upload = &cx.topo.upload[from.get()];
            if cx.topo.grouping.group_of[to.get()] != group {
                uplink(now, free_at, upload, size as u64);
                return;
            }
            let draws = Draws::take(self.link(cx, from, to), cx.w.loss);
            let (_, depart) = uplink(now, free_at, upload, size as u64);
            self.deliver(cx, from, to, draws, depart, &t.msg);
        };
        match t.to {
            Destination::To(id) => {
                if let Some(&to) = cx.topo.index_of.get(&id) {
                    send(to);
                }
            }
            Destination::Broadcast => {
                let n = cx.topo.ids.len();
                (1..n).for_each(|k| send(NodeIndex::new(((from.get() + k) % n) as u32)));
            }
        }
    }

    /// The rest of `Net::send` for a message between two of the group's
    /// nodes that left the sender's uplink at `depart`.
    fn deliver(
        &mut self,
        cx: &Ctx<'_, M::Message>,
        from: NodeIndex,
        to: NodeIndex,
        draws: Draws,
        depart: Timestamp,
        msg: &M::Message,
    ) {
        let topo = cx.topo;
        let link = self.link(cx, from, to);
        if draws.lost || !admit(link, topo.max_in_flight) {
            return;
        }
        let base = topo
            .latency
            .latency(topo.regions[from.get()], topo.regions[to.get()]);
        let delay = base + draws.jitter(base, topo.jitter);
        let depart = depart + topo.egress_delay[from.get()];
        let at = arrival(depart, delay, topo.fifo, link);
        let msg = msg.clone();
        self.push(cx, at, Input::Message { from, to, msg });
    }
}

/// Runs a window's groups, on however many threads it has.
pub(super) trait Workers<M: Machine> {
    /// Runs every group up to the window's end; returns them in the same
    /// order, and the window's data.
    fn run(
        &mut self,
        groups: Vec<Group<M>>,
        topo: &Arc<Topology<M::Message>>,
        window: WindowData,
        share: bool,
    ) -> (Vec<Group<M>>, WindowData);
}

/// One window's groups. Each thread first runs the groups it owns
/// (`group % threads`: a region's state stays in one core's cache from
/// window to window), then takes what is left of the others' from their
/// far end.
struct Batch<M: Machine> {
    groups: Vec<Mutex<Group<M>>>,
    taken: Vec<AtomicBool>,
    /// Per thread, the indices of the groups it owns.
    owned: Vec<Vec<usize>>,
    topo: Arc<Topology<M::Message>>,
    window: WindowData,
}

impl<M> Batch<M>
where
    M: Machine,
    M::Message: Clone + Serialize,
{
    fn new(
        groups: Vec<Group<M>>,
        threads: usize,
        topo: Arc<Topology<M::Message>>,
        window: WindowData,
    ) -> Self {
        let mut owned = vec![Vec::new(); threads];
        for (i, g) in groups.iter().enumerate() {
            if !g.inputs.is_empty() {
                owned[g.id as usize % threads].push(i);
            }
        }
        Self {
            taken: groups.iter().map(|_| AtomicBool::new(false)).collect(),
            groups: groups.into_iter().map(Mutex::new).collect(),
            owned,
            topo,
            window,
        }
    }

    /// Thread `me`'s share, then whatever others have not started.
    fn work(&self, me: usize) {
        let cx = Ctx {
            topo: &self.topo,
            w: &self.window,
        };
        let others = (1..self.owned.len()).map(|k| (me + k) % self.owned.len());
        let own = self.owned[me].iter();
        let rest = others.flat_map(|k| self.owned[k].iter().rev());
        for &i in own.chain(rest) {
            if !self.taken[i].swap(true, Ordering::AcqRel) {
                lock(&self.groups[i]).run(&cx);
            }
        }
    }
}

/// The calling thread and `threads - 1` helpers.
///
/// A window holds a few milliseconds of work at most, and often far less,
/// so a helper waits for the next window spinning (yielding the core to
/// other threads between looks) and only sleeps after
/// [`IDLE_BEFORE_SLEEP`] looks without one.
pub(super) struct Pool<M: Machine> {
    shared: Arc<PoolShared<M>>,
    helpers: Vec<JoinHandle<()>>,
    /// Windows posted so far.
    epoch: u64,
}

/// What the calling thread and its helpers share.
struct PoolShared<M: Machine> {
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

impl<M> Pool<M>
where
    M: Machine + Send + 'static,
    M::Message: Clone + Serialize + Send + 'static,
    M::Event: Send + 'static,
{
    /// A pool of `threads` (at least 1; 1 spawns nothing).
    pub(super) fn new(threads: usize) -> Self {
        let shared = Arc::new(PoolShared {
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

impl<M> PoolShared<M>
where
    M: Machine,
    M::Message: Clone + Serialize,
{
    /// Helper `me`'s loop (the calling thread is 0): each new window's
    /// groups, until stopped.
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
    M::Message: Clone + Serialize + Send + 'static,
    M::Event: Send + 'static,
{
    fn run(
        &mut self,
        groups: Vec<Group<M>>,
        topo: &Arc<Topology<M::Message>>,
        window: WindowData,
        share: bool,
    ) -> (Vec<Group<M>>, WindowData) {
        let share = share && !self.helpers.is_empty();
        let threads = if share { self.helpers.len() + 1 } else { 1 };
        let batch = Arc::new(Batch::new(groups, threads, Arc::clone(topo), window));
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
        let groups = batch
            .groups
            .into_iter()
            .map(|g| g.into_inner().unwrap_or_else(PoisonError::into_inner))
            .collect();
        (groups, batch.window)
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
