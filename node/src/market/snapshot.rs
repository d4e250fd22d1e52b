//! The marketplace's replicated state as canonical bytes, and back.
//!
//! A validator that joins late or fell behind its peers' DAG window installs
//! a snapshot instead of replaying every commit from genesis (see
//! [`crate::validator`]'s state sync). The snapshot holds every field that
//! is replicated (providers, jobs and their verification rounds, disputes,
//! the sealed book, reputation and the epoch's global trust, the registry,
//! counters); it leaves out what
//! is not: the rules and the clearing mechanism (from the node's setup,
//! equal on every validator) and the notices buffered for this node's
//! subscribers. Between batches the per-batch scratch (`touched`,
//! `staged`, …) is empty, so a snapshot is taken only there.
//!
//! [`MarketplaceApp::state_digest`] hashes the snapshot bytes under
//! [`APP_STATE_DOMAIN`]: equal digests mean equal replicated state, since
//! the encoding is canonical (one encoding per value, ordered maps only).

use std::sync::Arc;

use idlegrid_market::Mechanism;
use idlegrid_primitives::{Digest, Domain, decode, encode};

use super::{BatchNo, MarketParams, MarketRules, MarketplaceApp};

/// Domain of [`MarketplaceApp::state_digest`].
pub const APP_STATE_DOMAIN: Domain = Domain::new("idlegrid/node/market-state");
/// Version of the snapshot layout.
pub const APP_SNAPSHOT_VERSION: u8 = 5;

/// Why snapshot bytes could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppSnapshotError {
    /// The bytes are not a canonical encoding of the state.
    #[error("marketplace snapshot does not decode: {0}")]
    Decode(#[from] idlegrid_primitives::DecodeError),
    /// Another layout version.
    #[error("marketplace snapshot version {0}, this node reads {APP_SNAPSHOT_VERSION}")]
    Version(u8),
    /// The reputation parameters differ from this node's rules.
    #[error("marketplace snapshot was taken under other reputation parameters")]
    Rules,
}

// The field order is the layout; `Owned` mirrors `Borrowed` field by field.
macro_rules! state_tuple {
    ($app:expr) => {
        (
            APP_SNAPSHOT_VERSION,
            &$app.params,
            (
                &$app.providers,
                &$app.jobs,
                &$app.wake,
                &$app.wake_at,
                &$app.disputes,
                &$app.windows,
            ),
            (
                $app.bidding,
                &$app.unfilled,
                &$app.sealed,
                $app.batch,
                $app.announced,
                $app.clock,
            ),
            (
                &*$app.book,
                &$app.trust,
                &$app.registry,
                $app.next_bid,
                $app.effect_failures,
            ),
        )
    };
}

type Owned = (
    u8,
    MarketParams,
    (
        std::collections::BTreeMap<idlegrid_primitives::AccountId, super::Provider>,
        std::collections::BTreeMap<(idlegrid_primitives::AccountId, u64), super::Job>,
        std::collections::BTreeSet<(idlegrid_primitives::Timestamp, super::RoundKey)>,
        std::collections::BTreeMap<super::RoundKey, idlegrid_primitives::Timestamp>,
        std::collections::BTreeMap<super::RoundKey, super::referees::Dispute>,
        std::collections::BTreeSet<(idlegrid_primitives::Timestamp, super::RoundKey)>,
    ),
    (
        usize,
        std::collections::BTreeSet<(idlegrid_primitives::AccountId, u64)>,
        super::SealedBook,
        BatchNo,
        BatchNo,
        super::LiveClock,
    ),
    (
        idlegrid_reputation::ReputationBook,
        Option<idlegrid_reputation::TrustVector>,
        idlegrid_market::registry::Registry,
        u64,
        u64,
    ),
);

impl MarketplaceApp {
    /// The replicated state as canonical bytes (see the module docs).
    ///
    /// # Panics
    /// If called inside a batch (its scratch is not empty): a caller bug.
    pub fn snapshot(&self) -> Vec<u8> {
        assert!(
            self.touched.is_empty() && self.touching.is_empty() && self.staged.is_empty(),
            "a marketplace snapshot is taken between batches"
        );
        encode(&state_tuple!(self))
    }

    /// The digest of [`MarketplaceApp::snapshot`].
    pub fn state_digest(&self) -> Digest {
        Digest::hash(APP_STATE_DOMAIN, &self.snapshot())
    }

    /// A marketplace with the state of `bytes` (at most `max_len`) under
    /// this node's `rules` and `mechanism`. The bytes are trusted only as
    /// far as their digest is (a state-sync snapshot checks it against a
    /// quorum's attestation before calling this).
    pub fn restore(
        rules: MarketRules,
        mechanism: Box<dyn Mechanism>,
        emit_notices: bool,
        bytes: &[u8],
        max_len: usize,
    ) -> Result<Self, AppSnapshotError> {
        let (version, params, a, b, c): Owned = decode(bytes, max_len)?;
        if version != APP_SNAPSHOT_VERSION {
            return Err(AppSnapshotError::Version(version));
        }
        let (providers, jobs, wake, wake_at, disputes, windows) = a;
        let (bidding, unfilled, sealed, batch, announced, clock) = b;
        let (book, trust, registry, next_bid, effect_failures) = c;
        if *book.params() != rules.book {
            return Err(AppSnapshotError::Rules);
        }
        let mut app =
            Self::new(rules, mechanism, emit_notices).map_err(|_| AppSnapshotError::Rules)?;
        app.params = params;
        app.providers = providers.into_iter().collect();
        app.jobs = jobs.into_iter().collect();
        app.wake = wake;
        app.wake_at = wake_at.into_iter().collect();
        app.disputes = disputes;
        app.windows = windows;
        app.bidding = bidding;
        app.unfilled = unfilled;
        app.sealed = sealed;
        app.batch = batch;
        app.announced = announced;
        app.clock = clock;
        app.book = Arc::new(book);
        app.trust = trust;
        app.registry = registry;
        app.next_bid = next_bid;
        app.effect_failures = effect_failures;
        Ok(app)
    }
}
