//! Accounts: free balance, bonded stake, collateral locks, pending
//! unbondings, nonce and quota usage.

use idlegrid_primitives::{Amount, Epoch};
use serde::{Deserialize, Serialize};

use super::ids::Nonce;

/// Stake on its way out: withdrawable at `release_epoch`, slashable until then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unbonding {
    /// Amount leaving the bond.
    pub amount: Amount,
    /// First epoch at which it can be withdrawn.
    pub release_epoch: Epoch,
}

/// One account's state.
///
/// Money held by an account = `balance + bonded + Σ unbonding`. `locked` is
/// the part of `bonded` pledged as collateral (see [`super::Lock`]); it is
/// not extra money. Escrowed funds belong to no account until settled.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Account {
    /// Free, spendable balance.
    pub balance: Amount,
    /// Bonded stake (includes `locked`).
    pub bonded: Amount,
    /// Part of `bonded` locked as collateral by applications.
    pub locked: Amount,
    /// Pending unbondings, oldest first (bounded by `Params::max_unbonding_entries`).
    pub unbonding: Vec<Unbonding>,
    /// The next nonce this account must use.
    pub nonce: Nonce,
    /// The epoch `quota_used` refers to.
    pub quota_epoch: Epoch,
    /// Transactions applied in `quota_epoch`.
    pub quota_used: u64,
    /// Open escrows this account pays into.
    pub open_escrows: u32,
    /// Collateral locks on this account's stake.
    pub open_locks: u32,
}

impl Account {
    /// Bonded stake that is not locked: what can be unbonded or locked.
    pub fn free_stake(&self) -> Amount {
        // `locked <= bonded` is an invariant (checked in `invariants`).
        self.bonded.saturating_sub(self.locked)
    }

    /// Sum of the pending unbondings.
    pub fn unbonding_total(&self) -> Amount {
        self.unbonding.iter().map(|u| u.amount).sum()
    }

    /// Everything this account owns: balance + bonded + unbonding, or an
    /// error if that does not fit (impossible under the supply invariant).
    pub fn total(&self) -> Result<Amount, idlegrid_primitives::AmountError> {
        Amount::checked_sum(
            [self.balance, self.bonded]
                .into_iter()
                .chain(self.unbonding.iter().map(|u| u.amount)),
        )
    }

    /// True if the account holds nothing and has no obligations; such an
    /// account is still kept (its nonce must survive to prevent replays).
    pub fn is_empty(&self) -> bool {
        self.balance.is_zero()
            && self.bonded.is_zero()
            && self.unbonding.is_empty()
            && self.open_escrows == 0
            && self.open_locks == 0
    }
}
