//! Criterion benches for the transport: `transport::op/param=value`.
//!
//! `cargo bench -p idlegrid-transport` — frame encode/decode, and
//! messages/s over the in-memory and loopback TCP transports for 256 B and
//! 64 KiB messages (MB/s = messages/s × size).
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use idlegrid_primitives::{Keypair, Seed};
use idlegrid_transport::{
    AddressBook, Envelope, FrameLimit, MemoryConfig, MemoryNetwork, TcpConfig, TcpTransport,
    Transport, decode_frame, encode_frame,
};
use tokio::net::TcpListener;

const SIZES: [(usize, &str); 2] = [(256, "256B"), (64 << 10, "64KiB")];
/// Messages per measured batch.
const BATCH: usize = 256;

fn frames(c: &mut Criterion) {
    for (size, label) in SIZES {
        let env = Envelope::Data(vec![7u8; size]);
        let bytes = encode_frame(&env, FrameLimit::DEFAULT).unwrap();
        let mut g = c.benchmark_group("transport::frame");
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::new("encode", format!("size={label}")), |b| {
            b.iter(|| encode_frame(&env, FrameLimit::DEFAULT).unwrap())
        });
        g.bench_function(BenchmarkId::new("decode", format!("size={label}")), |b| {
            b.iter(|| decode_frame(&bytes, FrameLimit::DEFAULT).unwrap())
        });
        g.finish();
    }
}

async fn exchange<T: Transport>(a: &T, b: &T, msg: &[u8]) {
    for _ in 0..BATCH {
        a.send(b.local_id(), msg.to_vec()).await.unwrap();
    }
    for _ in 0..BATCH {
        b.recv().await.unwrap();
    }
}

fn memory(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let net = MemoryNetwork::new(MemoryConfig::default()).unwrap();
    let (ka, kb) = (
        Keypair::from_seed(&Seed::from_u64(1)),
        Keypair::from_seed(&Seed::from_u64(2)),
    );
    let (a, b) = (net.join(ka.node_id()), net.join(kb.node_id()));
    let mut g = c.benchmark_group("transport::memory");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (size, label) in SIZES {
        let msg = vec![7u8; size];
        g.bench_function(
            BenchmarkId::new("send_recv", format!("size={label}")),
            |bch| bch.iter(|| rt.block_on(exchange(&a, &b, &msg))),
        );
    }
    g.finish();
}

fn tcp(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (ka, kb) = (
        Keypair::from_seed(&Seed::from_u64(1)),
        Keypair::from_seed(&Seed::from_u64(2)),
    );
    let (a, b) = rt.block_on(async {
        let la = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let lb = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let book: AddressBook = [
            (ka.node_id(), la.local_addr().unwrap()),
            (kb.node_id(), lb.local_addr().unwrap()),
        ]
        .into_iter()
        .collect();
        let cfg = TcpConfig {
            send_queue_capacity: 2 * BATCH,
            ..TcpConfig::default()
        };
        let a = TcpTransport::from_listener(ka.clone(), la, book.clone(), cfg.clone()).unwrap();
        let b = TcpTransport::from_listener(kb.clone(), lb, book, cfg).unwrap();
        while !a.is_connected(&kb.node_id()) || !b.is_connected(&ka.node_id()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (a, b)
    });
    let mut g = c.benchmark_group("transport::tcp_loopback");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (size, label) in SIZES {
        let msg = vec![7u8; size];
        g.bench_function(
            BenchmarkId::new("send_recv", format!("size={label}")),
            |bch| bch.iter(|| rt.block_on(exchange(&a, &b, &msg))),
        );
    }
    g.finish();
    rt.block_on(async {
        a.shutdown().await;
        b.shutdown().await;
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = frames, memory, tcp
}
criterion_main!(benches);
