//! The storage interface a driver gives a durable validator node, and an
//! in-memory implementation.
//!
//! [`NodeStore`] is what a driver needs: write requests in order, sync,
//! load what is durable. `idlegrid-store` implements it over redb for real
//! processes; the simulator implements it with crash faults (un-synced
//! writes lost, the last write torn, the whole store lost). [`persist_step`]
//! is the one place that runs the durability step of the driving loop.
//! [`MemoryStore`] keeps everything in memory: tests, and the reference for
//! what "durable" means.

use std::collections::BTreeMap;
use std::sync::Arc;

use idlegrid_dag_ledger::consensus::{Block, BlockRef, CommittedSubDag, PersistSeq, StorageOp};
use idlegrid_primitives::Round;

use crate::validator::{Checkpoint, NodePersistRequest, NodeStorageOp, StoredNode, ValidatorNode};

/// A durable store for one validator node.
pub trait NodeStore {
    /// Why the store failed (an IO error, a damaged file…).
    type Error: std::error::Error;
    /// Writes one request (may be buffered until [`NodeStore::sync`]).
    /// Requests arrive in sequence order.
    fn write(&mut self, req: NodePersistRequest) -> Result<(), Self::Error>;
    /// Makes every write so far durable; returns the last sequence number
    /// written.
    fn sync(&mut self) -> Result<PersistSeq, Self::Error>;
    /// What is durable (for [`ValidatorNode::recover`]).
    fn load(&self) -> Result<StoredNode, Self::Error>;
}

/// The durability step of the driving loop: drains `node`'s storage
/// requests into `store`, and if something waits for them, syncs and
/// acknowledges. Call it after every input, before draining transmits and
/// events.
pub fn persist_step<S: NodeStore>(node: &mut ValidatorNode, store: &mut S) -> Result<(), S::Error> {
    while let Some(req) = node.poll_persist() {
        store.write(req)?;
    }
    if node.sync_needed() {
        let seq = store.sync()?;
        node.persisted(seq);
    }
    Ok(())
}

/// The durable content of a node store: what every implementation keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreImage {
    /// Blocks by round, each round's in reference order (a block is an
    /// entry of a vector, not a map node keyed by its reference: a
    /// simulator holds one store per validator).
    pub blocks: BTreeMap<Round, Vec<Arc<Block>>>,
    /// Commits by index.
    pub commits: BTreeMap<u64, Arc<CommittedSubDag>>,
    /// The latest checkpoint.
    pub checkpoint: Option<Arc<Checkpoint>>,
}

impl StoreImage {
    /// Applies one write.
    pub fn apply(&mut self, req: &NodePersistRequest) {
        match &req.op {
            NodeStorageOp::Consensus(StorageOp::Block(b)) => self.insert_block(b),
            NodeStorageOp::Consensus(StorageOp::Commit(c)) => {
                self.commits.insert(c.index, Arc::clone(c));
            }
            NodeStorageOp::Consensus(StorageOp::PruneBlocks { below, keep }) => {
                self.prune_blocks(*below, &[*keep]);
            }
            NodeStorageOp::Checkpoint(cp) => {
                if cp.restorable() {
                    self.commits = self.commits.split_off(&(cp.index + 1));
                }
                self.checkpoint = Some(Arc::clone(cp));
            }
            // A newer consensus write this store does not know: keeping
            // nothing would lose it silently.
            NodeStorageOp::Consensus(other) => {
                panic!("unknown consensus storage op {other:?}")
            }
        }
    }

    /// Adds `b` (once), in reference order: found by author, and only
    /// when its author has another block of the round (an equivocator's,
    /// or this one again) are references compared (each costs a header
    /// comparison through the hash memo; most blocks need none).
    fn insert_block(&mut self, b: &Arc<Block>) {
        let (round, author) = (b.header.round, b.header.author);
        let round = self.blocks.entry(round).or_default();
        let mut at = round.partition_point(|x| x.header.author < author);
        if round.get(at).is_none_or(|x| x.header.author != author) {
            round.insert(at, Arc::clone(b));
            return;
        }
        let r = b.reference();
        while let Some(x) = round.get(at).filter(|x| x.header.author == author) {
            match x.reference().cmp(&r) {
                std::cmp::Ordering::Less => at += 1,
                std::cmp::Ordering::Equal => return,
                std::cmp::Ordering::Greater => break,
            }
        }
        round.insert(at, Arc::clone(b));
    }

    /// Drops blocks below `round`, except `keep`'s latest block.
    pub fn prune_blocks(&mut self, round: Round, keep: &[BlockRef]) {
        // What goes is a prefix of the rounds, removed at the cost of what
        // goes, not of the whole store.
        let mut kept = Vec::new();
        while let Some(e) = self.blocks.first_entry() {
            if *e.key() >= round {
                break;
            }
            let gone = e.remove();
            kept.extend(gone.into_iter().filter(|b| {
                keep.iter()
                    .any(|k| k.author == b.header.author && k.round == b.header.round)
                    && keep.contains(&b.reference())
            }));
        }
        for b in kept {
            self.insert_block(&b);
        }
    }

    /// What recovery needs.
    pub fn stored(&self) -> StoredNode {
        let mut s = StoredNode::default();
        s.consensus.blocks = self.blocks.values().flatten().cloned().collect();
        s.consensus.commits = self.commits.values().cloned().collect();
        s.checkpoint = self.checkpoint.clone();
        s
    }
}

/// A store in memory: writes are buffered until [`NodeStore::sync`];
/// [`MemoryStore::crash`] keeps only a prefix of the un-synced writes.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    durable: StoreImage,
    unsynced: Vec<NodePersistRequest>,
    last_written: PersistSeq,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
    /// A crash: the first `keep` un-synced writes reached the medium, the
    /// rest are lost.
    pub fn crash(&mut self, keep: usize) {
        let mut w = std::mem::take(&mut self.unsynced);
        w.truncate(keep);
        for r in &w {
            self.durable.apply(r);
        }
        // Sequence numbers are per incarnation.
        self.last_written = PersistSeq::ZERO;
    }
    /// Un-synced writes.
    pub fn unsynced(&self) -> usize {
        self.unsynced.len()
    }
    /// The durable image.
    pub fn image(&self) -> &StoreImage {
        &self.durable
    }
}

/// A [`MemoryStore`] never fails.
#[derive(Debug, thiserror::Error)]
#[error("the memory store never fails")]
pub struct Infallible;

impl NodeStore for MemoryStore {
    type Error = Infallible;
    fn write(&mut self, req: NodePersistRequest) -> Result<(), Infallible> {
        assert!(req.seq > self.last_written, "writes out of order");
        self.last_written = req.seq;
        self.unsynced.push(req);
        Ok(())
    }
    fn sync(&mut self) -> Result<PersistSeq, Infallible> {
        for r in std::mem::take(&mut self.unsynced) {
            self.durable.apply(&r);
        }
        Ok(self.last_written)
    }
    fn load(&self) -> Result<StoredNode, Infallible> {
        Ok(self.durable.stored())
    }
}

#[cfg(test)]
mod tests {
    use idlegrid_dag_ledger::consensus::{AuthorityIndex, Transaction};
    use idlegrid_primitives::{Keypair, Seed, Timestamp};

    use super::*;

    fn block(author: u32, tx: u8) -> Arc<Block> {
        let key = Keypair::from_seed(&Seed::from_u64(u64::from(author)));
        Arc::new(Block::new_signed(
            &key,
            AuthorityIndex::new(author),
            Round::new(1),
            Timestamp::ZERO,
            vec![],
            vec![Transaction::new(vec![tx])],
        ))
    }

    /// Whatever the order, and however often a block (or an equal copy of
    /// it) is written, a round holds each block once, in reference order:
    /// an equivocator's blocks (author 2's three) by digest.
    #[test]
    fn a_round_holds_each_block_once_in_reference_order() {
        let blocks = [
            block(2, 0),
            block(0, 0),
            block(2, 1),
            block(2, 2),
            block(1, 0),
        ];
        let mut want: Vec<BlockRef> = blocks.iter().map(|b| b.reference()).collect();
        want.sort();
        for order in [
            [0, 1, 2, 3, 4],
            [4, 3, 2, 1, 0],
            [2, 0, 3, 1, 4],
            [3, 4, 0, 2, 1],
        ] {
            let mut image = StoreImage::default();
            for i in order {
                image.insert_block(&blocks[i]);
                image.insert_block(&blocks[i]);
                image.insert_block(&Arc::new((*blocks[i]).clone()));
            }
            let got: Vec<BlockRef> = image.blocks[&Round::new(1)]
                .iter()
                .map(|b| b.reference())
                .collect();
            assert_eq!(got, want, "order {order:?}");
        }
    }
}
