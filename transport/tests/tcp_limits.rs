//! Limits after authentication: a slow application with a fast
//! authenticated sender stays under its inbound byte bound; send queues are
//! bounded in bytes; sessions rekey after data and after time.

mod common;

use std::time::Duration;

use common::{eventually, guard, keypairs, listeners, tcp_cluster, test_config};
use idlegrid_transport::{FrameLimit, TcpConfig, TcpTransport, Transport, TransportError};

const MIB: usize = 1 << 20;

#[tokio::test]
async fn a_slow_application_stays_under_its_inbound_byte_bound() {
    let keys = keypairs(2);
    let config = TcpConfig {
        max_frame_len: FrameLimit::new(MIB).unwrap(),
        inbound_bytes: 4 * MIB,
        send_queue_bytes: 8 * MIB,
        ..test_config()
    };
    let (ts, _) = tcp_cluster(&keys, config).await;
    let (fast, slow) = (&ts[0], &ts[1]);
    eventually("connected", || fast.is_connected(&slow.local_id())).await;
    // The sender pushes 1 MiB messages as fast as its queue takes them for
    // one second; the application on `slow` does not call `recv`.
    let mut sent = 0u32;
    let until = tokio::time::Instant::now() + Duration::from_secs(1);
    while tokio::time::Instant::now() < until {
        let mut m = vec![0u8; MIB];
        m[..4].copy_from_slice(&sent.to_le_bytes());
        match fast.send(slow.local_id(), m).await {
            Ok(()) => sent += 1,
            Err(TransportError::QueueFull { .. } | TransportError::QueueBytesFull { .. }) => {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let s = slow.stats();
    println!(
        "sent {sent} MiB; receiver holds {} B (peak {} B, bound {} B)",
        s.inbound_bytes_queued,
        s.inbound_bytes_peak,
        4 * MIB
    );
    assert!(s.inbound_bytes_peak <= 4 * MIB, "{s:?}");
    assert!(
        s.inbound_bytes_peak >= 3 * MIB,
        "the bound was reached: {s:?}"
    );
    assert!(sent > 4, "the sender was faster than the application");
    // The application catches up: messages arrive in order and intact.
    let mut next = 0u32;
    while next < sent {
        let (_, m) = guard("drain", slow.recv()).await.unwrap();
        assert_eq!(m.len(), MIB);
        assert_eq!(u32::from_le_bytes(m[..4].try_into().unwrap()), next);
        next += 1;
    }
    assert_eq!(slow.stats().connections_failed, 0);
    for t in &ts {
        t.shutdown().await;
    }
}

#[tokio::test]
async fn send_queues_are_bounded_in_bytes() {
    let keys = keypairs(2);
    let (mut ls, book) = listeners(&keys).await;
    drop(ls.pop()); // the peer is offline: everything stays queued
    let config = TcpConfig {
        max_frame_len: FrameLimit::new(MIB).unwrap(),
        send_queue_bytes: 2 * MIB,
        ..test_config()
    };
    let t = TcpTransport::from_listener(keys[0].clone(), ls.pop().unwrap(), book, config).unwrap();
    let peer = keys[1].node_id();
    t.send(peer, vec![0; MIB]).await.unwrap();
    t.send(peer, vec![0; MIB - 10]).await.unwrap();
    assert!(matches!(
        t.send(peer, vec![0; 11]).await,
        Err(TransportError::QueueBytesFull { bytes, .. }) if bytes == 2 * MIB
    ));
    t.send(peer, vec![0; 10]).await.unwrap(); // what fits still goes
    assert!(matches!(
        t.send(peer, vec![0; MIB + 1]).await,
        Err(TransportError::Frame(_))
    ));
    t.shutdown().await;
}

#[tokio::test]
async fn sessions_rekey_after_data_and_after_time() {
    let keys = keypairs(2);
    let by_bytes = TcpConfig {
        rekey_after_bytes: 64 << 10,
        ..test_config()
    };
    let (ts, _) = tcp_cluster(&keys, by_bytes).await;
    for i in 0..100u8 {
        ts[0].send(ts[1].local_id(), vec![i; 4096]).await.unwrap();
    }
    for i in 0..100u8 {
        assert_eq!(guard("recv", ts[1].recv()).await.unwrap().1, vec![i; 4096]);
    }
    assert!(ts[0].stats().rekeys >= 5, "{:?}", ts[0].stats());
    assert_eq!(ts[1].stats().connections_failed, 0);
    for t in &ts {
        t.shutdown().await;
    }

    let by_time = TcpConfig {
        rekey_interval: Duration::from_millis(100),
        keepalive_interval: Duration::from_millis(50),
        ..test_config()
    };
    let (ts, _) = tcp_cluster(&keys, by_time).await;
    eventually("rekeyed by time", || ts[0].stats().rekeys >= 3).await;
    ts[0]
        .send(ts[1].local_id(), b"after rekeys".to_vec())
        .await
        .unwrap();
    assert_eq!(
        guard("recv", ts[1].recv()).await.unwrap().1,
        b"after rekeys"
    );
    assert!(ts.iter().all(|t| t.stats().connections_failed == 0));
    for t in &ts {
        t.shutdown().await;
    }
}
