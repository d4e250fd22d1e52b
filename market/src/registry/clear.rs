//! Clearing with goods: quoting owners' fees, excluding bids whose goods
//! cannot be used, and fixing every party's price in the matches.

use std::collections::BTreeMap;

use idlegrid_primitives::AccountId;

use super::error::RegistryError;
use super::state::Registry;
use super::types::{JobGoods, OwnerFee};
use crate::clearing::{Clearing, ClearingContext, Mechanism};
use crate::error::MarketError;
use crate::order::{Ask, Bid};
use crate::types::OrderId;

/// Where clearing reads the owners' current prices and access rules.
/// [`Registry`] implements it; [`NoGoods`] is the registry-less market.
pub trait GoodsPricing {
    /// The owners' fees per slot for `client`'s bid `bid` using `goods`,
    /// or why the bid may not use them.
    fn quote(
        &self,
        client: &AccountId,
        bid: OrderId,
        goods: &JobGoods,
    ) -> Result<Vec<OwnerFee>, RegistryError>;
}

impl GoodsPricing for Registry {
    fn quote(
        &self,
        client: &AccountId,
        bid: OrderId,
        goods: &JobGoods,
    ) -> Result<Vec<OwnerFee>, RegistryError> {
        Registry::quote(self, client, bid, goods)
    }
}

/// A market without a registry: bids referencing no goods are quoted no
/// fees; bids referencing any good are refused as unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoGoods;

impl GoodsPricing for NoGoods {
    fn quote(
        &self,
        _client: &AccountId,
        bid: OrderId,
        goods: &JobGoods,
    ) -> Result<Vec<OwnerFee>, RegistryError> {
        goods
            .check_shape()
            .map_err(|what| RegistryError::BadGoods { bid, what })?;
        match goods.items().next() {
            None => Ok(Vec::new()),
            Some((_, d)) => Err(RegistryError::UnknownDigest(d)),
        }
    }
}

/// A bid left out of clearing because its goods could not be quoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoodsRejection {
    /// The bid.
    pub bid: OrderId,
    /// Its client.
    pub client: AccountId,
    /// Why.
    pub reason: RegistryError,
}

/// A clearing whose matches carry owners' fees, plus the bids excluded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GoodsClearing {
    /// The clearing (statistics cover compute prices only).
    pub clearing: Clearing,
    /// Bids excluded before clearing, in input order.
    pub rejected: Vec<GoodsRejection>,
}

/// Clears `asks` and `bids` with `mechanism`, after quoting every bid's
/// goods with `pricing`: bids whose goods are unknown, deprecated, of the
/// wrong kind, not allowed to the client or above the bid's fee cap are
/// excluded (and reported); every match then carries its bid's quote, so
/// the owners' prices are fixed at match time.
///
/// Compute prices are cleared exactly as without goods: owners' fees are a
/// fixed per-slot add-on the client accepted in advance (its cap), so they
/// do not change which trades are efficient or the mechanism's incentives.
pub fn clear_with_goods(
    mechanism: &dyn Mechanism,
    asks: &[Ask],
    bids: &[Bid],
    ctx: &ClearingContext<'_>,
    pricing: &dyn GoodsPricing,
) -> Result<GoodsClearing, MarketError> {
    let mut quotes: BTreeMap<OrderId, Vec<OwnerFee>> = BTreeMap::new();
    let mut rejected = Vec::new();
    let mut kept: Vec<Bid> = Vec::with_capacity(bids.len());
    let any_goods = bids.iter().any(|b| !b.goods.is_empty());
    for b in bids {
        if b.goods.is_empty() {
            if any_goods {
                kept.push(b.clone());
            }
            continue;
        }
        match pricing.quote(&b.client, b.id, &b.goods) {
            Ok(fees) => {
                quotes.insert(b.id, fees);
                kept.push(b.clone());
            }
            Err(reason) => rejected.push(GoodsRejection {
                bid: b.id,
                client: b.client,
                reason,
            }),
        }
    }
    // Without goods the caller's slice is cleared as is (no copy).
    let bids = if any_goods { &kept[..] } else { bids };
    let mut clearing = mechanism.clear(asks, bids, ctx)?;
    for m in &mut clearing.matches {
        if let Some(fees) = quotes.get(&m.bid) {
            m.fees = fees.clone();
        }
    }
    Ok(GoodsClearing { clearing, rejected })
}
