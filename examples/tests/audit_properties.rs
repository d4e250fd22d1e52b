//! The auditor's properties under `proptest!`: the same functions the
//! `audit_properties` example runs with an explicit `TestRunner`.
use idlegrid_examples::audit_properties::{
    garbage_transactions_change_nothing, ledgers_and_garbage, markets,
    mcafee_reduces_at_most_one_trade,
};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mcafee_loses_at_most_one_trade((asks, bids) in markets()) {
        mcafee_reduces_at_most_one_trade(&asks, &bids)?;
    }

    #[test]
    fn strangers_cannot_touch_the_ledger((genesis, txs) in ledgers_and_garbage()) {
        garbage_transactions_change_nothing(genesis, &txs)?;
    }
}
