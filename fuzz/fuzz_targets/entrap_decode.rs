//! Every entrap wire type (plans, trap reveals, terms, committees, votes,
//! settlement effects) decodes untrusted bytes without panicking and only
//! from its canonical encoding. A decoded (terms, plan, reveal) triple
//! drives `VerificationRound::open` and `TrapReveal::open` without panics.
#![no_main]

use idlegrid_entrap::*;
use idlegrid_fuzz::entrap_fixture;
use idlegrid_primitives::{decode, encode};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

const MAX: usize = 1 << 16;

fn check<T: Serialize + DeserializeOwned>(data: &[u8]) -> Option<T> {
    let v = decode::<T>(data, MAX).ok()?;
    assert_eq!(encode(&v), data, "accepted a non-canonical encoding");
    Some(v)
}

fuzz_target!(
    init: idlegrid_fuzz::write_seeds(entrap_fixture::decode_seeds()),
    |data: &[u8]| {
        check::<PublicPlan>(data);
        if let Some(r) = check::<TrapReveal>(data) {
            let _ = r.open(&entrap_fixture::sample_plan().public().clone());
        }
        if let Some(t) = check::<Terms>(data) {
            let _ = t.validate(usize::MAX);
            let _ = t.escrow(1 << 20);
        }
        if let Some(c) = check::<Committee>(data) {
            assert!(!c.is_empty(), "decoded an empty committee");
        }
        check::<RefereeVote>(data);
        check::<RefereeTicket>(data);
        check::<DisputedTrap>(data);
        check::<OpenedTrap>(data);
        check::<TrapSpec>(data);
        check::<Verdict>(data);
        check::<TrapVerdict>(data);
        if let Some(e) = check::<Effect>(data) {
            let _ = (e.draws(), e.burned(), e.is_slash());
        }
        if let Some(effects) = check::<Vec<Effect>>(data) {
            let _ = check_conservation(&Locked::default(), &effects);
        }
        check::<Locked>(data);
        check::<Outcome>(data);
        check::<Bps>(data);
        check::<Deadlines>(data);
        // A whole round opening message: terms + plan + a reveal.
        if let Some((terms, plan, reveal)) = check::<(Terms, PublicPlan, TrapReveal)>(data) {
            let _ = reveal.open(&plan);
            if let Ok(mut round) = VerificationRound::open(idlegrid_primitives::Timestamp::ZERO, terms, plan) {
                round.handle_timeout(idlegrid_primitives::Timestamp::MAX);
                let effects: Vec<Effect> = std::iter::from_fn(|| round.poll_effect()).collect();
                check_conservation(&round.locked(), &effects).expect("conservation");
            }
        }
    }
);
