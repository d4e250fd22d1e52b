//! What a node reads off the network: a `NodeMessage` decoded from
//! untrusted bytes never panics and is canonical. The fact batches among a
//! sequence of them, each from the validator the input names, go through a
//! light node's `FactQuorum`: it never panics, accepts a fact at most once,
//! and only once f + 1 distinct validators have reported it. Certified
//! facts are checked (`ProvenFacts::verify`) and never panic; one that
//! verifies was signed by f + 1 of the stake (the seeds hold one, so the
//! fuzzer mutates around a valid certificate).
//!
//! Input: framed parts (`idlegrid_fuzz::frame`), each one byte naming the
//! validator (modulo 4) and then the message's bytes.
#![no_main]

use std::sync::Arc;

use idlegrid_dag_ledger::consensus::{AuthorityIndex, Committee};
use idlegrid_fuzz::{frame, take_framed, write_seeds};
use idlegrid_node::certified::leaf_digest;
use idlegrid_node::facts::FactQuorum;
use idlegrid_node::wire::{
    Fact, FactBatch, FactsCertificate, FactsVote, GatewayRequest, NodeMessage, ProvenFacts,
    ProvenLeaf,
};
use idlegrid_primitives::{
    AccountId, Digest, Domain, Keypair, MerkleTree, NodeId, Seed, SignatureVerifier, Timestamp,
    decode, encode,
};
use libfuzzer_sys::fuzz_target;

/// The most bytes one message may take (as the transports bound them).
const MAX_LEN: usize = 1 << 20;
const VALIDATORS: usize = 4;

fn validators() -> Vec<NodeId> {
    (0..VALIDATORS as u64)
        .map(|i| Keypair::from_seed(&Seed::from_u64(i)).node_id())
        .collect()
}

fn seeds() -> Vec<Vec<u8>> {
    let fact = |n: u8| Fact::Applied {
        sender: AccountId::from_bytes([n; 32]),
        tx: Digest::of(Domain::new("idlegrid/fuzz/tx"), &n),
    };
    let batch = |index: u64| {
        NodeMessage::Facts(FactBatch {
            index,
            facts: Arc::from(vec![fact(1), fact(2)]),
        })
    };
    let part = |who: u8, m: &NodeMessage| [vec![who], encode(m)].concat();
    let certified = certified(&fact(3));
    let gateway = |r: GatewayRequest| NodeMessage::Gateway(r);
    vec![
        frame(&[part(0, &batch(3)), part(1, &batch(3)), part(2, &batch(3))]),
        frame(&[
            part(0, &gateway(GatewayRequest::Subscribe)),
            part(1, &gateway(GatewayRequest::SubscribeFrom(7))),
            part(2, &batch(u64::MAX)),
            part(3, &batch(0)),
        ]),
        frame(&[part(0, &certified), part(1, &certified)]),
    ]
}

/// Commit 5's facts for everyone (`fact`), certified by validators 0 and 1.
fn certified(fact: &Fact) -> NodeMessage {
    let keys: Vec<Keypair> = (0..VALIDATORS as u64)
        .map(|i| Keypair::from_seed(&Seed::from_u64(i)))
        .collect();
    let committee = Committee::equal(keys.iter().map(|k| k.node_id())).expect("committee");
    let facts: Arc<[Fact]> = Arc::from(vec![fact.clone()]);
    let tree = MerkleTree::new(vec![leaf_digest(None, &facts)]);
    let votes = (0..2u32)
        .map(|i| {
            (
                i,
                FactsVote::sign(&keys[i as usize], &committee, 5, tree.root()).signature,
            )
        })
        .collect();
    let leaf = ProvenLeaf {
        owner: None,
        facts,
        proof: Arc::new(tree.proof(0).expect("leaf")),
    };
    NodeMessage::Certified(ProvenFacts {
        cert: Arc::new(FactsCertificate::new(5, tree.root(), votes)),
        leaves: vec![leaf],
    })
}

/// What the inputs so far reported: (commit, fact, validator).
type Reports = Vec<(u64, Fact, usize)>;

fn reporters(reports: &Reports, index: u64, fact: &Fact) -> usize {
    let mut who: Vec<usize> = reports
        .iter()
        .filter(|(i, f, _)| *i == index && f == fact)
        .map(|r| r.2)
        .collect();
    who.sort_unstable();
    who.dedup();
    who.len()
}

fuzz_target!(
    init: write_seeds(seeds()),
    |data: &[u8]| {
        let ids = validators();
        let mut q = FactQuorum::new(Committee::equal(ids.iter().copied()).expect("committee"));
        let (mut data, mut reports, mut accepted) = (data, Reports::new(), Vec::new());
        while let Some(part) = take_framed(&mut data) {
            let Some((&who, bytes)) = part.split_first() else {
                continue;
            };
            let Ok(msg) = decode::<NodeMessage>(bytes, MAX_LEN) else {
                continue;
            };
            assert_eq!(encode(&msg), bytes, "accepted a non-canonical message");
            if let NodeMessage::Certified(p) = &msg {
                let committee = q.committee();
                if p.verify(committee, None, &SignatureVerifier::plain()).is_ok() {
                    let stake: u64 = p.cert.votes.iter().map(|(i, _)| committee.stake(AuthorityIndex::new(*i))).sum();
                    assert!(committee.is_validity(stake), "verified below f + 1");
                }
            }
            let NodeMessage::Facts(batch) = msg else {
                continue;
            };
            let (who, index) = (usize::from(who) % VALIDATORS, batch.index);
            let sent = Arc::clone(&batch.facts);
            let Ok(out) = q.observe(Timestamp::ZERO, ids[who], batch) else {
                continue;
            };
            reports.extend(sent.iter().map(|f| (index, f.clone(), who)));
            for f in out {
                assert!(reporters(&reports, index, &f) >= 2, "accepted below f + 1");
                assert!(!accepted.contains(&(index, f.clone())), "accepted twice");
                accepted.push((index, f));
            }
        }
    }
);
