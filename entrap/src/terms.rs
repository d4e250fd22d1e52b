//! The terms of one round: parties, money and deadlines.

use idlegrid_primitives::{AccountId, Amount, Duration};
use serde::{Deserialize, Serialize};

use crate::error::EntrapError;
use crate::types::{Bps, JobId, MAX_REFEREES};

/// How long each stage may last, measured from the moment the round entered
/// it. Every stage has one; what happens when it passes is documented on
/// [`crate::VerificationRound`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Deadlines {
    /// Provider bonds its stake.
    pub stake: Duration,
    /// Provider executes and commits to its outputs.
    pub output_commitment: Duration,
    /// Provider reveals its outputs.
    pub output_reveal: Duration,
    /// Client reveals the traps.
    pub trap_reveal: Duration,
    /// Client accuses (or stays silent: no accusation).
    pub accusations: Duration,
    /// Provider accepts or disputes (silence accepts).
    pub response: Duration,
    /// Referees vote.
    pub votes: Duration,
}

impl Deadlines {
    /// The same duration for every stage.
    pub const fn uniform(d: Duration) -> Self {
        Self {
            stake: d,
            output_commitment: d,
            output_reveal: d,
            trap_reveal: d,
            accusations: d,
            response: d,
            votes: d,
        }
    }
}

/// The terms the client and the provider agreed to (from the market match).
/// Traps are paid like real subtasks, so escrow covers every slot.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Terms {
    /// The job.
    pub job: JobId,
    /// The client (planted the traps, pays).
    pub client: AccountId,
    /// The provider (executes, bonds stake).
    pub provider: AccountId,
    /// Pay per subtask, traps included.
    pub pay_per_subtask: Amount,
    /// The client's bond, lost to the provider if it frames or goes silent.
    pub client_bond: Amount,
    /// The provider's stake bond, slashed if it is caught.
    pub stake: Amount,
    /// Share of a slashed stake that goes to the client; the rest is burned.
    pub slash_to_client: Bps,
    /// Share of the stake a provider that bonded and then went silent pays
    /// the client; the rest is returned.
    pub no_show_penalty: Bps,
    /// Stage deadlines.
    pub deadlines: Deadlines,
    /// Referee committee size for disputes (1..=15).
    pub committee_size: u8,
}

impl Terms {
    /// Checks the terms for `slots` subtasks and returns the escrow they need.
    pub fn validate(&self, slots: usize) -> Result<Amount, EntrapError> {
        if self.client == self.provider {
            return Err(EntrapError::InvalidParameter {
                name: "provider",
                reason: "client and provider must differ",
            });
        }
        let size = usize::from(self.committee_size);
        if size == 0 || size > MAX_REFEREES {
            return Err(EntrapError::LimitExceeded {
                what: "referees",
                got: size,
                max: MAX_REFEREES,
            });
        }
        // Bps fields are public; re-validate in case they were built directly.
        Bps::new(self.slash_to_client.get())?;
        Bps::new(self.no_show_penalty.get())?;
        self.escrow(slots)
    }

    /// Escrow for `slots` subtasks: `pay_per_subtask * slots`.
    pub fn escrow(&self, slots: usize) -> Result<Amount, EntrapError> {
        Ok(self.pay_per_subtask.checked_mul(slots as u128)?)
    }
}
