//! The light side of sealed orders: what a provider or client runs to seal
//! its prices and reveal them on time. The light nodes
//! ([`ProviderNode`](crate::provider::ProviderNode),
//! [`ClientNode`](crate::client::ClientNode)) each own one [`Sealer`]; a
//! hand-built test world can drive one directly from notices.
//!
//! Driving: a provider states the price it asks now with
//! [`Sealer::set_ask`] (`None` stops asking) and submits what
//! [`Sealer::poll_ask`] returns; a client seals each new job's bid with
//! [`Sealer::seal_bid`]. Feed every f + 1 backed [`Fact`] the node hears to
//! [`Sealer::handle_fact`] (or, in a world without light nodes, every
//! [`Notice`] to [`Sealer::handle_notice`]) and submit what it returns
//! (reveals, re-seals); tell it about a sealing transaction the ledger
//! refused for good with [`Sealer::rejected`]. A provider that keeps asking
//! sends one transaction per batch: the reveal of its last ask carries the
//! seal of its next one.
//!
//! - A commitment's batch is the one the ledger reports in
//!   [`Notice::OrderSealed`], never a guess from the local clock: a reveal
//!   sent before its batch closed would publish the price early (and be
//!   refused), so reveals wait for [`Notice::SealingClosed`] of that batch,
//!   or for one of the node's own orders reported sealed in a later batch
//!   (the ledger was past the batch then): a source withholding the
//!   closing, or the certificate it came in, costs no reveal that way.
//! - Asks are paced by the same facts: [`Sealer::ask_due`] is true only
//!   when the last ask's batch has closed for commits, so two asks never
//!   land in one batch.
//! - Salts are derived from the node's secret seed and a counter (blake3
//!   key derivation): fresh for every commitment, reproducible in a
//!   simulation, unpredictable to anyone without the seed.
//! - An order the ledger reports revealed or forfeited is forgotten; one
//!   whose window is long over is given up. An unfilled bid is re-sealed
//!   at its price.

use std::collections::BTreeMap;

use idlegrid_primitives::{AccountId, Amount, Commitment, Salt, Seed};

use super::sealed::{BatchNo, OrderKey, SealError, seal_price};
use super::{MarketError, MarketTx, NextAsk, Notice};
use crate::wire::Fact;

/// Batches past the nominal reveal window after which an order the ledger
/// never reported on is given up (the window stretches over consensus
/// stalls, so the sealer keeps trying a while).
const GIVE_UP_BATCHES: u64 = 8;

#[derive(Clone, Debug)]
struct Pending {
    price: Amount,
    salt: Salt,
    /// The batch the ledger put it in, once reported.
    batch: Option<BatchNo>,
    /// Batch closings seen while the batch was still unreported.
    unplaced_closings: u64,
    revealed: bool,
}

/// One light node's sealed orders (see the module docs).
#[derive(Clone, Debug)]
pub struct Sealer {
    owner: AccountId,
    seed: Seed,
    salts: u64,
    reveal_batches: u64,
    next_ask: u64,
    pending: BTreeMap<OrderKey, Pending>,
    bid_prices: BTreeMap<u64, Amount>,
    closed: Option<BatchNo>,
    asking: Option<Amount>,
    /// An ask was refused for want of its bond when `closed` was this: no
    /// new ask until a later batch closes (bonds come back as batches
    /// close), rather than one refused transaction per try.
    starved: Option<Option<BatchNo>>,
}

impl Sealer {
    /// The sealer of `owner`, deriving salts from its secret `seed`;
    /// `reveal_batches` is the marketplace's
    /// [`MarketParams::reveal_batches`](super::MarketParams::reveal_batches).
    pub fn new(owner: AccountId, seed: Seed, reveal_batches: u64) -> Self {
        Self {
            owner,
            seed,
            salts: 0,
            reveal_batches: reveal_batches.max(1),
            next_ask: 0,
            pending: BTreeMap::new(),
            bid_prices: BTreeMap::new(),
            closed: None,
            asking: None,
            starved: None,
        }
    }

    /// Orders sealed and not yet revealed, forfeited or given up.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// True when an order waits for its batch's closing to be revealed
    /// (its batch unreported, or not closed yet): a light node then expects
    /// the next [`Notice::SealingClosed`] at the batches' cadence
    /// (see [`crate::light`], "Withheld leaves").
    pub fn awaits_closing(&self) -> bool {
        self.pending
            .values()
            .any(|p| !p.revealed && p.batch.is_none_or(|b| self.closed.is_none_or(|c| c < b)))
    }

    /// True when a new ask may be sealed: every earlier ask's batch is
    /// known and closed for commits, and no ask was refused for want of
    /// room (its bond, or the book's) since the last batch closed.
    pub fn ask_due(&self) -> bool {
        if self.starved.is_some_and(|at| self.closed <= at) {
            return false;
        }
        self.pending.iter().all(|(k, p)| match (k, p.batch) {
            (OrderKey::Bid { .. }, _) => true,
            (OrderKey::Ask { .. }, None) => false,
            (OrderKey::Ask { .. }, Some(b)) => self.closed.is_some_and(|c| c >= b),
        })
    }

    fn fresh(&mut self, key: OrderKey, price: Amount) -> Commitment {
        let salt = Salt::from_bytes(
            self.seed
                .derive_indexed("idlegrid/node/sealing/salt", self.salts)
                .to_bytes(),
        );
        self.salts += 1;
        let c = seal_price(&self.owner, key, price, &salt);
        let p = Pending {
            price,
            salt,
            batch: None,
            unplaced_closings: 0,
            revealed: false,
        };
        self.pending.insert(key, p);
        c
    }

    /// The price the provider asks from its next batch on; `None` stops
    /// asking (no free slot, leaving the market).
    pub fn set_ask(&mut self, price: Option<Amount>) {
        self.asking = price;
    }

    /// A fresh sealed ask if the provider is asking and none is due
    /// through a reveal ([`Sealer::ask_due`]).
    pub fn poll_ask(&mut self) -> Option<MarketTx> {
        let price = self.asking?;
        self.ask_due().then(|| self.seal_ask(price))
    }

    /// Seals an ask at `price` now: the payload to submit.
    pub fn seal_ask(&mut self, price: Amount) -> MarketTx {
        let next = self.next_sealed_ask(price);
        MarketTx::SealAsk {
            seq: next.seq,
            commitment: next.commitment,
        }
    }

    fn next_sealed_ask(&mut self, price: Amount) -> NextAsk {
        let seq = self.next_ask;
        self.next_ask += 1;
        let commitment = self.fresh(OrderKey::Ask { seq }, price);
        NextAsk { seq, commitment }
    }

    /// Seals the bid of a new job at limit `price`: the commitment its
    /// [`JobRequest`](super::JobRequest) carries.
    pub fn seal_bid(&mut self, job: u64, price: Amount) -> Commitment {
        self.bid_prices.insert(job, price);
        self.fresh(OrderKey::Bid { job, attempt: 0 }, price)
    }

    /// Re-seals `job`'s bid at its price as attempt `attempt`.
    pub fn reseal_bid(&mut self, job: u64, attempt: u32) -> Option<MarketTx> {
        let price = *self.bid_prices.get(&job)?;
        let commitment = self.fresh(OrderKey::Bid { job, attempt }, price);
        Some(MarketTx::SealBid {
            job,
            attempt,
            commitment,
        })
    }

    /// Follows one f + 1 backed ledger fact; returns the payloads to submit
    /// now.
    pub fn handle_fact(&mut self, f: &Fact) -> Vec<MarketTx> {
        sealing_notice(f).map_or_else(Vec::new, |n| self.handle_notice(&n))
    }

    /// The ledger refused `tx` for good (`why`, when the marketplace said
    /// why): forgets the orders it sealed or revealed (a refused reveal
    /// cannot be sent again in time; a refused seal never reached the
    /// book), so asks are not held back by them. An ask number at or below
    /// the book's last one for this owner (a restarted process starts at 0)
    /// moves the numbering past it.
    ///
    /// One exception, returned to send at once: a reveal refused because of
    /// the next ask it carried (the book was full, or the ledger refused
    /// without a marketplace reason: the next's bond could not be locked)
    /// still opens its own commitment, so it goes again alone rather than
    /// let its bond be forfeited. An ask refused so (or a `SealAsk` refused
    /// so) holds asking back until another batch closes.
    #[must_use = "a returned reveal must be sent"]
    pub fn rejected(&mut self, tx: &MarketTx, why: Option<&MarketError>) -> Option<MarketTx> {
        if let MarketTx::RevealAsk {
            seq,
            price,
            salt,
            next: Some(n),
        } = tx
            && no_room(why)
        {
            self.pending.remove(&OrderKey::Ask { seq: n.seq });
            self.starved = Some(self.closed);
            return Some(MarketTx::RevealAsk {
                seq: *seq,
                price: *price,
                salt: *salt,
                next: None,
            });
        }
        match tx {
            MarketTx::SealAsk { seq, .. } => {
                self.pending.remove(&OrderKey::Ask { seq: *seq });
                if no_room(why) {
                    self.starved = Some(self.closed);
                }
                if let Some(MarketError::Seal(SealError::StaleAsk { last, .. })) = why {
                    self.next_ask = self.next_ask.max(last.saturating_add(1));
                }
            }
            MarketTx::RevealAsk { seq, next, .. } => {
                self.pending.remove(&OrderKey::Ask { seq: *seq });
                if let Some(n) = next {
                    self.pending.remove(&OrderKey::Ask { seq: n.seq });
                }
            }
            MarketTx::PostJob(req) => {
                self.pending.remove(&OrderKey::Bid {
                    job: req.job,
                    attempt: 0,
                });
                self.bid_prices.remove(&req.job);
            }
            MarketTx::SealBid { job, attempt, .. } | MarketTx::RevealBid { job, attempt, .. } => {
                self.pending.remove(&OrderKey::Bid {
                    job: *job,
                    attempt: *attempt,
                });
            }
            _ => {}
        }
        None
    }

    /// Follows one ledger fact; returns the payloads to submit now.
    pub fn handle_notice(&mut self, n: &Notice) -> Vec<MarketTx> {
        match n {
            Notice::OrderSealed {
                owner,
                order,
                batch,
            } if *owner == self.owner => {
                if let Some(p) = self.pending.get_mut(order) {
                    p.batch = Some(*batch);
                }
                // Sealed in `batch`: every batch before it has closed for
                // commits, whether or not its closing was heard.
                if let Some(before) = batch.0.checked_sub(1) {
                    self.closed_through(BatchNo(before));
                }
                // A batch that already closed: reveal at once.
                self.closed
                    .map(|c| self.reveals(c, false))
                    .unwrap_or_default()
            }
            Notice::SealingClosed { batch } => {
                self.closed_through(*batch);
                self.reveals(*batch, true)
            }
            Notice::OrderRevealed { owner, order, .. }
            | Notice::BondForfeited { owner, order, .. }
                if *owner == self.owner =>
            {
                self.pending.remove(order);
                Vec::new()
            }
            Notice::BidUnfilled {
                client,
                job,
                next_attempt,
                ..
            } if *client == self.owner => {
                self.reseal_bid(*job, *next_attempt).into_iter().collect()
            }
            Notice::JobClosed { client, job, .. } if *client == self.owner => {
                self.bid_prices.remove(job);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Batches up to `batch` have closed for commits.
    fn closed_through(&mut self, batch: BatchNo) {
        self.closed = Some(self.closed.map_or(batch, |c| c.max(batch)));
    }

    /// Reveals every order whose batch is closed (`closed` and before) and
    /// whose window is open; drops those past their window and, after a
    /// few batch `closing`s, those the ledger never placed.
    fn reveals(&mut self, closed: BatchNo, closing: bool) -> Vec<MarketTx> {
        let (window, mut out) = (self.reveal_batches, Vec::new());
        self.pending.retain(|key, p| match p.batch {
            None => {
                p.unplaced_closings += u64::from(closing);
                p.unplaced_closings <= window + 2
            }
            Some(b) if b > closed => true,
            Some(b) if closed.0 > b.0 + window + GIVE_UP_BATCHES => false,
            Some(_) if p.revealed => true,
            Some(_) => {
                p.revealed = true;
                out.push(reveal(*key, p));
                true
            }
        });
        // The last ask's reveal carries the next ask, if the provider asks.
        if let Some(price) = self.asking
            && self.ask_due()
            && let Some(MarketTx::RevealAsk { next, .. }) = out
                .iter_mut()
                .rev()
                .find(|t| matches!(t, MarketTx::RevealAsk { .. }))
        {
            *next = Some(self.next_sealed_ask(price));
        }
        out
    }
}

/// True if a sealing was refused for want of room, not for what it said:
/// the book was full, or the ledger refused without a marketplace reason
/// (the bond could not be locked).
fn no_room(why: Option<&MarketError>) -> bool {
    matches!(why, None | Some(MarketError::Seal(SealError::Full(_))))
}

/// The notice a sealing fact reports (the sealer's one vocabulary).
fn sealing_notice(f: &Fact) -> Option<Notice> {
    Some(match f.clone() {
        Fact::OrderSealed {
            owner,
            order,
            batch,
        } => Notice::OrderSealed {
            owner,
            order,
            batch,
        },
        Fact::SealingClosed { batch } => Notice::SealingClosed { batch },
        Fact::OrderRevealed {
            owner,
            order,
            batch,
            price,
        } => Notice::OrderRevealed {
            owner,
            order,
            batch,
            price,
        },
        Fact::BondForfeited {
            owner,
            order,
            batch,
            bond,
        } => Notice::BondForfeited {
            owner,
            order,
            batch,
            bond,
        },
        Fact::BidUnfilled {
            client,
            job,
            lots,
            next_attempt,
        } => Notice::BidUnfilled {
            client,
            job,
            lots,
            next_attempt,
        },
        Fact::JobClosed {
            client,
            job,
            refunded,
        } => Notice::JobClosed {
            client,
            job,
            refunded,
        },
        _ => return None,
    })
}

fn reveal(key: OrderKey, p: &Pending) -> MarketTx {
    match key {
        OrderKey::Ask { seq } => MarketTx::RevealAsk {
            seq,
            price: p.price,
            salt: p.salt,
            next: None,
        },
        OrderKey::Bid { job, attempt } => MarketTx::RevealBid {
            job,
            attempt,
            price: p.price,
            salt: p.salt,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idlegrid_primitives::Keypair;

    fn sealer() -> (Sealer, AccountId) {
        let owner = Keypair::from_seed(&Seed::from_u64(1)).account_id();
        (Sealer::new(owner, Seed::from_u64(2), 1), owner)
    }

    fn sealed(owner: AccountId, job: u64, batch: u64) -> Notice {
        Notice::OrderSealed {
            owner,
            order: OrderKey::Bid { job, attempt: 0 },
            batch: BatchNo(batch),
        }
    }

    #[test]
    fn an_order_sealed_in_a_later_batch_reveals_one_whose_closing_was_not_heard() {
        let (mut s, me) = sealer();
        s.seal_bid(1, Amount::new(10));
        assert!(
            s.handle_notice(&sealed(me, 1, 2)).is_empty(),
            "batch 2 open"
        );
        assert!(s.awaits_closing());
        s.seal_bid(2, Amount::new(10));
        // Batch 2's closing never came; job 2's bid was sealed in batch 3,
        // so batch 2 had closed: job 1's bid is revealed, job 2's is not.
        let out = s.handle_notice(&sealed(me, 2, 3));
        assert!(
            matches!(out[..], [MarketTx::RevealBid { job: 1, .. }]),
            "{out:?}"
        );
        assert!(s.awaits_closing(), "job 2's bid waits for batch 3");
        let out = s.handle_notice(&Notice::SealingClosed { batch: BatchNo(3) });
        assert!(
            matches!(out[..], [MarketTx::RevealBid { job: 2, .. }]),
            "{out:?}"
        );
        assert!(!s.awaits_closing());
    }

    #[test]
    fn an_order_sealed_in_its_own_batch_reveals_nothing_early() {
        let (mut s, me) = sealer();
        s.seal_bid(1, Amount::new(10));
        s.seal_bid(2, Amount::new(10));
        assert!(s.handle_notice(&sealed(me, 1, 4)).is_empty());
        assert!(s.handle_notice(&sealed(me, 2, 4)).is_empty());
        assert!(s.awaits_closing());
    }
}
