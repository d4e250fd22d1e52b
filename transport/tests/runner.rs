//! The runner drives a machine over real transports: it delivers messages,
//! fires timeouts at `poll_timeout`, drains outputs and shuts down cleanly.
//! End to end: a 4-node reliable-broadcast counter over in-memory (lossy,
//! delayed) and TCP transports.

mod common;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use common::{Event, Gossip, guard, keypairs, tcp_cluster, test_config};
use idlegrid_primitives::{Duration, Keypair, Seed};
use idlegrid_transport::{
    Clock, MemoryConfig, MemoryNetwork, PostcardCodec, Runner, StopReason, Stopped, Transport,
    TransportError,
};
use tokio::sync::{mpsc, watch};

/// Runs one Gossip node per transport until every node reports
/// `Complete`, then shuts all runners down and returns them.
async fn run_to_completion<T: Transport + 'static>(
    keys: &[Keypair],
    transports: Vec<T>,
) -> Vec<Stopped<Gossip, T>> {
    let n = keys.len();
    let clock = Clock::start();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let mut handles = Vec::new();
    for (i, (k, t)) in keys.iter().zip(transports).enumerate() {
        let machine = Gossip::new(
            k.node_id(),
            10 + i as u64,
            n,
            Duration::from_millis(30),
            1000,
        );
        let runner = Runner::with_clock(machine, t, PostcardCodec::new(4096), clock);
        let mut stop = stop_rx.clone();
        let ev_tx = ev_tx.clone();
        handles.push(tokio::spawn(runner.run(
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
            move |e| {
                let _ = ev_tx.send((i, e));
            },
        )));
    }
    let expected_sum: u64 = (0..n as u64).map(|i| 10 + i).sum();
    let mut complete = vec![false; n];
    guard("all nodes complete", async {
        while complete.iter().any(|c| !c) {
            let (i, e) = ev_rx.recv().await.unwrap();
            if let Event::Complete(sum) = e {
                assert_eq!(sum, expected_sum, "node {i} agrees on the sum");
                complete[i] = true;
            }
        }
    })
    .await;
    stop_tx.send_replace(true);
    let mut stopped = Vec::new();
    for h in handles {
        stopped.push(guard("runner stops", h).await.unwrap());
    }
    for s in &stopped {
        assert!(matches!(s.reason, StopReason::Shutdown));
        assert!(s.stats.timeouts_fired >= 1);
        assert!(s.stats.messages_delivered >= (n - 1) as u64);
        assert_eq!(s.stats.decode_failures, 0);
        // Every timeout fired at or after its deadline.
        assert!(
            s.machine
                .fired_at
                .iter()
                .all(|(deadline, now)| now >= deadline)
        );
        guard("transport shutdown", s.transport.shutdown()).await;
    }
    stopped
}

#[tokio::test]
async fn four_nodes_over_a_lossy_delayed_memory_network() {
    let keys = keypairs(4);
    let net = MemoryNetwork::new(MemoryConfig {
        loss_ppm: 200_000,
        delay_min: StdDuration::from_millis(1),
        delay_max: StdDuration::from_millis(10),
        seed: Seed::from_u64(9),
        ..MemoryConfig::default()
    })
    .unwrap();
    let ts = keys.iter().map(|k| net.join(k.node_id())).collect();
    run_to_completion(&keys, ts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_nodes_over_tcp_loopback() {
    let keys = keypairs(4);
    let (ts, _) = tcp_cluster(&keys, test_config()).await;
    let stopped = run_to_completion(&keys, ts).await;
    assert!(
        stopped
            .iter()
            .all(|s| s.transport.stats().handshakes_failed == 0)
    );
}

#[tokio::test]
async fn timeouts_fire_without_traffic_and_bad_bytes_are_counted() {
    let keys = keypairs(2);
    let net = MemoryNetwork::new(MemoryConfig::default()).unwrap();
    let (a, b) = (net.join(keys[0].node_id()), net.join(keys[1].node_id()));
    // A node alone with 5 ticks of 10 ms: its timer fires 5 times, then the
    // runner idles until shutdown.
    let machine = Gossip::new(keys[0].node_id(), 1, 2, Duration::from_millis(10), 5);
    // b is a raw peer: it sends one undecodable message.
    b.send(a.local_id(), vec![0xff; 3]).await.unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = Runner::new(machine, a, PostcardCodec::default()).run(
        async {
            let _ = stop_rx.await;
        },
        |_| {},
    );
    let (stopped, ()) = tokio::join!(run, async {
        // Five broadcasts reach b, one per tick.
        for _ in 0..5 {
            guard("tick broadcast", b.recv()).await.unwrap();
        }
        stop_tx.send(()).unwrap();
    });
    assert!(matches!(stopped.reason, StopReason::Shutdown));
    assert_eq!(stopped.stats.timeouts_fired, 5);
    assert_eq!(stopped.machine.fired_at.len(), 5);
    assert_eq!(stopped.stats.decode_failures, 1);
    assert_eq!(stopped.stats.messages_delivered, 0);
    assert_eq!(stopped.stats.transmits, 5);
    for w in stopped.machine.fired_at.windows(2) {
        assert!(
            w[1].0 >= w[0].1,
            "each deadline is 10 ms after the previous fire"
        );
    }
}

#[tokio::test]
async fn the_runner_stops_when_its_transport_closes() {
    let keys = keypairs(2);
    let net = MemoryNetwork::new(MemoryConfig::default()).unwrap();
    let a = Arc::new(net.join(keys[0].node_id()));
    let machine = Gossip::new(keys[0].node_id(), 1, 2, Duration::from_secs(3600), 2);
    let run = Runner::new(machine, a.clone(), PostcardCodec::default())
        .run(std::future::pending(), |_| {});
    let (stopped, ()) = tokio::join!(guard("runner stops", run), async {
        tokio::time::sleep(StdDuration::from_millis(20)).await;
        a.shutdown().await;
    });
    assert!(matches!(
        stopped.reason,
        StopReason::Transport(TransportError::Closed)
    ));
    assert_eq!(
        stopped.stats.timeouts_fired, 1,
        "the first tick, then an hour away"
    );
}
