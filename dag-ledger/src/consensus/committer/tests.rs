//! The counting committer against the straightforward one
//! ([`OracleCommitter`]) on random DAGs fed block by block (out of causal
//! order, some blocks never delivered), with garbage collection; and the
//! bound on the counts.

use std::sync::Arc;

use idlegrid_primitives::Round;
use proptest::prelude::*;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use super::oracle::OracleCommitter;
use super::{Committer, LeaderStatus};
use crate::consensus::block::VerifiedBlock;
use crate::consensus::dag::{DagBuilder, DagStore};
use crate::consensus::leader_schedule::{
    LeaderSchedule, RoundRobinSchedule, StakeWeightedSchedule,
};

/// A random DAG: authors miss rounds, drop up to half of the previous round
/// from their parents (so votes and certificates are often short of a
/// quorum), and sometimes equivocate.
fn random_dag(n: usize, rounds: u64, rng: &mut ChaCha8Rng) -> DagBuilder {
    let mut dag = DagBuilder::new(n);
    for r in 1..=rounds {
        for a in 0..n as u32 {
            if rng.next_u32() % 8 == 0 {
                continue;
            }
            let k = rng.next_u32() as usize % (n / 2 + 1);
            let skips: Vec<u32> = (0..k)
                .map(|_| rng.next_u32() % n as u32)
                .filter(|s| *s != a)
                .collect();
            let layer = dag.layer(r).authors([a]).skip_parents_from(skips);
            if rng.next_u32() % 16 == 0 {
                layer.equivocate().build();
            } else {
                layer.build();
            }
        }
    }
    dag
}

/// The DAG's non-genesis blocks in a random order that is round order up
/// to a jitter of `jitter` rounds (so certificates may arrive before some
/// of their votes), without one block in `lost` (0: none lost).
fn arrival_order(
    dag: &DagBuilder,
    jitter: u64,
    lost: u64,
    rng: &mut ChaCha8Rng,
) -> Vec<VerifiedBlock> {
    let store = dag.store();
    let mut keyed: Vec<(u64, u64, VerifiedBlock)> = (1..=store.highest_round().get())
        .flat_map(|r| {
            store
                .round_blocks(Round::new(r))
                .cloned()
                .collect::<Vec<_>>()
        })
        .map(|b| {
            let key = b.round().get() + rng.next_u64() % (jitter + 1);
            (key, rng.next_u64(), b)
        })
        .collect();
    keyed.sort_by_key(|(k, tie, _)| (*k, *tie));
    keyed
        .into_iter()
        .filter(|(_, tie, _)| lost == 0 || tie % lost != 0)
        .map(|(_, _, b)| b)
        .collect()
}

fn genesis_store(dag: &DagBuilder) -> DagStore {
    let mut store = DagStore::new(dag.committee().size());
    for b in dag.store().round_blocks(Round::ZERO) {
        store.insert(b.clone());
    }
    store
}

fn schedule(round_robin: bool) -> Arc<dyn LeaderSchedule> {
    if round_robin {
        Arc::new(RoundRobinSchedule)
    } else {
        Arc::new(StakeWeightedSchedule)
    }
}

/// Compares every public decision of the two committers on `store`.
fn assert_same(
    fast: &Committer,
    oracle: &OracleCommitter,
    store: &DagStore,
    after: Option<(Round, u32)>,
) -> Result<Vec<LeaderStatus>, TestCaseError> {
    let decided = fast.try_decide(store, after);
    prop_assert_eq!(&decided, &oracle.try_decide(store, after));
    prop_assert_eq!(fast.try_decide(store, None), oracle.try_decide(store, None));
    let top = store.highest_round().get();
    for r in store.gc_round().get().max(1)..=top {
        let mut later = Vec::new();
        for slot in fast.slots(Round::new(r)) {
            let direct = fast.try_direct_decide(slot, store);
            prop_assert_eq!(&direct, &oracle.try_direct_decide(slot, store));
            later.push(direct);
        }
        // A slot off the schedule (any authority) is decided by scanning.
        for a in 0..store.committee_size() as u32 {
            let slot = super::LeaderSlot {
                round: Round::new(r),
                offset: 0,
                authority: crate::consensus::committee::AuthorityIndex::new(a),
            };
            prop_assert_eq!(
                fast.try_direct_decide(slot, store),
                oracle.try_direct_decide(slot, store)
            );
        }
        // Indirect decisions against the direct statuses of this round's
        // slots and of the rounds above.
        for slot in fast.slots(Round::new(r.saturating_sub(3).max(1))) {
            prop_assert_eq!(
                fast.try_indirect_decide(slot, later.iter(), store),
                oracle.try_indirect_decide(slot, later.iter(), store)
            );
        }
    }
    Ok(decided)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Fed block by block (as a validator is, but also out of causal order
    /// and with blocks lost), the counting committer makes exactly the
    /// oracle's decisions, through garbage collection.
    #[test]
    fn counting_committer_matches_oracle(
        n in 4usize..11,
        rounds in 3u64..14,
        leaders in 1u32..4,
        round_robin in any::<bool>(),
        jitter in 0u64..3,
        lost in prop::sample::select(vec![0u64, 0, 7, 20]),
        gc_every in 0u64..6,
        seed in any::<u64>(),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let dag = random_dag(n, rounds, &mut rng);
        let committee = Arc::new(dag.committee().clone());
        let fast = Committer::new(committee.clone(), schedule(round_robin), leaders);
        let oracle = OracleCommitter::new(committee, schedule(round_robin), leaders);
        let mut store = genesis_store(&dag);
        let mut after = None;
        for (i, b) in arrival_order(&dag, jitter, lost, &mut rng).into_iter().enumerate() {
            store.insert(b);
            for status in assert_same(&fast, &oracle, &store, after)? {
                after = Some(status.slot().position());
            }
            // Collect a few rounds below the top now and then, as the
            // validator does below its last commit.
            if gc_every > 0 && i as u64 % (gc_every * n as u64) == 0 {
                let gc = store.highest_round().get().saturating_sub(4);
                store.gc(Round::new(gc));
                assert_same(&fast, &oracle, &store, after)?;
                let tally = fast.tally.lock().unwrap();
                prop_assert!(tally
                    .lowest_round()
                    .is_none_or(|r| r.get() + 1 >= store.gc_round().get()));
            }
        }
        // A clone starts with empty counts and decides the same; handed
        // another store (a copy of the DAG as built, every block present),
        // the committer starts over and decides as the oracle does there.
        let clone = fast.clone();
        prop_assert_eq!(clone.try_decide(&store, None), oracle.try_decide(&store, None));
        let full = dag.store();
        prop_assert_eq!(fast.try_decide(full, None), oracle.try_decide(full, None));
        prop_assert_eq!(fast.try_decide(&store, None), oracle.try_decide(&store, None));
    }
}

/// Over a long run with the store collected below its last rounds, the
/// counts cover the live rounds only.
#[test]
fn tally_is_bounded_by_gc() {
    let n = 7;
    let keep = 5;
    let mut dag = DagBuilder::new(n);
    dag.layers(1..=60).build();
    let committee = Arc::new(dag.committee().clone());
    let fast = Committer::new(committee, Arc::new(StakeWeightedSchedule), 2);
    let mut store = genesis_store(&dag);
    let mut after = None;
    let mut peak = 0;
    for r in 1..=60u64 {
        for b in dag.store().round_blocks(Round::new(r)) {
            store.insert(b.clone());
            for status in fast.try_decide(&store, after) {
                assert!(matches!(status, LeaderStatus::Commit { .. }));
                after = Some(status.slot().position());
            }
        }
        store.gc(Round::new(r.saturating_sub(keep)));
        fast.try_decide(&store, after);
        let tally = fast.tally.lock().unwrap();
        assert!(tally.lowest_round().is_none_or(|l| l >= store.gc_round()));
        // Per live round (`keep + 1` of them): the support of its `n`
        // blocks and at most 2 certified leaders (nothing blamed, no
        // orphan in a fully connected DAG delivered in order).
        let bound = (keep as usize + 1) * (n + 2);
        assert!(tally.len() <= bound, "{} > {bound}", tally.len());
        // The vote table keeps only live rounds (here `keep + 1`, fewer
        // than its window).
        assert!(tally.vote_rounds() <= keep as usize + 1);
        peak = peak.max(tally.len());
    }
    assert_eq!(after.map(|(r, _)| r), Some(Round::new(58)));
    assert!(peak > 0);
}

/// Without garbage collection the tally's vote table still keeps only its
/// window of recent rounds, and decides as the oracle does.
#[test]
fn vote_table_keeps_a_window_of_rounds() {
    let n = 4;
    let mut dag = DagBuilder::new(n);
    dag.layers(1..=30).build();
    let committee = Arc::new(dag.committee().clone());
    let fast = Committer::new(committee.clone(), Arc::new(StakeWeightedSchedule), 1);
    let oracle = OracleCommitter::new(committee, Arc::new(StakeWeightedSchedule), 1);
    let mut store = genesis_store(&dag);
    for r in 1..=30u64 {
        for b in dag.store().round_blocks(Round::new(r)) {
            store.insert(b.clone());
        }
        assert_eq!(
            fast.try_decide(&store, None),
            oracle.try_decide(&store, None)
        );
        let rounds = fast.tally.lock().unwrap().vote_rounds() as u64;
        assert!(
            rounds <= super::tally::VOTE_WINDOW + 1,
            "{rounds} rounds at {r}"
        );
    }
    let rounds = fast.tally.lock().unwrap().vote_rounds() as u64;
    assert_eq!(rounds, super::tally::VOTE_WINDOW + 1);
}

/// The random DAGs above reach every branch of the rule (else the
/// differential test would prove little).
#[test]
fn random_dags_cover_every_decision_kind() {
    use super::DecisionKind::{Direct, Indirect};
    let mut seen = [false; 5];
    for seed in 0..64u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let dag = random_dag(4 + seed as usize % 4, 12, &mut rng);
        let fast = Committer::new(
            Arc::new(dag.committee().clone()),
            schedule(seed % 2 == 0),
            1 + seed as u32 % 2,
        );
        let store = dag.store();
        let mut later: Vec<LeaderStatus> = Vec::new();
        for r in (1..=store.highest_round().get()).rev() {
            for slot in fast.slots(Round::new(r)).into_iter().rev() {
                let mut s = fast.try_direct_decide(slot, store);
                if !s.is_decided() {
                    s = fast.try_indirect_decide(slot, later.iter().rev(), store);
                }
                let k = match &s {
                    LeaderStatus::Commit { kind: Direct, .. } => 0,
                    LeaderStatus::Commit { kind: Indirect, .. } => 1,
                    LeaderStatus::Skip { kind: Direct, .. } => 2,
                    LeaderStatus::Skip { kind: Indirect, .. } => 3,
                    LeaderStatus::Undecided(_) => 4,
                };
                seen[k] = true;
                later.push(s);
            }
        }
    }
    assert_eq!(
        seen, [true; 5],
        "direct/indirect commit, direct/indirect skip, undecided"
    );
}

/// The counts keep the committer (and so the validator) `Send + Sync + Clone`.
#[test]
fn committer_stays_send_sync_clone() {
    fn check<T: Send + Sync + Clone + std::fmt::Debug>() {}
    check::<Committer>();
    fn check_validator<T: Send + Sync>() {}
    check_validator::<crate::consensus::Validator>();
}
