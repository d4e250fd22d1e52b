//! Settlement: splitting a client's escrow into provider pay, owners' fees
//! and the market surplus, with checked arithmetic and a conservation check.

use idlegrid_primitives::{AccountId, Amount, AmountError};
use serde::{Deserialize, Serialize};

use super::types::JobId;
use crate::check::Violation;
use crate::clearing::Match;

/// How a settled job's escrow is paid out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payout {
    /// The job.
    pub job: JobId,
    /// Who paid into escrow.
    pub client: AccountId,
    /// The escrow: compute at the buyer price plus every owner fee
    /// ([`Match::escrow_total`]).
    pub escrow: Amount,
    /// The provider.
    pub provider: AccountId,
    /// Compute at the seller price ([`Match::seller_total`]).
    pub provider_pay: Amount,
    /// One entry per fee of the match, in the match's order: the owner at
    /// match time and `price_per_use × slots`.
    pub owners: Vec<(AccountId, Amount)>,
    /// `buyer_total − seller_total` (non-zero only under trade reduction);
    /// the composition root decides where it goes (burned, or a pool).
    pub surplus: Amount,
}

impl Match {
    /// The job this match creates.
    pub fn job_id(&self) -> JobId {
        JobId::new(self.bid, self.ask)
    }
    /// Sum of the owners' prices per use (per slot).
    pub fn fees_per_slot(&self) -> Result<Amount, AmountError> {
        Amount::checked_sum(self.fees.iter().map(|f| f.price_per_use))
    }
    /// Owners' fees for all matched slots (independent of run time).
    pub fn fees_total(&self) -> Result<Amount, AmountError> {
        self.fees_per_slot()?
            .checked_mul(u128::from(self.slots.get()))
    }
    /// What the client escrows for `seconds`: compute at the buyer price
    /// plus the owners' fees.
    pub fn escrow_total(&self, seconds: u64) -> Result<Amount, AmountError> {
        let compute = self
            .buyer_price
            .checked_mul(u128::from(self.slots.get()))?
            .checked_mul(u128::from(seconds))?;
        compute.checked_add(self.fees_total()?)
    }
}

/// Splits the escrow of `m` run for `seconds` (checked arithmetic; an
/// overflow is an error and pays nothing).
pub fn split(m: &Match, seconds: u64) -> Result<Payout, AmountError> {
    let slots = u128::from(m.slots.get());
    let secs = u128::from(seconds);
    let buyer = m.buyer_price.checked_mul(slots)?.checked_mul(secs)?;
    let seller = m.seller_price.checked_mul(slots)?.checked_mul(secs)?;
    let surplus = buyer.checked_sub(seller)?;
    let owners = m
        .fees
        .iter()
        .map(|f| Ok((f.owner, f.price_per_use.checked_mul(slots)?)))
        .collect::<Result<Vec<_>, AmountError>>()?;
    let escrow = m.escrow_total(seconds)?;
    let p = Payout {
        job: m.job_id(),
        client: m.client,
        escrow,
        provider: m.provider,
        provider_pay: seller,
        owners,
        surplus,
    };
    assert_eq!(check_payout(m, seconds, &p), Ok(()));
    Ok(p)
}

/// Conservation and exactness of a payout: provider pay + owners' fees +
/// surplus equals the escrow; each owner receives exactly its price per use
/// times the slots; the provider exactly the seller total.
pub fn check_payout(m: &Match, seconds: u64, p: &Payout) -> Result<(), Violation> {
    let bad = |what| Violation::Settlement(what);
    let mut paid = p
        .provider_pay
        .checked_add(p.surplus)
        .map_err(|_| bad("overflow"))?;
    if p.owners.len() != m.fees.len() {
        return Err(bad("one payment per owner fee"));
    }
    for (f, (owner, amount)) in m.fees.iter().zip(&p.owners) {
        let due = f
            .price_per_use
            .checked_mul(u128::from(m.slots.get()))
            .map_err(|_| bad("overflow"))?;
        if *owner != f.owner || *amount != due {
            return Err(bad("an owner is not paid exactly its price per use"));
        }
        paid = paid.checked_add(*amount).map_err(|_| bad("overflow"))?;
    }
    if paid != p.escrow {
        return Err(Violation::Conservation {
            escrow: p.escrow,
            paid,
        });
    }
    let escrow = m.escrow_total(seconds).map_err(|_| bad("overflow"))?;
    let seller = m.seller_total(seconds).map_err(|_| bad("overflow"))?;
    if p.escrow != escrow || p.provider_pay != seller {
        return Err(bad("escrow or provider pay differs from the match"));
    }
    if p.provider != m.provider || p.client != m.client || p.job != m.job_id() {
        return Err(bad("parties differ from the match"));
    }
    Ok(())
}
