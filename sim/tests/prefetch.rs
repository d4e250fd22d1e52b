//! Signatures checked ahead on a worker thread (`idlegrid_sim::prefetch`):
//! the worker remembers exactly the signatures that verify, each once, and
//! a marketplace run reaches the same digest with it or without it (and
//! with validators' audits on a worker or inline, `idlegrid_sim::audit`).

use std::sync::Arc;

use idlegrid_dag_ledger::consensus::{Block, Committee, ConsensusConfig, ConsensusMessage};
use idlegrid_dag_ledger::ledger::{ChainId, Nonce, SignedTransaction, Transaction, TxKind};
use idlegrid_node::wire::{GatewayRequest, NodeMessage};
use idlegrid_primitives::{
    AccountId, Amount, Keypair, Round, Seed, SignatureMemo, SignatureVerifier, Timestamp,
};
use idlegrid_sim::marketplace::{MarketplaceConfig, run_marketplace};
use idlegrid_sim::prefetch::SignaturePrefetch;

fn transfer(key: &Keypair, nonce: u64) -> SignedTransaction {
    Transaction {
        chain: ChainId::new(0),
        sender: key.node_id().account(),
        nonce: Nonce::new(nonce),
        kind: TxKind::Transfer {
            to: AccountId::from_bytes([9; 32]),
            amount: Amount::new(1),
        },
    }
    .sign(key)
}

/// A round 1 block of authority 0, on the genesis blocks of all four.
fn block(key: &Keypair) -> Arc<Block> {
    let parents = (0..4)
        .map(|a| Block::genesis(idlegrid_dag_ledger::consensus::AuthorityIndex::new(a)).reference())
        .collect();
    let author = idlegrid_dag_ledger::consensus::AuthorityIndex::new(0);
    Arc::new(Block::new_signed(
        key,
        author,
        Round::new(1),
        Timestamp::ZERO,
        parents,
        Vec::new(),
    ))
}

#[test]
fn the_worker_remembers_what_verifies_once_and_nothing_else() {
    let keys: Vec<Keypair> = (0..4)
        .map(|i| Keypair::from_seed(&Seed::from_u64(i)))
        .collect();
    let committee = Committee::equal(keys.iter().map(Keypair::node_id)).unwrap();
    let memo = SignatureMemo::shared(&Seed::from_u64(99));
    let verifier = SignatureVerifier::memoized(Arc::clone(&memo));
    let good = transfer(&keys[1], 0);
    let mut forged = transfer(&keys[2], 0);
    forged.tx.nonce = Nonce::new(1); // signed for nonce 0
    let b = block(&keys[0]);
    let mut prefetch = SignaturePrefetch::start(
        verifier.clone(),
        committee.clone(),
        ConsensusConfig::default(),
    );
    for _ in 0..3 {
        // One transaction to three validators, one block to three peers.
        prefetch.offer(&NodeMessage::Gateway(GatewayRequest::Submit(Box::new(
            good.clone(),
        ))));
        prefetch.offer(&NodeMessage::Consensus(ConsensusMessage::Block(
            Arc::clone(&b),
        )));
    }
    prefetch.offer_transaction(&forged);
    drop(prefetch); // the worker finishes what was queued
    let after = memo.stats();
    // Each offered once: three checks (block, transaction, forgery), or
    // five when the forgery shared a batch with the good transaction (both
    // looked up for the batch, which fails, then checked one by one); how
    // the worker's batches fall depends on the threads' timing.
    assert_eq!(after.hits, 0);
    assert!([3, 5].contains(&after.misses), "{after:?}");
    // The recipients' own checks: the two valid ones are lookups now.
    good.verify_with(&verifier).unwrap();
    let config = ConsensusConfig::default();
    idlegrid_dag_ledger::consensus::VerifiedBlock::verify_with(b, &committee, &config, &verifier)
        .unwrap();
    assert_eq!(memo.stats().hits, 2);
    // The forgery was not remembered: it still fails, and is checked again.
    assert!(forged.verify_with(&verifier).is_err());
    assert_eq!(memo.stats().misses, after.misses + 1);
}

#[test]
fn a_run_is_the_same_with_or_without_worker_threads() {
    let cfg = MarketplaceConfig {
        seed: 4,
        validators: 7,
        providers: 30,
        clients: 6,
        cheater_fraction: 0.2,
        active_secs: 8,
        drain_secs: 40,
        job_interval_secs: 2.0,
        ..MarketplaceConfig::default()
    };
    let on = run_marketplace(&cfg).expect("run");
    let off = run_marketplace(&MarketplaceConfig {
        prefetch_signatures: false,
        background_audits: false,
        ..cfg
    })
    .expect("run");
    assert!(on.jobs_completed > 0);
    assert_eq!(on.digest, off.digest);
    assert_eq!(on.ledger_digest, off.ledger_digest);
    // Audits ran on the worker in one run and inline in the other: the same
    // number, none failed.
    assert_eq!(on.summary.ledger, off.summary.ledger);
    assert!(on.summary.ledger["batches_checked"].as_u64() > Some(0));
    assert_eq!(on.summary.ledger["invariant_violations"], 0);
}
