//! Fee-less transfers, nonces, signatures, quota and malformed input.

mod ledger_support;

use idlegrid_dag_ledger::ledger::*;
use idlegrid_primitives::{
    Amount, Epoch, Keypair, Seed, Signature, SignatureMemo, SignatureVerifier,
};
use ledger_support::*;

#[test]
fn transfer_moves_funds_and_bumps_nonce() {
    let k = keys(2);
    let mut l = ledger(&k, 10_000, 0);
    let t = tx(
        &l,
        &k[0],
        TxKind::Transfer {
            to: acct(&k, 1),
            amount: Amount::new(2_500),
        },
    );
    let r = apply(&mut l, 1, &t).unwrap();
    assert_eq!(r.outcome, Outcome::Done);
    assert_eq!(r.tx_id, t.id());
    assert_eq!(l.balance(&acct(&k, 0)), Amount::new(7_500));
    assert_eq!(l.balance(&acct(&k, 1)), Amount::new(12_500));
    assert_eq!(l.nonce(&acct(&k, 0)), Nonce::new(1));
    assert_eq!(l.total_supply(), Amount::new(20_000));
}

#[test]
fn replayed_nonce_is_rejected_without_effect() {
    let k = keys(2);
    let mut l = ledger(&k, 10_000, 0);
    let t = tx(
        &l,
        &k[0],
        TxKind::Transfer {
            to: acct(&k, 1),
            amount: Amount::new(1),
        },
    );
    apply(&mut l, 1, &t).unwrap();
    assert_rejected(
        &mut l,
        1,
        &t,
        |e| matches!(e, LedgerError::BadNonce { expected, got } if *expected == Nonce::new(1) && *got == Nonce::new(0)),
    );
    // A gap is rejected too.
    let mut future = tx(
        &l,
        &k[0],
        TxKind::Transfer {
            to: acct(&k, 1),
            amount: Amount::new(1),
        },
    )
    .tx;
    future.nonce = Nonce::new(5);
    assert_rejected(&mut l, 1, &future.sign(&k[0]), |e| {
        matches!(e, LedgerError::BadNonce { .. })
    });
}

#[test]
fn bad_amounts_and_accounts_are_rejected() {
    let k = keys(2);
    let mut l = ledger(&k, 10_000, 0);
    let to = acct(&k, 1);
    let cases: Vec<Case> = vec![
        (
            TxKind::Transfer {
                to,
                amount: Amount::ZERO,
            },
            |e| matches!(e, LedgerError::ZeroAmount),
        ),
        (
            TxKind::Transfer {
                to: acct(&k, 0),
                amount: Amount::new(1),
            },
            |e| matches!(e, LedgerError::SelfTransfer),
        ),
        (
            TxKind::Transfer {
                to,
                amount: Amount::new(10_001),
            },
            |e| matches!(e, LedgerError::InsufficientBalance { .. }),
        ),
        (
            TxKind::Transfer {
                to,
                amount: Amount::MAX,
            },
            |e| matches!(e, LedgerError::InsufficientBalance { .. }),
        ),
    ];
    for (kind, pred) in cases {
        let t = tx(&l, &k[0], kind);
        assert_rejected(&mut l, 1, &t, pred);
    }
    // New account: below the minimum, or not a valid key.
    let fresh = Keypair::from_seed(&Seed::from_u64(99)).account_id();
    let t = tx(
        &l,
        &k[0],
        TxKind::Transfer {
            to: fresh,
            amount: Amount::new(99),
        },
    );
    assert_rejected(&mut l, 1, &t, |e| {
        matches!(e, LedgerError::NewAccountTooSmall { .. })
    });
    let junk = idlegrid_primitives::AccountId::from_bytes([0xff; 32]);
    let t = tx(
        &l,
        &k[0],
        TxKind::Transfer {
            to: junk,
            amount: Amount::new(500),
        },
    );
    assert_rejected(&mut l, 1, &t, |e| {
        matches!(e, LedgerError::InvalidRecipient(_))
    });
    // A valid new account with enough is created.
    let t = tx(
        &l,
        &k[0],
        TxKind::Transfer {
            to: fresh,
            amount: Amount::new(100),
        },
    );
    apply(&mut l, 1, &t).unwrap();
    assert_eq!(l.balance(&fresh), Amount::new(100));
}

#[test]
fn overflowing_credit_is_rejected() {
    // Genesis holds almost u128::MAX in two accounts; adding them overflows
    // only if the supply did, so build a receiver close to the edge.
    let k = keys(2);
    let g = Genesis {
        balances: vec![
            (acct(&k, 0), Amount::new(10)),
            (acct(&k, 1), Amount::new(u128::MAX - 10)),
        ],
        stakes: vec![],
        params: params(),
    };
    let mut l = Ledger::new(g).unwrap();
    let t = tx(
        &l,
        &k[0],
        TxKind::Transfer {
            to: acct(&k, 1),
            amount: Amount::new(10),
        },
    );
    apply(&mut l, 1, &t).unwrap();
    assert_eq!(l.balance(&acct(&k, 1)), Amount::MAX);
    // Genesis whose supply overflows is refused.
    let g = Genesis {
        balances: vec![(acct(&k, 0), Amount::MAX), (acct(&k, 1), Amount::new(1))],
        stakes: vec![],
        params: params(),
    };
    assert!(matches!(
        Ledger::new(g),
        Err(LedgerError::InvalidGenesis(_))
    ));
}

#[test]
fn unknown_sender_wrong_chain_and_bad_signatures() {
    let k = keys(2);
    let mut l = ledger(&k, 10_000, 0);
    let stranger = Keypair::from_seed(&Seed::from_u64(77));
    let t = tx(&l, &stranger, TxKind::Withdraw);
    assert_rejected(&mut l, 1, &t, |e| {
        matches!(e, LedgerError::UnknownAccount(_))
    });

    let mut other_chain = tx(&l, &k[0], TxKind::Withdraw).tx;
    other_chain.chain = ChainId::new(9);
    assert_rejected(&mut l, 1, &other_chain.sign(&k[0]), |e| {
        matches!(e, LedgerError::WrongChain { .. })
    });

    // Signed by someone else; and a garbage signature.
    let kind = TxKind::Transfer {
        to: acct(&k, 1),
        amount: Amount::new(5),
    };
    let forged = tx(&l, &k[0], kind.clone()).tx.sign(&k[1]);
    assert_rejected(&mut l, 1, &forged, |e| {
        matches!(e, LedgerError::BadSignature(_))
    });
    let mut garbage = tx(&l, &k[0], kind);
    garbage.signature = Signature::from_bytes([7; 64]);
    assert_rejected(&mut l, 1, &garbage, |e| {
        matches!(e, LedgerError::BadSignature(_))
    });
}

#[test]
fn batch_with_one_bad_signature_still_applies_the_good_ones() {
    let k = keys(3);
    let mut l = ledger(&k, 10_000, 0);
    let good0 = tx(
        &l,
        &k[0],
        TxKind::Transfer {
            to: acct(&k, 2),
            amount: Amount::new(1),
        },
    );
    let bad = tx(
        &l,
        &k[1],
        TxKind::Transfer {
            to: acct(&k, 2),
            amount: Amount::new(1),
        },
    )
    .tx
    .sign(&k[0]);
    let good2 = tx(
        &l,
        &k[2],
        TxKind::Transfer {
            to: acct(&k, 0),
            amount: Amount::new(1),
        },
    );
    let bytes = vec![
        good0.to_bytes(),
        bad.to_bytes(),
        good2.to_bytes(),
        vec![1, 2, 3],
    ];
    for mode in [SignatureCheck::Batch, SignatureCheck::Single] {
        let mut l2 = l.clone();
        let mut apps = NoApps;
        let mut host = Host {
            signatures: mode,
            ..Host::default_for(&mut apps)
        };
        let r = l2.apply_batch(ctx(1), &bytes, &mut host).unwrap();
        assert!(r.receipts[0].is_ok());
        assert!(matches!(r.receipts[1], Err(LedgerError::BadSignature(_))));
        assert!(r.receipts[2].is_ok());
        assert!(matches!(r.receipts[3], Err(LedgerError::Malformed(_))));
        assert_eq!((r.applied(), r.rejected()), (2, 2));
    }
    // Through a memoizing verifier that already checked `good0` (say at
    // the gateway): the same receipts, `good0` not verified again, and the
    // forged one refused however the rest was learned.
    let memo = SignatureMemo::shared(&Seed::from_u64(9));
    let verifier = SignatureVerifier::memoized(memo.clone());
    good0.verify_with(&verifier).unwrap();
    assert!(bad.verify_with(&verifier).is_err());
    let before = memo.stats();
    for mode in [SignatureCheck::Batch, SignatureCheck::Single] {
        let mut l2 = l.clone();
        let mut apps = NoApps;
        let mut host = Host {
            signatures: mode,
            verifier: &verifier,
            ..Host::default_for(&mut apps)
        };
        let r = l2.apply_batch(ctx(1), &bytes, &mut host).unwrap();
        assert!(r.receipts[0].is_ok() && r.receipts[2].is_ok());
        assert!(matches!(r.receipts[1], Err(LedgerError::BadSignature(_))));
        assert_eq!((r.applied(), r.rejected()), (2, 2));
    }
    assert!(memo.stats().hits > before.hits, "good0 came from the memo");
    // Skip applies the forged one: only for pre-verified input.
    let mut apps = NoApps;
    let mut host = Host {
        signatures: SignatureCheck::Skip,
        ..Host::default_for(&mut apps)
    };
    let r = l.apply_batch(ctx(1), &bytes, &mut host).unwrap();
    assert_eq!(r.applied(), 3);
}

#[test]
fn quota_limits_transactions_per_epoch_and_resets() {
    let k = keys(2);
    // Balance 2_500 with unit 1_000 and base 4: quota 6 (read before each tx).
    let mut l = ledger(&k, 2_500, 0);
    let mut applied = 0;
    loop {
        let t = tx(
            &l,
            &k[0],
            TxKind::Transfer {
                to: acct(&k, 1),
                amount: Amount::new(1),
            },
        );
        match apply(&mut l, 1, &t) {
            Ok(_) => applied += 1,
            Err(LedgerError::QuotaExceeded { quota, epoch }) => {
                assert_eq!((quota, epoch), (6, Epoch::new(1)));
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(applied, 6);
    assert_eq!(l.quota_remaining(&acct(&k, 0), Epoch::new(1)), 0);
    let t = tx(
        &l,
        &k[0],
        TxKind::Transfer {
            to: acct(&k, 1),
            amount: Amount::new(1),
        },
    );
    assert_rejected(&mut l, 1, &t, |e| {
        matches!(e, LedgerError::QuotaExceeded { .. })
    });
    // Next epoch: fresh quota.
    apply(&mut l, 2, &t).unwrap();
}

#[test]
fn malformed_bytes_and_epoch_regression() {
    let k = keys(1);
    let mut l = ledger(&k, 10_000, 0);
    let t = tx(&l, &k[0], TxKind::Withdraw);
    let mut bytes = t.to_bytes();
    bytes.push(0);
    let mut apps = NoApps;
    let mut host = Host::default_for(&mut apps);
    let before = l.state_digest();
    let r = l
        .apply_batch(ctx(0), &[bytes, vec![], vec![0xff; 100]], &mut host)
        .unwrap();
    assert!(
        r.receipts
            .iter()
            .all(|r| matches!(r, Err(LedgerError::Malformed(_))))
    );
    assert_eq!(l.state_digest(), before);
    l.apply_batch(ctx(5), &[] as &[Vec<u8>], &mut host).unwrap();
    assert!(matches!(
        l.apply_batch(ctx(4), &[] as &[Vec<u8>], &mut host),
        Err(LedgerError::EpochRegressed { .. })
    ));
}

#[test]
fn genesis_rejects_duplicates_and_invalid_keys() {
    let k = keys(1);
    let dup = Genesis {
        balances: vec![(acct(&k, 0), Amount::new(1)), (acct(&k, 0), Amount::new(2))],
        stakes: vec![],
        params: params(),
    };
    assert!(matches!(
        Ledger::new(dup),
        Err(LedgerError::InvalidGenesis(_))
    ));
    let bad_key = Genesis {
        balances: vec![(
            idlegrid_primitives::AccountId::from_bytes([0xff; 32]),
            Amount::new(1),
        )],
        stakes: vec![],
        params: params(),
    };
    assert!(matches!(
        Ledger::new(bad_key),
        Err(LedgerError::InvalidGenesis(_))
    ));
    let bad_params = Genesis {
        balances: vec![],
        stakes: vec![],
        params: Params {
            quota_unit: Amount::ZERO,
            ..params()
        },
    };
    assert!(matches!(
        Ledger::new(bad_params),
        Err(LedgerError::InvalidGenesis(_))
    ));
}
