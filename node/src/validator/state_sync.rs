//! State sync: a validator too far behind its peers' DAG window (or with an
//! empty store) installs a snapshot its peers attest, then rejoins
//! consensus.
//!
//! # Who attests what
//!
//! Every durable validator serves its latest two checkpoints
//! (`Serving`) and answers a [`SyncMessage::StatusRequest`] with their
//! [`SnapshotOffer`]s (commit index, leader round, root). A root is the
//! digest of the snapshot's manifest, which lists its chunks' digests; the
//! body is the canonical encoding of the checkpoint (ledger, marketplace
//! state, commit frontier), equal at every honest validator after the same
//! commit. The fetcher takes the highest index whose root validators
//! holding **f + 1 of the stake** offered — at least one of them honest —
//! and only if its round is more than `gc_depth` rounds above its own last
//! commit (closer than that, the ordinary block fetch catches up).
//!
//! # Fetching
//!
//! `StateSync` is a sans-IO state machine fed `now`: it probes when the
//! node made no commit for `stall`, asks one attester for the manifest
//! (checked against the root), then requests chunks from the attesters in
//! turn with at most `window` in flight, checks each against its digest on
//! arrival and appends them in order. Memory: the body (at most
//! [`MAX_SNAPSHOT_BYTES`](crate::snapshot::MAX_SNAPSHOT_BYTES)) plus
//! `window` chunks. A peer that sends a manifest or a chunk that does not
//! match, or an oversize one, is dropped for this sync with a typed
//! [`SyncError`]; its requests go to another attester. An unanswered
//! request is sent again to the next attester after `timeout`. With no
//! attester left, the sync starts over from a new probe.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use idlegrid_dag_ledger::consensus::Committee;
use idlegrid_primitives::{Digest, Duration, NodeId, Round, Timestamp};

use crate::snapshot::{
    BodyError, CHUNK_BYTES, MAX_OFFERS, Manifest, ManifestError, SNAPSHOT_CHUNK_DOMAIN,
    ServedSnapshot, SnapshotOffer, SyncMessage, decode_body,
};
use crate::validator::Checkpoint;

/// Timing and window of a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncConfig {
    /// Probe peers after this long without a commit.
    pub stall: Duration,
    /// Resend an unanswered request (to another peer) after this long.
    pub timeout: Duration,
    /// Chunks in flight at most.
    pub window: usize,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            stall: Duration::from_millis(2_000),
            timeout: Duration::from_millis(1_000),
            window: 4,
        }
    }
}

/// Why a peer was dropped from a sync.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// Its manifest is not the attested one.
    #[error("manifest: {0}")]
    Manifest(#[from] ManifestError),
    /// A chunk does not hash to the manifest's digest.
    #[error("chunk {0} does not match the manifest")]
    WrongChunk(u32),
    /// A message larger than the protocol allows.
    #[error("oversize {what}: {got} > {max}")]
    Oversize {
        /// What.
        what: &'static str,
        /// Its size.
        got: usize,
        /// The bound.
        max: usize,
    },
    /// The assembled body is not the attested checkpoint (only possible if
    /// f + 1 attesters lied).
    #[error("assembled snapshot: {0}")]
    Body(#[from] BodyError),
    /// The checkpoint decoded but could not be installed (only possible if
    /// f + 1 attesters lied).
    #[error("installing the snapshot: {0}")]
    Install(String),
}

/// What the node does after a sync input.
#[derive(Debug, Default)]
pub(super) struct SyncOutput {
    /// Messages to send.
    pub send: Vec<(NodeId, SyncMessage)>,
    /// Peers dropped, and why.
    pub dropped: Vec<(NodeId, SyncError)>,
    /// A sync began towards this offer.
    pub started: Option<SnapshotOffer>,
    /// The checkpoint to install.
    pub done: Option<Checkpoint>,
    /// The assembled snapshot was refused; the sync starts over.
    pub failed: Option<SyncError>,
}

/// The serving side: the latest two restorable checkpoints.
#[derive(Debug, Default)]
pub(super) struct Serving {
    served: VecDeque<Arc<ServedSnapshot>>,
}

impl Serving {
    /// What serving `cp` (restorable) takes: its encoding, cut in chunks.
    pub(super) fn cut(cp: &Checkpoint) -> ServedSnapshot {
        ServedSnapshot::of(cp, CHUNK_BYTES)
    }

    /// Serves `snapshot` (see [`Serving::cut`]) from now on, instead of the
    /// oldest.
    pub(super) fn offer(&mut self, snapshot: Arc<ServedSnapshot>) {
        if self.served.len() >= MAX_OFFERS {
            self.served.pop_front();
        }
        self.served.push_back(snapshot);
    }

    /// The answer to a request, if any.
    pub(super) fn answer(&self, msg: &SyncMessage) -> Option<SyncMessage> {
        let find = |root: &Digest| self.served.iter().find(|s| s.manifest.root() == *root);
        match msg {
            SyncMessage::StatusRequest => Some(SyncMessage::Status(
                self.served.iter().map(|s| s.manifest.offer()).collect(),
            )),
            SyncMessage::ManifestRequest { root } => {
                find(root).map(|s| SyncMessage::Manifest(s.manifest.clone()))
            }
            SyncMessage::ChunkRequest { root, chunk } => {
                let s = find(root)?;
                let bytes = s.chunk(*chunk)?.to_vec();
                Some(SyncMessage::Chunk {
                    root: *root,
                    chunk: *chunk,
                    bytes,
                })
            }
            _ => None,
        }
    }
}

/// A download in progress.
#[derive(Debug)]
struct Download {
    manifest: Manifest,
    body: Vec<u8>,
    /// Verified chunks above `body`'s end.
    ahead: BTreeMap<u32, Vec<u8>>,
    /// Chunk → (asked peer, deadline).
    in_flight: BTreeMap<u32, (NodeId, Timestamp)>,
    next_request: u32,
}

impl Download {
    fn appended(&self) -> u32 {
        (self.body.len() as u64).div_ceil(u64::from(self.manifest.chunk_bytes)) as u32
    }
}

#[derive(Debug)]
enum Phase {
    Idle,
    Probing {
        until: Timestamp,
        offers: BTreeMap<NodeId, Vec<SnapshotOffer>>,
    },
    Manifest {
        asked: NodeId,
        until: Timestamp,
    },
    Chunks(Box<Download>),
}

/// The fetching side (see the module docs).
#[derive(Debug)]
pub(super) struct StateSync {
    cfg: SyncConfig,
    gc_depth: u64,
    phase: Phase,
    /// The offer being fetched and the peers that attested it.
    target: Option<(SnapshotOffer, Vec<NodeId>)>,
    dropped: BTreeSet<NodeId>,
    /// (last commit index seen, when it changed).
    progress: (Option<u64>, Timestamp),
    turn: usize,
}

impl StateSync {
    pub(super) fn new(cfg: SyncConfig, gc_depth: u64) -> Self {
        Self {
            cfg,
            gc_depth,
            phase: Phase::Idle,
            target: None,
            dropped: BTreeSet::new(),
            progress: (None, Timestamp::ZERO),
            turn: 0,
        }
    }

    /// True while a sync is under way (probing or fetching).
    pub(super) fn active(&self) -> bool {
        !matches!(self.phase, Phase::Idle)
    }

    /// The next deadline.
    pub(super) fn deadline(&self) -> Timestamp {
        match &self.phase {
            Phase::Idle => self.progress.1 + self.cfg.stall,
            Phase::Probing { until, .. } | Phase::Manifest { until, .. } => *until,
            Phase::Chunks(d) => d
                .in_flight
                .values()
                .map(|(_, t)| *t)
                .min()
                .unwrap_or(self.progress.1 + self.cfg.timeout),
        }
    }

    /// Time passes; `index` is the node's last commit.
    pub(super) fn tick(
        &mut self,
        now: Timestamp,
        index: Option<u64>,
        peers: &[NodeId],
    ) -> SyncOutput {
        let mut out = SyncOutput::default();
        if index != self.progress.0 {
            self.progress = (index, now);
        }
        match &mut self.phase {
            Phase::Idle if now >= self.progress.1 + self.cfg.stall => {
                self.progress.1 = now;
                self.dropped.clear();
                self.phase = Phase::Probing {
                    until: now + self.cfg.timeout,
                    offers: BTreeMap::new(),
                };
                out.send = peers
                    .iter()
                    .map(|p| (*p, SyncMessage::StatusRequest))
                    .collect();
            }
            Phase::Probing { until, .. } if now >= *until => self.phase = Phase::Idle,
            Phase::Manifest { until, .. } if now >= *until => self.ask_manifest(now, &mut out),
            Phase::Chunks(_) => self.request_chunks(now, &mut out),
            _ => {}
        }
        out
    }

    /// A sync message from a peer (the node checked it is a committee
    /// member). `round` is the round of the node's last commit.
    pub(super) fn handle(
        &mut self,
        now: Timestamp,
        from: NodeId,
        msg: SyncMessage,
        (committee, round): (&Committee, Round),
    ) -> SyncOutput {
        let mut out = SyncOutput::default();
        if self.dropped.contains(&from) {
            return out;
        }
        match msg {
            SyncMessage::Status(offers) => {
                self.on_status(now, from, offers, (committee, round), &mut out)
            }
            SyncMessage::Manifest(m) => self.on_manifest(now, from, m, &mut out),
            SyncMessage::Chunk { root, chunk, bytes } => {
                self.on_chunk(now, from, (root, chunk, bytes), &mut out)
            }
            _ => {}
        }
        out
    }

    fn drop_peer(&mut self, peer: NodeId, e: SyncError, out: &mut SyncOutput) {
        self.dropped.insert(peer);
        out.dropped.push((peer, e));
    }

    fn offer(&self) -> Option<SnapshotOffer> {
        self.target.as_ref().map(|(o, _)| *o)
    }

    /// The attesters not dropped, the next one first.
    fn next_attester(&mut self) -> Option<NodeId> {
        let (_, attesters) = self.target.as_ref()?;
        let live: Vec<NodeId> = attesters
            .iter()
            .filter(|a| !self.dropped.contains(a))
            .copied()
            .collect();
        self.turn = self.turn.wrapping_add(1);
        live.get(self.turn % live.len().max(1)).copied()
    }

    fn on_status(
        &mut self,
        now: Timestamp,
        from: NodeId,
        offers: Vec<SnapshotOffer>,
        (committee, round): (&Committee, Round),
        out: &mut SyncOutput,
    ) {
        if offers.len() > MAX_OFFERS {
            let e = SyncError::Oversize {
                what: "status",
                got: offers.len(),
                max: MAX_OFFERS,
            };
            return self.drop_peer(from, e, out);
        }
        let Phase::Probing { offers: all, .. } = &mut self.phase else {
            return;
        };
        all.insert(from, offers);
        let Some((offer, attesters)) = best_offer(all, committee) else {
            return;
        };
        if offer.round.get() <= round.get() + self.gc_depth {
            return;
        }
        self.target = Some((offer, attesters));
        out.started = Some(offer);
        self.ask_manifest(now, out);
    }

    fn ask_manifest(&mut self, now: Timestamp, out: &mut SyncOutput) {
        let (Some(peer), Some(offer)) = (self.next_attester(), self.offer()) else {
            return self.restart(now);
        };
        out.send
            .push((peer, SyncMessage::ManifestRequest { root: offer.root }));
        self.phase = Phase::Manifest {
            asked: peer,
            until: now + self.cfg.timeout,
        };
    }

    fn on_manifest(&mut self, now: Timestamp, from: NodeId, m: Manifest, out: &mut SyncOutput) {
        let Phase::Manifest { asked, .. } = self.phase else {
            return;
        };
        let Some(offer) = self.offer() else {
            return;
        };
        if asked != from {
            return;
        }
        if let Err(e) = m.check(&offer) {
            self.drop_peer(from, e.into(), out);
            return self.ask_manifest(now, out);
        }
        self.phase = Phase::Chunks(Box::new(Download {
            body: Vec::with_capacity(m.total_bytes as usize),
            manifest: m,
            ahead: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            next_request: 0,
        }));
        self.request_chunks(now, out);
    }

    /// Re-sends overdue requests and fills the window.
    fn request_chunks(&mut self, now: Timestamp, out: &mut SyncOutput) {
        let Some(offer) = self.offer() else {
            return;
        };
        let Phase::Chunks(d) = &mut self.phase else {
            return;
        };
        let overdue: Vec<u32> = d
            .in_flight
            .iter()
            .filter(|(_, (p, t))| *t <= now || self.dropped.contains(p))
            .map(|(c, _)| *c)
            .collect();
        let total = d.manifest.chunks.len() as u32;
        let mut wanted = overdue;
        while d.in_flight.len() + d.ahead.len() + wanted.len() < self.cfg.window.max(1)
            && d.next_request < total
        {
            wanted.push(d.next_request);
            d.next_request += 1;
        }
        for c in wanted {
            let Some(peer) = self.next_attester() else {
                return self.restart(now);
            };
            let Phase::Chunks(d) = &mut self.phase else {
                return;
            };
            d.in_flight.insert(c, (peer, now + self.cfg.timeout));
            out.send.push((
                peer,
                SyncMessage::ChunkRequest {
                    root: offer.root,
                    chunk: c,
                },
            ));
        }
    }

    fn on_chunk(
        &mut self,
        now: Timestamp,
        from: NodeId,
        (root, chunk, bytes): (Digest, u32, Vec<u8>),
        out: &mut SyncOutput,
    ) {
        let Some(offer) = self.offer() else {
            return;
        };
        let Phase::Chunks(d) = &mut self.phase else {
            return;
        };
        if root != offer.root || d.in_flight.get(&chunk).is_none_or(|(p, _)| *p != from) {
            return;
        }
        let want = d.manifest.chunk_len(chunk);
        let err = if bytes.len() > want {
            Some(SyncError::Oversize {
                what: "chunk",
                got: bytes.len(),
                max: want,
            })
        } else if bytes.len() < want
            || Digest::hash(SNAPSHOT_CHUNK_DOMAIN, &bytes) != d.manifest.chunks[chunk as usize]
        {
            Some(SyncError::WrongChunk(chunk))
        } else {
            None
        };
        if let Some(e) = err {
            self.drop_peer(from, e, out);
            return self.request_chunks(now, out);
        }
        d.in_flight.remove(&chunk);
        d.ahead.insert(chunk, bytes);
        while let Some(b) = d.ahead.remove(&d.appended()) {
            d.body.extend_from_slice(&b);
        }
        if d.body.len() as u64 == d.manifest.total_bytes {
            return self.finish(now, out);
        }
        self.request_chunks(now, out);
    }

    fn finish(&mut self, now: Timestamp, out: &mut SyncOutput) {
        let phase = std::mem::replace(&mut self.phase, Phase::Idle);
        let (Phase::Chunks(d), Some((offer, _))) = (phase, self.target.take()) else {
            return;
        };
        self.progress.1 = now;
        match decode_body(&d.body, &offer) {
            Ok(cp) => out.done = Some(cp),
            Err(e) => out.failed = Some(e.into()),
        }
    }

    /// No attester left: start over from a probe after `stall`.
    fn restart(&mut self, now: Timestamp) {
        self.phase = Phase::Idle;
        self.target = None;
        self.progress.1 = now;
    }
}

/// The highest-index offer attested by validators holding f + 1 of the
/// stake, with its attesters.
fn best_offer(
    offers: &BTreeMap<NodeId, Vec<SnapshotOffer>>,
    committee: &Committee,
) -> Option<(SnapshotOffer, Vec<NodeId>)> {
    let mut by: BTreeMap<SnapshotOffer, Vec<NodeId>> = BTreeMap::new();
    for (peer, list) in offers {
        for o in list {
            let v = by.entry(*o).or_default();
            if !v.contains(peer) {
                v.push(*peer);
            }
        }
    }
    by.into_iter().rev().find(|(_, peers)| {
        let stake: u64 = peers
            .iter()
            .filter_map(|p| committee.index_of(p))
            .map(|i| committee.stake(i))
            .sum();
        committee.is_validity(stake)
    })
}

#[cfg(test)]
mod tests {
    use idlegrid_dag_ledger::consensus::{AuthorityIndex, BlockRef, CommittedSubDag};
    use idlegrid_dag_ledger::ledger::{Genesis, Ledger, Params};
    use idlegrid_primitives::{Amount, Keypair, Seed};

    use super::*;

    /// How peer 1 lies (peers 2 and 3 are honest; f = 1 of 4).
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Liar {
        Honest,
        WrongChunk,
        OversizeChunk,
        ShortChunk,
        WrongManifest,
        TooManyOffers,
        /// Offers a fake snapshot far ahead (it alone attests it).
        FakeRoot,
    }

    fn keys() -> Vec<Keypair> {
        (0..4)
            .map(|i| Keypair::from_seed(&Seed::from_u64(i)))
            .collect()
    }

    /// A restorable checkpoint after commit 40 (round 90) whose body is
    /// three chunks long.
    fn checkpoint() -> Checkpoint {
        let k = keys();
        let genesis = Genesis {
            balances: vec![(k[0].account_id(), Amount::new(1_000))],
            stakes: vec![],
            params: Params::default(),
        };
        let ledger = Ledger::new(genesis).unwrap();
        let leader = BlockRef {
            round: Round::new(90),
            author: AuthorityIndex::new(1),
            digest: Digest::from_bytes([7; 32]),
        };
        Checkpoint {
            index: 40,
            state_digest: ledger.state_digest(),
            ledger: ledger.snapshot(),
            app: Some((0..600_000u32).map(|i| i as u8).collect()),
            frontier: Some(CommittedSubDag {
                index: 40,
                leader,
                leader_node: k[1].node_id(),
                round: Round::new(90),
                timestamp: Timestamp::from_millis(9_000),
                blocks: vec![leader],
                transactions: vec![],
                digest: Digest::from_bytes([3; 32]),
            }),
        }
    }

    /// Peer `from`'s answer to `msg`, lying as `liar` if it is peer 1.
    fn answer(
        serving: &Serving,
        liar: Liar,
        is_liar: bool,
        msg: &SyncMessage,
    ) -> Option<SyncMessage> {
        let mut a = serving.answer(msg)?;
        if !is_liar {
            return Some(a);
        }
        match (&mut a, liar) {
            (SyncMessage::Chunk { bytes, .. }, Liar::WrongChunk) => bytes[0] ^= 1,
            (SyncMessage::Chunk { bytes, .. }, Liar::OversizeChunk) => bytes.push(0),
            (SyncMessage::Chunk { bytes, .. }, Liar::ShortChunk) => {
                bytes.pop();
            }
            (SyncMessage::Manifest(m), Liar::WrongManifest) => m.chunks.swap(0, 1),
            (SyncMessage::Status(offers), Liar::TooManyOffers) => {
                offers.extend([offers[0]; 2]);
            }
            (SyncMessage::Status(offers), Liar::FakeRoot) => offers.push(SnapshotOffer {
                index: 1_000,
                round: Round::new(5_000),
                root: Digest::from_bytes([9; 32]),
            }),
            _ => {}
        }
        Some(a)
    }

    /// Runs a sync of node 0 against peers 1..=3 until it is done or
    /// quiet; returns the dropped peers and the fetched checkpoint.
    fn sync_with(
        liar: Liar,
    ) -> (
        Vec<(usize, SyncError)>,
        Option<Checkpoint>,
        Option<SnapshotOffer>,
    ) {
        let k = keys();
        let ids: Vec<NodeId> = k.iter().map(Keypair::node_id).collect();
        let committee = Committee::equal(ids.iter().copied()).unwrap();
        let mut serving = Serving::default();
        serving.offer(Arc::new(Serving::cut(&checkpoint())));
        let cfg = SyncConfig::default();
        let mut sync = StateSync::new(cfg, 50);
        let mut now = Timestamp::ZERO + cfg.stall;
        let mut out = sync.tick(now, None, &ids[1..]);
        let (mut dropped, mut done, mut started) = (Vec::new(), None, None);
        for _ in 0..200 {
            let peer = |n: &NodeId| ids.iter().position(|i| i == n).unwrap();
            dropped.extend(out.dropped.drain(..).map(|(n, e)| (peer(&n), e)));
            started = started.or(out.started);
            if let Some(cp) = out.done.take() {
                done = Some(cp);
                break;
            }
            let mut next = SyncOutput::default();
            for (to, msg) in std::mem::take(&mut out.send) {
                let Some(a) = answer(&serving, liar, peer(&to) == 1, &msg) else {
                    continue;
                };
                let o = sync.handle(now, to, a, (&committee, Round::new(10)));
                next.send.extend(o.send);
                next.dropped.extend(o.dropped);
                next.started = next.started.or(o.started);
                next.done = next.done.or(o.done);
            }
            if next.send.is_empty() && next.done.is_none() && next.dropped.is_empty() {
                now = sync.deadline();
                next = sync.tick(now, None, &ids[1..]);
            }
            out = next;
        }
        (dropped, done, started)
    }

    #[test]
    fn an_attested_snapshot_is_fetched_in_chunks_and_matches() {
        let (dropped, done, started) = sync_with(Liar::Honest);
        assert!(dropped.is_empty());
        assert_eq!(started.map(|o| o.index), Some(40));
        assert_eq!(done, Some(checkpoint()));
        assert_eq!(
            ServedSnapshot::of(&checkpoint(), CHUNK_BYTES)
                .manifest
                .chunks
                .len(),
            3
        );
    }

    #[test]
    fn a_peer_sending_a_wrong_chunk_is_dropped_and_the_sync_goes_on() {
        let (dropped, done, _) = sync_with(Liar::WrongChunk);
        assert!(
            matches!(dropped[..], [(1, SyncError::WrongChunk(_))]),
            "{dropped:?}"
        );
        assert_eq!(done, Some(checkpoint()));
    }

    #[test]
    fn a_peer_sending_a_short_chunk_is_dropped() {
        let (dropped, done, _) = sync_with(Liar::ShortChunk);
        assert!(
            matches!(dropped[..], [(1, SyncError::WrongChunk(_))]),
            "{dropped:?}"
        );
        assert_eq!(done, Some(checkpoint()));
    }

    #[test]
    fn a_peer_sending_an_oversize_chunk_is_dropped() {
        let (dropped, done, _) = sync_with(Liar::OversizeChunk);
        assert!(
            matches!(
                dropped[..],
                [(1, SyncError::Oversize { what: "chunk", .. })]
            ),
            "{dropped:?}"
        );
        assert_eq!(done, Some(checkpoint()));
    }

    #[test]
    fn a_peer_sending_a_manifest_that_does_not_match_the_root_is_dropped() {
        let (dropped, done, _) = sync_with(Liar::WrongManifest);
        assert!(
            matches!(dropped[..], [(1, SyncError::Manifest(ManifestError::Root))]),
            "{dropped:?}"
        );
        assert_eq!(done, Some(checkpoint()));
    }

    #[test]
    fn a_peer_offering_too_many_snapshots_is_dropped() {
        let (dropped, done, _) = sync_with(Liar::TooManyOffers);
        assert!(
            matches!(
                dropped[..],
                [(1, SyncError::Oversize { what: "status", .. })]
            ),
            "{dropped:?}"
        );
        assert_eq!(done, Some(checkpoint()));
    }

    #[test]
    fn a_snapshot_only_one_peer_offers_is_never_fetched() {
        let (dropped, done, started) = sync_with(Liar::FakeRoot);
        assert!(dropped.is_empty());
        assert_eq!(started.map(|o| o.index), Some(40), "the f + 1 attested one");
        assert_eq!(done, Some(checkpoint()));
    }

    #[test]
    fn a_snapshot_within_the_dag_window_is_not_fetched() {
        let k = keys();
        let ids: Vec<NodeId> = k.iter().map(Keypair::node_id).collect();
        let committee = Committee::equal(ids.iter().copied()).unwrap();
        let mut serving = Serving::default();
        serving.offer(Arc::new(Serving::cut(&checkpoint())));
        let mut sync = StateSync::new(SyncConfig::default(), 50);
        let now = Timestamp::ZERO + SyncConfig::default().stall;
        let _ = sync.tick(now, None, &ids[1..]);
        for p in &ids[1..] {
            let status = serving.answer(&SyncMessage::StatusRequest).unwrap();
            // Our last commit is at round 60: 90 is within 50 rounds.
            let o = sync.handle(now, *p, status, (&committee, Round::new(60)));
            assert!(o.started.is_none() && o.send.is_empty());
        }
    }
}
