//! Criterion benches for the transport: `transport::op/param=value`.
//!
//! `cargo bench -p idlegrid-transport` — frame encode/decode, session
//! seal/open, and messages/s over the in-memory transport and loopback TCP
//! for 256 B and 64 KiB messages (bytes/s = messages/s × size):
//!
//! - `transport::tcp/encrypted` — the real `TcpTransport` (sealed session);
//! - `transport::tcp/framing` — the transport's own data path before
//!   encryption: the same send queue, session writer and reader, inbound
//!   budget and queue as `encrypted` (the crate's doc-hidden
//!   `tcp::bench_support::LoopbackLink`), with [`PassThrough`], a cipher
//!   that seals nothing, defined here and only here;
//! - `transport::tcp/link_sealed` — that link with the real session cipher,
//!   to show it is the transport's path (it should match `encrypted`);
//! - `transport::tcp/plaintext` — the floor's baseline, a raw
//!   length-prefixed tokio stream: bounded queue → writer task with a
//!   64 KiB buffer and batched flushes → loopback socket → reader task →
//!   bounded inbound queue, plain `Data` frames, measured in the same run;
//! - `transport::tcp/sealed_pipe` — the raw stream with ChaCha20-Poly1305
//!   sealing, isolating the cost of the cipher.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use idlegrid_primitives::{Keypair, Seed};
use idlegrid_transport::frame::{FrameError, WIRE_VERSION};
use idlegrid_transport::frame::{HEADER_LEN, data_header, decode_body, parse_header};
use idlegrid_transport::session::{Opened, Opener, SealKind, Sealer, SessionError, SessionKeys};
use idlegrid_transport::tcp::bench_support::{LoopbackLink, OpenFrames, SealFrames};
use idlegrid_transport::{
    AddressBook, Envelope, FrameLimit, MemoryConfig, MemoryNetwork, TcpConfig, TcpTransport,
    Transport, decode_frame, encode_frame,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

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

fn session(c: &mut Criterion) {
    let mut g = c.benchmark_group("transport::session");
    for (size, label) in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        let (mut sealer, mut opener) = sealed_pair();
        g.bench_function(
            BenchmarkId::new("seal_open", format!("size={label}")),
            |b| {
                b.iter(|| {
                    let f = sealer.seal_frame(SealKind::Data, &vec![7u8; size]).unwrap();
                    opener.decode(&f).unwrap()
                })
            },
        );
    }
    g.finish();
}

fn sealed_pair() -> (Sealer, Opener) {
    let (s, _) = SessionKeys::from_raw([1; 32], [2; 32]).split(FrameLimit::DEFAULT);
    let (_, o) = SessionKeys::from_raw([2; 32], [1; 32]).split(FrameLimit::DEFAULT);
    (s, o)
}

/// A one-way loopback pipeline shaped like the transport's data path.
struct Pipe {
    tx: mpsc::Sender<Vec<u8>>,
    rx: tokio::sync::Mutex<mpsc::Receiver<Vec<u8>>>,
}

async fn pipe(sealed: bool) -> Pipe {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let (b, _) = l.accept().await.unwrap();
    a.set_nodelay(true).unwrap();
    b.set_nodelay(true).unwrap();
    let (mut sealer, mut opener) = if sealed {
        let (s, o) = sealed_pair();
        (Some(s), Some(o))
    } else {
        (None, None)
    };
    let (tx, mut queue) = mpsc::channel::<Vec<u8>>(2 * BATCH);
    let (inbound, rx) = mpsc::channel(2 * BATCH);
    tokio::spawn(async move {
        let mut w = BufWriter::with_capacity(64 << 10, a);
        while let Some(first) = queue.recv().await {
            let mut next = Some(first);
            for _ in 0..64 {
                let Some(mut m) = next.take().or_else(|| queue.try_recv().ok()) else {
                    break;
                };
                let h = match &mut sealer {
                    Some(s) => s.seal(SealKind::Data, &mut m).unwrap(),
                    None => data_header(m.len(), FrameLimit::DEFAULT).unwrap(),
                };
                w.write_all(&h).await.unwrap();
                w.write_all(&m).await.unwrap();
            }
            w.flush().await.unwrap();
        }
    });
    tokio::spawn(async move {
        let mut r = BufReader::new(b);
        while let Some(m) = read_one(&mut r, opener.as_mut()).await {
            if inbound.send(m).await.is_err() {
                break;
            }
        }
    });
    Pipe {
        tx,
        rx: tokio::sync::Mutex::new(rx),
    }
}

async fn read_one<R: AsyncRead + Unpin>(r: &mut R, opener: Option<&mut Opener>) -> Option<Vec<u8>> {
    let mut h = [0u8; HEADER_LEN];
    r.read_exact(&mut h).await.ok()?;
    match opener {
        Some(o) => {
            let h = o.parse_header(&h).unwrap();
            let mut body = Vec::with_capacity(h.body_len().min(64 << 10));
            r.take(h.body_len() as u64)
                .read_to_end(&mut body)
                .await
                .ok()?;
            match o.open(h, body).unwrap() {
                Opened::Data(d) => Some(d),
                _ => None,
            }
        }
        None => {
            let h = parse_header(&h, FrameLimit::DEFAULT).unwrap();
            let mut body = Vec::with_capacity(h.body_len().min(64 << 10));
            r.take(h.body_len() as u64)
                .read_to_end(&mut body)
                .await
                .ok()?;
            match decode_body(h, body).unwrap() {
                Envelope::Data(d) => Some(d),
                _ => None,
            }
        }
    }
}

async fn pipe_exchange(p: &Pipe, msg: &[u8]) {
    for _ in 0..BATCH {
        p.tx.send(msg.to_vec()).await.unwrap();
    }
    let mut rx = p.rx.lock().await;
    for _ in 0..BATCH {
        rx.recv().await.unwrap();
    }
}

/// A frame "cipher" that seals nothing: the sealed frame layout (version,
/// kind 4/5/6, length) around the plaintext, no tag. Bench-only: it exists
/// to take the AEAD out of the measured path, and the transport crate has
/// no such thing.
struct PassThrough;

impl SealFrames for PassThrough {
    fn seal(
        &mut self,
        kind: SealKind,
        body: &mut Vec<u8>,
    ) -> Result<[u8; HEADER_LEN], SessionError> {
        FrameLimit::DEFAULT.check(body.len())?;
        let k = match kind {
            SealKind::Data => 4,
            SealKind::Ping => 5,
            SealKind::Rekey => 6,
        };
        let l = u32::try_from(body.len()).unwrap().to_le_bytes();
        Ok([WIRE_VERSION, k, l[0], l[1], l[2], l[3]])
    }
    fn rekey(&mut self) {}
    fn bytes_since_rekey(&self) -> u64 {
        0
    }
}

impl OpenFrames for PassThrough {
    type Header = u8;
    fn parse_header(&self, h: &[u8; HEADER_LEN]) -> Result<(u8, usize), SessionError> {
        if h[0] != WIRE_VERSION || !(4..=6).contains(&h[1]) {
            return Err(SessionError::UnexpectedKind(h[1]));
        }
        let len = u32::from_le_bytes([h[2], h[3], h[4], h[5]]) as usize;
        FrameLimit::DEFAULT.check(len)?;
        Ok((h[1], len))
    }
    fn open(&mut self, kind: u8, body: Vec<u8>) -> Result<Opened, SessionError> {
        Ok(match kind {
            4 => Opened::Data(body),
            5 => Opened::Ping,
            _ => Opened::Rekey,
        })
    }
    fn decode(&mut self, bytes: &[u8]) -> Result<(Opened, usize), SessionError> {
        let cut = |needed| FrameError::Truncated {
            needed,
            got: bytes.len(),
        };
        let h = bytes.first_chunk::<HEADER_LEN>().ok_or(cut(HEADER_LEN))?;
        let (kind, len) = self.parse_header(h)?;
        let body = bytes
            .get(HEADER_LEN..HEADER_LEN + len)
            .ok_or(cut(HEADER_LEN + len))?;
        Ok((self.open(kind, body.to_vec())?, HEADER_LEN + len))
    }
}

async fn link_exchange(l: &LoopbackLink, msg: &[u8]) {
    for _ in 0..BATCH {
        l.send(msg.to_vec()).unwrap();
    }
    for _ in 0..BATCH {
        l.recv().await.unwrap();
    }
}

fn tcp_config() -> TcpConfig {
    TcpConfig {
        send_queue_capacity: 2 * BATCH,
        send_queue_bytes: 2 * BATCH * (64 << 10),
        ..TcpConfig::default()
    }
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
        let cfg = tcp_config();
        let a = TcpTransport::from_listener(ka.clone(), la, book.clone(), cfg.clone()).unwrap();
        let b = TcpTransport::from_listener(kb.clone(), lb, book, cfg).unwrap();
        while !a.is_connected(&kb.node_id()) || !b.is_connected(&ka.node_id()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (a, b)
    });
    let plain = rt.block_on(pipe(false));
    let sealed = rt.block_on(pipe(true));
    let framing = rt
        .block_on(LoopbackLink::new(
            tcp_config(),
            (PassThrough, PassThrough),
            (PassThrough, PassThrough),
        ))
        .unwrap();
    let link_sealed = rt
        .block_on(LoopbackLink::new(
            tcp_config(),
            sealed_pair(),
            sealed_pair(),
        ))
        .unwrap();
    let mut g = c.benchmark_group("transport::tcp");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (size, label) in SIZES {
        let msg = vec![7u8; size];
        let id = |what: &str| BenchmarkId::new(what, format!("size={label}"));
        g.bench_function(id("plaintext"), |bch| {
            bch.iter(|| rt.block_on(pipe_exchange(&plain, &msg)))
        });
        g.bench_function(id("sealed_pipe"), |bch| {
            bch.iter(|| rt.block_on(pipe_exchange(&sealed, &msg)))
        });
        g.bench_function(id("framing"), |bch| {
            bch.iter(|| rt.block_on(link_exchange(&framing, &msg)))
        });
        g.bench_function(id("encrypted"), |bch| {
            bch.iter(|| rt.block_on(exchange(&a, &b, &msg)))
        });
        g.bench_function(id("link_sealed"), |bch| {
            bch.iter(|| rt.block_on(link_exchange(&link_sealed, &msg)))
        });
    }
    g.finish();
    framing.shutdown();
    link_sealed.shutdown();
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
    targets = frames, session, memory, tcp
}
criterion_main!(benches);
