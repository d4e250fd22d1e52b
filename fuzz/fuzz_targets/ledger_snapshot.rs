//! `Ledger::from_snapshot` on untrusted bytes never panics; an accepted
//! snapshot re-encodes to the same bytes and satisfies `check_all`.
#![no_main]

use idlegrid_dag_ledger::ledger::{
    AppRegistry, BatchContext, Host, Ledger, SignatureCheck, TxKind, check_all,
};
use idlegrid_fuzz::ledger_fixture::{APP, FuzzApp, FuzzEvidence, accounts, keys, ledger, transaction};
use idlegrid_fuzz::write_seeds;
use idlegrid_primitives::{Amount, Epoch, Timestamp};
use libfuzzer_sys::fuzz_target;

const MAX_SNAPSHOT: usize = 1 << 16;

/// Genesis, and the state after a batch that opens an escrow, bonds,
/// unbonds and locks stake, so every map in the state is non-empty.
fn seeds() -> Vec<Vec<u8>> {
    let mut l = ledger();
    let genesis = l.snapshot();
    let a = accounts();
    let mut apps = AppRegistry::new();
    apps.register(APP, Box::new(FuzzApp));
    let kinds = [
        (0, TxKind::EscrowOpen { payee: a[1], amount: Amount::new(3_000), deadline: Epoch::new(9) }),
        (1, TxKind::Unbond { amount: Amount::new(1_000) }),
        (0, TxKind::Transfer { to: a[3], amount: Amount::new(5_000) }),
        // FuzzApp op: lock_stake(1_000) — see `app_op`'s byte layout.
        (0, TxKind::App { app_id: APP, payload: vec![0, 0, 3, 0, 0, 0, 0, 2] }),
    ];
    let mut txs = Vec::new();
    for (s, k) in kinds {
        let tx = transaction(&l, s, k).sign(&keys()[s]);
        txs.push(tx.to_bytes());
        let mut host = Host { evidence: &FuzzEvidence, signatures: SignatureCheck::Single, ..Host::default_for(&mut apps) };
        let ctx = BatchContext::at(Epoch::new(1), Timestamp::ZERO);
        l.apply_batch(ctx, &txs[txs.len() - 1..], &mut host).expect("epoch ok");
    }
    vec![genesis, l.snapshot()]
}

fuzz_target!(
    init: write_seeds(seeds()),
    |data: &[u8]| {
        if let Ok(l) = Ledger::from_snapshot(data, MAX_SNAPSHOT) {
            assert_eq!(l.snapshot(), data, "accepted a non-canonical snapshot");
            check_all(&l).expect("from_snapshot accepted a state that breaks an invariant");
            let _ = l.state_digest();
            let _ = (l.total_supply(), l.accounts().count(), l.escrows().count(), l.locks().count());
            // The restored ledger must stay usable: an empty batch applies.
            let mut l = l;
            let mut apps = AppRegistry::new();
            let mut host = Host::default_for(&mut apps);
            let ctx = BatchContext::at(l.epoch(), Timestamp::ZERO);
            let r = l.apply_batch::<Vec<u8>>(ctx, &[], &mut host).expect("same epoch is fine");
            assert_eq!(r.state_digest, l.state_digest());
            check_all(&l).expect("empty batch broke an invariant");
        }
    }
);
