//! McAfee (1992) against an independent textbook implementation on random
//! unit markets, including the rounding edge `b_{k+1} + s_{k+1} = 2·b_k + 1`
//! where the exact midpoint exceeds `b_k` by one half.
//!
//! The reference works on plain sorted price lists and compares the exact
//! midpoint as a rational (numerator over 2), so it shares no code and no
//! rounding with the crate.

use idlegrid_market::strategies::{unit_ask, unit_bid};
use idlegrid_market::*;
use idlegrid_primitives::{AccountId, Timestamp};
use proptest::prelude::*;

/// What McAfee's mechanism does: units traded and, if any, the price buyers
/// pay and the price sellers receive.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    units: u64,
    prices: Option<(u128, u128)>,
}

/// The textbook rule. Bids sorted descending, asks ascending; `k` is the
/// number of leading pairs with `b_i >= s_i`. If both sides have a
/// `(k+1)`-th unit and `s_k <= (b_{k+1} + s_{k+1}) / 2 <= b_k`, all `k`
/// trade at that price (rounded down to whole units); otherwise `k − 1`
/// trade, buyers pay `b_k`, sellers receive `s_k`.
fn textbook(bids: &[u128], asks: &[u128]) -> Outcome {
    let mut b = bids.to_vec();
    let mut s = asks.to_vec();
    b.sort_unstable_by(|x, y| y.cmp(x));
    s.sort_unstable();
    let k = b.iter().zip(&s).take_while(|(x, y)| x >= y).count();
    if k == 0 {
        return Outcome {
            units: 0,
            prices: None,
        };
    }
    let (bk, sk) = (b[k - 1], s[k - 1]);
    if let (Some(&bn), Some(&sn)) = (b.get(k), s.get(k)) {
        // p0 = num / 2, exactly.
        let num = bn + sn;
        if 2 * sk <= num && num <= 2 * bk {
            let p = num / 2;
            return Outcome {
                units: k as u64,
                prices: Some((p, p)),
            };
        }
    }
    let units = k as u64 - 1;
    Outcome {
        units,
        prices: (units > 0).then_some((bk, sk)),
    }
}

fn who(n: u64) -> AccountId {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&n.to_le_bytes());
    AccountId::from_bytes(bytes)
}

/// The crate's McAfee on the same prices, one unit order each.
fn ours(bids: &[u128], asks: &[u128]) -> Outcome {
    let asks: Vec<Ask> = (0u64..)
        .zip(asks)
        .map(|(i, &p)| unit_ask(i, p, 1, who(i)))
        .collect();
    let bids: Vec<Bid> = (1000u64..)
        .zip(bids)
        .map(|(i, &p)| unit_bid(i, p, 1, who(i)))
        .collect();
    let rep = FlatReputation(Reputation::MAX);
    let ctx = ClearingContext {
        now: Timestamp::ZERO,
        limits: Limits::default(),
        reputation: &rep,
    };
    let c = McAfee.clear(&asks, &bids, &ctx).expect("valid unit market");
    let first = c.matches.first().map(|m| (m.buyer_price, m.seller_price));
    assert!(
        c.matches
            .iter()
            .all(|m| Some((m.buyer_price, m.seller_price)) == first),
        "McAfee prices uniformly"
    );
    Outcome {
        units: c.stats.volume_slots,
        prices: first.map(|(b, s)| (b.get(), s.get())),
    }
}

/// A market built around the edge: `k` efficient pairs whose marginal bid
/// is `bk`, then `b_{k+1} = bk + 1 − d` and `s_{k+1} = bk + d`, so
/// `b_{k+1} + s_{k+1} = 2·bk + 1`; plus random losers beyond them.
fn edge_market() -> impl Strategy<Value = (Vec<u128>, Vec<u128>)> {
    (1u128..40, 1usize..5)
        .prop_flat_map(|(bk, k)| {
            (
                Just(bk),
                prop::collection::vec(bk..bk + 40, k - 1),
                prop::collection::vec(1..=bk, k),
                1..=bk,
                prop::collection::vec(1..=bk.div_ceil(2), 0..3),
                prop::collection::vec(2 * bk + 1..3 * bk + 2, 0..3),
            )
        })
        .prop_map(|(bk, better_bids, winning_asks, d, low_bids, high_asks)| {
            let mut bids = better_bids;
            bids.push(bk);
            bids.push(bk + 1 - d);
            bids.extend(low_bids);
            let mut asks = winning_asks;
            asks.push(bk + d);
            asks.extend(high_asks);
            (bids, asks)
        })
}

#[test]
fn smallest_rounding_edge_trades_nothing() {
    // Asks 1 and 10, bids 5 and 7: k = 1, p0 = 7.5 > b_1 = 7.
    let (bids, asks) = ([5, 7], [1, 10]);
    assert_eq!(
        textbook(&bids, &asks),
        Outcome {
            units: 0,
            prices: None
        }
    );
    assert_eq!(ours(&bids, &asks), textbook(&bids, &asks));
    assert_eq!(ours(&[5, 7], &[1, 9]).prices, Some((7, 7)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn matches_the_textbook_on_small_price_ranges(
        bids in prop::collection::vec(1u128..=12, 0..10),
        asks in prop::collection::vec(1u128..=12, 0..10),
    ) {
        prop_assert_eq!(ours(&bids, &asks), textbook(&bids, &asks));
    }

    #[test]
    fn matches_the_textbook_on_wide_price_ranges(
        bids in prop::collection::vec(1u128..1_000_000, 0..24),
        asks in prop::collection::vec(1u128..1_000_000, 0..24),
    ) {
        prop_assert_eq!(ours(&bids, &asks), textbook(&bids, &asks));
    }

    #[test]
    fn matches_the_textbook_at_the_rounding_edge((bids, asks) in edge_market()) {
        prop_assert_eq!(ours(&bids, &asks), textbook(&bids, &asks));
    }
}

#[test]
fn prices_at_the_limit() {
    // The largest price `Limits::default()` accepts, at the rounding edge:
    // b_2 + s_2 = (m − 1) + m = 2·(m − 1) + 1 with b_1 = m − 1.
    let m = Limits::default().max_price.get();
    let (bids, asks) = ([m - 1, m - 1], [1, m]);
    assert_eq!(ours(&bids, &asks), textbook(&bids, &asks));
    assert_eq!(ours(&bids, &asks).units, 0);
    // No third unit: the reduction to one unit, buyers pay b_2 = m and
    // sellers receive s_2 = m.
    assert_eq!(
        ours(&[m, m], &[m - 1, m]),
        Outcome {
            units: 1,
            prices: Some((m, m))
        }
    );
}
