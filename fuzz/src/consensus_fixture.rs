//! A four-validator committee on a fuzzer-controlled network for the
//! consensus targets: the fuzzer decides which message is delivered, dropped,
//! duplicated, corrupted or replaced by raw bytes, and when time passes.

use std::collections::VecDeque;
use std::sync::OnceLock;

use idlegrid_dag_ledger::consensus::{
    ByzantineBehavior, CommittedSubDag, Committee, ConsensusConfig, ConsensusEvent,
    ConsensusMessage, Evidence, Validator,
};
use idlegrid_primitives::{Destination, Duration, Keypair, Machine, NodeId, Seed, Timestamp};

/// Committee size (tolerates one Byzantine validator).
pub const N: usize = 4;
/// Bound on in-flight messages; the oldest are dropped beyond it.
pub const MAX_IN_FLIGHT: usize = 256;

/// Fixture keys.
pub fn keys() -> &'static [Keypair; N] {
    static K: OnceLock<[Keypair; N]> = OnceLock::new();
    K.get_or_init(|| std::array::from_fn(|i| Keypair::from_seed(&Seed::from_u64(3000 + i as u64))))
}

/// Node id of validator `i`; `i >= N` is an outsider.
pub fn node(i: usize) -> NodeId {
    keys().get(i).map_or(NodeId::from_bytes([0xEE; 32]), Keypair::node_id)
}

/// The equal-stake committee of the fixture keys (built once).
pub fn committee() -> &'static Committee {
    static C: OnceLock<Committee> = OnceLock::new();
    C.get_or_init(|| Committee::equal(keys().iter().map(Keypair::node_id)).expect("4 distinct nodes"))
}

/// Default config with small bounds so the fuzzer reaches them.
pub fn config() -> ConsensusConfig {
    let mut c = ConsensusConfig::default();
    c.max_message_bytes = 1 << 16;
    c.max_block_bytes = 1 << 15;
    c.max_transaction_bytes = 64;
    c.max_block_transactions = 8;
    c.max_pending_transactions = 32;
    c.gc_depth = 4;
    c.max_round_lead = 12;
    c.max_pending_blocks_per_author = 8;
    c.max_fetch_items = 8;
    c.max_missing = 32;
    c
}

/// Validator `i` with `config`.
pub fn validator(i: usize, config: ConsensusConfig) -> Validator {
    Validator::new(keys()[i].clone(), committee().clone(), config, Seed::from_u64(i as u64))
        .expect("fixture validator")
}

/// The network: validators, messages in flight, and what each committed.
pub struct Net {
    /// Validators by authority index.
    pub vs: Vec<Validator>,
    /// In flight: (from, to, message).
    pub queue: VecDeque<(usize, usize, ConsensusMessage)>,
    /// Current time.
    pub now: Timestamp,
    /// Commit sequence of each validator.
    pub commits: Vec<Vec<CommittedSubDag>>,
    /// Equivocation evidence each validator reported.
    pub evidence: Vec<Evidence>,
    /// The Byzantine validator, if any.
    pub byzantine: Option<usize>,
}

impl Net {
    /// Four validators; `byzantine` (index, behaviour) misbehaves.
    pub fn new(byzantine: Option<(usize, ByzantineBehavior)>) -> Self {
        Self::with_signatures(byzantine, true)
    }

    /// As [`Net::new`], with block signature verification on or off.
    pub fn with_signatures(byzantine: Option<(usize, ByzantineBehavior)>, verify: bool) -> Self {
        let mut base = config();
        base.verify_signatures = verify;
        let vs = (0..N)
            .map(|i| match byzantine {
                Some((b, beh)) if b == i => validator(i, base.clone().with_byzantine(beh)),
                _ => validator(i, base.clone()),
            })
            .collect();
        let mut net = Self {
            vs,
            queue: VecDeque::new(),
            now: Timestamp::ZERO,
            commits: vec![Vec::new(); N],
            evidence: Vec::new(),
            byzantine: byzantine.map(|(b, _)| b),
        };
        net.fire_timeouts();
        net
    }

    /// Drains validator `i`'s outputs into the queue and the records.
    pub fn drain(&mut self, i: usize) {
        while let Some(t) = self.vs[i].poll_transmit() {
            match t.to {
                Destination::To(n) => {
                    if let Some(j) = (0..N).find(|&j| node(j) == n) {
                        self.queue.push_back((i, j, t.msg));
                    }
                }
                Destination::Broadcast => {
                    for j in (0..N).filter(|&j| j != i) {
                        self.queue.push_back((i, j, t.msg.clone()));
                    }
                }
            }
        }
        while self.queue.len() > MAX_IN_FLIGHT {
            self.queue.pop_front();
        }
        while let Some(e) = self.vs[i].poll_event() {
            match e {
                ConsensusEvent::Committed(s) => self.commits[i].push(s),
                ConsensusEvent::Equivocation(ev) => self.evidence.push(ev),
                _ => {}
            }
        }
    }

    /// Fires every due timeout.
    pub fn fire_timeouts(&mut self) {
        for i in 0..N {
            if self.vs[i].poll_timeout().is_some_and(|t| t <= self.now) {
                self.vs[i].handle_timeout(self.now);
            }
            self.drain(i);
        }
    }

    /// Advances time and fires timeouts.
    pub fn advance(&mut self, d: Duration) {
        self.now = self.now.saturating_add(d);
        self.fire_timeouts();
    }

    /// Delivers queue entry `k`.
    pub fn deliver(&mut self, k: usize) {
        if let Some((from, to, msg)) = self.queue.remove(k) {
            self.vs[to].handle_message(self.now, node(from), msg);
            self.drain(to);
        }
    }

    /// Raw bytes to validator `to`, claimed from `from`.
    pub fn deliver_bytes(&mut self, from: usize, to: usize, bytes: &[u8]) {
        self.vs[to].handle_bytes(self.now, node(from), bytes);
        self.drain(to);
    }
}

/// Encoded messages from a short honest run, for seed corpora.
pub fn message_seeds() -> Vec<Vec<u8>> {
    let mut net = Net::new(None);
    let mut out = Vec::new();
    for step in 0..40 {
        if let Some((_, _, m)) = net.queue.front() {
            if out.len() < 24 && step % 2 == 0 {
                out.push(m.encode());
            }
        }
        if net.queue.is_empty() {
            net.advance(Duration::from_millis(250));
        } else {
            net.deliver(0);
        }
    }
    out
}
