//! Escrow: funds of a payer held for a payee under an id, released in parts
//! or in full, refunded, or expired.
//!
//! Life cycle (`e` is the current epoch):
//!
//! - **open** by the payer: `amount` leaves the payer's free balance;
//!   `deadline > e`. At most `Params::max_escrows_per_account` open per payer.
//! - **release** by the payer (or, for an escrow opened by an application,
//!   only by that application) while `e < deadline`: part or all of the
//!   remainder goes to the payee. Fully released escrows are closed; a
//!   second release is an [`LedgerError::UnknownEscrow`].
//! - **refund**: the payee may hand the remainder back at any time; the payer
//!   (or the managing application) may take it back once `e >= deadline`.
//! - **expiry** is lazy: after the deadline a release is
//!   [`LedgerError::EscrowExpired`] and the payer refunds. Nothing is ever
//!   stuck: the payer can always refund an expired escrow, even one opened
//!   through an application.

use idlegrid_primitives::{AccountId, Amount, Epoch};
use serde::{Deserialize, Serialize};

use super::error::LedgerError;
use super::ids::{AppId, EscrowId};
use super::state::StateTx;

/// An open escrow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escrow {
    /// Who funded it and gets refunds.
    pub payer: AccountId,
    /// Who receives releases.
    pub payee: AccountId,
    /// What is still held.
    pub remaining: Amount,
    /// First epoch at which it is expired.
    pub deadline: Epoch,
    /// The application managing it, if opened through one.
    pub app: Option<AppId>,
}

/// Who is acting on an escrow: a signed account or an application on
/// behalf of its transaction's sender.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Actor {
    Account(AccountId),
    App(AppId),
}

impl StateTx<'_> {
    /// Opens an escrow funded by `payer`.
    pub(crate) fn escrow_open(
        &mut self,
        payer: &AccountId,
        payee: &AccountId,
        amount: Amount,
        deadline: Epoch,
        app: Option<AppId>,
    ) -> Result<EscrowId, LedgerError> {
        if amount.is_zero() {
            return Err(LedgerError::ZeroAmount);
        }
        if payer == payee {
            return Err(LedgerError::SelfTransfer);
        }
        let now = self.epoch();
        if deadline <= now {
            return Err(LedgerError::DeadlineInPast { deadline, now });
        }
        if self.account(payee).is_none() {
            let min = self.params().min_new_account;
            if amount < min {
                return Err(LedgerError::NewAccountTooSmall { min, got: amount });
            }
            if !payee.public_key().is_valid() {
                return Err(LedgerError::InvalidRecipient(*payee));
            }
        }
        let max = self.params().max_escrows_per_account;
        if self.existing(payer)?.open_escrows >= max {
            return Err(LedgerError::TooManyEscrows { max });
        }
        self.debit(payer, amount)?;
        let acc = self.account_mut(payer)?;
        acc.open_escrows += 1;
        let id = self.alloc_escrow_id()?;
        self.set_escrow(
            id,
            Some(Escrow {
                payer: *payer,
                payee: *payee,
                remaining: amount,
                deadline,
                app,
            }),
        );
        Ok(id)
    }

    fn escrow_get(&self, id: EscrowId) -> Result<Escrow, LedgerError> {
        self.escrow(id)
            .cloned()
            .ok_or(LedgerError::UnknownEscrow(id))
    }

    /// Releases `amount` (or everything if `None`) to the payee.
    pub(crate) fn escrow_release(
        &mut self,
        actor: Actor,
        id: EscrowId,
        amount: Option<Amount>,
    ) -> Result<Amount, LedgerError> {
        self.escrow_release_to(actor, id, amount, None)
    }

    /// Releases `amount` (or everything if `None`) to the payee, or to
    /// `recipient` — which only the managing application may name (e.g. to
    /// pay an app owner's fee out of a job's escrow).
    pub(crate) fn escrow_release_to(
        &mut self,
        actor: Actor,
        id: EscrowId,
        amount: Option<Amount>,
        recipient: Option<&AccountId>,
    ) -> Result<Amount, LedgerError> {
        let mut e = self.escrow_get(id)?;
        match (actor, e.app) {
            (Actor::Account(a), None) if a == e.payer => {}
            (Actor::Account(_), None) => return Err(LedgerError::NotPayer(id)),
            (Actor::Account(_), Some(app)) => {
                return Err(LedgerError::AppManaged { escrow: id, app });
            }
            (Actor::App(me), Some(app)) if me == app => {}
            (Actor::App(_), _) => return Err(LedgerError::NotPayer(id)),
        }
        if self.epoch() >= e.deadline {
            return Err(LedgerError::EscrowExpired {
                escrow: id,
                deadline: e.deadline,
            });
        }
        let amount = amount.unwrap_or(e.remaining);
        if amount.is_zero() {
            return Err(LedgerError::ZeroAmount);
        }
        e.remaining =
            e.remaining
                .checked_sub(amount)
                .map_err(|_| LedgerError::InsufficientEscrow {
                    escrow: id,
                    remaining: e.remaining,
                    need: amount,
                })?;
        let to = match (actor, recipient) {
            (Actor::App(_), Some(r)) => *r,
            (Actor::Account(_), Some(_)) => return Err(LedgerError::NotPayer(id)),
            (_, None) => e.payee,
        };
        self.credit_settlement(&to, amount)?;
        self.escrow_store(id, e)?;
        Ok(amount)
    }

    /// Returns the remainder to the payer and closes the escrow.
    pub(crate) fn escrow_refund(
        &mut self,
        actor: Actor,
        id: EscrowId,
    ) -> Result<Amount, LedgerError> {
        let mut e = self.escrow_get(id)?;
        let expired = self.epoch() >= e.deadline;
        let allowed = match actor {
            Actor::Account(a) => a == e.payee || (a == e.payer && expired),
            Actor::App(me) => e.app == Some(me),
        };
        if !allowed {
            return Err(LedgerError::NotRefundable(id));
        }
        let amount = e.remaining;
        e.remaining = Amount::ZERO;
        self.credit_settlement(&e.payer, amount)?;
        self.escrow_store(id, e)?;
        Ok(amount)
    }

    /// Writes back an escrow, closing it if empty.
    fn escrow_store(&mut self, id: EscrowId, e: Escrow) -> Result<(), LedgerError> {
        if e.remaining.is_zero() {
            let acc = self.account_mut(&e.payer)?;
            assert!(acc.open_escrows > 0, "escrow count out of sync for {id}");
            acc.open_escrows -= 1;
            self.set_escrow(id, None);
        } else {
            self.set_escrow(id, Some(e));
        }
        Ok(())
    }
}
