//! Referees by VRF sortition: forged and foreign tickets are refused, only
//! the seated committee votes, a committee that does not decide escalates
//! to a larger one and the dispute still settles, the convicted party pays
//! the majority referees, and money is conserved throughout.

use idlegrid_entrap::{Outcome, RefereeTicket, Verdict};
use idlegrid_node::market::referees::RefereeError;
use idlegrid_node::market::{MarketTx, Notice, Settlement};
use idlegrid_primitives::{Amount, Digest, Domain};

mod common;

use common::{REFEREE_FEE, World};

/// A lot whose provider was accused: `frame` plants a wrong expected
/// answer (honest provider), otherwise the provider cheats.
fn accused(frame: bool) -> World {
    let mut w = World::new();
    w.matched_lot();
    let plan = w.plan(frame);
    let outputs = w.deliver(&plan, !frame);
    w.verify(&plan, &outputs);
    assert!(
        w.notices
            .iter()
            .any(|n| matches!(n, Notice::Accused { .. }))
    );
    w
}

fn rejection(w: &World) -> Option<RefereeError> {
    w.notices.iter().rev().find_map(|n| match n {
        Notice::RefereeRejected { error, .. } => Some(error.clone()),
        _ => None,
    })
}

fn settle(w: &mut World) -> Settlement {
    let s = w.idle_until_settled();
    assert_eq!(
        w.ledger.total_supply().get() + w.ledger.burned().get(),
        w.ledger.initial_supply().get()
    );
    assert_eq!(w.apps.market.open_jobs(), 0, "the job closed");
    s
}

#[test]
fn forged_foreign_and_ineligible_tickets_are_refused() {
    let mut w = accused(true);
    let tx = MarketTx::Dispute {
        client: w.client.account_id(),
        job: 0,
        lot: 0,
    };
    w.batch(100, vec![(w.provider.clone(), tx)]);
    let client = w.client.account_id();
    let ticket = |k: &idlegrid_primitives::Keypair, on: &Digest| MarketTx::Ticket {
        client,
        job: 0,
        lot: 0,
        ticket: RefereeTicket::draw(k, on),
    };
    let elsewhere = Digest::of(Domain::new("idlegrid/node/test/other"), &1u8);
    let (r0, r1) = (w.referees[0].clone(), w.referees[1].clone());
    let digest = w.ledger.state_digest();
    // Drawn on other randomness: the proof does not verify.
    let r = w.try_batch(10, vec![(r0.clone(), ticket(&r0, &elsewhere))]);
    assert!(r[0].is_err());
    assert_eq!(rejection(&w), Some(RefereeError::ForgedTicket));
    // Someone else's ticket.
    let mut right = w.tickets();
    let (_, foreign) = right.remove(1);
    let r = w.try_batch(10, vec![(r0.clone(), foreign)]);
    assert!(r[0].is_err());
    assert_eq!(rejection(&w), Some(RefereeError::NotOwnTicket));
    // The provider is no referee.
    let randomness = w
        .notices
        .iter()
        .find_map(|n| match n {
            Notice::TicketWindow { randomness, .. } => Some(*randomness),
            _ => None,
        })
        .unwrap();
    let p = w.provider.clone();
    let r = w.try_batch(10, vec![(p.clone(), ticket(&p, &randomness))]);
    assert!(r[0].is_err());
    assert_eq!(rejection(&w), Some(RefereeError::NotEligible(p.node_id())));
    assert_eq!(
        w.ledger.state_digest(),
        digest,
        "refused tickets change nothing"
    );
    // A valid one is accepted, once.
    w.batch(10, vec![(r1.clone(), ticket(&r1, &randomness))]);
    let r = w.try_batch(10, vec![(r1.clone(), ticket(&r1, &randomness))]);
    assert!(r[0].is_err());
    assert_eq!(rejection(&w), Some(RefereeError::DuplicateTicket));
}

#[test]
fn only_the_seated_committee_votes() {
    let mut w = accused(true);
    let (committee, disputed) = w.dispute_until_seated();
    let outsider = w
        .referees
        .iter()
        .map(|r| r.node_id())
        .find(|r| !committee.contains(r))
        .unwrap();
    let r = w.try_batch(10, w.votes(&[outsider], &disputed));
    assert!(r[0].is_err());
    assert_eq!(rejection(&w), Some(RefereeError::NotOnCommittee));
    w.batch(10, w.votes(&committee, &disputed));
    let s = settle(&mut w);
    assert_eq!(s.outcome, Outcome::Judged(Verdict::ClientFramed));
}

#[test]
fn a_committee_with_silent_members_escalates_and_the_dispute_settles() {
    let mut w = accused(true);
    let (committee, disputed) = w.dispute_until_seated();
    // One of three votes: no majority by the deadline.
    w.batch(10, w.votes(&committee[..1], &disputed));
    let (larger, disputed) = w.seat_next(1);
    assert!(larger.len() > committee.len(), "{larger:?}");
    let window = w.notices.iter().any(|n| {
        matches!(
            n,
            Notice::TicketWindow {
                level: 1,
                seats: 7,
                ..
            }
        )
    });
    assert!(window, "an escalation window for 7 seats");
    // Five of seven vote: a majority.
    w.batch(10, w.votes(&larger[..5], &disputed));
    let s = settle(&mut w);
    assert_eq!(s.outcome, Outcome::Judged(Verdict::ClientFramed));
    assert_eq!(s.referee_fees, Amount::new(5 * REFEREE_FEE));
}

#[test]
fn a_dispute_nobody_votes_on_falls_back_and_strands_nothing() {
    let mut w = accused(true);
    let provider0 = w.wealth(&w.provider);
    let _ = w.dispute_until_seated();
    let _ = w.seat_next(1);
    // Seven seats are all the eligible referees: no further escalation.
    let s = settle(&mut w);
    assert_eq!(s.outcome, Outcome::Judged(Verdict::NotProven));
    assert!(s.referee_fees.is_zero() && s.slashed.is_zero());
    assert!(w.wealth(&w.provider) > provider0, "paid, stake intact");
    let levels = w
        .notices
        .iter()
        .filter(|n| matches!(n, Notice::TicketWindow { .. }))
        .count();
    assert_eq!(levels, 2);
}

#[test]
fn a_convicted_cheater_pays_the_majority_referees() {
    let mut w = accused(false);
    let supply = w.ledger.total_supply().get() + w.ledger.burned().get();
    let (committee, disputed) = w.dispute_until_seated();
    let before: Vec<u128> = w.referees.iter().map(|r| w.wealth(r)).collect();
    w.batch(10, w.votes(&committee, &disputed));
    let s = settle(&mut w);
    assert_eq!(s.outcome, Outcome::Judged(Verdict::ProviderCheated));
    assert_eq!(s.referee_fees, Amount::new(3 * REFEREE_FEE));
    for (r, b) in w.referees.iter().zip(before) {
        let fee = if committee.contains(&r.node_id()) {
            REFEREE_FEE
        } else {
            0
        };
        assert_eq!(w.wealth(r), b + fee);
    }
    // Half the slash goes to the client; the fees come out of the other
    // half, which is burned.
    assert!(!s.slashed.is_zero());
    assert_eq!(s.burned.get() + s.referee_fees.get(), s.slashed.get() / 2);
    assert_eq!(
        w.ledger.total_supply().get() + w.ledger.burned().get(),
        supply
    );
}
