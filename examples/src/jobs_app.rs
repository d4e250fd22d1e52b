//! A small [`Application`] that runs entrapment rounds inside the ledger.
//!
//! This is the piece an integrator writes to compose `entrap` with
//! `dag-ledger`: every step of a [`VerificationRound`] becomes a
//! transaction ([`JobTx`]), and the round's settlement [`Effect`]s move
//! money only through the [`LedgerHandle`]:
//!
//! | effect | ledger operation |
//! |---|---|
//! | `PayProvider` / `RefundClient` | release part of the job's escrow to the provider / client |
//! | `ReturnClientBond` / `ReturnStake` | unlock the client's bond / the provider's stake lock |
//! | `ForfeitClientBond` | slash the client's bond lock to the provider |
//! | `BurnClientBond` | slash the client's bond lock, burned |
//! | `SlashStake` | slash the provider's stake lock: a share to the client, the rest burned |
//! | `Reputation` | queued for the composition root's [`idlegrid_reputation::ReputationBook`] |
//!
//! Because escrows and stake locks opened through an application can only be
//! released by that application, no party can run off with the pots: only
//! the round's verdict moves them. (The simulator's marketplace application
//! is the full version: market clearing, many lots, metered pay.)

use std::collections::BTreeMap;

use idlegrid_dag_ledger::ledger::{
    AppErrorType, AppId, Application, ApplicationRegistry, EscrowId, LedgerError, LedgerHandle,
    LockId,
};
use idlegrid_entrap::{
    Effect, JobId, PublicPlan, RefereeTicket, RefereeVote, SubtaskIndex, Terms, TrapReveal,
    VerificationRound, dispute_randomness, select_referees,
};
use idlegrid_node::market::RoundError;
use idlegrid_primitives::{AccountId, Amount, Commitment, Digest, Epoch, Salt, decode, encode};
use serde::{Deserialize, Serialize};

/// Why the jobs application refused a transaction: its own typed error,
/// carried through the ledger as a stable code and canonical fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum JobsAppError {
    /// Not a canonically encoded `JobTx`.
    #[error("malformed job transaction")]
    Malformed,
    /// Only the client opens its job.
    #[error("only the client opens its job")]
    NotClient,
    /// The round is already open.
    #[error("round already open")]
    AlreadyOpen,
    /// No round for this job and provider.
    #[error("no such round")]
    NoSuchRound,
    /// A stake effect for a round whose provider bonded nothing.
    #[error("stake effect without a stake lock")]
    NoStakeLock,
    /// A lock held another amount than the settlement says.
    #[error("lock held {held}, settlement says {settled}")]
    LockMismatch {
        /// What the lock held.
        held: Amount,
        /// What the settlement returned.
        settled: Amount,
    },
    /// The round refused the step.
    #[error("round: {0}")]
    Round(RoundError),
}

impl AppErrorType for JobsAppError {
    fn code(&self) -> u16 {
        match self {
            JobsAppError::Malformed => 1,
            JobsAppError::NotClient => 2,
            JobsAppError::AlreadyOpen => 3,
            JobsAppError::NoSuchRound => 4,
            JobsAppError::NoStakeLock => 5,
            JobsAppError::LockMismatch { .. } => 6,
            JobsAppError::Round(_) => 7,
        }
    }
}

/// The application id under which [`JobsApp`] is registered.
pub const JOBS_APP: AppId = AppId::new(1);

/// Largest payload the application decodes.
const MAX_PAYLOAD: usize = 16 * 1024;

/// One step of a verification round, as a ledger transaction payload.
///
/// Rounds are keyed by `(job, provider)`: one job spread over several
/// providers is one round per provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobTx {
    /// Client: opens the round, escrows `pay × slots` for the provider and
    /// locks the client bond from the client's bonded stake.
    Open {
        /// The agreed terms (from the market match).
        terms: Terms,
        /// The public plan (input digests and the hiding trap commitment).
        plan: PublicPlan,
        /// Epoch after which the client may refund an unsettled escrow.
        escrow_deadline: Epoch,
    },
    /// Provider: locks its stake for the round.
    BondStake {
        /// The job.
        job: JobId,
    },
    /// Provider: commits to its outputs.
    CommitOutputs {
        /// The job.
        job: JobId,
        /// `output_commitment(job, outputs, salt)`.
        commitment: Commitment,
    },
    /// Provider: reveals its outputs.
    RevealOutputs {
        /// The job.
        job: JobId,
        /// Output digests, in slot order.
        outputs: Vec<Digest>,
        /// The commitment's salt.
        salt: Salt,
    },
    /// Client: reveals the traps.
    RevealTraps {
        /// The job.
        job: JobId,
        /// Whose round.
        provider: AccountId,
        /// The opening of the trap commitment.
        reveal: TrapReveal,
    },
    /// Client: accuses the provider on wrongly answered traps (empty: none).
    Accuse {
        /// The job.
        job: JobId,
        /// Whose round.
        provider: AccountId,
        /// The accused trap positions.
        traps: Vec<SubtaskIndex>,
    },
    /// Provider: admits the accusation.
    Accept {
        /// The job.
        job: JobId,
    },
    /// Provider: disputes; the application draws the committee from the
    /// candidates' VRF tickets over the ledger beacon.
    Dispute {
        /// The job.
        job: JobId,
        /// Referee candidates' VRF tickets.
        tickets: Vec<RefereeTicket>,
    },
    /// Referee: its re-executed outputs for the disputed traps.
    Vote {
        /// The job.
        job: JobId,
        /// Whose round.
        provider: AccountId,
        /// The vote.
        vote: RefereeVote,
    },
}

impl JobTx {
    /// The encoded payload for `TxKind::App`.
    pub fn payload(&self) -> Vec<u8> {
        encode(self)
    }
}

/// One provider's round and the ledger objects backing it.
#[derive(Clone, Debug)]
struct Lot {
    round: VerificationRound,
    escrow: EscrowId,
    client_lock: LockId,
    stake_lock: Option<LockId>,
}

/// Runs [`VerificationRound`]s inside the ledger (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct JobsApp {
    lots: BTreeMap<(JobId, AccountId), Lot>,
    /// Committed randomness for referee selection; in a full node it comes
    /// from consensus (e.g. the committing leader's VRF output).
    pub beacon: Digest,
    /// Every settlement effect applied, in order.
    pub settled: Vec<Effect>,
    /// Reputation effects not yet drained by the composition root.
    pending_reputation: Vec<ReputationNote>,
}

/// A reputation effect with the round it came from, so the composition root
/// knows the counterparty (the reporter) and the value at stake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReputationNote {
    /// The round's client.
    pub client: AccountId,
    /// The round's provider.
    pub provider: AccountId,
    /// The round's escrow (`pay × slots`), the value at stake.
    pub value: Amount,
    /// The `Effect::Reputation`.
    pub effect: Effect,
}

impl JobsApp {
    /// A fresh application with the given beacon.
    pub fn new(beacon: Digest) -> Self {
        Self {
            beacon,
            ..Self::default()
        }
    }

    /// The round of `(job, provider)`, if open or settled.
    pub fn round(&self, job: JobId, provider: &AccountId) -> Option<&VerificationRound> {
        self.lots.get(&(job, *provider)).map(|l| &l.round)
    }

    /// Drains the reputation effects of settled rounds.
    pub fn drain_reputation(&mut self) -> Vec<ReputationNote> {
        std::mem::take(&mut self.pending_reputation)
    }

    fn step(&mut self, h: &mut LedgerHandle<'_, '_>, tx: JobTx) -> Result<Vec<u8>, LedgerError> {
        let (sender, now) = (h.sender(), h.now());
        let rej = |h: &LedgerHandle<'_, '_>, e: idlegrid_entrap::EntrapError| {
            h.reject(&JobsAppError::Round(RoundError::from(&e)))
        };
        let key = match &tx {
            JobTx::Open { terms, .. } => (terms.job, terms.provider),
            JobTx::BondStake { job }
            | JobTx::CommitOutputs { job, .. }
            | JobTx::RevealOutputs { job, .. }
            | JobTx::Accept { job }
            | JobTx::Dispute { job, .. } => (*job, sender),
            JobTx::RevealTraps { job, provider, .. }
            | JobTx::Accuse { job, provider, .. }
            | JobTx::Vote { job, provider, .. } => (*job, *provider),
        };
        if let JobTx::Open {
            terms,
            plan,
            escrow_deadline,
        } = tx
        {
            if sender != terms.client {
                return Err(h.reject(&JobsAppError::NotClient));
            }
            if self.lots.contains_key(&key) {
                return Err(h.reject(&JobsAppError::AlreadyOpen));
            }
            let escrow_amount = terms.escrow(plan.slots()).map_err(|e| rej(h, e))?;
            let round = VerificationRound::open(now, terms, plan).map_err(|e| rej(h, e))?;
            let escrow = h.open_escrow(&terms.provider, escrow_amount, escrow_deadline)?;
            let client_lock = h.lock_stake(terms.client_bond)?;
            self.lots.insert(
                key,
                Lot {
                    round,
                    escrow,
                    client_lock,
                    stake_lock: None,
                },
            );
            return Ok(Vec::new());
        }
        let beacon = self.beacon;
        let lot = self
            .lots
            .get_mut(&key)
            .ok_or_else(|| h.reject(&JobsAppError::NoSuchRound))?;
        let r = &mut lot.round;
        match tx {
            JobTx::Open { .. } => unreachable!("handled above"),
            JobTx::BondStake { .. } => {
                let stake = r.terms().stake;
                r.bond_stake(now, sender, stake).map_err(|e| rej(h, e))?;
                lot.stake_lock = Some(h.lock_stake(stake)?);
            }
            JobTx::CommitOutputs { commitment, .. } => {
                r.commit_outputs(now, sender, commitment)
                    .map_err(|e| rej(h, e))?;
            }
            JobTx::RevealOutputs { outputs, salt, .. } => {
                r.reveal_outputs(now, sender, outputs, salt)
                    .map_err(|e| rej(h, e))?;
            }
            JobTx::RevealTraps { reveal, .. } => {
                r.reveal_traps(now, sender, &reveal)
                    .map_err(|e| rej(h, e))?;
            }
            JobTx::Accuse { traps, .. } => r.accuse(now, sender, &traps).map_err(|e| rej(h, e))?,
            JobTx::Accept { .. } => r.accept(now, sender).map_err(|e| rej(h, e))?,
            JobTx::Dispute { tickets, .. } => {
                let randomness = dispute_randomness(&beacon, key.0);
                // Parties to the round may not judge it.
                let (client, provider) = (r.terms().client.node(), r.terms().provider.node());
                let eligible: Vec<RefereeTicket> = tickets
                    .into_iter()
                    .filter(|t| t.node != client && t.node != provider)
                    .collect();
                let size = usize::from(r.terms().committee_size);
                let committee =
                    select_referees(&eligible, &randomness, size).map_err(|e| rej(h, e))?;
                let seats = encode(&committee);
                r.dispute(now, sender, committee).map_err(|e| rej(h, e))?;
                return Ok(seats);
            }
            JobTx::Vote { vote, .. } => {
                r.submit_vote(now, sender.node(), vote)
                    .map_err(|e| rej(h, e))?;
            }
        }
        let effects: Vec<Effect> = std::iter::from_fn(|| lot.round.poll_effect()).collect();
        apply_effects(h, lot, &effects)?;
        let terms = *lot.round.terms();
        let value = terms
            .escrow(lot.round.plan().slots())
            .unwrap_or(Amount::MAX);
        for e in effects {
            if matches!(e, Effect::Reputation { .. }) {
                self.pending_reputation.push(ReputationNote {
                    client: terms.client,
                    provider: terms.provider,
                    value,
                    effect: e,
                });
            }
            self.settled.push(e);
        }
        Ok(Vec::new())
    }
}

/// Routes settlement effects to ledger operations. Slashes and payments go
/// first and unlocks last, so that an unlock returns exactly what is left.
fn apply_effects(
    h: &mut LedgerHandle<'_, '_>,
    lot: &Lot,
    effects: &[Effect],
) -> Result<(), LedgerError> {
    let stake_lock = || {
        lot.stake_lock
            .ok_or_else(|| h.reject(&JobsAppError::NoStakeLock))
    };
    let mut unlocks: Vec<(LockId, Amount)> = Vec::new();
    let mut stake_lock_id = None;
    if effects
        .iter()
        .any(|e| matches!(e, Effect::ReturnStake { .. } | Effect::SlashStake { .. }))
    {
        stake_lock_id = Some(stake_lock()?);
    }
    for e in effects {
        match *e {
            Effect::PayProvider {
                amount, provider, ..
            } if !amount.is_zero() => {
                h.release_escrow_to(lot.escrow, Some(amount), &provider)?;
            }
            Effect::RefundClient { amount, client, .. } if !amount.is_zero() => {
                h.release_escrow_to(lot.escrow, Some(amount), &client)?;
            }
            Effect::ReturnClientBond { amount, .. } => unlocks.push((lot.client_lock, amount)),
            Effect::ForfeitClientBond {
                amount, provider, ..
            } if !amount.is_zero() => {
                h.slash_lock(lot.client_lock, amount, Some(&provider))?;
            }
            Effect::BurnClientBond { amount, .. } if !amount.is_zero() => {
                h.slash_lock(lot.client_lock, amount, None)?;
            }
            Effect::ReturnStake { amount, .. } => {
                unlocks.push((stake_lock_id.expect("checked above"), amount));
            }
            Effect::SlashStake {
                client,
                to_client,
                burned,
                ..
            } => {
                let id = stake_lock_id.expect("checked above");
                if !to_client.is_zero() {
                    h.slash_lock(id, to_client, Some(&client))?;
                }
                if !burned.is_zero() {
                    h.slash_lock(id, burned, None)?;
                }
            }
            _ => {}
        }
    }
    for (id, amount) in unlocks {
        if amount.is_zero() {
            continue;
        }
        let back = h.unlock(id)?;
        if back != amount {
            return Err(h.reject(&JobsAppError::LockMismatch {
                held: back,
                settled: amount,
            }));
        }
    }
    Ok(())
}

impl Application for JobsApp {
    fn apply(
        &mut self,
        ledger: &mut LedgerHandle<'_, '_>,
        payload: &[u8],
    ) -> Result<Vec<u8>, LedgerError> {
        let tx: JobTx =
            decode(payload, MAX_PAYLOAD).map_err(|_| ledger.reject(&JobsAppError::Malformed))?;
        // A rejected transaction changes nothing on the ledger; keep the
        // application's own state in step with that.
        let backup = self.clone();
        let out = self.step(ledger, tx);
        if out.is_err() {
            *self = backup;
        }
        out
    }
}

/// An [`ApplicationRegistry`] holding one [`JobsApp`] by value, so the
/// composition root can read it between batches.
#[derive(Debug, Default)]
pub struct JobsRegistry {
    /// The application.
    pub app: JobsApp,
}

impl ApplicationRegistry for JobsRegistry {
    fn get_mut(&mut self, id: AppId) -> Option<&mut dyn Application> {
        (id == JOBS_APP).then_some(&mut self.app as &mut dyn Application)
    }
}
