//! A four-validator committee on a fuzzer-controlled network for the
//! consensus targets: the fuzzer decides which message is delivered, dropped,
//! duplicated, corrupted or replaced by raw bytes, and when time passes
//! ([`Net`]); and a pool of blocks signed once per process that follower
//! validators are fed in fuzzer-chosen order ([`pool`], [`Followers`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, OnceLock};

use idlegrid_dag_ledger::consensus::byzantine::{ByzantineBehavior, Participant};
use idlegrid_dag_ledger::consensus::{
    AuthorityIndex, Block, BlockRef, CommittedSubDag, Committee, ConsensusConfig, ConsensusEvent,
    ConsensusMessage, Evidence, Validator,
};
use idlegrid_primitives::{
    Destination, Duration, Keypair, Machine, NodeId, Round, Seed, SignatureMemo, SignatureVerifier, Timestamp,
};

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

/// The block-signature verifier of the [`Followers`]: one memo for the
/// whole process, so a block signed once per process (the pool's) is
/// verified once per process too — by the first input that delivers it,
/// not while the pool is built — while a corrupted one misses the memo and
/// is verified, and refused, every time (what a simulator's validators
/// share, see `SignatureVerifier`).
pub fn signatures() -> SignatureVerifier {
    static V: OnceLock<SignatureVerifier> = OnceLock::new();
    V.get_or_init(|| SignatureVerifier::memoized(SignatureMemo::shared(&Seed::from_u64(77))))
        .clone()
}

/// Validator `i` with `config` (verifying every block signature itself).
pub fn validator(i: usize, config: ConsensusConfig) -> Validator {
    Validator::new(keys()[i].clone(), committee().clone(), config, Seed::from_u64(i as u64))
        .expect("fixture validator")
}

/// The network: validators, messages in flight, and what each committed.
pub struct Net {
    /// Validators by authority index (the Byzantine one inside its
    /// adversary).
    pub vs: Vec<Participant<Validator>>,
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
        Self::with_config(byzantine, config())
    }

    /// As [`Net::new`], every validator with `base`.
    pub fn with_config(byzantine: Option<(usize, ByzantineBehavior)>, base: ConsensusConfig) -> Self {
        let vs = (0..N)
            .map(|i| {
                let beh = byzantine.filter(|(b, _)| *b == i).map(|(_, beh)| beh);
                Participant::new(validator(i, base.clone()), beh, &keys()[i], committee())
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

/// Rounds of the block pool.
pub const POOL_ROUNDS: u64 = 12;
/// The pool's equivocating author.
pub const POOL_BYZANTINE: usize = N - 1;
/// Validators that follow the pool: authorities `0..FOLLOWERS` (the
/// others' blocks are only in the pool).
pub const FOLLOWERS: usize = 2;

/// Signed blocks built once per process, so that no fuzz input signs: the
/// DAG of a [`Net`] run where validator [`POOL_BYZANTINE`] equivocates
/// (both variants of each of its blocks), messages are delivered out of
/// order and some are lost (so leaders are skipped and blocks reference
/// different parents), transactions are submitted along the way; plus
/// blocks that are signed but invalid (only their author's parent).
pub struct Pool {
    /// Every block, by reference (round, author, digest).
    pub blocks: Vec<Arc<Block>>,
    /// Their references (hashed once).
    pub refs: Vec<BlockRef>,
    /// Index of the first block of each round (`starts[r - 1]`), and the
    /// total at the end.
    pub starts: Vec<usize>,
}

impl Pool {
    /// The blocks of `round` (1-based).
    pub fn round(&self, round: u64) -> &[Arc<Block>] {
        let r = (round.clamp(1, POOL_ROUNDS) - 1) as usize;
        &self.blocks[self.starts[r]..self.starts[r + 1]]
    }

    /// The pool blocks with these references.
    pub fn find(&self, refs: &[BlockRef]) -> Vec<Arc<Block>> {
        refs.iter()
            .filter_map(|r| {
                let i = self.refs.binary_search(r).ok()?;
                Some(Arc::clone(&self.blocks[i]))
            })
            .collect()
    }
}

/// The pool (built on first use; about a second of signing). A follower
/// fed the whole pool in order commits, or the pool is useless: checked
/// once here.
pub fn pool() -> &'static Pool {
    static P: OnceLock<Pool> = OnceLock::new();
    P.get_or_init(|| {
        let pool = build_pool();
        // Its own verifier: the process memo is filled by the inputs.
        let mut f = Followers::with_verifier(SignatureVerifier::plain());
        for b in &pool.blocks {
            f.send(b.header.author.as_usize(), 0, ConsensusMessage::Block(Arc::clone(b)));
        }
        assert!(f.commits[0].len() >= 4, "the pool commits {} leaders", f.commits[0].len());
        pool
    })
}

fn build_pool() -> Pool {
    // Deep enough that no store collects a pool round before it is read.
    let mut c = config();
    c.gc_depth = 2 * POOL_ROUNDS;
    let mut net = Net::with_config(Some((POOL_BYZANTINE, ByzantineBehavior::Equivocate)), c);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut tx = 0u32;
    let top = Round::new(POOL_ROUNDS);
    for step in 0.. {
        let honest = (0..N).filter(|&i| i != POOL_BYZANTINE);
        if honest.map(|i| net.vs[i].inner().store().highest_round()).all(|r| r >= top) {
            break;
        }
        assert!(step < 1_000_000, "the pool's network stalled");
        let r = next();
        if net.queue.is_empty() || r % 16 == 0 {
            net.advance(Duration::from_millis(60));
        } else if r % 7 == 0 {
            let k = (r >> 8) as usize % net.queue.len();
            net.queue.remove(k);
        } else if r % 5 == 0 {
            tx += 1;
            let i = (r >> 8) as usize % N;
            let _ = net.vs[i].inner_mut().submit_transaction(tx.to_le_bytes().to_vec());
        } else {
            // Mostly in order, sometimes one of the next few.
            let k = (r >> 8) as usize % net.queue.len().min(4);
            net.deliver(k);
        }
    }
    let mut all: BTreeMap<BlockRef, Arc<Block>> = BTreeMap::new();
    for v in &net.vs {
        for r in 1..=POOL_ROUNDS {
            for b in v.inner().store().round_blocks(Round::new(r)) {
                all.insert(b.reference(), Arc::clone(b.block()));
            }
        }
    }
    // Signed but invalid: the equivocator's block with only its own parent.
    let byz = AuthorityIndex::new(POOL_BYZANTINE as u32);
    for r in (3..=POOL_ROUNDS).step_by(3) {
        let own = all
            .keys()
            .filter(|k| k.author == byz && k.round.get() < r)
            .next_back()
            .copied();
        if let Some(own) = own {
            let b = Block::new_signed(
                &keys()[POOL_BYZANTINE],
                byz,
                Round::new(r),
                Timestamp::ZERO,
                vec![own],
                vec![],
            );
            all.insert(b.header.reference(), Arc::new(b));
        }
    }
    for b in all.values() {
        for p in &b.header.parents {
            assert!(p.round == Round::ZERO || all.contains_key(p), "the pool misses {p:?}");
        }
    }
    let refs: Vec<BlockRef> = all.keys().copied().collect();
    let blocks: Vec<Arc<Block>> = all.into_values().collect();
    let starts = (1..=POOL_ROUNDS + 1)
        .map(|r| blocks.partition_point(|b| b.header.round.get() < r))
        .collect();
    Pool {
        blocks,
        refs,
        starts,
    }
}

/// Validators `0..FOLLOWERS`, never started (so they never propose or
/// sign), fed [`pool`] blocks and each other's messages. They get no
/// timeouts (the first one would start them), so a missing ancestor is
/// requested once, from the peer that sent the block needing it.
pub struct Followers {
    /// The followers.
    pub vs: Vec<Validator>,
    /// In flight: (from, to, message); `to` may be the pool author, which
    /// answers fetch requests from the pool.
    pub queue: VecDeque<(usize, usize, ConsensusMessage)>,
    /// Current time.
    pub now: Timestamp,
    /// Commit sequence of each follower.
    pub commits: Vec<Vec<CommittedSubDag>>,
    /// Equivocation evidence reported.
    pub evidence: Vec<Evidence>,
}

impl Default for Followers {
    fn default() -> Self {
        Self::new()
    }
}

impl Followers {
    /// Fresh followers, verifying signatures through [`signatures`].
    pub fn new() -> Self {
        Self::with_verifier(signatures())
    }

    /// Fresh followers, verifying signatures through `v`.
    pub fn with_verifier(v: SignatureVerifier) -> Self {
        let c = config();
        Self {
            vs: (0..FOLLOWERS)
                .map(|i| validator(i, c.clone()).with_signature_verifier(v.clone()))
                .collect(),
            queue: VecDeque::new(),
            now: Timestamp::ZERO,
            commits: vec![Vec::new(); FOLLOWERS],
            evidence: Vec::new(),
        }
    }

    /// Drains follower `i`'s outputs.
    pub fn drain(&mut self, i: usize) {
        while let Some(t) = self.vs[i].poll_transmit() {
            let to: Vec<usize> = match t.to {
                Destination::To(n) => (0..N).filter(|&j| node(j) == n).collect(),
                Destination::Broadcast => (0..N).filter(|&j| j != i).collect(),
            };
            for j in to {
                self.queue.push_back((i, j, t.msg.clone()));
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

    /// `msg` to follower `to`, from member (or outsider) `from`.
    pub fn send(&mut self, from: usize, to: usize, msg: ConsensusMessage) {
        self.vs[to].handle_message(self.now, node(from), msg);
        self.drain(to);
    }

    /// Raw bytes to follower `to`, claimed from `from`.
    pub fn send_bytes(&mut self, from: usize, to: usize, bytes: &[u8]) {
        self.vs[to].handle_bytes(self.now, node(from), bytes);
        self.drain(to);
    }

    /// Delivers queue entry `k`; the pool author answers fetch requests
    /// with the pool blocks it has.
    pub fn deliver(&mut self, k: usize) {
        let Some((from, to, msg)) = self.queue.remove(k) else {
            return;
        };
        if to < FOLLOWERS {
            self.send(from, to, msg);
        } else if let ConsensusMessage::FetchRequest(req) = msg {
            let mut blocks = pool().find(&req.refs);
            blocks.truncate(config().max_fetch_items);
            if !blocks.is_empty() && from < FOLLOWERS {
                self.queue
                    .push_back((to, from, ConsensusMessage::FetchResponse(blocks)));
            }
        }
    }
}
