//! The marketplace application on hand-built ledger batches: a job from
//! post to settlement with no keeper transactions (clearing and deadlines
//! run in the ledger's end-of-batch hook), a provider caught on a trap, a
//! framing client losing its bond, and a silent provider defaulting. Prices
//! arrive sealed and are revealed by the light side's `Sealer`.

use idlegrid_dag_ledger::ledger::{Host, Nonce, SignatureCheck, Transaction, TxKind};
use idlegrid_entrap::{Outcome, Verdict};
use idlegrid_node::batch::batch_context;
use idlegrid_node::market::{MARKETPLACE_APP, MarketError, MarketTx, Notice};
use idlegrid_primitives::{Amount, encode};
use idlegrid_reputation::Role as RepRole;

mod common;

use common::{BOND, World};

#[test]
fn a_clean_job_settles_and_pays_without_keeper_ticks() {
    let mut w = World::new();
    let supply = w.ledger.total_supply();
    let before = w.wealth(&w.provider);
    w.matched_lot();
    let plan = w.plan(false);
    let outputs = w.deliver(&plan, false);
    w.verify(&plan, &outputs);
    let s = w.idle_until_settled();
    assert_eq!(s.outcome, Outcome::Clean);
    let price = w
        .notices
        .iter()
        .find_map(|n| match n {
            Notice::Matched { price, .. } => Some(*price),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        price,
        Amount::new(150),
        "k-double, k = 1/2, between 100 and 200"
    );
    assert_eq!(s.paid, Amount::new(300), "price × 2 s metered");
    assert!(s.slashed.is_zero() && s.bond_forfeited.is_zero());
    assert_eq!(w.wealth(&w.provider), before + 300);
    assert!(
        w.notices
            .iter()
            .any(|n| matches!(n, Notice::JobClosed { .. }))
    );
    assert_eq!(w.ledger.total_supply(), supply);
    assert_eq!(w.apps.market.open_jobs(), 0);
}

#[test]
fn a_provider_caught_on_a_trap_loses_its_stake() {
    let mut w = World::new();
    let (client0, provider0) = (w.wealth(&w.client), w.wealth(&w.provider));
    w.matched_lot();
    let plan = w.plan(false);
    let outputs = w.deliver(&plan, true);
    w.verify(&plan, &outputs);
    let accused = w
        .notices
        .iter()
        .any(|n| matches!(n, Notice::Accused { .. }));
    assert!(accused, "the client accused the cheater");
    let tx = MarketTx::Accept {
        client: w.client.account_id(),
        job: 0,
        lot: 0,
    };
    w.batch(100, vec![(w.provider.clone(), tx)]);
    let s = w.idle_until_settled();
    assert_eq!(s.outcome, Outcome::Admitted);
    assert!(s.paid.is_zero());
    assert!(!s.slashed.is_zero());
    assert_eq!(w.wealth(&w.provider), provider0 - s.slashed.get());
    assert!(w.wealth(&w.client) > client0, "the client gets its share");
    // The verdict reached the book as negative evidence on the provider.
    let node = w.provider.account_id().node();
    let state = w
        .apps
        .market
        .book()
        .state(&node, RepRole::Provider)
        .unwrap();
    assert!(state.negative > state.positive, "{state:?}");
}

#[test]
fn a_framing_client_loses_its_bond_to_the_provider() {
    let mut w = World::new();
    let provider0 = w.wealth(&w.provider);
    w.matched_lot();
    let plan = w.plan(true);
    let outputs = w.deliver(&plan, false);
    w.verify(&plan, &outputs);
    // Referees draw VRF tickets; the committee is seated when the ticket
    // window closes, and every member re-executes the disputed trap.
    let (committee, disputed) = w.dispute_until_seated();
    assert_eq!(committee.len(), 3);
    let votes = w.votes(&committee, &disputed);
    w.batch(100, votes);
    let s = w.idle_until_settled();
    assert_eq!(s.outcome, Outcome::Judged(Verdict::ClientFramed));
    // The majority referees' fees come out of the framing client's bond.
    assert_eq!(s.referee_fees, Amount::new(3 * common::REFEREE_FEE));
    assert_eq!(
        s.bond_forfeited,
        Amount::new(BOND - 3 * common::REFEREE_FEE)
    );
    assert!(s.slashed.is_zero());
    let bond = BOND - 3 * common::REFEREE_FEE;
    assert!(w.wealth(&w.provider) >= provider0 + bond, "bond and pay");
}

#[test]
fn a_silent_provider_defaults_when_its_deadline_passes_in_an_empty_batch() {
    let mut w = World::new();
    w.matched_lot();
    let _plan = w.plan(false);
    // Nobody sends anything: the stage deadline fires at the end of an
    // empty batch.
    let s = w.idle_until_settled();
    assert_eq!(s.outcome, Outcome::ProviderDefaulted);
    assert!(s.paid.is_zero());
}

#[test]
fn a_rejected_transaction_changes_nothing() {
    let mut w = World::new();
    w.matched_lot();
    let digest = w.ledger.state_digest();
    // A delivery for a lot that has no open round (no plan yet).
    let tx = Transaction {
        chain: w.ledger.params().chain_id,
        sender: w.provider.account_id(),
        nonce: Nonce::new(w.nonces[&w.provider.account_id()]),
        kind: TxKind::App {
            app_id: MARKETPLACE_APP,
            payload: encode(&MarketTx::Accept {
                client: w.client.account_id(),
                job: 0,
                lot: 0,
            }),
        },
    }
    .sign(&w.provider)
    .to_bytes();
    let ctx = batch_context(w.now, 1, w.ledger.epoch(), w.beacon());
    let mut host = Host {
        signatures: SignatureCheck::Single,
        ..Host::default_for(&mut w.apps)
    };
    let r = w.ledger.apply_batch(ctx, &[tx], &mut host).unwrap();
    let err = r.receipts[0].as_ref().unwrap_err();
    // The receipt carries the marketplace's own error, typed.
    assert_eq!(
        MarketError::from_ledger(err),
        Some(MarketError::NoOpenRound { job: 0, lot: 0 }),
        "{err}"
    );
    assert_eq!(w.ledger.state_digest(), digest);
    // Garbage payloads are typed rejections too.
    let junk = Transaction {
        chain: w.ledger.params().chain_id,
        sender: w.provider.account_id(),
        nonce: Nonce::new(w.nonces[&w.provider.account_id()]),
        kind: TxKind::App {
            app_id: MARKETPLACE_APP,
            payload: vec![0xff; 40],
        },
    }
    .sign(&w.provider)
    .to_bytes();
    let mut host = Host {
        signatures: SignatureCheck::Single,
        ..Host::default_for(&mut w.apps)
    };
    let r = w.ledger.apply_batch(ctx, &[junk], &mut host).unwrap();
    let err = r.receipts[0].as_ref().unwrap_err();
    assert_eq!(
        MarketError::from_ledger(err),
        Some(MarketError::Malformed),
        "{err}"
    );
    assert_eq!(w.ledger.state_digest(), digest);
}
