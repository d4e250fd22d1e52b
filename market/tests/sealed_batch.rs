//! Commit–reveal rules of a sealed batch.

use idlegrid_market::strategies::{self, unit_ask, unit_bid};
use idlegrid_market::*;
use idlegrid_primitives::{AccountId, Amount, Commitment, Epoch, Salt, Seed, Timestamp, encode};
use proptest::prelude::*;

const E: Epoch = Epoch::new(3);

fn who(n: u8) -> AccountId {
    AccountId::from_bytes([n; 32])
}

fn salt(n: u64) -> Salt {
    Salt::random(&mut Seed::from_u64(n).rng())
}

fn batch() -> SealedBatch {
    SealedBatch::open(E, Timestamp::ZERO, BatchConfig::default()).unwrap()
}

fn committed(b: &mut SealedBatch, o: &Order, n: u64) -> (Commitment, Salt) {
    let s = salt(n);
    let c = seal(E, o, &s);
    b.commit(Timestamp::ZERO, o.owner(), c, Amount::new(10))
        .unwrap();
    (c, s)
}

fn rep() -> FlatReputation {
    FlatReputation(Reputation::MAX)
}

#[test]
fn commit_rules() {
    let mut b = batch();
    let o = Order::Bid(unit_bid(1, 10, 1, who(1)));
    let c = seal(E, &o, &salt(1));
    assert!(matches!(
        b.commit(Timestamp::ZERO, who(1), c, Amount::ZERO),
        Err(MarketError::BondTooSmall { .. })
    ));
    b.commit(Timestamp::ZERO, who(1), c, Amount::new(1))
        .unwrap();
    assert_eq!(
        b.commit(Timestamp::ZERO, who(1), c, Amount::new(1)),
        Err(MarketError::DuplicateCommitment(c))
    );
    let late = b.commit_deadline();
    assert!(matches!(
        b.commit(late, who(2), seal(E, &o, &salt(2)), Amount::new(1)),
        Err(MarketError::WrongPhase { .. })
    ));
    let cfg = BatchConfig {
        max_commitments: 1,
        ..BatchConfig::default()
    };
    let mut small = SealedBatch::open(E, Timestamp::ZERO, cfg).unwrap();
    small
        .commit(Timestamp::ZERO, who(1), c, Amount::new(1))
        .unwrap();
    assert!(matches!(
        small.commit(
            Timestamp::ZERO,
            who(2),
            seal(E, &o, &salt(3)),
            Amount::new(1)
        ),
        Err(MarketError::Full { .. })
    ));
    let zero = BatchConfig {
        reveal_window: idlegrid_primitives::Duration::ZERO,
        ..BatchConfig::default()
    };
    assert!(SealedBatch::open(E, Timestamp::ZERO, zero).is_err());
}

#[test]
fn reveal_rules() {
    let mut b = batch();
    let ask = Order::Ask(unit_ask(1, 10, 1, who(1)));
    let bid = Order::Bid(unit_bid(2, 20, 1, who(2)));
    let (ca, sa) = committed(&mut b, &ask, 1);
    let (cb, sb) = committed(&mut b, &bid, 2);
    // Too early: rejected without effect.
    assert!(matches!(
        b.reveal(Timestamp::ZERO, who(1), ca, ask.clone(), sa),
        Err(MarketError::WrongPhase { .. })
    ));
    let t = b.commit_deadline();
    // Reveal without a commitment.
    let stranger = Order::Bid(unit_bid(9, 20, 1, who(9)));
    let cs = seal(E, &stranger, &salt(9));
    assert_eq!(
        b.reveal(t, who(9), cs, stranger, salt(9)),
        Err(MarketError::UnknownCommitment(cs))
    );
    // Someone else cannot reveal (or grief) a commitment.
    assert_eq!(
        b.reveal(t, who(2), ca, ask.clone(), sa),
        Err(MarketError::NotCommitter(ca))
    );
    // A wrong salt forfeits; the real reveal afterwards is too late to count.
    assert_eq!(
        b.reveal(t, who(2), cb, bid.clone(), salt(99)),
        Err(MarketError::RevealMismatch(cb))
    );
    assert_eq!(
        b.reveal(t, who(2), cb, bid.clone(), sb),
        Err(MarketError::AlreadySettled(cb))
    );
    assert_eq!(
        b.reveal(t, who(1), ca, ask.clone(), sa),
        Ok(OrderId::new(1))
    );
    assert_eq!(
        b.reveal(t, who(1), ca, ask.clone(), sa),
        Err(MarketError::AlreadySettled(ca))
    );
    assert_eq!(b.revealed(), 1);
    let out = b
        .close(b.reveal_deadline(), &KDouble::half(), &rep())
        .unwrap();
    assert!(out.clearing.matches.is_empty());
    assert_eq!(out.refunds.len(), 1);
    assert_eq!(out.forfeits.len(), 1);
    assert_eq!(out.forfeits[0].reason, ForfeitReason::Mismatch);
    assert_eq!(out.forfeits[0].owner, who(2));
}

#[test]
fn late_invalid_duplicate_and_foreign_reveals_forfeit() {
    let mut b = batch();
    let ok = Order::Ask(unit_ask(1, 10, 1, who(1)));
    let dup = Order::Bid(unit_bid(1, 20, 1, who(2)));
    let zero = Order::Bid(unit_bid(3, 20, 0, who(3)));
    let foreign = Order::Bid(unit_bid(4, 20, 1, who(5)));
    let late = Order::Bid(unit_bid(6, 20, 1, who(6)));
    let (c1, s1) = committed(&mut b, &ok, 1);
    let (c2, s2) = committed(&mut b, &dup, 2);
    let (c3, s3) = committed(&mut b, &zero, 3);
    // Committed by who(4), but the order says who(5) owns it.
    let s4 = salt(4);
    let c4 = seal(E, &foreign, &s4);
    b.commit(Timestamp::ZERO, who(4), c4, Amount::new(10))
        .unwrap();
    let (c6, s6) = committed(&mut b, &late, 6);
    let t = b.commit_deadline();
    b.reveal(t, who(1), c1, ok, s1).unwrap();
    assert_eq!(
        b.reveal(t, who(2), c2, dup, s2),
        Err(MarketError::DuplicateOrderId(OrderId::new(1)))
    );
    assert!(matches!(
        b.reveal(t, who(3), c3, zero, s3),
        Err(MarketError::InvalidReveal { .. })
    ));
    assert_eq!(
        b.reveal(t, who(4), c4, foreign, s4),
        Err(MarketError::OwnerMismatch(c4))
    );
    let end = b.reveal_deadline();
    assert_eq!(
        b.reveal(end, who(6), c6, late, s6),
        Err(MarketError::RevealLate(c6))
    );
    assert!(matches!(
        b.close(Timestamp::from_micros(end.as_micros() - 1), &McAfee, &rep()),
        Err(MarketError::WrongPhase { .. })
    ));
    let out = b.close(end, &McAfee, &rep()).unwrap();
    let reasons: Vec<_> = out.forfeits.iter().map(|f| f.reason).collect();
    assert_eq!(
        reasons,
        vec![
            ForfeitReason::DuplicateOrderId,
            ForfeitReason::InvalidOrder,
            ForfeitReason::OwnerMismatch,
            ForfeitReason::Late
        ]
    );
    assert!(matches!(
        b.close(end, &McAfee, &rep()),
        Err(MarketError::WrongPhase { .. })
    ));
    assert_eq!(b.phase(end), Phase::Closed);
    assert_eq!(b.poll_timeout(end), None);
}

#[test]
fn a_reveal_cannot_be_replayed_into_another_epoch() {
    let o = Order::Bid(unit_bid(1, 10, 1, who(1)));
    let s = salt(1);
    let old = seal(Epoch::new(2), &o, &s);
    let mut b = batch();
    b.commit(Timestamp::ZERO, who(1), old, Amount::new(10))
        .unwrap();
    assert_eq!(
        b.reveal(b.commit_deadline(), who(1), old, o, s),
        Err(MarketError::RevealMismatch(old))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Same reveals in the same order give the same outcome, byte for byte;
    /// every bond is either refunded or forfeited, exactly once.
    #[test]
    fn outcomes_are_deterministic_and_bonds_conserved(
        (asks, bids) in strategies::homogeneous_market(30, 30, 3, 50),
        reveal_mask in any::<u64>(),
        bonds in prop::collection::vec(1u128..1000, 60),
    ) {
        let run = || {
            let mut b = batch();
            let orders: Vec<Order> = asks.iter().cloned().map(Order::Ask).chain(bids.iter().cloned().map(Order::Bid)).collect();
            let mut sealed = Vec::new();
            for (i, o) in orders.iter().enumerate() {
                let s = salt(i as u64);
                let c = seal(E, o, &s);
                b.commit(Timestamp::ZERO, o.owner(), c, Amount::new(bonds[i])).unwrap();
                sealed.push((o.clone(), s, c));
            }
            let t = b.commit_deadline();
            for (i, (o, s, c)) in sealed.into_iter().enumerate() {
                if reveal_mask >> (i % 64) & 1 == 1 {
                    b.reveal(t, o.owner(), c, o, s).unwrap();
                }
            }
            b.close(b.reveal_deadline(), &McAfee, &rep()).unwrap()
        };
        let (x, y) = (run(), run());
        prop_assert_eq!(encode(&x), encode(&y));
        let n = asks.len() + bids.len();
        prop_assert_eq!(x.refunds.len() + x.forfeits.len(), n);
        let total: u128 = bonds[..n].iter().sum();
        let settled: u128 = x.refunds.iter().map(|r| r.bond.get()).chain(x.forfeits.iter().map(|f| f.bond.get())).sum();
        prop_assert_eq!(total, settled);
        prop_assert!(x.forfeits.iter().all(|f| f.reason == ForfeitReason::NotRevealed));
    }
}
