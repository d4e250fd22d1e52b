//! A man in the middle on loopback: a TCP relay between two honest nodes
//! that flips a bit in, replays, drops or reorders sealed frames. Each
//! tampering closes the session, nothing from the tampered frame is
//! delivered, and the peers reconnect and keep delivering. Also: a recorded
//! session does not open with the long-term keys (forward secrecy).

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use common::{guard, keypairs, raw_handshake_inner, read_env, test_config, write_env};
use idlegrid_transport::frame::{Auth, EphemeralKey, HEADER_LEN, Hello, Nonce};
use idlegrid_transport::session::{Opened, SealKind};
use idlegrid_transport::tcp::{auth_transcript, session_keys};
use idlegrid_transport::{
    AddressBook, Envelope, FrameLimit, HANDSHAKE_DOMAIN, TcpTransport, Transport,
};
use rand::rngs::OsRng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use x25519_dalek::{EphemeralSecret, PublicKey as XPublic};

/// The kind byte of a sealed data frame on the wire.
const SEALED_DATA: u8 = 4;
/// The data frame (counted from 0 on the first connection) that is tampered with.
const TARGET: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tamper {
    FlipBit,
    Replay,
    Drop,
    Reorder,
}

async fn read_frame_raw<R: AsyncRead + Unpin>(r: &mut R) -> Option<Vec<u8>> {
    let mut f = vec![0u8; HEADER_LEN];
    r.read_exact(&mut f).await.ok()?;
    let len = u32::from_le_bytes([f[2], f[3], f[4], f[5]]) as usize;
    f.resize(HEADER_LEN + len, 0);
    r.read_exact(&mut f[HEADER_LEN..]).await.ok()?;
    Some(f)
}

/// Forwards frames from `r` to `w`, tampering with data frame [`TARGET`]
/// when `tamper` is set.
async fn pump<R, W>(mut r: R, mut w: W, tamper: Option<Tamper>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut data = 0u32;
    let mut held: Option<Vec<u8>> = None;
    while let Some(mut f) = read_frame_raw(&mut r).await {
        let mut out = vec![];
        let is_data = f[1] == SEALED_DATA;
        match is_data.then_some(data).zip(tamper) {
            Some((TARGET, Tamper::FlipBit)) => {
                f[HEADER_LEN + 2] ^= 0x10;
                out.push(f);
            }
            Some((TARGET, Tamper::Replay)) => out.extend([f.clone(), f]),
            Some((TARGET, Tamper::Drop)) => {}
            Some((TARGET, Tamper::Reorder)) => held = Some(f),
            Some((n, Tamper::Reorder)) if n == TARGET + 1 => {
                out.push(f);
                out.extend(held.take());
            }
            _ => out.push(f),
        }
        data += u32::from(is_data);
        for f in out {
            if w.write_all(&f).await.is_err() {
                return;
            }
        }
    }
}

/// A relay to `target`; only its first connection is tampered with.
async fn relay(listener: TcpListener, target: SocketAddr, tamper: Tamper) {
    let mut first = true;
    while let Ok((inbound, _)) = listener.accept().await {
        let Ok(outbound) = TcpStream::connect(target).await else {
            continue;
        };
        let t = first.then_some(tamper);
        first = false;
        tokio::spawn(async move {
            let (ir, iw) = inbound.into_split();
            let (or, ow) = outbound.into_split();
            // When either direction ends, both sockets close.
            tokio::select! {
                () = pump(ir, ow, t) => {}
                () = pump(or, iw, None) => {}
            }
        });
    }
}

/// The payload of message `i`: its number and some padding.
fn message(i: u32) -> Vec<u8> {
    let mut m = i.to_le_bytes().to_vec();
    m.resize(100, 0xab);
    m
}

/// Runs one tampering scenario; returns the message numbers received.
async fn scenario(tamper: Tamper) -> Vec<u32> {
    let keys = keypairs(2); // keys[0] < keys[1]: node 0 dials node 1
    let (l0, l1) = (bind().await, bind().await);
    let relay_l = bind().await;
    let (a0, a1, ar) = (addr(&l0), addr(&l1), addr(&relay_l));
    let relay_task = tokio::spawn(relay(relay_l, a1, tamper));
    let book = |to_1: SocketAddr| -> AddressBook {
        [(keys[0].node_id(), a0), (keys[1].node_id(), to_1)]
            .into_iter()
            .collect()
    };
    let cfg = test_config();
    let n0 = TcpTransport::from_listener(keys[0].clone(), l0, book(ar), cfg.clone()).unwrap();
    let n1 = TcpTransport::from_listener(keys[1].clone(), l1, book(a1), cfg).unwrap();

    let done = AtomicBool::new(false);
    let next = AtomicU32::new(0);
    let sender = async {
        while !done.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let _ = n0.send(n1.local_id(), message(i)).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let receiver = async {
        let mut got = Vec::new();
        loop {
            let (from, m) = n1.recv().await.unwrap();
            assert_eq!(from, n0.local_id());
            let i = u32::from_le_bytes(m[..4].try_into().unwrap());
            assert_eq!(m, message(i), "delivered bytes are what was sent");
            got.push(i);
            if i >= 60 {
                done.store(true, Ordering::Relaxed);
                return got;
            }
        }
    };
    let (got, ()) = guard("tampering scenario", async {
        tokio::join!(receiver, sender)
    })
    .await;
    let (s0, s1) = (n0.stats(), n1.stats());
    println!("{tamper:?}: received {} of 61, node 1 {s1:?}", got.len());
    assert_eq!(s1.frames_failed_auth, 1, "{tamper:?}: one session closed");
    assert!(s0.handshakes_ok >= 2, "{tamper:?}: the dialer reconnected");
    n0.shutdown().await;
    n1.shutdown().await;
    relay_task.abort();
    got
}

async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

fn addr(l: &TcpListener) -> SocketAddr {
    l.local_addr().unwrap()
}

fn check(got: &[u32], never: &[u32]) {
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicates: {got:?}"
    );
    assert_eq!(
        &got[..TARGET as usize],
        &(0..TARGET).collect::<Vec<_>>()[..]
    );
    for n in never {
        assert!(
            !got.contains(n),
            "message {n} came from a tampered frame: {got:?}"
        );
    }
    assert!(
        got.iter().any(|&i| i > TARGET + 5),
        "delivery resumed after reconnect"
    );
}

#[tokio::test]
async fn a_flipped_bit_closes_the_session_and_is_not_delivered() {
    check(&scenario(Tamper::FlipBit).await, &[TARGET]);
}

#[tokio::test]
async fn a_replayed_frame_closes_the_session_and_is_not_delivered_twice() {
    let got = scenario(Tamper::Replay).await;
    check(&got, &[]);
    assert_eq!(got.iter().filter(|&&i| i == TARGET).count(), 1);
}

#[tokio::test]
async fn a_dropped_frame_closes_the_session() {
    check(&scenario(Tamper::Drop).await, &[TARGET, TARGET + 1]);
}

#[tokio::test]
async fn reordered_frames_close_the_session_and_neither_is_delivered() {
    check(&scenario(Tamper::Reorder).await, &[TARGET, TARGET + 1]);
}

/// Forward secrecy, tested as the construction gives it: the session keys
/// are a function of the ephemeral X25519 output and the public handshake
/// only. A recording of a session, together with **both** long-term keys,
/// does not open it — neither by impersonating a node for a new session nor
/// by exchanging with the recorded ephemeral keys — while the (erased)
/// ephemeral shared secret does (the positive control).
#[tokio::test]
async fn a_recorded_session_does_not_open_with_the_long_term_keys() {
    let keys = keypairs(2);
    let (client, node_key) = (&keys[0], &keys[1]);
    let l = bind().await;
    let book: AddressBook = [
        (client.node_id(), "127.0.0.1:9".parse().unwrap()), // never dialed: it is smaller
        (node_key.node_id(), addr(&l)),
    ]
    .into_iter()
    .collect();
    let node = TcpTransport::from_listener(node_key.clone(), l, book, test_config()).unwrap();

    // Session 1, recorded on the path: the client's Hello and frames.
    let mut s = TcpStream::connect(node.local_addr()).await.unwrap();
    let secret = EphemeralSecret::random_from_rng(OsRng);
    let mine = Hello {
        node: client.node_id(),
        nonce: Nonce::from_bytes([1; 32]),
        ephemeral: EphemeralKey::from_bytes(XPublic::from(&secret).to_bytes()),
    };
    write_env(&mut s, &Envelope::Hello(mine)).await;
    let Some(Envelope::Hello(theirs)) = read_env(&mut s).await else {
        panic!("node said hello")
    };
    let sig = client.sign(HANDSHAKE_DOMAIN, &auth_transcript(&mine, &theirs));
    write_env(&mut s, &Envelope::Auth(Auth { signature: sig })).await;
    assert!(matches!(read_env(&mut s).await, Some(Envelope::Auth(_))));
    let shared = secret.diffie_hellman(&XPublic::from(theirs.ephemeral.to_bytes()));
    let (mut sealer, _) = session_keys(&shared, &mine, &theirs)
        .unwrap()
        .split(FrameLimit::DEFAULT);
    let secret_msg = b"the bid is 42 units at 0.3 per cpu-second".to_vec();
    let recorded = sealer.seal_frame(SealKind::Data, &secret_msg).unwrap();
    s.write_all(&recorded).await.unwrap();
    assert_eq!(
        guard("delivered", node.recv()).await.unwrap(),
        (client.node_id(), secret_msg.clone())
    );
    assert!(
        !recorded
            .windows(8)
            .any(|w| secret_msg.windows(8).any(|m| m == w))
    );

    // Control: the ephemeral shared secret (erased by real nodes) opens it.
    let (_, mut control) = session_keys(&shared, &theirs, &mine)
        .unwrap()
        .split(FrameLimit::DEFAULT);
    assert_eq!(
        control.decode(&recorded).unwrap().0,
        Opened::Data(secret_msg)
    );
    drop(shared);

    // The attacker holds both long-term keys. (1) It impersonates the client
    // for a fresh session: that session's keys do not open the recording.
    let (_s2, keys2) = raw_handshake_inner(&node, client.node_id(), client, 2).await;
    let (_, mut o2) = keys2
        .expect("impersonation with the stolen key works")
        .split(FrameLimit::DEFAULT);
    assert!(o2.decode(&recorded).is_err());
    // (2) It exchanges its own ephemeral key with each recorded one and
    // derives keys for the recorded transcript: nothing opens.
    for their_eph in [mine.ephemeral, theirs.ephemeral] {
        let guess = EphemeralSecret::random_from_rng(OsRng)
            .diffie_hellman(&XPublic::from(their_eph.to_bytes()));
        for (a, b) in [(&theirs, &mine), (&mine, &theirs)] {
            let (_, mut o) = session_keys(&guess, a, b)
                .unwrap()
                .split(FrameLimit::DEFAULT);
            assert!(o.decode(&recorded).is_err());
        }
    }
    node.shutdown().await;
}
