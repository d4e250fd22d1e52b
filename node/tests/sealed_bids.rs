//! Sealed asks and bids in the marketplace application: nobody learns a
//! price before its batch closes, a missing reveal forfeits its bond (burned,
//! supply conserved), reveals that do not open their commitment or come
//! early or late are refused with a typed error, and conservation holds
//! over random commit / reveal / skip sequences.

use idlegrid_node::market::sealing::Sealer;
use idlegrid_node::market::{
    BatchNo, MarketError, MarketTx, Notice, OrderKey, SealError, seal_price,
};
use idlegrid_node::wire::{Rejection, RejectionKind};
use idlegrid_primitives::{Amount, Salt, Seed, encode};
use proptest::prelude::*;

mod common;

use common::{SEAL_BOND, World};

/// Prices no other number in these tests collides with.
const ASK: u128 = 4_242_421;
const BID: u128 = 9_797_979;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The provider's offer, its sealed ask and the client's sealed job, in
/// batch 0.
fn sealed_orders(w: &mut World) -> Vec<(idlegrid_primitives::Keypair, MarketTx)> {
    let offer = common::offer();
    let ask = w.sealers[0].seal_ask(Amount::new(ASK));
    let job = w.job(0, BID);
    vec![
        (w.provider.clone(), offer),
        (w.provider.clone(), ask),
        (w.client.clone(), job),
    ]
}

#[test]
fn commitments_are_indistinguishable_without_the_salt() {
    let w = World::new();
    let owner = w.client.account_id();
    let key = OrderKey::Bid { job: 0, attempt: 0 };
    let (s1, s2) = (Salt::from_bytes([1; 32]), Salt::from_bytes([2; 32]));
    let low = seal_price(&owner, key, Amount::new(100), &s1);
    let high = seal_price(&owner, key, Amount::new(BID), &s2);
    // Same shape on the wire; only the 32 commitment bytes differ.
    let (a, b) = (encode(&low), encode(&high));
    assert_eq!(a.len(), b.len());
    assert!(!contains(&b, &encode(&Amount::new(BID))));
    // Without the salt, no price in a plausible range opens either one.
    for guess in [Salt::from_bytes([0; 32]), Salt::from_bytes([3; 32])] {
        for p in (1..=20_000u128).chain([BID]) {
            let c = seal_price(&owner, key, Amount::new(p), &guess);
            assert!(c != low && c != high);
        }
    }
}

#[test]
fn a_node_that_sees_everything_learns_no_price_before_the_batch_closes() {
    let mut w = World::new();
    let orders = sealed_orders(&mut w);
    let wire: Vec<Vec<u8>> = orders.iter().map(|(k, p)| w.sign(k, p)).collect();
    let client_balance = w.ledger.account(&w.client.account_id()).unwrap().balance;
    w.batch(100, orders);
    for step in 0..8 {
        w.batch(100, vec![]);
        assert!(w.apps.market.batch() == BatchNo(0), "step {step}");
    }
    // Everything a validator holds or emits before the batch closed.
    let prices = [encode(&Amount::new(ASK)), encode(&Amount::new(BID))];
    for bytes in &wire {
        assert!(
            prices.iter().all(|p| !contains(bytes, p)),
            "price on the wire"
        );
    }
    let seen = format!("{:?}", w.notices);
    assert!(!seen.contains(&ASK.to_string()) && !seen.contains(&BID.to_string()));
    assert!(
        w.notices
            .iter()
            .any(|n| matches!(n, Notice::OrderSealed { .. }))
    );
    let live: Vec<_> = w.apps.market.sealed().live().collect();
    assert_eq!(live.len(), 2, "two sealed orders, no prices");
    // No escrow yet: its size would tell the bid.
    let now = w.ledger.account(&w.client.account_id()).unwrap().balance;
    assert_eq!(now, client_balance);
    // The batch closes; only then do the reveals go out and prices show.
    w.run_until(|n| matches!(n, Notice::OrderRevealed { .. }));
    let first = w
        .notices
        .iter()
        .position(|n| matches!(n, Notice::SealingClosed { .. }));
    let revealed = w
        .notices
        .iter()
        .position(|n| matches!(n, Notice::OrderRevealed { .. }));
    assert!(first < revealed);
    w.run_until(|n| matches!(n, Notice::Matched { .. }));
}

#[test]
fn a_missing_reveal_forfeits_its_bond_and_supply_is_conserved() {
    let mut w = World::new();
    let supply = w.ledger.total_supply();
    let (p0, c0) = (w.wealth(&w.provider), w.wealth(&w.client));
    let orders = sealed_orders(&mut w);
    w.batch(100, orders);
    // Nobody reveals: empty batches past the reveal window.
    for _ in 0..25 {
        w.batch(100, vec![]);
    }
    let mut forfeits: Vec<_> = w
        .notices
        .iter()
        .filter_map(|n| match n {
            Notice::BondForfeited { owner, bond, .. } => Some((*owner, *bond)),
            _ => None,
        })
        .collect();
    let bond = Amount::new(SEAL_BOND);
    let mut expected = vec![
        (w.provider.account_id(), bond),
        (w.client.account_id(), bond),
    ];
    forfeits.sort();
    expected.sort();
    assert_eq!(forfeits, expected);
    assert_eq!(w.ledger.burned(), Amount::new(2 * SEAL_BOND));
    assert_eq!(
        w.ledger.total_supply().get() + w.ledger.burned().get(),
        supply.get()
    );
    assert_eq!(w.wealth(&w.provider), p0 - SEAL_BOND);
    assert_eq!(w.wealth(&w.client), c0 - SEAL_BOND);
    // The unrevealed job lapsed and closed; its lot bonds are free again.
    assert!(
        w.notices
            .iter()
            .any(|n| matches!(n, Notice::JobClosed { .. }))
    );
    assert_eq!(w.apps.market.open_jobs(), 0);
    assert!(w.apps.market.sealed().is_empty());
    let free = w
        .ledger
        .account(&w.client.account_id())
        .unwrap()
        .free_stake();
    assert_eq!(free, Amount::new(common::BOND * 10 - SEAL_BOND));
}

fn rejection(w: &World) -> Option<SealError> {
    w.notices.iter().rev().find_map(|n| match n {
        Notice::SealRejected { error, .. } => Some(error.clone()),
        _ => None,
    })
}

#[test]
fn a_reveal_that_does_not_open_its_commitment_is_refused() {
    let mut w = World::new();
    let orders = sealed_orders(&mut w);
    w.batch(100, orders);
    w.batch(1_000, vec![]);
    let digest = w.ledger.state_digest();
    let wrong = MarketTx::RevealBid {
        job: 0,
        attempt: 0,
        price: Amount::new(BID - 1),
        salt: Salt::from_bytes([9; 32]),
    };
    let r = w.try_batch(10, vec![(w.client.clone(), wrong)]);
    assert!(r[0].is_err());
    let key = OrderKey::Bid { job: 0, attempt: 0 };
    assert_eq!(rejection(&w), Some(SealError::Mismatch(key)));
    assert_eq!(
        w.ledger.state_digest(),
        digest,
        "a refused reveal changes nothing"
    );
    // The right one still opens it.
    let txs = w.follow();
    assert!(!txs.is_empty());
    w.batch(10, txs);
    assert!(
        w.notices
            .iter()
            .any(|n| matches!(n, Notice::OrderRevealed { .. }))
    );
}

#[test]
fn early_and_late_reveals_are_refused() {
    let mut w = World::new();
    let ask = w.sealers[0].seal_ask(Amount::new(ASK));
    let offer = (w.provider.clone(), common::offer());
    w.batch(100, vec![offer, (w.provider.clone(), ask)]);
    // Early: the batch still takes commitments. The sealer would not send
    // this; a careless or malicious node might.
    let seq = 0;
    let salt = Salt::from_bytes([0; 32]);
    let early = MarketTx::RevealAsk {
        seq,
        price: Amount::new(ASK),
        salt,
        next: None,
    };
    let r = w.try_batch(100, vec![(w.provider.clone(), early)]);
    assert!(r[0].is_err());
    assert_eq!(rejection(&w), Some(SealError::Early { batch: BatchNo(0) }));
    // Late: the sealer's reveal, held back until the window is over
    // (batch 2 with a one-batch, one-commit window).
    w.batch(900, vec![]);
    let reveal = w.follow();
    assert_eq!(reveal.len(), 1, "the sealer reveals once batch 0 closes");
    w.batch(1_000, vec![]);
    assert!(
        w.notices
            .iter()
            .any(|n| matches!(n, Notice::BondForfeited { .. }))
    );
    let r = w.try_batch(10, reveal);
    assert!(r[0].is_err());
    assert_eq!(rejection(&w), Some(SealError::Late { batch: BatchNo(0) }));
}

#[derive(Debug, Clone)]
enum Op {
    /// The provider asks this price from now on (sealed asks, each reveal
    /// carrying the next seal).
    Ask(u128),
    StopAsking,
    Job(u128),
    Wait(u64),
    /// Send the sealers' pending reveals, skipping those whose bit is set,
    /// corrupting the price of those whose second bit is set.
    Follow(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u128..500).prop_map(Op::Ask),
        Just(Op::StopAsking),
        (1u128..500).prop_map(Op::Job),
        (50u64..1_500).prop_map(Op::Wait),
        any::<u8>().prop_map(Op::Follow),
    ]
}

fn corrupt(tx: MarketTx) -> MarketTx {
    match tx {
        MarketTx::RevealAsk {
            seq,
            price,
            salt,
            next,
        } => MarketTx::RevealAsk {
            seq,
            price: price.saturating_add(Amount::new(1)),
            salt,
            next,
        },
        MarketTx::RevealBid {
            job,
            attempt,
            price,
            salt,
        } => MarketTx::RevealBid {
            job,
            attempt,
            price: price.saturating_add(Amount::new(1)),
            salt,
        },
        other => other,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Random commits, reveals, skipped and corrupted reveals: every
    /// batch passes the ledger's `check_all` and the market's `check_lots`
    /// (in `try_batch`), supply is `initial − burned`, and what was burned
    /// is exactly the forfeited sealing bonds and the bonds of matched lots
    /// nobody planned (no plan is ever sent here).
    #[test]
    fn sealing_conserves_supply(ops in proptest::collection::vec(op(), 1..40)) {
        let mut w = World::new();
        let supply = w.ledger.total_supply().get();
        w.batch(10, vec![(w.provider.clone(), common::offer())]);
        let mut next_job = 0;
        for op in ops {
            let txs = match op {
                Op::Ask(p) => {
                    w.sealers[0].set_ask(Some(Amount::new(p)));
                    let tx = w.sealers[0].poll_ask();
                    tx.into_iter().map(|t| (w.provider.clone(), t)).collect()
                }
                Op::StopAsking => {
                    w.sealers[0].set_ask(None);
                    vec![]
                }
                Op::Job(p) => {
                    next_job += 1;
                    vec![(w.client.clone(), w.job(next_job, p))]
                }
                Op::Wait(ms) => {
                    w.try_batch(ms, vec![]);
                    continue;
                }
                Op::Follow(bits) => w
                    .follow()
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| bits >> (i % 4) & 1 == 0)
                    .map(|(i, (k, tx))| (k, if bits >> 4 >> (i % 4) & 1 == 1 { corrupt(tx) } else { tx }))
                    .collect(),
            };
            w.try_batch(50, txs);
            prop_assert_eq!(w.ledger.total_supply().get() + w.ledger.burned().get(), supply);
        }
        // Drain: nothing is revealed any more; every batch closes.
        for _ in 0..4 {
            w.try_batch(1_000, vec![]);
        }
        prop_assert!(w.apps.market.sealed().is_empty());
        let forfeited: u128 = w
            .notices
            .iter()
            .filter_map(|n| match n {
                Notice::BondForfeited { bond, .. } | Notice::Unplanned { bond, .. } => {
                    Some(bond.get())
                }
                _ => None,
            })
            .sum();
        prop_assert_eq!(w.ledger.burned().get(), forfeited);
        prop_assert_eq!(w.ledger.total_supply().get() + forfeited, supply);
    }
}

#[test]
fn a_provider_that_keeps_asking_sends_one_transaction_per_batch() {
    let mut w = World::new();
    w.batch(10, vec![(w.provider.clone(), common::offer())]);
    w.sealers[0].set_ask(Some(Amount::new(ASK)));
    let first = w.sealers[0].poll_ask().expect("asking");
    assert!(w.sealers[0].poll_ask().is_none(), "one ask in flight");
    w.batch(100, vec![(w.provider.clone(), first)]);
    for b in 1..4u64 {
        // Just after batch b - 1 closes: one transaction, reveal + next seal.
        w.batch(1_000, vec![]);
        let txs = w.follow();
        assert_eq!(txs.len(), 1, "batch {b}: {txs:?}");
        assert!(matches!(
            &txs[0].1,
            MarketTx::RevealAsk { next: Some(_), .. }
        ));
        w.batch(10, txs);
    }
    let revealed = w
        .notices
        .iter()
        .filter(|n| matches!(n, Notice::OrderRevealed { .. }))
        .count();
    assert_eq!(revealed, 3);
    assert_eq!(w.ledger.burned(), Amount::ZERO);
}

/// A provider's process restarts: its new sealer numbers asks from 0, the
/// book refuses that as stale and says where the numbering stands, and the
/// next ask (with fresh salts) goes through.
#[test]
fn a_restarted_provider_numbers_its_asks_past_the_books_last_one() {
    let mut w = World::new();
    w.batch(10, vec![(w.provider.clone(), common::offer())]);
    w.sealers[0].set_ask(Some(Amount::new(ASK)));
    let first = w.sealers[0].poll_ask().expect("asking");
    w.batch(100, vec![(w.provider.clone(), first)]);
    for _ in 0..3 {
        w.batch(1_000, vec![]);
        let txs = w.follow();
        w.batch(10, txs);
    }
    // The restart.
    let mut fresh = Sealer::new(w.provider.account_id(), Seed::from_u64(51), 1);
    fresh.set_ask(Some(Amount::new(ASK)));
    let stale = fresh.poll_ask().expect("asking");
    let r = w.try_batch(1_000, vec![(w.provider.clone(), stale.clone())]);
    let why = Rejection::from_ledger(r[0].as_ref().expect_err("stale"));
    let Some(MarketError::Seal(SealError::StaleAsk { last, got: 0 })) = why.market else {
        panic!("{why:?}");
    };
    assert!(fresh.rejected(&stale, why.market.as_ref()).is_none());
    let next = fresh.poll_ask().expect("asking again");
    assert!(
        matches!(next, MarketTx::SealAsk { seq, .. } if seq == last + 1),
        "{next:?}"
    );
    w.batch(10, vec![(w.provider.clone(), next)]);
}

/// A provider's reveal carries its next ask, and the ledger cannot lock the
/// next ask's bond (the provider's stake went elsewhere): the reveal is
/// refused as a whole, the sealer sends it again alone, and the ask is
/// revealed in time — its bond is returned, not forfeited. The sealer asks
/// again only once another batch closed.
#[test]
fn a_reveal_whose_next_ask_cannot_be_bonded_goes_again_alone_and_keeps_its_bond() {
    let mut w = World::new();
    let provider = w.provider.account_id();
    w.batch(10, vec![(w.provider.clone(), common::offer())]);
    w.sealers[0].set_ask(Some(Amount::new(ASK)));
    let first = w.sealers[0].poll_ask().expect("asking");
    // The rest of the provider's stake bonds a job of its own: nothing is
    // left for the next ask's bond (3 slots' stake, one slot offered, one
    // ask's bond, the job's sealing bond).
    let MarketTx::PostJob(mut req) = w.job(7, BID) else {
        unreachable!("a job")
    };
    req.client_bond = Amount::new(3 * common::STAKE - common::STAKE - 2 * SEAL_BOND);
    let own_job = MarketTx::PostJob(req);
    w.batch(
        100,
        vec![(w.provider.clone(), first), (w.provider.clone(), own_job)],
    );
    w.batch(1_000, vec![]);
    let reveal = w
        .follow()
        .into_iter()
        .find(|(k, tx)| {
            k.account_id() == provider && matches!(tx, MarketTx::RevealAsk { next: Some(_), .. })
        })
        .expect("the reveal with the next ask");
    let r = w.try_batch(10, vec![reveal.clone()]);
    let why = Rejection::from_ledger(r[0].as_ref().expect_err("no stake for the next bond"));
    assert_eq!(why.kind, RejectionKind::Funds, "{why:?}");
    let again = w.sealers[0]
        .rejected(&reveal.1, why.market.as_ref())
        .expect("the reveal goes again");
    assert!(
        matches!(
            again,
            MarketTx::RevealAsk {
                seq: 0,
                next: None,
                ..
            }
        ),
        "{again:?}"
    );
    assert!(
        !w.sealers[0].ask_due(),
        "no new ask until a batch closes and its bond may be there"
    );
    w.batch(10, vec![(w.provider.clone(), again)]);
    for _ in 0..3 {
        w.batch(1_000, vec![]);
        let _reveals = w.follow();
    }
    let ask = OrderKey::Ask { seq: 0 };
    let revealed = w.notices.iter().any(|n| {
        matches!(n, Notice::OrderRevealed { owner, order, .. } if *owner == provider && *order == ask)
    });
    let forfeited = w.notices.iter().any(|n| {
        matches!(n, Notice::BondForfeited { owner, order, .. } if *owner == provider && *order == ask)
    });
    assert!(
        revealed && !forfeited,
        "revealed {revealed}, forfeited {forfeited}"
    );
    assert!(w.sealers[0].ask_due(), "asking resumes once a batch closed");
}
