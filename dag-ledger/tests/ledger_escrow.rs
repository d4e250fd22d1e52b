//! Escrow: open, partial and full release, refund, expiry, bounds.

mod ledger_support;

use idlegrid_dag_ledger::ledger::*;
use idlegrid_primitives::{Amount, Epoch};
use ledger_support::*;

fn open(
    l: &mut Ledger,
    k: &[idlegrid_primitives::Keypair],
    amount: u128,
    deadline: u64,
) -> EscrowId {
    let t = tx(
        l,
        &k[0],
        TxKind::EscrowOpen {
            payee: acct(k, 1),
            amount: Amount::new(amount),
            deadline: Epoch::new(deadline),
        },
    );
    let epoch = l.epoch().get().max(1);
    match apply(l, epoch, &t).unwrap().outcome {
        Outcome::EscrowOpened(id) => id,
        o => panic!("{o:?}"),
    }
}

#[test]
fn partial_then_full_release_then_double_release() {
    let k = keys(2);
    let (payer, payee) = (acct(&k, 0), acct(&k, 1));
    let mut l = ledger(&k, 10_000, 0);
    let id = open(&mut l, &k, 3_000, 10);
    assert_eq!(l.balance(&payer), Amount::new(7_000));
    assert_eq!(l.escrow(id).unwrap().remaining, Amount::new(3_000));
    check_supply(&l).unwrap();

    // Escrowed funds cannot be spent again by the payer.
    let t = tx(
        &l,
        &k[0],
        TxKind::Transfer {
            to: payee,
            amount: Amount::new(7_001),
        },
    );
    assert_rejected(&mut l, 1, &t, |e| {
        matches!(e, LedgerError::InsufficientBalance { .. })
    });

    let rel = |l: &Ledger, amount| tx(l, &k[0], TxKind::EscrowRelease { escrow: id, amount });
    let t = rel(&l, Some(Amount::new(1_000)));
    let r = apply(&mut l, 2, &t).unwrap();
    assert_eq!(r.outcome, Outcome::EscrowSettled(Amount::new(1_000)));
    assert_eq!(l.balance(&payee), Amount::new(11_000));
    // More than remains; zero.
    let t = rel(&l, Some(Amount::new(2_001)));
    assert_rejected(&mut l, 2, &t, |e| {
        matches!(e, LedgerError::InsufficientEscrow { .. })
    });
    let t = rel(&l, Some(Amount::ZERO));
    assert_rejected(&mut l, 2, &t, |e| matches!(e, LedgerError::ZeroAmount));
    // Release the rest, then a double release.
    let t = rel(&l, None);
    apply(&mut l, 2, &t).unwrap();
    assert_eq!(l.balance(&payee), Amount::new(13_000));
    assert!(l.escrow(id).is_none());
    let t = rel(&l, None);
    assert_rejected(&mut l, 2, &t, |e| {
        matches!(e, LedgerError::UnknownEscrow(_))
    });
    assert_eq!(l.account(&payer).unwrap().open_escrows, 0);
}

#[test]
fn only_payer_releases_and_refund_rules() {
    let k = keys(3);
    let (payer, payee) = (acct(&k, 0), acct(&k, 1));
    let mut l = ledger(&k, 10_000, 0);
    let id = open(&mut l, &k, 3_000, 5);
    // Payee and third parties cannot release.
    for who in [1, 2] {
        let t = tx(
            &l,
            &k[who],
            TxKind::EscrowRelease {
                escrow: id,
                amount: None,
            },
        );
        assert_rejected(&mut l, 2, &t, |e| matches!(e, LedgerError::NotPayer(_)));
    }
    // Payer cannot refund before the deadline, a third party never.
    let t = tx(&l, &k[0], TxKind::EscrowRefund { escrow: id });
    assert_rejected(&mut l, 4, &t, |e| {
        matches!(e, LedgerError::NotRefundable(_))
    });
    let t = tx(&l, &k[2], TxKind::EscrowRefund { escrow: id });
    assert_rejected(&mut l, 9, &t, |e| {
        matches!(e, LedgerError::NotRefundable(_))
    });
    // At the deadline: expired for release, refundable by the payer.
    let t = tx(
        &l,
        &k[0],
        TxKind::EscrowRelease {
            escrow: id,
            amount: None,
        },
    );
    assert_rejected(
        &mut l,
        9,
        &t,
        |e| matches!(e, LedgerError::EscrowExpired { deadline, .. } if *deadline == Epoch::new(5)),
    );
    let r = submit(&mut l, 9, &k[0], TxKind::EscrowRefund { escrow: id }).unwrap();
    assert_eq!(r.outcome, Outcome::EscrowSettled(Amount::new(3_000)));
    assert_eq!(l.balance(&payer), Amount::new(10_000));
    let t = tx(&l, &k[0], TxKind::EscrowRefund { escrow: id });
    assert_rejected(&mut l, 9, &t, |e| {
        matches!(e, LedgerError::UnknownEscrow(_))
    });

    // The payee may hand back at any time.
    let id = open(&mut l, &k, 500, 20);
    submit(&mut l, 9, &k[1], TxKind::EscrowRefund { escrow: id }).unwrap();
    assert_eq!(l.balance(&payer), Amount::new(10_000));
    assert_eq!(l.balance(&payee), Amount::new(10_000));
}

#[test]
fn open_errors_and_bound() {
    let k = keys(2);
    let mut l = ledger(&k, 10_000, 0);
    let payee = acct(&k, 1);
    let kinds: Vec<Case> = vec![
        (
            TxKind::EscrowOpen {
                payee,
                amount: Amount::ZERO,
                deadline: Epoch::new(9),
            },
            |e| matches!(e, LedgerError::ZeroAmount),
        ),
        (
            TxKind::EscrowOpen {
                payee: acct(&k, 0),
                amount: Amount::new(1),
                deadline: Epoch::new(9),
            },
            |e| matches!(e, LedgerError::SelfTransfer),
        ),
        (
            TxKind::EscrowOpen {
                payee,
                amount: Amount::new(1),
                deadline: Epoch::new(1),
            },
            |e| matches!(e, LedgerError::DeadlineInPast { .. }),
        ),
        (
            TxKind::EscrowOpen {
                payee,
                amount: Amount::MAX,
                deadline: Epoch::new(9),
            },
            |e| matches!(e, LedgerError::InsufficientBalance { .. }),
        ),
        (
            TxKind::EscrowRelease {
                escrow: EscrowId::new(42),
                amount: None,
            },
            |e| matches!(e, LedgerError::UnknownEscrow(_)),
        ),
    ];
    for (kind, pred) in kinds {
        let t = tx(&l, &k[0], kind);
        assert_rejected(&mut l, 1, &t, pred);
    }
    for _ in 0..4 {
        open(&mut l, &k, 10, 9);
    }
    let t = tx(
        &l,
        &k[0],
        TxKind::EscrowOpen {
            payee,
            amount: Amount::new(1),
            deadline: Epoch::new(9),
        },
    );
    assert_rejected(&mut l, 1, &t, |e| {
        matches!(e, LedgerError::TooManyEscrows { max: 4 })
    });
}
