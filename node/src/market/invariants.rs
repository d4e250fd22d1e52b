//! The marketplace's own law over lots and provider slots, checked against
//! the ledger's locks ([`MarketplaceApp::check_lots`]): what the end-of-batch
//! work must keep true for no slot, bond or escrow to be held forever.

use std::collections::BTreeSet;

use idlegrid_dag_ledger::ledger::{InvariantViolation, Ledger};
use idlegrid_primitives::AccountId;

use super::MarketplaceApp;

const INVARIANT: &str = "market-lots";

fn violation(detail: String) -> Result<(), InvariantViolation> {
    Err(InvariantViolation {
        invariant: INVARIANT,
        detail,
    })
}

impl MarketplaceApp {
    /// Checks that every lot is accounted for exactly once and every slot
    /// is held by at most one lot:
    ///
    /// - a job's unmatched, matched, live, settled and lapsed lots add up
    ///   to the lots it posted;
    /// - a matched or live lot holds a busy slot of its provider, and no
    ///   two lots hold the same slot;
    /// - a busy slot whose stake lock still exists is held by a lot (a
    ///   busy slot without a lock was slashed and left the market);
    /// - a matched lot is woken at its plan deadline (so it lapses then).
    ///
    /// O(jobs + slots): the simulator runs it at the end of every run, the
    /// hand-built ledger tests after every batch.
    pub fn check_lots(&self, ledger: &Ledger) -> Result<(), InvariantViolation> {
        let mut held: BTreeSet<(AccountId, usize)> = BTreeSet::new();
        for (key, j) in self.jobs.iter() {
            let counted = [j.unmatched_bonds.len(), j.matched.len(), j.live.len()]
                .iter()
                .map(|&n| n as u64)
                .sum::<u64>()
                + u64::from(j.settled)
                + u64::from(j.lapsed);
            if counted != u64::from(j.req.lots) {
                let posted = j.req.lots;
                return violation(format!(
                    "job {} of {}: {counted} lots accounted for, {posted} posted",
                    key.1, key.0
                ));
            }
            let matched = j.matched.iter().map(|(l, p)| (*l, p.provider, p.slot));
            let live = j.live.iter().map(|(l, p)| (*l, p.provider, p.slot));
            for (lot, provider, slot) in matched.chain(live) {
                let slots = self.providers.get(&provider).map(|p| &p.slots);
                if !slots.and_then(|s| s.get(slot)).is_some_and(|s| s.busy) {
                    return violation(format!(
                        "job {} lot {lot}: slot {slot} of {provider} is not busy",
                        key.1
                    ));
                }
                if !held.insert((provider, slot)) {
                    return violation(format!(
                        "job {} lot {lot}: slot {slot} of {provider} is held twice",
                        key.1
                    ));
                }
            }
            for (lot, p) in &j.matched {
                if self.wake_at.get(&(*key, *lot)) != Some(&p.plan_by) {
                    return violation(format!(
                        "job {} lot {lot}: not woken at its plan deadline",
                        key.1
                    ));
                }
            }
        }
        for (provider, p) in self.providers.iter() {
            let orphan = (p.slots.iter().enumerate()).find(|(i, s)| {
                s.busy && ledger.lock(s.lock).is_some() && !held.contains(&(*provider, *i))
            });
            if let Some((slot, _)) = orphan {
                return violation(format!("slot {slot} of {provider} is busy, held by no lot"));
            }
        }
        Ok(())
    }
}
