//! Sealed-bid batches: commit, reveal, close.

use std::collections::{BTreeMap, BTreeSet};

use idlegrid_primitives::{
    AccountId, Amount, Commitment, Domain, Duration, Epoch, Salt, Timestamp,
};
use serde::{Deserialize, Serialize};

use crate::clearing::{Clearing, ClearingContext, Mechanism};
use crate::error::MarketError;
use crate::order::{Ask, Bid, Limits, Order};
use crate::registry::{GoodsPricing, GoodsRejection, NoGoods, clear_with_goods};
use crate::types::{OrderId, ReputationLookup};

/// Domain label of order commitments.
pub const ORDER_COMMITMENT: Domain = Domain::new("idlegrid/market/order");

/// The commitment to `order` for `epoch` under `salt`. Binding the epoch
/// stops a reveal from being replayed into another batch.
pub fn seal(epoch: Epoch, order: &Order, salt: &Salt) -> Commitment {
    Commitment::to(ORDER_COMMITMENT, &(epoch, order), salt)
}

/// Timing, bond and size rules of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchConfig {
    /// Length of the commit phase.
    pub commit_window: Duration,
    /// Length of the reveal phase.
    pub reveal_window: Duration,
    /// Smallest bond a commitment must carry.
    pub min_bond: Amount,
    /// Most commitments in one batch.
    pub max_commitments: usize,
    /// Order and clearing limits.
    pub limits: Limits,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            commit_window: Duration::from_secs(10),
            reveal_window: Duration::from_secs(10),
            min_bond: Amount::new(1),
            max_commitments: 1 << 16,
            limits: Limits::default(),
        }
    }
}

/// Where a batch is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Accepting commitments.
    Commit,
    /// Accepting reveals.
    Reveal,
    /// The reveal window is over; waiting for `close`.
    Closable,
    /// Closed; the outcome was produced.
    Closed,
}

impl Phase {
    /// A lowercase name.
    pub const fn name(self) -> &'static str {
        match self {
            Phase::Commit => "commit",
            Phase::Reveal => "reveal",
            Phase::Closable => "closable",
            Phase::Closed => "closed",
        }
    }
}

/// Why a bond was forfeited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ForfeitReason {
    /// Never revealed.
    NotRevealed,
    /// Revealed after the reveal window.
    Late,
    /// The reveal did not open the commitment.
    Mismatch,
    /// The revealed order named another owner.
    OwnerMismatch,
    /// The revealed order was invalid.
    InvalidOrder,
    /// The revealed order reused an order id already revealed in this batch.
    DuplicateOrderId,
}

/// A bond to forfeit (the composition root burns or redistributes it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forfeit {
    /// The committer.
    pub owner: AccountId,
    /// The commitment.
    pub commitment: Commitment,
    /// The bond.
    pub bond: Amount,
    /// Why.
    pub reason: ForfeitReason,
}

/// A bond to return.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// The committer.
    pub owner: AccountId,
    /// The commitment.
    pub commitment: Commitment,
    /// The bond.
    pub bond: Amount,
}

/// Everything a closed batch produced, as plain data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutcome {
    /// The batch's epoch.
    pub epoch: Epoch,
    /// The clearing of the revealed orders.
    pub clearing: Clearing,
    /// Bonds returned, in commit order.
    pub refunds: Vec<Refund>,
    /// Bonds forfeited, in commit order.
    pub forfeits: Vec<Forfeit>,
    /// Revealed bids left out of clearing because their apps or datasets
    /// could not be used (their bonds are refunded: the reveal was honest).
    /// Not serialized: the reasons are typed errors for the caller.
    #[serde(skip)]
    pub goods_rejected: Vec<GoodsRejection>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Pending,
    Revealed,
    Forfeited(ForfeitReason),
}

#[derive(Clone, Debug)]
struct Entry {
    owner: AccountId,
    commitment: Commitment,
    bond: Amount,
    state: State,
}

/// One epoch's sealed-bid batch: commit, reveal, close.
///
/// A [`SealedBatch`] lives for one epoch and three phases fixed by its
/// [`BatchConfig`] and opening time:
///
/// 1. **commit** `[opened_at, commit_deadline)`: participants submit
///    [`seal`]`(epoch, order, salt)` with a bond. Nothing about the order is
///    visible.
/// 2. **reveal** `[commit_deadline, reveal_deadline)`: each committer opens
///    its commitment with the order and salt. The first reveal is final: one
///    that does not open the commitment, names another owner, is invalid or
///    reuses an order id is rejected and its bond forfeited. Reveals at or
///    after the deadline are late: rejected, bond forfeited.
/// 3. **close** at or after `reveal_deadline`: unrevealed commitments
///    forfeit, revealed ones are refunded, and the revealed orders are
///    cleared by the chosen [`Mechanism`].
///
/// Driving: the composition root feeds commits and reveals in ledger order
/// (`from` is the authenticated sender), and calls [`SealedBatch::close`]
/// once [`SealedBatch::poll_timeout`] has passed. The [`BatchOutcome`] is
/// plain data: matches to escrow, bonds to refund or forfeit.
#[derive(Clone, Debug)]
pub struct SealedBatch {
    epoch: Epoch,
    opened_at: Timestamp,
    config: BatchConfig,
    entries: Vec<Entry>,
    index: BTreeMap<Commitment, usize>,
    ids: BTreeSet<OrderId>,
    asks: Vec<Ask>,
    bids: Vec<Bid>,
    closed: bool,
}

impl SealedBatch {
    /// Opens the batch of `epoch` at `opened_at`.
    pub fn open(
        epoch: Epoch,
        opened_at: Timestamp,
        config: BatchConfig,
    ) -> Result<Self, MarketError> {
        if config.commit_window == Duration::ZERO || config.reveal_window == Duration::ZERO {
            return Err(MarketError::InvalidParameter(
                "commit and reveal windows must be non-zero",
            ));
        }
        if config.max_commitments > config.limits.max_batch_orders {
            return Err(MarketError::InvalidParameter(
                "max_commitments must not exceed limits.max_batch_orders",
            ));
        }
        Ok(Self {
            epoch,
            opened_at,
            config,
            entries: Vec::new(),
            index: BTreeMap::new(),
            ids: BTreeSet::new(),
            asks: Vec::new(),
            bids: Vec::new(),
            closed: false,
        })
    }

    /// The batch's epoch.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }
    /// End of the commit phase (exclusive).
    pub fn commit_deadline(&self) -> Timestamp {
        self.opened_at + self.config.commit_window
    }
    /// End of the reveal phase (exclusive).
    pub fn reveal_deadline(&self) -> Timestamp {
        self.commit_deadline() + self.config.reveal_window
    }
    /// The phase at `now`.
    pub fn phase(&self, now: Timestamp) -> Phase {
        if self.closed {
            Phase::Closed
        } else if now < self.commit_deadline() {
            Phase::Commit
        } else if now < self.reveal_deadline() {
            Phase::Reveal
        } else {
            Phase::Closable
        }
    }
    /// The next phase boundary after `now`, if any (the driver's wake-up).
    pub fn poll_timeout(&self, now: Timestamp) -> Option<Timestamp> {
        match self.phase(now) {
            Phase::Commit => Some(self.commit_deadline()),
            Phase::Reveal => Some(self.reveal_deadline()),
            Phase::Closable => Some(now),
            Phase::Closed => None,
        }
    }
    /// Number of commitments received.
    pub fn commitments(&self) -> usize {
        self.entries.len()
    }
    /// Number of orders revealed validly so far.
    pub fn revealed(&self) -> usize {
        self.asks.len() + self.bids.len()
    }

    fn wrong_phase(&self, action: &'static str, now: Timestamp) -> MarketError {
        MarketError::WrongPhase {
            action,
            phase: self.phase(now).name(),
        }
    }

    /// Records `owner`'s commitment with its `bond` (the composition root
    /// has already locked the bond).
    pub fn commit(
        &mut self,
        now: Timestamp,
        owner: AccountId,
        commitment: Commitment,
        bond: Amount,
    ) -> Result<(), MarketError> {
        if self.phase(now) != Phase::Commit || now < self.opened_at {
            return Err(self.wrong_phase("commit", now));
        }
        if bond < self.config.min_bond {
            return Err(MarketError::BondTooSmall {
                bond,
                min: self.config.min_bond,
            });
        }
        if self.index.contains_key(&commitment) {
            return Err(MarketError::DuplicateCommitment(commitment));
        }
        if self.entries.len() >= self.config.max_commitments {
            return Err(MarketError::Full {
                what: "commitments in a batch",
                max: self.config.max_commitments,
            });
        }
        self.index.insert(commitment, self.entries.len());
        self.entries.push(Entry {
            owner,
            commitment,
            bond,
            state: State::Pending,
        });
        Ok(())
    }

    /// Opens `commitment` with `order` and `salt`, sent by `from`.
    ///
    /// Errors without effect: wrong phase, unknown commitment, `from` is not
    /// the committer, already settled. Errors that forfeit the bond: late,
    /// mismatch, owner mismatch, invalid order, duplicate order id.
    pub fn reveal(
        &mut self,
        now: Timestamp,
        from: AccountId,
        commitment: Commitment,
        order: Order,
        salt: Salt,
    ) -> Result<OrderId, MarketError> {
        let phase = self.phase(now);
        if !matches!(phase, Phase::Reveal | Phase::Closable) {
            return Err(self.wrong_phase("reveal", now));
        }
        let &i = self
            .index
            .get(&commitment)
            .ok_or(MarketError::UnknownCommitment(commitment))?;
        if self.entries[i].owner != from {
            return Err(MarketError::NotCommitter(commitment));
        }
        if self.entries[i].state != State::Pending {
            return Err(MarketError::AlreadySettled(commitment));
        }
        let verdict = self.judge(now, phase, commitment, &order, &salt);
        match verdict {
            Ok(()) => {
                self.entries[i].state = State::Revealed;
                let id = order.id();
                self.ids.insert(id);
                match order {
                    Order::Ask(a) => self.asks.push(a),
                    Order::Bid(b) => self.bids.push(b),
                }
                Ok(id)
            }
            Err((reason, err)) => {
                self.entries[i].state = State::Forfeited(reason);
                Err(err)
            }
        }
    }

    fn judge(
        &self,
        now: Timestamp,
        phase: Phase,
        c: Commitment,
        order: &Order,
        salt: &Salt,
    ) -> Result<(), (ForfeitReason, MarketError)> {
        if phase == Phase::Closable {
            return Err((ForfeitReason::Late, MarketError::RevealLate(c)));
        }
        if c.open(ORDER_COMMITMENT, &(self.epoch, order), salt)
            .is_err()
        {
            return Err((ForfeitReason::Mismatch, MarketError::RevealMismatch(c)));
        }
        if order.owner() != self.entries[self.index[&c]].owner {
            return Err((ForfeitReason::OwnerMismatch, MarketError::OwnerMismatch(c)));
        }
        if let Err(e) = order.validate(&self.config.limits, now) {
            return Err((
                ForfeitReason::InvalidOrder,
                MarketError::InvalidReveal {
                    commitment: c,
                    reason: Box::new(e),
                },
            ));
        }
        if self.ids.contains(&order.id()) {
            return Err((
                ForfeitReason::DuplicateOrderId,
                MarketError::DuplicateOrderId(order.id()),
            ));
        }
        Ok(())
    }

    /// Closes the batch at `now` (at or after the reveal deadline): settles
    /// bonds and clears the revealed orders with `mechanism`. Without a
    /// registry, bids that reference apps or datasets are left out
    /// ([`NoGoods`]); use [`SealedBatch::close_with_goods`] to price them.
    pub fn close(
        &mut self,
        now: Timestamp,
        mechanism: &dyn Mechanism,
        reputation: &dyn ReputationLookup,
    ) -> Result<BatchOutcome, MarketError> {
        self.close_with_goods(now, mechanism, reputation, &NoGoods)
    }

    /// Like [`SealedBatch::close`], quoting apps and datasets with
    /// `pricing` (normally the [`crate::Registry`]): every match carries
    /// its owners' fees, fixed now.
    pub fn close_with_goods(
        &mut self,
        now: Timestamp,
        mechanism: &dyn Mechanism,
        reputation: &dyn ReputationLookup,
        pricing: &dyn GoodsPricing,
    ) -> Result<BatchOutcome, MarketError> {
        if self.phase(now) != Phase::Closable {
            return Err(self.wrong_phase("close", now));
        }
        let ctx = ClearingContext {
            now,
            limits: self.config.limits,
            reputation,
        };
        let cleared = clear_with_goods(mechanism, &self.asks, &self.bids, &ctx, pricing)?;
        let mut refunds = Vec::new();
        let mut forfeits = Vec::new();
        for e in &self.entries {
            match e.state {
                State::Revealed => refunds.push(Refund {
                    owner: e.owner,
                    commitment: e.commitment,
                    bond: e.bond,
                }),
                State::Pending | State::Forfeited(_) => forfeits.push(Forfeit {
                    owner: e.owner,
                    commitment: e.commitment,
                    bond: e.bond,
                    reason: match e.state {
                        State::Forfeited(r) => r,
                        _ => ForfeitReason::NotRevealed,
                    },
                }),
            }
        }
        self.closed = true;
        Ok(BatchOutcome {
            epoch: self.epoch,
            clearing: cleared.clearing,
            refunds,
            forfeits,
            goods_rejected: cleared.rejected,
        })
    }
}
