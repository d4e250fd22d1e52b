//! Wire messages.

use idlegrid_primitives::{Round, decode, encode};
use serde::{Deserialize, Serialize};

use super::block::{Block, BlockRef};
use super::error::ConsensusError;

/// What validators send each other. Decode untrusted bytes with
/// [`ConsensusMessage::decode`] and a size limit.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ConsensusMessage {
    /// A newly proposed block (broadcast by its author).
    Block(Block),
    /// A request for blocks we miss.
    FetchRequest(FetchRequest),
    /// Blocks answering a [`FetchRequest`], lowest rounds first.
    FetchResponse(Vec<Block>),
}

/// A request for missing blocks.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct FetchRequest {
    /// The blocks wanted.
    pub refs: Vec<BlockRef>,
    /// The requester's highest round with a quorum of blocks: the responder
    /// may add blocks above it (lowest rounds first) to help it catch up.
    pub known_round: Round,
}

impl ConsensusMessage {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }
    /// Decodes untrusted bytes of at most `max_len` bytes.
    pub fn decode(bytes: &[u8], max_len: usize) -> Result<Self, ConsensusError> {
        Ok(decode(bytes, max_len)?)
    }
}
