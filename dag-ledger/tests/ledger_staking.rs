//! Bond, unbond with a delay, withdraw, bounds.

mod ledger_support;

use idlegrid_dag_ledger::ledger::*;
use idlegrid_primitives::Amount;
use ledger_support::*;

#[test]
fn bond_unbond_withdraw_after_delay() {
    let k = keys(1);
    let a = acct(&k, 0);
    let mut l = ledger(&k, 10_000, 0);
    submit(
        &mut l,
        1,
        &k[0],
        TxKind::Bond {
            amount: Amount::new(4_000),
        },
    )
    .unwrap();
    assert_eq!(
        (l.balance(&a), l.bonded(&a)),
        (Amount::new(6_000), Amount::new(4_000))
    );
    submit(
        &mut l,
        1,
        &k[0],
        TxKind::Unbond {
            amount: Amount::new(1_500),
        },
    )
    .unwrap();
    assert_eq!(l.bonded(&a), Amount::new(2_500));
    assert_eq!(l.unbonding(&a), Amount::new(1_500));
    // Delay is 3 epochs: released at epoch 4.
    for epoch in [1, 2, 3] {
        let t = tx(&l, &k[0], TxKind::Withdraw);
        assert_rejected(&mut l, epoch, &t, |e| {
            matches!(e, LedgerError::NothingToWithdraw)
        });
    }
    let r = submit(&mut l, 4, &k[0], TxKind::Withdraw).unwrap();
    assert_eq!(r.outcome, Outcome::Withdrawn(Amount::new(1_500)));
    assert_eq!(l.balance(&a), Amount::new(7_500));
    assert_eq!(l.unbonding(&a), Amount::ZERO);
    check_supply(&l).unwrap();
}

#[test]
fn staking_errors_change_nothing() {
    let k = keys(1);
    let mut l = ledger(&k, 10_000, 1_000);
    let cases: Vec<Case> = vec![
        (
            TxKind::Bond {
                amount: Amount::ZERO,
            },
            |e| matches!(e, LedgerError::ZeroAmount),
        ),
        (
            TxKind::Bond {
                amount: Amount::new(10_001),
            },
            |e| matches!(e, LedgerError::InsufficientBalance { .. }),
        ),
        (
            TxKind::Bond {
                amount: Amount::MAX,
            },
            |e| matches!(e, LedgerError::InsufficientBalance { .. }),
        ),
        (
            TxKind::Unbond {
                amount: Amount::new(1_001),
            },
            |e| matches!(e, LedgerError::InsufficientStake { .. }),
        ),
        (
            TxKind::Unbond {
                amount: Amount::ZERO,
            },
            |e| matches!(e, LedgerError::ZeroAmount),
        ),
    ];
    for (kind, pred) in cases {
        let t = tx(&l, &k[0], kind);
        assert_rejected(&mut l, 1, &t, pred);
    }
}

#[test]
fn unbonding_queue_is_bounded() {
    let k = keys(1);
    let mut l = ledger(&k, 10_000, 1_000);
    for _ in 0..2 {
        submit(
            &mut l,
            1,
            &k[0],
            TxKind::Unbond {
                amount: Amount::new(10),
            },
        )
        .unwrap();
    }
    let t = tx(
        &l,
        &k[0],
        TxKind::Unbond {
            amount: Amount::new(10),
        },
    );
    assert_rejected(&mut l, 1, &t, |e| {
        matches!(e, LedgerError::TooManyUnbondings { max: 2 })
    });
    // Withdrawing matured entries frees room.
    submit(&mut l, 4, &k[0], TxKind::Withdraw).unwrap();
    submit(
        &mut l,
        4,
        &k[0],
        TxKind::Unbond {
            amount: Amount::new(10),
        },
    )
    .unwrap();
}
