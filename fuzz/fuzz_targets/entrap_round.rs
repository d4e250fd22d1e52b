//! Stateful: a `VerificationRound` driven by a fuzzer-chosen sequence of
//! steps — bonds, commitments, reveals (honest, corrupted or forged), trap
//! reveals, accusations, accept/dispute, referee votes, timeouts — from
//! fuzzer-chosen parties at fuzzer-chosen times, with fuzzer-chosen terms
//! and plan (including framing traps and cheating providers). Nothing
//! panics; once settled, the settlement conserves every pot
//! (`check_conservation`), pays only the parties (`check_recipients`),
//! slashes only when justified (`check_slash_justified`), and the drained
//! effects equal the settlement.
#![no_main]

use idlegrid_entrap::*;
use idlegrid_fuzz::entrap_fixture::{client, input, plan, provider, referee, run, terms};
use idlegrid_primitives::{AccountId, Amount, Commitment, Digest, Duration, Salt, Timestamp, decode};
use libfuzzer_sys::arbitrary::{Result as AResult, Unstructured};
use libfuzzer_sys::fuzz_target;

const MAX_STEPS: usize = 32;

fn party(u: &mut Unstructured<'_>, want: AccountId) -> AResult<AccountId> {
    Ok(match u.int_in_range(0..=9u8)? {
        0 => client(),
        1 => provider(),
        2 => AccountId::from_bytes([3; 32]),
        _ => want,
    })
}

fn duration(u: &mut Unstructured<'_>) -> AResult<Duration> {
    Ok(match u.int_in_range(0..=5u8)? {
        0 => Duration::ZERO,
        1 => Duration::MAX,
        2 => Duration::from_micros(u.arbitrary()?),
        _ => Duration::from_secs(60),
    })
}

fn amount(u: &mut Unstructured<'_>, usual: u128) -> AResult<Amount> {
    Ok(Amount::new(match u.int_in_range(0..=7u8)? {
        0 => 0,
        1 => u128::MAX,
        2 => u128::MAX / 2,
        3 => u.arbitrary::<u64>()?.into(),
        _ => usual,
    }))
}

fn setup(u: &mut Unstructured<'_>) -> AResult<Option<(VerificationRound, JobPlan)>> {
    let job = JobId::new(u.int_in_range(0..=3)?);
    let n = u.int_in_range(0..=6)?;
    let k = u.int_in_range(0..=4)?;
    let framed = if u.ratio(1, 4)? { u.arbitrary()? } else { 0 };
    let Some(plan) = plan(job, n, k, framed, u.arbitrary()?) else {
        return Ok(None);
    };
    let mut t = terms(job);
    if u.ratio(1, 2)? {
        t.pay_per_subtask = amount(u, 10)?;
        t.client_bond = amount(u, 100)?;
        t.stake = amount(u, 500)?;
        t.slash_to_client = Bps::new(u.int_in_range(0..=10_001)?).unwrap_or(Bps::FULL);
        t.no_show_penalty = Bps::new(u.int_in_range(0..=10_001)?).unwrap_or(Bps::ZERO);
        t.committee_size = u.int_in_range(0..=6)?;
        t.deadlines = Deadlines {
            stake: duration(u)?,
            output_commitment: duration(u)?,
            output_reveal: duration(u)?,
            trap_reveal: duration(u)?,
            accusations: duration(u)?,
            response: duration(u)?,
            votes: duration(u)?,
        };
        if u.ratio(1, 16)? {
            t.provider = client();
        }
    }
    let start = Timestamp::from_micros(u.arbitrary::<u32>()?.into());
    Ok(VerificationRound::open(start, t, plan.public().clone()).ok().map(|r| (r, plan)))
}

fn run_round(data: &[u8]) -> AResult<()> {
    let mut u = Unstructured::new(data);
    let Some((mut round, plan)) = setup(&mut u)? else { return Ok(()) };
    let terms = *round.terms();
    let job = terms.job;
    // The provider's honest outputs, with fuzzer-chosen corruptions.
    let corrupt: u8 = if u.ratio(1, 2)? { u.arbitrary()? } else { 0 };
    let outputs: Vec<Digest> = plan
        .public()
        .slot_inputs
        .iter()
        .enumerate()
        .map(|(i, x)| if corrupt >> (i % 8) & 1 == 1 { input(7_777) } else { run(x) })
        .collect();
    let salt = Salt::from_bytes([5; 32]);
    let mut now = Timestamp::from_micros(u.arbitrary::<u32>()?.into());
    let mut voted = 0u8;
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        now = match u.int_in_range(0..=9u8)? {
            0 => Timestamp::from_micros(now.as_micros().saturating_sub(u.arbitrary::<u16>()?.into())),
            1 => round.poll_timeout().unwrap_or(now),
            2 => Timestamp::MAX,
            _ => now.saturating_add(Duration::from_millis(u.int_in_range(0..=2_000)?)),
        };
        let _ = match u.int_in_range(0..=9u8)? {
            0 => round.bond_stake(now, party(&mut u, provider())?, amount(&mut u, terms.stake.get())?),
            1 => {
                let c = if u.ratio(1, 8)? {
                    decode::<Commitment>(u.bytes(32)?, 32).unwrap_or(output_commitment(job, &[], &salt))
                } else {
                    output_commitment(job, &outputs, &salt)
                };
                round.commit_outputs(now, party(&mut u, provider())?, c)
            }
            2 => {
                let mut o = outputs.clone();
                if u.ratio(1, 8)? {
                    o.pop();
                }
                round.reveal_outputs(now, party(&mut u, provider())?, o, salt)
            }
            3 => {
                let reveal = if u.ratio(1, 8)? {
                    let n = u.int_in_range(0..=300)?;
                    match decode::<TrapReveal>(u.bytes(n)?, 1 << 12) {
                        Ok(r) => r,
                        Err(_) => plan.trap_reveal(vec![input(1)]),
                    }
                } else {
                    plan.trap_reveal(vec![])
                };
                round.reveal_traps(now, party(&mut u, client())?, &reveal)
            }
            4 => {
                let accused: Vec<SubtaskIndex> = if u.ratio(1, 4)? {
                    (0..u.int_in_range(0..=4)?)
                        .map(|_| u.int_in_range(0..=12).map(SubtaskIndex::new))
                        .collect::<AResult<_>>()?
                } else {
                    plan.wrong_traps(round.outputs()).unwrap_or_default()
                };
                round.accuse(now, party(&mut u, client())?, &accused)
            }
            5 => round.accept(now, party(&mut u, provider())?),
            6 => {
                let size = if u.ratio(1, 8)? { u.int_in_range(0..=5)? } else { terms.committee_size };
                let mut members: Vec<_> = (0..size).map(referee).collect();
                if u.ratio(1, 16)? && !members.is_empty() {
                    members[0] = client().node();
                }
                match Committee::from_members(members) {
                    Ok(c) => round.dispute(now, party(&mut u, provider())?, c),
                    Err(e) => Err(e),
                }
            }
            7 | 8 => {
                let who = if u.ratio(1, 8)? { u.int_in_range(0..=7)? } else { voted };
                voted = voted.saturating_add(1);
                let honest = !u.ratio(1, 4)?;
                let outputs: Vec<Digest> = round
                    .disputed()
                    .iter()
                    .map(|d| if honest { run(&d.trap.input) } else { d.provider_output })
                    .collect();
                let from = if u.ratio(1, 16)? { referee(7) } else { referee(who) };
                round.submit_vote(now, from, RefereeVote { referee: referee(who), outputs })
            }
            _ => {
                round.handle_timeout(now);
                Ok(())
            }
        };
        check(&mut round);
    }
    // Let every deadline pass: a round always settles.
    round.handle_timeout(Timestamp::MAX);
    assert_eq!(round.stage(), Stage::Settled, "a round must settle once every deadline passed");
    check(&mut round);
    if std::env::var_os("IDLEGRID_FUZZ_DEBUG").is_some() {
        eprintln!("outcome {:?}", round.outcome());
    }
    Ok(())
}

fn check(round: &mut VerificationRound) {
    let Some(outcome) = round.outcome() else {
        assert_ne!(round.stage(), Stage::Settled);
        return;
    };
    assert_eq!(round.stage(), Stage::Settled);
    assert!(round.poll_timeout().is_none());
    let settlement = round.settlement().to_vec();
    let drained: Vec<Effect> = std::iter::from_fn(|| round.poll_effect()).collect();
    assert!(drained.is_empty() || drained == settlement, "drained effects differ from the settlement");
    if let Err(e) = check_conservation(&round.locked(), &settlement) {
        panic!("conservation broken for {outcome:?}: {e}");
    }
    if let Err(e) = check_recipients(round.terms(), &settlement) {
        panic!("wrong recipients for {outcome:?}: {e}");
    }
    if let Err(e) = check_slash_justified(outcome, &settlement) {
        panic!("unjustified slash for {outcome:?}: {e}");
    }
}

fuzz_target!(
    init: idlegrid_fuzz::write_seeds([
        // Happy path: bond, commit, reveal, traps, accuse (nothing).
        vec![1, 4, 2, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 5, 3, 5, 1, 3, 5, 2, 3, 5, 3, 3, 5, 4, 3],
        // Cheating provider, dispute, votes.
        vec![1, 4, 2, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0, 0, 5, 0, 5, 5, 1, 5, 5, 2, 5, 5, 3, 5, 5, 4, 5, 5, 6, 5, 5, 7, 5, 5, 7, 5, 5, 7, 5],
    ]),
    |data: &[u8]| {
        let _ = run_round(data);
    }
);
