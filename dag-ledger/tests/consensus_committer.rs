//! The commit rule on hand-built DAGs: every branch of the decision.
//!
//! Committee of 4 (quorum 3), round-robin leaders: the leader of round `r`
//! is `A(r mod 4)`.

use std::sync::Arc;

use idlegrid_dag_ledger::consensus::{
    Committer, DagBuilder, DecisionKind, LeaderSlot, LeaderStatus, RoundRobinSchedule,
};
use idlegrid_primitives::Round;

fn committer(dag: &DagBuilder) -> Committer {
    Committer::new(
        Arc::new(dag.committee().clone()),
        Arc::new(RoundRobinSchedule),
        1,
    )
}

fn slot(c: &Committer, round: u64) -> LeaderSlot {
    c.slots(Round::new(round))[0]
}

/// Summarizes decisions as `(round, "C"/"S"/"U", direct?)`.
fn summary(statuses: &[LeaderStatus]) -> Vec<(u64, &'static str, bool)> {
    statuses
        .iter()
        .map(|s| match s {
            LeaderStatus::Commit { slot, kind, .. } => {
                (slot.round.get(), "C", *kind == DecisionKind::Direct)
            }
            LeaderStatus::Skip { slot, kind } => {
                (slot.round.get(), "S", *kind == DecisionKind::Direct)
            }
            LeaderStatus::Undecided(slot) => (slot.round.get(), "U", false),
        })
        .collect()
}

#[test]
fn direct_commit() {
    let mut dag = DagBuilder::new(4);
    dag.layers(1..=3).build();
    let c = committer(&dag);
    let s = c.try_direct_decide(slot(&c, 1), dag.store());
    match s {
        LeaderStatus::Commit { block, kind, .. } => {
            assert_eq!(kind, DecisionKind::Direct);
            assert_eq!(block.reference(), dag.block(1, 1).unwrap().reference());
        }
        other => panic!("{other:?}"),
    }
    // Only round 1 can be decided with rounds up to 3.
    assert_eq!(summary(&c.try_decide(dag.store(), None)), [(1, "C", true)]);
}

#[test]
fn direct_skip() {
    let mut dag = DagBuilder::new(4);
    dag.layer(1).build();
    // Nobody but the leader itself links to A1's round-1 block.
    dag.layer(2).skip_parents_from([1]).build();
    dag.layer(3).build();
    let c = committer(&dag);
    assert_eq!(
        c.try_direct_decide(slot(&c, 1), dag.store()),
        LeaderStatus::Skip {
            slot: slot(&c, 1),
            kind: DecisionKind::Direct
        }
    );
}

#[test]
fn missing_leader_is_skipped() {
    let mut dag = DagBuilder::new(4);
    // The round-1 leader A1 never proposes.
    dag.layer(1).authors([0, 2, 3]).build();
    let c = committer(&dag);
    // Without round-2 blocks the slot is undecided…
    assert!(!c.try_direct_decide(slot(&c, 1), dag.store()).is_decided());
    dag.layer(2).authors([0, 2, 3]).build();
    dag.layer(3).authors([0, 2, 3]).build();
    let c = committer(&dag);
    // …then a quorum of round-2 blocks blames it.
    assert_eq!(summary(&c.try_decide(dag.store(), None)), [(1, "S", true)]);
}

/// Round 2: A0, A1, A2 vote for the round-1 leader A1, A3 does not.
/// Round 3: only `cert_author` builds a certificate (it links all round-2
/// blocks); the others skip one voter so they see only two votes.
fn one_certificate(dag: &mut DagBuilder, cert_author: u32) {
    dag.layer(1).build();
    dag.layer(2).authors([0, 1, 2]).build();
    dag.layer(2).authors([3]).skip_parents_from([1]).build();
    for a in 0..4u32 {
        if a == cert_author {
            dag.layer(3).authors([a]).build();
        } else {
            // Skip a voter other than yourself.
            let skip = if a == 0 { 1 } else { 0 };
            let skip = if skip == cert_author { 2 } else { skip };
            let skip = if skip == a { (a + 1) % 3 } else { skip };
            dag.layer(3).authors([a]).skip_parents_from([skip]).build();
        }
    }
}

#[test]
fn indirect_commit() {
    let mut dag = DagBuilder::new(4);
    one_certificate(&mut dag, 0);
    let c = committer(&dag);
    // One certificate: neither direct commit nor direct skip.
    assert!(!c.try_direct_decide(slot(&c, 1), dag.store()).is_decided());
    // Round 4 leader A0 links its own certificate; rounds 5-6 commit it.
    dag.layers(4..=6).build();
    let c = committer(&dag);
    let d = summary(&c.try_decide(dag.store(), None));
    assert_eq!(d[0], (1, "C", false), "{d:?}");
    // The anchor itself is a direct commit.
    assert!(matches!(
        c.try_direct_decide(slot(&c, 4), dag.store()),
        LeaderStatus::Commit {
            kind: DecisionKind::Direct,
            ..
        }
    ));
}

#[test]
fn indirect_skip() {
    let mut dag = DagBuilder::new(4);
    one_certificate(&mut dag, 3);
    let c = committer(&dag);
    assert!(!c.try_direct_decide(slot(&c, 1), dag.store()).is_decided());
    // Round 4: nobody but A3 links A3's round-3 certificate, so the round-4
    // anchor (A0) does not see it.
    dag.layer(4).skip_parents_from([3]).build();
    dag.layers(5..=6).build();
    let c = committer(&dag);
    let d = summary(&c.try_decide(dag.store(), None));
    assert_eq!(d[0], (1, "S", false), "{d:?}");
    assert!(d.contains(&(4, "C", true)), "{d:?}");
}

#[test]
fn undecided_anchor_blocks_the_prefix() {
    let mut dag = DagBuilder::new(4);
    one_certificate(&mut dag, 0);
    // Round 4 exists but its leader A0 gets no round-5/6 decision yet.
    dag.layer(4).build();
    dag.layer(5).authors([0, 1]).build();
    let c = committer(&dag);
    // Nothing can be output: slot 1 waits for an anchor.
    assert!(c.try_decide(dag.store(), None).is_empty());
}

#[test]
fn equivocating_leader_commits_at_most_one_variant() {
    let mut dag = DagBuilder::new(4);
    dag.layer(1).authors([0, 2, 3]).build();
    dag.layer(1).authors([1]).equivocate().build();
    dag.layers(2..=3).build();
    let c = committer(&dag);
    match c.try_direct_decide(slot(&c, 1), dag.store()) {
        LeaderStatus::Commit { block, .. } => {
            // Honest blocks link the first variant only.
            assert_eq!(block.reference(), dag.block(1, 1).unwrap().reference());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        dag.store().slot(Round::new(1), slot(&c, 1).authority).len(),
        2
    );
}

#[test]
fn several_leaders_per_round() {
    let mut dag = DagBuilder::new(4);
    dag.layers(1..=4).build();
    let c = Committer::new(
        Arc::new(dag.committee().clone()),
        Arc::new(RoundRobinSchedule),
        2,
    );
    let d = summary(&c.try_decide(dag.store(), None));
    assert_eq!(
        d,
        [
            (1, "C", true),
            (1, "C", true),
            (2, "C", true),
            (2, "C", true)
        ]
    );
}
