//! Wire messages.
//!
//! Blocks travel as `Arc<Block>`: an in-process network (the simulator, a
//! memory transport) hands every recipient the same allocation, and the
//! receiving validator stores that allocation as is. `Arc<T>` serializes
//! exactly as `T` (serde's `rc` feature), so the encoding is unchanged.

use std::sync::Arc;

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
    Block(Arc<Block>),
    /// A request for blocks we miss.
    FetchRequest(FetchRequest),
    /// Blocks answering a [`FetchRequest`], lowest rounds first.
    FetchResponse(Vec<Arc<Block>>),
    /// "What is my latest block?": sent by a validator whose store was
    /// lost, before it proposes again (so it never signs a second block
    /// for a round it signed before the loss).
    LatestOwnBlockRequest,
    /// The latest block the responder holds authored by the requester
    /// (`None` if it holds none).
    LatestOwnBlockResponse(Option<Arc<Block>>),
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

#[cfg(test)]
mod tests {
    use idlegrid_primitives::{DecodeError, Keypair, Seed, Signature, Timestamp};

    use super::super::block::{BlockHeader, Transaction};
    use super::super::committee::AuthorityIndex;
    use super::*;

    /// The message layout before blocks and transactions were shared: the
    /// wire format.
    #[derive(Serialize)]
    enum PlainMessage {
        Block(PlainBlock),
        #[allow(dead_code)]
        FetchRequest(FetchRequest),
        FetchResponse(Vec<PlainBlock>),
    }

    #[derive(Serialize)]
    struct PlainBlock {
        header: BlockHeader,
        transactions: Vec<Vec<u8>>,
        signature: Signature,
    }

    fn plain(b: &Block) -> PlainBlock {
        PlainBlock {
            header: b.header.clone(),
            transactions: b
                .transactions
                .iter()
                .map(|t| t.as_bytes().to_vec())
                .collect(),
            signature: b.signature,
        }
    }

    fn block(i: u64) -> Block {
        let parents = (0..4)
            .map(|a| Block::genesis(AuthorityIndex::new(a)).header.reference())
            .collect();
        Block::new_signed(
            &Keypair::from_seed(&Seed::from_u64(i)),
            AuthorityIndex::new(0),
            Round::new(1),
            Timestamp::from_micros(i),
            parents,
            vec![
                Transaction::new(vec![1, 2, 3]),
                Transaction::new(vec![4; 200]),
            ],
        )
    }

    #[test]
    fn shared_blocks_encode_like_plain_blocks() {
        let (a, b) = (block(1), block(2));
        let shared = ConsensusMessage::Block(Arc::new(a.clone()));
        assert_eq!(shared.encode(), encode(&PlainMessage::Block(plain(&a))));
        let plains = vec![plain(&a), plain(&b)];
        let shared = ConsensusMessage::FetchResponse(vec![Arc::new(a), Arc::new(b)]);
        let bytes = shared.encode();
        assert_eq!(bytes, encode(&PlainMessage::FetchResponse(plains)));
        assert_eq!(ConsensusMessage::decode(&bytes, bytes.len()), Ok(shared));
    }

    #[test]
    fn decode_keeps_size_and_canonical_checks() {
        let bytes = ConsensusMessage::Block(Arc::new(block(3))).encode();
        assert!(matches!(
            ConsensusMessage::decode(&bytes, bytes.len() - 1),
            Err(ConsensusError::Decode(DecodeError::TooLong { .. }))
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            ConsensusMessage::decode(&trailing, trailing.len()),
            Err(ConsensusError::Decode(DecodeError::TrailingBytes(1)))
        ));
        // The variant tag 0 as an overlong varint.
        let mut overlong = vec![0x80];
        overlong.extend_from_slice(&bytes);
        assert!(matches!(
            ConsensusMessage::decode(&overlong, overlong.len()),
            Err(ConsensusError::Decode(DecodeError::NonCanonical))
        ));
    }
}
