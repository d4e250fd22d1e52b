//! A validator that signs two blocks for every round.

use std::sync::Arc;

use idlegrid_primitives::{Duration, Keypair};

use super::{Adversary, Recipient, own_block};
use crate::consensus::block::{Block, BlockRef};
use crate::consensus::committee::AuthorityIndex;
use crate::consensus::message::ConsensusMessage;

/// Holding the validator's signing key, signs a second, conflicting block
/// for each block its honest machine proposes (same round and parents, one
/// microsecond later, no transactions) and sends the honest version to the
/// peers at even positions, the twin to those at odd positions. Fetches
/// are served the honest version. Honest validators that see both turn
/// them into [`Evidence`](crate::consensus::Evidence).
#[derive(Debug)]
pub struct Equivocator {
    key: Keypair,
    me: AuthorityIndex,
    /// The twin of our latest block (rebroadcasts send the same twin).
    twin: Option<(BlockRef, Arc<Block>)>,
    twins: u64,
}

impl Equivocator {
    /// The equivocator of validator `me`, signing with `key`.
    pub fn new(key: Keypair, me: AuthorityIndex) -> Self {
        Self {
            key,
            me,
            twin: None,
            twins: 0,
        }
    }

    /// Conflicting blocks signed so far.
    pub fn twins_signed(&self) -> u64 {
        self.twins
    }

    fn twin_of(&mut self, block: &Block) -> Arc<Block> {
        let r = block.reference();
        if let Some((at, twin)) = &self.twin
            && *at == r
        {
            return Arc::clone(twin);
        }
        let h = &block.header;
        let twin = Arc::new(Block::new_signed(
            &self.key,
            h.author,
            h.round,
            h.timestamp.saturating_add(Duration::from_micros(1)),
            h.parents.clone(),
            Vec::new(),
        ));
        assert_ne!(twin.header.reference(), r, "a twin differs from its block");
        self.twins += 1;
        self.twin = Some((r, Arc::clone(&twin)));
        twin
    }
}

impl Adversary for Equivocator {
    fn per_peer(&self, msg: &ConsensusMessage) -> bool {
        own_block(msg, self.me)
    }

    fn rewrite(&mut self, to: Recipient, msg: ConsensusMessage) -> Option<ConsensusMessage> {
        match (to, msg) {
            (Recipient::Peer { position, .. }, ConsensusMessage::Block(b))
                if b.header.author == self.me && position % 2 == 1 =>
            {
                Some(ConsensusMessage::Block(self.twin_of(&b)))
            }
            (_, msg) => Some(msg),
        }
    }
}
