//! Stateful: four validators (one optionally Byzantine: equivocating,
//! withholding or under-referencing) on a network the fuzzer controls —
//! it picks which message is delivered, dropped, duplicated, corrupted or
//! replaced by raw bytes from a member or an outsider, when time passes, and
//! which transactions are submitted. Nothing panics; after every step the
//! honest validators' commit sequences are prefixes of each other
//! (`check_prefix_consistency`) and well formed (`check_commit_sequence`),
//! and every reported equivocation verifies and names the Byzantine node.
//!
//! Speed: keys and the committee are built once
//! (`OnceLock`), each piece of evidence is verified once (not after every
//! step), the runs are shorter, and one input in four verifies block
//! signatures (the others run with `verify_signatures` off, the
//! simulator's speed knob; every other check still runs). Corrupted and raw
//! messages are injected only in inputs that verify signatures.
#![no_main]

use idlegrid_dag_ledger::consensus::{
    ByzantineBehavior, InvariantViolation, check_commit_sequence, check_prefix_consistency,
};
use idlegrid_fuzz::consensus_fixture::{N, Net, committee, node};
use idlegrid_primitives::{Digest, Duration};
use libfuzzer_sys::arbitrary::{Result as AResult, Unstructured};
use libfuzzer_sys::fuzz_target;

const MAX_STEPS: usize = 48;

fn run(data: &[u8]) -> AResult<()> {
    let mut u = Unstructured::new(data);
    let verify_signatures = u.ratio(1, 4)?;
    let byz = match u.int_in_range(0..=5u8)? {
        0 => Some((N - 1, ByzantineBehavior::Equivocate)),
        1 => Some((N - 1, ByzantineBehavior::TooFewParents)),
        2 => Some((N - 1, ByzantineBehavior::Withhold { recipients: u.int_in_range(0..=3)? })),
        _ => None,
    };
    let mut net = Net::with_signatures(byz, verify_signatures);
    let mut tx = 0u32;
    let mut verified = 0;
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        let q = net.queue.len();
        match u.int_in_range(0..=15u8)? {
            0..=6 if q > 0 => net.deliver(u.choose_index(q)?),
            7 if q > 0 => {
                net.queue.remove(u.choose_index(q)?);
            }
            8 if q > 0 => {
                // Duplicate, or redirect a copy to another validator.
                let (from, to, m) = net.queue[u.choose_index(q)?].clone();
                let to = if u.arbitrary()? { to } else { u.choose_index(N)? };
                net.queue.push_back((from, to, m));
            }
            // Corrupted and raw bytes only where signatures are checked:
            // without that, a corrupted block is accepted as its claimed
            // author's, and evidence built from it rightly fails to verify.
            9 if q > 0 && verify_signatures => {
                // Corrupt one byte of an in-flight message.
                let (from, to, m) = net.queue.remove(u.choose_index(q)?).expect("in range");
                let mut bytes = m.encode();
                let i = u.choose_index(bytes.len())?;
                bytes[i] ^= u.int_in_range(1..=255)?;
                net.deliver_bytes(from, to, &bytes);
            }
            10 if verify_signatures => {
                let n = u.int_in_range(0..=256)?;
                let bytes = u.bytes(n)?.to_vec();
                let (from, to) = (u.int_in_range(0..=N)?, u.choose_index(N)?);
                net.deliver_bytes(from, to, &bytes);
            }
            11 => {
                tx += 1;
                let i = u.choose_index(N)?;
                let _ = net.vs[i].submit_transaction(tx.to_le_bytes().to_vec());
                net.drain(i);
            }
            12 | 13 => net.advance(Duration::from_millis(u.int_in_range(1..=400)?)),
            _ => {
                // Let the network run honestly for a bit.
                for _ in 0..u.int_in_range(1..=8)? {
                    if net.queue.is_empty() {
                        net.advance(Duration::from_millis(250));
                    } else {
                        net.deliver(0);
                    }
                }
            }
        }
        check(&net, &mut verified);
    }
    if std::env::var_os("IDLEGRID_FUZZ_DEBUG").is_some() {
        let c: Vec<usize> = net.commits.iter().map(Vec::len).collect();
        eprintln!("byz {:?} commits {c:?} evidence {} queue {}", net.byzantine, net.evidence.len(), net.queue.len());
    }
    Ok(())
}

/// Checks the invariants; `verified` counts the evidence already checked.
fn check(net: &Net, verified: &mut usize) {
    let honest: Vec<usize> = (0..N).filter(|&i| Some(i) != net.byzantine).collect();
    let digests: Vec<Vec<Digest>> = honest
        .iter()
        .map(|&i| net.commits[i].iter().map(|s| s.digest).collect())
        .collect();
    if let Err(v) = check_prefix_consistency(&digests) {
        panic!("honest validators diverged: {v:?}");
    }
    for &i in &honest {
        match check_commit_sequence(&net.commits[i]) {
            Ok(()) => {}
            // An equivocator may put the same transaction in two variants.
            Err(InvariantViolation::DuplicateTransaction(_)) if net.byzantine.is_some() => {}
            Err(v) => panic!("validator {i}: bad commit sequence: {v:?}"),
        }
    }
    for ev in &net.evidence[*verified..] {
        let who = ev.verify(committee()).expect("reported evidence must verify");
        assert_eq!(Some(who), net.byzantine.map(node), "an honest validator was accused");
    }
    *verified = net.evidence.len();
}

fuzz_target!(
    init: idlegrid_fuzz::write_seeds([
        vec![5, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 11, 0, 14, 15, 14, 15, 14, 15],
        vec![0, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15],
        vec![3, 0, 0, 0, 0, 1, 1, 12, 200, 0, 0, 0, 2, 0, 3, 7, 0, 14, 15, 14, 15, 9, 0, 5, 3],
    ]),
    |data: &[u8]| {
        let _ = run(data);
    }
);
