//! Criterion benches for the market: `market::op/param=value`.
//!
//! - batch clearing of unit orders (McAfee, k-double) at 10k / 100k / 1M
//!   orders (half asks, half bids) with buffers reused between calls
//!   (`Mechanism::clear_into`), McAfee also through `clear` (fresh buffers,
//!   `clear_mcafee_fresh`), next to a plain sort of the same prices (the
//!   physical floor);
//! - heterogeneous assignment (greedy at 1k×1k and 10k×10k, exact at 50×50);
//! - order-book inserts with and without matches;
//! - a full sealed batch (commit, reveal, close) of 1k orders.

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use idlegrid_market::strategies::{unit_ask, unit_bid};
use idlegrid_market::*;
use idlegrid_primitives::{AccountId, Amount, Epoch, RngCore, Salt, Seed, Timestamp};

fn account(i: u64) -> AccountId {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&i.to_le_bytes());
    AccountId::from_bytes(b)
}

/// `n` unit orders, half asks, half bids, prices overlapping.
fn unit_market(n: usize, seed: u64) -> (Vec<Ask>, Vec<Bid>) {
    let mut rng = Seed::from_u64(seed).rng();
    let mut price = || u128::from(1 + rng.next_u64() % 1_000_000);
    let half = (n / 2) as u64;
    let asks = (0..half)
        .map(|i| unit_ask(i, price(), 1, account(i)))
        .collect();
    let bids = (half..2 * half)
        .map(|i| unit_bid(i, price(), 1, account(i)))
        .collect();
    (asks, bids)
}

fn hetero_market(na: usize, nb: usize, seed: u64) -> (Vec<Ask>, Vec<Bid>) {
    let mut rng = Seed::from_u64(seed).rng();
    let mut r = move |m: u64| rng.next_u64() % m;
    let asks = (0..na as u64)
        .map(|i| {
            let mut a = unit_ask(i, u128::from(1 + r(1000)), 1 + r(4) as u32, account(i));
            a.resources = Resources::new(
                1000 * (1 + r(8) as u32),
                1024 * (1 + r(16) as u32),
                r(2) as u16,
                0,
            );
            a.executors = ExecutorSet::from_bits(1 + r(7) as u8);
            a.region = Region::new(r(4) as u8);
            a
        })
        .collect();
    let bids = (0..nb as u64)
        .map(|j| {
            let i = na as u64 + j;
            let mut b = unit_bid(i, u128::from(1 + r(1000)), 1 + r(4) as u32, account(i));
            b.demand = Resources::new(
                1000 * (1 + r(4) as u32),
                1024 * (1 + r(8) as u32),
                u16::from(r(4) == 0),
                0,
            );
            b.executor = ExecutorKind::ALL[r(3) as usize];
            b.regions = RegionSet::from_bits(1 + r(15));
            b.min_reputation = Reputation::from_bps(r(5000) as u16);
            b
        })
        .collect();
    (asks, bids)
}

fn reputation(a: &AccountId) -> Reputation {
    Reputation::from_bps(u16::from(a.as_bytes()[0]) * 39)
}

fn ctx(reputation: &dyn ReputationLookup) -> ClearingContext<'_> {
    ClearingContext {
        now: Timestamp::ZERO,
        limits: Limits::default(),
        reputation,
    }
}

fn clearing(c: &mut Criterion) {
    let rep = FlatReputation(Reputation::MAX);
    for n in [10_000usize, 100_000, 1_000_000] {
        let (asks, bids) = unit_market(n, 1);
        let prices: Vec<(u128, u64)> = asks
            .iter()
            .map(|a| (a.price.get(), a.id.get()))
            .chain(bids.iter().map(|b| (b.max_price.get(), b.id.get())))
            .collect();
        let param = format!("orders={n}");
        for (name, m) in [
            ("market::clear_mcafee", &McAfee as &dyn Mechanism),
            ("market::clear_k_double", &KDouble::half()),
        ] {
            let mut g = c.benchmark_group(name);
            g.throughput(Throughput::Elements(n as u64));
            g.sample_size(10);
            // Buffers reused from call to call, as a node clearing batch
            // after batch would.
            let (mut scratch, mut out) = (ClearingScratch::new(), Clearing::default());
            g.bench_function(BenchmarkId::from_parameter(&param), |b| {
                b.iter(|| {
                    m.clear_into(&asks, &bids, &ctx(&rep), &mut scratch, &mut out)
                        .unwrap();
                    out.matches.len()
                })
            });
            g.finish();
        }
        // The same McAfee clearing through `clear`: fresh buffers each call.
        let mut g = c.benchmark_group("market::clear_mcafee_fresh");
        g.throughput(Throughput::Elements(n as u64));
        g.sample_size(10);
        g.bench_function(BenchmarkId::from_parameter(&param), |b| {
            b.iter(|| McAfee.clear(&asks, &bids, &ctx(&rep)).unwrap())
        });
        g.finish();
        let mut g = c.benchmark_group("market::sort_baseline");
        g.throughput(Throughput::Elements(n as u64));
        g.sample_size(10);
        g.bench_function(BenchmarkId::from_parameter(&param), |b| {
            b.iter_batched_ref(
                || prices.clone(),
                |v| v.sort_unstable(),
                BatchSize::LargeInput,
            )
        });
        g.finish();
    }
}

fn assignment(c: &mut Criterion) {
    let mut g = c.benchmark_group("market::assign_greedy");
    g.sample_size(10);
    for n in [1_000usize, 10_000] {
        let (asks, bids) = hetero_market(n, n, 2);
        g.throughput(Throughput::Elements(2 * n as u64));
        g.bench_function(
            BenchmarkId::from_parameter(format!("orders={n}x{n}")),
            |b| {
                b.iter(|| {
                    GreedyAssignment::midpoint()
                        .clear(&asks, &bids, &ctx(&reputation))
                        .unwrap()
                })
            },
        );
    }
    g.finish();
    let mut g = c.benchmark_group("market::assign_optimal");
    g.sample_size(10);
    let (asks, bids) = hetero_market(50, 50, 3);
    let exact = OptimalAssignment::new(5_000, 1 << 20).unwrap();
    g.bench_function(BenchmarkId::from_parameter("orders=50x50"), |b| {
        b.iter(|| exact.clear(&asks, &bids, &ctx(&reputation)).unwrap())
    });
    g.finish();
}

fn book(c: &mut Criterion) {
    let rep = FlatReputation(Reputation::MAX);
    let n = 10_000u64;
    // Without matches: asks above 1000, bids below; every order rests.
    let resting: Vec<Order> = (0..n)
        .map(|i| {
            if i % 2 == 0 {
                Order::Ask(unit_ask(i, u128::from(1001 + i % 500), 2, account(i)))
            } else {
                Order::Bid(unit_bid(i, u128::from(1 + i % 500), 2, account(i)))
            }
        })
        .collect();
    // With matches: each bid crosses the ask just before it.
    let crossing: Vec<Order> = (0..n)
        .map(|i| {
            let p = u128::from(100 + i % 50);
            if i % 2 == 0 {
                Order::Ask(unit_ask(i, p, 1, account(i)))
            } else {
                Order::Bid(unit_bid(i, p + 10, 1, account(i)))
            }
        })
        .collect();
    let mut g = c.benchmark_group("market::book_insert");
    g.throughput(Throughput::Elements(n));
    for (param, orders) in [("matching=false", &resting), ("matching=true", &crossing)] {
        g.bench_function(
            BenchmarkId::from_parameter(format!("{param}/orders={n}")),
            |b| {
                b.iter_batched(
                    || orders.clone(),
                    |orders| {
                        let mut book = OrderBook::new(Limits::default());
                        for o in orders {
                            book.insert(Timestamp::ZERO, o, &rep).unwrap();
                        }
                        book
                    },
                    BatchSize::LargeInput,
                )
            },
        );
    }
    g.finish();
    let mut g = c.benchmark_group("market::book_cancel");
    g.throughput(Throughput::Elements(n));
    let mut full = OrderBook::new(Limits::default());
    for o in resting.iter().cloned() {
        full.insert(Timestamp::ZERO, o, &rep).unwrap();
    }
    g.bench_function(BenchmarkId::from_parameter(format!("orders={n}")), |b| {
        b.iter_batched_ref(
            || full.clone(),
            |book| {
                for i in 0..n {
                    book.cancel(OrderId::new(i)).unwrap();
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn sealed(c: &mut Criterion) {
    let n = 1_000usize;
    let (asks, bids) = unit_market(n, 4);
    let orders: Vec<Order> = asks
        .into_iter()
        .map(Order::Ask)
        .chain(bids.into_iter().map(Order::Bid))
        .collect();
    let e = Epoch::new(1);
    let sealed: Vec<_> = orders
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let s = Salt::from_bytes(Seed::from_u64(i as u64).to_bytes());
            (o.clone(), s, seal(e, o, &s))
        })
        .collect();
    let rep = FlatReputation(Reputation::MAX);
    let mut g = c.benchmark_group("market::sealed_batch");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(20);
    g.bench_function(BenchmarkId::from_parameter(format!("orders={n}")), |b| {
        b.iter(|| {
            let mut batch = SealedBatch::open(e, Timestamp::ZERO, BatchConfig::default()).unwrap();
            for (o, _, c) in &sealed {
                batch
                    .commit(Timestamp::ZERO, o.owner(), *c, Amount::new(1))
                    .unwrap();
            }
            let t = batch.commit_deadline();
            for (o, s, c) in &sealed {
                batch.reveal(t, o.owner(), *c, o.clone(), *s).unwrap();
            }
            batch.close(batch.reveal_deadline(), &McAfee, &rep).unwrap()
        })
    });
    g.finish();
}

mod group {
    //! `criterion_group!` generates an undocumented function.
    #![allow(missing_docs)]
    use super::*;
    criterion_group!(benches, clearing, assignment, book, sealed);
}
criterion_main!(group::benches);
