//! Shared fixtures for the integration tests.
#![allow(dead_code)]

use idlegrid_entrap::harness::task;
use idlegrid_entrap::*;
use idlegrid_primitives::{
    AccountId, Amount, Digest, Domain, Duration, Keypair, Salt, Seed, Timestamp,
};

pub const D: Domain = Domain::new("idlegrid/entrap/test");

pub fn input(tag: &str, i: u64) -> Digest {
    Digest::of(D, &(tag, i))
}

pub fn wrong(d: &Digest) -> Digest {
    Digest::of(Domain::new("idlegrid/entrap/test/wrong"), d)
}

pub fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

pub const CLIENT: AccountId = AccountId::from_bytes([1; 32]);
pub const PROVIDER: AccountId = AccountId::from_bytes([2; 32]);
pub const JOB: JobId = JobId::new(9);
pub const DEADLINE_MS: u64 = 1_000;

/// A plan with `n` real subtasks and `k` traps; `framed` traps carry a
/// wrong expected answer.
pub fn plan(n: u64, k: u64, framed: u64, seed: u64) -> JobPlan {
    JobPlan::builder(JOB)
        .real_inputs((0..n).map(|i| input("real", i)).collect())
        .traps(
            (0..k)
                .map(|i| {
                    let x = input("trap", i);
                    let e = if i < framed { wrong(&x) } else { task(&x) };
                    TrapSpec::precomputed(x, e)
                })
                .collect(),
        )
        .seed(Seed::from_u64(seed))
        .build()
        .unwrap()
}

pub fn terms() -> Terms {
    Terms {
        job: JOB,
        client: CLIENT,
        provider: PROVIDER,
        pay_per_subtask: Amount::new(10),
        client_bond: Amount::new(100),
        stake: Amount::new(1_000),
        slash_to_client: Bps::new(6_000).unwrap(),
        no_show_penalty: Bps::new(1_000).unwrap(),
        deadlines: Deadlines::uniform(Duration::from_millis(DEADLINE_MS)),
        committee_size: 3,
    }
}

pub fn referees() -> Vec<Keypair> {
    (0..7)
        .map(|i| Keypair::from_seed(&Seed::from_u64(100 + i)))
        .collect()
}

pub fn committee() -> Committee {
    let r = Digest::of(D, &"beacon");
    let tickets: Vec<RefereeTicket> = referees()
        .iter()
        .map(|k| RefereeTicket::draw(k, &r))
        .collect();
    select_referees(&tickets, &r, 3).unwrap()
}

pub fn honest_outputs(plan: &JobPlan) -> Vec<Digest> {
    plan.public().slot_inputs.iter().map(task).collect()
}

pub const SALT: Salt = Salt::from_bytes([5; 32]);

/// Drives a round up to (and including) the output reveal.
pub fn delivered(plan: &JobPlan, outputs: &[Digest]) -> VerificationRound {
    let mut r = VerificationRound::open(t(0), terms(), plan.public().clone()).unwrap();
    r.bond_stake(t(1), PROVIDER, terms().stake).unwrap();
    r.commit_outputs(t(2), PROVIDER, output_commitment(JOB, outputs, &SALT))
        .unwrap();
    r.reveal_outputs(t(3), PROVIDER, outputs.to_vec(), SALT)
        .unwrap();
    r
}

/// Drives a round to accusations by an honest-or-framing client (who accuses
/// every trap whose output differs from its committed answer).
pub fn accused(plan: &JobPlan, outputs: &[Digest]) -> VerificationRound {
    let mut r = delivered(plan, outputs);
    r.reveal_traps(t(4), CLIENT, &plan.trap_reveal(vec![]))
        .unwrap();
    let wrong = plan.wrong_traps(outputs).unwrap();
    r.accuse(t(5), CLIENT, &wrong[..wrong.len().min(MAX_ACCUSATIONS)])
        .unwrap();
    r
}

/// Disputes and lets every committee member vote with the true task.
pub fn judged(r: &mut VerificationRound) {
    let c = committee();
    r.dispute(t(6), PROVIDER, c.clone()).unwrap();
    let disputed = r.disputed().to_vec();
    for m in c.members() {
        let mut exec = |i: &Digest| Some(task(i));
        r.submit_vote(t(7), *m, referee_vote(*m, &disputed, &mut exec).unwrap())
            .unwrap();
    }
}

pub fn effects(r: &VerificationRound) -> Vec<Effect> {
    r.settlement().to_vec()
}

pub fn slashed(r: &VerificationRound) -> bool {
    r.settlement()
        .iter()
        .any(|e| matches!(e, Effect::SlashStake { burned, .. } if !burned.is_zero()))
        || matches!(
            r.outcome(),
            Some(
                Outcome::Admitted
                    | Outcome::Judged(Verdict::ProviderCheated | Verdict::BothAtFault)
            )
        )
}

pub fn check_all(r: &VerificationRound) {
    let fx = r.settlement();
    check_conservation(&r.locked(), fx).unwrap();
    check_recipients(r.terms(), fx).unwrap();
    check_slash_justified(r.outcome().unwrap(), fx).unwrap();
}
