//! The exported strategies, and decoding/applying arbitrary input.

mod ledger_support;

use idlegrid_dag_ledger::ledger::{strategies, *};
use idlegrid_primitives::encode;
use ledger_support::*;
use proptest::prelude::*;

proptest! {
    #[test]
    fn signed_transactions_round_trip(tx in strategies::signed_transaction()) {
        let bytes = tx.to_bytes();
        prop_assert_eq!(SignedTransaction::from_bytes(&bytes).unwrap(), tx);
    }

    #[test]
    fn generated_params_are_valid(p in strategies::params()) {
        prop_assert!(p.validate().is_ok());
    }

    #[test]
    fn generated_genesis_builds_a_consistent_ledger(g in strategies::genesis()) {
        let l = Ledger::new(g).unwrap();
        check_all(&l).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = Ledger::from_snapshot(&l.snapshot(), 1 << 20).unwrap();
        prop_assert_eq!(back.state_digest(), l.state_digest());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = SignedTransaction::from_bytes(&bytes);
        let _ = Ledger::from_snapshot(&bytes, 1 << 16);
    }

    /// Arbitrary transactions (random senders, kinds, signatures) against a
    /// live ledger: rejected with a typed error, nothing changes.
    #[test]
    fn arbitrary_transactions_change_nothing(tx in strategies::signed_transaction()) {
        let k = keys(2);
        let mut l = ledger(&k, 10_000, 1_000);
        let before = l.state_digest();
        let mut apps = registry();
        let r = l.apply_batch(ctx(0), &[tx.to_bytes()], &mut Host::default_for(&mut apps)).unwrap();
        prop_assert!(r.receipts[0].is_err());
        prop_assert_eq!(l.state_digest(), before);
    }

    /// Even with signature checks skipped, random garbage from unknown
    /// senders with random nonces does not break any invariant.
    #[test]
    fn unsigned_garbage_keeps_invariants(kind in strategies::tx_kind(), nonce in strategies::nonce(), who in 0usize..2) {
        let k = keys(2);
        let mut l = ledger(&k, 10_000, 1_000);
        let tx = Transaction { chain: l.params().chain_id, sender: acct(&k, who), nonce, kind };
        let signed = tx.sign(&k[who]);
        let mut apps = registry();
        let mut host = Host { signatures: SignatureCheck::Skip, ..Host::default_for(&mut apps) };
        l.apply_batch(ctx(1), &[encode(&signed)], &mut host).unwrap();
        check_all(&l).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}
