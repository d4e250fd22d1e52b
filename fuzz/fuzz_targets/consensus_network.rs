//! Stateful: two honest validators follow a DAG built by a four-validator
//! committee whose fourth member equivocates. The blocks (both variants of
//! every equivocating block, blocks lost and reordered on the way, blocks
//! signed but invalid) are signed once per process (`consensus_fixture::pool`);
//! the fuzzer decides which block reaches which follower, from whom, in which
//! order, alone or in a fetch response, how often; it delivers, drops,
//! duplicates or redirects what the followers send each other (the pool
//! author answers fetch requests from the pool), sends fetch requests of its
//! own, corrupts blocks and messages and injects raw bytes, also from an
//! outsider. Nothing panics; after every
//! step the followers' commit sequences are prefixes of each other
//! (`check_prefix_consistency`) and well formed (`check_commit_sequence`),
//! and every reported equivocation verifies and names the equivocator.
//!
//! Speed: nothing is signed per input (followers are never started, so they
//! never propose, and get no timeouts, so fetch retries are not exercised;
//! proposing is exercised while the pool is built, and by the
//! crate's tests and harness sweeps). Every block signature is verified,
//! through one memo of verified signatures for the whole process
//! (`consensus_fixture::signatures`): a pool block is verified once per
//! process, a corrupted one every time. Each distinct piece of evidence is
//! verified once per process.
#![no_main]

use std::collections::BTreeSet;
use std::sync::Mutex;

use idlegrid_dag_ledger::consensus::{
    ConsensusMessage, Evidence, FetchRequest, InvariantViolation, check_commit_sequence,
    check_prefix_consistency,
};
use idlegrid_fuzz::consensus_fixture::{
    FOLLOWERS, Followers, N, POOL_BYZANTINE, POOL_ROUNDS, committee, node, pool,
};
use idlegrid_primitives::{Digest, Round, Signature};
use libfuzzer_sys::arbitrary::{Result as AResult, Unstructured};
use libfuzzer_sys::fuzz_target;

const MAX_STEPS: usize = 24;

fn run(data: &[u8]) -> AResult<()> {
    let mut u = Unstructured::new(data);
    let pool = pool();
    let mut net = Followers::new();
    let mut verified = 0;
    let mut checked = [0; FOLLOWERS];
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        let q = net.queue.len();
        let to = u.choose_index(FOLLOWERS)?;
        // 16..=19 (and the guarded arms without a queue) let the followers
        // talk: corrupting (13, 14) and raw bytes (15) must not crowd out the
        // deliveries that move the DAG to commits.
        match u.int_in_range(0..=19u8)? {
            0..=4 => {
                // One pool block, usually from its author.
                let b = &pool.blocks[u.choose_index(pool.blocks.len())?];
                let from = if u.ratio(3, 4)? {
                    b.header.author.as_usize()
                } else {
                    u.choose_index(N)?
                };
                net.send(from, to, ConsensusMessage::Block(b.clone()));
            }
            5 | 6 => {
                // A whole round (or part of it) at once, in pool order or reversed.
                let round = pool.round(u.int_in_range(1..=POOL_ROUNDS)?);
                let skip = u.int_in_range(0..=round.len())?;
                let mut blocks: Vec<_> = round[skip..].to_vec();
                if u.arbitrary()? {
                    blocks.reverse();
                }
                for b in blocks {
                    net.send(b.header.author.as_usize(), to, ConsensusMessage::Block(b));
                }
            }
            7 => {
                // A fetch response: a few consecutive pool blocks.
                let k = u.choose_index(pool.blocks.len())?;
                let n = u.int_in_range(1..=4)?;
                let blocks = pool.blocks[k..(k + n).min(pool.blocks.len())].to_vec();
                net.send(
                    u.choose_index(N)?,
                    to,
                    ConsensusMessage::FetchResponse(blocks),
                );
            }
            8 | 9 if q > 0 => net.deliver(u.choose_index(q)?),
            10 if q > 0 => {
                net.queue.remove(u.choose_index(q)?);
            }
            11 if q > 0 => {
                // Duplicate, or redirect a copy to another validator.
                let (from, dest, m) = net.queue[u.choose_index(q)?].clone();
                let dest = if u.arbitrary()? { dest } else { to };
                net.queue.push_back((from, dest, m));
            }
            12 => {
                // A fetch request from a member or an outsider.
                let n = u.int_in_range(0..=3)?;
                let mut refs = Vec::with_capacity(n);
                for _ in 0..n {
                    refs.push(
                        pool.blocks[u.choose_index(pool.blocks.len())?]
                            .header
                            .reference(),
                    );
                }
                let known_round = Round::new(u.int_in_range(0..=POOL_ROUNDS + 1)?);
                let from = u.int_in_range(0..=N)?;
                net.send(
                    from,
                    to,
                    ConsensusMessage::FetchRequest(FetchRequest { refs, known_round }),
                );
            }
            13 | 14 => {
                // Corrupt one byte of a pool block or an in-flight message.
                let (from, m) = match net.queue.len() {
                    n if n > 0 && u.arbitrary()? => {
                        let (from, _, m) = net.queue.remove(u.choose_index(n)?).expect("in range");
                        (from, m)
                    }
                    _ => {
                        let b = &pool.blocks[u.choose_index(pool.blocks.len())?];
                        (
                            b.header.author.as_usize(),
                            ConsensusMessage::Block(b.clone()),
                        )
                    }
                };
                let mut bytes = m.encode();
                let i = u.choose_index(bytes.len())?;
                bytes[i] ^= u.int_in_range(1..=255)?;
                net.send_bytes(from, to, &bytes);
            }
            15 => {
                let n = u.int_in_range(0..=256)?;
                let bytes = u.bytes(n)?.to_vec();
                net.send_bytes(u.int_in_range(0..=N)?, to, &bytes);
            }
            _ => {
                // Let the followers talk for a bit.
                for _ in 0..u.int_in_range(1..=8)? {
                    if net.queue.is_empty() {
                        break;
                    }
                    net.deliver(0);
                }
            }
        }
        check(&net, &mut verified, &mut checked);
    }
    if std::env::var_os("IDLEGRID_FUZZ_DEBUG").is_some() {
        let c: Vec<usize> = net.commits.iter().map(Vec::len).collect();
        eprintln!(
            "commits {c:?} evidence {} queue {}",
            net.evidence.len(),
            net.queue.len()
        );
    }
    Ok(())
}

/// Checks the invariants; `verified` counts the evidence already checked.
/// The commit invariants are functions of the commit sequences, which only
/// grow: they are checked again only after one grew (`checked` holds the
/// lengths checked last).
fn check(net: &Followers, verified: &mut usize, checked: &mut [usize; FOLLOWERS]) {
    let lens: [usize; FOLLOWERS] = std::array::from_fn(|i| net.commits[i].len());
    if lens != *checked {
        check_commits(net);
        *checked = lens;
    }
    for ev in &net.evidence[*verified..] {
        let key = evidence_key(ev);
        if GOOD_EVIDENCE.lock().expect("not poisoned").contains(&key) {
            continue;
        }
        let who = ev
            .verify(committee())
            .expect("reported evidence must verify");
        assert_eq!(who, node(POOL_BYZANTINE), "an honest validator was accused");
        GOOD_EVIDENCE.lock().expect("not poisoned").insert(key);
    }
    *verified = net.evidence.len();
}

/// The followers' commit sequences are prefixes of each other and well formed.
fn check_commits(net: &Followers) {
    let digests: Vec<Vec<Digest>> = net
        .commits
        .iter()
        .map(|c| c.iter().map(|s| s.digest).collect())
        .collect();
    if let Err(v) = check_prefix_consistency(&digests) {
        panic!("honest validators diverged: {v:?}");
    }
    for (i, c) in net.commits.iter().enumerate() {
        match check_commit_sequence(c) {
            Ok(()) => {}
            // An equivocator may put the same transaction in two variants.
            Err(InvariantViolation::DuplicateTransaction(_)) => {}
            Err(v) => panic!("validator {i}: bad commit sequence: {v:?}"),
        }
    }
}

/// Evidence (by [`evidence_key`]) that verified and named the equivocator
/// in an earlier input: verification is a function of the evidence, and a
/// fixed pool yields few distinct pieces, so each is verified once per
/// process rather than in every input that reports it.
static GOOD_EVIDENCE: Mutex<BTreeSet<[[u8; 32]; 6]>> = Mutex::new(BTreeSet::new());

/// What identifies a piece of evidence: both header digests (blake3 over
/// each header's canonical encoding) and both signatures. Cheaper than its
/// serde encoding, which took 2 % of the target.
fn evidence_key(ev: &Evidence) -> [[u8; 32]; 6] {
    let half = |s: &Signature, i: usize| -> [u8; 32] {
        s.to_bytes()[32 * i..32 * (i + 1)]
            .try_into()
            .expect("32 of 64 bytes")
    };
    [
        ev.first.header.digest().to_bytes(),
        half(&ev.first.signature, 0),
        half(&ev.first.signature, 1),
        ev.second.header.digest().to_bytes(),
        half(&ev.second.signature, 0),
        half(&ev.second.signature, 1),
    ]
}

fuzz_target!(
    init: {
        // Build the pool before the first input (it is timed otherwise).
        let _ = pool();
        idlegrid_fuzz::write_seeds([
            // Every round to every follower, in order (each step's last
            // byte is the next one's `skip`).
            (0..36u8).flat_map(|i| [0, i % 3, 5, i / 3 * 22]).skip(1).collect::<Vec<u8>>(),
            vec![0, 5, 0, 1, 5, 0, 2, 5, 0, 0, 5, 40, 1, 5, 40, 2, 5, 40, 0, 15, 0, 15, 1, 15, 2, 15],
            vec![0, 0, 9, 1, 0, 9, 2, 7, 0, 0, 12, 3, 1, 2, 3, 4, 1, 8, 0],
        ]);
    },
    |data: &[u8]| {
        let _ = run(data);
    }
);
