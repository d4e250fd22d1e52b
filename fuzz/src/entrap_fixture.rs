//! Fixtures for the entrap targets: a deterministic task, parties, plans
//! and terms, plus seed encodings of every wire type.

use std::sync::OnceLock;

use idlegrid_entrap::{
    Bps, Committee, Deadlines, Effect, JobId, JobPlan, RefereeVote, Terms, TrapSpec,
    VerificationRound, output_commitment,
};
use idlegrid_primitives::{
    AccountId, Amount, Digest, Domain, Duration, NodeId, Salt, Seed, Timestamp, encode,
};

const TASK: Domain = Domain::new("idlegrid/fuzz/task");

/// The deterministic task: output digest of an input digest.
pub fn run(input: &Digest) -> Digest {
    Digest::of(TASK, input)
}

/// The i-th distinct input.
pub fn input(i: u64) -> Digest {
    Digest::of(TASK, &("input", i))
}

/// The client.
pub fn client() -> AccountId {
    AccountId::from_bytes([1; 32])
}

/// The provider.
pub fn provider() -> AccountId {
    AccountId::from_bytes([2; 32])
}

/// Referee candidate `i` (never a party).
pub fn referee(i: u8) -> NodeId {
    NodeId::from_bytes([0x10 + i; 32])
}

/// A plan with `n` real subtasks and `k` traps; trap `i` has a wrong
/// (framing) expected answer when bit `i` of `framed` is set.
pub fn plan(job: JobId, n: u64, k: u64, framed: u8, seed: u64) -> Option<JobPlan> {
    JobPlan::builder(job)
        .real_inputs((0..n).map(input).collect())
        .traps(
            (0..k)
                .map(|i| {
                    let x = input(1_000 + i);
                    let expected = if framed >> (i % 8) & 1 == 1 { input(9_999) } else { run(&x) };
                    TrapSpec::precomputed(x, expected)
                })
                .collect(),
        )
        .seed(Seed::from_u64(seed))
        .build()
        .ok()
}

/// Ordinary terms for `job`.
pub fn terms(job: JobId) -> Terms {
    Terms {
        job,
        client: client(),
        provider: provider(),
        pay_per_subtask: Amount::new(10),
        client_bond: Amount::new(100),
        stake: Amount::new(500),
        slash_to_client: Bps::new(5_000).expect("const"),
        no_show_penalty: Bps::new(1_000).expect("const"),
        deadlines: Deadlines::uniform(Duration::from_secs(60)),
        committee_size: 3,
    }
}

/// A fixed 4 + 2 plan for job 1.
pub fn sample_plan() -> &'static JobPlan {
    static P: OnceLock<JobPlan> = OnceLock::new();
    P.get_or_init(|| plan(JobId::new(1), 4, 2, 0, 7).expect("sample plan builds"))
}

/// Canonical encodings of every entrap wire type, from a clean round.
pub fn decode_seeds() -> Vec<Vec<u8>> {
    let p = sample_plan();
    let job = JobId::new(1);
    let t = terms(job);
    let reveal = p.trap_reveal(vec![]);
    let committee = Committee::from_members((0..3).map(referee).collect()).expect("3 referees");
    let vote = RefereeVote { referee: referee(0), outputs: vec![input(5)] };
    let mut round = VerificationRound::open(Timestamp::ZERO, t, p.public().clone()).expect("opens");
    let at = Timestamp::from_millis;
    let outputs: Vec<Digest> = p.public().slot_inputs.iter().map(run).collect();
    let salt = Salt::from_bytes([9; 32]);
    round.bond_stake(at(1), provider(), t.stake).expect("bond");
    round
        .commit_outputs(at(2), provider(), output_commitment(job, &outputs, &salt))
        .expect("commit");
    round.reveal_outputs(at(3), provider(), outputs, salt).expect("reveal");
    round.reveal_traps(at(4), client(), &reveal).expect("traps");
    round.accuse(at(5), client(), &[]).expect("accuse");
    let effects: Vec<Effect> = round.settlement().to_vec();
    vec![
        encode(p.public()),
        encode(&reveal),
        encode(&t),
        encode(&committee),
        encode(&vote),
        encode(&effects),
        encode(&effects[0]),
        encode(&round.locked()),
        encode(&(t, p.public().clone(), reveal)),
    ]
}
