//! Stateful: a reputation book with fuzzer-chosen parameters receives a
//! fuzzer-chosen sequence of registrations, unsigned verdicts, signed
//! feedback (valid, forged, or decoded from raw bytes), epoch advances and
//! EigenTrust runs. Nothing panics, `check_book` holds after every step,
//! a rejected input leaves the state digest unchanged, and every trust
//! vector passes `check_trust_vector`.
#![no_main]

use idlegrid_fuzz::write_seeds;
use idlegrid_primitives::{Amount, Digest, Domain, Epoch, Keypair, NodeId, Seed};
use idlegrid_reputation::{
    BookParams, Feedback, JobId, Outcome, ReputationBook, Role, Score, SignedFeedback,
    TrustParams, check_book, check_trust_vector,
};
use libfuzzer_sys::arbitrary::{Result as AResult, Unstructured};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const KEYS: usize = 5;
const MAX_STEPS: usize = 64;

fn keys() -> &'static [Keypair; KEYS] {
    static K: OnceLock<[Keypair; KEYS]> = OnceLock::new();
    K.get_or_init(|| std::array::from_fn(|i| Keypair::from_seed(&Seed::from_u64(2000 + i as u64))))
}

fn node(u: &mut Unstructured<'_>) -> AResult<NodeId> {
    let i = usize::from(u.int_in_range(0..=KEYS as u8)?);
    Ok(keys().get(i).map_or(NodeId::from_bytes([0xAB; 32]), Keypair::node_id))
}

fn amount(u: &mut Unstructured<'_>) -> AResult<Amount> {
    Ok(Amount::new(match u.int_in_range(0..=4u8)? {
        0 => 0,
        1 => u128::from(u.arbitrary::<u8>()?),
        2 => u128::from(u64::MAX),
        3 => u128::MAX,
        _ => u.arbitrary()?,
    }))
}

fn feedback(u: &mut Unstructured<'_>, book: &ReputationBook) -> AResult<Feedback> {
    Ok(Feedback {
        reporter: node(u)?,
        subject: node(u)?,
        outcome: *u.choose(&Outcome::ALL)?,
        job: JobId(Digest::hash(Domain::new("idlegrid/fuzz/job"), &[u.int_in_range(0..=7u8)?])),
        value: amount(u)?,
        epoch: match u.int_in_range(0..=3u8)? {
            0 => Epoch::new(u.arbitrary()?),
            1 => book.epoch().saturating_minus(u.int_in_range(0..=12)?),
            _ => book.epoch(),
        },
    })
}

fn params(u: &mut Unstructured<'_>) -> AResult<BookParams> {
    let mut p = BookParams::default();
    if u.arbitrary()? {
        if let Some(f) = Score::from_ppm(u.int_in_range(0..=1_000_000)?) {
            p.beta.forgetting = f;
        }
        p.max_identities = u.int_in_range(1..=6)?;
        p.max_edges = u.int_in_range(1..=20)?;
        p.max_feedback_per_reporter_per_epoch = u.int_in_range(0..=8)?;
        p.window_epochs = u.int_in_range(0..=4)?;
        p.max_weight_events = u.int_in_range(0..=64)?;
        p.major_severity = u.int_in_range(0..=100)?;
        p.value_unit = Amount::new(u.int_in_range(0..=1_000)?);
    }
    Ok(p)
}

fn run(data: &[u8]) -> AResult<()> {
    let mut u = Unstructured::new(data);
    let Ok(mut book) = ReputationBook::new(params(&mut u)?, Epoch::new(u.int_in_range(0..=3)?))
    else {
        return Ok(()); // invalid parameters are rejected, fine
    };
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        let before = book.state_digest();
        let rejected = match u.int_in_range(0..=7u8)? {
            0 => book.register(node(&mut u)?, amount(&mut u)?).is_err(),
            1 => book.apply_feedback(&feedback(&mut u, &book)?).is_err(),
            2 | 3 => {
                let fb = feedback(&mut u, &book)?;
                // Signed by the reporter, or by someone else (forged).
                let signer = keys()
                    .iter()
                    .find(|k| k.node_id() == fb.reporter)
                    .filter(|_| !u.ratio(1, 8).unwrap_or(false))
                    .unwrap_or(&keys()[0]);
                book.record(&fb.sign(signer)).is_err()
            }
            4 => {
                let n = u.int_in_range(0..=200)?;
                match SignedFeedback::from_bytes(u.bytes(n)?) {
                    Ok(s) => book.record(&s).is_err(),
                    Err(_) => true,
                }
            }
            5 => {
                book.advance_epoch();
                false
            }
            6 => book.advance_to(Epoch::new(u.arbitrary::<u8>()?.into())).is_err(),
            _ => {
                let pre: Vec<NodeId> = (0..u.int_in_range(0..=2)?)
                    .map(|_| node(&mut u))
                    .collect::<AResult<_>>()?;
                let tp = TrustParams { max_iterations: u.int_in_range(1..=50)?, ..TrustParams::default() };
                if let Ok(tv) = book.global_trust(&pre, &tp) {
                    check_trust_vector(&tv, Score::from_ppm(1_000).expect("const"))
                        .expect("trust vector invariant");
                }
                for (id, _) in book.identities() {
                    for r in Role::ALL {
                        let _ = (book.score(id, r), book.credibility(id), book.state(id, r));
                    }
                }
                false
            }
        };
        if rejected {
            assert_eq!(book.state_digest(), before, "a rejected input changed the book");
        }
        if let Err(e) = check_book(&book) {
            panic!("check_book failed: {e}");
        }
    }
    Ok(())
}

fn seeds() -> Vec<Vec<u8>> {
    vec![
        vec![0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 2, 2, 0, 1, 0, 0, 1, 5, 3, 0, 1, 0, 0, 0, 7],
        (0u8..=255).rev().collect(),
    ]
}

fuzz_target!(
    init: write_seeds(seeds()),
    |data: &[u8]| {
        let _ = run(data);
    }
);
