//! The marketplace application on hand-built ledger batches: a job from
//! post to settlement with no keeper transactions (clearing and deadlines
//! run in the ledger's end-of-batch hook), a provider caught on a trap, a
//! framing client losing its bond, a silent provider defaulting, and a lot
//! whose plan never comes (or comes late) lapsing at its deadline. Prices
//! arrive sealed and are revealed by the light side's `Sealer`.

use idlegrid_dag_ledger::ledger::{Host, Nonce, SignatureCheck, Transaction, TxKind};
use idlegrid_entrap::{Outcome, Verdict};
use idlegrid_node::batch::batch_context;
use idlegrid_node::market::{MARKETPLACE_APP, MarketError, MarketTx, Notice};
use idlegrid_primitives::{Amount, Duration, encode};
use idlegrid_reputation::Role as RepRole;
use proptest::prelude::*;

mod common;

use common::{BOND, World};

#[test]
fn a_clean_job_settles_and_pays_without_keeper_ticks() {
    let mut w = World::new();
    let supply = w.ledger.total_supply();
    let before = w.wealth(&w.provider);
    w.matched_lot();
    let plan = w.plan(false);
    let outputs = w.deliver(&plan, false);
    w.verify(&plan, &outputs);
    let s = w.idle_until_settled();
    assert_eq!(s.outcome, Outcome::Clean);
    let price = w
        .notices
        .iter()
        .find_map(|n| match n {
            Notice::Matched { price, .. } => Some(*price),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        price,
        Amount::new(150),
        "k-double, k = 1/2, between 100 and 200"
    );
    assert_eq!(s.paid, Amount::new(300), "price × 2 s metered");
    assert!(s.slashed.is_zero() && s.bond_forfeited.is_zero());
    assert_eq!(w.wealth(&w.provider), before + 300);
    assert!(
        w.notices
            .iter()
            .any(|n| matches!(n, Notice::JobClosed { .. }))
    );
    assert_eq!(w.ledger.total_supply(), supply);
    assert_eq!(w.apps.market.open_jobs(), 0);
}

#[test]
fn a_provider_caught_on_a_trap_loses_its_stake() {
    let mut w = World::new();
    let (client0, provider0) = (w.wealth(&w.client), w.wealth(&w.provider));
    w.matched_lot();
    let plan = w.plan(false);
    let outputs = w.deliver(&plan, true);
    w.verify(&plan, &outputs);
    let accused = w
        .notices
        .iter()
        .any(|n| matches!(n, Notice::Accused { .. }));
    assert!(accused, "the client accused the cheater");
    let tx = MarketTx::Accept {
        client: w.client.account_id(),
        job: 0,
        lot: 0,
    };
    w.batch(100, vec![(w.provider.clone(), tx)]);
    let s = w.idle_until_settled();
    assert_eq!(s.outcome, Outcome::Admitted);
    assert!(s.paid.is_zero());
    assert!(!s.slashed.is_zero());
    assert_eq!(w.wealth(&w.provider), provider0 - s.slashed.get());
    assert!(w.wealth(&w.client) > client0, "the client gets its share");
    // The verdict reached the book as negative evidence on the provider.
    let node = w.provider.account_id().node();
    let state = w
        .apps
        .market
        .book()
        .state(&node, RepRole::Provider)
        .unwrap();
    assert!(state.negative > state.positive, "{state:?}");
}

#[test]
fn a_framing_client_loses_its_bond_to_the_provider() {
    let mut w = World::new();
    let provider0 = w.wealth(&w.provider);
    w.matched_lot();
    let plan = w.plan(true);
    let outputs = w.deliver(&plan, false);
    w.verify(&plan, &outputs);
    // Referees draw VRF tickets; the committee is seated when the ticket
    // window closes, and every member re-executes the disputed trap.
    let (committee, disputed) = w.dispute_until_seated();
    assert_eq!(committee.len(), 3);
    let votes = w.votes(&committee, &disputed);
    w.batch(100, votes);
    let s = w.idle_until_settled();
    assert_eq!(s.outcome, Outcome::Judged(Verdict::ClientFramed));
    // The majority referees' fees come out of the framing client's bond.
    assert_eq!(s.referee_fees, Amount::new(3 * common::REFEREE_FEE));
    assert_eq!(
        s.bond_forfeited,
        Amount::new(BOND - 3 * common::REFEREE_FEE)
    );
    assert!(s.slashed.is_zero());
    let bond = BOND - 3 * common::REFEREE_FEE;
    assert!(w.wealth(&w.provider) >= provider0 + bond, "bond and pay");
}

#[test]
fn a_silent_provider_defaults_when_its_deadline_passes_in_an_empty_batch() {
    let mut w = World::new();
    w.matched_lot();
    let _plan = w.plan(false);
    // Nobody sends anything: the stage deadline fires at the end of an
    // empty batch.
    let s = w.idle_until_settled();
    assert_eq!(s.outcome, Outcome::ProviderDefaulted);
    assert!(s.paid.is_zero());
}

#[test]
fn a_rejected_transaction_changes_nothing() {
    let mut w = World::new();
    w.matched_lot();
    let digest = w.ledger.state_digest();
    // A delivery for a lot that has no open round (no plan yet).
    let tx = Transaction {
        chain: w.ledger.params().chain_id,
        sender: w.provider.account_id(),
        nonce: Nonce::new(w.nonces[&w.provider.account_id()]),
        kind: TxKind::App {
            app_id: MARKETPLACE_APP,
            payload: encode(&MarketTx::Accept {
                client: w.client.account_id(),
                job: 0,
                lot: 0,
            }),
        },
    }
    .sign(&w.provider)
    .to_bytes();
    let ctx = batch_context(w.now, 1, w.ledger.epoch(), w.beacon());
    let mut host = Host {
        signatures: SignatureCheck::Single,
        ..Host::default_for(&mut w.apps)
    };
    let r = w.ledger.apply_batch(ctx, &[tx], &mut host).unwrap();
    let err = r.receipts[0].as_ref().unwrap_err();
    // The receipt carries the marketplace's own error, typed.
    assert_eq!(
        MarketError::from_ledger(err),
        Some(MarketError::NoOpenRound { job: 0, lot: 0 }),
        "{err}"
    );
    assert_eq!(w.ledger.state_digest(), digest);
    // Garbage payloads are typed rejections too.
    let junk = Transaction {
        chain: w.ledger.params().chain_id,
        sender: w.provider.account_id(),
        nonce: Nonce::new(w.nonces[&w.provider.account_id()]),
        kind: TxKind::App {
            app_id: MARKETPLACE_APP,
            payload: vec![0xff; 40],
        },
    }
    .sign(&w.provider)
    .to_bytes();
    let mut host = Host {
        signatures: SignatureCheck::Single,
        ..Host::default_for(&mut w.apps)
    };
    let r = w.ledger.apply_batch(ctx, &[junk], &mut host).unwrap();
    let err = r.receipts[0].as_ref().unwrap_err();
    assert_eq!(
        MarketError::from_ledger(err),
        Some(MarketError::Malformed),
        "{err}"
    );
    assert_eq!(w.ledger.state_digest(), digest);
}

/// Empty batches a second apart (no stall: live time is consensus time)
/// until `t` is at most `within_ms` away.
fn idle_until_within(w: &mut World, t: idlegrid_primitives::Timestamp, within_ms: u64) {
    while t.saturating_since(w.now) > Duration::from_millis(within_ms) {
        w.batch(1_000, vec![]);
    }
    assert_eq!(w.apps.market.live_clock().at(w.now), w.now, "no stall");
}

/// The plan deadline of the lot the last `Matched` notice names.
fn plan_deadline(w: &World) -> idlegrid_primitives::Timestamp {
    w.notices
        .iter()
        .rev()
        .find_map(|n| match n {
            Notice::Matched { plan_by, .. } => Some(*plan_by),
            _ => None,
        })
        .expect("a match")
}

#[test]
fn a_lot_its_client_never_plans_lapses_at_the_deadline_and_frees_the_slot() {
    let mut w = World::new();
    let supply = w.ledger.total_supply();
    let (client0, provider0) = (w.wealth(&w.client), w.wealth(&w.provider));
    w.matched_lot();
    let plan_by = plan_deadline(&w);
    // Nobody plans: empty batches until the deadline; the lot lapses at the
    // first batch at or past it, not before.
    while w.now < plan_by {
        assert!(
            !w.notices
                .iter()
                .any(|n| matches!(n, Notice::Unplanned { .. })),
            "lapsed before its deadline"
        );
        let txs = w.follow();
        w.batch(250, txs);
    }
    let bond = w
        .notices
        .iter()
        .find_map(|n| match n {
            Notice::Unplanned { bond, lot: 0, .. } => Some(*bond),
            _ => None,
        })
        .expect("the lot lapsed at its deadline");
    assert_eq!(bond, Amount::new(BOND), "the client's whole lot bond");
    // The bond is burned, not paid to anyone; the escrow comes back whole.
    let refunded = w.notices.iter().find_map(|n| match n {
        Notice::JobClosed { refunded, .. } => Some(*refunded),
        _ => None,
    });
    assert!(refunded.is_some_and(|r| !r.is_zero()), "{refunded:?}");
    assert_eq!(w.ledger.total_supply().get(), supply.get() - BOND);
    assert_eq!(w.wealth(&w.client), client0 - BOND);
    assert_eq!(w.wealth(&w.provider), provider0);
    assert_eq!(w.apps.market.open_jobs(), 0);
    // The provider's only slot is free again: a new job is matched to it.
    let ask = w.sealers[0].seal_ask(Amount::new(100));
    let job = w.job(1, 200);
    let seen = w.notices.len();
    w.batch(
        100,
        vec![(w.provider.clone(), ask), (w.client.clone(), job)],
    );
    w.run_until(|n| matches!(n, Notice::Matched { job: 1, .. }));
    assert!(
        w.notices[seen..]
            .iter()
            .any(|n| matches!(n, Notice::Matched { job: 1, lot: 0, .. }))
    );
}

#[test]
fn a_plan_after_the_deadline_is_refused_and_the_lot_lapses() {
    let mut w = World::new();
    w.matched_lot();
    let plan_by = plan_deadline(&w);
    idle_until_within(&mut w, plan_by, 1_000);
    let late = plan_by.saturating_since(w.now).as_millis();
    // The plan's batch is the first one at the deadline: too late.
    let (_, tx) = World::plan_tx(false);
    let receipts = w.try_batch(late, vec![(w.client.clone(), tx)]);
    let err = receipts[0].as_ref().unwrap_err();
    assert_eq!(
        MarketError::from_ledger(err),
        Some(MarketError::PlanLate {
            job: 0,
            lot: 0,
            deadline: plan_by
        }),
        "{err}"
    );
    assert!(
        w.notices
            .iter()
            .any(|n| matches!(n, Notice::Unplanned { .. }))
    );
    assert!(
        !w.notices
            .iter()
            .any(|n| matches!(n, Notice::RoundOpened { .. }))
    );
    assert_eq!(w.apps.market.open_jobs(), 0);
}

#[test]
fn a_lot_planned_just_before_its_deadline_opens_and_settles() {
    let mut w = World::new();
    w.matched_lot();
    let plan_by = plan_deadline(&w);
    // `plan` applies its batch 100 ms later: 100 ms before the deadline.
    idle_until_within(&mut w, plan_by, 1_000);
    let wait = plan_by.saturating_since(w.now).as_millis() - 200;
    w.batch(wait, vec![]);
    let plan = w.plan(false);
    let outputs = w.deliver(&plan, false);
    w.verify(&plan, &outputs);
    let s = w.idle_until_settled();
    assert_eq!(s.outcome, Outcome::Clean);
    assert!(
        !w.notices
            .iter()
            .any(|n| matches!(n, Notice::Unplanned { .. }))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whenever the plan comes (or if it never does), the lot either opens
    /// or lapses, never both: it lapses exactly when no plan was applied
    /// before its deadline, at the first batch at or past it, burning the
    /// lot bond and nothing else; the job always closes; and every batch
    /// keeps the ledger's and the market's invariants (`try_batch`).
    #[test]
    fn a_lot_opens_or_lapses_at_its_deadline(
        delay_ms in proptest::option::of(0u64..14_000),
        step_ms in 50u64..1_500,
    ) {
        let mut w = World::new();
        let supply = w.ledger.total_supply().get();
        w.matched_lot();
        let plan_by = plan_deadline(&w);
        let plan_at = delay_ms.map(|d| w.now + Duration::from_millis(d));
        let mut sent_at = None;
        let seen = w.notices.len();
        for _ in 0..1_000 {
            if w.apps.market.open_jobs() == 0 {
                break;
            }
            let mut txs = w.follow();
            let at = w.now + Duration::from_millis(step_ms);
            if sent_at.is_none() && plan_at.is_some_and(|t| at >= t) {
                txs.push((w.client.clone(), World::plan_tx(false).1));
                sent_at = Some(at);
            }
            let lapsed_before = w.notices[seen..].iter().any(is_unplanned);
            w.try_batch(step_ms, txs);
            let lapsed_now = w.notices[seen..].iter().any(is_unplanned);
            if lapsed_now && !lapsed_before {
                // At the first batch at or past the deadline.
                prop_assert!(w.now >= plan_by && w.now - plan_by < Duration::from_millis(step_ms));
            }
        }
        prop_assert_eq!(w.apps.market.open_jobs(), 0, "the job closed");
        let after = &w.notices[seen..];
        let opened = after.iter().any(|n| matches!(n, Notice::RoundOpened { .. }));
        let lapsed = after.iter().any(is_unplanned);
        prop_assert!(opened != lapsed, "opened {} lapsed {}", opened, lapsed);
        prop_assert_eq!(lapsed, sent_at.is_none_or(|t| t >= plan_by));
        let burned = if lapsed { BOND } else { 0 };
        prop_assert_eq!(w.ledger.burned().get(), burned);
        prop_assert_eq!(w.ledger.total_supply().get() + burned, supply);
    }
}

fn is_unplanned(n: &Notice) -> bool {
    matches!(n, Notice::Unplanned { .. })
}

/// A consensus stall (no commit for a minute) does not use up a deadline:
/// the plan and the delivery that waited it out in a mempool land in the
/// first batch after it and are accepted; the round settles clean.
#[test]
fn transactions_that_wait_out_a_stall_meet_their_deadlines() {
    let mut w = World::new();
    w.matched_lot();
    let plan_by = plan_deadline(&w);
    let (plan, tx) = World::plan_tx(false);
    // The next commit comes a minute later: consensus time is far past the
    // plan deadline (10 s after the match), live time is not.
    let rc = w.try_batch(60_000, vec![(w.client.clone(), tx)]);
    assert!(w.now > plan_by + Duration::from_secs(40));
    assert!(rc[0].is_ok(), "plan refused after a stall: {rc:?}");
    assert!(w.apps.market.live_clock().paused() >= Duration::from_secs(57));
    // Another minute without a commit before the delivery lands.
    let outputs = w.deliver_after(60_000, &plan, false);
    w.verify(&plan, &outputs);
    let s = w.idle_until_settled();
    assert_eq!(s.outcome, Outcome::Clean, "{s:?}");
    assert!(s.slashed.is_zero());
    assert!(
        !w.notices
            .iter()
            .any(|n| matches!(n, Notice::Unplanned { .. })),
        "lapsed across the stall"
    );
}

/// Deadlines still pass while consensus is slow: with a commit every 10 s
/// (each step a stall of which 2 s count) an unplanned lot lapses once its
/// plan window has passed in live time, 2 s per commit.
#[test]
fn a_lot_lapses_in_live_time_when_every_commit_is_slow() {
    let mut w = World::new();
    w.matched_lot();
    let plan_by = plan_deadline(&w);
    let live = |w: &World| w.apps.market.live_clock().at(w.now);
    let mut batches = 0;
    while !w
        .notices
        .iter()
        .any(|n| matches!(n, Notice::Unplanned { .. }))
    {
        assert!(live(&w) < plan_by, "not lapsed at its deadline");
        let txs = w.follow();
        w.batch(10_000, txs);
        batches += 1;
        assert!(batches <= 10, "the deadline never passed");
    }
    // 10 s of plan window at 2 s a commit.
    assert!(batches >= 5, "lapsed after {batches} commits");
}
