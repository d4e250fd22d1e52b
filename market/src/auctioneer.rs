//! The epoch pipeline of sealed batches.

use std::collections::{BTreeMap, VecDeque};

use idlegrid_primitives::{AccountId, Amount, Commitment, Duration, Epoch, Salt, Timestamp};

use crate::clearing::Mechanism;
use crate::error::MarketError;
use crate::order::Order;
use crate::registry::{GoodsPricing, NoGoods};
use crate::sealed::{BatchConfig, BatchOutcome, SealedBatch};
use crate::types::{OrderId, ReputationLookup};

/// What the auctioneer reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MarketEvent {
    /// A batch closed: escrow its matches, settle its bonds.
    BatchClosed(BatchOutcome),
    /// A batch could not be cleared (a bug or a misconfiguration); its
    /// bonds should be refunded by the composition root.
    ClearingFailed {
        /// The batch.
        epoch: Epoch,
        /// Why.
        error: MarketError,
    },
}

/// The epoch pipeline: one sealed batch per epoch, committed in one epoch
/// and revealed in the next.
///
/// Batch `e` opens at `genesis + e · commit_window`, takes commitments for
/// one commit window, then reveals for one reveal window, while batch
/// `e + 1` takes commitments. The driving loop is the usual sans-IO one:
///
/// ```text
/// feed inputs:   commit(now, ..) / reveal(now, ..)   (in ledger order)
/// on wake-up:    handle_timeout(now, &reputation)
/// then drain:    while let Some(ev) = poll_event() { .. }
/// sleep until:   poll_timeout()
/// ```
#[derive(Debug)]
pub struct Auctioneer<M> {
    genesis: Timestamp,
    config: BatchConfig,
    mechanism: M,
    batches: BTreeMap<Epoch, SealedBatch>,
    events: VecDeque<MarketEvent>,
}

impl<M: Mechanism> Auctioneer<M> {
    /// An auctioneer whose epoch 0 opens at `genesis`.
    pub fn new(genesis: Timestamp, config: BatchConfig, mechanism: M) -> Result<Self, MarketError> {
        // Validates the windows and sizes once.
        SealedBatch::open(Epoch::ZERO, genesis, config)?;
        Ok(Self {
            genesis,
            config,
            mechanism,
            batches: BTreeMap::new(),
            events: VecDeque::new(),
        })
    }

    /// The mechanism in use.
    pub fn mechanism(&self) -> &M {
        &self.mechanism
    }

    /// The epoch taking commitments at `now`, or `None` before genesis.
    pub fn epoch_at(&self, now: Timestamp) -> Option<Epoch> {
        let since = now.as_micros().checked_sub(self.genesis.as_micros())?;
        Some(Epoch::new(since / self.config.commit_window.as_micros()))
    }

    fn opening(&self, e: Epoch) -> Timestamp {
        let offset = self.config.commit_window.saturating_mul(e.get());
        self.genesis + Duration::from_micros(offset.as_micros())
    }

    /// Commits to an order for the epoch open at `now`; returns that epoch.
    pub fn commit(
        &mut self,
        now: Timestamp,
        owner: AccountId,
        commitment: Commitment,
        bond: Amount,
    ) -> Result<Epoch, MarketError> {
        let e = self.epoch_at(now).ok_or(MarketError::WrongPhase {
            action: "commit",
            phase: "before genesis",
        })?;
        if !self.batches.contains_key(&e) {
            let b = SealedBatch::open(e, self.opening(e), self.config)?;
            self.batches.insert(e, b);
        }
        let batch = self.batches.get_mut(&e).ok_or(MarketError::WrongPhase {
            action: "commit",
            phase: "closed",
        })?;
        batch.commit(now, owner, commitment, bond)?;
        Ok(e)
    }

    /// Reveals an order committed in `epoch`.
    pub fn reveal(
        &mut self,
        now: Timestamp,
        from: AccountId,
        epoch: Epoch,
        commitment: Commitment,
        order: Order,
        salt: Salt,
    ) -> Result<OrderId, MarketError> {
        let batch = self
            .batches
            .get_mut(&epoch)
            .ok_or(MarketError::UnknownCommitment(commitment))?;
        batch.reveal(now, from, commitment, order, salt)
    }

    /// Closes every batch whose reveal window has ended at `now`, oldest
    /// first, queueing one event each.
    pub fn handle_timeout(&mut self, now: Timestamp, reputation: &dyn ReputationLookup) {
        self.handle_timeout_with_goods(now, reputation, &NoGoods);
    }

    /// Like [`Auctioneer::handle_timeout`], quoting apps and datasets with
    /// `pricing` (normally the [`crate::Registry`]).
    pub fn handle_timeout_with_goods(
        &mut self,
        now: Timestamp,
        reputation: &dyn ReputationLookup,
        pricing: &dyn GoodsPricing,
    ) {
        let due: Vec<Epoch> = self
            .batches
            .iter()
            .filter(|(_, b)| b.reveal_deadline() <= now)
            .map(|(e, _)| *e)
            .collect();
        for e in due {
            let Some(mut b) = self.batches.remove(&e) else {
                continue;
            };
            let ev = match b.close_with_goods(now, &self.mechanism, reputation, pricing) {
                Ok(out) => MarketEvent::BatchClosed(out),
                Err(error) => MarketEvent::ClearingFailed { epoch: e, error },
            };
            self.events.push_back(ev);
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<MarketEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` should next be called: the earliest reveal
    /// deadline of an open batch.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.batches
            .values()
            .map(SealedBatch::reveal_deadline)
            .min()
    }

    /// Batches currently open (committing or revealing).
    pub fn open_batches(&self) -> usize {
        self.batches.len()
    }
}

impl<M: Mechanism + ?Sized> Mechanism for Box<M> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn strongly_budget_balanced(&self) -> bool {
        (**self).strongly_budget_balanced()
    }
    fn clear(
        &self,
        asks: &[crate::order::Ask],
        bids: &[crate::order::Bid],
        ctx: &crate::clearing::ClearingContext<'_>,
    ) -> Result<crate::clearing::Clearing, MarketError> {
        (**self).clear(asks, bids, ctx)
    }
}
