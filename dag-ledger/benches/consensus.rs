//! Criterion benches for consensus: `consensus::op/param=value`.
//!
//! - `consensus::receive_block`: cost per received block (decode excluded;
//!   structure checks, signature check, DAG insert, commit rule,
//!   linearization included) for committees of 10, 50 and 100, with a
//!   plain signature verifier (`sig=plain`) and with a memo another
//!   validator already filled with every block (`sig=memo`: what the
//!   simulator's validators after the first one pay);
//! - `consensus::committed_tx`: the same pipeline with 100 transactions of
//!   64 bytes per block, per committed transaction;
//! - `consensus::verify_signature`: one raw block-signature verification,
//!   the physical limit per block;
//! - `consensus::commit_rule`: the commit rule alone, re-run after every
//!   block inserted into the store (as the validator does), per block.
//!
//! The validator under test is an observer (it never proposes), fed every
//! block of a fully connected DAG in round order.
#![allow(missing_docs)]

use std::sync::Arc;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use idlegrid_dag_ledger::consensus::*;
use idlegrid_primitives::{Machine, Round, Seed, SignatureMemo, SignatureVerifier, Timestamp};

const ROUNDS: u64 = 8;

fn dag_messages(n: usize, txs: usize) -> (DagBuilder, Vec<ConsensusMessage>) {
    let mut dag = DagBuilder::new(n);
    dag.layers(1..=ROUNDS).transactions(txs).build();
    let msgs = (1..=ROUNDS)
        .flat_map(|r| {
            dag.store()
                .round_blocks(Round::new(r))
                .map(|b| ConsensusMessage::Block(Arc::clone(b.block())))
                .collect::<Vec<_>>()
        })
        .collect();
    (dag, msgs)
}

fn observer(dag: &DagBuilder, signatures: SignatureVerifier) -> Validator {
    Validator::new(
        dag.keys()[0].clone(),
        dag.committee().clone(),
        ConsensusConfig::default(),
        Seed::from_u64(1),
    )
    .expect("valid")
    .with_signature_verifier(signatures)
}

/// A verifier for the bench `memo`: plain, or a memo that another
/// observer already filled with every block of `msgs`.
fn verifier(
    dag: &DagBuilder,
    from: idlegrid_primitives::NodeId,
    msgs: &[ConsensusMessage],
    memo: bool,
) -> SignatureVerifier {
    if !memo {
        return SignatureVerifier::plain();
    }
    let v = SignatureVerifier::memoized(SignatureMemo::shared(&Seed::from_u64(2)));
    feed(&mut observer(dag, v.clone()), from, msgs.to_vec());
    v
}

fn feed(v: &mut Validator, from: idlegrid_primitives::NodeId, msgs: Vec<ConsensusMessage>) -> u64 {
    let mut committed = 0u64;
    for m in msgs {
        v.handle_message(Timestamp::ZERO, from, m);
        while v.poll_transmit().is_some() {}
        while let Some(e) = v.poll_event() {
            if let ConsensusEvent::Committed(s) = e {
                committed += s.transactions.len() as u64;
            }
        }
    }
    committed
}

fn bench(c: &mut Criterion) {
    for (group, txs) in [
        ("consensus::receive_block", 0usize),
        ("consensus::committed_tx", 100),
    ] {
        let mut g = c.benchmark_group(group);
        g.sample_size(10);
        for n in [10usize, 50, 100] {
            let (dag, msgs) = dag_messages(n, txs);
            let from = dag.keys()[1].node_id();
            // What one pass commits (rounds 1..=ROUNDS-2 leaders).
            let plain = SignatureVerifier::plain();
            let committed = feed(&mut observer(&dag, plain), from, msgs.clone());
            let elements = if txs == 0 {
                msgs.len() as u64
            } else {
                committed
            };
            assert!(elements > 0);
            g.throughput(Throughput::Elements(elements));
            for memo in [false, true] {
                let id = BenchmarkId::new(
                    format!("n={n}/sig={}", if memo { "memo" } else { "plain" }),
                    "",
                );
                g.bench_function(id, |b| {
                    b.iter_batched(
                        || {
                            let v = verifier(&dag, from, &msgs, memo);
                            (observer(&dag, v), msgs.clone())
                        },
                        |(mut v, m)| feed(&mut v, from, m),
                        BatchSize::LargeInput,
                    )
                });
            }
        }
        g.finish();
    }

    let dag = {
        let mut d = DagBuilder::new(10);
        d.layer(1).build();
        d
    };
    let b = dag.block(1, 1).expect("built");
    let pk = dag
        .committee()
        .node(b.author())
        .expect("member")
        .public_key();
    let digest = b.reference().digest;
    c.bench_function("consensus::verify_signature/block", |bn| {
        bn.iter(|| {
            pk.verify(BLOCK_SIGNATURE_DOMAIN, digest.as_bytes(), &b.signature)
                .unwrap()
        })
    });
}

fn commit_rule(c: &mut Criterion) {
    let mut g = c.benchmark_group("consensus::commit_rule");
    g.sample_size(10);
    for n in [10usize, 50, 100] {
        let (dag, _) = dag_messages(n, 0);
        let genesis: Vec<VerifiedBlock> = dag.store().round_blocks(Round::ZERO).cloned().collect();
        let blocks: Vec<VerifiedBlock> = (1..=ROUNDS)
            .flat_map(|r| {
                dag.store()
                    .round_blocks(Round::new(r))
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect();
        let committee = Arc::new(dag.committee().clone());
        g.throughput(Throughput::Elements(blocks.len() as u64));
        let setup = || {
            let mut store = DagStore::new(n);
            for b in &genesis {
                store.insert(b.clone());
            }
            let committer = Committer::new(committee.clone(), Arc::new(StakeWeightedSchedule), 1);
            (store, committer)
        };
        g.bench_function(BenchmarkId::new(format!("n={n}"), ""), |b| {
            b.iter_batched(
                setup,
                |(mut store, committer)| {
                    let mut after = None;
                    for b in &blocks {
                        store.insert(b.clone());
                        for s in committer.try_decide(&store, after) {
                            after = Some(s.slot().position());
                        }
                    }
                    assert_eq!(after, Some((Round::new(ROUNDS - 2), 0)));
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench, commit_rule);
criterion_main!(benches);
