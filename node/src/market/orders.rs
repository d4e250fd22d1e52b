//! Offers, sealed asks and bids, and their reveals: the orders' side of the
//! marketplace. Prices only ever arrive sealed (see [`super::sealed`]).

use std::collections::BTreeMap;

use idlegrid_dag_ledger::ledger::{LedgerError, LedgerHandle};
use idlegrid_market::Features;
use idlegrid_primitives::{Amount, Commitment, Salt};

use super::error::{MarketError, Unservable, reject};
use super::sealed::{OrderKey, SealError};
use super::settlement::per_subtask_cap;
use super::{
    Environment, Job, JobRequest, MAX_LOTS, MAX_PENDING_BIDS, MarketplaceApp, NextAsk, Notice,
    Provider, SlotLock,
};

/// Most slots one provider offers.
pub const MAX_CAPACITY: u32 = 16;

impl MarketplaceApp {
    /// `Offer`: locks one stake lock per slot and lists the provider; from
    /// a provider already listed, replaces its offer (see
    /// [`MarketTx::Offer`](super::MarketTx::Offer)).
    pub(super) fn offer(
        &mut self,
        h: &mut LedgerHandle<'_, '_>,
        capacity: u32,
        stake_per_slot: Amount,
        region: u8,
        environment: Environment,
    ) -> Result<(), LedgerError> {
        let me = h.sender();
        if stake_per_slot != self.rules.stake_per_slot {
            return Err(reject(
                h,
                MarketError::StakePerSlot {
                    expected: self.rules.stake_per_slot,
                    got: stake_per_slot,
                },
            ));
        }
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Err(reject(
                h,
                MarketError::Capacity {
                    got: capacity,
                    max: MAX_CAPACITY,
                },
            ));
        }
        if !environment.executors.is_valid() {
            return Err(reject(h, MarketError::BadExecutors));
        }
        if let Err(e) = environment.features.check() {
            return Err(reject(h, MarketError::Environment((&e).into())));
        }
        // On a rejection the ledger rolls its operations back: change this
        // app's state only once every lock succeeded.
        let (mut slots, verified_lots) = self
            .providers
            .get(&me)
            .map_or_else(|| (Vec::new(), 0), |p| (p.slots.clone(), p.verified_lots));
        resize_slots(h, &mut slots, capacity as usize, stake_per_slot)?;
        let stake = h.bonded(&me);
        self.register(&me, stake);
        self.providers.insert(
            me,
            Provider {
                region,
                environment,
                slots,
                verified_lots,
            },
        );
        Ok(())
    }

    /// `PostJob` of a job that no offering provider's environment can run:
    /// what is missing.
    fn unservable(&self, req: &JobRequest) -> Option<Unservable> {
        let envs = || self.providers.values().map(|p| &p.environment);
        if envs().any(|e| e.serves(req.executor, &req.requires)) {
            return None;
        }
        let with_executor: Vec<&Environment> = envs()
            .filter(|e| e.executors.contains(req.executor))
            .collect();
        if with_executor.is_empty() {
            return Some(Unservable::Executor(req.executor));
        }
        let missing = req.requires.iter().filter(|f| {
            !with_executor
                .iter()
                .any(|e| e.features.iter().any(|g| g == *f))
        });
        let missing = Features::new(missing.cloned()).expect("a subset of a valid set");
        Some(if missing.is_empty() {
            Unservable::Combination(req.requires.clone())
        } else {
            Unservable::Features(missing)
        })
    }
    /// A typed sealing rejection: reported as [`Notice::SealRejected`] and
    /// returned as the ledger's rejection.
    fn seal_err(&mut self, h: &LedgerHandle<'_, '_>, e: SealError) -> LedgerError {
        self.rejection = Some(Notice::SealRejected {
            owner: h.sender(),
            error: e.clone(),
        });
        reject(h, MarketError::Seal(e))
    }

    /// Records the sender's commitment for `key` in the current batch and
    /// locks its sealing bond.
    pub(super) fn seal(
        &mut self,
        h: &mut LedgerHandle<'_, '_>,
        key: OrderKey,
        commitment: Commitment,
    ) -> Result<(), LedgerError> {
        let (me, batch) = (h.sender(), self.batch);
        if matches!(key, OrderKey::Ask { .. }) && !self.providers.contains_key(&me) {
            return Err(self.seal_err(h, SealError::NotOffering));
        }
        if let Err(e) = self.sealed.check_commit(batch, me, key) {
            return Err(self.seal_err(h, e));
        }
        let bond = match self.params.seal_bond {
            b if b.is_zero() => None,
            b => Some(h.lock_stake(b)?),
        };
        self.sealed.commit(batch, me, key, commitment, bond);
        self.notice(Notice::OrderSealed {
            owner: me,
            order: key,
            batch,
        });
        Ok(())
    }

    /// `RevealAsk`: opens the sender's sealed ask, and seals its `next`
    /// one (both or neither).
    pub(super) fn reveal_ask(
        &mut self,
        h: &mut LedgerHandle<'_, '_>,
        (seq, price, salt): (u64, Amount, &Salt),
        next: Option<NextAsk>,
    ) -> Result<(), LedgerError> {
        let (me, key) = (h.sender(), OrderKey::Ask { seq });
        let batch = match self.sealed.check_reveal(self.batch, me, key, price, salt) {
            Ok(b) => b,
            Err(e) => return Err(self.seal_err(h, e)),
        };
        if let Some(n) = next {
            self.seal(h, OrderKey::Ask { seq: n.seq }, n.commitment)?;
        }
        self.sealed.reveal(me, key, price);
        self.notice(Notice::OrderRevealed {
            owner: me,
            order: key,
            batch,
            price,
        });
        Ok(())
    }

    /// `PostJob`: locks one client bond per lot and seals the job's bid
    /// (attempt 0). The escrow waits for the reveal: its size would tell
    /// the price.
    pub(super) fn post_job(
        &mut self,
        h: &mut LedgerHandle<'_, '_>,
        req: JobRequest,
    ) -> Result<(), LedgerError> {
        let me = h.sender();
        if req.lots == 0 || req.lots > MAX_LOTS || req.max_slots_per_lot == 0 {
            return Err(reject(
                h,
                MarketError::JobShape {
                    lots: req.lots,
                    max_slots_per_lot: req.max_slots_per_lot,
                },
            ));
        }
        if self.jobs.contains_key(&(me, req.job)) {
            return Err(reject(h, MarketError::JobIdUsed { job: req.job }));
        }
        if self.bidding >= MAX_PENDING_BIDS {
            return Err(reject(h, MarketError::TooManyPendingBids));
        }
        req.goods
            .check_shape()
            .map_err(|what| reject(h, MarketError::Goods { what: what.into() }))?;
        if let Err(e) = req.requires.check() {
            return Err(reject(h, MarketError::Requires((&e).into())));
        }
        if let Some(why) = self.unservable(&req) {
            return Err(reject(h, MarketError::Unservable(why)));
        }
        let mut bonds = Vec::new();
        for _ in 0..req.lots {
            bonds.push(h.lock_stake(req.client_bond)?);
        }
        let key = OrderKey::Bid {
            job: req.job,
            attempt: 0,
        };
        self.seal(h, key, req.commitment)?;
        let stake = h.bonded(&me);
        self.register(&me, stake);
        self.bidding += 1;
        self.jobs.insert(
            (me, req.job),
            Job {
                req,
                escrow: None,
                limit: None,
                attempts: 1,
                sealed: true,
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

    /// `SealBid`: re-seals the bid of a job whose lots were not all filled.
    pub(super) fn reseal_bid(
        &mut self,
        h: &mut LedgerHandle<'_, '_>,
        job: u64,
        attempt: u32,
        commitment: Commitment,
    ) -> Result<(), LedgerError> {
        let me = h.sender();
        let (Some(j), true) = (
            self.jobs.get(&(me, job)),
            self.unfilled.contains(&(me, job)),
        ) else {
            return Err(self.seal_err(h, SealError::NotUnfilled(job)));
        };
        if attempt != j.attempts {
            let e = SealError::Duplicate(OrderKey::Bid { job, attempt });
            return Err(self.seal_err(h, e));
        }
        self.seal(h, OrderKey::Bid { job, attempt }, commitment)?;
        self.unfilled.remove(&(me, job));
        let j = self.jobs.get_mut(&(me, job)).expect("checked above");
        j.attempts += 1;
        j.sealed = true;
        Ok(())
    }

    /// `RevealBid`: opens the sender's sealed bid; the job's first reveal
    /// escrows its budget at the revealed price, a later one must not bid
    /// above it.
    pub(super) fn reveal_bid(
        &mut self,
        h: &mut LedgerHandle<'_, '_>,
        (job, attempt): (u64, u32),
        price: Amount,
        salt: &Salt,
    ) -> Result<(), LedgerError> {
        let (me, key) = (h.sender(), OrderKey::Bid { job, attempt });
        let batch = match self.sealed.check_reveal(self.batch, me, key, price, salt) {
            Ok(b) => b,
            Err(e) => return Err(self.seal_err(h, e)),
        };
        let j = self
            .jobs
            .get(&(me, job))
            .expect("a sealed bid's job is open");
        let escrow = match j.limit {
            Some(limit) if price > limit => {
                return Err(self.seal_err(h, SealError::AboveEscrow { price, limit }));
            }
            Some(_) => None,
            None => Some(self.open_budget(h, &j.req, price)?),
        };
        self.sealed.reveal(me, key, price);
        let j = self.jobs.get_mut(&(me, job)).expect("checked above");
        if let Some(e) = escrow {
            j.escrow = Some(e);
            j.limit = Some(price);
        }
        self.notice(Notice::OrderRevealed {
            owner: me,
            order: key,
            batch,
            price,
        });
        Ok(())
    }

    /// Escrows a job's maximum budget at limit price `price`.
    fn open_budget(
        &self,
        h: &mut LedgerHandle<'_, '_>,
        req: &JobRequest,
        price: Amount,
    ) -> Result<idlegrid_dag_ledger::ledger::EscrowId, LedgerError> {
        let per_lot = per_subtask_cap(price, req.cap_micros_per_subtask)
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
            .ok_or_else(|| reject(h, MarketError::NoReferees))?;
        h.open_escrow(&nominal, budget, deadline)
    }
}

/// Brings `slots` to `capacity`: slots lost to a slash (their lock gone)
/// are bonded again, new ones lock stake, and slots beyond the capacity
/// release theirs; it refuses (changing nothing) to drop a busy slot.
fn resize_slots(
    h: &mut LedgerHandle<'_, '_>,
    slots: &mut Vec<SlotLock>,
    capacity: usize,
    stake: Amount,
) -> Result<(), LedgerError> {
    if let Some(i) = slots
        .iter()
        .skip(capacity)
        .position(|s| s.busy && h.lock(s.lock).is_some())
    {
        let slot = (capacity + i) as u32;
        return Err(reject(h, MarketError::SlotBusy { slot }));
    }
    for i in 0..slots.len().min(capacity) {
        if slots[i].busy && h.lock(slots[i].lock).is_none() {
            slots[i] = SlotLock {
                lock: h.lock_stake(stake)?,
                busy: false,
            };
        }
    }
    while slots.len() < capacity {
        slots.push(SlotLock {
            lock: h.lock_stake(stake)?,
            busy: false,
        });
    }
    for s in slots.drain(capacity.min(slots.len())..) {
        if h.lock(s.lock).is_some() {
            h.unlock(s.lock)?;
        }
    }
    Ok(())
}
