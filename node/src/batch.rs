//! The one rule that turns a committed sub-DAG into a ledger batch.
//!
//! Every replica, every driver and every example uses [`batch_context`]:
//! the batch's time is the commit's consensus timestamp (the leader's block
//! time, identical at every validator), and its ledger epoch is that time in
//! whole `epoch_secs` periods, never moving backwards (a later leader may
//! carry an earlier timestamp than the epoch already reached; the ledger
//! refuses a regressing epoch, so the rule clamps instead).
//!
//! **The beacon** (the batch's committed randomness, from which referee
//! committees are drawn) is the commit's running sub-DAG digest
//! (`CommittedSubDag::digest`): a hash chained over every committed sub-DAG
//! up to this one, so it covers the committed leader block and every block
//! it orders, and every validator computes the same value. It is
//! unpredictable to a disputer: a dispute's randomness is taken from the
//! beacon of the batch that orders the dispute transaction itself (or of a
//! later batch, for an escalation), and that digest covers blocks that did
//! not exist when the disputer signed — the leader block that commits the
//! dispute references it, so it is built after it. Its limit: the leader
//! of that commit chooses its own block's contents and could try many
//! before publishing one (it cannot publish two: equivocation is
//! evidence); a Byzantine leader colluding with a disputer could thus bias
//! a committee among its own tickets' chances, never forge a ticket. An
//! unbiasable beacon needs a VRF or threshold signature in the block
//! header, which the consensus does not carry yet.

use idlegrid_dag_ledger::ledger::BatchContext;
use idlegrid_primitives::{Digest, Epoch, Timestamp};

/// The ledger context of a commit at consensus time `commit_time` with
/// running digest `beacon`, given the ledger's current epoch `last`.
/// `epoch_secs` of 0 is treated as 1.
pub fn batch_context(
    commit_time: Timestamp,
    epoch_secs: u64,
    last: Epoch,
    beacon: Digest,
) -> BatchContext {
    let secs = commit_time.as_micros() / 1_000_000 / epoch_secs.max(1);
    let epoch = Epoch::new(secs).max(last);
    BatchContext {
        epoch,
        now: commit_time,
        beacon,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn epochs_are_whole_periods() {
        let beacon = Digest::from_bytes([7; 32]);
        let c = batch_context(Timestamp::from_micros(5_999_999), 2, Epoch::ZERO, beacon);
        assert_eq!(c.beacon, beacon);
        assert_eq!(c.epoch, Epoch::new(2));
        assert_eq!(c.now, Timestamp::from_micros(5_999_999));
    }

    proptest! {
        /// The epoch never regresses and never runs ahead of the clock rule.
        #[test]
        fn epoch_is_monotone(t in 0u64..1u64 << 50, secs in 0u64..100, last in 0u64..1u64 << 20) {
            let c = batch_context(Timestamp::from_micros(t), secs, Epoch::new(last), Digest::from_bytes([0; 32]));
            prop_assert!(c.epoch >= Epoch::new(last));
            let rule = t / 1_000_000 / secs.max(1);
            prop_assert_eq!(c.epoch, Epoch::new(rule.max(last)));
        }
    }
}
