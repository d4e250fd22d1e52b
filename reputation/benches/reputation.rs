//! Criterion benches, named `reputation::op/param=value`.
//!
//! - `eigentrust`: power iteration on random sparse graphs (uniform random
//!   edges, 10 pre-trusted peers, 1% of nodes staked), 1k–100k nodes with 10
//!   edges per node; set `IDLEGRID_BENCH_10M=1` to add 1M nodes / 10M edges.
//!   Iterations and memory are printed once per size.
//! - `graph_build`: CSR construction and row normalization.
//! - `record` / `record_signed`: one feedback update (O(1) beta + edge update,
//!   dedup, quota) without / with signature verification.
//! - `score`: one query with lazy decay over a gap of epochs.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use idlegrid_primitives::{Amount, Digest, Domain, Epoch, Keypair, NodeId, RngCore, Seed};
use idlegrid_reputation::*;

const D: Domain = Domain::new("idlegrid/bench/reputation");

fn node(i: u64) -> NodeId {
    NodeId::from_bytes(Digest::hash(D, &i.to_le_bytes()).to_bytes())
}

fn random_graph(n: usize, m: usize, params: &TrustParams) -> (TrustGraph, Vec<NodeId>) {
    let mut rng = Seed::from_u64(n as u64 ^ m as u64).rng();
    let nodes: Vec<(NodeId, Amount)> = (0..n as u64)
        .map(|i| (node(i), Amount::new(if i % 100 == 0 { 1_000 } else { 0 })))
        .collect();
    let pre: Vec<NodeId> = nodes.iter().take(10).map(|x| x.0).collect();
    let edges: Vec<(u32, u32, u64)> = (0..m)
        .map(|_| {
            let f = (rng.next_u64() % n as u64) as u32;
            let t = (rng.next_u64() % n as u64) as u32;
            (f, t, 1 + rng.next_u64() % 1_000_000)
        })
        .collect();
    (
        TrustGraph::from_indexed(nodes, edges, params).expect("bench graph"),
        pre,
    )
}

fn label(x: usize) -> String {
    match x {
        x if x >= 1_000_000 && x % 1_000_000 == 0 => format!("{}M", x / 1_000_000),
        x if x >= 1_000 && x % 1_000 == 0 => format!("{}k", x / 1_000),
        x => x.to_string(),
    }
}

fn eigentrust(c: &mut Criterion) {
    let params = TrustParams::default();
    let mut sizes = vec![(1_000, 10_000), (10_000, 100_000), (100_000, 1_000_000)];
    if std::env::var_os("IDLEGRID_BENCH_10M").is_some() {
        sizes.push((1_000_000, 10_000_000));
    }
    let mut g = c.benchmark_group("reputation::eigentrust");
    g.sample_size(10);
    for (n, m) in sizes {
        let (graph, pre) = random_graph(n, m, &params);
        let tv = EigenTrust::compute(&graph, &pre, &params).expect("anchored");
        eprintln!(
            "eigentrust nodes={n} edges={}: iterations={} converged={} residual={:e} graph≈{} MiB, vectors≈{} MiB",
            graph.edge_count(),
            tv.iterations,
            tv.converged,
            tv.residual.to_f64(),
            graph.heap_bytes() >> 20,
            (n * 16 + n * 8) >> 20,
        );
        g.bench_function(format!("nodes={},edges={}", label(n), label(m)), |b| {
            b.iter(|| EigenTrust::compute(black_box(&graph), &pre, &params).expect("anchored"))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("reputation::graph_build");
    g.sample_size(10);
    let (n, m) = (100_000usize, 1_000_000usize);
    let mut rng = Seed::from_u64(5).rng();
    let nodes: Vec<(NodeId, Amount)> = (0..n as u64).map(|i| (node(i), Amount::new(1))).collect();
    let edges: Vec<(u32, u32, u64)> = (0..m)
        .map(|_| {
            let f = (rng.next_u64() % n as u64) as u32;
            let t = (rng.next_u64() % n as u64) as u32;
            (f, t, 1 + rng.next_u64() % 1_000)
        })
        .collect();
    g.bench_function(format!("nodes={},edges={}", label(n), label(m)), |b| {
        b.iter_batched(
            || (nodes.clone(), edges.clone()),
            |(nodes, edges)| TrustGraph::from_indexed(nodes, edges, &params).expect("graph"),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn book_with(n: u64) -> ReputationBook {
    let params = BookParams {
        window_epochs: 1,
        max_feedback_per_reporter_per_epoch: u32::MAX,
        ..BookParams::default()
    };
    let mut book = ReputationBook::new(params, Epoch::ZERO).expect("params");
    for i in 0..n {
        book.register(node(i), Amount::ZERO).expect("room");
    }
    book
}

fn updates(c: &mut Criterion) {
    let n = 10_000u64;
    let mut book = book_with(n);
    let mut rng = Seed::from_u64(9).rng();
    let mut job = 0u64;
    c.bench_function(
        &format!("reputation::record/identities={}", label(n as usize)),
        |b| {
            b.iter(|| {
                job += 1;
                if job % 100_000 == 0 {
                    book.advance_epoch();
                }
                let r = rng.next_u64() % n;
                let s = (r + 1 + rng.next_u64() % (n - 1)) % n;
                let fb = Feedback {
                    reporter: node(r),
                    subject: node(s),
                    outcome: if job % 10 == 0 {
                        Outcome::Failed
                    } else {
                        Outcome::Delivered
                    },
                    job: JobId(Digest::hash(D, &job.to_le_bytes())),
                    value: Amount::new(100),
                    epoch: book.epoch(),
                };
                book.apply_feedback(black_box(&fb)).expect("valid")
            })
        },
    );

    let keys: Vec<Keypair> = (0..64)
        .map(|i| Keypair::from_seed(&Seed::from_u64(i)))
        .collect();
    let mut book = book_with(0);
    for k in &keys {
        book.register(k.node_id(), Amount::ZERO).expect("room");
    }
    c.bench_function("reputation::record_signed/identities=64", |b| {
        b.iter(|| {
            job += 1;
            if job % 100_000 == 0 {
                book.advance_epoch();
            }
            let r = (job % 64) as usize;
            let fb = Feedback {
                reporter: keys[r].node_id(),
                subject: keys[(r + 1) % 64].node_id(),
                outcome: Outcome::Delivered,
                job: JobId(Digest::hash(D, &job.to_le_bytes())),
                value: Amount::new(100),
                epoch: book.epoch(),
            }
            .sign(&keys[r]);
            book.record(black_box(&fb)).expect("valid")
        })
    });

    let mut book = book_with(n);
    for j in 0..n {
        let fb = Feedback {
            reporter: node(j),
            subject: node((j + 1) % n),
            outcome: Outcome::Delivered,
            job: JobId(Digest::hash(D, &j.to_le_bytes())),
            value: Amount::new(100),
            epoch: book.epoch(),
        };
        book.apply_feedback(&fb).expect("valid");
    }
    book.advance_to(Epoch::new(37)).expect("later");
    let mut i = 0u64;
    c.bench_function(
        &format!("reputation::score/identities={},gap=37", label(n as usize)),
        |b| {
            b.iter(|| {
                i = (i + 1) % n;
                black_box(book.score(&node(i), Role::Provider))
            })
        },
    );
}

criterion_group!(benches, eigentrust, updates);
criterion_main!(benches);
