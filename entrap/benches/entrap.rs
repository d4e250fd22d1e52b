//! Criterion benches: `entrap::<op>/<param>=<value>`.

use criterion::{Criterion, criterion_main};
use idlegrid_entrap::harness::task;
use idlegrid_entrap::*;
use idlegrid_primitives::{AccountId, Amount, Digest, Domain, Duration, Salt, Seed, Timestamp};

const D: Domain = Domain::new("idlegrid/entrap/bench");

fn plan(n: u64, k: u64) -> JobPlan {
    JobPlan::builder(JobId::new(1))
        .real_inputs((0..n).map(|i| Digest::of(D, &i)).collect())
        .traps(
            (0..k)
                .map(|i| {
                    let x = Digest::of(D, &(i, "trap"));
                    TrapSpec::precomputed(x, task(&x))
                })
                .collect(),
        )
        .seed(Seed::from_u64(1))
        .build()
        .expect("valid plan")
}

fn settle_round(plan: &JobPlan, outputs: &[Digest]) -> Vec<Effect> {
    let (client, provider) = (
        AccountId::from_bytes([1; 32]),
        AccountId::from_bytes([2; 32]),
    );
    let terms = Terms {
        job: JobId::new(1),
        client,
        provider,
        pay_per_subtask: Amount::new(10),
        client_bond: Amount::new(100),
        stake: Amount::new(1_000),
        slash_to_client: Bps::new(5_000).unwrap(),
        no_show_penalty: Bps::new(1_000).unwrap(),
        deadlines: Deadlines::uniform(Duration::from_secs(10)),
        committee_size: 3,
    };
    let t = Timestamp::from_millis;
    let mut r = VerificationRound::open(t(0), terms, plan.public().clone()).unwrap();
    r.bond_stake(t(1), provider, terms.stake).unwrap();
    let salt = Salt::from_bytes([3; 32]);
    r.commit_outputs(
        t(2),
        provider,
        output_commitment(JobId::new(1), outputs, &salt),
    )
    .unwrap();
    r.reveal_outputs(t(3), provider, outputs.to_vec(), salt)
        .unwrap();
    r.reveal_traps(t(4), client, &plan.trap_reveal(vec![]))
        .unwrap();
    let wrong = plan.wrong_traps(outputs).unwrap();
    r.accuse(t(5), client, &wrong).unwrap();
    std::iter::from_fn(|| r.poll_effect()).collect()
}

fn benches(c: &mut Criterion) {
    for (n, k) in [(1_000u64, 10u64), (10_000, 30)] {
        c.bench_function(&format!("entrap::plan/subtasks={}", n + k), |b| {
            b.iter(|| plan(n, k))
        });
        let p = plan(n, k);
        let outputs: Vec<Digest> = p.public().slot_inputs.iter().map(task).collect();
        c.bench_function(&format!("entrap::settle/subtasks={}", n + k), |b| {
            b.iter(|| settle_round(&p, &outputs))
        });
    }
    for n in [10u32, 100, 1_000, 10_000] {
        let mut params = Params::new(n, Amount::new(8), Amount::new(10), Amount::new(1_000));
        params.gain_per_corruption = Amount::new(20);
        c.bench_function(&format!("entrap::optimize/n={n}"), |b| {
            b.iter(|| optimize_traps(&params).unwrap())
        });
    }
    let mut cross = Params::new(1_000, Amount::new(8), Amount::new(10), Amount::new(1_000));
    cross.gain_per_corruption = Amount::new(20);
    cross.trap_reliability = 0.9;
    c.bench_function("entrap::optimize_crosscheck/n=1000", |b| {
        b.iter(|| optimize_traps(&cross).unwrap())
    });
}

#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(entrap, super::benches);
}
use group::entrap;
criterion_main!(entrap);
