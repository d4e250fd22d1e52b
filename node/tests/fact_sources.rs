//! A light node's fact sources: a window of the committee holding at least
//! 2f + 1 (or f + 1) of the stake, widened when it does not decide a fact in
//! time, the new sources asked to replay the facts since the oldest
//! undecided one.

use idlegrid_dag_ledger::consensus::Committee;
use idlegrid_dag_ledger::ledger::{ChainId, Params, TxKind};
use idlegrid_node::light::{FactWindow, LightCore, LightSetup};
use idlegrid_node::wire::{Fact, FactBatch, GatewayRequest, NodeMessage};
use idlegrid_primitives::{
    AccountId, Amount, Destination, Digest, Domain, Duration, Keypair, NodeId, Seed, Timestamp,
};

const PATIENCE: Duration = Duration::from_secs(5);

fn validators(n: u64) -> Vec<NodeId> {
    (0..n)
        .map(|i| Keypair::from_seed(&Seed::from_u64(i)).node_id())
        .collect()
}

fn core(vs: &[NodeId], first_gateway: usize, fact_sources: usize) -> LightCore {
    windowed(vs, first_gateway, fact_sources, FactWindow::Quorum)
}

fn windowed(
    vs: &[NodeId],
    first_gateway: usize,
    fact_sources: usize,
    fact_window: FactWindow,
) -> LightCore {
    LightCore::new(setup(vs, first_gateway, fact_sources, fact_window))
}

fn setup(
    vs: &[NodeId],
    first_gateway: usize,
    fact_sources: usize,
    fact_window: FactWindow,
) -> LightSetup {
    let chain: ChainId = Params::default().chain_id;
    LightSetup {
        key: Keypair::from_seed(&Seed::from_u64(99)),
        chain,
        committee: Committee::equal(vs.iter().copied()).unwrap(),
        first_gateway,
        patience: PATIENCE,
        fanout: 1,
        fact_sources,
        fact_window,
        delivery: Default::default(),
        signatures: Default::default(),
        next_nonce: Some(0),
    }
}

/// Who was sent a subscription since the last call, with the commit index
/// a replay was asked from.
fn subscriptions(c: &mut LightCore) -> Vec<(NodeId, Option<u64>)> {
    std::iter::from_fn(|| c.poll_transmit())
        .filter_map(|t| {
            let from = match t.msg {
                NodeMessage::Gateway(GatewayRequest::Subscribe) => None,
                NodeMessage::Gateway(GatewayRequest::SubscribeFrom(i)) => Some(i),
                _ => return None,
            };
            match t.to {
                Destination::To(v) => Some((v, from)),
                Destination::Broadcast => None,
            }
        })
        .collect()
}

/// Who was sent a subscription since the last call.
fn subscribed(c: &mut LightCore) -> Vec<NodeId> {
    subscriptions(c).into_iter().map(|(v, _)| v).collect()
}

fn fact(n: u64) -> FactBatch {
    FactBatch {
        index: 3,
        facts: vec![Fact::Applied {
            sender: AccountId::from_bytes([7; 32]),
            tx: Digest::of(Domain::new("test/tx"), &n),
        }]
        .into(),
    }
}

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

#[test]
fn the_window_holds_two_f_plus_one_and_starts_at_the_first_gateway() {
    let vs = validators(7); // f = 2: 2f + 1 = 5 validators
    let mut c = core(&vs, 5, 1);
    c.start(Timestamp::ZERO);
    assert_eq!(subscribed(&mut c), vec![vs[5], vs[6], vs[0], vs[1], vs[2]]);
    let mut c = core(&vs, 5, 6);
    c.start(Timestamp::ZERO);
    assert_eq!(subscribed(&mut c).len(), 6);
    // 0 (and anything past the committee) is every validator, still from
    // the first gateway on: the first of them send certified facts, so
    // light nodes spread those over the committee with their gateways.
    let from_five: Vec<_> = (0..7).map(|k| vs[(5 + k) % 7]).collect();
    for k in [0, 7, 99] {
        let mut c = core(&vs, 5, k);
        c.start(Timestamp::ZERO);
        assert_eq!(subscribed(&mut c), from_five);
    }
}

#[test]
fn a_fact_short_of_f_plus_one_for_the_patience_widens_the_window() {
    let vs = validators(7);
    let mut c = core(&vs, 0, 1);
    c.start(Timestamp::ZERO);
    subscribed(&mut c);
    assert_eq!(
        c.poll_timeout(),
        None,
        "nothing pending, nothing to wait for"
    );
    // Beyond the fault model: two of five sources report, the other three
    // are silent (crashed, withholding, or they evicted this node).
    for v in &vs[..2] {
        let (accepted, _) = c.on_facts(at(1_000), *v, fact(1)).unwrap();
        assert!(accepted.is_empty());
    }
    assert_eq!(c.poll_timeout(), Some(at(1_000) + PATIENCE));
    c.on_timeout(at(5_999));
    assert_eq!(c.widenings(), 0, "not before the patience");
    c.on_timeout(at(6_000));
    assert_eq!(c.widenings(), 1);
    // Another f + 1 of the stake (here: the rest), every source asked
    // again, the new ones to replay from the undecided fact's commit.
    let asked = subscriptions(&mut c);
    let replay = |v: &NodeId| (*v, (!vs[..5].contains(v)).then_some(3));
    assert_eq!(asked, vs.iter().map(replay).collect::<Vec<_>>());
    // The whole committee: nothing left to widen, no timer for it.
    assert_eq!(c.poll_timeout(), None);
    c.on_timeout(at(60_000));
    assert_eq!(c.widenings(), 1);
    // A newly subscribed validator's report of a later commit, with those
    // of the two live sources, decides it.
    let mut later = fact(2);
    later.index = 4;
    for (v, n) in [(vs[0], 0), (vs[1], 0), (vs[6], 1)] {
        let (accepted, _) = c.on_facts(at(6_500), v, later.clone()).unwrap();
        assert_eq!(accepted.len(), n);
    }
}

#[test]
fn facts_decided_in_time_never_widen_it() {
    let vs = validators(7);
    let mut c = core(&vs, 2, 1);
    c.start(Timestamp::ZERO);
    subscribed(&mut c);
    for (i, t) in [(0u64, 1_000u64), (1, 4_000), (2, 7_000), (3, 10_000)] {
        // Three of the five sources (f + 1 = 3) are enough.
        for v in &vs[2..5] {
            c.on_facts(at(t), *v, fact(i)).unwrap();
        }
        c.on_timeout(at(t + 4_999));
    }
    assert_eq!(c.widenings(), 0);
    assert!(subscribed(&mut c).is_empty());
}

#[test]
fn a_stuck_transaction_widens_the_window_as_it_fails_over() {
    let vs = validators(7);
    let mut c = core(&vs, 0, 1);
    c.start(Timestamp::ZERO);
    subscribed(&mut c);
    let pay = TxKind::Transfer {
        to: AccountId::from_bytes([7; 32]),
        amount: Amount::new(1),
    };
    c.submit(at(0), pay).unwrap();
    c.on_timeout(at(5_000));
    assert_eq!((c.failovers(), c.widenings()), (1, 1));
    assert_eq!(subscribed(&mut c), vs);
}

#[test]
fn a_validity_window_holds_f_plus_one_and_widens_after_its_own_patience() {
    let vs = validators(7); // f = 2: f + 1 = 3 validators
    let patience = Duration::from_secs(2);
    let mut c = windowed(&vs, 4, 1, FactWindow::Validity { patience });
    c.start(Timestamp::ZERO);
    assert_eq!(subscribed(&mut c), vec![vs[4], vs[5], vs[6]]);
    // Every source must report: two of three leave it pending.
    for v in &vs[4..6] {
        let (accepted, _) = c.on_facts(at(1_000), *v, fact(1)).unwrap();
        assert!(accepted.is_empty());
    }
    // Its own patience, not the transactions' (5 s).
    assert_eq!(c.poll_timeout(), Some(at(3_000)));
    c.on_timeout(at(3_000));
    assert_eq!(c.widenings(), 1);
    // Another f + 1, asked to replay from commit 3; the silent one and the
    // two that reported are only subscribed again.
    assert_eq!(
        subscriptions(&mut c),
        vec![
            (vs[4], None),
            (vs[5], None),
            (vs[6], None),
            (vs[0], Some(3)),
            (vs[1], Some(3)),
            (vs[2], Some(3)),
        ]
    );
    // A new source's replay decides the fact.
    let (accepted, _) = c.on_facts(at(3_200), vs[0], fact(1)).unwrap();
    assert_eq!(accepted.len(), 1);
}

#[test]
fn a_validity_window_decides_when_every_source_reports() {
    let vs = validators(7);
    let patience = Duration::from_secs(2);
    let mut c = windowed(&vs, 0, 1, FactWindow::Validity { patience });
    c.start(Timestamp::ZERO);
    subscribed(&mut c);
    for (i, t) in [(0u64, 1_000u64), (1, 4_000), (2, 7_000)] {
        let decided: usize = vs[..3]
            .iter()
            .map(|v| c.on_facts(at(t), *v, fact(i)).unwrap().0.len())
            .sum();
        assert_eq!(decided, 1);
        c.on_timeout(at(t + 1_999));
    }
    assert_eq!(c.widenings(), 0);
    assert!(subscribed(&mut c).is_empty());
}

/// Whom replays were asked of since the last call.
fn replays(c: &mut LightCore) -> Vec<NodeId> {
    replays_from(c).into_iter().map(|(v, _)| v).collect()
}

/// Whom replays were asked of since the last call, and from which commit.
fn replays_from(c: &mut LightCore) -> Vec<(NodeId, u64)> {
    std::iter::from_fn(|| c.poll_transmit())
        .filter_map(|t| match (t.to, t.msg) {
            (Destination::To(v), NodeMessage::Gateway(GatewayRequest::Replay { from })) => {
                Some((v, from))
            }
            _ => None,
        })
        .collect()
}

/// A started light node of `vs` taking certified facts from two sources
/// (validators 4 and 5) with a 3 s patience, its subscriptions drained.
fn certified_core(vs: &[NodeId]) -> LightCore {
    use idlegrid_node::light::FactDelivery;
    let mut c = LightCore::new(LightSetup {
        delivery: FactDelivery::Certified {
            sources: 2,
            patience: Duration::from_secs(3),
        },
        ..setup(vs, 4, 0, FactWindow::Quorum)
    });
    c.start(Timestamp::ZERO);
    std::iter::from_fn(|| c.poll_transmit()).for_each(drop);
    c
}

#[test]
fn an_expectation_asks_other_validators_to_replay_twice_as_many_each_time() {
    use idlegrid_node::light::Expectation;
    let vs = validators(16);
    let mut c = certified_core(&vs);
    let own = [vs[4], vs[5]];
    let (mut a, mut b) = (c.expect(at(0)), c.expect(at(1_000)));
    assert_eq!(
        c.expectation_due([&a, &b].into_iter(), false),
        Some(at(3_000))
    );
    c.check_expectations(at(2_999), [&mut a, &mut b].into_iter(), false);
    assert!(replays(&mut c).is_empty(), "not yet");
    // The first ask: four validators, neither of its certified sources.
    c.check_expectations(at(3_000), [&mut a, &mut b].into_iter(), false);
    let mut first = replays(&mut c);
    assert_eq!(first.len(), 4);
    assert!(first.iter().all(|v| !own.contains(v)));
    first.sort();
    first.dedup();
    assert_eq!(first.len(), 4, "distinct");
    // `b` is late a second later, but another ask went out less than a
    // patience ago: it waits another patience, one ask spent.
    c.check_expectations(at(4_000), [&mut a, &mut b].into_iter(), false);
    assert!(replays(&mut c).is_empty());
    assert_eq!(
        c.expectation_due([&a, &b].into_iter(), false),
        Some(at(6_000))
    );
    // The second ask of each: eight validators.
    c.check_expectations(at(6_000), [&mut a, &mut b].into_iter(), false);
    let second = replays(&mut c);
    assert_eq!(second.len(), 8);
    assert!(second.iter().all(|v| !own.contains(v)));
    assert_eq!(c.suspicions(), 2);
    // After its last ask an expectation is due no more.
    for k in 3..=u64::from(Expectation::MAX_ASKED) {
        c.check_expectations(at(3_000 * k), [&mut a].into_iter(), false);
        assert!(!replays(&mut c).is_empty(), "ask {k}");
    }
    assert_eq!(c.expectation_due([&a].into_iter(), false), None);
    c.check_expectations(at(60_000), [&mut a].into_iter(), false);
    assert!(replays(&mut c).is_empty());
    // With reported facts a window of f + 1 of the stake cannot withhold:
    // nothing to expect.
    let mut r = core(&vs, 4, 0);
    r.start(Timestamp::ZERO);
    let mut e = r.expect(at(0));
    assert_eq!(r.expectation_due([&e].into_iter(), false), None);
    r.check_expectations(at(60_000), [&mut e].into_iter(), false);
    assert!(replays(&mut r).is_empty());
}

/// Commit `index`'s facts, certified by validators 0–5 of `n` equal ones
/// (f + 1 of 16): one global leaf, `facts`.
fn certified(n: u64, index: u64, facts: Vec<Fact>) -> idlegrid_node::certified::ProvenFacts {
    use idlegrid_dag_ledger::consensus::Committee;
    use idlegrid_node::certified::{
        FactsCertificate, FactsVote, ProvenFacts, ProvenLeaf, leaf_digest,
    };
    use idlegrid_primitives::MerkleTree;
    let keys: Vec<Keypair> = (0..n)
        .map(|i| Keypair::from_seed(&Seed::from_u64(i)))
        .collect();
    let committee = Committee::equal(keys.iter().map(|k| k.node_id())).unwrap();
    let facts: std::sync::Arc<[Fact]> = facts.into();
    let tree = MerkleTree::new(vec![leaf_digest(None, &facts)]);
    let votes = keys[..6]
        .iter()
        .enumerate()
        .map(|(i, k)| {
            (
                i as u32,
                FactsVote::sign(k, &committee, index, tree.root()).signature,
            )
        })
        .collect();
    let cert = std::sync::Arc::new(FactsCertificate::new(index, tree.root(), votes));
    let proof = std::sync::Arc::new(tree.proof(0).unwrap());
    let leaves = vec![ProvenLeaf {
        owner: None,
        facts,
        proof,
    }];
    ProvenFacts { cert, leaves }
}

/// Batch `b` closes at commit 10 b, heard at `ms` from `from`.
fn closing_from() -> impl Fn(&mut LightCore, NodeId, u64, u64) {
    |c, from, b, ms| {
        let facts = vec![Fact::SealingClosed {
            batch: idlegrid_node::market::BatchNo(b),
        }];
        c.on_certified(at(ms), from, &certified(16, 10 * b, facts))
            .unwrap();
    }
}

/// Some later commit `index` heard at `ms` from source 4: the ledger moved
/// on.
fn later_commit(vs: &[NodeId]) -> impl Fn(&mut LightCore, u64, u64) + '_ {
    |c, index, ms| {
        let facts = vec![Fact::Applied {
            sender: AccountId::from_bytes([7; 32]),
            tx: Digest::of(Domain::new("test/tx"), &index),
        }];
        c.on_certified(at(ms), vs[4], &certified(16, index, facts))
            .unwrap();
    }
}

#[test]
fn a_sealing_node_expects_the_next_batch_closing_on_its_cadence() {
    let vs = validators(16);
    let mut c = certified_core(&vs);
    let (close_from, later) = (closing_from(), later_commit(&vs));
    let close = |c: &mut LightCore, b: u64, ms: u64| close_from(c, vs[4], b, ms);
    let none = std::iter::empty;
    close(&mut c, 1, 2_100);
    assert_eq!(c.expectation_due(none(), true), None, "no cadence yet");
    // Two consecutive closings 2 s apart: the next is due 2.5 s after,
    // once a later commit shows the ledger moved on.
    close(&mut c, 2, 4_100);
    assert_eq!(c.expectation_due(none(), true), None, "no commit since");
    c.check_expectations(at(7_000), std::iter::empty(), true);
    assert!(replays(&mut c).is_empty(), "a stall: nothing is missing");
    later(&mut c, 21, 4_200);
    assert_eq!(c.expectation_due(none(), true), Some(at(6_600)));
    assert_eq!(
        c.expectation_due(none(), false),
        None,
        "only while an order waits for a closing"
    );
    c.check_expectations(at(6_599), std::iter::empty(), true);
    assert!(replays(&mut c).is_empty(), "not yet");
    c.check_expectations(at(6_600), std::iter::empty(), true);
    let asked = replays_from(&mut c);
    assert_eq!(asked.len(), 4, "the closing did not come");
    assert!(
        asked.iter().all(|(_, from)| *from == 21),
        "only the commits after the last closing's (20) can hold the next: {asked:?}"
    );
    assert_eq!(c.closing_asks(), 1);
    // Heard (late, from a validator asked for a replay): the cadence is the
    // longest recent gap, never shorter than what was seen; the margin
    // stays a quarter (the ask was not spurious).
    close_from(&mut c, asked[0].0, 3, 7_000);
    later(&mut c, 31, 7_000);
    assert_eq!(c.expectation_due(none(), true), Some(at(10_625)));
    // Several closings at once (after a stall) do not shorten it.
    close(&mut c, 4, 7_000);
    later(&mut c, 41, 7_000);
    assert_eq!(c.expectation_due(none(), true), Some(at(10_625)));
    // Late with another expectation, whose fact may be older than the last
    // closing: the replay reaches back as far as validators keep.
    let mut other = c.expect(at(7_625));
    c.check_expectations(at(10_625), [&mut other].into_iter(), true);
    let asked = replays_from(&mut c);
    assert_eq!(asked.len(), 4);
    assert!(asked.iter().all(|(_, from)| *from == 0), "{asked:?}");
    assert_eq!(
        (c.closing_asks(), c.suspicions(), c.replays_asked()),
        (2, 2, 8)
    );
}

#[test]
fn an_ask_a_late_source_shows_spurious_widens_the_closing_margin_until_closings_come_on_time() {
    let vs = validators(16);
    let mut c = certified_core(&vs);
    let (close_from, later) = (closing_from(), later_commit(&vs));
    let close = |c: &mut LightCore, b: u64, ms: u64| close_from(c, vs[4], b, ms);
    let due = |c: &LightCore| c.expectation_due(std::iter::empty(), true);
    // A 1 s cadence, a quarter of it as the margin.
    close(&mut c, 1, 1_000);
    close(&mut c, 2, 2_000);
    later(&mut c, 21, 2_100);
    assert_eq!(due(&c), Some(at(3_250)));
    c.check_expectations(at(3_250), std::iter::empty(), true);
    assert_eq!(replays(&mut c).len(), 4);
    // The source sends the closing after all: late, not withholding. The
    // ask was spurious; the margin doubles to half the cadence (now the
    // 1.4 s gap just seen).
    close(&mut c, 3, 3_400);
    assert_eq!((c.closing_asks(), c.closing_asks_spurious()), (1, 1));
    later(&mut c, 31, 3_500);
    assert_eq!(due(&c), Some(at(5_500)));
    // Closings on time: once the 1.4 s gap is forgotten the cadence is
    // 1 s again, and after eight in a row without an ask the margin is a
    // quarter again.
    for b in 4..=10 {
        close(&mut c, b, 400 + 1_000 * b);
    }
    later(&mut c, 101, 10_500);
    assert_eq!(due(&c), Some(at(11_900)), "seven on time: half a cadence");
    close(&mut c, 11, 11_400);
    later(&mut c, 111, 11_500);
    assert_eq!(due(&c), Some(at(12_650)), "eight on time: a quarter");
    assert!(replays(&mut c).is_empty());
    assert_eq!((c.closing_asks(), c.closing_asks_spurious()), (1, 1));
    // A source that skips the closing asked for and sends the next one
    // did not show the ask spurious: the margin stays a quarter.
    c.check_expectations(at(12_650), std::iter::empty(), true);
    assert_eq!(replays(&mut c).len(), 4);
    close(&mut c, 13, 13_400);
    assert_eq!((c.closing_asks(), c.closing_asks_spurious()), (2, 1));
    later(&mut c, 131, 13_500);
    assert_eq!(due(&c), Some(at(14_650)));
}
