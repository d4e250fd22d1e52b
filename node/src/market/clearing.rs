//! The periodic batch clearing: pending bids against free provider slots,
//! run from the ledger's end-of-batch hook once per clearing period.

use std::collections::{BTreeMap, BTreeSet};

use idlegrid_dag_ledger::ledger::ManagedHandle;
use idlegrid_market::registry::{GoodsClearing, clear_with_goods};
use idlegrid_market::{
    Ask, Bid, ClearingContext, ExecutorKind, ExecutorSet, Limits, Match, OrderId, Region,
    RegionSet, Reputation, Resources, Slots,
};
use idlegrid_primitives::{AccountId, Duration, Timestamp};
use idlegrid_reputation::Role as RepRole;

use super::{ClearingRecord, MarketplaceApp, Notice, PendingLot, score_bps};

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
    /// Clears pending bids if a clearing period has passed, then retires
    /// fully matched and lapsed bids.
    pub(super) fn maybe_clear(&mut self, h: &mut ManagedHandle<'_, '_>) {
        let now = h.now();
        if now < self.next_clear {
            return;
        }
        self.next_clear = now + self.rules.clearing_period;
        if self.queue.is_empty() {
            return;
        }
        let book = self.order_book(now);
        if let Some(g) = self.clear(now, &book) {
            for m in &g.clearing.matches {
                self.assign(now, &book, m);
            }
        }
        self.retire_bids(h);
    }

    /// Free provider slots as asks, unmatched lots of live bids as bids.
    fn order_book(&mut self, now: Timestamp) -> Book {
        let far = now + Duration::from_secs(1_000_000);
        let mut b = Book {
            asks: Vec::new(),
            ask_owner: Vec::new(),
            bids: Vec::new(),
            bid_key: BTreeMap::new(),
        };
        for (id, p) in &self.providers {
            let free = p.slots.iter().filter(|s| !s.busy).count() as u32;
            if free == 0 {
                continue;
            }
            b.ask_owner.push(*id);
            b.asks.push(Ask {
                id: OrderId::new(b.asks.len() as u64),
                provider: *id,
                resources: SLOT,
                executors: ExecutorSet::single(ExecutorKind::Simulated),
                region: Region::new(p.region),
                price: p.price,
                slots: Slots::new(free),
                window_start: Timestamp::ZERO,
                window_end: far,
            });
        }
        for key in &self.queue {
            let j = &self.jobs[key];
            let wanted = j.req.lots - j.matched.len() as u32 - j.live.len() as u32 - j.settled;
            if wanted == 0 || j.req.deadline < now {
                continue;
            }
            let id = OrderId::new(BID_ID_BASE + self.next_bid);
            self.next_bid += 1;
            b.bid_key.insert(id, *key);
            b.bids.push(Bid {
                id,
                client: key.0,
                demand: SLOT,
                slots: Slots::new(wanted),
                max_price: j.req.max_price,
                deadline: far,
                regions: RegionSet::ALL,
                min_reputation: Reputation::from_bps(j.req.min_reputation_bps),
                executor: ExecutorKind::Simulated,
                goods: j.req.goods.clone(),
            });
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
        let book = &self.book;
        let rep = |id: &AccountId| {
            Reputation::from_bps(score_bps(book.score(&id.node(), RepRole::Provider)))
        };
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
            let lot = j.matched.len() as u32 + j.live.len() as u32 + j.settled;
            let price = m.seller_price;
            j.matched.insert(
                lot,
                PendingLot {
                    provider,
                    slot,
                    price,
                    bond_lock,
                },
            );
            let credibility_ppm = self.credibility_ppm(&provider);
            self.notice(Notice::Matched {
                client: key.0,
                job: key.1,
                lot,
                provider,
                price,
                credibility_ppm,
            });
        }
    }

    /// Fully matched bids leave the queue; lapsed ones release their
    /// unmatched bonds and may close their job.
    fn retire_bids(&mut self, h: &mut ManagedHandle<'_, '_>) {
        let now = h.now();
        let mut keep = Vec::new();
        for key in std::mem::take(&mut self.queue) {
            let j = self.jobs.get_mut(&key).expect("queued job");
            if j.unmatched_bonds.is_empty() {
                j.queued = false;
            } else if j.req.deadline < now {
                j.queued = false;
                j.lapsed = j.unmatched_bonds.len() as u32;
                let lots = j.lapsed;
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
            } else {
                keep.push(key);
            }
        }
        self.queue = keep;
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
        })));
    }
}
