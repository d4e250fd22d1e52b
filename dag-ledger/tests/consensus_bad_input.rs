//! A Byzantine peer can send anything: each bad input is a typed error, no
//! panic, bounded memory.

use std::sync::Arc;

use idlegrid_dag_ledger::consensus::strategies;
use idlegrid_dag_ledger::consensus::*;
use idlegrid_primitives::{
    Keypair, Machine, NodeId, Round, Seed, SignatureMemo, SignatureVerifier, Timestamp, encode,
};
use proptest::prelude::*;

struct Setup {
    keys: Vec<Keypair>,
    v: Validator,
}

fn setup() -> Setup {
    let root = Seed::from_u64(77);
    let keys: Vec<Keypair> = (0..4)
        .map(|i| Keypair::from_seed(&root.derive_indexed("k", i)))
        .collect();
    let committee = Committee::equal(keys.iter().map(Keypair::node_id)).unwrap();
    let mut v = Validator::new(
        keys[0].clone(),
        committee,
        ConsensusConfig::default(),
        root.derive("v"),
    )
    .unwrap();
    v.handle_timeout(Timestamp::ZERO);
    drain(&mut v);
    Setup { keys, v }
}

fn drain(v: &mut Validator) -> (Vec<ConsensusMessage>, Vec<ConsensusEvent>) {
    let mut m = Vec::new();
    while let Some(t) = v.poll_transmit() {
        m.push(t.msg);
    }
    let mut e = Vec::new();
    while let Some(x) = v.poll_event() {
        e.push(x);
    }
    (m, e)
}

fn errors(events: &[ConsensusEvent]) -> Vec<ConsensusError> {
    events
        .iter()
        .filter_map(|e| match e {
            ConsensusEvent::InvalidMessage { error, .. } => Some(error.clone()),
            _ => None,
        })
        .collect()
}

fn genesis_refs() -> Vec<BlockRef> {
    (0..4)
        .map(|i| Block::genesis(AuthorityIndex::new(i)).header.reference())
        .collect()
}

#[test]
fn far_future_round_is_rejected() {
    let mut s = setup();
    let b = Block::new_signed(
        &s.keys[1],
        AuthorityIndex::new(1),
        Round::new(1_000_000),
        Timestamp::ZERO,
        vec![BlockRef {
            round: Round::new(999_999),
            author: AuthorityIndex::new(1),
            digest: Default::default(),
        }],
        vec![],
    );
    let from = s.keys[1].node_id();
    s.v.handle_message(Timestamp::ZERO, from, ConsensusMessage::Block(Arc::new(b)));
    let (_, e) = drain(&mut s.v);
    assert!(matches!(
        errors(&e)[..],
        [ConsensusError::FarFutureRound { .. }]
    ));
}

#[test]
fn huge_and_oversized_inputs_are_rejected() {
    let mut s = setup();
    let from = s.keys[1].node_id();
    // Bytes beyond the message limit are refused before parsing.
    let huge = vec![0u8; ConsensusConfig::default().max_message_bytes + 1];
    s.v.handle_bytes(Timestamp::ZERO, from, &huge);
    // A block with too many transactions.
    let txs: Vec<Transaction> = (0..2_000u32)
        .map(|i| Transaction::new(i.to_le_bytes().to_vec()))
        .collect();
    let b = Block::new_signed(
        &s.keys[1],
        AuthorityIndex::new(1),
        Round::new(1),
        Timestamp::ZERO,
        genesis_refs(),
        txs,
    );
    s.v.handle_bytes(
        Timestamp::ZERO,
        from,
        &ConsensusMessage::Block(Arc::new(b)).encode(),
    );
    let (_, e) = drain(&mut s.v);
    let errs = errors(&e);
    assert!(matches!(errs[0], ConsensusError::Decode(_)), "{errs:?}");
    assert!(
        matches!(errs[1], ConsensusError::TooManyTransactions { .. }),
        "{errs:?}"
    );
}

#[test]
fn bad_signature_and_unknown_sender_are_rejected() {
    let mut s = setup();
    let mut b = Block::new_signed(
        &s.keys[2],
        AuthorityIndex::new(1), // signed by the wrong key
        Round::new(1),
        Timestamp::ZERO,
        genesis_refs(),
        vec![],
    );
    let from = s.keys[1].node_id();
    s.v.handle_message(
        Timestamp::ZERO,
        from,
        ConsensusMessage::Block(Arc::new(b.clone())),
    );
    b.header.timestamp = Timestamp::from_micros(5);
    let stranger = NodeId::from_bytes([9; 32]);
    s.v.handle_message(
        Timestamp::ZERO,
        stranger,
        ConsensusMessage::Block(Arc::new(b)),
    );
    let (_, e) = drain(&mut s.v);
    let errs = errors(&e);
    assert!(
        matches!(errs[0], ConsensusError::BadSignature(_)),
        "{errs:?}"
    );
    assert!(
        matches!(errs[1], ConsensusError::UnknownNode(_)),
        "{errs:?}"
    );
    assert_eq!(s.v.stats().stored_blocks, 5); // 4 genesis + our round 1
}

/// Validators sharing one memo of verified signatures (as the simulator's
/// do): a signature another validator verified never vouches for a forged
/// or altered block, alone or in a batch.
#[test]
fn a_shared_signature_memo_never_lets_a_forged_block_in() {
    let memo = SignatureVerifier::memoized(SignatureMemo::shared(&Seed::from_u64(1)));
    let mut a = setup();
    let mut b = setup();
    a.v = a.v.with_signature_verifier(memo.clone());
    b.v = b.v.with_signature_verifier(memo.clone());
    let genuine = Block::new_signed(
        &a.keys[1],
        AuthorityIndex::new(1),
        Round::new(1),
        Timestamp::ZERO,
        genesis_refs(),
        vec![],
    );
    let from = a.keys[1].node_id();
    let send = |v: &mut Validator, blocks: Vec<Block>| {
        let msg = match blocks.len() {
            1 => ConsensusMessage::Block(Arc::new(blocks[0].clone())),
            _ => ConsensusMessage::FetchResponse(blocks.into_iter().map(Arc::new).collect()),
        };
        // Through the wire, as a peer's bytes (so nothing cached on the
        // sender's copy, such as its header digest, comes along).
        v.handle_bytes(Timestamp::ZERO, from, &msg.encode());
        errors(&drain(v).1)
    };
    assert!(send(&mut a.v, vec![genuine.clone()]).is_empty());
    assert_eq!(memo.memo().unwrap().stats().misses, 1);
    // The genuine signature on an altered header.
    let mut altered = genuine.clone();
    altered.header.timestamp = Timestamp::from_micros(5);
    // The genuine header signed by another key.
    let mut forged = genuine.clone();
    forged.signature = a.keys[2].sign(BLOCK_SIGNATURE_DOMAIN, forged.header.digest().as_bytes());
    let bad_signature = |errs: Vec<ConsensusError>| {
        assert!(
            matches!(errs[..], [ConsensusError::BadSignature(_)]),
            "{errs:?}"
        );
    };
    bad_signature(send(&mut b.v, vec![forged.clone()]));
    // In a batch with the genuine block (same header, so the same
    // reference): the forged one alone is refused.
    bad_signature(send(&mut b.v, vec![genuine.clone(), forged]));
    bad_signature(send(&mut b.v, vec![altered]));
    assert_eq!(
        b.v.stats().stored_blocks,
        6,
        "genesis, its own, the genuine one"
    );
    assert!(
        memo.memo().unwrap().stats().hits >= 1,
        "the genuine one came from the memo"
    );
}

#[test]
fn request_flood_is_bounded() {
    let mut s = setup();
    let from = s.keys[1].node_id();
    let before = s.v.stats();
    let max = s.v.config().max_fetch_items;
    // Oversized requests are rejected outright.
    let refs: Vec<BlockRef> = (0..=max as u64)
        .map(|i| BlockRef {
            round: Round::new(i),
            author: AuthorityIndex::new(0),
            digest: Default::default(),
        })
        .collect();
    s.v.handle_message(
        Timestamp::ZERO,
        from,
        ConsensusMessage::FetchRequest(FetchRequest {
            refs: refs.clone(),
            known_round: Round::ZERO,
        }),
    );
    let (m, e) = drain(&mut s.v);
    assert!(m.is_empty());
    assert!(matches!(
        errors(&e)[..],
        [ConsensusError::TooManyItems { .. }]
    ));
    // Ten thousand valid requests: one bounded response each, no state growth.
    let own =
        s.v.store()
            .last_block_of(s.v.authority())
            .unwrap()
            .reference();
    for _ in 0..10_000 {
        s.v.handle_message(
            Timestamp::ZERO,
            from,
            ConsensusMessage::FetchRequest(FetchRequest {
                refs: vec![own],
                known_round: Round::ZERO,
            }),
        );
        let (m, _) = drain(&mut s.v);
        assert_eq!(m.len(), 1);
        match &m[0] {
            ConsensusMessage::FetchResponse(blocks) => assert!(blocks.len() <= max),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(s.v.stats(), before);
}

#[test]
fn transaction_queue_is_bounded() {
    let mut s = setup();
    assert!(matches!(
        s.v.submit_transaction(vec![]),
        Err(ConsensusError::BadTransactionSize { .. })
    ));
    let max = s.v.config().max_pending_transactions;
    for i in 0..max {
        s.v.submit_transaction((i as u64).to_le_bytes().to_vec())
            .unwrap();
    }
    assert_eq!(
        s.v.submit_transaction(vec![1]),
        Err(ConsensusError::TransactionQueueFull { max })
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn garbage_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut s = setup();
        let from = s.keys[1].node_id();
        s.v.handle_bytes(Timestamp::from_millis(1), from, &bytes);
        drain(&mut s.v);
    }

    #[test]
    fn arbitrary_messages_never_panic(msg in strategies::consensus_message()) {
        let mut s = setup();
        let from = s.keys[2].node_id();
        let bytes = encode(&msg);
        s.v.handle_bytes(Timestamp::from_millis(1), from, &bytes);
        s.v.handle_message(Timestamp::from_millis(2), from, msg);
        drain(&mut s.v);
        prop_assert!(s.v.stats().pending_blocks <= 4 * s.v.config().max_pending_blocks_per_author);
    }
}
