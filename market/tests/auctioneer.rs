//! The epoch pipeline: commit in one epoch, reveal in the next, close on timeout.

use idlegrid_market::strategies::{unit_ask, unit_bid};
use idlegrid_market::*;
use idlegrid_primitives::{AccountId, Amount, Duration, Epoch, Salt, Seed, Timestamp};

fn who(n: u8) -> AccountId {
    AccountId::from_bytes([n; 32])
}

#[test]
fn batches_pipeline_across_epochs() {
    let cfg = BatchConfig {
        commit_window: Duration::from_secs(10),
        reveal_window: Duration::from_secs(10),
        ..BatchConfig::default()
    };
    let genesis = Timestamp::from_millis(1_000);
    let mut auc = Auctioneer::new(
        genesis,
        cfg,
        Box::new(KDouble::half()) as Box<dyn Mechanism>,
    )
    .unwrap();
    assert_eq!(auc.epoch_at(Timestamp::ZERO), None);
    let rep = |_: &AccountId| Reputation::MAX;
    let mut rng = Seed::from_u64(9).rng();

    // Epoch 0: an ask and a bid commit.
    let t0 = genesis;
    let ask = Order::Ask(unit_ask(1, 10, 1, who(1)));
    let bid = Order::Bid(unit_bid(2, 30, 1, who(2)));
    let mut sealed = Vec::new();
    for o in [&ask, &bid] {
        let s = Salt::random(&mut rng);
        let c = seal(Epoch::new(0), o, &s);
        assert_eq!(
            auc.commit(t0, o.owner(), c, Amount::new(3)).unwrap(),
            Epoch::new(0)
        );
        sealed.push((o.clone(), s, c));
    }
    assert_eq!(auc.poll_timeout(), Some(genesis + Duration::from_secs(20)));

    // Epoch 1: epoch 0 reveals while a new commitment enters epoch 1.
    let t1 = genesis + Duration::from_secs(10);
    let late_bid = Order::Bid(unit_bid(3, 50, 1, who(3)));
    let s3 = Salt::random(&mut rng);
    let c3 = seal(Epoch::new(1), &late_bid, &s3);
    assert_eq!(
        auc.commit(t1, who(3), c3, Amount::new(3)).unwrap(),
        Epoch::new(1)
    );
    for (o, s, c) in sealed {
        auc.reveal(t1, o.owner(), Epoch::new(0), c, o, s).unwrap();
    }
    assert_eq!(auc.open_batches(), 2);
    auc.handle_timeout(t1, &rep);
    assert!(auc.poll_event().is_none());

    // End of epoch 0's reveal window: it closes, epoch 1 stays open.
    let t2 = genesis + Duration::from_secs(20);
    auc.handle_timeout(t2, &rep);
    let Some(MarketEvent::BatchClosed(out)) = auc.poll_event() else {
        panic!("no outcome")
    };
    assert_eq!(out.epoch, Epoch::new(0));
    assert_eq!(out.clearing.matches.len(), 1);
    assert_eq!(out.clearing.matches[0].buyer_price, Amount::new(20));
    assert_eq!(out.refunds.len(), 2);
    assert_eq!(auc.open_batches(), 1);

    // Epoch 1's bid is never revealed: its bond is forfeited.
    auc.handle_timeout(genesis + Duration::from_secs(30), &rep);
    let Some(MarketEvent::BatchClosed(out)) = auc.poll_event() else {
        panic!("no outcome")
    };
    assert_eq!(out.epoch, Epoch::new(1));
    assert_eq!(out.forfeits.len(), 1);
    assert_eq!(auc.poll_timeout(), None);
    assert_eq!(auc.mechanism().name(), "k_double");
}
