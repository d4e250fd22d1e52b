//! Shared test helpers: keys, a small gossip machine, TCP clusters.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration as StdDuration;

use idlegrid_primitives::{Duration, Keypair, Machine, NodeId, Seed, Timestamp, Transmit};
use idlegrid_transport::{AddressBook, TcpConfig, TcpTransport};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

/// Generous guard for anything that should take milliseconds.
pub const GUARD: StdDuration = StdDuration::from_secs(20);

pub fn keypair(i: u64) -> Keypair {
    Keypair::from_seed(&Seed::from_u64(1000 + i))
}

/// `n` keypairs sorted by node id (index 0 dials everyone).
pub fn keypairs(n: u64) -> Vec<Keypair> {
    let mut v: Vec<_> = (0..n).map(keypair).collect();
    v.sort_by_key(|k| k.node_id());
    v
}

/// Fails the test instead of hanging.
pub async fn guard<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Timers short enough for tests, still generous against CI jitter.
pub fn test_config() -> TcpConfig {
    TcpConfig {
        keepalive_interval: StdDuration::from_millis(200),
        idle_timeout: StdDuration::from_secs(5),
        backoff_min: StdDuration::from_millis(20),
        backoff_max: StdDuration::from_millis(200),
        ..TcpConfig::default()
    }
}

/// Binds one listener per key on 127.0.0.1 (ephemeral ports) and returns
/// them with the address book naming them all.
pub async fn listeners(keys: &[Keypair]) -> (Vec<TcpListener>, AddressBook) {
    let mut ls = Vec::new();
    let mut book = AddressBook::new();
    for k in keys {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        book.insert(k.node_id(), l.local_addr().unwrap());
        ls.push(l);
    }
    (ls, book)
}

/// A TCP cluster of `keys.len()` nodes on loopback.
pub async fn tcp_cluster(keys: &[Keypair], config: TcpConfig) -> (Vec<TcpTransport>, AddressBook) {
    let (ls, book) = listeners(keys).await;
    let ts = keys
        .iter()
        .zip(ls)
        .map(|(k, l)| {
            TcpTransport::from_listener(k.clone(), l, book.clone(), config.clone()).unwrap()
        })
        .collect();
    (ts, book)
}

pub fn addr_of(book: &AddressBook, k: &Keypair) -> SocketAddr {
    book.get(&k.node_id()).unwrap()
}

/// What the gossip machine sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// The values this node knows, by origin.
    Values(Vec<(NodeId, u64)>),
}

/// What the gossip machine reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A value from `origin` was learned.
    Learned(NodeId),
    /// All `n` values are known; their sum.
    Complete(u64),
}

/// A reliable-broadcast counter: every node contributes one value; on each
/// timer tick a node re-broadcasts every value it knows (so loss and late
/// connections heal), and reports `Complete(sum)` once it knows all `n`.
/// Ticks are bounded so that a run always ends.
#[derive(Debug)]
pub struct Gossip {
    n: usize,
    known: BTreeMap<NodeId, u64>,
    out: VecDeque<Transmit<Msg>>,
    events: VecDeque<Event>,
    next_tick: Timestamp,
    tick: Duration,
    ticks_left: u32,
    complete: bool,
    /// Timestamps at which timeouts fired, for the runner's tests.
    pub fired_at: Vec<(Timestamp, Timestamp)>,
}

impl Gossip {
    pub fn new(me: NodeId, value: u64, n: usize, tick: Duration, max_ticks: u32) -> Self {
        Self {
            n,
            known: BTreeMap::from([(me, value)]),
            out: VecDeque::new(),
            events: VecDeque::new(),
            next_tick: Timestamp::ZERO,
            tick,
            ticks_left: max_ticks,
            complete: false,
            fired_at: Vec::new(),
        }
    }

    fn check_complete(&mut self) {
        if !self.complete && self.known.len() == self.n {
            self.complete = true;
            self.events
                .push_back(Event::Complete(self.known.values().sum()));
        }
    }
}

impl Machine for Gossip {
    type Message = Msg;
    type Event = Event;

    fn handle_message(&mut self, _now: Timestamp, _from: NodeId, msg: Msg) {
        let Msg::Values(vs) = msg;
        for (origin, v) in vs {
            if self.known.insert(origin, v).is_none() {
                self.events.push_back(Event::Learned(origin));
            }
        }
        self.check_complete();
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        assert!(now >= self.next_tick, "fired early");
        self.fired_at.push((self.next_tick, now));
        self.ticks_left = self.ticks_left.saturating_sub(1);
        self.next_tick = now + self.tick;
        let vs = self.known.iter().map(|(k, v)| (*k, *v)).collect();
        self.out.push_back(Transmit::broadcast(Msg::Values(vs)));
        self.check_complete();
    }

    fn poll_transmit(&mut self) -> Option<Transmit<Msg>> {
        self.out.pop_front()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        (self.ticks_left > 0).then_some(self.next_tick)
    }
}

// ---- TCP helpers: waiting, delivery, and a hand-rolled client ----

use idlegrid_transport::frame::{Auth, EphemeralKey, HEADER_LEN, Hello, Nonce};
use idlegrid_transport::session::{Opener, Sealer, SessionKeys};
use idlegrid_transport::tcp::{auth_transcript, session_keys};
use idlegrid_transport::{
    Envelope, FrameLimit, HANDSHAKE_DOMAIN, Transport, decode_frame_exact, encode_frame,
};
use rand::rngs::OsRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use x25519_dalek::{EphemeralSecret, PublicKey as XPublic};

/// Waits (bounded) until `cond` holds.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    guard(what, async {
        while !cond() {
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
    })
    .await;
}

/// Sends `msg` every 50 ms until `to` receives a message from `from`.
pub async fn deliver_eventually(from: &TcpTransport, to: &TcpTransport, msg: &[u8]) {
    guard("delivery", async {
        loop {
            let _ = from.send(to.local_id(), msg.to_vec()).await;
            if let Ok(r) = tokio::time::timeout(StdDuration::from_millis(50), to.recv()).await {
                assert_eq!(r.unwrap(), (from.local_id(), msg.to_vec()));
                return;
            }
        }
    })
    .await;
}

pub async fn write_env(s: &mut TcpStream, env: &Envelope) {
    s.write_all(&encode_frame(env, FrameLimit::DEFAULT).unwrap())
        .await
        .unwrap();
}

/// Reads one clear frame, or `None` if the node closed the connection.
pub async fn read_env(s: &mut TcpStream) -> Option<Envelope> {
    let mut h = [0u8; HEADER_LEN];
    s.read_exact(&mut h).await.ok()?;
    let len = u32::from_le_bytes([h[2], h[3], h[4], h[5]]) as usize;
    let mut frame = h.to_vec();
    frame.resize(HEADER_LEN + len, 0);
    s.read_exact(&mut frame[HEADER_LEN..]).await.ok()?;
    Some(decode_frame_exact(&frame, FrameLimit::DEFAULT).unwrap())
}

/// True once the node has closed the connection (EOF or reset).
pub async fn closed_by_node(s: &mut TcpStream) -> bool {
    guard("node closes the connection", async {
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {} // keepalive pings
            }
        }
    })
    .await
}

/// A hand-rolled session: the stream and our halves of the session keys.
pub struct RawSession {
    pub stream: TcpStream,
    pub sealer: Sealer,
    pub opener: Opener,
}

impl RawSession {
    /// Seals and writes one data frame.
    pub async fn send_data(&mut self, payload: &[u8]) {
        let f = self
            .sealer
            .seal_frame(idlegrid_transport::session::SealKind::Data, payload)
            .unwrap();
        self.stream.write_all(&f).await.unwrap();
    }
}

/// A hand-rolled client: claims `claim`, signs with `signer`, completes the
/// key exchange. Panics unless the node answered with its `Auth`.
pub async fn raw_handshake(
    node: &TcpTransport,
    claim: NodeId,
    signer: &Keypair,
    nonce: u8,
) -> RawSession {
    let (stream, keys) = raw_handshake_inner(node, claim, signer, nonce).await;
    let keys = keys.expect("the node answered with its Auth");
    let (sealer, opener) = keys.split(FrameLimit::DEFAULT);
    RawSession {
        stream,
        sealer,
        opener,
    }
}

/// As [`raw_handshake`]; the keys are `None` if the node did not answer
/// with its `Hello` and `Auth` (it does not to an unknown identity).
pub async fn raw_handshake_inner(
    node: &TcpTransport,
    claim: NodeId,
    signer: &Keypair,
    nonce: u8,
) -> (TcpStream, Option<SessionKeys>) {
    let mut s = TcpStream::connect(node.local_addr()).await.unwrap();
    let secret = EphemeralSecret::random_from_rng(OsRng);
    let mine = Hello {
        node: claim,
        nonce: Nonce::from_bytes([nonce; 32]),
        ephemeral: EphemeralKey::from_bytes(XPublic::from(&secret).to_bytes()),
    };
    write_env(&mut s, &Envelope::Hello(mine)).await;
    let Some(Envelope::Hello(theirs)) = read_env(&mut s).await else {
        return (s, None);
    };
    assert_eq!(theirs.node, node.local_id());
    let signature = signer.sign(HANDSHAKE_DOMAIN, &auth_transcript(&mine, &theirs));
    // The node may already have hung up: ignore errors.
    let frame = encode_frame(&Envelope::Auth(Auth { signature }), FrameLimit::DEFAULT).unwrap();
    let _ = s.write_all(&frame).await;
    let signed = matches!(read_env(&mut s).await, Some(Envelope::Auth(_)));
    let shared = secret.diffie_hellman(&XPublic::from(theirs.ephemeral.to_bytes()));
    let keys = session_keys(&shared, &mine, &theirs).unwrap();
    (s, signed.then_some(keys))
}
