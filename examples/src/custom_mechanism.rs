//! `custom_mechanism`: a researcher plugs a new clearing rule into the
//! market and compares it with McAfee over a seeded sweep of random markets.
//!
//! The new rule, [`MedianPrice`], posts one uniform price — the median of
//! every reported unit price in the batch (bids and asks together) — and
//! trades as many units as both sides accept at that price. It is strongly
//! budget balanced and individually rational; it is not truthful (a trader
//! moves the median) and it loses trades when the median falls outside the
//! breakeven interval. The sweep measures how much.
//!
//! Implementing [`Mechanism`] takes three things: validate the input with
//! the market's own [`prepare`] (batch size, order shapes, unique ids,
//! expiry), compute the matches (checking [`compatible`] per pair), fill in
//! [`ClearingStats`]. [`check_clearing`] then audits the result
//! exactly as it audits the built-in mechanisms.

use std::error::Error;

use idlegrid_market::strategies::{unit_ask, unit_bid};
use idlegrid_market::{
    Ask, Bid, Clearing, ClearingContext, ClearingStats, FlatReputation, KDouble, Limits,
    MarketError, Match, McAfee, Mechanism, Reputation, Slots, check_clearing, compatible, prepare,
};
use idlegrid_primitives::{AccountId, Amount, RngCore, Seed, Timestamp};

/// Uniform price at the median of all reported unit prices.
#[derive(Clone, Copy, Debug, Default)]
pub struct MedianPrice;

impl Mechanism for MedianPrice {
    fn name(&self) -> &'static str {
        "median_price"
    }

    fn strongly_budget_balanced(&self) -> bool {
        true
    }

    fn clear(
        &self,
        asks: &[Ask],
        bids: &[Bid],
        ctx: &ClearingContext<'_>,
    ) -> Result<Clearing, MarketError> {
        // The market's own validation: batch size, order shapes, unique ids,
        // expired orders dropped — exactly what the built-in mechanisms reject.
        let live = prepare(asks, bids, ctx)?;
        let live_asks: Vec<&Ask> = live.asks.iter().map(|&i| &asks[i as usize]).collect();
        let live_bids: Vec<&Bid> = live.bids.iter().map(|&i| &bids[i as usize]).collect();
        let expired = live.expired;

        // The median unit price (lower median), one entry per slot.
        let mut prices: Vec<Amount> = Vec::new();
        for a in &live_asks {
            prices.extend(std::iter::repeat_n(a.price, a.slots.get() as usize));
        }
        for b in &live_bids {
            prices.extend(std::iter::repeat_n(b.max_price, b.slots.get() as usize));
        }
        let mut stats = ClearingStats {
            expired,
            ..ClearingStats::default()
        };
        if prices.is_empty() {
            return Ok(Clearing {
                matches: vec![],
                stats,
            });
        }
        prices.sort_unstable();
        let p = prices[(prices.len() - 1) / 2];

        // Willing sides at p, best first; ties by order id (canonical).
        let mut buyers: Vec<&Bid> = live_bids
            .iter()
            .copied()
            .filter(|b| b.max_price >= p)
            .collect();
        buyers.sort_by(|x, y| y.max_price.cmp(&x.max_price).then(x.id.cmp(&y.id)));
        let mut sellers: Vec<&Ask> = live_asks.iter().copied().filter(|a| a.price <= p).collect();
        sellers.sort_by(|x, y| x.price.cmp(&y.price).then(x.id.cmp(&y.id)));
        let mut left: Vec<u32> = sellers.iter().map(|a| a.slots.get()).collect();
        let mut matches = Vec::new();
        for b in &buyers {
            let mut want = b.slots.get();
            for (i, a) in sellers.iter().enumerate() {
                if want == 0 {
                    break;
                }
                let rep = ctx.reputation.reputation(&a.provider);
                if left[i] == 0 || !compatible(a, b, rep) {
                    continue;
                }
                let n = want.min(left[i]);
                left[i] -= n;
                want -= n;
                matches.push(Match {
                    bid: b.id,
                    ask: a.id,
                    client: b.client,
                    provider: a.provider,
                    slots: Slots::new(n),
                    buyer_price: p,
                    seller_price: p,
                    fees: Vec::new(),
                });
            }
        }
        for m in &matches {
            let n = u128::from(m.slots.get());
            let b = buyers.iter().find(|b| b.id == m.bid).expect("matched bid");
            let a = sellers.iter().find(|a| a.id == m.ask).expect("matched ask");
            stats.volume_slots += u64::from(m.slots.get());
            stats.welfare = stats.welfare.saturating_add(Amount::new(
                b.max_price
                    .get()
                    .saturating_sub(a.price.get())
                    .saturating_mul(n),
            ));
            stats.buyer_payments = stats
                .buyer_payments
                .saturating_add(Amount::new(p.get().saturating_mul(n)));
        }
        stats.seller_receipts = stats.buyer_payments;
        if !matches.is_empty() {
            stats.min_price = Some(p);
            stats.max_price = Some(p);
        }
        stats.unmatched_bids = live_bids
            .iter()
            .filter(|b| !matches.iter().any(|m| m.bid == b.id))
            .count() as u64;
        stats.unmatched_asks = live_asks
            .iter()
            .filter(|a| !matches.iter().any(|m| m.ask == a.id))
            .count() as u64;
        Ok(Clearing { matches, stats })
    }
}

/// Options of the sweep.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Root seed of the sweep.
    pub seed: u64,
    /// Random markets per size.
    pub markets: usize,
    /// Market sizes (orders per side) swept.
    pub sizes: &'static [usize],
    /// Print the table.
    pub verbose: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seed: 1,
            markets: 200,
            sizes: &[4, 16, 64],
            verbose: true,
        }
    }
}

/// One mechanism's averages at one market size.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Orders per side.
    pub size: usize,
    /// Mechanism name.
    pub mechanism: &'static str,
    /// Mean welfare as a fraction of the optimum (k-double's).
    pub efficiency: f64,
    /// Mean slots traded.
    pub volume: f64,
    /// Mean budget surplus.
    pub surplus: f64,
    /// Markets where `check_clearing` found a violation (must be 0).
    pub violations: usize,
}

/// The sweep's table.
#[derive(Clone, Debug)]
pub struct Report {
    /// One row per (size, mechanism).
    pub rows: Vec<Row>,
}

fn random_market(seed: &Seed, size: usize) -> (Vec<Ask>, Vec<Bid>) {
    let mut rng = seed.rng();
    let acc = |i: u64| {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&i.to_le_bytes());
        AccountId::from_bytes(b)
    };
    let price = |rng: &mut dyn RngCore| u128::from(1 + rng.next_u32() % 100);
    let slots = |rng: &mut dyn RngCore| 1 + rng.next_u32() % 3;
    let asks = (0..size as u64)
        .map(|i| unit_ask(i, price(&mut rng), slots(&mut rng), acc(i)))
        .collect();
    let bids = (0..size as u64)
        .map(|i| {
            let id = size as u64 + i;
            unit_bid(id, price(&mut rng), slots(&mut rng), acc(id))
        })
        .collect();
    (asks, bids)
}

/// Runs the sweep and prints the table.
pub fn run(opts: Options) -> Result<Report, Box<dyn Error>> {
    let mechanisms: [(&dyn Mechanism, bool); 3] = [
        (&McAfee, false),
        (&KDouble::half(), true),
        (&MedianPrice, true),
    ];
    let rep = FlatReputation(Reputation::MAX);
    let ctx = ClearingContext {
        now: Timestamp::ZERO,
        limits: Limits::default(),
        reputation: &rep,
    };
    let root = Seed::from_u64(opts.seed);
    let mut rows = Vec::new();
    for &size in opts.sizes {
        let mut acc = vec![(0.0f64, 0.0f64, 0.0f64, 0usize); mechanisms.len()];
        let mut counted = 0usize;
        for m in 0..opts.markets {
            let (asks, bids) = random_market(
                &root.derive_indexed(&format!("size-{size}"), m as u64),
                size,
            );
            let optimum = KDouble::half()
                .clear(&asks, &bids, &ctx)?
                .stats
                .welfare
                .get() as f64;
            if optimum == 0.0 {
                continue; // no gains from trade possible
            }
            counted += 1;
            for (i, (mech, strong)) in mechanisms.iter().enumerate() {
                let c = mech.clear(&asks, &bids, &ctx)?;
                if check_clearing(&asks, &bids, &c, &ctx, *strong).is_err() {
                    acc[i].3 += 1;
                }
                acc[i].0 += c.stats.welfare.get() as f64 / optimum;
                acc[i].1 += c.stats.volume_slots as f64;
                acc[i].2 += c.stats.surplus.get() as f64;
            }
        }
        let n = counted.max(1) as f64;
        for (i, (mech, _)) in mechanisms.iter().enumerate() {
            rows.push(Row {
                size,
                mechanism: mech.name(),
                efficiency: acc[i].0 / n,
                volume: acc[i].1 / n,
                surplus: acc[i].2 / n,
                violations: acc[i].3,
            });
        }
    }
    if opts.verbose {
        println!(
            "sweep: {} seeded random markets per size (prices 1..=100, 1..=3 slots per order, seed {})",
            opts.markets, opts.seed
        );
        println!(
            "{:>6} {:<14} {:>11} {:>9} {:>9} {:>10}",
            "orders", "mechanism", "efficiency", "volume", "surplus", "violations"
        );
        for r in &rows {
            println!(
                "{:>6} {:<14} {:>10.1}% {:>9.2} {:>9.2} {:>10}",
                r.size,
                r.mechanism,
                100.0 * r.efficiency,
                r.volume,
                r.surplus,
                r.violations
            );
        }
        println!(
            "(efficiency = welfare / k-double welfare, the optimum at reported values; surplus = buyers' payments - sellers' receipts per second)"
        );
    }
    Ok(Report { rows })
}
