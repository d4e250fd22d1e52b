//! # idlegrid-entrap
//!
//! Verification by entrapment ("proof of honesty", after EntrapNet): the
//! client, like an officer, plants trap subtasks whose answers it already
//! knows among the real ones; a provider caught answering a trap wrongly
//! loses its stake and its pay. A referee committee settles disputes by
//! re-executing only the disputed trap, and a client that planted a wrong
//! answer to frame a provider loses its bond to that provider.
//!
//! - [`JobPlan`] — the client's plan for one provider's lot: `n` real
//!   subtasks and `k` traps shuffled with a seeded, exactly uniform
//!   Fisher–Yates; one hiding commitment to the trap positions and each
//!   trap's (input, expected output) digests, so not even `k` is visible.
//!   [`split_into_lots`] spreads one job over several providers, each lot
//!   with its own traps and no input shared between lots.
//! - [`VerificationRound`] — the round as a sans-IO state machine: stake
//!   bond, output commitment, output reveal, trap reveal, accusations,
//!   accept-or-dispute window, referee votes, settlement. Every stage has a
//!   deadline and a defined outcome when a party goes silent.
//! - [`select_referees`] (VRF sortition), [`decide_trap`], [`Verdict`] —
//!   pure dispute rules.
//! - [`settle`] and [`Effect`] — settlement as data; [`check_conservation`],
//!   [`check_recipients`], [`check_slash_justified`] — the invariants.
//! - [`optimize_traps`] — how many traps a lot needs (model below).
//! - [`plan_lifetime`] — traps over a provider's stream of lots: a trap
//!   rate per provider, deterrent at every lot (section below).
//! - [`reuse`] — cheaper trap answers: an [`AnswerBank`] of answers the
//!   client holds, reused under a [`ReuseRule`] whose collusion model keeps
//!   the stated probabilities true (section in the module).
//! - [`harness`] — a small seeded adversary harness (honest, lazy cheaters,
//!   trap guessers, framing clients) reporting detection rates.
//!
//! ## Example
//!
//! ```
//! use idlegrid_entrap::*;
//! use idlegrid_primitives::{AccountId, Amount, Digest, Domain, Duration, Salt, Seed, Timestamp};
//!
//! const D: Domain = Domain::new("idlegrid/example/task");
//! let run = |input: &Digest| Digest::of(D, input); // the deterministic task
//! let input = |i: u64| Digest::of(D, &("input", i));
//!
//! // How many traps? 40 real subtasks, cost 8, pay 10, stake 500.
//! let advice = optimize_traps(&Params::new(40, Amount::new(8), Amount::new(10), Amount::new(500)))?;
//! let k = advice.recommended.get() as u64;
//!
//! // The client plans: real inputs plus traps with known answers.
//! let job = JobId::new(1);
//! let plan = JobPlan::builder(job)
//!     .real_inputs((0..40).map(input).collect())
//!     .traps((0..k).map(|i| { let x = input(1000 + i); TrapSpec::precomputed(x, run(&x)) }).collect())
//!     .seed(Seed::from_u64(7))
//!     .build()?;
//!
//! let (client, provider) = (AccountId::from_bytes([1; 32]), AccountId::from_bytes([2; 32]));
//! let terms = Terms {
//!     job, client, provider,
//!     pay_per_subtask: Amount::new(10), client_bond: Amount::new(100), stake: Amount::new(500),
//!     slash_to_client: Bps::new(5_000)?, no_show_penalty: Bps::new(1_000)?,
//!     deadlines: Deadlines::uniform(Duration::from_secs(60)), committee_size: 3,
//! };
//! let t = |s| Timestamp::from_millis(s);
//! let mut round = VerificationRound::open(t(0), terms, plan.public().clone())?;
//!
//! // The provider bonds, executes every subtask, commits, reveals.
//! round.bond_stake(t(1), provider, Amount::new(500))?;
//! let outputs: Vec<Digest> = plan.public().slot_inputs.iter().map(run).collect();
//! let salt = Salt::from_bytes([9; 32]);
//! round.commit_outputs(t(2), provider, output_commitment(job, &outputs, &salt))?;
//! round.reveal_outputs(t(3), provider, outputs.clone(), salt)?;
//!
//! // The client reveals its traps and finds nothing to accuse.
//! round.reveal_traps(t(4), client, &plan.trap_reveal(vec![]))?;
//! let wrong = plan.wrong_traps(&outputs)?;
//! assert!(wrong.is_empty());
//! round.accuse(t(5), client, &wrong)?;
//!
//! // Settled: the provider is paid for all 40 + k subtasks, bonds return.
//! assert_eq!(round.outcome(), Some(Outcome::Clean));
//! let effects: Vec<Effect> = std::iter::from_fn(|| round.poll_effect()).collect();
//! check_conservation(&round.locked(), &effects)?;
//! assert!(effects.contains(&Effect::PayProvider { job, provider, amount: Amount::new(10 * (40 + k as u128)) }));
//! # Ok::<(), EntrapError>(())
//! ```
//!
//! ## Time and determinism
//!
//! Nothing here reads a clock, spawns a thread or touches a global RNG.
//! Every step takes `now`; deadlines are data ([`VerificationRound::poll_timeout`],
//! [`VerificationRound::handle_timeout`]). Plans derive their shuffle and salt
//! from a caller's [`idlegrid_primitives::Seed`] and the job id. All
//! consensus-relevant state (plans, commitments, verdicts, effects) uses
//! integers and [`idlegrid_primitives::Amount`]'s checked arithmetic; `f64`
//! appears only in [`optimizer`], whose output is advice to the client when it
//! builds a plan and never enters shared state.
//!
//! ## The protocol and its outcomes
//!
//! One round covers one provider's lot (a job spread over many providers is
//! one round per provider, each with its own traps). The client locks escrow
//! `p·(n+k)` (traps are paid like real subtasks, so pay reveals nothing) and
//! a bond `B`; the provider locks stake `S`. Outcomes ([`Outcome`]):
//!
//! | outcome | escrow | client bond | stake |
//! |---|---|---|---|
//! | provider no-show | client | client | (none locked) |
//! | provider defaulted (bonded, then silent) | client | client | penalty share to client, rest back |
//! | client abandoned (no trap reveal) | provider | provider | back |
//! | clean / dispute not proven | provider | client | back |
//! | admitted / provider cheated | client | client | share to client, rest burned |
//! | client framed | provider | provider | back |
//! | both at fault | client | burned | burned |
//!
//! Indistinguishability: traps have the same pay, deadline and input format
//! as real subtasks (the composition root must also give them the same size);
//! their positions are uniform (tested statistically); plans reject
//! duplicate inputs, which would let a provider spot a trap by comparison;
//! and because traps are planted per provider, colluding providers comparing
//! notes learn nothing about each other's traps. Reused traps are only
//! indistinguishable to providers that did not see them before. Cross-check
//! traps ([`TrapSource::CrossCheck`]) are real subtasks also given to a
//! partner; the partner's revealed output serves as the expected answer and
//! the client is never blamed for a cross-check mismatch (the composition
//! root checks the partner output against the partner's round).
//!
//! ## The optimizer
//!
//! A provider receives `N = n + k` subtasks, cannot tell traps from real
//! ones, and corrupts `m` of them (skipping the work). Positions are uniform,
//! so whatever rule it uses to pick, the number of traps among its picks is
//! hypergeometric and the **exact** detection probability is
//!
//! ```text
//! P_k(m) = 1 − C(N − k, m) / C(N, m) = 1 − Π_{i<m} (n − i) / (n + k − i)
//! ```
//!
//! (with trap reliability `h < 1`, e.g. cross-checks against a partner that
//! is honest with probability `h`: `P = 1 − E[(1 − h)^X]`, `X ~ Hypergeom(N, k, m)`).
//!
//! **Deterrence.** Honest work earns `N(p − c)`. Corrupting `m` saves `m·c`
//! plus any outside gain `m·b`; if caught the provider forfeits the whole
//! lot's pay `N·p`, its stake `S` and its reputation's future value `R`. So
//! the gain of cheating over honesty is
//!
//! ```text
//! G_k(m) = m (c + b) − P_k(m) · (N p + S + R)
//! ```
//!
//! and the deterrence `k` is the smallest with `G_k(m) < 0` for **every**
//! `m ∈ 1..=N` (every cheating rate `r = m / N`). For a merely lazy provider
//! (`b = 0`) paid above cost one trap suffices — losing the lot's pay
//! outweighs saving one subtask's cost, since `P_1(m) = m/N` gives
//! `G_1(m) = m (c − p − (S + R)/N) < 0` — so deterrence
//! matters when `b > 0` (someone wants wrong results) and shrinks as `S` and
//! `R` grow.
//!
//! **Assurance.** A faulty or malicious provider is not deterred by price.
//! The assurance `k` is the smallest with `1 − P_k(⌈r_min N⌉) ≤ δ / (1 − q)`,
//! where `q` is the provider's credibility (prior probability of being
//! reliable, from reputation): only the faulty fraction `1 − q` needs
//! catching, so the overall probability of an undetected faulty lot stays
//! `≤ δ`. `k` shrinks as credibility grows. The optimizer reports both and
//! recommends the larger.
//!
//! Because `P_k` is concave in `m` (its increments `Q(m)·k/(N − m)` shrink
//! for `k ≥ 1`) and `P_k(N) = 1`, the all-corrupted case binds: one reliable
//! trap deters every `m` exactly when `N (c + b) < N p + S + R`, and when
//! that fails no number of traps helps — the stake must grow instead.
//! [`TrapAdvice::deterrent_stake`] reports the exact threshold. With
//! unreliable (cross-check) traps, `P_k(N) < 1` and more traps do help.
//!
//! Typical values (`cargo run -p idlegrid-entrap --example trap_table`;
//! per subtask c = 8, p = 10; S = 1 000, R = 0, b = 0 unless stated;
//! assurance catches `r_min` = 10 % corruption with δ = 1 %; overhead is the
//! recommended `k` over `n`):
//!
//! | n | deterrence k | assurance k (q = 0 / 0.9 / 0.99) | overhead k/n (q = 0 / 0.9 / 0.99) | deterrent stake if b = 10 |
//! |---|---|---|---|---|
//! | 4 | 1 | 17 / 8 / 1 | 425.0 % / 200.0 % / 25.0 % | 169 |
//! | 10 | 1 | 21 / 11 / 1 | 210.0 % / 110.0 % / 10.0 % | 249 |
//! | 40 | 1 | 31 / 18 / 1 | 77.5 % / 45.0 % / 2.5 % | 569 |
//! | 100 | 1 | 37 / 20 / 1 | 37.0 % / 20.0 % / 1.0 % | 1097 |
//! | 1000 | 1 | 43 / 22 / 1 | 4.3 % / 2.2 % / 0.1 % | 8345 |
//! | 10000 | 1 | 44 / 22 / 1 | 0.4 % / 0.2 % / 0.0 % | 80353 |
//!
//! Small lots are expensive to *assure* (a provider holding 4 subtasks needs
//! many traps to be caught corrupting one of them 99 % of the time) but cheap
//! to *deter*; credibility from reputation is what brings small lots down.
//!
//! ## Over a provider's lifetime
//!
//! Sizing traps lot by lot pays the assurance price on every lot. The
//! [`lifetime`] planner spreads it over a provider's stream of lots
//! instead: every lot has the same `N` slots, and the client draws with its
//! own seeded RNG whether a lot carries `k` traps (probability `q`) or none,
//! which the provider cannot tell apart. A provider corrupting `m` slots per
//! lot is caught in a lot with probability `q · d_k(m)` (`d_k` the exact
//! hypergeometric above) and within its first `M` lots with probability
//! `1 − Π (1 − q_j d_k(m))` ([`lifetime_catch_probability`], exact up to
//! `f64` products, with the credibility discount composed in).
//!
//! - **Deterrence at every lot**: cheating on a lot gains `m (c + b)` and
//!   risks `q d_k(m) (N p + S)`; by concavity of `d_k` it is unprofitable
//!   for every `m` exactly when `q (N p + S) > N (c + b)`. That floor
//!   ([`lifetime::deterrence_floor`], exact integers) does not depend on `k`
//!   or on the provider's history, and the rate never drops below it, so
//!   the first lot and a bait-and-switch after a long clean record are
//!   deterred alike.
//! - **Assurance for newcomers**: "a persistent cheater at rate `r` is
//!   caught within its first `M` lots with probability `≥ 1 − δ`" fixes the
//!   rate of a provider without a record; each `h` verified clean lots halve
//!   it, down to the floor.
//! - **History and tails**: the discount counts the provider's clean
//!   trap-carrying lots over every client (the reference node's validators
//!   count them and report the count with each match). A lot shorter than
//!   `N` (a job's tail) is recognisable, so it always carries traps — one
//!   suffices: at rate 1 deterrence does not depend on `k`, and an accepted
//!   plan deters on every shorter lot ([`lifetime::tail_deters`]).
//! - **Bad input**: [`plan_lifetime`] refuses an unreachable target with a
//!   typed [`LifetimeError`] — the smallest stake that would deter, or the
//!   horizon that would assure (stake buys deterrence, not detection).
//!
//! ```
//! use idlegrid_entrap::lifetime::{LifetimeParams, lifetime_catch_probability, plan};
//! use idlegrid_primitives::{Amount, Seed};
//!
//! // 16-slot lots, cost 8 and pay 10 per slot, stake 1 000; by default:
//! // catch a 10 % cheater within 20 lots with probability 99 %.
//! let p = LifetimeParams::new(16, Amount::new(8), Amount::new(10), Amount::new(1_000));
//! let policy = plan(&p)?;
//! assert!(lifetime_catch_probability(&policy, p.corrupted(), 20) >= 0.99);
//! // After 100 clean lots the rate sits at the deterrence floor.
//! assert_eq!(policy.rate(100), policy.floor);
//! // The client draws each lot's trap count from its own RNG: k or 0.
//! let mut rng = Seed::from_u64(1).rng();
//! let k = policy.draw(0, &mut rng);
//! assert!(k == 0 || k == policy.traps.get());
//! # Ok::<(), idlegrid_entrap::LifetimeError>(())
//! ```
//!
//! Typical values (same command; c = 8, p = 10, b = 0, target r = 10 % within
//! M = 20 lots at 99 %, at most N / 4 traps, discount halving every 10 clean
//! lots; overhead is expected trap slots per real slot, `q k / (N − q k)`;
//! "all-in" also counts the client computing each trap's answer):
//!
//! | N | c / p | stake | k | q new | q floor | trap overhead new / floor | all-in at floor | lots to catch r = 10 % at 99 % (at q new / at q floor, no discount) |
//! |---|---|---|---|---|---|---|---|---|
//! | 16 | 8 / 10 | 1000 | 4 | 0.459 | 0.110 | 12.95 % / 2.84 % | 5.67 % | 20 / 91 |
//! | 16 | 8 / 10 | 10000 | 4 | 0.459 | 0.013 | 12.95 % / 0.32 % | 0.63 % | 20 / 810 |
//! | 64 | 8 / 10 | 1000 | 4 | 0.556 | 0.312 | 3.60 % / 1.99 % | 3.98 % | 20 / 37 |
//! | 64 | 8 / 10 | 10000 | 4 | 0.559 | 0.048 | 3.62 % / 0.30 % | 0.60 % | 20 / 251 |
//! | 256 | 8 / 10 | 1000 | 4 | 0.588 | 0.575 | 0.93 % / 0.91 % | 1.81 % | 20 / 21 |
//! | 256 | 8 / 10 | 10000 | 5 | 0.497 | 0.163 | 0.98 % / 0.32 % | 0.64 % | 20 / 66 |
//!
//! The `longrun` scenario's lots (16 real subtasks + 4 trap slots, the client's cost estimate
//! 250 and pay 500 per slot, at most 4 traps; same command):
//!
//! | N | c / p | stake | k | q new | q floor | trap overhead new / floor | all-in at floor | lots to catch r = 10 % at 99 % (at q new / at q floor, no discount) |
//! |---|---|---|---|---|---|---|---|---|
//! | 20 | 250 / 500 | 50000 | 4 | 0.579 | 0.083 | 13.09 % / 1.69 % | 3.39 % | 20 / 148 |
//! | 20 | 250 / 500 | 150000 | 4 | 0.579 | 0.031 | 13.09 % / 0.63 % | 1.26 % | 20 / 398 |
//!
//! A proven provider costs `q_min k / N`: with a stake ten times a lot's pay
//! that is well under 1 % all-in, while a newcomer pays for its assurance.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Determinism: a `HashMap`/`HashSet` iterates in a per-process order, so
// protocol crates use none (`.ci/run` greps for them) and this lint catches
// a `for` loop over one should it come back. Use `BTreeMap`/`BTreeSet`.
#![warn(clippy::iter_over_hash_type)]

mod error;
pub mod harness;
pub mod lifetime;
pub mod optimizer;
mod plan;
mod referee;
pub mod reuse;
mod round;
mod settle;
mod terms;
mod types;

#[cfg(feature = "strategies")]
pub mod strategies;

pub use error::EntrapError;
pub use lifetime::{
    AssuranceTarget, LifetimeError, LifetimeParams, LifetimePolicy, TrapRate,
    lifetime_catch_probability, plan as plan_lifetime,
};
pub use optimizer::{Params, TrapAdvice, detection_probability, optimize_traps};
pub use plan::{
    JobPlan, JobPlanBuilder, OpenedTrap, PublicPlan, SLOT_INPUTS_DOMAIN, Slot, TRAP_SET_DOMAIN,
    TrapReveal, TrapSource, TrapSpec, split_into_lots,
};
pub use referee::{
    Committee, DISPUTE_RANDOMNESS_DOMAIN, DisputedTrap, REFEREE_DOMAIN, ReExecutor, RefereeTicket,
    RefereeVote, TrapVerdict, Verdict, decide_trap, dispute_randomness, referee_vote,
    select_referees, select_referees_with,
};
pub use reuse::{AnswerBank, ReuseRule};
pub use round::{OUTPUTS_DOMAIN, VerificationRound, output_commitment};
pub use settle::{
    Effect, Feedback, Locked, Outcome, Pot, Role, check_conservation, check_recipients,
    check_slash_justified, settle,
};
pub use terms::{Deadlines, Terms};
pub use types::{
    Bps, JobId, MAX_ACCUSATIONS, MAX_REFEREE_CANDIDATES, MAX_REFEREES, MAX_SUBTASKS, MAX_TRAPS,
    Stage, SubtaskIndex, TrapCount,
};
