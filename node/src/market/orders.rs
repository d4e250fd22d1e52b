//! Offers, reprices and posted jobs: the orders' side of the marketplace.

use std::collections::BTreeMap;

use idlegrid_dag_ledger::ledger::{LedgerError, LedgerHandle};
use idlegrid_primitives::Amount;

use super::settlement::per_subtask_cap;
use super::{Job, JobRequest, MAX_LOTS, MAX_PENDING_BIDS, MarketplaceApp, Provider, SlotLock, err};

/// Most slots one provider offers.
pub const MAX_CAPACITY: u32 = 16;

impl MarketplaceApp {
    /// `Offer`: locks one stake lock per slot and lists the provider.
    pub(super) fn offer(
        &mut self,
        h: &mut LedgerHandle<'_, '_>,
        price: Amount,
        capacity: u32,
        stake_per_slot: Amount,
        region: u8,
    ) -> Result<(), LedgerError> {
        let me = h.sender();
        if stake_per_slot != self.rules.stake_per_slot {
            return Err(err(h, "stake_per_slot differs from the marketplace's"));
        }
        if capacity == 0 || capacity > MAX_CAPACITY || price.is_zero() {
            return Err(err(h, "capacity must be 1..=16 and price positive"));
        }
        if self.providers.contains_key(&me) {
            return Err(err(h, "already offering"));
        }
        let mut slots = Vec::new();
        for _ in 0..capacity {
            slots.push(SlotLock {
                lock: h.lock_stake(stake_per_slot)?,
                busy: false,
            });
        }
        let stake = h.bonded(&me);
        self.register(&me, stake);
        self.providers.insert(
            me,
            Provider {
                price,
                region,
                slots,
            },
        );
        Ok(())
    }

    /// `Reprice`: a provider changes the price of its offer.
    pub(super) fn reprice(
        &mut self,
        h: &mut LedgerHandle<'_, '_>,
        price: Amount,
    ) -> Result<(), LedgerError> {
        if price.is_zero() {
            return Err(err(h, "price must be positive"));
        }
        let Some(p) = self.providers.get_mut(&h.sender()) else {
            return Err(err(h, "not offering: send `Offer` first"));
        };
        p.price = price;
        Ok(())
    }

    /// `PostJob`: escrows the maximum budget, locks one client bond per lot
    /// and queues the bid for the next clearing.
    pub(super) fn post_job(
        &mut self,
        h: &mut LedgerHandle<'_, '_>,
        req: JobRequest,
    ) -> Result<(), LedgerError> {
        let me = h.sender();
        if req.lots == 0 || req.lots > MAX_LOTS || req.max_slots_per_lot == 0 {
            return Err(err(h, "lots must be 1..=64 and max_slots_per_lot positive"));
        }
        if self.jobs.contains_key(&(me, req.job)) {
            return Err(err(h, "job id already used"));
        }
        if self.queue.len() >= MAX_PENDING_BIDS {
            return Err(err(h, "too many pending bids; retry later"));
        }
        req.goods
            .check_shape()
            .map_err(|e| h.reject(format!("job goods: {e}")))?;
        let per_lot = per_subtask_cap(req.max_price, req.cap_micros_per_subtask)
            .checked_mul(u128::from(req.max_slots_per_lot))?;
        // Owners' fees are on top of compute: at most the fee cap per lot
        // (one use per lot), fixed at match time and paid at job close.
        let fees = req
            .goods
            .max_fee_per_slot
            .checked_mul(u128::from(req.lots))?;
        let budget = per_lot
            .checked_mul(u128::from(req.lots))?
            .checked_add(fees)?;
        let deadline = h.epoch().plus(1_000_000);
        // The ledger refuses an escrow payable to its payer, and the
        // providers are not known yet: the escrow names the first referee as
        // nominal payee (a payee can only hand funds back to the payer) and
        // every payment goes out through `release_escrow_to`.
        let nominal = self
            .rules
            .referees
            .first()
            .map(|r| r.account())
            .ok_or_else(|| h.reject("no referees configured"))?;
        let escrow = h.open_escrow(&nominal, budget, deadline)?;
        let mut bonds = Vec::new();
        for _ in 0..req.lots {
            bonds.push(h.lock_stake(req.client_bond)?);
        }
        let stake = h.bonded(&me);
        self.register(&me, stake);
        self.queue.push((me, req.job));
        self.jobs.insert(
            (me, req.job),
            Job {
                req,
                escrow,
                unmatched_bonds: bonds,
                matched: BTreeMap::new(),
                live: BTreeMap::new(),
                settled: 0,
                lapsed: 0,
                queued: true,
                goods_jobs: Vec::new(),
            },
        );
        Ok(())
    }
}
