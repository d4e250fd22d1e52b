//! Closing a sealed batch, from the ledger's end-of-batch hook once its
//! reveal window is over: sealing bonds are returned or burned, and the
//! orders revealed for that batch — and only those — are cleared.

use std::collections::{BTreeMap, BTreeSet};

use idlegrid_dag_ledger::ledger::{LockId, ManagedHandle};
use idlegrid_market::registry::{GoodsClearing, clear_with_goods};
use idlegrid_market::{
    Ask, Bid, ClearingContext, Limits, Match, OrderId, Region, RegionSet, Reputation, Resources,
    Slots,
};
use idlegrid_primitives::{AccountId, Amount, Duration, Timestamp};

use super::sealed::{BatchNo, ClosedBatch, OrderKey};
use super::settlement::slash_then_unlock;
use super::{ClearingRecord, MarketplaceApp, Notice, PLAN_STAGES, PendingLot, score_bps};

/// The resources of one marketplace slot.
const SLOT: Resources = Resources::new(1_000, 1_024, 0, 0);
/// Bid ids start here and never repeat over the ledger's life (a registry
/// job is identified by its (bid, ask) pair).
const BID_ID_BASE: u64 = 1 << 32;

/// One clearing's order book: asks by provider, bids by job.
struct Book {
    asks: Vec<Ask>,
    ask_owner: Vec<AccountId>,
    bids: Vec<Bid>,
    bid_key: BTreeMap<OrderId, (AccountId, u64)>,
}

impl MarketplaceApp {
    /// Announces batches closed for commits, closes every batch whose
    /// reveal window is over, and lapses unfilled bids past their deadline.
    pub(super) fn close_batches(&mut self, h: &mut ManagedHandle<'_, '_>) {
        if self.batch > self.announced {
            self.announced = self.batch;
            self.notice(Notice::SealingClosed {
                batch: BatchNo(self.batch.0 - 1),
            });
        }
        self.sealed.count_commit(self.batch);
        while let Some(closed) = self.sealed.close_due(self.batch) {
            self.close_batch(h, closed);
        }
        let now = h.now();
        let due: Vec<_> = self
            .unfilled
            .iter()
            .filter(|k| self.jobs[*k].req.deadline < now)
            .copied()
            .collect();
        for key in due {
            self.lapse(h, key);
        }
    }

    /// Returns or burns a closed batch's bonds, then clears its revealed
    /// orders; bids left with unfilled lots may be re-sealed.
    fn close_batch(&mut self, h: &mut ManagedHandle<'_, '_>, c: ClosedBatch) {
        let now = h.now();
        for (owner, key, bond) in &c.unrevealed {
            self.forfeit(h, c.batch, *owner, *key, *bond);
        }
        for (owner, _, _, bond) in &c.revealed {
            if let Some(b) = bond
                && let Err(e) = h.unlock(*b)
            {
                self.effect_failed(format!("{owner:?}: sealing bond: {e}"));
            }
        }
        let book = self.order_book(now, &c);
        if let Some(g) = self.clear(now, &book) {
            for m in &g.clearing.matches {
                self.assign(now, &book, m);
            }
        }
        for (owner, key, _, _) in &c.revealed {
            if let OrderKey::Bid { job, .. } = key {
                self.after_clearing(h, (*owner, *job));
            }
        }
    }

    /// Burns an unrevealed order's bond; an unrevealed bid's job lapses.
    fn forfeit(
        &mut self,
        h: &mut ManagedHandle<'_, '_>,
        batch: BatchNo,
        owner: AccountId,
        key: OrderKey,
        bond: Option<LockId>,
    ) {
        let amount = bond
            .and_then(|b| h.lock(b).map(|l| l.amount))
            .unwrap_or(Amount::ZERO);
        if let Some(b) = bond
            && let Err(e) = slash_then_unlock(h, b, amount, None)
        {
            self.effect_failed(format!("{owner:?}: forfeiting a sealing bond: {e}"));
        }
        self.notice(Notice::BondForfeited {
            owner,
            order: key,
            batch,
            bond: amount,
        });
        if let OrderKey::Bid { job, .. } = key
            && let Some(j) = self.jobs.get_mut(&(owner, job))
        {
            j.sealed = false;
            self.lapse(h, (owner, job));
        }
    }

    /// A revealed bid after its batch's clearing: filled, lapsed, or
    /// waiting for a re-seal.
    fn after_clearing(&mut self, h: &mut ManagedHandle<'_, '_>, key: (AccountId, u64)) {
        let Some(j) = self.jobs.get_mut(&key) else {
            return;
        };
        j.sealed = false;
        let lots = j.unmatched_bonds.len() as u32;
        if lots == 0 {
            j.queued = false;
            self.bidding -= 1;
        } else if j.req.deadline < h.now() {
            self.lapse(h, key);
        } else {
            let next_attempt = j.attempts;
            self.unfilled.insert(key);
            self.notice(Notice::BidUnfilled {
                client: key.0,
                job: key.1,
                lots,
                next_attempt,
            });
        }
    }

    /// A job stops bidding: its unmatched lots lapse and release their
    /// bonds; the job may close.
    fn lapse(&mut self, h: &mut ManagedHandle<'_, '_>, key: (AccountId, u64)) {
        self.unfilled.remove(&key);
        let j = self.jobs.get_mut(&key).expect("lapsing an open job");
        assert!(j.queued, "only a bidding job lapses");
        j.queued = false;
        self.bidding -= 1;
        let lots = j.unmatched_bonds.len() as u32;
        j.lapsed += lots;
        for b in std::mem::take(&mut j.unmatched_bonds) {
            if let Err(e) = h.unlock(b) {
                self.effect_failed(format!("job {}: lapsed bond: {e}", key.1));
            }
        }
        self.notice(Notice::Lapsed {
            client: key.0,
            job: key.1,
            lots,
        });
        self.close_if_done(h, key);
    }

    /// The closed batch's revealed asks (providers' free slots) and bids
    /// (unmatched lots of live jobs).
    fn order_book(&mut self, now: Timestamp, c: &ClosedBatch) -> Book {
        let far = now + Duration::from_secs(1_000_000);
        let mut b = Book {
            asks: Vec::new(),
            ask_owner: Vec::new(),
            bids: Vec::new(),
            bid_key: BTreeMap::new(),
        };
        for &(owner, key, price, _) in &c.revealed {
            match key {
                OrderKey::Ask { .. } => {
                    let Some(p) = self.providers.get(&owner) else {
                        continue;
                    };
                    let free = p.slots.iter().filter(|s| !s.busy).count() as u32;
                    if free == 0 {
                        continue;
                    }
                    b.ask_owner.push(owner);
                    b.asks.push(Ask {
                        id: OrderId::new(b.asks.len() as u64),
                        provider: owner,
                        resources: SLOT,
                        executors: p.environment.executors,
                        features: p.environment.features.clone(),
                        region: Region::new(p.region),
                        price,
                        slots: Slots::new(free),
                        window_start: Timestamp::ZERO,
                        window_end: far,
                    });
                }
                OrderKey::Bid { job, .. } => {
                    let Some(j) = self.jobs.get(&(owner, job)) else {
                        continue;
                    };
                    let wanted = j.unmatched_bonds.len() as u32;
                    if !j.queued || wanted == 0 || j.req.deadline < now {
                        continue;
                    }
                    let id = OrderId::new(BID_ID_BASE + self.next_bid);
                    self.next_bid += 1;
                    b.bid_key.insert(id, (owner, job));
                    b.bids.push(Bid {
                        id,
                        client: owner,
                        demand: SLOT,
                        slots: Slots::new(wanted),
                        max_price: price,
                        deadline: far,
                        regions: RegionSet::ALL,
                        min_reputation: Reputation::from_bps(j.req.min_reputation_bps),
                        executor: j.req.executor,
                        requires: j.req.requires.clone(),
                        goods: j.req.goods.clone(),
                    });
                }
            }
        }
        b
    }

    /// Runs the mechanism with the reputation filter. Bids whose goods
    /// cannot be used (unknown, not allowed, above the fee cap) are left
    /// out and stay queued until they lapse.
    fn clear(&mut self, now: Timestamp, b: &Book) -> Option<GoodsClearing> {
        if b.asks.is_empty() || b.bids.is_empty() {
            return None;
        }
        let rep = |id: &AccountId| Reputation::from_bps(score_bps(self.provider_score(id)));
        let ctx = ClearingContext {
            now,
            limits: Limits::default(),
            reputation: &rep,
        };
        let g = clear_with_goods(&*self.mechanism, &b.asks, &b.bids, &ctx, &self.registry).ok()?;
        if self.emit_notices {
            let reputation = b.asks.iter().map(|a| rep(&a.provider)).collect();
            self.record_clearing(now, b, &g, reputation);
        }
        Some(g)
    }

    /// Turns one match into lots: a free slot of the provider and an
    /// unmatched bond of the job per matched slot.
    fn assign(&mut self, now: Timestamp, b: &Book, m: &Match) {
        let key = b.bid_key[&m.bid];
        let provider = b.ask_owner[m.ask.get() as usize];
        if !m.fees.is_empty() {
            match self.registry.open_job(now, m) {
                Ok(id) => self
                    .jobs
                    .get_mut(&key)
                    .expect("matched bid's job")
                    .goods_jobs
                    .push(id),
                Err(e) => self.effect_failed(format!("job {}: registry: {e}", key.1)),
            }
        }
        for _ in 0..m.slots.get() {
            let prov = self.providers.get_mut(&provider).expect("ask's provider");
            let Some(slot) = prov.slots.iter().position(|s| !s.busy) else {
                break;
            };
            let j = self.jobs.get_mut(&key).expect("matched bid's job");
            let Some(bond_lock) = j.unmatched_bonds.pop() else {
                break;
            };
            prov.slots[slot].busy = true;
            // Lots lapse unplanned only after their match, and unmatched
            // ones only once the job stops bidding: counting lapsed lots
            // keeps lot numbers unique.
            let lot = j.matched.len() as u32 + j.live.len() as u32 + j.settled + j.lapsed;
            let price = m.seller_price;
            let plan_by = self.clock.at(now)
                + self
                    .rules
                    .stage_deadline
                    .saturating_mul(u64::from(PLAN_STAGES));
            j.matched.insert(
                lot,
                PendingLot {
                    provider,
                    slot,
                    price,
                    bond_lock,
                    plan_by,
                },
            );
            self.wake.insert((plan_by, (key, lot)));
            self.wake_at.insert((key, lot), plan_by);
            let credibility_ppm = self.credibility_ppm(&provider);
            let verified_lots = self.verified_lots(&provider);
            self.notice(Notice::Matched {
                client: key.0,
                job: key.1,
                lot,
                provider,
                price,
                credibility_ppm,
                verified_lots,
                plan_by,
            });
        }
    }

    /// Reports a clearing's inputs for observers (a welfare benchmark):
    /// an event, never state.
    fn record_clearing(
        &mut self,
        now: Timestamp,
        b: &Book,
        g: &GoodsClearing,
        reputation: Vec<Reputation>,
    ) {
        let rejected: BTreeSet<OrderId> = g.rejected.iter().map(|r| r.bid).collect();
        self.notice(Notice::Cleared(Box::new(ClearingRecord {
            now,
            asks: b.asks.clone(),
            bids: b
                .bids
                .iter()
                .filter(|x| !rejected.contains(&x.id))
                .cloned()
                .collect(),
            reputation,
            welfare: g.clearing.stats.welfare.get(),
            surplus: g.clearing.stats.surplus.get(),
        })));
    }
}

#[cfg(test)]
mod tests {
    use idlegrid_market::{
        ExecutorKind, ExecutorSet, Features, GreedyAssignment, JobGoods, KDouble,
    };
    use idlegrid_primitives::{Digest, Domain, Keypair, Seed};
    use idlegrid_reputation::{Feedback, JobId, Outcome};

    use super::*;
    use crate::market::TrustGate;

    fn account(i: u64) -> AccountId {
        Keypair::from_seed(&Seed::from_u64(i)).account_id()
    }

    fn app(gate: Option<TrustGate>) -> MarketplaceApp {
        let rules = crate::market::test_rules(gate);
        // The greedy assignment pairs a bid with the cheapest *compatible*
        // ask; the unit double auctions would leave this bid unmatched once
        // the cheapest ask is filtered (see `idlegrid_market::unit`).
        MarketplaceApp::new(rules, Box::new(GreedyAssignment::midpoint()), false).unwrap()
    }

    fn ask(b: &mut Book, provider: AccountId, price: u128) {
        b.ask_owner.push(provider);
        b.asks.push(Ask {
            id: OrderId::new(b.asks.len() as u64),
            provider,
            resources: SLOT,
            executors: ExecutorSet::ALL,
            features: Features::default(),
            region: Region::new(0),
            price: Amount::new(price),
            slots: Slots::new(1),
            window_start: Timestamp::ZERO,
            window_end: Timestamp::ZERO + Duration::from_secs(1_000),
        });
    }

    /// Two providers with one good record each: `cheap`'s from a client
    /// holding a sliver of the stake (its own ring), `dear`'s from the
    /// client holding most of it. A bid that wants a proven provider gets
    /// the cheaper one unless validators gate scores by global trust.
    fn matched_provider(gate: Option<TrustGate>) -> AccountId {
        let (cheap, dear, ring, big) = (account(1), account(2), account(3), account(4));
        let mut app = app(gate);
        for (id, stake) in [(cheap, 100), (dear, 100), (ring, 1), (big, 10_000)] {
            std::sync::Arc::make_mut(&mut app.book)
                .register(id.node(), Amount::new(stake))
                .unwrap();
        }
        for (k, (reporter, subject)) in [(ring, cheap), (big, dear)].into_iter().enumerate() {
            let job = JobId(Digest::hash(Domain::new("test/job"), &[k as u8]));
            let fb = Feedback {
                reporter: reporter.node(),
                subject: subject.node(),
                outcome: Outcome::Delivered,
                job,
                value: Amount::new(1_000),
                epoch: app.book.epoch(),
            };
            std::sync::Arc::make_mut(&mut app.book)
                .apply_feedback(&fb)
                .unwrap();
        }
        let now = Timestamp::ZERO + Duration::from_secs(10);
        app.advance_reputation(now);
        assert!(app.provider_score(&dear) > app.book.fresh_score());
        let mut b = Book {
            asks: Vec::new(),
            ask_owner: Vec::new(),
            bids: Vec::new(),
            bid_key: BTreeMap::new(),
        };
        ask(&mut b, cheap, 10);
        ask(&mut b, dear, 20);
        b.bids.push(Bid {
            id: OrderId::new(BID_ID_BASE),
            client: big,
            demand: SLOT,
            slots: Slots::new(1),
            max_price: Amount::new(50),
            deadline: now + Duration::from_secs(100),
            regions: RegionSet::ALL,
            min_reputation: Reputation::from_bps(1),
            executor: ExecutorKind::Simulated,
            requires: Features::default(),
            goods: JobGoods::default(),
        });
        let g = app.clear(now, &b).expect("one match");
        assert_eq!(g.clearing.matches.len(), 1);
        b.ask_owner[g.clearing.matches[0].ask.get() as usize]
    }

    #[test]
    fn global_trust_withholds_a_record_only_a_ring_vouches_for() {
        assert_eq!(matched_provider(None), account(1));
        assert_eq!(
            matched_provider(Some(TrustGate::half_of_mean())),
            account(2)
        );
    }

    #[test]
    fn trust_is_replicated_state() {
        let mut a = app(Some(TrustGate::half_of_mean()));
        std::sync::Arc::make_mut(&mut a.book)
            .register(account(1).node(), Amount::new(5))
            .unwrap();
        a.advance_reputation(Timestamp::ZERO + Duration::from_secs(10));
        let with = a.state_digest();
        let trust = a.trust.take();
        assert!(trust.is_some());
        assert_ne!(a.state_digest(), with, "the trust vector is in the state");
        a.trust = trust;
        let bytes = a.snapshot();
        let rules = a.rules().clone();
        let b = MarketplaceApp::restore(
            rules,
            Box::new(KDouble::new(5_000).unwrap()),
            false,
            &bytes,
            1 << 20,
        )
        .unwrap();
        assert_eq!(b.global_trust(), a.global_trust());
        assert_eq!(b.state_digest(), a.state_digest());
    }
}
