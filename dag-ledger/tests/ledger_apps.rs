//! The application hook: checked, transactional operations only.

mod ledger_support;

use idlegrid_dag_ledger::ledger::*;
use idlegrid_primitives::{Amount, Epoch, decode};
use ledger_support::*;

fn run_op(
    l: &mut Ledger,
    apps: &mut AppRegistry,
    epoch: u64,
    key: &idlegrid_primitives::Keypair,
    op: Op,
) -> Result<Receipt, LedgerError> {
    let t = tx(l, key, app_kind(&op));
    apply_with(l, epoch, &t, &mut Host::default_for(apps))
}

fn out<T: serde::Serialize + serde::de::DeserializeOwned>(r: &Receipt) -> T {
    match &r.outcome {
        Outcome::App(b) => decode(b, 1024).unwrap(),
        o => panic!("{o:?}"),
    }
}

#[test]
fn lock_then_slash_to_victim_and_burn() {
    let k = keys(2);
    let (provider, client) = (acct(&k, 0), acct(&k, 1));
    let mut l = ledger(&k, 10_000, 5_000);
    let mut apps = registry();
    let r = run_op(&mut l, &mut apps, 1, &k[0], Op::Lock(Amount::new(3_000))).unwrap();
    let lock: LockId = out(&r);
    assert_eq!(l.locked(&provider), Amount::new(3_000));
    // Locked stake can be neither unbonded nor locked twice.
    let t = tx(
        &l,
        &k[0],
        TxKind::Unbond {
            amount: Amount::new(2_001),
        },
    );
    assert_rejected(&mut l, 1, &t, |e| {
        matches!(e, LedgerError::InsufficientStake { .. })
    });
    let t = tx(&l, &k[0], app_kind(&Op::Lock(Amount::new(2_001))));
    assert_rejected_with(&mut l, 1, &t, &mut Host::default_for(&mut apps), |e| {
        matches!(e, LedgerError::InsufficientStake { .. })
    });
    // Verdict: 2_000 to the client, 1_000 burned; the lock is then closed.
    run_op(
        &mut l,
        &mut apps,
        1,
        &k[1],
        Op::SlashLock(lock, Amount::new(2_000), Some(client)),
    )
    .unwrap();
    run_op(
        &mut l,
        &mut apps,
        1,
        &k[1],
        Op::SlashLock(lock, Amount::new(1_000), None),
    )
    .unwrap();
    assert_eq!(l.balance(&client), Amount::new(12_000));
    assert_eq!(l.bonded(&provider), Amount::new(2_000));
    assert_eq!(
        (l.locked(&provider), l.burned()),
        (Amount::ZERO, Amount::new(1_000))
    );
    assert!(l.lock(lock).is_none());
    let t = tx(&l, &k[1], app_kind(&Op::Unlock(lock)));
    assert_rejected_with(&mut l, 1, &t, &mut Host::default_for(&mut apps), |e| {
        matches!(e, LedgerError::UnknownLock(_))
    });
}

#[test]
fn failing_app_rolls_back_all_its_operations() {
    let k = keys(2);
    let mut l = ledger(&k, 10_000, 5_000);
    let mut apps = registry();
    let both = Op::Then(
        Box::new(Op::Pay(acct(&k, 1), Amount::new(1_000))),
        Box::new(Op::Lock(Amount::new(1_000))),
    );
    let t = tx(&l, &k[0], app_kind(&Op::FailAfter(Box::new(both))));
    assert_rejected_with(&mut l, 1, &t, &mut Host::default_for(&mut apps), |e| {
        matches!(e, LedgerError::App { app, error } if *app == TEST_APP
            && error.decode::<TestAppError>() == Ok(TestAppError::FailingOnPurpose))
    });
    // A failing operation inside a successful app call leaves no trace.
    let partial = Op::Then(
        Box::new(Op::IgnoreErr(Box::new(Op::Open(
            acct(&k, 1),
            Amount::new(20_000),
            Epoch::new(9),
        )))),
        Box::new(Op::Pay(acct(&k, 1), Amount::new(1))),
    );
    run_op(&mut l, &mut apps, 1, &k[0], partial).unwrap();
    assert_eq!(l.balance(&acct(&k, 0)), Amount::new(9_999));
    assert_eq!(l.escrows().count(), 0);
}

#[test]
fn app_escrows_are_managed_only_by_their_app() {
    let k = keys(3);
    let (client, provider) = (acct(&k, 0), acct(&k, 1));
    let mut l = ledger(&k, 10_000, 0);
    let mut apps = registry();
    let r = run_op(
        &mut l,
        &mut apps,
        1,
        &k[0],
        Op::Open(provider, Amount::new(4_000), Epoch::new(5)),
    )
    .unwrap();
    let id: EscrowId = out(&r);
    assert_eq!(l.escrow(id).unwrap().app, Some(TEST_APP));
    // The payer cannot bypass the app.
    let t = tx(
        &l,
        &k[0],
        TxKind::EscrowRelease {
            escrow: id,
            amount: None,
        },
    );
    assert_rejected(&mut l, 1, &t, |e| {
        matches!(e, LedgerError::AppManaged { .. })
    });
    // The app releases part (anyone may trigger the app; the app decides).
    run_op(
        &mut l,
        &mut apps,
        1,
        &k[1],
        Op::Release(id, Some(Amount::new(1_000))),
    )
    .unwrap();
    assert_eq!(l.balance(&provider), Amount::new(11_000));
    // … and may pay a third party (an app owner's fee) out of it.
    let owner = acct(&k, 2);
    run_op(
        &mut l,
        &mut apps,
        1,
        &k[1],
        Op::ReleaseTo(id, Some(Amount::new(500)), owner),
    )
    .unwrap();
    assert_eq!(l.balance(&owner), Amount::new(10_500));
    // After the deadline the payer can always get the rest back.
    submit(&mut l, 5, &k[0], TxKind::EscrowRefund { escrow: id }).unwrap();
    assert_eq!(l.balance(&client), Amount::new(8_500));
    // Unknown app; oversized payload.
    let t = tx(
        &l,
        &k[0],
        TxKind::App {
            app_id: AppId::new(1),
            payload: vec![],
        },
    );
    assert_rejected_with(&mut l, 5, &t, &mut Host::default_for(&mut apps), |e| {
        matches!(e, LedgerError::UnknownApp(_))
    });
    let max = l.params().max_app_payload as usize;
    let t = tx(
        &l,
        &k[0],
        TxKind::App {
            app_id: TEST_APP,
            payload: vec![0; max + 1],
        },
    );
    assert_rejected_with(&mut l, 5, &t, &mut Host::default_for(&mut apps), |e| {
        matches!(e, LedgerError::PayloadTooLarge { .. })
    });
}

#[test]
fn an_app_cannot_touch_another_apps_lock() {
    struct Thief;
    impl Application for Thief {
        fn apply(
            &mut self,
            h: &mut LedgerHandle<'_, '_>,
            _: &[u8],
        ) -> Result<Vec<u8>, LedgerError> {
            let me = h.sender();
            h.slash_lock(LockId::new(0), Amount::new(1), Some(&me))
                .map(|_| vec![])
        }
    }
    let k = keys(2);
    let mut l = ledger(&k, 10_000, 5_000);
    let mut apps = registry();
    apps.register(AppId::new(8), Box::new(Thief));
    run_op(&mut l, &mut apps, 1, &k[0], Op::Lock(Amount::new(100))).unwrap();
    let t = tx(
        &l,
        &k[1],
        TxKind::App {
            app_id: AppId::new(8),
            payload: vec![],
        },
    );
    assert_rejected_with(&mut l, 1, &t, &mut Host::default_for(&mut apps), |e| {
        matches!(e, LedgerError::NotLockOwner(_))
    });
}

/// An application with time-driven work: it pays out its escrows once the
/// batch time reaches their due time, from the end-of-batch hook.
#[derive(Default)]
struct TimedRelease {
    due: Vec<(idlegrid_primitives::Timestamp, EscrowId)>,
    hooks: u32,
}

impl Application for TimedRelease {
    fn apply(
        &mut self,
        h: &mut LedgerHandle<'_, '_>,
        payload: &[u8],
    ) -> Result<Vec<u8>, LedgerError> {
        let (payee, amount, after_ms): (idlegrid_primitives::AccountId, Amount, u64) =
            decode(payload, 256).map_err(|_| h.reject(&TestAppError::Malformed))?;
        let id = h.open_escrow(&payee, amount, Epoch::new(1_000))?;
        let due = h.now() + idlegrid_primitives::Duration::from_millis(after_ms);
        self.due.push((due, id));
        Ok(Vec::new())
    }

    fn end_batch(&mut self, h: &mut ManagedHandle<'_, '_>) {
        self.hooks += 1;
        let now = h.now();
        let (ready, later): (Vec<_>, Vec<_>) = self.due.drain(..).partition(|(t, _)| *t <= now);
        self.due = later;
        for (_, id) in ready {
            h.release_escrow(id, None).expect("the app's own escrow");
        }
    }
}

struct One(TimedRelease);

impl ApplicationRegistry for One {
    fn get_mut(&mut self, id: AppId) -> Option<&mut dyn Application> {
        (id == TEST_APP).then_some(&mut self.0 as &mut dyn Application)
    }
    fn app_ids(&self) -> Vec<AppId> {
        vec![TEST_APP]
    }
}

#[test]
fn end_batch_runs_time_driven_work_without_transactions() {
    let k = keys(2);
    let payee = acct(&k, 1);
    let mut l = ledger(&k, 10_000, 0);
    let mut apps = One(TimedRelease::default());
    let payload = idlegrid_primitives::encode(&(payee, Amount::new(700), 1_500u64));
    let t = tx(
        &l,
        &k[0],
        TxKind::App {
            app_id: TEST_APP,
            payload,
        },
    );
    apply_with(&mut l, 1, &t, &mut Host::default_for(&mut apps)).unwrap();
    let digest = l.state_digest();
    // An empty batch before the due time: the hook runs, nothing moves.
    let empty: [&[u8]; 0] = [];
    l.apply_batch(ctx(2), &empty, &mut Host::default_for(&mut apps))
        .unwrap();
    assert_eq!((apps.0.hooks, l.balance(&payee)), (2, Amount::new(10_000)));
    assert_eq!(apps.0.due.len(), 1);
    // An empty batch past it: the escrow is paid, with no transaction.
    let r = l
        .apply_batch(ctx(3), &empty, &mut Host::default_for(&mut apps))
        .unwrap();
    assert_eq!(l.balance(&payee), Amount::new(10_700));
    assert_ne!(r.state_digest, digest);
    assert_eq!(
        r.state_digest,
        l.state_digest(),
        "the hook's writes are in the digest"
    );
    check_all(&l).unwrap();
    // A registry that lists no ids gets no hooks (the default).
    let mut plain = registry();
    l.apply_batch(ctx(4), &empty, &mut Host::default_for(&mut plain))
        .unwrap();
}
