//! Proptest strategies for the crate's public types (feature `strategies`).
//!
//! ```
//! use idlegrid_reputation::strategies;
//! use proptest::prelude::*;
//!
//! proptest!(|(s in strategies::beta_state(), p in strategies::beta_params())| {
//!     prop_assert!(s.score(&p) <= idlegrid_reputation::Score::ONE);
//! });
//! ```

use idlegrid_primitives::strategies as prim;
use idlegrid_primitives::{Amount, Epoch, NodeId};
use proptest::prelude::*;

use crate::{BetaParams, BetaState, Evidence, Feedback, JobId, Outcome, Role, Score, TrustParams};

/// Any score, biased to the ends.
pub fn score() -> impl Strategy<Value = Score> {
    prop_oneof![
        1 => Just(Score::ZERO),
        1 => Just(Score::ONE),
        6 => (0..=Score::ONE.raw()).prop_map(|r| Score::from_raw(r).expect("in range")),
    ]
}

/// Evidence up to a million events.
pub fn evidence() -> impl Strategy<Value = Evidence> {
    (0u64..=1_000_000 * Evidence::EVENT.micros()).prop_map(Evidence::from_micros)
}

/// Any role.
pub fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Provider), Just(Role::Client)]
}

/// Any outcome.
pub fn outcome() -> impl Strategy<Value = Outcome> {
    proptest::sample::select(Outcome::ALL.to_vec())
}

/// A job id.
pub fn job_id() -> impl Strategy<Value = JobId> {
    prim::digest().prop_map(JobId)
}

/// Valid beta parameters (`validate()` passes).
pub fn beta_params() -> impl Strategy<Value = BetaParams> {
    (500_000u32..=1_000_000, 1u64..=20, 0u32..=500_000)
        .prop_map(|(l, b0, f)| BetaParams {
            forgetting: Score::from_ppm(l).expect("ppm"),
            prior_failures: Evidence::from_events(b0).expect("small"),
            assumed_faulty: Score::from_ppm(f).expect("ppm"),
        })
        .prop_filter("valid", |p| p.validate().is_ok())
}

/// Valid EigenTrust parameters.
pub fn trust_params() -> impl Strategy<Value = TrustParams> {
    (50_000u32..=500_000, 10u32..=200, 0u32..=1_000_000).prop_map(|(a, it, s)| TrustParams {
        damping: Score::from_ppm(a).expect("ppm"),
        max_iterations: it,
        stake_share: Score::from_ppm(s).expect("ppm"),
        ..TrustParams::default()
    })
}

/// A beta state at epoch zero.
pub fn beta_state() -> impl Strategy<Value = BetaState> {
    (evidence(), evidence()).prop_map(|(a, b)| BetaState {
        positive: a,
        negative: b,
        updated: Epoch::ZERO,
    })
}

/// A value at stake accepted by the default book parameters.
pub fn value() -> impl Strategy<Value = Amount> {
    prop_oneof![
        4 => (1u128..10_000).prop_map(Amount::new),
        1 => (1u128..=u128::from(u64::MAX)).prop_map(Amount::new),
    ]
}

/// Valid feedback between two distinct members of `ids` at `epoch`.
///
/// # Panics
/// If `ids` has fewer than two elements.
pub fn feedback_among(ids: Vec<NodeId>, epoch: Epoch) -> impl Strategy<Value = Feedback> {
    assert!(ids.len() >= 2, "need two identities");
    let n = ids.len();
    (0..n, 1..n, outcome(), job_id(), value()).prop_map(move |(r, off, outcome, job, value)| {
        Feedback {
            reporter: ids[r],
            subject: ids[(r + off) % n],
            outcome,
            job,
            value,
            epoch,
        }
    })
}
