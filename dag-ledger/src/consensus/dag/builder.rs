//! A small DSL for hand-building DAGs (tests, benches, audits).
//!
//! ```
//! use idlegrid_dag_ledger::consensus::{AuthorityIndex, DagBuilder};
//! use idlegrid_primitives::Round;
//!
//! let mut dag = DagBuilder::new(4);
//! dag.layers(1..=2).build(); // rounds 1 and 2, fully connected
//! // Round 3: only A0..A2 propose, and none of them links to A3's round-2 block.
//! dag.layer(3).authors([0, 1, 2]).skip_parents_from([3]).build();
//! assert_eq!(dag.store().highest_round(), Round::new(3));
//! assert!(dag.store().slot(Round::new(3), AuthorityIndex::new(3)).is_empty());
//! ```

use std::ops::RangeInclusive;

use idlegrid_primitives::{Keypair, Round, Seed, Timestamp};

use super::store::DagStore;
use crate::consensus::block::{Block, BlockRef, Transaction, VerifiedBlock};
use crate::consensus::committee::{AuthorityIndex, Committee};

/// Builds a DAG layer by layer into a [`DagStore`], with real signatures.
#[derive(Debug)]
pub struct DagBuilder {
    keys: Vec<Keypair>,
    committee: Committee,
    store: DagStore,
    tx_counter: u64,
}

impl DagBuilder {
    /// A committee of `n` equal-stake validators (keys from fixed seeds) and
    /// a store holding the genesis blocks.
    pub fn new(n: usize) -> Self {
        let keys: Vec<Keypair> = (0..n)
            .map(|i| Keypair::from_seed(&Seed::from_u64(0xda6).derive_indexed("key", i as u64)))
            .collect();
        let committee = Committee::equal(keys.iter().map(Keypair::node_id)).expect("n in 1..=1024");
        let mut store = DagStore::new(n);
        for a in committee.indices() {
            store.insert(VerifiedBlock::new_unchecked(Block::genesis(a)));
        }
        Self {
            keys,
            committee,
            store,
            tx_counter: 0,
        }
    }

    /// The committee.
    pub fn committee(&self) -> &Committee {
        &self.committee
    }
    /// The keypairs, by authority index.
    pub fn keys(&self) -> &[Keypair] {
        &self.keys
    }
    /// The store built so far.
    pub fn store(&self) -> &DagStore {
        &self.store
    }
    /// Takes the store.
    pub fn into_store(self) -> DagStore {
        self.store
    }

    /// The first block of `author` at `round`.
    pub fn block(&self, round: u64, author: u32) -> Option<VerifiedBlock> {
        self.store
            .slot(Round::new(round), AuthorityIndex::new(author))
            .first()
            .cloned()
    }

    /// Starts describing one layer.
    pub fn layer(&mut self, round: u64) -> LayerBuilder<'_> {
        self.layers(round..=round)
    }

    /// Starts describing several identical layers.
    pub fn layers(&mut self, rounds: RangeInclusive<u64>) -> LayerBuilder<'_> {
        let all = self.committee.indices().collect();
        LayerBuilder {
            dag: self,
            rounds,
            authors: all,
            skip_from: Vec::new(),
            equivocate: false,
            txs: 1,
        }
    }

    fn make_block(
        &mut self,
        round: Round,
        author: AuthorityIndex,
        skip_from: &[AuthorityIndex],
        variant: u8,
        txs: usize,
    ) -> BlockRef {
        let prev = round.prev().expect("layers start at round 1");
        let mut parents: Vec<BlockRef> = Vec::new();
        for a in self.committee.indices() {
            if a == author {
                let own = self
                    .store
                    .last_block_before(a, round)
                    .expect("genesis is always present")
                    .reference();
                parents.push(own);
            } else if !skip_from.contains(&a)
                && let Some(b) = self.store.slot(prev, a).first()
            {
                parents.push(b.reference());
            }
        }
        let transactions = (0..txs)
            .map(|_| {
                self.tx_counter += 1;
                let mut t = self.tx_counter.to_le_bytes().to_vec();
                t.push(variant);
                Transaction::new(t)
            })
            .collect();
        let block = Block::new_signed(
            &self.keys[author.as_usize()],
            author,
            round,
            Timestamp::from_micros(round.get() * 1000 + u64::from(variant)),
            parents,
            transactions,
        );
        let v = VerifiedBlock::new_unchecked(block);
        let r = v.reference();
        self.store.insert(v);
        r
    }
}

/// Describes one or more layers of a [`DagBuilder`]; finish with
/// [`LayerBuilder::build`].
#[derive(Debug)]
pub struct LayerBuilder<'a> {
    dag: &'a mut DagBuilder,
    rounds: RangeInclusive<u64>,
    authors: Vec<AuthorityIndex>,
    skip_from: Vec<AuthorityIndex>,
    equivocate: bool,
    txs: usize,
}

impl LayerBuilder<'_> {
    /// Only these authorities propose (default: all).
    pub fn authors(mut self, authors: impl IntoIterator<Item = u32>) -> Self {
        self.authors = authors.into_iter().map(AuthorityIndex::new).collect();
        self
    }
    /// Blocks do not reference the previous-round blocks of these authors
    /// (except an author's own previous block, always referenced).
    pub fn skip_parents_from(mut self, authors: impl IntoIterator<Item = u32>) -> Self {
        self.skip_from = authors.into_iter().map(AuthorityIndex::new).collect();
        self
    }
    /// Every author also produces a second, conflicting block.
    pub fn equivocate(mut self) -> Self {
        self.equivocate = true;
        self
    }
    /// Transactions per block (default 1).
    pub fn transactions(mut self, k: usize) -> Self {
        self.txs = k;
        self
    }
    /// Adds the blocks; returns their references.
    pub fn build(self) -> Vec<BlockRef> {
        let mut out = Vec::new();
        for round in self.rounds.clone() {
            for &a in &self.authors {
                out.push(
                    self.dag
                        .make_block(Round::new(round), a, &self.skip_from, 0, self.txs),
                );
                if self.equivocate {
                    out.push(self.dag.make_block(
                        Round::new(round),
                        a,
                        &self.skip_from,
                        1,
                        self.txs,
                    ));
                }
            }
        }
        out
    }
}
