//! Spam protection for fee-less transactions: a per-account quota of
//! transactions per epoch that grows with the account's holdings.
//!
//! # The rule
//!
//! In epoch `e`, an account holding free balance `b` and bonded stake `s`
//! may have at most
//!
//! ```text
//! quota = min(quota_max, quota_base + floor((b + s) / quota_unit))
//! ```
//!
//! applied transactions, counted from the start of the epoch (the counter
//! resets at the first transaction of a later epoch). Holdings are read
//! before the transaction is applied. A rejected transaction consumes no
//! quota (it changes nothing, by design); transactions that cannot be
//! applied are filtered by validators before inclusion, and consensus bounds
//! the bytes per block and per author.
//!
//! # Attack cost
//!
//! Transactions are free, holding tokens is not: to sustain `R` applied
//! transactions per epoch an attacker must keep about
//! `(R / k) · quota_unit` tokens idle, where `k = 1 + quota_base` per
//! `quota_unit` held in one identity. Splitting funds over many identities
//! (Sybils) earns at most `quota_base` extra transactions each, and every new
//! account costs at least `min_new_account` tokens (a transfer creating an
//! account must carry that much), so with the default
//! `min_new_account = quota_unit` an identity yields at most
//! `quota_base + 1` transactions per epoch per `quota_unit` held. The tokens
//! are not spent, only immobilised; the opportunity cost is the point. The
//! cap `quota_max` bounds what one whale can do within a single epoch.

use idlegrid_primitives::{Amount, Epoch};

use super::account::Account;
use super::genesis::Params;

/// The account's transaction quota for one epoch (see the module docs).
pub fn quota_of(params: &Params, account: &Account) -> u64 {
    let held = account.balance.saturating_add(account.bonded);
    let units = held.get() / params.quota_unit.get().max(1);
    let extra = u64::try_from(units).unwrap_or(u64::MAX);
    params
        .quota_base
        .saturating_add(extra)
        .min(params.quota_max)
}

/// Transactions already used by the account in `epoch`.
pub fn used_in(account: &Account, epoch: Epoch) -> u64 {
    if account.quota_epoch == epoch {
        account.quota_used
    } else {
        0
    }
}

/// Remaining transactions for the account in `epoch`.
pub fn remaining(params: &Params, account: &Account, epoch: Epoch) -> u64 {
    quota_of(params, account).saturating_sub(used_in(account, epoch))
}

/// Records one applied transaction in `epoch`.
pub(crate) fn charge(account: &mut Account, epoch: Epoch) {
    if account.quota_epoch != epoch {
        account.quota_epoch = epoch;
        account.quota_used = 0;
    }
    account.quota_used = account.quota_used.saturating_add(1);
}

/// Holdings needed for a given quota (for documentation and tools).
pub fn holdings_for(params: &Params, quota: u64) -> Amount {
    let extra = quota.saturating_sub(params.quota_base);
    params
        .quota_unit
        .checked_mul(u128::from(extra))
        .unwrap_or(Amount::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_grows_with_holdings_and_caps() {
        let p = Params::default();
        let mut a = Account::default();
        assert_eq!(quota_of(&p, &a), p.quota_base);
        a.balance = p.quota_unit.checked_mul(3).unwrap();
        assert_eq!(quota_of(&p, &a), p.quota_base + 3);
        a.bonded = p.quota_unit.checked_mul(2).unwrap();
        assert_eq!(quota_of(&p, &a), p.quota_base + 5);
        a.balance = Amount::MAX;
        assert_eq!(quota_of(&p, &a), p.quota_max);
        assert_eq!(
            holdings_for(&p, p.quota_base + 5),
            p.quota_unit.checked_mul(5).unwrap()
        );
    }

    #[test]
    fn usage_resets_per_epoch() {
        let mut a = Account::default();
        charge(&mut a, Epoch::new(1));
        charge(&mut a, Epoch::new(1));
        assert_eq!(used_in(&a, Epoch::new(1)), 2);
        assert_eq!(used_in(&a, Epoch::new(2)), 0);
        charge(&mut a, Epoch::new(2));
        assert_eq!(used_in(&a, Epoch::new(2)), 1);
    }
}
