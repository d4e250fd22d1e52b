//! # idlegrid-store
//!
//! The embedded store of a real validator process: the node crate's
//! [`NodeStore`] interface over [redb](https://docs.rs/redb) — pure Rust,
//! ACID transactions, crash-safe (copy-on-write B-trees with checksummed
//! commits), a stable file format.
//!
//! The validator decides what is durable and when (see
//! [`idlegrid_node::validator::ValidatorNode::with_persistence`]); this
//! crate only performs it:
//!
//! - [`RedbStore::write`] buffers requests in memory, in order;
//! - [`RedbStore::sync`] applies every buffered request in **one** redb
//!   write transaction committed with `Durability::Immediate` (an fsync):
//!   group commit, so a burst of received blocks and our own block cost
//!   one sync. A crash before the commit loses the whole batch, never part
//!   of it — and nothing that depends on the batch has left the process;
//! - [`RedbStore::load`] reads what is durable for
//!   [`ValidatorNode::recover`](idlegrid_node::validator::ValidatorNode::recover).
//!
//! # Layout (schema version [`SCHEMA_VERSION`])
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | `"schema"`, `"checkpoint"` | canonical encoding of the version (`u32`) / of the [`Checkpoint`] |
//! | `blocks` | `(round, author, digest)` as fixed-width big-endian fields (ordered, so pruning below a round is a range delete) | canonical encoding of the `Block` |
//! | `commits` | commit index (`u64`) | canonical encoding of the `CommittedSubDag` |
//!
//! Values use the workspace's canonical encoding
//! ([`idlegrid_primitives::encode`]) and are decoded with size limits.
//!
//! # Errors, never a silent fresh start
//!
//! [`RedbStore::open`] requires an existing store and [`RedbStore::create`]
//! a missing one: a node never starts afresh by accident (a fresh start of
//! a validator that signed before is equivocation waiting to happen; it
//! must recover with a *lost* store instead). A file that is not a redb
//! database, is truncated or corrupted, carries another schema version, or
//! holds undecodable records is a [`StoreError`] naming the file.
//!
//! ```
//! use idlegrid_store::RedbStore;
//! use idlegrid_node::store::NodeStore;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("validator.redb");
//! let store = RedbStore::create(&path).unwrap();
//! assert!(store.load().unwrap().consensus.is_empty());
//! drop(store);
//! assert!(RedbStore::create(&path).is_err()); // never overwrite
//! let store = RedbStore::open(&path).unwrap();
//! # drop(store);
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use idlegrid_dag_ledger::consensus::{Block, BlockRef, CommittedSubDag, PersistSeq, StorageOp};
use idlegrid_node::store::NodeStore;
use idlegrid_node::validator::{Checkpoint, NodePersistRequest, NodeStorageOp, StoredNode};
use idlegrid_primitives::{Digest, decode, encode};
use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, TableDefinition};
use thiserror::Error;

/// The layout version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 2;
/// Largest block record accepted when loading.
pub const MAX_BLOCK_RECORD: usize = 8 << 20;
/// Largest commit record accepted when loading.
pub const MAX_COMMIT_RECORD: usize = 64 << 20;
/// Largest checkpoint record accepted when loading.
pub const MAX_CHECKPOINT_RECORD: usize = 1 << 30;
/// Bound on buffered, un-synced writes.
pub const MAX_BUFFERED_WRITES: usize = 1 << 20;

const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
/// (round, author, digest): fixed-width big-endian, hence ordered by round.
const BLOCKS: TableDefinition<'_, (u64, u32, [u8; 32]), &[u8]> = TableDefinition::new("blocks");
const COMMITS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("commits");

/// Why the store cannot be used. Every variant names the file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// [`RedbStore::open`] on a path with no store.
    #[error("no store at {path}: create one for a new validator, or recover with a lost store")]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// [`RedbStore::create`] on a path that already holds a file.
    #[error("{path} already exists: open it instead of overwriting a validator's store")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// redb refused to open the file (not a redb database, truncated,
    /// corrupted, locked by another process, from an unknown file format).
    #[error(
        "cannot open store {path}: {source}; restore it from a backup or recover with a lost store"
    )]
    Open {
        /// The file.
        path: PathBuf,
        /// What redb said.
        source: Box<redb::DatabaseError>,
    },
    /// The file holds another layout version.
    #[error(
        "store {path} has schema version {found}, this build reads version {expected}: migrate it or use a matching build"
    )]
    SchemaVersion {
        /// The file.
        path: PathBuf,
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        expected: u32,
    },
    /// A record is missing or does not decode.
    #[error(
        "store {path} is damaged: {what}; restore it from a backup or recover with a lost store"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Which record.
        what: String,
    },
    /// A read or write failed.
    #[error("store {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What redb said.
        source: Box<redb::Error>,
    },
    /// Too many writes buffered without a sync (a driver bug).
    #[error("store {path}: more than {max} writes buffered without a sync")]
    TooManyBuffered {
        /// The file.
        path: PathBuf,
        /// The bound.
        max: usize,
    },
}

/// A validator's store in one redb file (see the crate docs).
pub struct RedbStore {
    path: PathBuf,
    db: Database,
    buffered: Vec<NodePersistRequest>,
    last_written: PersistSeq,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .field("buffered", &self.buffered.len())
            .finish_non_exhaustive()
    }
}

fn block_key(r: &BlockRef) -> (u64, u32, [u8; 32]) {
    (r.round.get(), r.author.get(), r.digest.to_bytes())
}

impl RedbStore {
    /// Creates a new store at `path` (which must not exist).
    pub fn create(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if path.exists() {
            return Err(StoreError::Exists { path });
        }
        let db = Database::create(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source: Box::new(source),
        })?;
        let store = Self {
            path,
            db,
            buffered: Vec::new(),
            last_written: PersistSeq::ZERO,
        };
        store.init_schema()?;
        Ok(store)
    }

    /// Opens the existing store at `path`, checking its schema version.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if !path.exists() {
            return Err(StoreError::Missing { path });
        }
        // redb 2.6 asserts (panics) on some truncated files instead of
        // returning an error: contain it and report the file.
        let opened = std::panic::catch_unwind(|| Database::open(&path));
        let db = match opened {
            Ok(r) => r.map_err(|source| StoreError::Open {
                path: path.clone(),
                source: Box::new(source),
            })?,
            Err(_) => {
                return Err(StoreError::Corrupt {
                    path,
                    what: "the storage engine refused the file layout (truncated?)".into(),
                });
            }
        };
        let store = Self {
            path,
            db,
            buffered: Vec::new(),
            last_written: PersistSeq::ZERO,
        };
        store.check_schema()?;
        Ok(store)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, e: impl Into<redb::Error>) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            source: Box::new(e.into()),
        }
    }

    fn corrupt(&self, what: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            what: what.into(),
        }
    }

    fn init_schema(&self) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(|e| self.io(e))?;
        tx.set_durability(Durability::Immediate);
        {
            let mut meta = tx.open_table(META).map_err(|e| self.io(e))?;
            meta.insert("schema", encode(&SCHEMA_VERSION).as_slice())
                .map_err(|e| self.io(e))?;
            tx.open_table(BLOCKS).map_err(|e| self.io(e))?;
            tx.open_table(COMMITS).map_err(|e| self.io(e))?;
        }
        tx.commit().map_err(|e| self.io(e))
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.io(e))?;
        let meta = match tx.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => {
                return Err(self.corrupt("no schema record (not an idlegrid store)"));
            }
            Err(e) => return Err(self.io(e)),
        };
        let raw = meta
            .get("schema")
            .map_err(|e| self.io(e))?
            .ok_or_else(|| self.corrupt("no schema record (not an idlegrid store)"))?;
        let found: u32 =
            decode(raw.value(), 16).map_err(|e| self.corrupt(format!("schema record: {e}")))?;
        if found != SCHEMA_VERSION {
            return Err(StoreError::SchemaVersion {
                path: self.path.clone(),
                found,
                expected: SCHEMA_VERSION,
            });
        }
        Ok(())
    }

    /// Writes a schema version (for migration tools and tests).
    pub fn set_schema_version(&mut self, version: u32) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.io(e))?;
        {
            let mut meta = tx.open_table(META).map_err(|e| self.io(e))?;
            meta.insert("schema", encode(&version).as_slice())
                .map_err(|e| self.io(e))?;
        }
        tx.commit().map_err(|e| self.io(e))
    }

    fn apply_all(&mut self) -> Result<(), StoreError> {
        let batch = std::mem::take(&mut self.buffered);
        let mut tx = self.db.begin_write().map_err(|e| self.io(e))?;
        tx.set_durability(Durability::Immediate);
        {
            let mut blocks = tx.open_table(BLOCKS).map_err(|e| self.io(e))?;
            let mut commits = tx.open_table(COMMITS).map_err(|e| self.io(e))?;
            let mut meta = tx.open_table(META).map_err(|e| self.io(e))?;
            for req in &batch {
                match &req.op {
                    NodeStorageOp::Consensus(StorageOp::Block(b)) => {
                        let key = block_key(&b.reference());
                        blocks
                            .insert(key, encode(&**b).as_slice())
                            .map_err(|e| self.io(e))?;
                    }
                    NodeStorageOp::Consensus(StorageOp::Commit(c)) => {
                        commits
                            .insert(c.index, encode(&**c).as_slice())
                            .map_err(|e| self.io(e))?;
                    }
                    NodeStorageOp::Consensus(StorageOp::PruneBlocks { below, keep }) => {
                        let keep_key = block_key(keep);
                        let kept = blocks
                            .get(keep_key)
                            .map_err(|e| self.io(e))?
                            .map(|v| v.value().to_vec());
                        blocks
                            .retain_in(..(below.get(), 0, [0; 32]), |_, _| false)
                            .map_err(|e| self.io(e))?;
                        if let Some(v) = kept {
                            blocks
                                .insert(keep_key, v.as_slice())
                                .map_err(|e| self.io(e))?;
                        }
                    }
                    NodeStorageOp::Checkpoint(cp) => {
                        meta.insert("checkpoint", encode(&**cp).as_slice())
                            .map_err(|e| self.io(e))?;
                        if cp.restorable() {
                            commits
                                .retain_in(..=cp.index, |_, _| false)
                                .map_err(|e| self.io(e))?;
                        }
                    }
                    other => {
                        return Err(self.corrupt(format!("unknown storage op {other:?}")));
                    }
                }
            }
        }
        tx.commit().map_err(|e| self.io(e))
    }

    /// Sizes of what is durable: (blocks, commits).
    pub fn counts(&self) -> Result<(u64, u64), StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.io(e))?;
        let blocks = tx.open_table(BLOCKS).map_err(|e| self.io(e))?;
        let commits = tx.open_table(COMMITS).map_err(|e| self.io(e))?;
        Ok((
            blocks.len().map_err(|e| self.io(e))?,
            commits.len().map_err(|e| self.io(e))?,
        ))
    }
}

impl NodeStore for RedbStore {
    type Error = StoreError;

    fn write(&mut self, req: NodePersistRequest) -> Result<(), StoreError> {
        if self.buffered.len() >= MAX_BUFFERED_WRITES {
            return Err(StoreError::TooManyBuffered {
                path: self.path.clone(),
                max: MAX_BUFFERED_WRITES,
            });
        }
        self.last_written = req.seq;
        self.buffered.push(req);
        Ok(())
    }

    fn sync(&mut self) -> Result<PersistSeq, StoreError> {
        if !self.buffered.is_empty() {
            self.apply_all()?;
        }
        Ok(self.last_written)
    }

    fn load(&self) -> Result<StoredNode, StoreError> {
        let this = std::panic::AssertUnwindSafe(self);
        std::panic::catch_unwind(|| this.load_records())
            .unwrap_or_else(|_| Err(self.corrupt("the storage engine failed reading it")))
    }
}

impl RedbStore {
    fn load_records(&self) -> Result<StoredNode, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.io(e))?;
        let mut out = StoredNode::default();
        let blocks = tx.open_table(BLOCKS).map_err(|e| self.io(e))?;
        for row in blocks.iter().map_err(|e| self.io(e))? {
            let (k, v) = row.map_err(|e| self.io(e))?;
            let (round, author, digest) = k.value();
            let b: Block = decode(v.value(), MAX_BLOCK_RECORD)
                .map_err(|e| self.corrupt(format!("block at round {round}: {e}")))?;
            let r = b.reference();
            if (r.round.get(), r.author.get(), r.digest)
                != (round, author, Digest::from_bytes(digest))
            {
                return Err(
                    self.corrupt(format!("block at round {round} is filed under another key"))
                );
            }
            out.consensus.blocks.push(Arc::new(b));
        }
        let commits = tx.open_table(COMMITS).map_err(|e| self.io(e))?;
        for row in commits.iter().map_err(|e| self.io(e))? {
            let (k, v) = row.map_err(|e| self.io(e))?;
            let c: CommittedSubDag = decode(v.value(), MAX_COMMIT_RECORD)
                .map_err(|e| self.corrupt(format!("commit {}: {e}", k.value())))?;
            if c.index != k.value() {
                return Err(self.corrupt(format!("commit {} is filed under another key", c.index)));
            }
            out.consensus.commits.push(Arc::new(c));
        }
        let meta = tx.open_table(META).map_err(|e| self.io(e))?;
        if let Some(raw) = meta.get("checkpoint").map_err(|e| self.io(e))? {
            let cp: Checkpoint = decode(raw.value(), MAX_CHECKPOINT_RECORD)
                .map_err(|e| self.corrupt(format!("checkpoint: {e}")))?;
            out.checkpoint = Some(Arc::new(cp));
        }
        Ok(out)
    }
}
