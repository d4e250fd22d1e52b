//! The marketplace's state snapshot: restoring it gives the same state
//! (same bytes, same digest), and a marketplace restored in the middle of a
//! job — a dispute seated, traps accused — goes on exactly as the one that
//! was never snapshotted.

use idlegrid_entrap::{Outcome, Verdict};
use idlegrid_market::KDouble;
use idlegrid_node::market::{AppSnapshotError, MarketplaceApp};

mod common;

use common::World;

const MAX: usize = 1 << 24;

/// Snapshot → restore → snapshot is the identity, and the digests agree.
fn roundtrip(w: &World) -> MarketplaceApp {
    let bytes = w.apps.market.snapshot();
    let rules = w.apps.market.rules().clone();
    let restored = MarketplaceApp::restore(
        rules,
        Box::new(KDouble::new(5_000).unwrap()),
        true,
        &bytes,
        MAX,
    )
    .expect("a marketplace restores from its own snapshot");
    assert_eq!(restored.snapshot(), bytes);
    assert_eq!(restored.state_digest(), w.apps.market.state_digest());
    restored
}

/// A cheating provider accused, the dispute seated, the votes cast: at
/// every step the state round-trips; `swap_at` replaces the marketplace by
/// its restored copy at that step.
fn run(swap_at: Option<usize>) -> World {
    let mut w = World::new();
    let mut step = 0;
    let mut check = |w: &mut World| {
        let restored = roundtrip(w);
        if swap_at == Some(step) {
            w.apps.market = restored;
        }
        step += 1;
    };
    check(&mut w);
    w.matched_lot();
    check(&mut w);
    let plan = w.plan(false);
    check(&mut w);
    let outputs = w.deliver(&plan, true);
    check(&mut w);
    w.verify(&plan, &outputs);
    check(&mut w);
    let (committee, disputed) = w.dispute_until_seated();
    check(&mut w);
    w.batch(10, w.votes(&committee, &disputed));
    check(&mut w);
    let _ = w.idle_until_settled();
    check(&mut w);
    w
}

#[test]
fn a_marketplace_restored_mid_dispute_goes_on_exactly_as_the_original() {
    let reference = run(None);
    let s = reference.settlement().expect("settled");
    assert_eq!(s.outcome, Outcome::Judged(Verdict::ProviderCheated));
    for swap in 0..8 {
        let w = run(Some(swap));
        assert_eq!(
            w.apps.market.state_digest(),
            reference.apps.market.state_digest(),
            "restored at step {swap}"
        );
        assert_eq!(w.ledger.state_digest(), reference.ledger.state_digest());
        assert_eq!(w.settlement(), reference.settlement());
    }
}

#[test]
fn damaged_snapshots_are_typed_errors() {
    let w = World::new();
    let bytes = w.apps.market.snapshot();
    let rules = w.apps.market.rules().clone();
    let restore = |b: &[u8], max| {
        MarketplaceApp::restore(
            rules.clone(),
            Box::new(KDouble::new(5_000).unwrap()),
            true,
            b,
            max,
        )
    };
    assert!(matches!(
        restore(&bytes, 4),
        Err(AppSnapshotError::Decode(_))
    ));
    assert!(matches!(
        restore(&bytes[..bytes.len() - 1], MAX),
        Err(AppSnapshotError::Decode(_))
    ));
    let mut other = bytes.clone();
    other[0] = 9;
    assert!(matches!(
        restore(&other, MAX),
        Err(AppSnapshotError::Version(9))
    ));
}
