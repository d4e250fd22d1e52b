//! A handshake flood on loopback, bounded in count and time: attackers on
//! 127.0.0.2–127.0.0.17 (Linux routes all of 127/8 to `lo`) open
//! connections to every node as fast as they can and hold them — idle, or
//! after a `Hello` that claims a known identity. Four honest nodes on
//! 127.0.0.1, two of them joining during the flood, still connect within a
//! few seconds and exchange messages; their connect times and throughput
//! are printed (`cargo test -p idlegrid-transport --test tcp_flood -- --nocapture`).

mod common;

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{guard, keypairs, listeners, test_config};
use idlegrid_primitives::NodeId;
use idlegrid_transport::frame::{EphemeralKey, Hello, Nonce};
use idlegrid_transport::{
    Envelope, FrameLimit, TcpConfig, TcpTransport, Transport, TransportError, encode_frame,
};
use rand::RngCore;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;
use tokio::time::Instant;

/// Attacking source addresses (127.0.0.2 ..= 127.0.0.17).
const ATTACK_ADDRS: u8 = 16;
/// Concurrent attacker loops per target node.
const LOOPS_PER_TARGET: usize = 16;
/// Connections each loop holds open (the oldest is dropped for a new one).
const HOLD: usize = 16;
/// Upper bounds on the flood: attempts and duration.
const MAX_ATTEMPTS: u64 = 40_000;
const MAX_FLOOD: Duration = Duration::from_secs(15);
/// Honest nodes must be fully connected within this time of starting.
const CONNECT_BOUND: Duration = Duration::from_secs(5);

struct Flood {
    stop: AtomicBool,
    attempts: AtomicU64,
    connected: AtomicU64,
}

/// One attacker loop: connect from `src` as fast as possible, optionally
/// send a `Hello` that claims `claim`, and hold the last [`HOLD`]
/// connections open.
async fn attack(flood: Arc<Flood>, target: SocketAddr, src: Ipv4Addr, claim: Option<NodeId>) {
    let mut held = VecDeque::new();
    while !flood.stop.load(Ordering::Relaxed)
        && flood.attempts.fetch_add(1, Ordering::Relaxed) < MAX_ATTEMPTS
    {
        let Ok(sock) = TcpSocket::new_v4() else {
            continue;
        };
        if sock.bind(SocketAddr::from((src, 0))).is_err() {
            continue;
        }
        let Ok(Ok(mut s)) =
            tokio::time::timeout(Duration::from_secs(1), sock.connect(target)).await
        else {
            continue;
        };
        flood.connected.fetch_add(1, Ordering::Relaxed);
        if let Some(node) = claim {
            let mut nonce = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut nonce);
            let hello = Hello {
                node,
                nonce: Nonce::from_bytes(nonce),
                ephemeral: EphemeralKey::from_bytes([9; 32]),
            };
            let frame = encode_frame(&Envelope::Hello(hello), FrameLimit::HANDSHAKE).unwrap();
            let _ = s.write_all(&frame).await; // the node may have closed it
        }
        held.push_back(s);
        if held.len() > HOLD {
            held.pop_front();
        }
    }
}

/// Runs the attacker loops on their own thread and runtime (another host,
/// as far as the nodes' runtime is concerned) until `stop` or the bounds.
fn start_flood(
    flood: Arc<Flood>,
    loops: Vec<(SocketAddr, Ipv4Addr, Option<NodeId>)>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let all = loops
                .into_iter()
                .map(|(t, src, c)| attack(flood.clone(), t, src, c));
            let _ = tokio::time::timeout(MAX_FLOOD, futures::future::join_all(all)).await;
        });
    })
}

/// Starts a node; returns it with the instant it reached all its peers.
async fn start(
    i: usize,
    keys: &[idlegrid_primitives::Keypair],
    l: tokio::net::TcpListener,
    book: &idlegrid_transport::AddressBook,
    config: &TcpConfig,
) -> (TcpTransport, Instant) {
    let t0 = Instant::now();
    let t = TcpTransport::from_listener(keys[i].clone(), l, book.clone(), config.clone()).unwrap();
    let peers = t.peers();
    let mut first = None;
    while t.connected_peers() != peers && t0.elapsed() < CONNECT_BOUND * 2 {
        if first.is_none() && !t.connected_peers().is_empty() {
            first = Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let first = first.unwrap_or(t0.elapsed());
    println!(
        "flood: node {i} reached its first peer {} ms after it started",
        first.as_millis()
    );
    (t, Instant::now())
}

/// Each node sends `n` messages of `size` bytes to the next node in the
/// ring (retrying when its queue is full) and receives as many from the
/// previous; returns messages per second over the whole exchange.
async fn ring_throughput(ts: &[TcpTransport], n: usize, size: usize) -> f64 {
    let t0 = Instant::now();
    let one = |i: usize| {
        let (me, next) = (&ts[i], ts[(i + 1) % ts.len()].local_id());
        async move {
            let send = async {
                for k in 0..n {
                    loop {
                        match me.send(next, vec![k as u8; size]).await {
                            Ok(()) => break,
                            Err(TransportError::QueueFull { .. }) => {
                                tokio::time::sleep(Duration::from_millis(1)).await
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            };
            let recv = async {
                for _ in 0..n {
                    me.recv().await.unwrap();
                }
            };
            tokio::join!(send, recv);
        }
    };
    futures::future::join_all((0..ts.len()).map(one)).await;
    (n * ts.len()) as f64 / t0.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_peers_connect_and_exchange_during_a_handshake_flood() {
    let keys = keypairs(4);
    let (ls, book) = listeners(&keys).await;
    let addrs: Vec<SocketAddr> = keys
        .iter()
        .map(|k| book.get(&k.node_id()).unwrap())
        .collect();
    let config = TcpConfig {
        hello_timeout: Duration::from_millis(500),
        handshake_timeout: Duration::from_secs(2),
        ..test_config()
    };
    let flood = Arc::new(Flood {
        stop: AtomicBool::new(false),
        attempts: AtomicU64::new(0),
        connected: AtomicU64::new(0),
    });
    let mut loops = Vec::new();
    for (t, target) in addrs.iter().enumerate() {
        for j in 0..LOOPS_PER_TARGET {
            let src = Ipv4Addr::new(127, 0, 0, 2 + (j as u8 % ATTACK_ADDRS));
            // Half stay silent; half claim a known peer and stall after Hello.
            let claim = (j % 2 == 1).then(|| keys[(t + 1) % keys.len()].node_id());
            loops.push((*target, src, claim));
        }
    }
    let attacker = start_flood(flood.clone(), loops);
    tokio::time::sleep(Duration::from_millis(500)).await; // the flood is on
    let mut ls = ls.into_iter();
    let (l0, l1) = (ls.next().unwrap(), ls.next().unwrap());
    let (l2, l3) = (ls.next().unwrap(), ls.next().unwrap());
    // Nodes 0 and 1 start now; 2 and 3 join a second later, mid-flood.
    let t_early = Instant::now();
    let early = async {
        tokio::join!(
            start(0, &keys, l0, &book, &config),
            start(1, &keys, l1, &book, &config)
        )
    };
    let late = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t_late = Instant::now();
        let r = tokio::join!(
            start(2, &keys, l2, &book, &config),
            start(3, &keys, l3, &book, &config)
        );
        (t_late, r)
    };
    let (((n0, c0), (n1, c1)), (t_late, ((n2, c2), (n3, c3)))) =
        guard("start", async { tokio::join!(early, late) }).await;
    let ts = [n0, n1, n2, n3];
    // Connect time: from the later of the node's own start and the last
    // peer's start, to connected with every peer.
    let starts = [t_early, t_early, t_late, t_late];
    for (i, c) in [c0, c1, c2, c3].iter().enumerate() {
        let d = c.duration_since(starts[i].max(t_late));
        println!(
            "flood: node {i} connected to all 3 peers {} ms after the last of them started",
            d.as_millis()
        );
        assert!(d < CONNECT_BOUND, "node {i} took {d:?}");
    }
    let small = guard("1 KiB ring", ring_throughput(&ts, 2000, 1024)).await;
    let big = guard("64 KiB ring", ring_throughput(&ts, 200, 64 << 10)).await;
    let attempts = flood.attempts.load(Ordering::Relaxed).min(MAX_ATTEMPTS);
    let during = attempts < MAX_ATTEMPTS && t_early.elapsed() < MAX_FLOOD;
    println!(
        "flood: throughput {small:.0} msg/s at 1 KiB ({:.1} MiB/s), {big:.0} msg/s at 64 KiB ({:.1} MiB/s) (all 4 nodes, ring)",
        small / 1024.0,
        big / 16.0
    );
    flood.stop.store(true, Ordering::Relaxed);
    attacker.join().unwrap();
    let stats: Vec<_> = ts.iter().map(TcpTransport::stats).collect();
    let refused: u64 = stats.iter().map(|s| s.handshakes_refused).sum();
    let evicted: u64 = stats.iter().map(|s| s.handshakes_evicted).sum();
    println!(
        "flood: {attempts} attacker connection attempts ({} connected) over {:.1} s; nodes refused {refused}, evicted {evicted}, failed {} handshakes",
        flood.connected.load(Ordering::Relaxed),
        t_early.elapsed().as_secs_f64(),
        stats.iter().map(|s| s.handshakes_failed).sum::<u64>(),
    );
    assert!(
        during,
        "the exchange finished while the flood was still running"
    );
    assert!(
        refused + evicted > 0,
        "the flood reached the limits: {stats:?}"
    );
    for t in &ts {
        guard("shutdown", t.shutdown()).await;
    }
}
