//! State-sync snapshots on the wire: offers, manifests, chunks.
//!
//! A validator serves its latest two checkpoints (see
//! [`validator`](crate::validator)'s state sync). A snapshot's **body** is
//! the canonical encoding of a restorable [`Checkpoint`] (ledger,
//! marketplace state, commit frontier). It is cut into chunks of
//! `chunk_bytes`; the [`Manifest`] lists the chunks' digests, and the
//! snapshot's **root** is the digest of the manifest. The root is what
//! validators attest ([`SnapshotOffer`]): a syncing validator downloads
//! only a root that validators holding f + 1 of the stake offered, so at
//! least one honest validator holds that exact state. The manifest is
//! checked against the root, every chunk against its digest on arrival,
//! and the assembled body decodes to the checkpoint whose digests are
//! checked again at installation.
//!
//! Decoding untrusted bytes: every message has a hard size limit
//! ([`SyncMessage::decode`], [`MAX_SYNC_MESSAGE_BYTES`]); counts and sizes
//! inside are checked by [`Manifest::check`] and the fetcher.

use idlegrid_primitives::{DecodeError, Digest, Domain, Round, decode, encode};
use serde::{Deserialize, Serialize};

use crate::validator::Checkpoint;

/// Domain of a snapshot root (the manifest's digest).
pub const SNAPSHOT_ROOT_DOMAIN: Domain = Domain::new("idlegrid/node/snapshot-root");
/// Domain of a chunk digest.
pub const SNAPSHOT_CHUNK_DOMAIN: Domain = Domain::new("idlegrid/node/snapshot-chunk");
/// Bytes per chunk a validator serves.
pub const CHUNK_BYTES: u32 = 256 * 1024;
/// Largest chunk size a manifest may declare.
pub const MAX_CHUNK_BYTES: u32 = 1 << 20;
/// Largest snapshot body accepted (1 GiB).
pub const MAX_SNAPSHOT_BYTES: u64 = 1 << 30;
/// Most chunks a manifest may list.
pub const MAX_CHUNKS: usize = 1 << 16;
/// Most offers one status answer carries.
pub const MAX_OFFERS: usize = 2;
/// Largest encoded sync message: a full chunk or a full manifest, plus
/// framing.
pub const MAX_SYNC_MESSAGE_BYTES: usize = MAX_CHUNKS * 33 + MAX_CHUNK_BYTES as usize + 1024;

/// A checkpoint a validator can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SnapshotOffer {
    /// The commit index it is the state after.
    pub index: u64,
    /// That commit's leader round.
    pub round: Round,
    /// Its root (the manifest's digest).
    pub root: Digest,
}

/// The chunk list of a snapshot (its digest is the root).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The commit index.
    pub index: u64,
    /// That commit's leader round.
    pub round: Round,
    /// Body length.
    pub total_bytes: u64,
    /// Bytes per chunk (the last may be shorter).
    pub chunk_bytes: u32,
    /// Chunk digests under [`SNAPSHOT_CHUNK_DOMAIN`], in order.
    pub chunks: Vec<Digest>,
}

/// Why a manifest is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Its digest is not the root asked for.
    #[error("the manifest does not hash to the offered root")]
    Root,
    /// Sizes or counts out of bounds or inconsistent.
    #[error("manifest sizes are out of bounds or inconsistent: {0}")]
    Shape(&'static str),
}

impl Manifest {
    /// The manifest of `body` for the state after commit `index`.
    pub fn of(index: u64, round: Round, body: &[u8], chunk_bytes: u32) -> Self {
        assert!(chunk_bytes > 0 && chunk_bytes <= MAX_CHUNK_BYTES);
        let chunks = body
            .chunks(chunk_bytes as usize)
            .map(|c| Digest::hash(SNAPSHOT_CHUNK_DOMAIN, c))
            .collect();
        Self {
            index,
            round,
            total_bytes: body.len() as u64,
            chunk_bytes,
            chunks,
        }
    }

    /// The root: the manifest's digest.
    pub fn root(&self) -> Digest {
        Digest::of(SNAPSHOT_ROOT_DOMAIN, self)
    }

    /// The offer of this manifest.
    pub fn offer(&self) -> SnapshotOffer {
        SnapshotOffer {
            index: self.index,
            round: self.round,
            root: self.root(),
        }
    }

    /// Checks that it is `offer`'s manifest and that its sizes are bounded
    /// and consistent.
    pub fn check(&self, offer: &SnapshotOffer) -> Result<(), ManifestError> {
        if self.root() != offer.root || self.index != offer.index || self.round != offer.round {
            return Err(ManifestError::Root);
        }
        if self.chunk_bytes == 0 || self.chunk_bytes > MAX_CHUNK_BYTES {
            return Err(ManifestError::Shape("chunk size"));
        }
        if self.total_bytes == 0 || self.total_bytes > MAX_SNAPSHOT_BYTES {
            return Err(ManifestError::Shape("total size"));
        }
        let want = self.total_bytes.div_ceil(u64::from(self.chunk_bytes));
        if self.chunks.len() > MAX_CHUNKS || self.chunks.len() as u64 != want {
            return Err(ManifestError::Shape("chunk count"));
        }
        Ok(())
    }

    /// The length chunk `i` must have.
    pub fn chunk_len(&self, i: u32) -> usize {
        let start = u64::from(i) * u64::from(self.chunk_bytes);
        (self.total_bytes - start).min(u64::from(self.chunk_bytes)) as usize
    }
}

/// State-sync messages between validators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SyncMessage {
    /// "Which snapshots can you serve?"
    StatusRequest,
    /// The snapshots the sender serves (at most [`MAX_OFFERS`]).
    Status(Vec<SnapshotOffer>),
    /// "Send me the manifest of this root."
    ManifestRequest {
        /// The root.
        root: Digest,
    },
    /// A manifest.
    Manifest(Manifest),
    /// "Send me chunk `chunk` of this root."
    ChunkRequest {
        /// The root.
        root: Digest,
        /// Chunk number.
        chunk: u32,
    },
    /// A chunk.
    Chunk {
        /// The root.
        root: Digest,
        /// Chunk number.
        chunk: u32,
        /// Its bytes.
        bytes: Vec<u8>,
    },
}

impl SyncMessage {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }
    /// Decodes untrusted bytes (at most [`MAX_SYNC_MESSAGE_BYTES`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode(bytes, MAX_SYNC_MESSAGE_BYTES)
    }
}

/// A snapshot a validator serves: its manifest and body.
#[derive(Debug, Clone)]
pub struct ServedSnapshot {
    /// The manifest.
    pub manifest: Manifest,
    /// The body (a restorable checkpoint's encoding).
    pub body: Vec<u8>,
}

impl ServedSnapshot {
    /// Cuts a restorable checkpoint into a served snapshot.
    ///
    /// # Panics
    /// If `cp` is not restorable (a caller bug).
    pub fn of(cp: &Checkpoint, chunk_bytes: u32) -> Self {
        let frontier = cp.frontier.as_ref().filter(|_| cp.restorable());
        let round = frontier
            .expect("only restorable checkpoints are served")
            .round;
        let body = encode(cp);
        Self {
            manifest: Manifest::of(cp.index, round, &body, chunk_bytes),
            body,
        }
    }

    /// Chunk `i`'s bytes.
    pub fn chunk(&self, i: u32) -> Option<&[u8]> {
        self.body
            .chunks(self.manifest.chunk_bytes as usize)
            .nth(i as usize)
    }
}

/// Decodes an assembled body (untrusted until checked against `offer`).
pub fn decode_body(body: &[u8], offer: &SnapshotOffer) -> Result<Checkpoint, BodyError> {
    let cp: Checkpoint = decode(body, MAX_SNAPSHOT_BYTES as usize)?;
    let round = cp.frontier.as_ref().map(|f| f.round);
    if !cp.restorable() || cp.index != offer.index || round != Some(offer.round) {
        return Err(BodyError::Mismatch);
    }
    Ok(cp)
}

/// Why an assembled body is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// It does not decode.
    #[error("snapshot body does not decode: {0}")]
    Decode(#[from] DecodeError),
    /// It is not the restorable checkpoint of the offered index and round.
    #[error("snapshot body is not the offered checkpoint")]
    Mismatch,
}
