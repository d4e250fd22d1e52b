//! Criterion benches of the engine: events/s with a trivial machine and
//! with the gossip demo, and raw `BinaryHeap` for comparison.
#![allow(missing_docs)] // `criterion_group!` generates an undocumented function.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use idlegrid_sim::bench::{consensus_run, gossip_run, heap_pairs_per_second, ticker_run};

fn engine(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim::engine");
    g.sample_size(10);
    let events = ticker_run(50, 100, 1).events;
    g.throughput(Throughput::Elements(events));
    g.bench_function("ticker/nodes=50", |b| b.iter(|| ticker_run(50, 100, 1)));
    let events = gossip_run(50, 1_000, 1).events;
    g.throughput(Throughput::Elements(events));
    g.bench_function("gossip/nodes=50", |b| b.iter(|| gossip_run(50, 1_000, 1)));
    let events = consensus_run(10, 1_000, 1).events;
    g.throughput(Throughput::Elements(events));
    g.bench_function("consensus/validators=10", |b| {
        b.iter(|| consensus_run(10, 1_000, 1))
    });
    g.throughput(Throughput::Elements(100_000));
    g.bench_function("binary_heap/size=4096", |b| {
        b.iter(|| heap_pairs_per_second(4_096, 100_000, 1))
    });
    g.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
