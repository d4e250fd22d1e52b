//! Same inputs, same outputs, even for an equivocator's blocks: fresh
//! validators fed the same messages — among them two equivocating blocks by
//! one author for one round, each waiting on a different missing parent that
//! never arrives — store the same variant first once garbage collection
//! releases them, and serve the same bytes when a peer fetches that round.
//!
//! Before issue 24 the pending set indexed missing parents in a `HashMap`,
//! whose iteration order is seeded per instance: collection released the
//! two variants in either order, so fresh validators stored (and served)
//! different ones about half the time. Many fresh validators, each with its
//! own seed, make that failure all but certain.

use std::collections::VecDeque;
use std::sync::Arc;

use idlegrid_dag_ledger::consensus::*;
use idlegrid_primitives::{
    Destination, Digest, Duration, Keypair, Machine, NodeId, Round, Seed, Timestamp, encode,
};

/// Committee size; authority [`BYZ`] is silent except for its two variants.
const N: usize = 4;
/// The equivocating author.
const BYZ: usize = 3;
/// The validator under test.
const OBSERVER: usize = 0;
/// Round of the two variants.
const VARIANT_ROUND: u64 = 8;
/// Round of their missing parents (each its own "previous block", which
/// may be older than the previous round): one collection step — the gc
/// round moving past it, to at most `VARIANT_ROUND` — releases both.
const MISSING_ROUND: u64 = 2;
/// Fresh validators compared (with a per-instance `HashMap` order, the
/// chance that all agree is 2^-(TRIALS-1)).
const TRIALS: u64 = 40;

/// One input to the validator under test.
#[derive(Clone)]
enum Input {
    Timeout(Timestamp),
    Message(Timestamp, NodeId, ConsensusMessage),
}

fn keys() -> Vec<Keypair> {
    let root = Seed::from_u64(24);
    (0..N as u64)
        .map(|i| Keypair::from_seed(&root.derive_indexed("k", i)))
        .collect()
}

fn config() -> ConsensusConfig {
    // Deep enough that the variants (round 8) are injected before anything
    // is collected and outlive the collection of their missing parents
    // (round 2) by several commits.
    ConsensusConfig::default()
        .with_gc_depth(10)
        .with_leader_timeout(Duration::from_millis(50))
}

fn validator(keys: &[Keypair], i: usize, seed: u64) -> Validator {
    let committee = Committee::equal(keys.iter().map(Keypair::node_id)).unwrap();
    Validator::new(keys[i].clone(), committee, config(), Seed::from_u64(seed)).unwrap()
}

/// Feeds one input; drops what the validator sends.
fn feed(v: &mut Validator, input: &Input) {
    match input {
        Input::Timeout(now) => v.handle_timeout(*now),
        Input::Message(now, from, msg) => v.handle_message(*now, *from, msg.clone()),
    }
    while v.poll_transmit().is_some() {}
    while v.poll_event().is_some() {}
}

/// Author `BYZ`'s two variants at [`VARIANT_ROUND`]: the same round-7
/// parents (`parents`, from the honest validators) and each its own missing
/// "previous block" at [`MISSING_ROUND`] (two digests, never sent).
fn variants(keys: &[Keypair], parents: &[BlockRef]) -> [Arc<Block>; 2] {
    let byz = AuthorityIndex::new(BYZ as u32);
    [(1u64, 0x11u8), (2, 0xee)].map(|(variant, digest)| {
        let own = BlockRef {
            round: Round::new(MISSING_ROUND),
            author: byz,
            digest: Digest::from_bytes([digest; 32]),
        };
        let mut ps = parents.to_vec();
        ps.push(own);
        ps.sort_by_key(|p| p.author);
        Arc::new(Block::new_signed(
            &keys[BYZ],
            byz,
            Round::new(VARIANT_ROUND),
            Timestamp::from_micros(variant),
            ps,
            vec![Transaction::new(vec![variant as u8])],
        ))
    })
}

/// The honest validators (all but `BYZ`) on a FIFO network, recording
/// every input of the observer.
struct Recorder {
    vs: Vec<Validator>,
    ids: Vec<NodeId>,
    queue: VecDeque<(usize, usize, ConsensusMessage)>,
    now: Timestamp,
    inputs: Vec<Input>,
}

impl Recorder {
    fn new(keys: &[Keypair]) -> Self {
        Self {
            vs: (0..BYZ)
                .map(|i| validator(keys, i, 100 + i as u64))
                .collect(),
            ids: keys.iter().map(Keypair::node_id).collect(),
            queue: VecDeque::new(),
            now: Timestamp::ZERO,
            inputs: Vec::new(),
        }
    }

    /// The observer's first blocks of `round` by the honest authors, once
    /// it holds all of them.
    fn observer_has_round(&self, round: Round) -> Option<Vec<BlockRef>> {
        let store = self.vs[OBSERVER].store();
        (0..BYZ)
            .map(|a| {
                let slot = store.slot(round, AuthorityIndex::new(a as u32));
                slot.first().map(VerifiedBlock::reference)
            })
            .collect()
    }

    /// Delivers the oldest message in flight, else fires the earliest timer.
    fn step(&mut self) {
        let (to, input) = match self.queue.pop_front() {
            Some((from, to, msg)) => (to, Input::Message(self.now, self.ids[from], msg)),
            None => {
                let (t, i) = (0..BYZ)
                    .filter_map(|i| self.vs[i].poll_timeout().map(|t| (t, i)))
                    .min()
                    .expect("someone has a timer");
                self.now = self.now.max(t);
                (i, Input::Timeout(self.now))
            }
        };
        if to == BYZ {
            return; // `BYZ` is silent.
        }
        if to == OBSERVER {
            self.inputs.push(input.clone());
        }
        let v = &mut self.vs[to];
        match input {
            Input::Timeout(now) => v.handle_timeout(now),
            Input::Message(now, from, msg) => v.handle_message(now, from, msg),
        }
        while let Some(t) = v.poll_transmit() {
            match t.to {
                Destination::To(n) => {
                    let j = self.ids.iter().position(|id| *id == n).unwrap();
                    self.queue.push_back((to, j, t.msg));
                }
                Destination::Broadcast => {
                    for j in (0..N).filter(|&j| j != to) {
                        self.queue.push_back((to, j, t.msg.clone()));
                    }
                }
            }
        }
        while v.poll_event().is_some() {}
    }
}

/// Runs the honest validators and records the observer's inputs. Once the
/// observer holds the honest round-7 blocks, the two variants reach it from
/// `BYZ`; the recording stops once collection has released them into its
/// store.
fn record(keys: &[Keypair]) -> Vec<Input> {
    let mut net = Recorder::new(keys);
    let byz = AuthorityIndex::new(BYZ as u32);
    let round = Round::new(VARIANT_ROUND);
    let mut injected = false;
    for _ in 0..100_000 {
        let store = net.vs[OBSERVER].store();
        if store.slot(round, byz).len() == 2 {
            assert!(store.gc_round() <= round, "variants collected");
            return net.inputs;
        }
        if !injected && let Some(parents) = net.observer_has_round(round.prev().unwrap()) {
            assert_eq!(store.gc_round(), Round::ZERO, "injected too late");
            injected = true;
            for b in variants(keys, &parents) {
                let msg = ConsensusMessage::Block(b);
                net.queue.push_front((BYZ, OBSERVER, msg));
            }
        }
        net.step();
    }
    panic!("the observer never stored both variants");
}

/// What a fresh observer fed `inputs` stored first for the variants' slot,
/// and the bytes it serves to a peer that knows rounds up to 7 and asks for
/// the observer's latest block.
fn observe(keys: &[Keypair], inputs: &[Input], seed: u64) -> ((BlockRef, Timestamp), Vec<u8>) {
    let mut v = validator(keys, OBSERVER, seed);
    for input in inputs {
        feed(&mut v, input);
    }
    let slot = v
        .store()
        .slot(Round::new(VARIANT_ROUND), AuthorityIndex::new(BYZ as u32));
    assert_eq!(slot.len(), 2, "both variants stored");
    assert!(v.equivocators().contains(&AuthorityIndex::new(BYZ as u32)));
    let first_block = slot.first().expect("a first variant");
    let first = first_block.reference();
    let first_timestamp = first_block.block().header.timestamp;
    let now = match inputs.last() {
        Some(Input::Timeout(t) | Input::Message(t, _, _)) => *t,
        None => Timestamp::ZERO,
    };

    let latest = v
        .store()
        .last_block_of(AuthorityIndex::new(OBSERVER as u32))
        .unwrap();
    assert!(latest.round() > Round::new(VARIANT_ROUND));
    let req = FetchRequest {
        refs: vec![latest.reference()],
        known_round: Round::new(VARIANT_ROUND - 1),
    };
    v.handle_message(now, keys[1].node_id(), ConsensusMessage::FetchRequest(req));
    let served = std::iter::from_fn(|| v.poll_transmit())
        .find_map(|t| match t.msg {
            ConsensusMessage::FetchResponse(blocks) => Some(blocks),
            _ => None,
        })
        .expect("a fetch response");
    // The response fills round 8 with the first block of each author: of
    // the two variants, exactly the one stored first.
    let byz: Vec<BlockRef> = served
        .iter()
        .map(|b| b.header.reference())
        .filter(|r| r.author == AuthorityIndex::new(BYZ as u32))
        .collect();
    assert_eq!(byz, vec![first], "serves the variant it stored first");
    let bytes = encode(&ConsensusMessage::FetchResponse(served));
    ((first, first_timestamp), bytes)
}

#[test]
fn fresh_validators_store_and_serve_the_same_equivocating_block() {
    let keys = keys();
    let inputs = record(&keys);
    let (first, bytes) = observe(&keys, &inputs, 0);
    for seed in 1..TRIALS {
        let (f, b) = observe(&keys, &inputs, seed);
        assert_eq!(
            f, first,
            "fresh validator {seed} stored another variant first"
        );
        assert_eq!(b, bytes, "fresh validator {seed} served other bytes");
    }
    // Collection releases the variant waiting on the lowest parent first:
    // the one whose missing previous block has the lower digest (0x11…,
    // the variant with timestamp 1 µs).
    assert_eq!(first.1, Timestamp::from_micros(1));
}
