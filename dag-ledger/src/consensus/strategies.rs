//! Proptest strategies for the consensus types (feature `strategies`).

use std::sync::Arc;

use idlegrid_primitives::strategies as prim;
use proptest::prelude::*;

use super::block::{Block, BlockHeader, BlockRef, Transaction};
use super::committee::AuthorityIndex;
use super::message::{ConsensusMessage, FetchRequest};

/// An authority index below `n`.
pub fn authority_index(n: u32) -> impl Strategy<Value = AuthorityIndex> {
    (0..n.max(1)).prop_map(AuthorityIndex::new)
}

/// A non-empty transaction of up to 64 bytes.
pub fn transaction() -> impl Strategy<Value = Transaction> {
    proptest::collection::vec(any::<u8>(), 1..64).prop_map(Transaction::new)
}

/// Any block reference (small rounds and authorities).
pub fn block_ref() -> impl Strategy<Value = BlockRef> {
    (0u64..64, authority_index(16), prim::digest()).prop_map(|(r, author, digest)| BlockRef {
        round: idlegrid_primitives::Round::new(r),
        author,
        digest,
    })
}

/// A structurally arbitrary, usually invalid block (random parents and
/// signature): for decoders and rejection tests.
pub fn arbitrary_block() -> impl Strategy<Value = Block> {
    (
        authority_index(16),
        0u64..64,
        prim::timestamp(),
        proptest::collection::vec(block_ref(), 0..8),
        proptest::collection::vec(transaction(), 0..4),
        prim::digest(),
        prim::signature_bytes(),
    )
        .prop_map(
            |(author, round, timestamp, parents, transactions, d, signature)| {
                Block::from_parts(
                    BlockHeader {
                        author,
                        round: idlegrid_primitives::Round::new(round),
                        timestamp,
                        parents,
                        transactions_digest: d,
                    },
                    transactions,
                    signature,
                )
            },
        )
}

/// Any consensus message.
pub fn consensus_message() -> impl Strategy<Value = ConsensusMessage> {
    prop_oneof![
        arbitrary_block().prop_map(|b| ConsensusMessage::Block(Arc::new(b))),
        (proptest::collection::vec(block_ref(), 0..8), 0u64..64).prop_map(|(refs, k)| {
            ConsensusMessage::FetchRequest(FetchRequest {
                refs,
                known_round: idlegrid_primitives::Round::new(k),
            })
        }),
        proptest::collection::vec(arbitrary_block().prop_map(Arc::new), 0..3)
            .prop_map(ConsensusMessage::FetchResponse),
    ]
}
