//! `wasm_referee`: a disputed trap settled by deterministic re-execution on
//! [`WasmExecutor`].
//!
//! Two cases on the same ledger application ([`crate::jobs_app`]):
//!
//! - **framing client** — the client commits a wrong expected output for one
//!   trap and accuses an honest provider of answering it wrongly. The
//!   provider disputes; a committee of three is drawn by VRF sortition over
//!   the ledger beacon from five candidates; each referee re-executes only
//!   the disputed trap on its own `WasmExecutor` (same module, same input,
//!   same output and fuel on every machine) and votes. Verdict
//!   `ClientFramed`: the client's bond goes to the provider, the provider is
//!   paid and keeps its stake.
//! - **cheating provider** — the provider guesses a trap's output and
//!   disputes the (correct) accusation anyway. The referees' re-execution
//!   agrees with the client: `ProviderCheated`, the stake is slashed.

use std::collections::BTreeMap;
use std::error::Error;

use idlegrid_dag_ledger::ledger::check_supply;
use idlegrid_entrap::{
    Bps, Deadlines, Effect, JobId, JobPlan, Outcome, RefereeTicket, Terms, TrapSpec, Verdict,
    dispute_randomness, output_commitment, referee_vote,
};
use idlegrid_executor::{WasmExecutor, output_digest};
use idlegrid_primitives::{AccountId, Amount, Digest, Duration, Epoch, Keypair, Salt, Seed};

use crate::common::{INPUT_DOMAIN, input_digest, run_fnv, short};
use crate::jobs_app::JobTx;
use crate::local::LocalLedger;
use crate::quickstart::{describe, short_acc};

/// Options of the example.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Root seed.
    pub seed: u64,
    /// Referee candidates (at least 3).
    pub candidates: usize,
    /// Print each step.
    pub verbose: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seed: 7,
            candidates: 5,
            verbose: true,
        }
    }
}

/// One dispute's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseReport {
    /// The case name.
    pub name: &'static str,
    /// The committee's verdict.
    pub verdict: Verdict,
    /// Seats drawn by VRF sortition (referee indices among the candidates).
    pub committee: Vec<usize>,
    /// Each referee's re-executed output digest for the disputed trap.
    pub referee_outputs: Vec<Digest>,
    /// Fuel each re-execution burned (identical on every referee).
    pub fuel: Vec<u64>,
    /// Client holdings change (signed).
    pub client_delta: i128,
    /// Provider holdings change (signed).
    pub provider_delta: i128,
    /// Tokens burned in this case.
    pub burned: Amount,
    /// Supply conserved (`initial − burned`).
    pub supply_conserved: bool,
}

/// Both cases.
#[derive(Clone, Debug)]
pub struct Report {
    /// The framing client.
    pub framing: CaseReport,
    /// The cheating provider.
    pub cheating: CaseReport,
}

const STAKE: Amount = Amount::new(4_000);
const BOND: Amount = Amount::new(1_000);
const PAY: Amount = Amount::new(20);

/// Runs both cases.
pub fn run(opts: Options) -> Result<Report, Box<dyn Error>> {
    if opts.candidates < 3 {
        return Err("need at least 3 referee candidates".into());
    }
    let framing = run_case(&opts, "framing client", true)?;
    let cheating = run_case(&opts, "cheating provider", false)?;
    Ok(Report { framing, cheating })
}

macro_rules! say {
    ($o:expr, $($t:tt)*) => { if $o.verbose { println!($($t)*); } };
}

fn run_case(
    opts: &Options,
    name: &'static str,
    framing: bool,
) -> Result<CaseReport, Box<dyn Error>> {
    say!(opts, "\n######## case: {name}");
    let root = Seed::from_u64(opts.seed).derive(name);
    let client = Keypair::from_seed(&root.derive("client"));
    let provider = Keypair::from_seed(&root.derive("provider"));
    let referees: Vec<Keypair> = (0..opts.candidates)
        .map(|i| Keypair::from_seed(&root.derive_indexed("referee", i as u64)))
        .collect();
    let exec = WasmExecutor::default();
    let mut balances = vec![
        (client.account_id(), Amount::new(100_000)),
        (provider.account_id(), Amount::new(100_000)),
    ];
    for r in &referees {
        balances.push((r.account_id(), Amount::new(10_000)));
    }
    let stakes = vec![
        (client.account_id(), Amount::new(5_000)),
        (provider.account_id(), Amount::new(10_000)),
    ];
    let beacon = Digest::hash(INPUT_DOMAIN, name.as_bytes());
    let mut chain = LocalLedger::new(balances, stakes, beacon)?;
    let initial = chain.ledger.total_supply();
    let (c0, p0) = (
        chain.holdings(&client.account_id()),
        chain.holdings(&provider.account_id()),
    );

    // Plan: 4 real subtasks, 2 traps; in the framing case trap 0's committed
    // answer is wrong.
    let job = JobId::new(42);
    let mut bytes_of = BTreeMap::new();
    let mut real = Vec::new();
    for i in 0..4 {
        let x = format!("genome window {i:03}").into_bytes();
        real.push(input_digest(&x));
        bytes_of.insert(input_digest(&x), x);
    }
    let mut traps = Vec::new();
    for j in 0..2 {
        let x = format!("genome window {:03}", 900 + j).into_bytes();
        let mut expected = run_fnv(&exec, &x)?.output_digest;
        if framing && j == 0 {
            expected = output_digest(b"not what the program outputs");
            say!(
                opts,
                "== plan: the client commits a WRONG expected output for one trap (framing)"
            );
        }
        traps.push(TrapSpec::precomputed(input_digest(&x), expected));
        bytes_of.insert(input_digest(&x), x);
    }
    let plan = JobPlan::builder(job)
        .real_inputs(real)
        .traps(traps)
        .seed(root.derive("plan"))
        .build()?;
    let terms = Terms {
        job,
        client: client.account_id(),
        provider: provider.account_id(),
        pay_per_subtask: PAY,
        client_bond: BOND,
        stake: STAKE,
        slash_to_client: Bps::new(5_000)?,
        no_show_penalty: Bps::new(1_000)?,
        deadlines: Deadlines::uniform(Duration::from_secs(60)),
        committee_size: 3,
    };
    let deadline = Epoch::new(chain.epoch().get() + 100);
    chain.commit_jobs(vec![(
        &client,
        JobTx::Open {
            terms,
            plan: plan.public().clone(),
            escrow_deadline: deadline,
        },
    )])?;
    chain.commit_jobs(vec![(&provider, JobTx::BondStake { job })])?;
    say!(
        opts,
        "== escrow {} for {} subtasks, client bond {BOND}, provider stake {STAKE}",
        terms.escrow(plan.public().slots())?,
        plan.public().slots()
    );

    // Execution: honest, except that the cheating provider guesses the
    // first trap's output.
    let cheat_at = plan.trap_positions()[0].as_usize();
    let mut outputs = Vec::new();
    for (i, d) in plan.public().slot_inputs.iter().enumerate() {
        let out = if !framing && i == cheat_at {
            say!(
                opts,
                "== execution: the provider guesses subtask #{i} instead of running it"
            );
            output_digest(b"a guess")
        } else {
            run_fnv(&exec, &bytes_of[d])?.output_digest
        };
        outputs.push(out);
    }
    let salt = Salt::random(&mut root.derive("salt").rng());
    chain.commit_jobs(vec![(
        &provider,
        JobTx::CommitOutputs {
            job,
            commitment: output_commitment(job, &outputs, &salt),
        },
    )])?;
    chain.commit_jobs(vec![(
        &provider,
        JobTx::RevealOutputs {
            job,
            outputs: outputs.clone(),
            salt,
        },
    )])?;
    chain.commit_jobs(vec![(
        &client,
        JobTx::RevealTraps {
            job,
            provider: provider.account_id(),
            reveal: plan.trap_reveal(vec![]),
        },
    )])?;
    let wrong = plan.wrong_traps(&outputs)?;
    say!(
        opts,
        "== trap reveal: the client finds {} wrong trap answer(s) at {wrong:?} and accuses",
        wrong.len()
    );
    chain.commit_jobs(vec![(
        &client,
        JobTx::Accuse {
            job,
            provider: provider.account_id(),
            traps: wrong,
        },
    )])?;

    // Dispute: every candidate draws a VRF ticket on the dispute randomness.
    let randomness = dispute_randomness(&chain.app().beacon, job);
    let tickets: Vec<RefereeTicket> = referees
        .iter()
        .map(|r| RefereeTicket::draw(r, &randomness))
        .collect();
    chain.commit_jobs(vec![(&provider, JobTx::Dispute { job, tickets })])?;
    let round = chain
        .app()
        .round(job, &provider.account_id())
        .ok_or("no round")?;
    let committee = round.committee().ok_or("no committee")?.clone();
    let seats: Vec<usize> = committee
        .members()
        .iter()
        .map(|n| {
            referees
                .iter()
                .position(|r| r.node_id() == *n)
                .expect("candidate")
        })
        .collect();
    say!(
        opts,
        "== dispute: the provider disputes; VRF sortition seats referees {seats:?} of {}",
        referees.len()
    );
    let disputed = round.disputed().to_vec();

    // Each referee re-executes the disputed trap on its own WasmExecutor.
    let mut votes = Vec::new();
    let mut referee_outputs = Vec::new();
    let mut fuel = Vec::new();
    for &s in &seats {
        let own = WasmExecutor::default();
        let mut reexec = |input: &Digest| -> Option<Digest> {
            let run = run_fnv(&own, bytes_of.get(input)?).ok()?;
            fuel.push(run.usage.fuel);
            Some(run.output_digest)
        };
        let vote = referee_vote(referees[s].node_id(), &disputed, &mut reexec)
            .ok_or("referee could not re-execute")?;
        say!(
            opts,
            "   referee {s} re-executed trap {}: output {} (expected {}, provider {})",
            disputed[0].trap.index,
            short(&vote.outputs[0]),
            short(&disputed[0].trap.expected),
            short(&disputed[0].provider_output)
        );
        referee_outputs.push(vote.outputs[0]);
        votes.push((
            &referees[s],
            JobTx::Vote {
                job,
                provider: provider.account_id(),
                vote,
            },
        ));
    }
    chain.commit_jobs(votes)?;
    let round = chain
        .app()
        .round(job, &provider.account_id())
        .ok_or("no round")?;
    let Some(Outcome::Judged(verdict)) = round.outcome() else {
        return Err(format!("expected a judged round, got {:?}", round.outcome()).into());
    };
    say!(opts, "== verdict: {verdict:?}");
    for e in &chain.app().settled {
        say!(opts, "   effect: {}", describe(e));
    }
    let burned: Amount = chain
        .app()
        .settled
        .iter()
        .map(Effect::burned)
        .fold(Amount::ZERO, Amount::saturating_add);
    check_supply(&chain.ledger).map_err(|e| format!("{e:?}"))?;
    let supply_conserved = chain.ledger.total_supply()
        == initial.checked_sub(chain.ledger.burned())?
        && chain.ledger.burned() == burned;
    let delta =
        |a: &AccountId, before: Amount| chain.holdings(a).get() as i128 - before.get() as i128;
    let report = CaseReport {
        name,
        verdict,
        committee: seats,
        referee_outputs,
        fuel,
        client_delta: delta(&client.account_id(), c0),
        provider_delta: delta(&provider.account_id(), p0),
        burned,
        supply_conserved,
    };
    say!(
        opts,
        "== result: client {:+}, provider {:+}, burned {}, supply conserved: {} (provider {})",
        report.client_delta,
        report.provider_delta,
        report.burned,
        report.supply_conserved,
        short_acc(&provider.account_id())
    );
    Ok(report)
}
