//! `SignedTransaction::from_bytes` on untrusted bytes never panics; an
//! accepted input is canonical (re-encodes to the same bytes), and
//! verifying its signature or hashing it never panics.
#![no_main]

use idlegrid_dag_ledger::ledger::{SignedTransaction, TxKind};
use idlegrid_fuzz::ledger_fixture::{keys, ledger, transaction};
use idlegrid_fuzz::write_seeds;
use idlegrid_primitives::{Amount, Epoch};
use libfuzzer_sys::fuzz_target;

fn seeds() -> Vec<Vec<u8>> {
    let l = ledger();
    let to = keys()[1].account_id();
    let kinds = [
        TxKind::Transfer { to, amount: Amount::new(5_000) },
        TxKind::Bond { amount: Amount::new(10) },
        TxKind::Withdraw,
        TxKind::EscrowOpen { payee: to, amount: Amount::new(3_000), deadline: Epoch::new(4) },
        TxKind::App { app_id: idlegrid_fuzz::ledger_fixture::APP, payload: vec![1, 0, 2, 3] },
    ];
    kinds
        .into_iter()
        .map(|k| transaction(&l, 0, k).sign(&keys()[0]).to_bytes())
        .collect()
}

fuzz_target!(
    init: write_seeds(seeds()),
    |data: &[u8]| {
        if let Ok(tx) = SignedTransaction::from_bytes(data) {
            assert_eq!(tx.to_bytes(), data, "accepted a non-canonical transaction");
            let _ = tx.verify();
            let _ = tx.id();
        }
    }
);
