//! Proptest strategies for orders and whole markets (feature `strategies`).
//!
//! Markets are live at [`Timestamp::ZERO`] (asks available `[0, 1000 s)`,
//! bids due at 1000 s), ids are unique (asks first, then bids), and prices
//! come from a small range so ties are common.
//!
//! ```
//! use idlegrid_market::{strategies, Mechanism, McAfee, ClearingContext, FlatReputation,
//!     Limits, Reputation, check_clearing};
//! use idlegrid_primitives::Timestamp;
//! use proptest::prelude::*;
//!
//! proptest!(ProptestConfig::with_cases(16), |((asks, bids) in strategies::unit_market(20, 20))| {
//!     let rep = FlatReputation(Reputation::MAX);
//!     let ctx = ClearingContext { now: Timestamp::ZERO, limits: Limits::default(), reputation: &rep };
//!     let c = McAfee.clear(&asks, &bids, &ctx).unwrap();
//!     prop_assert!(check_clearing(&asks, &bids, &c, &ctx, false).is_ok());
//! });
//! ```

use idlegrid_primitives::{AccountId, Amount, Timestamp};
use proptest::prelude::*;

use crate::features::Features;
use crate::order::{Ask, Bid, Order};
use crate::registry::{JobGoods, MAX_DATASETS_PER_JOB};
use crate::types::{
    ExecutorKind, ExecutorSet, OrderId, Region, RegionSet, Reputation, Resources, Slots,
};

/// End of every generated ask window and bid deadline: 1000 s.
pub const HORIZON: Timestamp = Timestamp::from_micros(1_000_000_000);

/// A cheap account id (not a real key: markets never verify signatures).
pub fn account() -> impl Strategy<Value = AccountId> {
    any::<u16>().prop_map(|n| {
        let mut b = [0u8; 32];
        b[..2].copy_from_slice(&n.to_le_bytes());
        AccountId::from_bytes(b)
    })
}

/// Any executor kind.
pub fn executor_kind() -> impl Strategy<Value = ExecutorKind> {
    prop::sample::select(ExecutorKind::ALL.to_vec())
}

/// A small per-slot resource vector from a few tiers.
pub fn resources() -> impl Strategy<Value = Resources> {
    (1u32..=4, 1u32..=4, 0u16..=1, 0u32..=2)
        .prop_map(|(c, m, g, d)| Resources::new(c * 1000, m * 1024, g, d * 10_240))
}

/// The standard slot of homogeneous markets.
pub const UNIT_SLOT: Resources = Resources::new(1000, 1024, 0, 0);

/// A homogeneous ask: standard slot, Wasm, region 0.
pub fn unit_ask(id: u64, price: u128, slots: u32, provider: AccountId) -> Ask {
    Ask {
        id: OrderId::new(id),
        provider,
        resources: UNIT_SLOT,
        executors: ExecutorSet::single(ExecutorKind::Wasm),
        features: Features::NONE,
        region: Region::new(0),
        price: Amount::new(price),
        slots: Slots::new(slots),
        window_start: Timestamp::ZERO,
        window_end: HORIZON,
    }
}

/// A homogeneous bid compatible with every [`unit_ask`].
pub fn unit_bid(id: u64, price: u128, slots: u32, client: AccountId) -> Bid {
    Bid {
        id: OrderId::new(id),
        client,
        demand: UNIT_SLOT,
        slots: Slots::new(slots),
        max_price: Amount::new(price),
        deadline: HORIZON,
        regions: RegionSet::single(Region::new(0)),
        min_reputation: Reputation::ZERO,
        executor: ExecutorKind::Wasm,
        requires: Features::NONE,
        goods: JobGoods::none(),
    }
}

/// Any goods reference: maybe an app, up to [`MAX_DATASETS_PER_JOB`]
/// datasets (possibly duplicated, to exercise validation), any fee cap.
pub fn job_goods() -> impl Strategy<Value = JobGoods> {
    (
        prop::option::of(any::<[u8; 32]>()),
        prop::collection::vec(any::<[u8; 32]>(), 0..=MAX_DATASETS_PER_JOB),
        idlegrid_primitives::strategies::amount(),
    )
        .prop_map(|(app, ds, cap)| JobGoods {
            app: app.map(idlegrid_primitives::Digest::from_bytes),
            datasets: ds
                .into_iter()
                .map(idlegrid_primitives::Digest::from_bytes)
                .collect(),
            max_fee_per_slot: cap,
        })
}

fn account_n(n: u64) -> AccountId {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&n.to_le_bytes());
    AccountId::from_bytes(b)
}

/// A homogeneous market of up to `max_asks` × `max_bids` orders with
/// `1..=max_slots` slots each and prices in `1..=price_range`.
pub fn homogeneous_market(
    max_asks: usize,
    max_bids: usize,
    max_slots: u32,
    price_range: u128,
) -> impl Strategy<Value = (Vec<Ask>, Vec<Bid>)> {
    let side = move |n| prop::collection::vec((1..=price_range, 1..=max_slots), 0..=n);
    (side(max_asks), side(max_bids)).prop_map(|(a, b)| {
        let na = a.len() as u64;
        let asks = a
            .into_iter()
            .enumerate()
            .map(|(i, (p, s))| unit_ask(i as u64, p, s, account_n(i as u64)))
            .collect();
        let bids = b
            .into_iter()
            .enumerate()
            .map(|(i, (p, s))| {
                let id = na + i as u64;
                unit_bid(id, p, s, account_n(id))
            })
            .collect();
        (asks, bids)
    })
}

/// A homogeneous market of unit traders (one slot each), prices `1..=100`.
pub fn unit_market(
    max_asks: usize,
    max_bids: usize,
) -> impl Strategy<Value = (Vec<Ask>, Vec<Bid>)> {
    homogeneous_market(max_asks, max_bids, 1, 100)
}

/// A heterogeneous ask with id `id`: three regions, mixed executors and
/// resource tiers, `1..=4` slots, price `1..=100`.
pub fn hetero_ask(id: u64) -> impl Strategy<Value = Ask> {
    (resources(), 1u8..=7, 0u8..3, 1u128..=100, 1u32..=4, 0u8..8).prop_map(
        move |(r, e, reg, p, s, f)| Ask {
            id: OrderId::new(id),
            provider: account_n(id),
            resources: r,
            executors: ExecutorSet::from_bits(e),
            features: feature_set(f),
            region: Region::new(reg),
            price: Amount::new(p),
            slots: Slots::new(s),
            window_start: Timestamp::ZERO,
            window_end: HORIZON,
        },
    )
}

/// A heterogeneous bid with id `id`.
pub fn hetero_bid(id: u64) -> impl Strategy<Value = Bid> {
    (
        resources(),
        executor_kind(),
        1u64..8,
        0u16..=8000,
        1u128..=100,
        1u32..=4,
        prop_oneof![3 => Just(0u8), 1 => 1u8..8],
    )
        .prop_map(move |(r, e, regs, rep, p, s, f)| Bid {
            id: OrderId::new(id),
            client: account_n(id),
            demand: r,
            slots: Slots::new(s),
            max_price: Amount::new(p),
            deadline: HORIZON,
            regions: RegionSet::from_bits(regs),
            min_reputation: Reputation::from_bps(rep),
            executor: e,
            requires: feature_set(f),
            goods: JobGoods::none(),
        })
}

/// The subset of the features `a`, `b`, `c` given by the low three bits of
/// `bits` (heterogeneous markets: asks offer some, bids sometimes need some).
pub fn feature_set(bits: u8) -> Features {
    let names = ["a", "b", "c"];
    Features::from_names((0..3).filter(|i| bits >> i & 1 == 1).map(|i| names[i]))
        .expect("three valid names")
}

/// A heterogeneous market of up to `max_asks` × `max_bids` orders.
pub fn hetero_market(
    max_asks: usize,
    max_bids: usize,
) -> impl Strategy<Value = (Vec<Ask>, Vec<Bid>)> {
    (0..=max_asks, 0..=max_bids).prop_flat_map(|(na, nb)| {
        let asks: Vec<_> = (0..na as u64).map(hetero_ask).collect();
        let bids: Vec<_> = (0..nb as u64).map(|i| hetero_bid(na as u64 + i)).collect();
        (asks, bids)
    })
}

/// Reputation of a generated provider: a fixed function of its account, so
/// tests and the code under test agree.
pub fn test_reputation(provider: &AccountId) -> Reputation {
    let b = provider.as_bytes();
    Reputation::from_bps(((u32::from(u16::from_le_bytes([b[0], b[1]])) * 997) % 10_001) as u16)
}

/// An order with arbitrary, often invalid, fields (for bad-input tests).
pub fn wild_order() -> impl Strategy<Value = Order> {
    let res = (any::<u32>(), any::<u32>(), any::<u16>(), any::<u32>())
        .prop_map(|(c, m, g, d)| Resources::new(c, m, g, d));
    let ask = (
        any::<u64>(),
        account(),
        res.clone(),
        any::<u8>(),
        any::<u8>(),
        idlegrid_primitives::strategies::amount(),
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(id, p, r, e, reg, price, s, w0, w1)| {
            Order::Ask(Ask {
                id: OrderId::new(id),
                provider: p,
                resources: r,
                executors: ExecutorSet::from_bits(e),
                features: Features::NONE,
                region: Region::new(reg),
                price,
                slots: Slots::new(s),
                window_start: Timestamp::from_micros(w0),
                window_end: Timestamp::from_micros(w1),
            })
        });
    let bid = (
        any::<u64>(),
        account(),
        res,
        any::<u32>(),
        idlegrid_primitives::strategies::amount(),
        any::<u64>(),
        any::<u64>(),
        any::<u16>(),
        executor_kind(),
        job_goods(),
    )
        .prop_map(|(id, c, r, s, price, dl, regs, rep, e, goods)| {
            Order::Bid(Bid {
                id: OrderId::new(id),
                client: c,
                demand: r,
                slots: Slots::new(s),
                max_price: price,
                deadline: Timestamp::from_micros(dl),
                regions: RegionSet::from_bits(regs),
                min_reputation: Reputation::from_bps(rep),
                executor: e,
                requires: Features::NONE,
                goods,
            })
        });
    prop_oneof![ask, bid]
}
