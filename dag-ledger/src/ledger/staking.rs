//! Staking: bond free balance, unbond with a delay in epochs, and pledge
//! bonded stake as collateral ("locks") for applications such as a
//! verification round.
//!
//! - **bond**: free balance → bonded.
//! - **unbond**: free (unlocked) bonded stake → a pending unbonding entry,
//!   withdrawable at `epoch + unbonding_delay_epochs` and slashable until
//!   then. At most `Params::max_unbonding_entries` pending per account.
//! - **withdraw**: every matured entry → free balance.
//! - **lock** (applications only, on the transaction sender's stake): part of
//!   the free bonded stake is pledged under a [`LockId`] owned by the
//!   application; it can be neither unbonded nor locked again until the
//!   application unlocks it or slashes it. Consensus slashing never touches
//!   locked stake, so a lock is a guarantee to its application.

use idlegrid_primitives::{AccountId, Amount, AmountError};
use serde::{Deserialize, Serialize};

use super::account::Unbonding;
use super::error::LedgerError;
use super::ids::{AppId, LockId};
use super::state::StateTx;

/// Collateral pledged by `owner` to an application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// Whose bonded stake is locked.
    pub owner: AccountId,
    /// The application that may unlock or slash it.
    pub app: AppId,
    /// The locked amount (part of `owner`'s `bonded`).
    pub amount: Amount,
}

/// What a stake slash took and where it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlashOutcome {
    /// Total taken from the offender.
    pub taken: Amount,
    /// Part paid to the beneficiary (reporter or victim).
    pub paid: Amount,
    /// Part destroyed.
    pub burned: Amount,
}

impl StateTx<'_> {
    /// Moves `amount` of free balance into the bond.
    pub(crate) fn bond(&mut self, who: &AccountId, amount: Amount) -> Result<(), LedgerError> {
        if amount.is_zero() {
            return Err(LedgerError::ZeroAmount);
        }
        self.debit(who, amount)?;
        let acc = self.account_mut(who)?;
        acc.bonded = acc.bonded.checked_add(amount)?;
        Ok(())
    }

    /// Starts unbonding `amount` of free bonded stake.
    pub(crate) fn unbond(&mut self, who: &AccountId, amount: Amount) -> Result<(), LedgerError> {
        if amount.is_zero() {
            return Err(LedgerError::ZeroAmount);
        }
        let max = self.params().max_unbonding_entries;
        let release_epoch = self.epoch().plus(self.params().unbonding_delay_epochs);
        let acc = self.account_mut(who)?;
        let have = acc.free_stake();
        if have < amount {
            return Err(LedgerError::InsufficientStake { have, need: amount });
        }
        if acc.unbonding.len() >= max as usize {
            return Err(LedgerError::TooManyUnbondings { max });
        }
        acc.bonded = acc.bonded.checked_sub(amount)?;
        acc.unbonding.push(Unbonding {
            amount,
            release_epoch,
        });
        Ok(())
    }

    /// Moves every matured unbonding entry to the free balance.
    pub(crate) fn withdraw(&mut self, who: &AccountId) -> Result<Amount, LedgerError> {
        let now = self.epoch();
        let acc = self.account_mut(who)?;
        let (matured, pending): (Vec<Unbonding>, Vec<Unbonding>) =
            acc.unbonding.iter().partition(|u| u.release_epoch <= now);
        if matured.is_empty() {
            return Err(LedgerError::NothingToWithdraw);
        }
        let total = Amount::checked_sum(matured.iter().map(|u| u.amount))?;
        acc.balance = acc.balance.checked_add(total)?;
        acc.unbonding = pending;
        Ok(total)
    }

    /// Pledges `amount` of `owner`'s free bonded stake to `app`.
    pub(crate) fn lock_stake(
        &mut self,
        owner: &AccountId,
        app: AppId,
        amount: Amount,
    ) -> Result<LockId, LedgerError> {
        if amount.is_zero() {
            return Err(LedgerError::ZeroAmount);
        }
        let max = self.params().max_locks_per_account;
        let acc = self.account_mut(owner)?;
        let have = acc.free_stake();
        if have < amount {
            return Err(LedgerError::InsufficientStake { have, need: amount });
        }
        if acc.open_locks >= max {
            return Err(LedgerError::TooManyLocks { max });
        }
        acc.locked = acc.locked.checked_add(amount)?;
        acc.open_locks += 1;
        let id = self.alloc_lock_id()?;
        self.set_lock(
            id,
            Some(Lock {
                owner: *owner,
                app,
                amount,
            }),
        );
        Ok(id)
    }

    fn lock_owned(&self, id: LockId, app: AppId) -> Result<Lock, LedgerError> {
        let l = self.lock(id).cloned().ok_or(LedgerError::UnknownLock(id))?;
        if l.app != app {
            return Err(LedgerError::NotLockOwner(id));
        }
        Ok(l)
    }

    /// Releases a lock: the stake stays bonded but becomes free.
    pub(crate) fn unlock(&mut self, id: LockId, app: AppId) -> Result<Amount, LedgerError> {
        let l = self.lock_owned(id, app)?;
        let acc = self.account_mut(&l.owner)?;
        acc.locked = acc.locked.checked_sub(l.amount)?;
        assert!(acc.open_locks > 0, "lock count out of sync for {id}");
        acc.open_locks -= 1;
        self.set_lock(id, None);
        Ok(l.amount)
    }

    /// Takes `amount` out of a lock (and the owner's bond): pays it to
    /// `beneficiary`, or burns it if `None`. An emptied lock is closed.
    pub(crate) fn slash_lock(
        &mut self,
        id: LockId,
        app: AppId,
        amount: Amount,
        beneficiary: Option<&AccountId>,
    ) -> Result<SlashOutcome, LedgerError> {
        if amount.is_zero() {
            return Err(LedgerError::ZeroAmount);
        }
        let mut l = self.lock_owned(id, app)?;
        l.amount = l
            .amount
            .checked_sub(amount)
            .map_err(|_| LedgerError::InsufficientLock {
                lock: id,
                remaining: l.amount,
                need: amount,
            })?;
        let acc = self.account_mut(&l.owner)?;
        acc.locked = acc.locked.checked_sub(amount)?;
        acc.bonded = acc.bonded.checked_sub(amount)?;
        if l.amount.is_zero() {
            assert!(acc.open_locks > 0, "lock count out of sync for {id}");
            acc.open_locks -= 1;
            self.set_lock(id, None);
        } else {
            self.set_lock(id, Some(l));
        }
        self.pay_or_burn(amount, beneficiary)
    }

    /// Takes up to `amount` of `offender`'s *unlocked* stake — free bonded
    /// stake first, then pending unbondings (newest first) — pays
    /// `reward_bps` of it to `beneficiary` and burns the rest.
    pub(crate) fn slash_stake(
        &mut self,
        offender: &AccountId,
        amount: Amount,
        beneficiary: Option<&AccountId>,
        reward_bps: u16,
    ) -> Result<SlashOutcome, LedgerError> {
        let acc = self.account_mut(offender)?;
        let from_bond = acc.free_stake().min(amount);
        acc.bonded = acc.bonded.checked_sub(from_bond)?;
        let mut taken = from_bond;
        for u in acc.unbonding.iter_mut().rev() {
            let want = amount.checked_sub(taken)?;
            if want.is_zero() {
                break;
            }
            let t = u.amount.min(want);
            u.amount = u.amount.checked_sub(t)?;
            taken = taken.checked_add(t)?;
        }
        acc.unbonding.retain(|u| !u.amount.is_zero());
        if taken.is_zero() {
            return Err(LedgerError::NothingToSlash(*offender));
        }
        let reward = match beneficiary {
            Some(b) if b != offender => taken.bps(reward_bps.min(10_000)),
            _ => Amount::ZERO,
        };
        let burn = taken.checked_sub(reward)?;
        let mut out = SlashOutcome {
            taken,
            paid: Amount::ZERO,
            burned: Amount::ZERO,
        };
        if let (Some(b), false) = (beneficiary, reward.is_zero()) {
            out.paid = self.pay_or_burn(reward, Some(b))?.paid;
        }
        if !burn.is_zero() {
            self.burn(burn)?;
            out.burned = burn;
        }
        Ok(out)
    }

    fn pay_or_burn(
        &mut self,
        amount: Amount,
        beneficiary: Option<&AccountId>,
    ) -> Result<SlashOutcome, LedgerError> {
        match beneficiary {
            Some(b) => {
                self.credit_settlement(b, amount)?;
                Ok(SlashOutcome {
                    taken: amount,
                    paid: amount,
                    burned: Amount::ZERO,
                })
            }
            None => {
                self.burn(amount)?;
                Ok(SlashOutcome {
                    taken: amount,
                    paid: Amount::ZERO,
                    burned: amount,
                })
            }
        }
    }
}

/// Total of `(bonded - locked) + unbonding`: what a consensus slash can take.
pub(crate) fn slashable(acc: &super::account::Account) -> Result<Amount, AmountError> {
    acc.free_stake().checked_add(acc.unbonding_total())
}
