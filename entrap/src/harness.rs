//! A small seeded adversary harness: many complete rounds between a client
//! and a provider of a given behaviour, with a VRF-drawn referee committee,
//! reporting how often cheaters were caught and framers lost their bonds.
//!
//! The "task" is a pure function of the input digest, so the harness needs
//! no executor; everything derives from one [`Seed`].

use idlegrid_primitives::{
    AccountId, Amount, Digest, Domain, Duration, Keypair, RngCore, Salt, Seed, Timestamp,
};

use crate::error::EntrapError;
use crate::optimizer::detection_probability;
use crate::plan::{JobPlan, TrapSpec, shuffle};
use crate::referee::Verdict;
use crate::referee::{RefereeTicket, dispute_randomness, referee_vote, select_referees};
use crate::round::{VerificationRound, output_commitment};
use crate::settle::{Outcome, check_conservation, check_recipients, check_slash_justified};
use crate::terms::{Deadlines, Terms};
use crate::types::{Bps, JobId};

const TASK: Domain = Domain::new("idlegrid/entrap/harness/task");
const WRONG: Domain = Domain::new("idlegrid/entrap/harness/wrong");

/// The harness's deterministic task.
pub fn task(input: &Digest) -> Digest {
    Digest::of(TASK, input)
}

/// How the provider behaves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ProviderBehaviour {
    /// Computes everything.
    Honest,
    /// Corrupts `round(rate · N)` subtasks chosen uniformly at random.
    LazyCheater {
        /// Cheating rate.
        rate: Bps,
    },
    /// Corrupts `round(rate · N)` subtasks it guesses are real: those with
    /// the largest input digests (a fixed rule a trap-guesser might try).
    TrapGuesser {
        /// Cheating rate.
        rate: Bps,
    },
    /// Bonds stake, then never delivers.
    Silent,
}

/// How the client behaves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ClientBehaviour {
    /// Plants correct answers and accuses only wrong ones.
    Honest,
    /// Plants one wrong expected answer and accuses it.
    Framing,
}

/// One harness run.
#[derive(Clone, Copy, Debug)]
pub struct HarnessConfig {
    /// Root seed.
    pub seed: Seed,
    /// Rounds to play.
    pub rounds: u32,
    /// Real subtasks per round.
    pub n: u32,
    /// Traps per round.
    pub k: u32,
    /// Provider behaviour.
    pub provider: ProviderBehaviour,
    /// Client behaviour.
    pub client: ClientBehaviour,
    /// Referee committee size (drawn from `2 · size + 1` candidates).
    pub committee_size: u8,
}

/// What happened over the run.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct HarnessReport {
    /// Rounds played.
    pub rounds: u32,
    /// Rounds where the provider corrupted at least one subtask.
    pub cheating_rounds: u32,
    /// Rounds where the provider was slashed for cheating.
    pub caught: u32,
    /// Rounds where a provider that corrupted nothing was slashed (must be 0).
    pub honest_slashed: u32,
    /// Rounds where the client's bond went to the provider for framing.
    pub framers_caught: u32,
    /// Rounds that reached a referee committee.
    pub disputes: u32,
    /// Rounds whose effects failed a `check_*` invariant (must be 0).
    pub invariant_failures: u32,
}

impl HarnessReport {
    /// Caught / cheating rounds.
    pub fn detection_rate(&self) -> f64 {
        f64::from(self.caught) / f64::from(self.cheating_rounds.max(1))
    }
}

/// The exact per-round detection probability for a cheater at `rate`.
pub fn expected_detection(n: u32, k: u32, rate: Bps) -> f64 {
    detection_probability(n + k, k, corrupted_count(n + k, rate))
}

fn corrupted_count(slots: u32, rate: Bps) -> u32 {
    // round(rate · slots), in integers.
    ((u64::from(rate.get()) * u64::from(slots) + 5_000) / 10_000) as u32
}

/// Plays `config.rounds` rounds.
pub fn run(config: &HarnessConfig) -> Result<HarnessReport, EntrapError> {
    let mut report = HarnessReport::default();
    let referees: Vec<Keypair> = (0..2 * u64::from(config.committee_size) + 1)
        .map(|i| Keypair::from_seed(&config.seed.derive_indexed("referee", i)))
        .collect();
    for r in 0..config.rounds {
        play(config, r, &referees, &mut report)?;
        report.rounds += 1;
    }
    Ok(report)
}

fn play(
    config: &HarnessConfig,
    r: u32,
    referees: &[Keypair],
    report: &mut HarnessReport,
) -> Result<(), EntrapError> {
    let seed = config.seed.derive_indexed("round", u64::from(r));
    let job = JobId::new(u64::from(r));
    let input = |tag: &str, i: u32| Digest::of(TASK, &(seed, tag, i));
    let mut traps: Vec<TrapSpec> = (0..config.k)
        .map(|i| {
            let x = input("trap", i);
            TrapSpec::precomputed(x, task(&x))
        })
        .collect();
    if config.client == ClientBehaviour::Framing {
        if let Some(t) = traps.first_mut() {
            *t = TrapSpec::precomputed(t.input, Digest::of(WRONG, &t.input));
        }
    }
    let plan = JobPlan::builder(job)
        .real_inputs((0..config.n).map(|i| input("real", i)).collect())
        .traps(traps)
        .seed(seed.derive("client"))
        .build()?;
    let client = AccountId::from_bytes(*seed.derive("client-account").as_bytes());
    let provider = AccountId::from_bytes(*seed.derive("provider-account").as_bytes());
    let terms = Terms {
        job,
        client,
        provider,
        pay_per_subtask: Amount::new(10),
        client_bond: Amount::new(100),
        stake: Amount::new(1_000),
        slash_to_client: Bps::new(5_000)?,
        no_show_penalty: Bps::new(1_000)?,
        deadlines: Deadlines::uniform(Duration::from_secs(10)),
        committee_size: config.committee_size,
    };
    let t = |s: u64| Timestamp::from_millis(s);
    let mut round = VerificationRound::open(t(0), terms, plan.public().clone())?;
    round.bond_stake(t(1), provider, terms.stake)?;

    let slots = plan.public().slots() as u32;
    let inputs = &plan.public().slot_inputs;
    let mut outputs: Vec<Digest> = inputs.iter().map(task).collect();
    let corrupt: Vec<usize> = match config.provider {
        ProviderBehaviour::Honest | ProviderBehaviour::Silent => Vec::new(),
        ProviderBehaviour::LazyCheater { rate } => {
            let mut order: Vec<usize> = (0..slots as usize).collect();
            shuffle(&mut order, &mut seed.derive("provider").rng());
            order.truncate(corrupted_count(slots, rate) as usize);
            order
        }
        ProviderBehaviour::TrapGuesser { rate } => {
            let mut order: Vec<usize> = (0..slots as usize).collect();
            order.sort_by_key(|&i| core::cmp::Reverse(inputs[i]));
            order.truncate(corrupted_count(slots, rate) as usize);
            order
        }
    };
    for &i in &corrupt {
        outputs[i] = Digest::of(WRONG, &inputs[i]);
    }
    let cheated = !corrupt.is_empty();
    report.cheating_rounds += u32::from(cheated);

    if config.provider != ProviderBehaviour::Silent {
        let salt = Salt::random(&mut seed.derive("salt").rng());
        round.commit_outputs(t(2), provider, output_commitment(job, &outputs, &salt))?;
        round.reveal_outputs(t(3), provider, outputs.clone(), salt)?;
        round.reveal_traps(t(4), client, &plan.trap_reveal(Vec::new()))?;
        let accused = plan.wrong_traps(&outputs)?;
        let accused = &accused[..accused.len().min(crate::types::MAX_ACCUSATIONS)];
        round.accuse(t(5), client, accused)?;
        if !accused.is_empty() {
            // Every accused provider disputes (the worst case for referees).
            let mut beacon = [0u8; 32];
            seed.derive("beacon").rng().fill_bytes(&mut beacon);
            let randomness = dispute_randomness(&Digest::from_bytes(beacon), job);
            let tickets: Vec<RefereeTicket> = referees
                .iter()
                .map(|k| RefereeTicket::draw(k, &randomness))
                .collect();
            let committee =
                select_referees(&tickets, &randomness, usize::from(config.committee_size))?;
            round.dispute(t(6), provider, committee.clone())?;
            report.disputes += 1;
            let disputed = round.disputed().to_vec();
            for member in committee.members() {
                let mut exec = |i: &Digest| Some(task(i));
                if let Some(vote) = referee_vote(*member, &disputed, &mut exec) {
                    round.submit_vote(t(7), *member, vote)?;
                }
            }
        }
    }
    round.handle_timeout(Timestamp::MAX);
    let outcome = round
        .outcome()
        .expect("a timeout at the end of time settles");
    let effects = round.settlement();
    let ok = check_conservation(&round.locked(), effects).is_ok()
        && check_recipients(round.terms(), effects).is_ok()
        && check_slash_justified(outcome, effects).is_ok();
    report.invariant_failures += u32::from(!ok);
    let slashed = matches!(
        outcome,
        Outcome::Admitted | Outcome::Judged(Verdict::ProviderCheated | Verdict::BothAtFault)
    );
    if slashed && cheated {
        report.caught += 1;
    }
    if slashed && !cheated {
        report.honest_slashed += 1;
    }
    if matches!(
        outcome,
        Outcome::Judged(Verdict::ClientFramed | Verdict::BothAtFault)
    ) {
        report.framers_caught += 1;
    }
    Ok(())
}
