//! A userspace WAN emulator: a loopback TCP relay that delays every byte,
//! in each direction, by a fixed one-way latency. `idlegrid bench
//! --latency relay` puts one in front of every validator-to-validator link,
//! so the links see the latency between the two validators' regions of a
//! [`LatencyMatrix`] (where the kernel's netem is missing, as on machines
//! without the `sch_netem` module).
//!
//! Bytes are forwarded in the order read, each chunk released `delay` after
//! it was read; a bounded queue per direction (see [`MAX_QUEUED_CHUNKS`])
//! pushes back on the sender instead of growing. Bandwidth is not limited.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::CliError;

/// Chunks (of up to 64 KiB each) held back per direction of one
/// connection; a full queue stops reading from the sender.
pub const MAX_QUEUED_CHUNKS: usize = 4_096;
/// Largest chunk read at once.
const CHUNK_BYTES: usize = 64 * 1024;
/// Connections one relay forwards at once (a validator dials a peer once;
/// redials after a failure replace the old connection).
const MAX_CONNECTIONS: usize = 16;

/// The six world regions of the simulator's `world6` preset
/// (`idlegrid_sim::network::regions::WORLD6`), in its order.
pub const WORLD6: [&str; 6] = [
    "us-east",
    "us-west",
    "eu-central",
    "ap-northeast",
    "ap-southeast",
    "sa-east",
];

/// One-way latencies (ms) of the simulator's `world6` preset, copied from
/// `sim/src/network/regions.rs` (the CLI does not depend on the
/// simulator; `bench --compare-sim` hands the simulator this very matrix
/// as a custom region table, so the two runs share it by construction).
const WORLD6_MS: [[u64; 6]; 6] = [
    [1, 33, 45, 75, 110, 58],
    [33, 1, 75, 50, 83, 88],
    [45, 75, 1, 113, 80, 100],
    [75, 50, 113, 1, 35, 128],
    [110, 83, 80, 35, 1, 163],
    [58, 88, 100, 128, 163, 1],
];

/// Regions with a square matrix of one-way latencies; validator `i` sits in
/// region `i % regions` (the simulator's round-robin placement).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LatencyMatrix {
    /// Region names, in matrix order.
    pub names: Vec<String>,
    /// One-way latency in ms from row to column.
    pub one_way_ms: Vec<Vec<u64>>,
}

impl LatencyMatrix {
    /// The simulator's `world6` table.
    pub fn world6() -> Self {
        Self {
            names: WORLD6.iter().map(|s| s.to_string()).collect(),
            one_way_ms: WORLD6_MS.iter().map(|r| r.to_vec()).collect(),
        }
    }

    /// The region of validator `i`.
    pub fn region_of(&self, i: usize) -> usize {
        i % self.names.len()
    }

    /// The one-way latency between validators `i` and `j`.
    pub fn between(&self, i: usize, j: usize) -> Duration {
        Duration::from_millis(self.one_way_ms[self.region_of(i)][self.region_of(j)])
    }
}

/// A running relay: accepts on [`Relay::addr`], forwards to the target
/// with the delay in both directions, until dropped.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
}

impl Relay {
    /// Listens on a free loopback port and forwards every accepted
    /// connection to `target`, each direction delayed by `delay`.
    pub async fn start(target: SocketAddr, delay: Duration) -> Result<Self, CliError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| CliError::Network(format!("relay: no free loopback port: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| CliError::Network(e.to_string()))?;
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(accept_loop(listener, target, delay, stopped));
        Ok(Self { addr, stop })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    delay: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let inbound = tokio::select! {
            _ = stopped.changed() => return,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(_) => continue,
            },
        };
        // Over the bound: the connection is closed; the dialer retries.
        let Ok(permit) = std::sync::Arc::clone(&slots).try_acquire_owned() else {
            continue;
        };
        let stopped = stopped.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Ok(outbound) = TcpStream::connect(target).await {
                forward(inbound, outbound, delay, stopped).await;
            }
        });
    }
}

/// Pumps both directions until either side closes or the relay stops.
async fn forward(a: TcpStream, b: TcpStream, delay: Duration, mut stopped: watch::Receiver<bool>) {
    let _ = (a.set_nodelay(true), b.set_nodelay(true));
    let (ar, aw) = a.into_split();
    let (br, bw) = b.into_split();
    tokio::select! {
        _ = stopped.changed() => {}
        _ = pump(ar, bw, delay) => {}
        _ = pump(br, aw, delay) => {}
    }
}

/// One direction: a reader stamping chunks, a writer releasing each at its
/// stamp plus `delay`.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(MAX_QUEUED_CHUNKS);
    let reader = async move {
        let mut buf = vec![0u8; CHUNK_BYTES];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let due = Instant::now() + delay;
                    if tx.send((due, buf[..n].to_vec())).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    // The writer drains what was read before the sender closed.
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world6_is_symmetric_with_one_ms_inside_a_region() {
        let m = LatencyMatrix::world6();
        for i in 0..6 {
            assert_eq!(m.one_way_ms[i][i], 1);
            for j in 0..6 {
                assert_eq!(m.one_way_ms[i][j], m.one_way_ms[j][i]);
            }
        }
        assert_eq!(m.between(0, 2), Duration::from_millis(45));
        assert_eq!(m.between(6, 8), Duration::from_millis(45), "round-robin");
    }

    /// An echo server behind a relay: a round trip takes at least twice
    /// the one-way delay, and every byte comes back in order.
    #[tokio::test]
    async fn relay_delays_each_direction_and_keeps_bytes() {
        let echo = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let target = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            loop {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    return;
                }
                s.write_all(&buf[..n]).await.unwrap();
            }
        });
        let delay = Duration::from_millis(40);
        let relay = Relay::start(target, delay).await.unwrap();
        let mut c = TcpStream::connect(relay.addr()).await.unwrap();
        for round in 0..3u8 {
            let msg: Vec<u8> = (0..100).map(|i| i ^ round).collect();
            let t0 = Instant::now();
            c.write_all(&msg).await.unwrap();
            let mut got = vec![0u8; msg.len()];
            c.read_exact(&mut got).await.unwrap();
            let rtt = t0.elapsed();
            assert_eq!(got, msg);
            assert!(rtt >= 2 * delay, "round trip {rtt:?} < 2 x {delay:?}");
        }
        drop(relay);
    }
}
