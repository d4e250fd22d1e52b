//! Environments: a provider's offer names its executors and runtime
//! features, a job the ones it needs; only compatible pairs are matched, a
//! job that no offering provider can run is rejected when posted (locking
//! nothing), and a provider re-offers to change its capacity or runtime.

use idlegrid_market::{ExecutorKind, ExecutorSet, Features};
use idlegrid_node::market::{Environment, MarketError, MarketTx, Notice, Unservable};
use idlegrid_primitives::Amount;

mod common;

use common::{STAKE, World};

fn env(executor: ExecutorKind, features: &[&str]) -> Environment {
    Environment {
        executors: ExecutorSet::single(executor),
        features: Features::from_names(features).unwrap(),
    }
}

fn offer(capacity: u32, environment: Environment) -> MarketTx {
    MarketTx::Offer {
        capacity,
        stake_per_slot: Amount::new(STAKE),
        region: 0,
        environment,
    }
}

/// `w`'s client posts job 0 needing `executor` and `requires`.
fn job(w: &mut World, executor: ExecutorKind, requires: &[&str]) -> MarketTx {
    let MarketTx::PostJob(mut req) = w.job(0, 200) else {
        unreachable!("World::job posts a job")
    };
    req.executor = executor;
    req.requires = Features::from_names(requires).unwrap();
    MarketTx::PostJob(req)
}

/// The marketplace's typed error in a rejected transaction's receipt.
fn rejection(w: &mut World, tx: MarketTx) -> MarketError {
    let client = w.client.clone();
    let r = w.try_batch(100, vec![(client, tx)]);
    market_error(r[0].as_ref().expect_err("rejected"))
}

fn market_error(e: &idlegrid_dag_ledger::ledger::LedgerError) -> MarketError {
    MarketError::from_ledger(e).expect("a typed marketplace rejection")
}

#[test]
fn a_job_nobody_can_run_is_rejected_and_locks_nothing() {
    let mut w = World::new();
    let p = w.provider.clone();
    w.batch(
        100,
        vec![(p, offer(1, env(ExecutorKind::Process, &["python3.11"])))],
    );
    let free = w
        .ledger
        .account(&w.client.account_id())
        .unwrap()
        .free_stake();
    let digest = w.ledger.state_digest();

    let tx = job(&mut w, ExecutorKind::Process, &["numpy", "python3.11"]);
    let e = rejection(&mut w, tx);
    let numpy = Features::from_names(["numpy"]).unwrap();
    assert_eq!(e, MarketError::Unservable(Unservable::Features(numpy)));
    // What the cli prints.
    assert_eq!(
        e.to_string(),
        "nobody can run this job: no offering provider has: numpy"
    );
    let tx = job(&mut w, ExecutorKind::Wasm, &[]);
    let e = rejection(&mut w, tx);
    assert_eq!(
        e,
        MarketError::Unservable(Unservable::Executor(ExecutorKind::Wasm))
    );
    assert!(e.to_string().contains("runs the Wasm executor"), "{e}");

    assert_eq!(
        w.ledger
            .account(&w.client.account_id())
            .unwrap()
            .free_stake(),
        free
    );
    assert_eq!(w.ledger.state_digest(), digest, "rejections change nothing");
    assert_eq!(w.apps.market.open_jobs(), 0);
}

#[test]
fn a_job_is_matched_to_a_provider_whose_runtime_has_its_imports() {
    let mut w = World::new();
    let p = w.provider.clone();
    let c = w.client.clone();
    let ask = w.sealers[0].seal_ask(Amount::new(100));
    let post = job(&mut w, ExecutorKind::Process, &["NumPy"]);
    w.batch(
        100,
        vec![
            (
                p.clone(),
                offer(1, env(ExecutorKind::Process, &["numpy", "pandas"])),
            ),
            (p, ask),
            (c, post),
        ],
    );
    w.run_until(|n| matches!(n, Notice::Matched { .. }));
    let matched = w.notices.iter().find_map(|n| match n {
        Notice::Matched { provider, .. } => Some(*provider),
        _ => None,
    });
    assert_eq!(matched, Some(w.provider.account_id()));
}

#[test]
fn a_provider_that_drops_a_package_is_no_longer_matched_for_it() {
    let mut w = World::new();
    let p = w.provider.clone();
    let c = w.client.clone();
    w.batch(
        100,
        vec![(p.clone(), offer(1, env(ExecutorKind::Process, &["numpy"])))],
    );
    // The job is accepted (someone offers numpy), then the provider
    // re-offers without it before any clearing: the batch clears with its
    // ask and the bid, and the bid stays unfilled.
    let ask = w.sealers[0].seal_ask(Amount::new(100));
    let post = job(&mut w, ExecutorKind::Process, &["numpy"]);
    w.batch(100, vec![(c, post)]);
    w.batch(
        100,
        vec![
            (p.clone(), offer(1, env(ExecutorKind::Process, &[]))),
            (p, ask),
        ],
    );
    w.run_until(|n| matches!(n, Notice::BidUnfilled { .. }));
    let cleared = w
        .notices
        .iter()
        .any(|n| matches!(n, Notice::Cleared(r) if r.asks.len() == 1 && r.bids.len() == 1));
    assert!(cleared, "the ask and the bid met in a clearing");
    assert!(
        !w.notices
            .iter()
            .any(|n| matches!(n, Notice::Matched { .. })),
        "matched a provider without numpy"
    );
}

#[test]
fn re_offers_resize_the_bonded_slots_and_never_drop_a_busy_one() {
    let mut w = World::new();
    let me = w.provider.account_id();
    let p = w.provider.clone();
    let supply = w.ledger.total_supply();
    let sim = Environment::simulated;
    w.batch(100, vec![(p.clone(), offer(1, sim()))]);
    let one = w.ledger.account(&me).unwrap().free_stake();
    w.batch(100, vec![(p.clone(), offer(2, sim()))]);
    assert_eq!(
        w.ledger.account(&me).unwrap().free_stake(),
        one.checked_sub(Amount::new(STAKE)).unwrap()
    );
    w.batch(100, vec![(p.clone(), offer(1, sim()))]);
    assert_eq!(
        w.ledger.account(&me).unwrap().free_stake(),
        one,
        "the dropped slot's stake is free"
    );
    assert_eq!(w.apps.market.free_slots(&me), 1);

    // Both slots get a lot; it cannot drop the busy slot 1.
    w.batch(100, vec![(p.clone(), offer(2, sim()))]);
    let ask = w.sealers[0].seal_ask(Amount::new(100));
    let (j0, j1) = (w.job(0, 200), w.job(1, 200));
    let c = w.client.clone();
    w.batch(100, vec![(p.clone(), ask), (c.clone(), j0), (c, j1)]);
    let matched = |w: &World| {
        w.notices
            .iter()
            .filter(|n| matches!(n, Notice::Matched { .. }))
            .count()
    };
    for _ in 0..100 {
        if matched(&w) == 2 {
            break;
        }
        let follow = w.follow();
        w.batch(100, follow);
    }
    assert_eq!(matched(&w), 2);
    assert_eq!(w.apps.market.free_slots(&me), 0);
    let digest = w.ledger.state_digest();
    let r = w.try_batch(100, vec![(p, offer(1, sim()))]);
    let e = market_error(r[0].as_ref().expect_err("slot 1 is busy"));
    assert_eq!(e, MarketError::SlotBusy { slot: 1 });
    assert!(e.to_string().contains("slot 1 is busy"), "{e}");
    assert_eq!(
        w.ledger.state_digest(),
        digest,
        "a refused re-offer changes nothing"
    );
    assert_eq!(w.ledger.total_supply(), supply);
}

#[test]
fn a_slashed_provider_re_offers_and_bonds_its_lost_slot_again() {
    let mut w = World::new();
    let me = w.provider.account_id();
    w.matched_lot();
    let plan = w.plan(false);
    let outputs = w.deliver(&plan, true);
    w.verify(&plan, &outputs);
    let accept = MarketTx::Accept {
        client: w.client.account_id(),
        job: 0,
        lot: 0,
    };
    w.batch(100, vec![(w.provider.clone(), accept)]);
    let s = w.idle_until_settled();
    assert!(!s.slashed.is_zero());
    assert_eq!(w.apps.market.free_slots(&me), 0, "the slashed slot is gone");
    let supply = w.ledger.total_supply();
    let locked = w.ledger.locked(&me);
    let p = w.provider.clone();
    w.batch(100, vec![(p, offer(1, Environment::simulated()))]);
    assert_eq!(w.apps.market.free_slots(&me), 1, "bonded again");
    assert_eq!(
        w.ledger.locked(&me),
        locked.checked_add(Amount::new(STAKE)).unwrap()
    );
    assert_eq!(w.ledger.total_supply(), supply);
}
