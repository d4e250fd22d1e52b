//! The in-memory transport: exchange, loss and delay, backpressure, shutdown.

mod common;

use std::time::Duration;

use common::{guard, keypairs};
use idlegrid_transport::{MemoryConfig, MemoryNetwork, Transport, TransportError};

#[tokio::test]
async fn two_and_four_nodes_exchange_messages() {
    let keys = keypairs(4);
    let net = MemoryNetwork::new(MemoryConfig::default()).unwrap();
    let ts: Vec<_> = keys.iter().map(|k| net.join(k.node_id())).collect();
    // Two nodes.
    ts[0].send(ts[1].local_id(), b"one".to_vec()).await.unwrap();
    assert_eq!(
        ts[1].recv().await.unwrap(),
        (ts[0].local_id(), b"one".to_vec())
    );
    // Four nodes: everyone broadcasts, everyone hears the three others.
    for t in &ts {
        assert_eq!(t.peers().len(), 3);
        assert_eq!(
            t.broadcast(t.local_id().to_bytes().to_vec()).await.unwrap(),
            3
        );
    }
    for t in &ts {
        let mut from = Vec::new();
        for _ in 0..3 {
            let (f, bytes) = guard("recv", t.recv()).await.unwrap();
            assert_eq!(bytes, f.to_bytes().to_vec(), "sender is authenticated");
            from.push(f);
        }
        from.sort();
        let mut expected = t.peers();
        expected.sort();
        assert_eq!(from, expected);
    }
}

#[tokio::test]
async fn full_inbox_rejects_with_queue_full_and_others_still_flow() {
    let keys = keypairs(3);
    let cfg = MemoryConfig {
        inbox_capacity: 4,
        ..MemoryConfig::default()
    };
    let net = MemoryNetwork::new(cfg).unwrap();
    let (a, slow, fast) = (
        net.join(keys[0].node_id()),
        net.join(keys[1].node_id()),
        net.join(keys[2].node_id()),
    );
    let mut accepted = 0;
    let mut full = None;
    for i in 0..100u32 {
        match a.send(slow.local_id(), i.to_le_bytes().to_vec()).await {
            Ok(()) => accepted += 1,
            Err(e) => {
                full = Some(e);
                break;
            }
        }
    }
    assert!(matches!(
        full,
        Some(TransportError::QueueFull { capacity: 4, .. })
    ));
    assert!((4..=5).contains(&accepted), "bounded: {accepted}");
    // The fast peer is unaffected.
    a.send(fast.local_id(), b"x".to_vec()).await.unwrap();
    assert_eq!(fast.recv().await.unwrap().1, b"x");
    // Once the slow peer reads, it gets the accepted messages in order.
    for i in 0..accepted {
        assert_eq!(slow.recv().await.unwrap().1, (i as u32).to_le_bytes());
    }
}

#[tokio::test]
async fn seeded_loss_is_reproducible_and_delay_delivers_everything() {
    let keys = keypairs(2);
    let lossy = |seed| MemoryConfig {
        loss_ppm: 300_000,
        seed: idlegrid_primitives::Seed::from_u64(seed),
        ..MemoryConfig::default()
    };
    let mut patterns = Vec::new();
    for seed in [7, 7, 8] {
        let net = MemoryNetwork::new(lossy(seed)).unwrap();
        let (a, b) = (net.join(keys[0].node_id()), net.join(keys[1].node_id()));
        for i in 0..100u8 {
            a.send(b.local_id(), vec![i]).await.unwrap();
        }
        a.send(b.local_id(), vec![]).await.ok();
        let mut got = Vec::new();
        while let Ok(Ok((_, m))) = tokio::time::timeout(Duration::from_millis(50), b.recv()).await {
            got.extend(m);
        }
        assert!(
            got.len() > 40 && got.len() < 95,
            "about 30% lost: {}",
            got.len()
        );
        patterns.push(got);
    }
    assert_eq!(patterns[0], patterns[1], "same seed, same losses");
    assert_ne!(patterns[0], patterns[2], "other seed, other losses");

    let delayed = MemoryConfig {
        delay_min: Duration::from_millis(1),
        delay_max: Duration::from_millis(20),
        ..MemoryConfig::default()
    };
    let net = MemoryNetwork::new(delayed).unwrap();
    let (a, b) = (net.join(keys[0].node_id()), net.join(keys[1].node_id()));
    for i in 0..50u8 {
        a.send(b.local_id(), vec![i]).await.unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..50 {
        got.extend(guard("delayed recv", b.recv()).await.unwrap().1);
    }
    got.sort();
    assert_eq!(got, (0..50).collect::<Vec<u8>>());
}

#[tokio::test]
async fn errors_and_shutdown() {
    let keys = keypairs(3);
    let cfg = MemoryConfig {
        max_frame_len: idlegrid_transport::FrameLimit::new(8).unwrap(),
        ..MemoryConfig::default()
    };
    let net = MemoryNetwork::new(cfg).unwrap();
    let (a, b) = (net.join(keys[0].node_id()), net.join(keys[1].node_id()));
    assert!(matches!(
        a.send(keys[2].node_id(), vec![]).await,
        Err(TransportError::UnknownPeer(_))
    ));
    assert!(matches!(
        a.send(b.local_id(), vec![0; 9]).await,
        Err(TransportError::Frame(_))
    ));
    // A pending recv ends with Closed when its transport shuts down.
    let pending = b.recv();
    let (r, ()) = tokio::join!(pending, async {
        tokio::task::yield_now().await;
        b.shutdown().await;
    });
    assert!(matches!(r, Err(TransportError::Closed)));
    assert!(matches!(
        b.send(a.local_id(), vec![]).await,
        Err(TransportError::Closed)
    ));
    assert_eq!(a.peers(), vec![], "b left the network");
    // Rejoining (a restart) works.
    let b2 = net.join(keys[1].node_id());
    a.send(b2.local_id(), b"again".to_vec()).await.unwrap();
    assert_eq!(b2.recv().await.unwrap().1, b"again");
}
