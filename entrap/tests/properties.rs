//! Property tests: conservation on every path, honest providers never
//! slashed, cheaters caught when a wrong trap is checked, framers lose.

mod common;

use common::*;
use idlegrid_entrap::harness::task;
use idlegrid_entrap::*;
use idlegrid_primitives::{Amount, Digest, Timestamp};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Pure settlement empties every pot exactly, for any outcome.
    #[test]
    fn settlement_conserves_on_every_outcome(
        terms in strategies::terms(), locked in strategies::locked(), outcome in strategies::outcome()
    ) {
        let fx = settle(&terms, &locked, outcome).unwrap();
        prop_assert!(check_conservation(&locked, &fx).is_ok());
        prop_assert!(check_recipients(&terms, &fx).is_ok());
        prop_assert!(check_slash_justified(outcome, &fx).is_ok());
        let burned: u128 = fx.iter().map(|e| e.burned().get()).sum();
        prop_assert!(burned <= locked.total().unwrap().get());
    }

    /// Random drivers: any interleaving of (possibly invalid) steps and
    /// timeouts ends settled, with conserving effects; failed steps change
    /// nothing.
    #[test]
    fn random_drivers_always_settle_and_conserve(
        n in 1u64..20, k in 0u64..4, framed in 0u64..2, corrupt in proptest::collection::vec(any::<bool>(), 24),
        actions in proptest::collection::vec((0u8..10, 0u64..1_500), 0..14), seed in any::<u64>(),
    ) {
        let p = plan(n, k, framed.min(k), seed);
        let mut out = honest_outputs(&p);
        for (i, o) in out.iter_mut().enumerate() {
            if corrupt[i % corrupt.len()] { *o = wrong(o); }
        }
        let mut r = VerificationRound::open(t(0), terms(), p.public().clone()).unwrap();
        let mut now = 0;
        for (action, dt) in actions {
            now += dt;
            let before = r.stage();
            let res = match action {
                0 => r.bond_stake(t(now), PROVIDER, terms().stake),
                1 => r.commit_outputs(t(now), PROVIDER, output_commitment(JOB, &out, &SALT)),
                2 => r.reveal_outputs(t(now), PROVIDER, out.clone(), SALT),
                3 => r.reveal_traps(t(now), CLIENT, &p.trap_reveal(vec![])),
                4 => r.accuse(t(now), CLIENT, &p.wrong_traps(&out).unwrap()),
                5 => r.accept(t(now), PROVIDER),
                6 => r.dispute(t(now), PROVIDER, committee()),
                7 => {
                    let d = r.disputed().to_vec();
                    let m = committee().members()[(now % 3) as usize];
                    let mut exec = |i: &Digest| Some(task(i));
                    r.submit_vote(t(now), m, referee_vote(m, &d, &mut exec).unwrap())
                }
                8 => { r.handle_timeout(t(now)); Ok(()) }
                _ => r.reveal_outputs(t(now), PROVIDER, out[1..].to_vec(), SALT),
            };
            if res.is_err() { prop_assert_eq!(r.stage(), before); }
        }
        // One timeout per remaining stage settles any round.
        for _ in 0..7 { r.handle_timeout(Timestamp::MAX); }
        prop_assert_eq!(r.stage(), Stage::Settled);
        check_all(&r);
        // Honest provider and honest client: never slashed, whatever the
        // order of (possibly invalid) steps and timeouts.
        let honest = out == honest_outputs(&p);
        if honest && framed == 0 { prop_assert!(!slashed(&r)); }
    }

    /// With an honest client, an honest provider is never slashed, on any
    /// path through the protocol it can be led down.
    #[test]
    fn honest_provider_never_slashed(n in 1u64..40, k in 0u64..6, seed in any::<u64>(), dispute in any::<bool>()) {
        let p = plan(n, k, 0, seed);
        let out = honest_outputs(&p);
        let mut r = accused(&p, &out);
        if r.stage() == Stage::AwaitingResponse {
            if dispute { judged(&mut r) } else { r.handle_timeout(Timestamp::MAX) }
        }
        prop_assert_eq!(r.outcome(), Some(Outcome::Clean));
        prop_assert!(!slashed(&r));
        check_all(&r);
    }

    /// A provider that answers any trap wrongly is caught when the client
    /// checks: slashed whether it accepts, disputes or stays silent.
    #[test]
    fn wrong_trap_answer_is_caught(
        n in 1u64..40, k in 1u64..6, seed in any::<u64>(), which in any::<prop::sample::Index>(),
        extra in proptest::collection::vec(any::<bool>(), 45), response in 0u8..3,
    ) {
        let p = plan(n, k, 0, seed);
        let mut out = honest_outputs(&p);
        let trap = p.trap_positions()[which.index(k as usize)];
        out[trap.as_usize()] = wrong(&out[trap.as_usize()]);
        for (i, o) in out.iter_mut().enumerate() { if extra[i] { *o = wrong(o); } }
        let mut r = accused(&p, &out);
        match response {
            0 => r.accept(t(6), PROVIDER).unwrap(),
            1 => judged(&mut r),
            _ => r.handle_timeout(Timestamp::MAX),
        }
        prop_assert!(slashed(&r));
        let refunded = r.settlement().iter().any(|e| matches!(e, Effect::RefundClient { .. }));
        prop_assert!(refunded);
        check_all(&r);
    }

    /// A client that planted a wrong answer loses its bond to the provider
    /// whenever the provider disputes.
    #[test]
    fn framing_client_loses_bond_when_disputed(n in 1u64..40, k in 1u64..6, framed in 1u64..6, seed in any::<u64>()) {
        let framed = framed.min(k);
        let p = plan(n, k, framed, seed);
        let out = honest_outputs(&p);
        let mut r = accused(&p, &out);
        judged(&mut r);
        prop_assert_eq!(r.outcome(), Some(Outcome::Judged(Verdict::ClientFramed)));
        let bond = terms().client_bond;
        let forfeit = Effect::ForfeitClientBond { job: JOB, client: CLIENT, provider: PROVIDER, amount: bond };
        prop_assert!(r.settlement().contains(&forfeit));
        prop_assert!(!slashed(&r));
        check_all(&r);
    }

    /// Merging real outputs restores the client's order; plans are seeded.
    #[test]
    fn plan_round_trips(n in 1u64..60, k in 0u64..10, seed in any::<u64>()) {
        let p = plan(n, k, 0, seed);
        prop_assert_eq!(p.trap_count().get() as u64, k);
        let real = p.real_outputs(&honest_outputs(&p)).unwrap();
        let want: Vec<Digest> = (0..n).map(|i| task(&input("real", i))).collect();
        prop_assert_eq!(real, want);
        let again = plan(n, k, 0, seed);
        prop_assert_eq!(again.public(), p.public());
        prop_assert!(p.trap_reveal(vec![]).open(p.public()).is_ok());
        let _ = Amount::ZERO;
    }
}
