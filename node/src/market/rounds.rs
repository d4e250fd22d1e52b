//! Verification rounds: a matched lot's plan, the provider's delivery, the
//! client's trap reveal and accusations, accept, and the deadlines that
//! move silent rounds along (disputes and votes: [`super::referees`]).

use std::sync::Arc;

use idlegrid_dag_ledger::ledger::{LedgerError, LedgerHandle, ManagedHandle};
use idlegrid_entrap::{
    Bps, Deadlines, Effect, Feedback, PublicPlan, Role, Stage, SubtaskIndex, Terms, TrapReveal,
};
use idlegrid_primitives::{AccountId, Amount, Commitment, Digest, Salt, Timestamp};

use super::error::{MarketError, reject};
use super::settlement::{per_subtask_cap, slash_then_unlock};
use super::{LiveLot, MarketplaceApp, Notice, RoundKey, round_id};
use crate::feedback::reputation_feedback;

/// A lot named by a transaction: (client, job, lot).
pub(super) type LotRef = (AccountId, u64, u32);

impl MarketplaceApp {
    /// `Plan`: opens the lot's verification round and bonds the provider's
    /// slot lock as its stake.
    pub(super) fn plan(
        &mut self,
        h: &mut LedgerHandle<'_, '_>,
        job: u64,
        lot: u32,
        plan: PublicPlan,
    ) -> Result<(), LedgerError> {
        let me = h.sender();
        let now = self.live_now(h);
        let rules = &self.rules;
        let j = self
            .jobs
            .get_mut(&(me, job))
            .ok_or_else(|| reject(h, MarketError::UnknownJob { job }))?;
        let slots = plan.slots();
        if plan.job != round_id(job, lot) || slots as u64 > u64::from(j.req.max_slots_per_lot) {
            return Err(reject(h, MarketError::PlanMismatch { job, lot }));
        }
        let Some(p) = j.matched.get(&lot) else {
            return Err(reject(h, MarketError::LotNotMatched { job, lot }));
        };
        if p.plan_by <= now {
            let deadline = p.plan_by;
            return Err(reject(h, MarketError::PlanLate { job, lot, deadline }));
        }
        let terms = Terms {
            job: plan.job,
            client: me,
            provider: p.provider,
            pay_per_subtask: per_subtask_cap(p.price, j.req.cap_micros_per_subtask),
            client_bond: j.req.client_bond,
            stake: rules.stake_per_slot,
            slash_to_client: Bps::new(rules.slash_to_client_bps)
                .map_err(|e| reject(h, e.into()))?,
            no_show_penalty: Bps::new(1_000).map_err(|e| reject(h, e.into()))?,
            deadlines: Deadlines::uniform(rules.stage_deadline),
            committee_size: rules.committee_size,
        };
        let inputs = plan.slot_inputs.clone();
        let mut round = idlegrid_entrap::VerificationRound::open(now, terms, plan)
            .map_err(|e| reject(h, e.into()))?;
        // The provider's slot lock is the round's stake bond.
        round
            .bond_stake(now, p.provider, rules.stake_per_slot)
            .map_err(|e| reject(h, e.into()))?;
        let p = j.matched.remove(&lot).expect("checked above");
        self.touching.push(((me, job), lot));
        j.live.insert(
            lot,
            LiveLot {
                provider: p.provider,
                slot: p.slot,
                price: p.price,
                bond_lock: p.bond_lock,
                round,
                usage_micros: 0,
                effects: Vec::new(),
            },
        );
        self.notice(Notice::RoundOpened {
            client: me,
            job,
            lot,
            provider: p.provider,
            inputs,
        });
        Ok(())
    }

    /// Clears pending bids if a clearing period has passed.
    /// `Deliver`: the provider's output commitment, outputs and usage.
    pub(super) fn deliver(
        &mut self,
        h: &mut LedgerHandle<'_, '_>,
        (client, job, lot): LotRef,
        commitment: Commitment,
        outputs: Vec<Digest>,
        salt: Salt,
        usage_micros: u64,
    ) -> Result<(), LedgerError> {
        let (now, me) = (self.live_now(h), h.sender());
        let l = self.live(h, client, job, lot)?;
        let mut round = l.round.clone();
        round
            .commit_outputs(now, me, commitment)
            .and_then(|()| round.reveal_outputs(now, me, outputs.clone(), salt))
            .map_err(|e| reject(h, e.into()))?;
        l.round = round;
        l.usage_micros = usage_micros;
        self.notice(Notice::Delivered {
            client,
            job,
            lot,
            provider: me,
            outputs,
        });
        Ok(())
    }

    /// `Verify`: the client's trap reveal and accusations.
    pub(super) fn verify(
        &mut self,
        h: &mut LedgerHandle<'_, '_>,
        job: u64,
        lot: u32,
        reveal: &TrapReveal,
        accuse: Vec<SubtaskIndex>,
    ) -> Result<(), LedgerError> {
        let (now, me) = (self.live_now(h), h.sender());
        let l = self.live(h, me, job, lot)?;
        let provider = l.provider;
        let mut round = l.round.clone();
        round
            .reveal_traps(now, me, reveal)
            .and_then(|()| round.accuse(now, me, &accuse))
            .map_err(|e| reject(h, e.into()))?;
        l.round = round;
        if !accuse.is_empty() {
            self.notice(Notice::Accused {
                client: me,
                job,
                lot,
                provider,
                traps: accuse,
            });
        }
        Ok(())
    }

    /// `Accept`: the provider accepts an accusation.
    pub(super) fn accept(
        &mut self,
        h: &mut LedgerHandle<'_, '_>,
        (client, job, lot): LotRef,
    ) -> Result<(), LedgerError> {
        let (now, me) = (self.live_now(h), h.sender());
        let l = self.live(h, client, job, lot)?;
        l.round.accept(now, me).map_err(|e| reject(h, e.into()))
    }

    pub(super) fn live<'j>(
        &'j mut self,
        h: &ManagedHandle<'_, '_>,
        client: AccountId,
        job: u64,
        lot: u32,
    ) -> Result<&'j mut LiveLot, LedgerError> {
        self.touching.push(((client, job), lot));
        self.jobs
            .get_mut(&(client, job))
            .and_then(|j| j.live.get_mut(&lot))
            .ok_or_else(|| reject(h, MarketError::NoOpenRound { job, lot }))
    }

    /// Fires due round deadlines and settles finished rounds: the rounds
    /// the batch's transactions touched and those whose deadline passed, in
    /// key order.
    pub(super) fn run_rounds(&mut self, h: &mut ManagedHandle<'_, '_>) {
        let now = self.live_now(h);
        let mut visit = std::mem::take(&mut self.touched);
        while let Some(&(t, key)) = self.wake.first() {
            if t > now {
                break;
            }
            self.wake.pop_first();
            self.wake_at.remove(&key);
            visit.insert(key);
        }
        let mut done = Vec::new();
        let mut unplanned = Vec::new();
        for (key, lot) in visit {
            if let Some(t) = self.wake_at.remove(&(key, lot)) {
                self.wake.remove(&(t, (key, lot)));
            }
            let Some(l) = self.jobs.get(&key).and_then(|j| j.live.get(&lot)) else {
                if self.plan_due(now, (key, lot)) {
                    unplanned.push((key, lot));
                }
                continue;
            };
            let due = l.round.stage() != Stage::Settled
                && l.round.poll_timeout().is_some_and(|t| t <= now);
            // A dispute whose committee is being drawn, or that escalates
            // now, holds its round's timeout.
            let held = due && self.escalate_if_undecided(h, (key, lot));
            let l = self.jobs.get_mut(&key).and_then(|j| j.live.get_mut(&lot));
            let l = l.expect("looked up above");
            if due && !held {
                l.round.handle_timeout(now);
            }
            while let Some(e) = l.round.poll_effect() {
                l.effects.push(e);
            }
            if l.round.stage() == Stage::Settled {
                done.push((key, lot));
            } else if let Some(t) = l.round.poll_timeout() {
                // A held round is visited again at the next batch.
                let t = if held { now } else { t };
                self.wake.insert((t, (key, lot)));
                self.wake_at.insert((key, lot), t);
            }
        }
        for (key, lot) in done {
            self.disputes.remove(&(key, lot));
            self.settle(h, key, lot);
            self.close_if_done(h, key);
        }
        for (key, lot) in unplanned {
            self.lapse_unplanned(h, key, lot);
            self.close_if_done(h, key);
        }
    }

    /// Whether matched (unplanned) lot `at` is past its plan deadline; one
    /// that is not is woken again at its deadline.
    fn plan_due(&mut self, now: Timestamp, at: RoundKey) -> bool {
        let Some(p) = self.jobs.get(&at.0).and_then(|j| j.matched.get(&at.1)) else {
            return false;
        };
        if p.plan_by <= now {
            return true;
        }
        self.wake.insert((p.plan_by, at));
        self.wake_at.insert(at, p.plan_by);
        false
    }

    /// A matched lot whose plan did not come by its deadline lapses: the
    /// provider's slot is free again, the client's lot bond is burned (see
    /// the module docs of [`super`] for why it is not paid to the provider)
    /// and the provider reports the client unresponsive, as for a round the
    /// client abandons.
    fn lapse_unplanned(&mut self, h: &mut ManagedHandle<'_, '_>, key: (AccountId, u64), lot: u32) {
        let j = self.jobs.get_mut(&key).expect("an unplanned lot's job");
        let p = j.matched.remove(&lot).expect("an unplanned lot");
        j.lapsed += 1;
        let bond = h.lock(p.bond_lock).map_or(Amount::ZERO, |l| l.amount);
        debug_assert_eq!(bond, j.req.client_bond, "a lot bond holds the job's bond");
        if let Err(e) = slash_then_unlock(h, p.bond_lock, bond, None) {
            self.effect_failed(format!("job {} lot {lot}: unplanned bond: {e}", key.1));
        }
        let slot = self
            .providers
            .get_mut(&p.provider)
            .and_then(|v| v.slots.get_mut(p.slot));
        if let Some(slot) = slot {
            slot.busy = false;
        }
        let effect = Effect::Reputation {
            job: round_id(key.1, lot),
            subject: key.0,
            role: Role::Client,
            feedback: Feedback::Unresponsive,
        };
        if let Some(fb) = reputation_feedback(&effect, key.0, p.provider, bond, self.book.epoch()) {
            // Rejected feedback (quota, window) only loses a signal.
            let _ = Arc::make_mut(&mut self.book).apply_feedback(&fb);
        }
        self.notice(Notice::Unplanned {
            client: key.0,
            job: key.1,
            lot,
            provider: p.provider,
            bond,
        });
    }
}
