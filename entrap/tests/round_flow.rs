//! The round's paths, its bad inputs and its timeouts, on hand-built inputs.

mod common;

use common::*;
use idlegrid_entrap::harness::task;
use idlegrid_entrap::*;
use idlegrid_primitives::{Amount, Digest, Keypair, Salt, Seed, Timestamp};

#[test]
fn honest_round_settles_clean() {
    let p = plan(30, 3, 0, 1);
    let out = honest_outputs(&p);
    let r = accused(&p, &out);
    assert_eq!(r.outcome(), Some(Outcome::Clean));
    assert!(effects(&r).contains(&Effect::PayProvider {
        job: JOB,
        provider: PROVIDER,
        amount: Amount::new(330)
    }));
    assert!(!slashed(&r));
    check_all(&r);
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn cheater_admits_or_loses_the_dispute() {
    let p = plan(30, 3, 0, 2);
    let mut out = honest_outputs(&p);
    let trap = p.trap_positions()[1];
    out[trap.as_usize()] = wrong(&out[trap.as_usize()]);

    let mut admitted = accused(&p, &out);
    assert_eq!(admitted.stage(), Stage::AwaitingResponse);
    admitted.accept(t(6), PROVIDER).unwrap();
    assert_eq!(admitted.outcome(), Some(Outcome::Admitted));

    let mut disputed = accused(&p, &out);
    judged(&mut disputed);
    assert_eq!(
        disputed.outcome(),
        Some(Outcome::Judged(Verdict::ProviderCheated))
    );
    for r in [&admitted, &disputed] {
        check_all(r);
        assert!(effects(r).contains(&Effect::SlashStake {
            job: JOB,
            provider: PROVIDER,
            client: CLIENT,
            to_client: Amount::new(600),
            burned: Amount::new(400),
        }));
        assert!(effects(r).contains(&Effect::RefundClient {
            job: JOB,
            client: CLIENT,
            amount: Amount::new(330)
        }));
    }
}

#[test]
fn framing_client_loses_its_bond() {
    let p = plan(30, 3, 1, 3);
    let out = honest_outputs(&p);
    let mut r = accused(&p, &out);
    judged(&mut r);
    assert_eq!(r.outcome(), Some(Outcome::Judged(Verdict::ClientFramed)));
    assert!(effects(&r).contains(&Effect::ForfeitClientBond {
        job: JOB,
        client: CLIENT,
        provider: PROVIDER,
        amount: Amount::new(100)
    }));
    assert!(!slashed(&r));
    check_all(&r);
}

#[test]
fn silent_referees_leave_the_dispute_unproven() {
    let p = plan(10, 2, 0, 4);
    let mut out = honest_outputs(&p);
    out[p.trap_positions()[0].as_usize()] = wrong(&out[0]);
    let mut r = accused(&p, &out);
    r.dispute(t(6), PROVIDER, committee()).unwrap();
    let deadline = r.poll_timeout().unwrap();
    r.handle_timeout(Timestamp::from_micros(deadline.as_micros() - 1));
    assert_eq!(
        r.stage(),
        Stage::AwaitingVotes,
        "early timeout does nothing"
    );
    r.handle_timeout(deadline);
    assert_eq!(r.outcome(), Some(Outcome::Judged(Verdict::NotProven)));
    check_all(&r);
}

#[test]
fn every_stage_timeout_settles_as_documented() {
    let p = plan(10, 2, 0, 5);
    let out = honest_outputs(&p);
    let mut bad = out.clone();
    bad[p.trap_positions()[0].as_usize()] = wrong(&bad[0]);
    let expect = |r: &mut VerificationRound, outcome: Outcome| {
        let d = r.poll_timeout().unwrap();
        r.handle_timeout(d);
        assert_eq!(r.outcome(), Some(outcome));
        check_all(r);
    };
    let mut r = VerificationRound::open(t(0), terms(), p.public().clone()).unwrap();
    expect(&mut r, Outcome::ProviderNoShow);
    assert_eq!(r.locked().stake, Amount::ZERO);

    let mut r = VerificationRound::open(t(0), terms(), p.public().clone()).unwrap();
    r.bond_stake(t(1), PROVIDER, terms().stake).unwrap();
    expect(&mut r, Outcome::ProviderDefaulted);
    assert!(effects(&r).contains(&Effect::ReturnStake {
        job: JOB,
        provider: PROVIDER,
        amount: Amount::new(900)
    }));

    let mut r = VerificationRound::open(t(0), terms(), p.public().clone()).unwrap();
    r.bond_stake(t(1), PROVIDER, terms().stake).unwrap();
    r.commit_outputs(t(2), PROVIDER, output_commitment(JOB, &out, &SALT))
        .unwrap();
    expect(&mut r, Outcome::ProviderDefaulted);

    let mut r = delivered(&p, &out);
    expect(&mut r, Outcome::ClientAbandoned);

    let mut r = delivered(&p, &out);
    r.reveal_traps(t(4), CLIENT, &p.trap_reveal(vec![]))
        .unwrap();
    expect(&mut r, Outcome::Clean);

    let mut r = accused(&p, &bad);
    expect(&mut r, Outcome::Admitted);
}

#[test]
fn out_of_order_steps_are_typed_errors() {
    let p = plan(10, 2, 0, 6);
    let out = honest_outputs(&p);
    let mut r = VerificationRound::open(t(0), terms(), p.public().clone()).unwrap();
    let c = output_commitment(JOB, &out, &SALT);
    assert!(matches!(
        r.commit_outputs(t(1), PROVIDER, c),
        Err(EntrapError::WrongStage { .. })
    ));
    assert!(matches!(
        r.reveal_traps(t(1), CLIENT, &p.trap_reveal(vec![])),
        Err(EntrapError::WrongStage { .. })
    ));
    assert!(matches!(
        r.accept(t(1), PROVIDER),
        Err(EntrapError::WrongStage { .. })
    ));
    assert_eq!(
        r.bond_stake(t(1), CLIENT, terms().stake),
        Err(EntrapError::NotAuthorized { role: "provider" })
    );
    assert!(matches!(
        r.bond_stake(t(1), PROVIDER, Amount::new(1)),
        Err(EntrapError::WrongStake { .. })
    ));
    r.bond_stake(t(5), PROVIDER, terms().stake).unwrap();
    assert!(matches!(
        r.commit_outputs(t(4), PROVIDER, c),
        Err(EntrapError::TimeWentBackwards { .. })
    ));
    assert!(matches!(
        r.bond_stake(t(6), PROVIDER, terms().stake),
        Err(EntrapError::WrongStage { .. })
    ));
    // Late: at the deadline the step is refused, the timeout applies.
    let late = r.poll_timeout().unwrap();
    assert!(matches!(
        r.commit_outputs(late, PROVIDER, c),
        Err(EntrapError::DeadlinePassed { .. })
    ));
    r.handle_timeout(late);
    assert_eq!(
        r.commit_outputs(late, PROVIDER, c),
        Err(EntrapError::AlreadySettled)
    );
}

#[test]
fn bad_reveals_are_rejected_and_the_round_still_settles() {
    let p = plan(10, 2, 0, 7);
    let out = honest_outputs(&p);
    let mut r = VerificationRound::open(t(0), terms(), p.public().clone()).unwrap();
    r.bond_stake(t(1), PROVIDER, terms().stake).unwrap();
    r.commit_outputs(t(2), PROVIDER, output_commitment(JOB, &out, &SALT))
        .unwrap();
    // Missing, extra, altered results; wrong salt.
    assert!(matches!(
        r.reveal_outputs(t(3), PROVIDER, out[1..].to_vec(), SALT),
        Err(EntrapError::WrongResultCount { .. })
    ));
    let mut extra = out.clone();
    extra.push(out[0]);
    assert!(matches!(
        r.reveal_outputs(t(3), PROVIDER, extra, SALT),
        Err(EntrapError::WrongResultCount { .. })
    ));
    let mut altered = out.clone();
    altered[3] = wrong(&altered[3]);
    assert_eq!(
        r.reveal_outputs(t(3), PROVIDER, altered, SALT),
        Err(EntrapError::CommitmentMismatch { what: "outputs" })
    );
    assert!(
        r.reveal_outputs(t(3), PROVIDER, out.clone(), Salt::from_bytes([6; 32]))
            .is_err()
    );
    r.reveal_outputs(t(3), PROVIDER, out.clone(), SALT).unwrap();
    // A duplicate reveal is out of order.
    assert!(matches!(
        r.reveal_outputs(t(3), PROVIDER, out.clone(), SALT),
        Err(EntrapError::WrongStage { .. })
    ));
    // A trap reveal that does not open the plan commitment.
    let mut tampered = p.trap_reveal(vec![]);
    tampered.salt = Salt::from_bytes([0; 32]);
    assert!(matches!(
        r.reveal_traps(t(4), CLIENT, &tampered),
        Err(EntrapError::CommitmentMismatch { .. })
    ));
    r.reveal_traps(t(4), CLIENT, &p.trap_reveal(vec![]))
        .unwrap();
    // Accusations about non-traps, out of range, duplicates, correct answers.
    let real = (0..12u32)
        .map(SubtaskIndex::new)
        .find(|i| !p.is_trap(*i))
        .unwrap();
    let trap = p.trap_positions()[0];
    assert_eq!(
        r.accuse(t(5), CLIENT, &[real]),
        Err(EntrapError::NotATrap(real))
    );
    assert!(matches!(
        r.accuse(t(5), CLIENT, &[SubtaskIndex::new(99)]),
        Err(EntrapError::OutOfRange { .. })
    ));
    assert_eq!(
        r.accuse(t(5), CLIENT, &[trap]),
        Err(EntrapError::NothingToAccuse(trap))
    );
    assert!(matches!(
        r.accuse(t(5), PROVIDER, &[]),
        Err(EntrapError::NotAuthorized { .. })
    ));
    let d = r.poll_timeout().unwrap();
    r.handle_timeout(d);
    assert_eq!(r.outcome(), Some(Outcome::Clean));
    check_all(&r);
}

#[test]
fn dispute_errors_late_disputes_and_foreign_referees() {
    let p = plan(10, 2, 0, 8);
    let mut out = honest_outputs(&p);
    let trap = p.trap_positions()[0];
    out[trap.as_usize()] = wrong(&out[trap.as_usize()]);
    let r0 = accused(&p, &out);
    assert!(matches!(
        r0.clone().accuse(t(6), CLIENT, &[trap, trap]),
        Err(EntrapError::WrongStage { .. })
    ));

    // Duplicate accusations are rejected before the accusation stage ends.
    let mut r = delivered(&p, &out);
    r.reveal_traps(t(4), CLIENT, &p.trap_reveal(vec![]))
        .unwrap();
    assert_eq!(
        r.accuse(t(5), CLIENT, &[trap, trap]),
        Err(EntrapError::Duplicate(trap))
    );

    // A dispute after the window.
    let mut r = r0.clone();
    let late = r.poll_timeout().unwrap();
    assert!(matches!(
        r.dispute(late, PROVIDER, committee()),
        Err(EntrapError::DeadlinePassed { .. })
    ));
    r.handle_timeout(late);
    assert_eq!(r.outcome(), Some(Outcome::Admitted));

    // Conflicted and wrongly sized committees.
    let mut r = r0.clone();
    let conflicted = Committee::from_members(vec![
        PROVIDER.node(),
        referees()[0].node_id(),
        referees()[1].node_id(),
    ])
    .unwrap();
    assert_eq!(
        r.dispute(t(6), PROVIDER, conflicted),
        Err(EntrapError::ConflictedReferee)
    );
    let small = Committee::from_members(vec![referees()[0].node_id()]).unwrap();
    assert!(r.dispute(t(6), PROVIDER, small).is_err());

    // Votes from outside the committee, duplicates, wrong length.
    let c = committee();
    r.dispute(t(6), PROVIDER, c.clone()).unwrap();
    let outsider = Keypair::from_seed(&Seed::from_u64(999)).node_id();
    let ok = |who| RefereeVote {
        referee: who,
        outputs: vec![task(&p.public().slot_inputs[trap.as_usize()])],
    };
    assert_eq!(
        r.submit_vote(t(7), outsider, ok(outsider)),
        Err(EntrapError::NotOnCommittee)
    );
    assert!(matches!(
        r.submit_vote(t(7), outsider, ok(c.members()[0])),
        Err(EntrapError::NotAuthorized { .. })
    ));
    r.submit_vote(t(7), c.members()[0], ok(c.members()[0]))
        .unwrap();
    assert_eq!(
        r.submit_vote(t(7), c.members()[0], ok(c.members()[0])),
        Err(EntrapError::DuplicateVote)
    );
    let short = RefereeVote {
        referee: c.members()[1],
        outputs: vec![],
    };
    assert!(matches!(
        r.submit_vote(t(7), c.members()[1], short),
        Err(EntrapError::WrongResultCount { .. })
    ));
    r.submit_vote(t(7), c.members()[1], ok(c.members()[1]))
        .unwrap();
    // Two of three agree with the client; the third never votes.
    let d = r.poll_timeout().unwrap();
    r.handle_timeout(d);
    assert_eq!(r.outcome(), Some(Outcome::Judged(Verdict::ProviderCheated)));
    check_all(&r);
}

#[test]
fn cross_check_mismatch_never_blames_the_client() {
    let partner = idlegrid_primitives::AccountId::from_bytes([7; 32]);
    let x = input("cross", 0);
    let plan = JobPlan::builder(JOB)
        .real_inputs((0..5).map(|i| input("real", i)).collect())
        .traps(vec![TrapSpec {
            input: x,
            source: TrapSource::CrossCheck { partner },
        }])
        .seed(Seed::from_u64(1))
        .build()
        .unwrap();
    let out = honest_outputs(&plan);
    let mut r = delivered(&plan, &out);
    // The partner cheated; its output is the "expected" answer.
    let reveal = plan.trap_reveal(vec![wrong(&task(&x))]);
    assert!(
        r.clone()
            .reveal_traps(t(4), CLIENT, &plan.trap_reveal(vec![]))
            .is_err()
    );
    r.reveal_traps(t(4), CLIENT, &reveal).unwrap();
    r.accuse(t(5), CLIENT, &[plan.trap_positions()[0]]).unwrap();
    judged(&mut r);
    assert_eq!(r.outcome(), Some(Outcome::Judged(Verdict::NotProven)));
    assert!(!slashed(&r));
    check_all(&r);
}

#[test]
fn bad_terms_are_errors() {
    let p = plan(10, 2, 0, 9);
    let mut bad = terms();
    bad.provider = CLIENT;
    assert!(VerificationRound::open(t(0), bad, p.public().clone()).is_err());
    let mut bad = terms();
    bad.committee_size = 0;
    assert!(VerificationRound::open(t(0), bad, p.public().clone()).is_err());
    let mut bad = terms();
    bad.pay_per_subtask = Amount::MAX;
    assert!(matches!(
        VerificationRound::open(t(0), bad, p.public().clone()),
        Err(EntrapError::Amount(_))
    ));
    let mut bad = terms();
    bad.job = JobId::new(1);
    assert!(VerificationRound::open(t(0), bad, p.public().clone()).is_err());
    let _ = Digest::default();
}

#[test]
fn decoding_validates_and_round_trips() {
    use idlegrid_primitives::{decode, encode};
    // A share above 100 % and an empty committee do not decode.
    assert!(decode::<Bps>(&encode(&10_001u16), 16).is_err());
    assert_eq!(
        decode::<Bps>(&encode(&2_500u16), 16),
        Ok(Bps::new(2_500).unwrap())
    );
    assert!(decode::<Committee>(&encode(&Vec::<idlegrid_primitives::NodeId>::new()), 64).is_err());
    let c = committee();
    assert_eq!(decode::<Committee>(&encode(&c), 1024), Ok(c));
    // Plans and reveals round-trip canonically.
    let p = plan(20, 3, 0, 11);
    let bytes = encode(p.public());
    assert_eq!(&decode::<PublicPlan>(&bytes, 1 << 20).unwrap(), p.public());
    let reveal = p.trap_reveal(vec![]);
    assert_eq!(
        decode::<TrapReveal>(&encode(&reveal), 1 << 20).unwrap(),
        reveal
    );
    assert!(decode::<PublicPlan>(&bytes[..bytes.len() - 1], 1 << 20).is_err());
}

#[test]
fn optimizer_helpers_never_panic_on_wild_input() {
    use idlegrid_entrap::optimizer::*;
    assert_eq!(detection_probability(u32::MAX, u32::MAX, 3), 1.0);
    assert!(detection_with_reliability(10, 20, 30, f64::NAN).is_finite());
    let mut p = Params::new(u32::MAX, Amount::new(1), Amount::new(2), Amount::MAX);
    p.max_traps = u32::MAX;
    assert!(optimize_traps(&p).is_err());
    let _ = deters(&p, u32::MAX);
    let _ = assures(&p, u32::MAX);
}

#[test]
fn an_undecided_committee_escalates_to_a_larger_one() {
    let p = plan(10, 2, 0, 6);
    let mut out = honest_outputs(&p);
    out[p.trap_positions()[0].as_usize()] = wrong(&out[0]);
    let mut r = accused(&p, &out);
    let small = committee();
    r.dispute(t(6), PROVIDER, small.clone()).unwrap();
    let disputed = r.disputed().to_vec();
    let mut exec = |i: &Digest| Some(task(i));
    let first = small.members()[0];
    r.submit_vote(
        t(7),
        first,
        referee_vote(first, &disputed, &mut exec).unwrap(),
    )
    .unwrap();
    assert!(!r.decided(), "one vote of three decides nothing");
    // Not to a committee of the same size, nor one holding a party.
    assert!(r.escalate(t(8), small.clone()).is_err());
    let deadline = r.poll_timeout().unwrap();
    let all: Vec<_> = referees().iter().map(Keypair::node_id).collect();
    let larger = Committee::from_members(all[..5].to_vec()).unwrap();
    r.escalate(deadline, larger.clone()).unwrap();
    assert_eq!(r.stage(), Stage::AwaitingVotes);
    assert!(r.votes().is_empty(), "a fresh committee votes afresh");
    assert!(r.poll_timeout().unwrap() > deadline);
    let later = Timestamp::from_micros(deadline.as_micros() + 1_000);
    for m in &larger.members()[..3] {
        r.submit_vote(later, *m, referee_vote(*m, &disputed, &mut exec).unwrap())
            .unwrap();
    }
    assert!(r.decided(), "three of five decide");
    assert!(
        r.escalate(later, committee()).is_err(),
        "decided: no escalation"
    );
    r.handle_timeout(r.poll_timeout().unwrap());
    assert_eq!(r.outcome(), Some(Outcome::Judged(Verdict::ProviderCheated)));
    check_all(&r);
}
