//! The light node's outbox on hand-built facts: nonce rejections.

use idlegrid_dag_ledger::consensus::Committee;
use idlegrid_dag_ledger::ledger::{ChainId, Params, SignedTransaction, TxKind};
use idlegrid_node::light::{LightCore, LightSetup};
use idlegrid_node::wire::{Fact, FactBatch, GatewayRequest, NodeMessage, Rejection, RejectionKind};
use idlegrid_primitives::{AccountId, Amount, Duration, Keypair, NodeId, Seed, Timestamp};

fn core() -> (LightCore, Vec<NodeId>) {
    let validators: Vec<NodeId> = (0..4)
        .map(|i| Keypair::from_seed(&Seed::from_u64(i)).node_id())
        .collect();
    let chain: ChainId = Params::default().chain_id;
    let setup = LightSetup {
        key: Keypair::from_seed(&Seed::from_u64(99)),
        chain,
        committee: Committee::equal(validators.iter().copied()).unwrap(),
        first_gateway: 0,
        patience: Duration::from_secs(5),
        fanout: 1,
        fact_sources: 0,
        fact_window: Default::default(),
        delivery: Default::default(),
        signatures: Default::default(),
        next_nonce: Some(0),
    };
    (LightCore::new(setup), validators)
}

fn submitted(c: &mut LightCore) -> Vec<SignedTransaction> {
    std::iter::from_fn(|| c.poll_transmit())
        .filter_map(|t| match t.msg {
            NodeMessage::Gateway(GatewayRequest::Submit(tx)) => Some(*tx),
            _ => None,
        })
        .collect()
}

fn pay(n: u128) -> TxKind {
    TxKind::Transfer {
        to: AccountId::from_bytes([7; 32]),
        amount: Amount::new(n),
    }
}

/// Another process with the same key used nonces 0..5: the rejected
/// payload is signed again at 5, after the one still in flight, which is
/// left alone (it may still apply as signed, so signing it again could pay
/// twice).
#[test]
fn a_nonce_taken_by_another_signer_moves_only_that_payload_past_it() {
    let (mut c, vs) = core();
    let now = Timestamp::ZERO;
    c.submit(now, pay(1)).unwrap();
    c.submit(now, pay(2)).unwrap();
    let sent = submitted(&mut c);
    assert_eq!(sent.len(), 2);
    let reason = Box::new(Rejection {
        kind: RejectionKind::Nonce,
        market: None,
        detail: "bad nonce".into(),
        expected_nonce: Some(5),
    });
    let fact = Fact::Rejected {
        sender: c.account(),
        tx: sent[0].id(),
        reason,
    };
    for v in &vs[..2] {
        let batch = FactBatch {
            index: 9,
            facts: vec![fact.clone()].into(),
        };
        let (_, fates) = c.on_facts(now, *v, batch).unwrap();
        assert!(fates.is_empty(), "retried, not given up: {fates:?}");
    }
    let again = submitted(&mut c);
    assert_eq!(again.len(), 1, "only the rejected payload: {again:?}");
    assert_eq!(again[0].tx.nonce.get(), 5);
    assert_eq!(again[0].tx.kind, pay(1));
    assert_eq!(c.inflight(), 2);
    c.submit(now, pay(3)).unwrap();
    assert_eq!(submitted(&mut c)[0].tx.nonce.get(), 6);
}
