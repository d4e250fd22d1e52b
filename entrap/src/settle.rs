//! Settlement as data: the [`Effect`]s a finished round asks the ledger and
//! the reputation system to apply, and the conservation invariant.
//!
//! Three pots are locked during a round: the client's **escrow** (pay for
//! every subtask, traps included), the client's **bond**, and the
//! provider's **stake**. Every outcome empties each pot exactly: what goes
//! out equals what came in, and only slashing burns.

use idlegrid_primitives::{AccountId, Amount};
use serde::{Deserialize, Serialize};

use crate::error::EntrapError;
use crate::referee::Verdict;
use crate::terms::Terms;
use crate::types::JobId;

/// The amounts locked in a round's three pots.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Locked {
    /// Client escrow (pay for all subtasks).
    pub escrow: Amount,
    /// Client bond.
    pub client_bond: Amount,
    /// Provider stake (zero until bonded).
    pub stake: Amount,
}

impl Locked {
    /// Sum of the pots.
    pub fn total(&self) -> Result<Amount, EntrapError> {
        Ok(Amount::checked_sum([
            self.escrow,
            self.client_bond,
            self.stake,
        ])?)
    }
}

/// A pot that an effect draws from.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Pot {
    /// Client escrow.
    Escrow,
    /// Client bond.
    ClientBond,
    /// Provider stake.
    Stake,
}

/// Which side of a job a reputation feedback is about.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Role {
    /// The provider.
    Provider,
    /// The client.
    Client,
}

/// Reputation feedback produced by a round.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Feedback {
    /// Provider delivered and passed every checked trap.
    Delivered,
    /// Provider was caught answering a trap wrongly.
    CaughtCheating,
    /// Provider never bonded.
    NoShow,
    /// Provider bonded, then went silent.
    Defaulted,
    /// Client's traps held up (or were not disputed).
    HonestTraps,
    /// Client planted a wrong answer to frame the provider.
    Framed,
    /// Client went silent before revealing its traps.
    Unresponsive,
}

/// One thing the composition root must do after a round settles. No money
/// moves in this crate.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Effect {
    /// Escrow → provider.
    PayProvider {
        /// The job.
        job: JobId,
        /// Recipient.
        provider: AccountId,
        /// Amount.
        amount: Amount,
    },
    /// Escrow → client.
    RefundClient {
        /// The job.
        job: JobId,
        /// Recipient.
        client: AccountId,
        /// Amount.
        amount: Amount,
    },
    /// Client bond → client.
    ReturnClientBond {
        /// The job.
        job: JobId,
        /// Recipient.
        client: AccountId,
        /// Amount.
        amount: Amount,
    },
    /// Client bond → provider (framing or a silent client).
    ForfeitClientBond {
        /// The job.
        job: JobId,
        /// Whose bond.
        client: AccountId,
        /// Recipient.
        provider: AccountId,
        /// Amount.
        amount: Amount,
    },
    /// Client bond → burned (client framed a provider that also cheated).
    BurnClientBond {
        /// The job.
        job: JobId,
        /// Whose bond.
        client: AccountId,
        /// Amount.
        amount: Amount,
    },
    /// Stake → provider.
    ReturnStake {
        /// The job.
        job: JobId,
        /// Recipient.
        provider: AccountId,
        /// Amount.
        amount: Amount,
    },
    /// Stake → `to_client` to the client, `burned` burned.
    SlashStake {
        /// The job.
        job: JobId,
        /// Whose stake.
        provider: AccountId,
        /// Recipient of the client share.
        client: AccountId,
        /// Client share.
        to_client: Amount,
        /// Burned share.
        burned: Amount,
    },
    /// Feedback for the reputation system.
    Reputation {
        /// The job.
        job: JobId,
        /// Who it is about.
        subject: AccountId,
        /// In which role.
        role: Role,
        /// What happened.
        feedback: Feedback,
    },
}

impl Effect {
    /// The pot this effect draws from and how much, or `None` for
    /// reputation feedback.
    pub fn draws(&self) -> Option<(Pot, Result<Amount, EntrapError>)> {
        match *self {
            Effect::PayProvider { amount, .. } | Effect::RefundClient { amount, .. } => {
                Some((Pot::Escrow, Ok(amount)))
            }
            Effect::ReturnClientBond { amount, .. }
            | Effect::ForfeitClientBond { amount, .. }
            | Effect::BurnClientBond { amount, .. } => Some((Pot::ClientBond, Ok(amount))),
            Effect::ReturnStake { amount, .. } => Some((Pot::Stake, Ok(amount))),
            Effect::SlashStake {
                to_client, burned, ..
            } => Some((
                Pot::Stake,
                to_client.checked_add(burned).map_err(Into::into),
            )),
            Effect::Reputation { .. } => None,
        }
    }

    /// Amount burned by this effect.
    pub fn burned(&self) -> Amount {
        match *self {
            Effect::BurnClientBond { amount, .. } => amount,
            Effect::SlashStake { burned, .. } => burned,
            _ => Amount::ZERO,
        }
    }

    /// True if this effect takes stake away from the provider (a slash).
    pub fn is_slash(&self) -> bool {
        matches!(self, Effect::SlashStake { .. })
    }
}

/// How a round ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Outcome {
    /// The provider never bonded its stake.
    ProviderNoShow,
    /// The provider bonded, then missed its commitment or reveal deadline.
    ProviderDefaulted,
    /// The client never revealed its traps.
    ClientAbandoned,
    /// Traps revealed, no accusation.
    Clean,
    /// The provider accepted the accusations (or let the window pass).
    Admitted,
    /// The referee committee decided a dispute.
    Judged(Verdict),
}

/// The effects for `outcome` given what is locked. Pure; every path empties
/// every pot (see [`check_conservation`]). Zero amounts are omitted.
pub fn settle(
    terms: &Terms,
    locked: &Locked,
    outcome: Outcome,
) -> Result<Vec<Effect>, EntrapError> {
    let job = terms.job;
    let (client, provider) = (terms.client, terms.provider);
    let mut fx = Vec::with_capacity(6);
    let pay = |fx: &mut Vec<Effect>| {
        fx.push(Effect::PayProvider {
            job,
            provider,
            amount: locked.escrow,
        })
    };
    let refund = |fx: &mut Vec<Effect>| {
        fx.push(Effect::RefundClient {
            job,
            client,
            amount: locked.escrow,
        })
    };
    let bond_back = |fx: &mut Vec<Effect>| {
        fx.push(Effect::ReturnClientBond {
            job,
            client,
            amount: locked.client_bond,
        })
    };
    let bond_lost = |fx: &mut Vec<Effect>| {
        fx.push(Effect::ForfeitClientBond {
            job,
            client,
            provider,
            amount: locked.client_bond,
        })
    };
    let stake_back = |fx: &mut Vec<Effect>| {
        fx.push(Effect::ReturnStake {
            job,
            provider,
            amount: locked.stake,
        })
    };
    let rep = |fx: &mut Vec<Effect>, subject, role, feedback| {
        fx.push(Effect::Reputation {
            job,
            subject,
            role,
            feedback,
        })
    };
    match outcome {
        Outcome::ProviderNoShow => {
            refund(&mut fx);
            bond_back(&mut fx);
            stake_back(&mut fx); // zero unless bonded; omitted below if so
            rep(&mut fx, provider, Role::Provider, Feedback::NoShow);
        }
        Outcome::ProviderDefaulted => {
            refund(&mut fx);
            bond_back(&mut fx);
            let penalty = locked.stake.bps(terms.no_show_penalty.get());
            let rest = locked.stake.checked_sub(penalty)?;
            fx.push(Effect::SlashStake {
                job,
                provider,
                client,
                to_client: penalty,
                burned: Amount::ZERO,
            });
            fx.push(Effect::ReturnStake {
                job,
                provider,
                amount: rest,
            });
            rep(&mut fx, provider, Role::Provider, Feedback::Defaulted);
        }
        Outcome::ClientAbandoned => {
            pay(&mut fx);
            bond_lost(&mut fx);
            stake_back(&mut fx);
            rep(&mut fx, client, Role::Client, Feedback::Unresponsive);
            rep(&mut fx, provider, Role::Provider, Feedback::Delivered);
        }
        Outcome::Clean | Outcome::Judged(Verdict::NotProven) => {
            pay(&mut fx);
            bond_back(&mut fx);
            stake_back(&mut fx);
            rep(&mut fx, provider, Role::Provider, Feedback::Delivered);
            rep(&mut fx, client, Role::Client, Feedback::HonestTraps);
        }
        Outcome::Admitted | Outcome::Judged(Verdict::ProviderCheated) => {
            refund(&mut fx);
            bond_back(&mut fx);
            let to_client = locked.stake.bps(terms.slash_to_client.get());
            let burned = locked.stake.checked_sub(to_client)?;
            fx.push(Effect::SlashStake {
                job,
                provider,
                client,
                to_client,
                burned,
            });
            rep(&mut fx, provider, Role::Provider, Feedback::CaughtCheating);
            rep(&mut fx, client, Role::Client, Feedback::HonestTraps);
        }
        Outcome::Judged(Verdict::ClientFramed) => {
            pay(&mut fx);
            bond_lost(&mut fx);
            stake_back(&mut fx);
            rep(&mut fx, provider, Role::Provider, Feedback::Delivered);
            rep(&mut fx, client, Role::Client, Feedback::Framed);
        }
        Outcome::Judged(Verdict::BothAtFault) => {
            refund(&mut fx);
            fx.push(Effect::BurnClientBond {
                job,
                client,
                amount: locked.client_bond,
            });
            fx.push(Effect::SlashStake {
                job,
                provider,
                client,
                to_client: Amount::ZERO,
                burned: locked.stake,
            });
            rep(&mut fx, provider, Role::Provider, Feedback::CaughtCheating);
            rep(&mut fx, client, Role::Client, Feedback::Framed);
        }
    }
    fx.retain(|e| match e.draws() {
        Some((_, Ok(a))) => !a.is_zero(),
        _ => true,
    });
    check_conservation(locked, &fx)?;
    Ok(fx)
}

/// Invariant: the effects draw from each pot exactly what is locked in it —
/// nothing created, nothing left behind.
pub fn check_conservation(locked: &Locked, effects: &[Effect]) -> Result<(), EntrapError> {
    let mut out = Locked::default();
    for e in effects {
        if let Some((pot, amount)) = e.draws() {
            let amount = amount?;
            let slot = match pot {
                Pot::Escrow => &mut out.escrow,
                Pot::ClientBond => &mut out.client_bond,
                Pot::Stake => &mut out.stake,
            };
            *slot = slot.checked_add(amount)?;
        }
    }
    if out != *locked {
        return Err(EntrapError::InvariantViolated(format!(
            "effects draw {out:?} but {locked:?} is locked"
        )));
    }
    Ok(())
}

/// Invariant: effects only pay the round's client and provider (or burn).
pub fn check_recipients(terms: &Terms, effects: &[Effect]) -> Result<(), EntrapError> {
    let ok = effects.iter().all(|e| match *e {
        Effect::PayProvider { provider, .. }
        | Effect::ReturnStake { provider, .. }
        | Effect::ForfeitClientBond { provider, .. } => provider == terms.provider,
        Effect::RefundClient { client, .. }
        | Effect::ReturnClientBond { client, .. }
        | Effect::BurnClientBond { client, .. } => client == terms.client,
        Effect::SlashStake {
            provider, client, ..
        } => provider == terms.provider && client == terms.client,
        Effect::Reputation { subject, .. } => subject == terms.client || subject == terms.provider,
    });
    if ok {
        Ok(())
    } else {
        Err(EntrapError::InvariantViolated(
            "an effect pays a third party".into(),
        ))
    }
}

/// Invariant: a provider is slashed only for a proven or admitted cheat, or
/// the documented no-show penalty.
pub fn check_slash_justified(outcome: Outcome, effects: &[Effect]) -> Result<(), EntrapError> {
    let slashed_burn = effects
        .iter()
        .any(|e| e.is_slash() && !e.burned().is_zero());
    let slashed = effects.iter().any(|e| {
        matches!(e, Effect::SlashStake { to_client, burned, .. } if !(to_client.is_zero() && burned.is_zero()))
    });
    let justified = match outcome {
        Outcome::Admitted
        | Outcome::Judged(Verdict::ProviderCheated)
        | Outcome::Judged(Verdict::BothAtFault) => true,
        Outcome::ProviderDefaulted => !slashed_burn,
        _ => false,
    };
    if slashed && !justified {
        return Err(EntrapError::InvariantViolated(format!(
            "provider slashed on outcome {outcome:?}"
        )));
    }
    Ok(())
}
