//! Each adversary on hand-built inputs, against honest receivers.

use std::sync::Arc;

use idlegrid_primitives::{
    Destination, Keypair, Machine, NodeId, Round, Seed, Timestamp, Transmit,
};

use super::{ByzantineBehavior, Participant};
use crate::consensus::{
    Block, Committee, ConsensusConfig, ConsensusEvent, ConsensusMessage, FetchRequest, Validator,
    VerifiedBlock,
};

fn committee() -> (Vec<Keypair>, Committee) {
    let keys: Vec<Keypair> = (0..4)
        .map(|i| Keypair::from_seed(&Seed::from_u64(i)))
        .collect();
    let c = Committee::equal(keys.iter().map(Keypair::node_id)).unwrap();
    (keys, c)
}

fn honest(keys: &[Keypair], c: &Committee, i: usize) -> Validator {
    Validator::new(
        keys[i].clone(),
        c.clone(),
        ConsensusConfig::default(),
        Seed::from_u64(9),
    )
    .unwrap()
}

fn wrapped(keys: &[Keypair], c: &Committee, b: ByzantineBehavior) -> Participant<Validator> {
    Participant::byzantine(honest(keys, c, 0), b, &keys[0], c)
}

fn drain<M: Machine>(m: &mut M) -> Vec<Transmit<M::Message>> {
    std::iter::from_fn(|| m.poll_transmit()).collect()
}

fn block(t: &Transmit<ConsensusMessage>) -> Arc<Block> {
    match &t.msg {
        ConsensusMessage::Block(b) => Arc::clone(b),
        other => panic!("expected a block, got {other:?}"),
    }
}

fn to(t: &Transmit<ConsensusMessage>) -> NodeId {
    match t.to {
        Destination::To(n) => n,
        Destination::Broadcast => panic!("expected a unicast"),
    }
}

/// Feeds `blocks` to a fresh honest validator 1 and returns its events.
fn receive(keys: &[Keypair], c: &Committee, blocks: &[Arc<Block>]) -> Vec<ConsensusEvent> {
    let mut v = honest(keys, c, 1);
    for b in blocks {
        v.handle_message(
            Timestamp::ZERO,
            keys[0].node_id(),
            ConsensusMessage::Block(Arc::clone(b)),
        );
    }
    std::iter::from_fn(|| v.poll_event()).collect()
}

#[test]
fn an_equivocator_sends_two_signed_versions_and_is_caught() {
    let (keys, c) = committee();
    let mut v = wrapped(&keys, &c, ByzantineBehavior::Equivocate);
    v.handle_timeout(Timestamp::ZERO);
    let sent = drain(&mut v);
    let peers: Vec<NodeId> = keys[1..].iter().map(Keypair::node_id).collect();
    assert_eq!(sent.iter().map(to).collect::<Vec<_>>(), peers);
    let (a, b, a2) = (block(&sent[0]), block(&sent[1]), block(&sent[2]));
    assert_eq!(
        a.header.digest(),
        a2.header.digest(),
        "even positions get the same version"
    );
    assert_ne!(a.header.digest(), b.header.digest());
    assert_eq!(
        (a.header.round, a.header.author),
        (b.header.round, b.header.author)
    );
    // Both carry the author's real signature.
    let cfg = ConsensusConfig::default();
    for x in [&a, &b] {
        VerifiedBlock::verify(Arc::clone(x), &c, &cfg).expect("signed with the validator's key");
    }
    // The wrapped machine itself stays honest: one block of its own.
    assert_eq!(
        v.inner().store().slot(Round::new(1), a.header.author).len(),
        1
    );
    let events = receive(&keys, &c, &[a, b]);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ConsensusEvent::Equivocation(_))),
        "{events:?}"
    );
}

#[test]
fn a_withholder_sends_to_its_first_peers_and_serves_no_fetch() {
    let (keys, c) = committee();
    let mut v = wrapped(&keys, &c, ByzantineBehavior::Withhold { recipients: 1 });
    v.handle_timeout(Timestamp::ZERO);
    let sent = drain(&mut v);
    assert_eq!(
        sent.iter().map(to).collect::<Vec<_>>(),
        vec![keys[1].node_id()]
    );
    let own = block(&sent[0]).header.reference();
    let req = || {
        ConsensusMessage::FetchRequest(FetchRequest {
            refs: vec![own],
            known_round: Round::ZERO,
        })
    };
    // An honest validator with the block answers a fetch...
    let mut h = honest(&keys, &c, 0);
    h.handle_timeout(Timestamp::ZERO);
    drain(&mut h);
    h.handle_message(Timestamp::ZERO, keys[2].node_id(), req());
    assert!(
        drain(&mut h)
            .iter()
            .any(|t| matches!(t.msg, ConsensusMessage::FetchResponse(_)))
    );
    // ...the withholder's answer never leaves.
    v.handle_message(Timestamp::ZERO, keys[2].node_id(), req());
    let sent = drain(&mut v);
    assert!(
        !sent
            .iter()
            .any(|t| matches!(t.msg, ConsensusMessage::FetchResponse(_))),
        "{sent:?}"
    );
}

#[test]
fn an_invalid_block_author_re_signs_blocks_that_honest_validators_reject() {
    let (keys, c) = committee();
    let mut v = wrapped(&keys, &c, ByzantineBehavior::TooFewParents);
    v.handle_timeout(Timestamp::ZERO);
    let sent = drain(&mut v);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, Destination::Broadcast);
    let b = block(&sent[0]);
    assert_eq!(b.header.parents.len(), 1, "only its own previous block");
    // Its own machine built (and keeps) the valid block.
    let kept = v
        .inner()
        .store()
        .slot(Round::new(1), b.header.author)
        .to_vec();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].parents().len(), 4);
    let events = receive(&keys, &c, &[b]);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ConsensusEvent::InvalidMessage { .. })),
        "{events:?}"
    );
    // The honest block is accepted by the same receiver.
    let events = receive(&keys, &c, &[Arc::clone(kept[0].block())]);
    assert!(events.is_empty(), "{events:?}");
}
