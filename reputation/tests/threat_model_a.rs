//! EigenTrust's threat model A (Kamvar et al., 2003, §7): independent
//! malicious peers always serve bad results and rate the opposite of the
//! truth. Peers pick download sources either uniformly at random or by
//! global trust (probabilistically ∝ trust, with a 10% chance of a random
//! zero-trust peer, as in the paper). Trust-based selection must cut the
//! share of bad results sharply.
//!
//! Run with `--nocapture` to see the table quoted in the crate's README.

use idlegrid_primitives::{Amount, Digest, Domain, Epoch, NodeId, RngCore, Seed};
use idlegrid_reputation::*;

const D: Domain = Domain::new("idlegrid/test/threat-a");

struct Tally {
    bad: u64,
    total: u64,
}

fn simulate(malicious_pct: u64, use_trust: bool, seed: u64) -> Tally {
    const PEERS: usize = 100;
    const PRETRUSTED: usize = 3;
    const EPOCHS: u64 = 15;
    const QUERIES_PER_PEER: u64 = 3;
    const CANDIDATES: usize = 10;
    let ids: Vec<NodeId> = (0..PEERS as u64)
        .map(|i| NodeId::from_bytes(Digest::hash(D, &i.to_le_bytes()).to_bytes()))
        .collect();
    let n_bad = (PEERS as u64 * malicious_pct / 100) as usize;
    // The last n_bad peers are malicious; pre-trusted peers are honest.
    let is_bad = |i: usize| i >= PEERS - n_bad;
    let params = BookParams {
        window_epochs: 1,
        ..BookParams::default()
    };
    let mut book = ReputationBook::new(params, Epoch::ZERO).unwrap();
    for x in &ids {
        book.register(*x, Amount::ZERO).unwrap();
    }
    let pre = &ids[..PRETRUSTED];
    let tp = TrustParams::default();
    let mut rng = Seed::from_u64(seed).rng();
    let (mut bad, mut total, mut job) = (0u64, 0u64, 0u64);
    for _ in 0..EPOCHS {
        let trust = book.global_trust(pre, &tp).unwrap();
        for q in 0..PEERS as u64 * QUERIES_PER_PEER {
            let me = (q % PEERS as u64) as usize;
            let cands: Vec<usize> = (0..CANDIDATES)
                .map(|_| (rng.next_u64() % PEERS as u64) as usize)
                .filter(|&c| c != me)
                .collect();
            if cands.is_empty() {
                continue;
            }
            let pick = if use_trust {
                choose_by_trust(&cands, &ids, &trust, &mut rng)
            } else {
                cands[(rng.next_u64() % cands.len() as u64) as usize]
            };
            let served_bad = is_bad(pick);
            if !is_bad(me) {
                total += 1;
                bad += u64::from(served_bad);
            }
            // Honest peers rate truthfully; malicious peers rate the opposite.
            let looks_good = served_bad == is_bad(me);
            job += 1;
            let fb = Feedback {
                reporter: ids[me],
                subject: ids[pick],
                outcome: if looks_good {
                    Outcome::Delivered
                } else {
                    Outcome::Failed
                },
                job: JobId(Digest::hash(D, &job.to_le_bytes())),
                value: Amount::new(1),
                epoch: book.epoch(),
            };
            book.apply_feedback(&fb).unwrap();
        }
        book.advance_epoch();
    }
    Tally { bad, total }
}

fn choose_by_trust(
    cands: &[usize],
    ids: &[NodeId],
    trust: &TrustVector,
    rng: &mut impl RngCore,
) -> usize {
    let zero: Vec<usize> = cands
        .iter()
        .copied()
        .filter(|&c| trust.get(&ids[c]) == Score::ZERO)
        .collect();
    let total: u128 = cands
        .iter()
        .map(|&c| u128::from(trust.get(&ids[c]).raw()))
        .sum();
    if total == 0 || (!zero.is_empty() && rng.next_u64() % 10 == 0) {
        return cands[(rng.next_u64() % cands.len() as u64) as usize];
    }
    let mut r = (u128::from(rng.next_u64()) * total) >> 64; // total <= 2^60
    for &c in cands {
        let t = u128::from(trust.get(&ids[c]).raw());
        if r < t {
            return c;
        }
        r -= t;
    }
    *cands.last().expect("non-empty")
}

#[test]
fn trust_based_selection_cuts_bad_results() {
    println!(
        "malicious%  random-selection  trust-selection   (share of bad results served to honest peers)"
    );
    for pct in [20, 40, 60, 70] {
        let r = simulate(pct, false, 1);
        let t = simulate(pct, true, 1);
        let (rf, tf) = (r.bad as f64 / r.total as f64, t.bad as f64 / t.total as f64);
        println!("{pct:>9}%  {rf:>16.3}  {tf:>15.3}");
        assert!(
            tf < rf / 3.0,
            "at {pct}% malicious: trust {tf:.3} vs random {rf:.3}"
        );
    }
}
