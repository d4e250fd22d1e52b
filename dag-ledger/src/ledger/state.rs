//! The replicated state and its transactional write path.
//!
//! Every mutation goes through a [`StateTx`], which journals the previous
//! value of each touched entry. Committing drops the journal; dropping the
//! `StateTx` without committing replays the journal backwards, so a rejected
//! transaction — including everything an [`super::Application`] did through
//! its handle — leaves the state bit-for-bit unchanged.

use idlegrid_primitives::{AccountId, Amount, CowMap, CowSet, Digest, Epoch, SeqMap};
use serde::{Deserialize, Serialize};

use super::account::Account;
use super::commitment::{EntryKey, Touched};
use super::error::LedgerError;
use super::escrow::Escrow;
use super::genesis::Params;
use super::ids::{EscrowId, LockId};
use super::staking::Lock;

/// The whole replicated state (what snapshots carry and digests cover).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct State {
    pub(crate) params: Params,
    pub(crate) initial_supply: Amount,
    pub(crate) burned: Amount,
    /// The epoch of the last applied batch.
    pub(crate) epoch: Epoch,
    /// Shared shard by shard with copies of the state (see [`CowMap`]):
    /// accounts are most of the state, and a batch writes few of them.
    pub(crate) accounts: CowMap<AccountId, Account>,
    /// Shared chunk by chunk with copies of the state (see [`SeqMap`]).
    pub(crate) escrows: SeqMap<EscrowId, Escrow>,
    pub(crate) locks: SeqMap<LockId, Lock>,
    /// Offense ids already punished (grows only with successful slashes,
    /// each of which destroys stake, so it is economically bounded).
    pub(crate) slashed: CowSet<Digest>,
    pub(crate) next_escrow: EscrowId,
    pub(crate) next_lock: LockId,
}

enum Undo {
    Account(AccountId, Option<Account>),
    Escrow(EscrowId, Option<Escrow>),
    Lock(LockId, Option<Lock>),
    Slashed(Digest),
    Burned(Amount),
    NextEscrow(EscrowId),
    NextLock(LockId),
}

/// A journaled, all-or-nothing view of the state for one transaction.
pub(crate) struct StateTx<'a> {
    state: &'a mut State,
    undo: Vec<Undo>,
}

impl Drop for StateTx<'_> {
    fn drop(&mut self) {
        self.rollback_to(0);
    }
}

impl<'a> StateTx<'a> {
    /// Starts a transaction on `state`.
    pub(crate) fn begin(state: &'a mut State) -> Self {
        Self {
            state,
            undo: Vec::new(),
        }
    }

    /// Keeps every change and adds the key of every entry it touched to
    /// `touched` (for the incremental state commitment).
    pub(crate) fn commit(mut self, touched: &mut Touched) {
        for u in self.undo.drain(..) {
            let key = match u {
                Undo::Account(id, _) => EntryKey::Account(id),
                Undo::Escrow(id, _) => EntryKey::Escrow(id),
                Undo::Lock(id, _) => EntryKey::Lock(id),
                Undo::Slashed(d) => EntryKey::Slashed(d),
                Undo::Burned(_) | Undo::NextEscrow(_) | Undo::NextLock(_) => continue,
            };
            touched.add(key);
        }
    }

    /// Runs `f` all-or-nothing inside this transaction: if it fails, the
    /// changes it made are undone and the rest of the transaction stays.
    pub(crate) fn atomic<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let mark = self.undo.len();
        let r = f(self);
        if r.is_err() {
            self.rollback_to(mark);
        }
        r
    }

    /// Undoes every change after the first `mark` journal entries.
    fn rollback_to(&mut self, mark: usize) {
        while self.undo.len() > mark {
            let Some(u) = self.undo.pop() else { break };
            let s = &mut *self.state;
            match u {
                Undo::Account(id, Some(a)) => {
                    s.accounts.insert(id, a);
                }
                Undo::Account(id, None) => {
                    s.accounts.remove(&id);
                }
                Undo::Escrow(id, Some(e)) => {
                    s.escrows.insert(id, e);
                }
                Undo::Escrow(id, None) => {
                    s.escrows.remove(&id);
                }
                Undo::Lock(id, Some(l)) => {
                    s.locks.insert(id, l);
                }
                Undo::Lock(id, None) => {
                    s.locks.remove(&id);
                }
                Undo::Slashed(d) => {
                    s.slashed.remove(&d);
                }
                Undo::Burned(b) => s.burned = b,
                Undo::NextEscrow(n) => s.next_escrow = n,
                Undo::NextLock(n) => s.next_lock = n,
            }
        }
    }

    /// The current epoch.
    pub(crate) fn epoch(&self) -> Epoch {
        self.state.epoch
    }

    /// The parameters.
    pub(crate) fn params(&self) -> &Params {
        &self.state.params
    }

    /// An account, if it exists.
    pub(crate) fn account(&self, id: &AccountId) -> Option<&Account> {
        self.state.accounts.get(id)
    }

    /// An existing account, or [`LedgerError::UnknownAccount`].
    pub(crate) fn existing(&self, id: &AccountId) -> Result<&Account, LedgerError> {
        self.account(id).ok_or(LedgerError::UnknownAccount(*id))
    }

    /// Mutable access to an existing account (journaled).
    pub(crate) fn account_mut(&mut self, id: &AccountId) -> Result<&mut Account, LedgerError> {
        let acc = self
            .state
            .accounts
            .get_mut(id)
            .ok_or(LedgerError::UnknownAccount(*id))?;
        self.undo.push(Undo::Account(*id, Some(acc.clone())));
        Ok(acc)
    }

    /// Mutable access to an account, creating an empty one (journaled).
    fn account_or_create(&mut self, id: &AccountId) -> &mut Account {
        let before = self.state.accounts.get(id).cloned();
        self.undo.push(Undo::Account(*id, before));
        self.state
            .accounts
            .get_or_insert_with(*id, Account::default)
    }

    /// An escrow, if open.
    pub(crate) fn escrow(&self, id: EscrowId) -> Option<&Escrow> {
        self.state.escrows.get(&id)
    }

    /// Inserts, replaces (`Some`) or removes (`None`) an escrow (journaled).
    pub(crate) fn set_escrow(&mut self, id: EscrowId, e: Option<Escrow>) {
        let prev = match e {
            Some(e) => self.state.escrows.insert(id, e),
            None => self.state.escrows.remove(&id),
        };
        self.undo.push(Undo::Escrow(id, prev));
    }

    /// A lock, if held.
    pub(crate) fn lock(&self, id: LockId) -> Option<&Lock> {
        self.state.locks.get(&id)
    }

    /// Inserts, replaces (`Some`) or removes (`None`) a lock (journaled).
    pub(crate) fn set_lock(&mut self, id: LockId, l: Option<Lock>) {
        let prev = match l {
            Some(l) => self.state.locks.insert(id, l),
            None => self.state.locks.remove(&id),
        };
        self.undo.push(Undo::Lock(id, prev));
    }

    /// Allocates the next escrow id (journaled).
    pub(crate) fn alloc_escrow_id(&mut self) -> Result<EscrowId, LedgerError> {
        let id = self.state.next_escrow;
        let next = id.get().checked_add(1).ok_or(LedgerError::IdsExhausted)?;
        self.undo.push(Undo::NextEscrow(id));
        self.state.next_escrow = EscrowId::new(next);
        Ok(id)
    }

    /// Allocates the next lock id (journaled).
    pub(crate) fn alloc_lock_id(&mut self) -> Result<LockId, LedgerError> {
        let id = self.state.next_lock;
        let next = id.get().checked_add(1).ok_or(LedgerError::IdsExhausted)?;
        self.undo.push(Undo::NextLock(id));
        self.state.next_lock = LockId::new(next);
        Ok(id)
    }

    /// Records a punished offense; errors if it already was.
    pub(crate) fn mark_slashed(&mut self, offense: Digest) -> Result<(), LedgerError> {
        if !self.state.slashed.insert(offense) {
            return Err(LedgerError::AlreadySlashed(offense));
        }
        self.undo.push(Undo::Slashed(offense));
        Ok(())
    }

    /// Destroys `amount` tokens that the caller has already removed from an
    /// account or escrow (journaled).
    pub(crate) fn burn(&mut self, amount: Amount) -> Result<(), LedgerError> {
        let burned = self.state.burned.checked_add(amount)?;
        self.undo.push(Undo::Burned(self.state.burned));
        self.state.burned = burned;
        Ok(())
    }

    // ---- checked money movements ----

    /// Takes `amount` from `from`'s free balance.
    pub(crate) fn debit(&mut self, from: &AccountId, amount: Amount) -> Result<(), LedgerError> {
        let acc = self.account_mut(from)?;
        acc.balance =
            acc.balance
                .checked_sub(amount)
                .map_err(|_| LedgerError::InsufficientBalance {
                    have: acc.balance,
                    need: amount,
                })?;
        Ok(())
    }

    /// Adds `amount` to `to`'s free balance, creating the account if needed
    /// (a new account must receive at least `min_new_account` in one go and
    /// be a valid public key).
    pub(crate) fn credit(&mut self, to: &AccountId, amount: Amount) -> Result<(), LedgerError> {
        self.credit_inner(to, amount, true)
    }

    /// Like [`Self::credit`] but without the new-account minimum: for payouts
    /// of escrows and locks, whose Sybil price was paid when they were opened.
    pub(crate) fn credit_settlement(
        &mut self,
        to: &AccountId,
        amount: Amount,
    ) -> Result<(), LedgerError> {
        self.credit_inner(to, amount, false)
    }

    fn credit_inner(
        &mut self,
        to: &AccountId,
        amount: Amount,
        require_min: bool,
    ) -> Result<(), LedgerError> {
        if self.account(to).is_none() {
            let min = self.params().min_new_account;
            if require_min && amount < min {
                return Err(LedgerError::NewAccountTooSmall { min, got: amount });
            }
            if !to.public_key().is_valid() {
                return Err(LedgerError::InvalidRecipient(*to));
            }
        }
        let acc = self.account_or_create(to);
        acc.balance = acc.balance.checked_add(amount)?;
        Ok(())
    }

    /// Moves `amount` of free balance from `from` to `to`.
    pub(crate) fn transfer(
        &mut self,
        from: &AccountId,
        to: &AccountId,
        amount: Amount,
    ) -> Result<(), LedgerError> {
        if amount.is_zero() {
            return Err(LedgerError::ZeroAmount);
        }
        if from == to {
            return Err(LedgerError::SelfTransfer);
        }
        self.debit(from, amount)?;
        self.credit(to, amount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::genesis::Genesis;
    use crate::ledger::ledger::Ledger;
    use idlegrid_primitives::{Keypair, Seed};

    fn state() -> (State, AccountId, AccountId) {
        let a = Keypair::from_seed(&Seed::from_u64(1)).account_id();
        let b = Keypair::from_seed(&Seed::from_u64(2)).account_id();
        let g = Genesis {
            balances: vec![(a, Amount::new(1_000)), (b, Amount::ZERO)],
            stakes: vec![],
            params: Params::default(),
        };
        (Ledger::new(g).unwrap().state, a, b)
    }

    #[test]
    fn dropping_without_commit_restores_everything() {
        let (mut s, a, b) = state();
        let before = s.clone();
        {
            let mut t = StateTx::begin(&mut s);
            t.transfer(&a, &b, Amount::new(1_000)).unwrap();
            t.burn(Amount::new(5)).unwrap();
            t.alloc_escrow_id().unwrap();
            t.mark_slashed(Digest::from_bytes([1; 32])).unwrap();
        }
        assert_eq!(s, before);
        let mut t = StateTx::begin(&mut s);
        t.transfer(&a, &b, Amount::new(1_000)).unwrap();
        t.commit(&mut Touched::default());
        assert_eq!(s.accounts[&b].balance, Amount::new(1_000));
    }

    #[test]
    fn atomic_undoes_only_the_failed_part() {
        let (mut s, a, b) = state();
        let mut t = StateTx::begin(&mut s);
        t.transfer(&a, &b, Amount::new(100)).unwrap();
        let r = t.atomic(|t| {
            t.transfer(&a, &b, Amount::new(100))?;
            t.transfer(&a, &b, Amount::new(10_000))
        });
        assert!(matches!(r, Err(LedgerError::InsufficientBalance { .. })));
        t.commit(&mut Touched::default());
        assert_eq!(s.accounts[&a].balance, Amount::new(900));
        assert_eq!(s.accounts[&b].balance, Amount::new(100));
    }
}
