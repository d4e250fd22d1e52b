//! `SignedFeedback::from_bytes` on untrusted bytes never panics; accepted
//! input is canonical and its signature check never panics.
#![no_main]

use idlegrid_fuzz::write_seeds;
use idlegrid_primitives::{Amount, Digest, Domain, Epoch, Keypair, Seed};
use idlegrid_reputation::{Feedback, JobId, Outcome, SignedFeedback};
use libfuzzer_sys::fuzz_target;

fn seeds() -> Vec<Vec<u8>> {
    let k = |i| Keypair::from_seed(&Seed::from_u64(i));
    Outcome::ALL
        .iter()
        .enumerate()
        .map(|(i, &outcome)| {
            Feedback {
                reporter: k(1).node_id(),
                subject: k(2).node_id(),
                outcome,
                job: JobId(Digest::hash(Domain::new("idlegrid/fuzz/job"), &[i as u8])),
                value: Amount::new(10u128.pow(i as u32)),
                epoch: Epoch::new(i as u64),
            }
            .sign(&k(1))
            .to_bytes()
        })
        .collect()
}

fuzz_target!(
    init: write_seeds(seeds()),
    |data: &[u8]| {
        if let Ok(fb) = SignedFeedback::from_bytes(data) {
            assert_eq!(fb.to_bytes(), data, "accepted non-canonical feedback");
            let _ = fb.verify();
            let _ = (fb.feedback.outcome.role(), fb.feedback.outcome.severity());
        }
    }
);
