//! Orders: provider asks, client bids, their validation and compatibility.
//!
//! Prices are [`Amount`]s per **compute-unit-second**, where one compute
//! unit is one slot of the ask's per-slot resource vector. A match for `n`
//! slots at price `p` running `s` seconds costs `n * p * s`
//! ([`crate::Match::buyer_total`]).

use idlegrid_primitives::{AccountId, Amount, DecodeError, Timestamp, decode, encode};
use serde::{Deserialize, Serialize};

use crate::error::MarketError;
use crate::features::Features;
use crate::registry::JobGoods;
use crate::types::{
    ExecutorKind, ExecutorSet, OrderId, Region, RegionSet, Reputation, Resources, Slots,
};

/// Bounds on what one order may contain and how big a batch or book may
/// grow. Everything an outsider can grow has a limit here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Most slots in one order.
    pub max_slots: u32,
    /// Highest price per slot-second.
    pub max_price: Amount,
    /// Per-slot resource caps; a larger vector is absurd.
    pub max_resources: Resources,
    /// Most orders cleared in one batch.
    pub max_batch_orders: usize,
    /// Most resting orders in an order book (both sides together).
    pub max_book_depth: usize,
    /// Most candidate counterparties examined for one order when pairing
    /// (bounds work under adversarial incompatibility).
    pub max_scan: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_slots: 1 << 20,
            // 10^30 base units per slot-second: far above any sane price,
            // far below overflow for sums over a full batch.
            max_price: Amount::new(1_000_000_000_000_000_000_000_000_000_000),
            max_resources: Resources::new(1 << 22, 1 << 24, 1024, 1 << 30),
            max_batch_orders: 1 << 21,
            max_book_depth: 1 << 20,
            max_scan: 1 << 16,
        }
    }
}

/// A provider's offer: `slots` parallel slots of `resources` each, at
/// `price` per slot-second, available in `[window_start, window_end)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ask {
    /// Unique order id.
    pub id: OrderId,
    /// The provider's account (paid on settlement; its reputation is looked up).
    pub provider: AccountId,
    /// Resources of one slot.
    pub resources: Resources,
    /// Executor kinds the provider runs.
    pub executors: ExecutorSet,
    /// What its runtime offers (packages, interpreter versions).
    pub features: Features,
    /// Where the provider is.
    pub region: Region,
    /// Reserve price per slot-second.
    pub price: Amount,
    /// Capacity in slots.
    pub slots: Slots,
    /// First instant the capacity is available.
    pub window_start: Timestamp,
    /// End of availability (exclusive); the ask expires then.
    pub window_end: Timestamp,
}

/// A client's request: `slots` parallel slots each needing `demand`, paying
/// at most `max_price` per slot-second, to run before `deadline`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bid {
    /// Unique order id.
    pub id: OrderId,
    /// The client's account (pays into escrow on settlement).
    pub client: AccountId,
    /// Resources needed per slot.
    pub demand: Resources,
    /// Parallel slots wanted (partial fills allowed).
    pub slots: Slots,
    /// Limit price per slot-second (the bid's value).
    pub max_price: Amount,
    /// Work must be able to start before this instant; the bid expires then.
    pub deadline: Timestamp,
    /// Regions the client accepts.
    pub regions: RegionSet,
    /// Lowest provider reputation the client accepts.
    pub min_reputation: Reputation,
    /// The executor the job needs.
    pub executor: ExecutorKind,
    /// Features of the provider's runtime the job needs (its imports).
    pub requires: Features,
    /// Apps and datasets the job uses (none by default: a plain compute
    /// bid). Owners' fees are quoted at clearing; see [`crate::registry`].
    pub goods: JobGoods,
}

/// Either side of the market.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    /// A provider's ask.
    Ask(Ask),
    /// A client's bid.
    Bid(Bid),
}

/// Upper bound on an order's canonical encoding (the largest, a bid with an
/// app, the most datasets and the most features of the longest names, is
/// about 13 KiB); decoding refuses anything longer.
pub const MAX_ORDER_BYTES: usize = 16 * 1024;

impl Order {
    /// The canonical encoding (what a commitment hashes, with the epoch).
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }
    /// Decodes untrusted bytes: at most [`MAX_ORDER_BYTES`], canonical only.
    /// The result still needs [`Order::validate`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Order, DecodeError> {
        decode(bytes, MAX_ORDER_BYTES)
    }
    /// The order id.
    pub fn id(&self) -> OrderId {
        match self {
            Order::Ask(a) => a.id,
            Order::Bid(b) => b.id,
        }
    }
    /// The account that placed the order.
    pub fn owner(&self) -> AccountId {
        match self {
            Order::Ask(a) => a.provider,
            Order::Bid(b) => b.client,
        }
    }
    /// Checks the order against `limits` and that it is live at `now`.
    pub fn validate(&self, limits: &Limits, now: Timestamp) -> Result<(), MarketError> {
        match self {
            Order::Ask(a) => a.validate(limits, now),
            Order::Bid(b) => b.validate(limits, now),
        }
    }
}

fn check_common(
    id: OrderId,
    slots: Slots,
    price: Amount,
    res: &Resources,
    limits: &Limits,
) -> Result<(), MarketError> {
    if slots.get() == 0 {
        return Err(MarketError::ZeroSlots(id));
    }
    if slots.get() > limits.max_slots {
        return Err(MarketError::TooManySlots {
            order: id,
            slots: slots.get(),
            max: limits.max_slots,
        });
    }
    if price.is_zero() {
        return Err(MarketError::ZeroPrice(id));
    }
    if price > limits.max_price {
        return Err(MarketError::PriceTooHigh {
            order: id,
            price,
            max: limits.max_price,
        });
    }
    if res.cpu_millicores == 0 || res.memory_mib == 0 || !limits.max_resources.fits(res) {
        return Err(MarketError::AbsurdResources(id));
    }
    Ok(())
}

impl Ask {
    /// Checks the ask against `limits`, and that it has not expired at `now`.
    pub fn validate(&self, limits: &Limits, now: Timestamp) -> Result<(), MarketError> {
        self.validate_shape(limits)?;
        if self.window_end <= now {
            return Err(MarketError::Expired {
                order: self.id,
                at: self.window_end,
            });
        }
        Ok(())
    }

    /// Checks the ask against `limits`, ignoring time.
    pub fn validate_shape(&self, limits: &Limits) -> Result<(), MarketError> {
        check_common(self.id, self.slots, self.price, &self.resources, limits)?;
        let malformed = |what| MarketError::Malformed {
            order: self.id,
            what,
        };
        if !self.executors.is_valid() {
            return Err(malformed("executor set is empty or has unknown bits"));
        }
        if self.features.check().is_err() {
            return Err(malformed("feature set is not canonical or too large"));
        }
        if !self.region.is_valid() {
            return Err(malformed("region number out of range"));
        }
        if self.window_start >= self.window_end {
            return Err(malformed("availability window is empty"));
        }
        Ok(())
    }
    /// True if the ask can still trade at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.window_end > now
    }
}

impl Bid {
    /// Checks the bid against `limits`, and that it has not expired at `now`.
    pub fn validate(&self, limits: &Limits, now: Timestamp) -> Result<(), MarketError> {
        self.validate_shape(limits)?;
        if self.deadline <= now {
            return Err(MarketError::Expired {
                order: self.id,
                at: self.deadline,
            });
        }
        Ok(())
    }

    /// Checks the bid against `limits`, ignoring time.
    pub fn validate_shape(&self, limits: &Limits) -> Result<(), MarketError> {
        check_common(self.id, self.slots, self.max_price, &self.demand, limits)?;
        let malformed = |what| MarketError::Malformed {
            order: self.id,
            what,
        };
        if self.regions.is_empty() {
            return Err(malformed("no acceptable region"));
        }
        if self.requires.check().is_err() {
            return Err(malformed(
                "required feature set is not canonical or too large",
            ));
        }
        if self.min_reputation > Reputation::MAX {
            return Err(malformed("minimum reputation above 10000 bps"));
        }
        self.goods.check_shape().map_err(malformed)?;
        if self.goods.max_fee_per_slot > limits.max_price {
            return Err(malformed("fee cap above the price limit"));
        }
        Ok(())
    }
    /// True if the bid can still trade at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.deadline > now
    }

    /// This bid running the app `digest`.
    pub fn with_app(mut self, digest: idlegrid_primitives::Digest) -> Self {
        self.goods.app = Some(digest);
        self
    }
    /// This bid also reading the dataset `digest`.
    pub fn with_dataset(mut self, digest: idlegrid_primitives::Digest) -> Self {
        self.goods.datasets.push(digest);
        self
    }
    /// This bid accepting at most `cap` in owners' fees per slot.
    pub fn with_max_fee(mut self, cap: Amount) -> Self {
        self.goods.max_fee_per_slot = cap;
        self
    }
}

/// True if `ask` can serve `bid`, ignoring price: the slot fits the demand,
/// the executor kind is offered, the runtime has every feature the bid
/// requires, the region is accepted, the provider's reputation is high
/// enough and the capacity is available before the bid's deadline.
pub fn compatible(ask: &Ask, bid: &Bid, provider_reputation: Reputation) -> bool {
    ask.resources.fits(&bid.demand)
        && ask.executors.contains(bid.executor)
        && ask.features.contains_all(&bid.requires)
        && bid.regions.contains(ask.region)
        && provider_reputation >= bid.min_reputation
        && ask.window_start < bid.deadline
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask() -> Ask {
        Ask {
            id: OrderId::new(1),
            provider: AccountId::from_bytes([1; 32]),
            resources: Resources::new(2000, 4096, 0, 1024),
            executors: ExecutorSet::single(ExecutorKind::Wasm),
            features: Features::from_names(["numpy", "python3.11"]).unwrap(),
            region: Region::new(2),
            price: Amount::new(10),
            slots: Slots::new(4),
            window_start: Timestamp::ZERO,
            window_end: Timestamp::from_millis(1000),
        }
    }
    fn bid() -> Bid {
        Bid {
            id: OrderId::new(2),
            client: AccountId::from_bytes([2; 32]),
            demand: Resources::new(1000, 1024, 0, 0),
            slots: Slots::new(2),
            max_price: Amount::new(12),
            deadline: Timestamp::from_millis(500),
            regions: RegionSet::single(Region::new(2)),
            min_reputation: Reputation::from_bps(5000),
            executor: ExecutorKind::Wasm,
            requires: Features::NONE,
            goods: JobGoods::none(),
        }
    }

    #[test]
    fn validation_rejects_bad_orders() {
        let l = Limits::default();
        let now = Timestamp::ZERO;
        assert!(ask().validate(&l, now).is_ok());
        assert!(bid().validate(&l, now).is_ok());
        let mut a = ask();
        a.slots = Slots::new(0);
        assert_eq!(a.validate(&l, now), Err(MarketError::ZeroSlots(a.id)));
        let mut a = ask();
        a.price = Amount::ZERO;
        assert_eq!(a.validate(&l, now), Err(MarketError::ZeroPrice(a.id)));
        let mut a = ask();
        a.price = Amount::MAX;
        assert!(matches!(
            a.validate(&l, now),
            Err(MarketError::PriceTooHigh { .. })
        ));
        let mut a = ask();
        a.resources.cpu_millicores = u32::MAX;
        assert_eq!(a.validate(&l, now), Err(MarketError::AbsurdResources(a.id)));
        let mut a = ask();
        a.window_end = a.window_start;
        assert!(matches!(
            a.validate(&l, now),
            Err(MarketError::Malformed { .. })
        ));
        let mut a = ask();
        a.executors = ExecutorSet::EMPTY;
        assert!(matches!(
            a.validate(&l, now),
            Err(MarketError::Malformed { .. })
        ));
        let mut b = bid();
        b.slots = Slots::new(u32::MAX);
        assert!(matches!(
            b.validate(&l, now),
            Err(MarketError::TooManySlots { .. })
        ));
        let mut b = bid();
        b.regions = RegionSet::EMPTY;
        assert!(matches!(
            b.validate(&l, now),
            Err(MarketError::Malformed { .. })
        ));
        let mut b = bid();
        b.min_reputation = Reputation::from_bps(10_001);
        assert!(matches!(
            b.validate(&l, now),
            Err(MarketError::Malformed { .. })
        ));
        assert!(matches!(
            bid().validate(&l, Timestamp::from_millis(500)),
            Err(MarketError::Expired { .. })
        ));
        // A feature set off the wire that is not canonical.
        let unsorted: Features = decode(&encode(&vec!["pandas", "numpy"]), 1 << 16).unwrap();
        let mut a = ask();
        a.features = unsorted.clone();
        assert!(matches!(
            a.validate(&l, now),
            Err(MarketError::Malformed { .. })
        ));
        let mut b = bid();
        b.requires = unsorted;
        assert!(matches!(
            b.validate(&l, now),
            Err(MarketError::Malformed { .. })
        ));
    }

    #[test]
    fn compatibility_rules() {
        let ok = Reputation::from_bps(6000);
        assert!(compatible(&ask(), &bid(), ok));
        assert!(!compatible(&ask(), &bid(), Reputation::from_bps(4999)));
        let mut b = bid();
        b.executor = ExecutorKind::Process;
        assert!(!compatible(&ask(), &b, ok));
        let mut b = bid();
        b.regions = RegionSet::single(Region::new(3));
        assert!(!compatible(&ask(), &b, ok));
        let mut b = bid();
        b.demand.gpu_units = 1;
        assert!(!compatible(&ask(), &b, ok));
        let mut a = ask();
        a.window_start = Timestamp::from_millis(500);
        assert!(!compatible(&a, &bid(), ok));
        let mut b = bid();
        b.requires = Features::from_names(["NumPy"]).unwrap();
        assert!(compatible(&ask(), &b, ok));
        b.requires = Features::from_names(["numpy", "torch"]).unwrap();
        assert!(!compatible(&ask(), &b, ok), "torch is not offered");
    }

    proptest::proptest! {
        /// Requiring more never gains a partner; offering more never loses
        /// one (misreporting requirements can only lose compatible partners).
        #[test]
        fn features_are_monotone(offer in 0u8..8, need in 0u8..8, extra in 0u8..8) {
            use crate::strategies::feature_set;
            let (mut a, mut b) = (ask(), bid());
            a.features = feature_set(offer);
            b.requires = feature_set(need);
            let before = compatible(&a, &b, Reputation::MAX);
            b.requires = feature_set(need | extra);
            proptest::prop_assert!(!compatible(&a, &b, Reputation::MAX) || before);
            b.requires = feature_set(need);
            a.features = feature_set(offer | extra);
            proptest::prop_assert!(compatible(&a, &b, Reputation::MAX) || !before);
        }
    }
}
