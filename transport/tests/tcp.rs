//! The TCP transport on 127.0.0.1 (ephemeral ports): exchange, the
//! handshake against impostors, bad frames, slow peers, restarts, shutdown.

mod common;

use std::time::Duration;

use common::{
    RawSession, addr_of, closed_by_node, deliver_eventually, eventually, guard, keypair, keypairs,
    listeners, raw_handshake, raw_handshake_inner, tcp_cluster, test_config, write_env,
};
use idlegrid_primitives::Keypair;
use idlegrid_transport::frame::{EphemeralKey, Hello, Nonce, WIRE_VERSION};
use idlegrid_transport::{
    AddressBook, Envelope, FrameLimit, TcpConfig, TcpTransport, Transport, TransportError,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

async fn shutdown_all(ts: &[TcpTransport]) {
    for t in ts {
        guard("shutdown", t.shutdown()).await;
        assert!(matches!(t.recv().await, Err(TransportError::Closed)));
        assert!(matches!(
            t.send(t.peers()[0], vec![]).await,
            Err(TransportError::Closed)
        ));
    }
}

#[tokio::test]
async fn two_and_four_nodes_exchange_messages() {
    let keys = keypairs(4);
    let (ts, _) = tcp_cluster(&keys[..2], test_config()).await;
    deliver_eventually(&ts[0], &ts[1], b"a->b").await;
    deliver_eventually(&ts[1], &ts[0], b"b->a").await;
    shutdown_all(&ts).await;

    let (ts, _) = tcp_cluster(&keys, test_config()).await;
    for t in &ts {
        let peers = t.peers();
        eventually("all connected", || t.connected_peers() == peers).await;
    }
    for t in &ts {
        assert_eq!(
            t.broadcast(t.local_id().to_bytes().to_vec()).await.unwrap(),
            3
        );
    }
    for t in &ts {
        let mut from = Vec::new();
        for _ in 0..3 {
            let (f, bytes) = guard("recv", t.recv()).await.unwrap();
            assert_eq!(bytes, f.to_bytes().to_vec());
            from.push(f);
        }
        from.sort();
        assert_eq!(from, t.peers());
    }
    // Large messages too (64 KiB), in order on one connection.
    for i in 0..8u8 {
        ts[3]
            .send(ts[0].local_id(), vec![i; 64 << 10])
            .await
            .unwrap();
    }
    for i in 0..8u8 {
        assert_eq!(
            guard("recv 64k", ts[0].recv()).await.unwrap().1,
            vec![i; 64 << 10]
        );
    }
    assert!(ts.iter().all(|t| t.stats().handshakes_failed == 0));
    shutdown_all(&ts).await;
}

/// Nodes 0..3 run; node 3 is in the book but offline, so others can
/// impersonate it or (honestly) act as it.
async fn three_plus_one(config: TcpConfig) -> (Vec<TcpTransport>, Keypair) {
    let keys = keypairs(4);
    let (mut ls, book) = listeners(&keys).await;
    drop(ls.pop());
    let ts = keys[..3]
        .iter()
        .zip(ls)
        .map(|(k, l)| {
            TcpTransport::from_listener(k.clone(), l, book.clone(), config.clone()).unwrap()
        })
        .collect();
    (ts, keys[3].clone())
}

#[tokio::test]
async fn a_peer_signing_with_the_wrong_key_is_rejected() {
    let (ts, offline) = three_plus_one(test_config()).await;
    let impostor = keypair(99);
    let mut s = raw_handshake_inner(&ts[0], offline.node_id(), &impostor, 1)
        .await
        .0;
    assert!(closed_by_node(&mut s).await);
    eventually("handshake failure counted", || {
        ts[0].stats().handshakes_failed >= 1
    })
    .await;
    assert!(!ts[0].is_connected(&offline.node_id()));
    // A peer that is not in the book at all, with its own key, too.
    let (mut s, keys) = raw_handshake_inner(&ts[0], impostor.node_id(), &impostor, 2).await;
    assert!(keys.is_none(), "no Hello, no Auth for a stranger");
    assert!(closed_by_node(&mut s).await);
    // Garbage instead of a handshake.
    let mut s = TcpStream::connect(ts[0].local_addr()).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    assert!(closed_by_node(&mut s).await);
    // The node keeps serving the others.
    deliver_eventually(&ts[1], &ts[0], b"still here").await;
    deliver_eventually(&ts[0], &ts[2], b"and here").await;
    shutdown_all(&ts).await;
}

#[tokio::test]
async fn bad_frames_and_slowloris_disconnect_the_peer_only() {
    let config = TcpConfig {
        max_frame_len: FrameLimit::new(1024).unwrap(),
        frame_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(800),
        keepalive_interval: Duration::from_millis(100),
        ..test_config()
    };
    let (ts, member) = three_plus_one(config).await;
    let id = member.node_id();
    // Garbage after an honest handshake: unknown kind.
    let mut s = raw_handshake(&ts[0], id, &member, 1).await.stream;
    s.write_all(&[WIRE_VERSION, 77, 0, 0, 0, 0]).await.unwrap();
    assert!(closed_by_node(&mut s).await);
    // An oversized length prefix (4 GiB): rejected from the header alone.
    let mut s = raw_handshake(&ts[0], id, &member, 2).await.stream;
    s.write_all(&[WIRE_VERSION, 4, 0xff, 0xff, 0xff, 0xff])
        .await
        .unwrap();
    assert!(closed_by_node(&mut s).await);
    // A wrong version byte.
    let mut s = raw_handshake(&ts[0], id, &member, 3).await.stream;
    s.write_all(&[9, 4, 0, 0, 0, 0]).await.unwrap();
    assert!(closed_by_node(&mut s).await);
    // A second handshake inside the session.
    let mut s = raw_handshake(&ts[0], id, &member, 4).await.stream;
    let again = Hello {
        node: id,
        nonce: Nonce::from_bytes([5; 32]),
        ephemeral: EphemeralKey::from_bytes([5; 32]),
    };
    write_env(&mut s, &Envelope::Hello(again)).await;
    assert!(closed_by_node(&mut s).await);
    // A plaintext data frame inside the session.
    let mut s = raw_handshake(&ts[0], id, &member, 5).await.stream;
    write_env(&mut s, &Envelope::Data(b"in the clear".to_vec())).await;
    assert!(closed_by_node(&mut s).await);
    eventually("bad frames counted", || ts[0].stats().bad_frames >= 5).await;
    // Slowloris: half a header, then nothing (keepalives are not enough).
    let mut s = raw_handshake(&ts[0], id, &member, 6).await.stream;
    s.write_all(&[WIRE_VERSION, 4, 10]).await.unwrap();
    assert!(closed_by_node(&mut s).await);
    // Silent peer: dropped after the idle timeout.
    let mut s = raw_handshake(&ts[0], id, &member, 7).await.stream;
    assert!(closed_by_node(&mut s).await);
    // A well-behaved member session still works and its data arrives.
    let mut s: RawSession = raw_handshake(&ts[0], id, &member, 8).await;
    s.send_data(b"hello from member").await;
    assert_eq!(
        guard("member data", ts[0].recv()).await.unwrap(),
        (id, b"hello from member".to_vec())
    );
    drop(s);
    // And the others never noticed.
    deliver_eventually(&ts[1], &ts[0], b"fine").await;
    deliver_eventually(&ts[0], &ts[2], b"fine").await;
    shutdown_all(&ts).await;
}

#[tokio::test]
async fn a_slow_peer_fills_its_queue_and_is_dropped_others_unaffected() {
    let config = TcpConfig {
        send_queue_capacity: 16,
        write_timeout: Duration::from_secs(1),
        ..test_config()
    };
    let (ts, slow) = three_plus_one(config).await;
    let slow_id = slow.node_id();
    // The slow peer completes the handshake, then never reads.
    let _s = raw_handshake(&ts[0], slow_id, &slow, 1).await;
    eventually("slow peer connected", || ts[0].is_connected(&slow_id)).await;
    let big = vec![0u8; 64 << 10];
    let mut full = None;
    for _ in 0..10_000 {
        match ts[0].send(slow_id, big.clone()).await {
            Ok(()) => tokio::task::yield_now().await,
            Err(e) => {
                full = Some(e);
                break;
            }
        }
    }
    assert!(
        matches!(full, Some(TransportError::QueueFull { capacity: 16, .. })),
        "policy: a full queue rejects new messages, got {full:?}"
    );
    // Other peers are unaffected while the slow one is stuck.
    deliver_eventually(&ts[0], &ts[1], b"unaffected").await;
    // A write blocked for write_timeout drops the slow connection.
    eventually("slow connection dropped", || {
        ts[0].stats().connections_failed >= 1
    })
    .await;
    eventually("slow peer disconnected", || !ts[0].is_connected(&slow_id)).await;
    shutdown_all(&ts).await;
}

#[tokio::test]
async fn a_restarted_peer_is_reconnected() {
    let keys = keypairs(2);
    let (mut ts, book) = tcp_cluster(&keys, test_config()).await;
    deliver_eventually(&ts[0], &ts[1], b"before").await;
    // Restart the accepting side (the larger id): the dialer reconnects
    // with backoff.
    let old = ts.pop().unwrap();
    old.shutdown().await;
    drop(old);
    let restarted = TcpTransport::bind(
        keys[1].clone(),
        addr_of(&book, &keys[1]),
        book.clone(),
        test_config(),
    )
    .await
    .unwrap();
    deliver_eventually(&ts[0], &restarted, b"after acceptor restart").await;
    deliver_eventually(&restarted, &ts[0], b"both ways").await;
    // Restart the dialing side: its fresh connection replaces the old one.
    let old = ts.pop().unwrap();
    old.shutdown().await;
    drop(old);
    let redialer = TcpTransport::bind(
        keys[0].clone(),
        addr_of(&book, &keys[0]),
        book.clone(),
        test_config(),
    )
    .await
    .unwrap();
    deliver_eventually(&restarted, &redialer, b"after dialer restart").await;
    deliver_eventually(&redialer, &restarted, b"both ways again").await;
    shutdown_all(&[redialer, restarted]).await;
}

#[tokio::test]
async fn keepalive_holds_an_idle_connection_and_config_is_checked() {
    let keys = keypairs(2);
    let config = TcpConfig {
        keepalive_interval: Duration::from_millis(50),
        idle_timeout: Duration::from_secs(2),
        ..test_config()
    };
    let (ts, _) = tcp_cluster(&keys, config).await;
    eventually("connected", || ts[0].is_connected(&ts[1].local_id())).await;
    tokio::time::sleep(Duration::from_secs(3)).await; // longer than idle_timeout
    assert!(ts[0].is_connected(&ts[1].local_id()));
    assert_eq!(ts[0].stats().connections_failed, 0);
    ts[0].send(ts[1].local_id(), b"x".to_vec()).await.unwrap();
    assert_eq!(guard("recv", ts[1].recv()).await.unwrap().1, b"x");
    assert!(matches!(
        ts[0].send(keypair(55).node_id(), vec![]).await,
        Err(TransportError::UnknownPeer(_))
    ));
    shutdown_all(&ts).await;

    let bad = TcpConfig {
        idle_timeout: Duration::from_millis(10),
        keepalive_interval: Duration::from_millis(10),
        ..TcpConfig::default()
    };
    let r = TcpTransport::bind(
        keys[0].clone(),
        "127.0.0.1:0".parse().unwrap(),
        AddressBook::new(),
        bad,
    )
    .await;
    assert!(matches!(r, Err(TransportError::Config(_))));
}
