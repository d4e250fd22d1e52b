//! Criterion benches for the primitives: `primitives::op/param=value`.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use idlegrid_primitives::*;
use serde::{Deserialize, Serialize};

const D: Domain = Domain::new("idlegrid/bench/msg");

/// A typical protocol message: a block-like header with references.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct TypicalMessage {
    author: NodeId,
    round: Round,
    parents: Vec<Digest>,
    payload: Vec<Vec<u8>>,
    amount: Amount,
    signature: Signature,
}

fn typical(kp: &Keypair) -> TypicalMessage {
    TypicalMessage {
        author: kp.node_id(),
        round: Round::new(1234),
        parents: (0..7u8).map(|i| Digest::hash(D, &[i])).collect(),
        payload: (0..8).map(|i| vec![i as u8; 64]).collect(),
        amount: Amount::new(1_000_000),
        signature: kp.sign(D, b"header"),
    }
}

fn bench(c: &mut Criterion) {
    let seed = Seed::from_u64(1);
    let kp = Keypair::from_seed(&seed);
    let msg = [7u8; 128];
    let sig = kp.sign(D, &msg);

    c.bench_function("primitives::sign/msg=128B", |b| b.iter(|| kp.sign(D, &msg)));
    c.bench_function("primitives::verify/msg=128B", |b| {
        b.iter(|| kp.public().verify(D, &msg, &sig).unwrap())
    });

    let mut g = c.benchmark_group("primitives::batch_verify");
    for n in [1usize, 64, 1024] {
        let keys: Vec<Keypair> = (0..n)
            .map(|i| Keypair::from_seed(&seed.derive_indexed("k", i as u64)))
            .collect();
        let pks: Vec<PublicKey> = keys.iter().map(Keypair::public).collect();
        let sigs: Vec<Signature> = keys.iter().map(|k| k.sign(D, &msg)).collect();
        let items: Vec<BatchItem<'_>> = (0..n)
            .map(|i| BatchItem {
                domain: D,
                msg: &msg,
                public: &pks[i],
                signature: &sigs[i],
            })
            .collect();
        let mut rng = seed.derive("batch").rng();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("n", n), &items, |b, items| {
            b.iter(|| verify_batch(items, &mut rng).unwrap())
        });
    }
    g.finish();

    // A certificate: 34 signatures (f + 1 of 100 validators) on one
    // message, checked one by one (the floor) and as `verify_all` does on
    // a miss (one deterministic batch).
    let signers: Vec<(PublicKey, Signature)> = (0..34u64)
        .map(|i| {
            let k = Keypair::from_seed(&seed.derive_indexed("cert", i));
            (k.public(), k.sign(D, &msg))
        })
        .collect();
    let mut g = c.benchmark_group("primitives::certificate");
    g.throughput(Throughput::Elements(signers.len() as u64));
    g.bench_function("one_by_one/n=34", |b| {
        b.iter(|| {
            for (pk, sig) in &signers {
                pk.verify(D, &msg, sig).unwrap();
            }
        })
    });
    let no_memo = SignatureVerifier::default();
    g.bench_function("verify_all/n=34", |b| {
        b.iter(|| no_memo.verify_all(D, &msg, &signers).unwrap())
    });
    g.finish();

    let kib = vec![0xabu8; 1024];
    c.bench_function("primitives::digest/len=1KiB", |b| {
        b.iter(|| Digest::hash(D, &kib))
    });

    let m = typical(&kp);
    let bytes = encode(&m);
    c.bench_function(&format!("primitives::encode/msg={}B", bytes.len()), |b| {
        b.iter(|| encode(&m))
    });
    c.bench_function(&format!("primitives::decode/msg={}B", bytes.len()), |b| {
        b.iter(|| decode::<TypicalMessage>(&bytes, 4096).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
