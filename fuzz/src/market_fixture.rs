//! Orders for the market targets: fuzzer-built or decoded from raw bytes.

use idlegrid_market::registry::{GoodKind, JobGoods, content_digest};
use idlegrid_market::{
    Ask, Bid, ExecutorKind, ExecutorSet, Features, Order, OrderId, Region, RegionSet, Reputation, Resources,
    Slots,
};
use idlegrid_primitives::{AccountId, Amount, Timestamp};
use libfuzzer_sys::arbitrary::{Result as AResult, Unstructured};

fn who(u: &mut Unstructured<'_>) -> AResult<AccountId> {
    Ok(AccountId::from_bytes([u.int_in_range(1..=6)?; 32]))
}

fn price(u: &mut Unstructured<'_>) -> AResult<Amount> {
    Ok(Amount::new(match u.int_in_range(0..=7u8)? {
        0 => 0,
        1 => u128::MAX,
        2 => 1_000_000_000_000_000_000_000_000_000_000,
        _ => u128::from(u.int_in_range(1..=100u8)?),
    }))
}

fn resources(u: &mut Unstructured<'_>) -> AResult<Resources> {
    if u.ratio(3, 4)? {
        let c = u.int_in_range(1..=4u32)?;
        return Ok(Resources::new(c * 500, c * 512, 0, 0));
    }
    Ok(Resources::new(u.arbitrary()?, u.arbitrary()?, u.arbitrary()?, u.arbitrary()?))
}

fn time(u: &mut Unstructured<'_>) -> AResult<Timestamp> {
    Ok(match u.int_in_range(0..=5u8)? {
        0 => Timestamp::ZERO,
        1 => Timestamp::MAX,
        2 => Timestamp::from_micros(u.arbitrary()?),
        _ => Timestamp::from_millis(u64::from(u.int_in_range(1..=3_600u16)?) * 1_000),
    })
}

/// A fuzzer-chosen order with id `id`, or (rarely) one decoded from bytes.
pub fn order(u: &mut Unstructured<'_>, id: u64) -> AResult<Option<Order>> {
    if u.ratio(1, 16)? {
        let n = u.int_in_range(0..=120)?;
        return Ok(Order::from_bytes(u.bytes(n)?).ok());
    }
    let kind = *u.choose(&[ExecutorKind::Wasm, ExecutorKind::Process, ExecutorKind::Simulated])?;
    let slots = Slots::new(match u.int_in_range(0..=5u8)? {
        0 => 0,
        1 => u32::MAX,
        _ => u32::from(u.int_in_range(1..=4u8)?),
    });
    Ok(Some(if u.arbitrary()? {
        Order::Ask(Ask {
            id: OrderId::new(id),
            provider: who(u)?,
            resources: resources(u)?,
            executors: if u.ratio(7, 8)? { ExecutorSet::single(kind) } else { ExecutorSet::from_bits(u.arbitrary()?) },
            features: features(u)?,
            region: Region::new(u.int_in_range(0..=2)?),
            price: price(u)?,
            slots,
            window_start: if u.ratio(3, 4)? { Timestamp::ZERO } else { time(u)? },
            window_end: time(u)?,
        })
    } else {
        Order::Bid(Bid {
            id: OrderId::new(id),
            client: who(u)?,
            demand: resources(u)?,
            slots,
            max_price: price(u)?,
            deadline: time(u)?,
            regions: if u.ratio(7, 8)? { RegionSet::single(Region::new(u.int_in_range(0..=2)?)) } else { RegionSet::from_bits(u.arbitrary()?) },
            min_reputation: Reputation::from_bps(u.int_in_range(0..=10_000)?),
            executor: kind,
            requires: if u.ratio(3, 4)? { Features::NONE } else { features(u)? },
            goods: if u.ratio(7, 8)? { JobGoods::none() } else { goods(u)? },
        })
    }))
}

/// A subset of three features (asks offer some, bids sometimes need some).
fn features(u: &mut Unstructured<'_>) -> AResult<Features> {
    let bits: u8 = u.arbitrary()?;
    let names = ["numpy", "pandas", "python3.11"];
    Ok(Features::from_names((0..3).filter(|i| bits >> i & 1 == 1).map(|i| names[i]))
        .unwrap_or_default())
}

/// Reputation of the fixture providers: provider byte × 1 500 bps.
pub fn reputation(a: &AccountId) -> Reputation {
    Reputation::from_bps(u16::from(a.as_bytes()[0]).saturating_mul(1_500).min(10_000))
}

/// One of a few registry good digests.
pub fn good(u: &mut Unstructured<'_>) -> AResult<idlegrid_primitives::Digest> {
    let kind = if u.arbitrary()? { GoodKind::App } else { GoodKind::Dataset };
    Ok(content_digest(kind, &[u.int_in_range(0..=3u8)?]))
}

fn goods(u: &mut Unstructured<'_>) -> AResult<JobGoods> {
    let mut g = JobGoods::none();
    if u.arbitrary()? {
        g.app = Some(good(u)?);
    }
    for _ in 0..u.int_in_range(0..=3)? {
        g.datasets.push(good(u)?);
    }
    g.max_fee_per_slot = price(u)?;
    Ok(g)
}
