//! The ledger's invariants as plain functions, for tests, the simulator and
//! auditors. Each returns the first violation it finds.

use std::collections::BTreeMap;

use idlegrid_primitives::{AccountId, Amount};
use thiserror::Error;

use super::ledger::Ledger;

/// A broken ledger invariant: always a bug in the ledger (or a forged
/// snapshot), never a user mistake.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("ledger invariant `{invariant}` violated: {detail}")]
pub struct InvariantViolation {
    /// Which invariant.
    pub invariant: &'static str,
    /// What was found.
    pub detail: String,
}

fn violation(invariant: &'static str, detail: String) -> InvariantViolation {
    InvariantViolation { invariant, detail }
}

/// Money is conserved: Σ(balance + bonded + unbonding) + Σ escrowed
/// = initial supply − burned.
pub fn check_supply(ledger: &Ledger) -> Result<(), InvariantViolation> {
    const NAME: &str = "supply";
    let mut total = Amount::ZERO;
    for (id, acc) in ledger.accounts() {
        let held = acc
            .total()
            .map_err(|e| violation(NAME, format!("{id:?} holdings overflow: {e}")))?;
        total = total
            .checked_add(held)
            .map_err(|e| violation(NAME, format!("sum overflows: {e}")))?;
    }
    for (id, e) in ledger.escrows() {
        total = total
            .checked_add(e.remaining)
            .map_err(|err| violation(NAME, format!("sum overflows at {id}: {err}")))?;
    }
    let expected = ledger
        .initial_supply()
        .checked_sub(ledger.burned())
        .map_err(|_| violation(NAME, "burned exceeds the initial supply".into()))?;
    if total != expected {
        return Err(violation(
            NAME,
            format!(
                "held {total} != initial {} - burned {}",
                ledger.initial_supply(),
                ledger.burned()
            ),
        ));
    }
    Ok(())
}

/// No derived quantity is negative: `locked <= bonded` (free stake ≥ 0) for
/// every account, and no empty escrow, lock or unbonding entry lingers.
/// (Stored amounts are unsigned, so they cannot be negative themselves.)
pub fn check_no_negative(ledger: &Ledger) -> Result<(), InvariantViolation> {
    const NAME: &str = "no-negative";
    for (id, acc) in ledger.accounts() {
        if acc.locked > acc.bonded {
            return Err(violation(
                NAME,
                format!("{id:?} locked {} > bonded {}", acc.locked, acc.bonded),
            ));
        }
        if acc.unbonding.iter().any(|u| u.amount.is_zero()) {
            return Err(violation(NAME, format!("{id:?} has an empty unbonding")));
        }
    }
    if let Some((id, _)) = ledger.escrows().find(|(_, e)| e.remaining.is_zero()) {
        return Err(violation(NAME, format!("{id} is open but empty")));
    }
    if let Some((id, _)) = ledger.locks().find(|(_, l)| l.amount.is_zero()) {
        return Err(violation(NAME, format!("{id} is held but empty")));
    }
    Ok(())
}

/// Bookkeeping agrees: per account, `locked` = Σ its locks, `open_locks` and
/// `open_escrows` match the lock and escrow tables, every bound holds,
/// every escrow payer and lock owner exists, ids are below the counters.
pub fn check_accounting(ledger: &Ledger) -> Result<(), InvariantViolation> {
    const NAME: &str = "accounting";
    let p = ledger.params();
    let mut escrows: BTreeMap<AccountId, u32> = BTreeMap::new();
    for (id, e) in ledger.escrows() {
        if ledger.account(&e.payer).is_none() {
            return Err(violation(NAME, format!("{id} payer has no account")));
        }
        if *id >= ledger.state.next_escrow {
            return Err(violation(NAME, format!("{id} is not below the id counter")));
        }
        *escrows.entry(e.payer).or_default() += 1;
    }
    let mut locks: BTreeMap<AccountId, (u32, Amount)> = BTreeMap::new();
    for (id, l) in ledger.locks() {
        if *id >= ledger.state.next_lock {
            return Err(violation(NAME, format!("{id} is not below the id counter")));
        }
        let slot = locks.entry(l.owner).or_default();
        slot.0 += 1;
        slot.1 = slot
            .1
            .checked_add(l.amount)
            .map_err(|e| violation(NAME, format!("lock sum overflows: {e}")))?;
    }
    for (id, acc) in ledger.accounts() {
        let n_esc = escrows.remove(id).unwrap_or(0);
        if acc.open_escrows != n_esc || n_esc > p.max_escrows_per_account {
            return Err(violation(
                NAME,
                format!(
                    "{id:?} open_escrows {} vs {n_esc} escrows",
                    acc.open_escrows
                ),
            ));
        }
        let (n_locks, sum) = locks.remove(id).unwrap_or_default();
        if acc.open_locks != n_locks || acc.locked != sum || n_locks > p.max_locks_per_account {
            return Err(violation(
                NAME,
                format!(
                    "{id:?} open_locks {} locked {} vs {n_locks} locks summing {sum}",
                    acc.open_locks, acc.locked
                ),
            ));
        }
        if acc.unbonding.len() > p.max_unbonding_entries as usize {
            return Err(violation(NAME, format!("{id:?} has too many unbondings")));
        }
    }
    if let Some((id, _)) = locks.into_iter().next() {
        return Err(violation(NAME, format!("lock owner {id:?} has no account")));
    }
    Ok(())
}

/// The incrementally maintained state digest equals the digest recomputed
/// from the whole state (every change went through the write journal).
pub fn check_commitment(ledger: &Ledger) -> Result<(), InvariantViolation> {
    let (kept, full) = (ledger.state_digest(), ledger.state_digest_recomputed());
    if kept != full {
        return Err(violation(
            "commitment",
            format!(
                "incremental state digest {} != recomputed {}",
                kept.short(),
                full.short()
            ),
        ));
    }
    Ok(())
}

/// Every invariant above.
pub fn check_all(ledger: &Ledger) -> Result<(), InvariantViolation> {
    check_supply(ledger)?;
    check_no_negative(ledger)?;
    check_accounting(ledger)?;
    check_commitment(ledger)
}
