//! Settlement: the one router from a settled round's [`Effect`]s to ledger
//! operations and reputation feedback, and the close of a finished job.
//!
//! | effect | ledger operation |
//! |---|---|
//! | `PayProvider` | release price × metered usage (capped by the round's pay) from the job escrow to the provider |
//! | `RefundClient` | nothing yet: the remainder returns when the job closes |
//! | `ReturnClientBond` | unlock the client's bond lock |
//! | `ForfeitClientBond` | slash the bond lock: the majority referees' fees, the rest to the provider |
//! | `BurnClientBond` | slash the bond lock, burned |
//! | `ReturnStake` | nothing: the provider's slot lock is freed with its slot |
//! | `SlashStake` | slash the provider's slot lock: a share to the client, the majority referees' fees out of the rest, the remainder burned |
//! | `Reputation` | [`crate::feedback::reputation_feedback`] into the book |

use std::sync::Arc;

use idlegrid_dag_ledger::ledger::{EscrowId, LedgerError, LockId, ManagedHandle};
use idlegrid_entrap::{Effect, Outcome, check_conservation};
use idlegrid_market::Match;
use idlegrid_market::registry::{JobId as GoodsJobId, check_payout};
use idlegrid_primitives::{AccountId, Amount};

use super::referees::majority_voters;

/// Why the owners of a job's apps and datasets could not be paid (an
/// effect failure: reported, counted, never a rejection).
#[derive(Debug, thiserror::Error)]
enum OwnerFeeError {
    /// The registry refused to settle the job.
    #[error("registry: {0}")]
    Registry(#[from] idlegrid_market::registry::RegistryError),
    /// The registry's payout breaks the match's terms.
    #[error("payout: {0}")]
    Payout(#[from] idlegrid_market::Violation),
    /// The ledger refused a release.
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
}
use super::{Job, LiveLot, MarketplaceApp, Notice, Settlement};
use crate::feedback::reputation_feedback;

/// What one lot's settlement routes its effects with.
struct Route {
    client: AccountId,
    escrow: EscrowId,
    provider_lock: LockId,
    bond_done: bool,
    stake_slashed: bool,
    /// Referees owed a fee by the convicted party (emptied once paid).
    referees: Vec<AccountId>,
    fee: Amount,
}

impl Route {
    /// Pays each owed referee `fee` out of `lock`, at most `budget` in
    /// all; returns what was paid.
    fn pay_referees(
        &mut self,
        h: &mut ManagedHandle<'_, '_>,
        lock: LockId,
        budget: Amount,
    ) -> Result<Amount, LedgerError> {
        let mut paid = Amount::ZERO;
        for r in std::mem::take(&mut self.referees) {
            let left = budget.saturating_sub(paid);
            let fee = self.fee.min(left);
            if fee.is_zero() {
                break;
            }
            h.slash_lock(lock, fee, Some(&r))?;
            paid = paid.saturating_add(fee);
        }
        Ok(paid)
    }
}

impl MarketplaceApp {
    /// Settles a finished lot: routes its effects, frees or retires the
    /// provider's slot, reports the [`Settlement`].
    pub(super) fn settle(
        &mut self,
        h: &mut ManagedHandle<'_, '_>,
        key: (AccountId, u64),
        lot: u32,
    ) {
        let j = self.jobs.get_mut(&key).expect("settle: live job");
        let l = j.live.remove(&lot).expect("settle: live lot");
        j.settled += 1;
        let escrow = j
            .escrow
            .expect("a matched job's bid was revealed and escrowed");
        if check_conservation(&l.round.locked(), &l.effects).is_err() {
            self.effect_failed(format!(
                "job {} lot {lot}: effects do not conserve the pots",
                key.1
            ));
        }
        let mut s = Settlement {
            client: key.0,
            job: key.1,
            lot,
            provider: l.provider,
            outcome: l.round.outcome().expect("settled round has an outcome"),
            paid: Amount::ZERO,
            slashed: Amount::ZERO,
            burned: Amount::ZERO,
            bond_forfeited: Amount::ZERO,
            referee_fees: Amount::ZERO,
            traps: l.round.traps().len() as u32,
            slots: l.round.plan().slots() as u32,
            usage_micros: l.usage_micros,
        };
        let mut route = Route {
            client: key.0,
            escrow,
            provider_lock: self.providers[&l.provider].slots[l.slot].lock,
            bond_done: false,
            stake_slashed: false,
            referees: majority_voters(&l.round),
            fee: self.params.referee_fee,
        };
        for e in &l.effects {
            if let Err(e) = self.route(h, e, &l, &mut route, &mut s) {
                self.effect_failed(format!("job {} lot {lot}: {e}", key.1));
            }
        }
        if !route.bond_done {
            let _ = h.unlock(l.bond_lock);
        }
        self.release_slot(h, &l, &route);
        self.count_verified(&l.provider, &s, route.stake_slashed);
        self.notice(Notice::Settled(s));
    }

    /// The provider's verified history: one more clean trap-carrying lot,
    /// or none left after a slash (a caught provider starts over).
    fn count_verified(&mut self, provider: &AccountId, s: &Settlement, slashed: bool) {
        let Some(p) = self.providers.get_mut(provider) else {
            return;
        };
        if slashed {
            p.verified_lots = 0;
        } else if s.traps > 0 && s.outcome == Outcome::Clean {
            p.verified_lots = p.verified_lots.saturating_add(1);
        }
    }

    /// Carries out one effect of a settled lot.
    fn route(
        &mut self,
        h: &mut ManagedHandle<'_, '_>,
        e: &Effect,
        l: &LiveLot,
        r: &mut Route,
        s: &mut Settlement,
    ) -> Result<(), LedgerError> {
        match *e {
            Effect::PayProvider {
                provider, amount, ..
            } => {
                // Pay-as-you-go: price × metered usage, capped by the round's
                // pay; the rest returns with the job remainder.
                let metered = l
                    .price
                    .mul_ratio(u128::from(l.usage_micros), 1_000_000)
                    .unwrap_or(amount);
                s.paid = metered.min(amount);
                if s.paid.is_zero() {
                    return Ok(());
                }
                h.release_escrow_to(r.escrow, Some(s.paid), &provider)
                    .map(|_| ())
            }
            Effect::RefundClient { .. } | Effect::ReturnStake { .. } => Ok(()),
            Effect::ReturnClientBond { .. } => {
                r.bond_done = true;
                h.unlock(l.bond_lock).map(|_| ())
            }
            Effect::ForfeitClientBond {
                provider, amount, ..
            } => {
                r.bond_done = true;
                let fees = r.pay_referees(h, l.bond_lock, amount)?;
                s.referee_fees = s.referee_fees.saturating_add(fees);
                s.bond_forfeited = amount.saturating_sub(fees);
                slash_then_unlock(h, l.bond_lock, s.bond_forfeited, Some(&provider))
            }
            Effect::BurnClientBond { amount, .. } => {
                r.bond_done = true;
                s.burned = s.burned.saturating_add(amount);
                slash_then_unlock(h, l.bond_lock, amount, None)
            }
            Effect::SlashStake {
                client,
                to_client,
                burned,
                ..
            } => {
                r.stake_slashed = true;
                s.slashed = to_client.saturating_add(burned);
                if !to_client.is_zero() {
                    h.slash_lock(r.provider_lock, to_client, Some(&client))?;
                }
                let fees = r.pay_referees(h, r.provider_lock, burned)?;
                s.referee_fees = s.referee_fees.saturating_add(fees);
                let burned = burned.saturating_sub(fees);
                s.burned = s.burned.saturating_add(burned);
                if !burned.is_zero() {
                    h.slash_lock(r.provider_lock, burned, None)?;
                }
                Ok(())
            }
            Effect::Reputation { .. } => {
                let value = l.round.locked().escrow;
                let epoch = self.book.epoch();
                if let Some(fb) = reputation_feedback(e, r.client, l.provider, value, epoch) {
                    // Rejected feedback (quota, window) only loses a signal.
                    let _ = Arc::make_mut(&mut self.book).apply_feedback(&fb);
                }
                Ok(())
            }
        }
    }

    /// An intact slot is free again; a slashed one leaves the market (what
    /// is left of its lock returns to the provider's free stake, and the
    /// provider must re-offer).
    fn release_slot(&mut self, h: &mut ManagedHandle<'_, '_>, l: &LiveLot, r: &Route) {
        if r.stake_slashed {
            if h.lock(r.provider_lock).is_some() && h.unlock(r.provider_lock).is_err() {
                self.effect_failed("unlocking a slashed slot's remainder".into());
            }
        } else {
            let prov = self
                .providers
                .get_mut(&l.provider)
                .expect("settled lot's provider");
            prov.slots[l.slot].busy = false;
        }
    }

    /// Closes a job whose lots all settled or lapsed: owners' fees, then
    /// the escrow's remainder back to the client.
    pub(super) fn close_if_done(&mut self, h: &mut ManagedHandle<'_, '_>, key: (AccountId, u64)) {
        if !self.jobs.get(&key).is_some_and(Job::done) {
            return;
        }
        let j = self.jobs.remove(&key).expect("checked");
        let Some(escrow) = j.escrow else {
            // Never revealed: nothing was escrowed or matched.
            assert!(
                j.goods_jobs.is_empty() && j.settled == 0,
                "matched without escrow"
            );
            self.notice(Notice::JobClosed {
                client: key.0,
                job: key.1,
                refunded: Amount::ZERO,
            });
            return;
        };
        // Owners of the job's app and datasets: exactly their price per use
        // (fixed at match time) × matched slots, out of the job's escrow.
        for id in &j.goods_jobs {
            let Some(matched) = self.registry.job(id).map(|o| o.matched.clone()) else {
                continue;
            };
            if let Err(e) = self.pay_owners(h, escrow, id, &matched) {
                self.effect_failed(format!("job {}: owner fees: {e}", key.1));
            }
        }
        let refunded = match h.escrow(escrow) {
            Some(e) if !e.remaining.is_zero() => match h.release_escrow_to(escrow, None, &key.0) {
                Ok(a) => a,
                Err(e) => {
                    self.effect_failed(format!("job {}: refund: {e}", key.1));
                    Amount::ZERO
                }
            },
            _ => Amount::ZERO,
        };
        self.notice(Notice::JobClosed {
            client: key.0,
            job: key.1,
            refunded,
        });
    }

    /// Settles registry job `id` (compute is paid per lot by the rounds, so
    /// the registry's split runs for zero seconds: owners' fees only) and
    /// pays each owner out of `escrow`.
    fn pay_owners(
        &mut self,
        h: &mut ManagedHandle<'_, '_>,
        escrow: EscrowId,
        id: &GoodsJobId,
        matched: &Match,
    ) -> Result<(), OwnerFeeError> {
        let payout = self.registry.settle(id, 0)?;
        check_payout(matched, 0, &payout)?;
        for (owner, amount) in &payout.owners {
            if !amount.is_zero() {
                h.release_escrow_to(escrow, Some(*amount), owner)?;
            }
        }
        Ok(())
    }
}

/// The most a round pays per subtask: the price per compute-second times
/// the job's per-subtask compute cap, at least 1.
pub fn per_subtask_cap(price: Amount, cap_micros: u64) -> Amount {
    price
        .mul_ratio(u128::from(cap_micros), 1_000_000)
        .unwrap_or(Amount::ZERO)
        .max(Amount::new(1))
}

/// Takes `amount` from `lock` (to `to`, or burned), then releases what is
/// left of it.
pub(super) fn slash_then_unlock(
    h: &mut ManagedHandle<'_, '_>,
    lock: LockId,
    amount: Amount,
    to: Option<&AccountId>,
) -> Result<(), LedgerError> {
    if !amount.is_zero() {
        h.slash_lock(lock, amount, to)?;
    }
    if h.lock(lock).is_some() {
        h.unlock(lock)?;
    }
    Ok(())
}
