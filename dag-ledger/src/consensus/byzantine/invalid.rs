//! A validator whose blocks have too few parents.

use std::sync::Arc;

use idlegrid_primitives::Keypair;

use super::{Adversary, Recipient};
use crate::consensus::block::{Block, BlockRef};
use crate::consensus::committee::AuthorityIndex;
use crate::consensus::message::ConsensusMessage;

/// Re-signs every block of its own that leaves (proposals, rebroadcasts
/// and fetch answers) with its own previous block as the only parent —
/// less than a quorum of stake — so that honest validators reject each
/// one as invalid.
#[derive(Debug)]
pub struct InvalidBlockAuthor {
    key: Keypair,
    me: AuthorityIndex,
    /// The invalid version of our latest block.
    last: Option<(BlockRef, Arc<Block>)>,
}

impl InvalidBlockAuthor {
    /// The invalid-block author of validator `me`, signing with `key`.
    pub fn new(key: Keypair, me: AuthorityIndex) -> Self {
        Self {
            key,
            me,
            last: None,
        }
    }

    fn invalid_version(&mut self, block: &Arc<Block>) -> Arc<Block> {
        let h = &block.header;
        if h.author != self.me {
            return Arc::clone(block);
        }
        let r = h.reference();
        if let Some((at, b)) = &self.last
            && *at == r
        {
            return Arc::clone(b);
        }
        let own: Vec<BlockRef> = h
            .parents
            .iter()
            .filter(|p| p.author == self.me)
            .copied()
            .collect();
        let b = Arc::new(Block::new_signed(
            &self.key,
            h.author,
            h.round,
            h.timestamp,
            own,
            block.transactions.clone(),
        ));
        self.last = Some((r, Arc::clone(&b)));
        b
    }
}

impl Adversary for InvalidBlockAuthor {
    fn per_peer(&self, _: &ConsensusMessage) -> bool {
        false
    }

    fn rewrite(&mut self, _: Recipient, msg: ConsensusMessage) -> Option<ConsensusMessage> {
        Some(match msg {
            ConsensusMessage::Block(b) => ConsensusMessage::Block(self.invalid_version(&b)),
            ConsensusMessage::FetchResponse(blocks) => ConsensusMessage::FetchResponse(
                blocks.iter().map(|b| self.invalid_version(b)).collect(),
            ),
            other => other,
        })
    }
}
