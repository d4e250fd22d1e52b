//! What prices a run could clear at: the spread of provider costs, first
//! asks and ask floors, and of client limit prices, for the summary (a
//! mean clearing price below `price_min` is providers undercutting towards
//! their floor, not a bug).

use idlegrid_primitives::Amount;
use serde::{Deserialize, Serialize};

use super::tally::MarketTally;

/// The lowest ask an adaptive provider with this cost per compute-second
/// goes down to (10 % over cost, at least 1).
pub fn ask_floor(cost: Amount) -> Amount {
    Amount::new((cost.get() * 11 / 10).max(1))
}

/// Minimum, deciles and maximum of a set of prices (all zero when empty).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spread {
    /// Smallest.
    pub min: u128,
    /// 10th percentile.
    pub p10: u128,
    /// Median.
    pub p50: u128,
    /// 90th percentile.
    pub p90: u128,
    /// Largest.
    pub max: u128,
}

impl Spread {
    /// The spread of `v` (nearest-rank percentiles).
    pub fn of(mut v: Vec<u128>) -> Self {
        if v.is_empty() {
            return Self::default();
        }
        v.sort_unstable();
        let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        Self {
            min: v[0],
            p10: q(0.1),
            p50: q(0.5),
            p90: q(0.9),
            max: v[v.len() - 1],
        }
    }

    /// `min / p10 / p50 / p90 / max`.
    pub fn render(&self) -> String {
        format!(
            "{} / {} / {} / {} / {}",
            self.min, self.p10, self.p50, self.p90, self.max
        )
    }
}

/// The summary's `market.price_spread` section: provider costs, first
/// asks and floors (every provider identity), client limits.
pub fn spreads_json(t: &MarketTally, adaptive: bool) -> serde_json::Value {
    let (mut cost, mut ask, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    for p in t.providers.values() {
        cost.push(p.cost_per_second.get());
        ask.push(p.first_ask.get());
        let f = if adaptive {
            ask_floor(p.cost_per_second)
        } else {
            p.first_ask
        };
        floor.push(f.get());
    }
    serde_json::json!({
        "provider_cost": Spread::of(cost),
        "provider_first_ask": Spread::of(ask),
        "provider_ask_floor": Spread::of(floor),
        "client_limit": Spread::of(t.limits.values().copied().collect()),
    })
}

/// The terminal summary's line for `market.price_spread`, if present.
pub fn render_line(v: &serde_json::Value) -> Option<String> {
    let s = v.get("market")?.get("price_spread")?;
    let one = |k: &str| -> Option<String> {
        let x: Spread = serde_json::from_value(s.get(k)?.clone()).ok()?;
        Some(x.render())
    };
    Some(format!(
        "prices        min/p10/p50/p90/max: provider cost {}, first ask {}, ask floor {}; client limit {}",
        one("provider_cost")?,
        one("provider_first_ask")?,
        one("provider_ask_floor")?,
        one("client_limit")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_nearest_rank_percentiles() {
        let s = Spread::of((1..=11).rev().collect());
        assert_eq!(
            s,
            Spread {
                min: 1,
                p10: 2,
                p50: 6,
                p90: 10,
                max: 11
            }
        );
        assert_eq!(Spread::of(Vec::new()), Spread::default());
        assert_eq!(s.render(), "1 / 2 / 6 / 10 / 11");
    }

    #[test]
    fn floor_is_ten_percent_over_cost() {
        assert_eq!(ask_floor(Amount::new(3_000)), Amount::new(3_300));
        assert_eq!(ask_floor(Amount::ZERO), Amount::new(1));
    }
}
