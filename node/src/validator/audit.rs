//! The full invariant audit of one commit's post-state, as an effect.
//!
//! [`check_all`] (conservation of supply, no negative amounts, every coin
//! accounted for, the incremental state digest against one recomputed from
//! scratch) is O(state): at the `large` scenario's size it was 7.5 % of the
//! simulator's engine thread when validators ran it inline. It is a pure
//! function of an immutable ledger, and a copy of the ledger shares its
//! storage with the live one (copy-on-write shards), so the node decides
//! *which* commits it audits — commit `i` on validator `i mod n`, every
//! batch once, every validator in turn — and hands the driver an
//! [`Audit`] holding that commit's post-state. The driver runs
//! [`Audit::run`] where it likes (inline, a worker thread, a blocking
//! pool) and reports a failure; the node does not wait for the answer and
//! acts the same either way, so where and when an audit runs cannot change
//! what the node does.

use idlegrid_dag_ledger::ledger::{InvariantViolation, Ledger, check_all};
use idlegrid_primitives::Digest;

/// One commit's post-state to audit in full ([`check_all`]); see the
/// module docs. Cheap to clone (the ledger's storage is shared) and `Send`.
#[derive(Clone)]
pub struct Audit {
    index: u64,
    ledger: Ledger,
}

impl Audit {
    pub(crate) fn new(index: u64, ledger: Ledger) -> Self {
        Self { index, ledger }
    }

    /// The commit whose post-state this is.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The post-state's digest (the [`ValidatorEvent::Applied`] digest of
    /// the same commit).
    ///
    /// [`ValidatorEvent::Applied`]: super::ValidatorEvent::Applied
    pub fn digest(&self) -> Digest {
        self.ledger.state_digest()
    }

    /// Runs every invariant on the post-state.
    pub fn run(&self) -> Result<(), InvariantViolation> {
        check_all(&self.ledger)
    }
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("index", &self.index)
            .field("digest", &self.digest().short())
            .finish_non_exhaustive()
    }
}

/// Audits are equal when they audit equal states of the same commit.
impl PartialEq for Audit {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index && self.digest() == other.digest()
    }
}

impl Eq for Audit {}

#[cfg(test)]
mod tests {
    use super::*;
    use idlegrid_dag_ledger::ledger::{Genesis, Params};
    use idlegrid_primitives::{Amount, Keypair, Seed};

    fn ledger() -> Ledger {
        let balances = (0..3)
            .map(|i| {
                let key = Keypair::from_seed(&Seed::from_u64(i));
                (key.node_id().account(), Amount::new(100))
            })
            .collect();
        Ledger::new(Genesis {
            params: Params::default(),
            balances,
            stakes: vec![],
        })
        .expect("genesis")
    }

    #[test]
    fn an_audit_travels_to_another_thread_and_checks_its_copy() {
        fn send<T: Send + 'static>(_: &T) {}
        let audit = Audit::new(7, ledger());
        send(&audit);
        let digest = audit.digest();
        let moved = audit.clone();
        let ran = std::thread::spawn(move || moved.run())
            .join()
            .expect("joined");
        assert_eq!(ran, Ok(()));
        assert_eq!((audit.index(), audit.digest()), (7, digest));
        assert_eq!(audit, Audit::new(7, ledger()));
        assert_ne!(audit, Audit::new(8, ledger()));
    }
}
