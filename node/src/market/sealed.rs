//! Sealed order batches: the replicated side of the commit–reveal rule.
//!
//! Time is cut into *batches* of one clearing period of consensus time
//! ([`batch_of`]). An order's price is committed in one batch and revealed
//! after that batch has closed for commits, within its reveal window; the
//! batch is cleared once the window is over, over the orders revealed for
//! it only.
//!
//! | batch `cur` (consensus) | what the ledger accepts for an order of batch `b` |
//! |---|---|
//! | `cur == b` | the commitment (with its bond); a reveal is *early* |
//! | `cur > b`, window open | the reveal |
//! | window over | nothing: the batch closes (in the end-of-batch hook), unrevealed bonds are forfeited, a reveal is *late* |
//!
//! The reveal window of batch `b` is over once `cur > b + reveal_batches`
//! **and** at least `reveal_commits` ledger batches were committed after
//! `b` closed for commits. The second condition stretches the window over
//! a consensus stall (a partition without quorum): consensus time jumps
//! forward at the first commit after the stall, but the reveals queued
//! during it still get `reveal_commits` commits to land in.
//!
//! A commitment is [`seal_price`]: a salted blake3 commitment to the owner,
//! the order's key and the price. The key is unique over the ledger's life
//! (a provider's ask sequence number only grows; a job's bid attempts only
//! grow), so a reveal cannot be replayed into another batch, and binding the
//! owner stops anyone from adopting another account's commitment. Before a
//! batch closes for commits, the ledger holds only the 32-byte commitment:
//! no validator, gateway or observer learns a price.
//!
//! [`SealedBook`] is the pure decision rule (no ledger): the marketplace
//! application locks and releases the bonds around it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use idlegrid_dag_ledger::ledger::LockId;
use idlegrid_primitives::{
    AccountId, Amount, Commitment, CowMap, CowSet, Domain, Duration, Salt, Timestamp,
};
use serde::{Deserialize, Serialize};

/// Domain label of sealed-price commitments.
pub const SEALED_PRICE: Domain = Domain::new("idlegrid/node/market/sealed-price");
/// Most live commitments (all batches together, all owners): a backstop on
/// the replicated state's size (about 200 bytes each with its indexes).
/// Each owner is bounded on its own: a provider seals at most one ask per
/// batch and has at most `reveal_batches + reveal_commits + 2` live (11 with
/// [`MarketParams::DEFAULT`](super::MarketParams::DEFAULT); two or three
/// while consensus commits several times per batch), and a job has one bid
/// live. So 100 000 providers at their worst case and every pending bid fit.
pub const MAX_SEALED: usize = 1 << 21;

/// A batch number: consensus time in whole clearing periods.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct BatchNo(pub u64);

impl std::fmt::Display for BatchNo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "batch {}", self.0)
    }
}

/// The batch consensus time `now` falls in (a zero period counts as 1 µs).
pub fn batch_of(now: Timestamp, period: Duration) -> BatchNo {
    BatchNo(now.as_micros() / period.as_micros().max(1))
}

/// Which order a commitment seals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum OrderKey {
    /// A provider's ask number `seq` (strictly increasing per provider).
    Ask {
        /// Sequence number.
        seq: u64,
    },
    /// Attempt `attempt` at a client's bid for `job` (0 for the `PostJob`,
    /// then one per re-seal of unfilled lots).
    Bid {
        /// Job.
        job: u64,
        /// Attempt.
        attempt: u32,
    },
}

/// A placeholder commitment for a [`JobRequest`](super::JobRequest) a
/// [`ClientNode`](crate::client::ClientNode) posts: the node replaces it
/// with the seal of the [`JobSpec`](crate::client::JobSpec)'s limit price.
pub fn unsealed() -> Commitment {
    Commitment::from_digest(idlegrid_primitives::Digest::from_bytes([0; 32]))
}

/// The commitment to `price` for `owner`'s order `key` under `salt`.
pub fn seal_price(owner: &AccountId, key: OrderKey, price: Amount, salt: &Salt) -> Commitment {
    Commitment::to(SEALED_PRICE, &(owner, key, price), salt)
}

/// Why a sealing transaction was refused (it changes nothing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SealError {
    /// No live commitment with this key.
    #[error("no sealed order {0:?} of this account is open; seal it first, or it already closed")]
    Unknown(OrderKey),
    /// The key was already used.
    #[error(
        "order {0:?} is already sealed; use a fresh key (a higher ask number or the next bid attempt)"
    )]
    Duplicate(OrderKey),
    /// An ask sequence number that does not grow.
    #[error("ask number {got} is not above the last one ({last}); use a higher number")]
    StaleAsk {
        /// The last ask number used.
        last: u64,
        /// The refused one.
        got: u64,
    },
    /// A second ask in one batch.
    #[error("an ask is already sealed in {0}; seal the next one after that batch closes")]
    AskInBatch(BatchNo),
    /// Revealed while its batch still accepts commitments.
    #[error("{batch} still accepts commitments; reveal after it closes")]
    Early {
        /// The order's batch.
        batch: BatchNo,
    },
    /// Revealed after the reveal window: the batch closed and the bond was
    /// forfeited.
    #[error("the reveal window of {batch} is over; the bond was forfeited")]
    Late {
        /// The order's batch.
        batch: BatchNo,
    },
    /// Price and salt do not open the commitment.
    #[error("price and salt do not open the commitment of {0:?}; reveal what was sealed")]
    Mismatch(OrderKey),
    /// Revealed twice.
    #[error("order {0:?} is already revealed")]
    AlreadyRevealed(OrderKey),
    /// A zero price.
    #[error("a revealed price must be positive")]
    ZeroPrice,
    /// A re-sealed bid above the limit its job's escrow was sized for.
    #[error(
        "bid {price} exceeds the job's escrowed limit {limit}; bid at most the first revealed price"
    )]
    AboveEscrow {
        /// Revealed price.
        price: Amount,
        /// The job's first revealed price.
        limit: Amount,
    },
    /// An ask from an account that does not offer slots.
    #[error("not offering: send `Offer` before sealing asks")]
    NotOffering,
    /// A re-seal for a job that is not waiting for one (unknown, closed,
    /// lapsed, or with every lot filled).
    #[error("job {0} has no unfilled lots to bid for (filled, lapsed or closed)")]
    NotUnfilled(u64),
    /// Too many live commitments.
    #[error("too many sealed orders (max {0}); retry in a later batch")]
    Full(usize),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Entry {
    batch: BatchNo,
    commitment: Commitment,
    bond: Option<LockId>,
    price: Option<Amount>,
}

/// A batch's orders once its reveal window is over.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClosedBatch {
    /// The batch.
    pub batch: BatchNo,
    /// Revealed orders with their prices and bonds (to return), key order.
    pub revealed: Vec<(AccountId, OrderKey, Amount, Option<LockId>)>,
    /// Unrevealed orders and their bonds (to forfeit), key order.
    pub unrevealed: Vec<(AccountId, OrderKey, Option<LockId>)>,
}

/// Closed batches whose unrevealed keys are remembered (to call a reveal
/// *late* rather than unknown).
const REMEMBER_CLOSED: usize = 4;

/// The live commitments, by batch (see the module docs).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SealedBook {
    reveal_batches: u64,
    reveal_commits: u32,
    /// The commitments, their index by batch, the asks' batches and the
    /// providers' last ask numbers are shared shard by shard with copies
    /// of the state ([`CowMap`], [`CowSet`]): about one entry per provider
    /// each, and a ledger batch writes few.
    entries: CowMap<(AccountId, OrderKey), Entry>,
    /// Live batches: their keys and the ledger batches committed since
    /// they closed for commits.
    by_batch: BTreeMap<BatchNo, (CowSet<(AccountId, OrderKey)>, u32)>,
    asks_in: CowSet<(AccountId, BatchNo)>,
    last_ask: CowMap<AccountId, u64>,
    /// The unrevealed keys of the last few closed batches (each set behind
    /// an `Arc`: never written once closed).
    forfeited: BTreeMap<BatchNo, Arc<BTreeSet<(AccountId, OrderKey)>>>,
}

impl SealedBook {
    /// An empty book whose reveal windows last `reveal_batches` batches
    /// (at least 1) and at least `reveal_commits` committed ledger batches.
    pub fn new(reveal_batches: u64, reveal_commits: u32) -> Self {
        Self {
            reveal_batches: reveal_batches.max(1),
            reveal_commits,
            entries: CowMap::new(),
            by_batch: BTreeMap::new(),
            asks_in: CowSet::new(),
            last_ask: CowMap::new(),
            forfeited: BTreeMap::new(),
        }
    }

    /// Batches after its own during which an order may be revealed.
    pub fn reveal_batches(&self) -> u64 {
        self.reveal_batches
    }

    /// Live commitments.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no commitment is live.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Live commitments as (owner, key, batch, revealed): what anyone may
    /// know before a reveal. Prices are not exposed here.
    pub fn live(&self) -> impl Iterator<Item = (AccountId, OrderKey, BatchNo, bool)> + '_ {
        self.entries
            .iter()
            .map(|((o, k), e)| (*o, *k, e.batch, e.price.is_some()))
    }

    /// Checks that `owner` may seal `key` in `batch` (nothing changes).
    pub fn check_commit(
        &self,
        batch: BatchNo,
        owner: AccountId,
        key: OrderKey,
    ) -> Result<(), SealError> {
        if self.entries.len() >= MAX_SEALED {
            return Err(SealError::Full(MAX_SEALED));
        }
        if self.entries.contains_key(&(owner, key)) {
            return Err(SealError::Duplicate(key));
        }
        if let OrderKey::Ask { seq } = key {
            if let Some(&last) = self.last_ask.get(&owner)
                && seq <= last
            {
                return Err(SealError::StaleAsk { last, got: seq });
            }
            if self.asks_in.contains(&(owner, batch)) {
                return Err(SealError::AskInBatch(batch));
            }
        }
        Ok(())
    }

    /// Records a commitment already checked with [`SealedBook::check_commit`]
    /// (its bond already locked).
    pub fn commit(
        &mut self,
        batch: BatchNo,
        owner: AccountId,
        key: OrderKey,
        commitment: Commitment,
        bond: Option<LockId>,
    ) {
        assert!(
            self.check_commit(batch, owner, key).is_ok(),
            "unchecked commit"
        );
        if let OrderKey::Ask { seq } = key {
            self.last_ask.insert(owner, seq);
            self.asks_in.insert((owner, batch));
        }
        self.by_batch
            .entry(batch)
            .or_default()
            .0
            .insert((owner, key));
        let e = Entry {
            batch,
            commitment,
            bond,
            price: None,
        };
        self.entries.insert((owner, key), e);
    }

    /// Checks a reveal at batch `cur`; returns the order's batch.
    pub fn check_reveal(
        &self,
        cur: BatchNo,
        owner: AccountId,
        key: OrderKey,
        price: Amount,
        salt: &Salt,
    ) -> Result<BatchNo, SealError> {
        let Some(e) = self.entries.get(&(owner, key)) else {
            let late = self
                .forfeited
                .iter()
                .find(|(_, s)| s.contains(&(owner, key)));
            return Err(match late {
                Some((&batch, _)) => SealError::Late { batch },
                None => SealError::Unknown(key),
            });
        };
        if e.price.is_some() {
            return Err(SealError::AlreadyRevealed(key));
        }
        if cur <= e.batch {
            return Err(SealError::Early { batch: e.batch });
        }
        if seal_price(&owner, key, price, salt) != e.commitment {
            return Err(SealError::Mismatch(key));
        }
        if price.is_zero() {
            return Err(SealError::ZeroPrice);
        }
        Ok(e.batch)
    }

    /// Records a reveal already checked with [`SealedBook::check_reveal`].
    pub fn reveal(&mut self, owner: AccountId, key: OrderKey, price: Amount) {
        let e = self.entries.get_mut(&(owner, key)).expect("checked reveal");
        assert!(e.price.is_none(), "revealed twice");
        e.price = Some(price);
    }

    /// Counts one committed ledger batch at batch `cur` towards the reveal
    /// windows of the batches closed for commits.
    pub fn count_commit(&mut self, cur: BatchNo) {
        for (_, (_, commits)) in self.by_batch.range_mut(..cur) {
            *commits = commits.saturating_add(1);
        }
    }

    /// The oldest batch whose reveal window is over at batch `cur`, taken
    /// out of the book; `None` when no batch is due.
    pub fn close_due(&mut self, cur: BatchNo) -> Option<ClosedBatch> {
        let (&batch, &(_, commits)) = self.by_batch.first_key_value()?;
        if batch.0 + self.reveal_batches >= cur.0 || commits < self.reveal_commits {
            return None;
        }
        let (keys, _) = self.by_batch.remove(&batch).expect("first batch");
        let mut out = ClosedBatch {
            batch,
            ..ClosedBatch::default()
        };
        for &(owner, key) in keys.iter() {
            let e = self.entries.remove(&(owner, key)).expect("indexed entry");
            assert_eq!(e.batch, batch, "entry indexed under its batch");
            self.asks_in.remove(&(owner, batch));
            match e.price {
                Some(p) => out.revealed.push((owner, key, p, e.bond)),
                None => out.unrevealed.push((owner, key, e.bond)),
            }
        }
        let unrevealed = out.unrevealed.iter().map(|(o, k, _)| (*o, *k)).collect();
        self.forfeited.insert(batch, Arc::new(unrevealed));
        while self.forfeited.len() > REMEMBER_CLOSED {
            self.forfeited.pop_first();
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idlegrid_primitives::{Keypair, Seed};
    use proptest::prelude::*;

    proptest! {
        /// What sizes [`MAX_SEALED`]: a provider that seals an ask in every
        /// commit it can has at most `reveal_batches + reveal_commits + 2`
        /// asks live, however consensus time moves between commits (the
        /// marketplace's order: seal, count the commit, close what is due;
        /// the `+ 2`: the batch being sealed in, and the one this commit's
        /// end closes).
        #[test]
        fn a_provider_has_a_bounded_number_of_asks_live(
            reveal_batches in 1u64..4,
            reveal_commits in 0u32..12,
            jumps in prop::collection::vec(prop_oneof![Just(0u64), Just(1), 0u64..5], 1..200),
        ) {
            let mut b = SealedBook::new(reveal_batches, reveal_commits);
            let (a, mut cur, mut seq) = (owner(1), BatchNo(0), 0);
            let bound = reveal_batches + u64::from(reveal_commits) + 2;
            for jump in jumps {
                cur = BatchNo(cur.0 + jump);
                let key = OrderKey::Ask { seq };
                if b.check_commit(cur, a, key).is_ok() {
                    let c = seal_price(&a, key, Amount::new(1), &Salt::from_bytes([0; 32]));
                    b.commit(cur, a, key, c, None);
                    seq += 1;
                }
                prop_assert!(b.len() as u64 <= bound, "{} asks live, bound {bound}", b.len());
                b.count_commit(cur);
                while b.close_due(cur).is_some() {}
            }
        }
    }

    fn owner(i: u64) -> AccountId {
        Keypair::from_seed(&Seed::from_u64(i)).account_id()
    }

    #[test]
    fn commit_reveal_close() {
        let mut b = SealedBook::new(1, 2);
        let (a, key, salt) = (
            owner(1),
            OrderKey::Ask { seq: 0 },
            Salt::from_bytes([3; 32]),
        );
        let c = seal_price(&a, key, Amount::new(7), &salt);
        b.check_commit(BatchNo(4), a, key).unwrap();
        b.commit(BatchNo(4), a, key, c, None);
        let early = b.check_reveal(BatchNo(4), a, key, Amount::new(7), &salt);
        assert_eq!(early, Err(SealError::Early { batch: BatchNo(4) }));
        let wrong = b.check_reveal(BatchNo(5), a, key, Amount::new(8), &salt);
        assert_eq!(wrong, Err(SealError::Mismatch(key)));
        assert_eq!(
            b.check_reveal(BatchNo(5), a, key, Amount::new(7), &salt),
            Ok(BatchNo(4))
        );
        b.reveal(a, key, Amount::new(7));
        b.count_commit(BatchNo(4));
        b.count_commit(BatchNo(5));
        assert!(b.close_due(BatchNo(5)).is_none(), "window still open");
        assert!(b.close_due(BatchNo(9)).is_none(), "one commit: stretched");
        b.count_commit(BatchNo(9));
        let closed = b.close_due(BatchNo(9)).unwrap();
        assert_eq!(closed.revealed, vec![(a, key, Amount::new(7), None)]);
        assert!(b.is_empty());
    }

    #[test]
    fn a_reveal_after_the_close_is_late() {
        let mut b = SealedBook::new(1, 0);
        let (a, key, salt) = (
            owner(1),
            OrderKey::Ask { seq: 0 },
            Salt::from_bytes([3; 32]),
        );
        b.commit(
            BatchNo(0),
            a,
            key,
            seal_price(&a, key, Amount::new(7), &salt),
            None,
        );
        let closed = b.close_due(BatchNo(2)).unwrap();
        assert_eq!(closed.unrevealed, vec![(a, key, None)]);
        let late = b.check_reveal(BatchNo(2), a, key, Amount::new(7), &salt);
        assert_eq!(late, Err(SealError::Late { batch: BatchNo(0) }));
    }

    #[test]
    fn asks_grow_and_one_per_batch() {
        let mut b = SealedBook::new(2, 0);
        let a = owner(1);
        let c = Commitment::from_digest(idlegrid_primitives::Digest::from_bytes([0; 32]));
        b.commit(BatchNo(1), a, OrderKey::Ask { seq: 5 }, c, None);
        assert_eq!(
            b.check_commit(BatchNo(2), a, OrderKey::Ask { seq: 5 }),
            Err(SealError::Duplicate(OrderKey::Ask { seq: 5 }))
        );
        assert_eq!(
            b.check_commit(BatchNo(2), a, OrderKey::Ask { seq: 4 }),
            Err(SealError::StaleAsk { last: 5, got: 4 })
        );
        assert_eq!(
            b.check_commit(BatchNo(1), a, OrderKey::Ask { seq: 6 }),
            Err(SealError::AskInBatch(BatchNo(1)))
        );
        assert!(
            b.check_commit(BatchNo(2), a, OrderKey::Ask { seq: 6 })
                .is_ok()
        );
    }
}
