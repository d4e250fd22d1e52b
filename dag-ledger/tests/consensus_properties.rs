//! Property tests: linearization laws and evidence validity.

use std::sync::Arc;

use idlegrid_dag_ledger::consensus::*;
use idlegrid_primitives::{Keypair, Round, Timestamp};
use proptest::prelude::*;

/// A random DAG: per round, a random subset of authors proposes, each
/// skipping a random subset of previous-round authors.
fn random_dag(n: usize, rounds: u64, choices: &[u8]) -> DagBuilder {
    let mut dag = DagBuilder::new(n);
    let f = (n - 1) / 3;
    let mut k = 0usize;
    let mut next = || {
        k += 1;
        choices[k % choices.len()]
    };
    for r in 1..=rounds {
        for a in 0..n as u32 {
            // About one author in eight misses a round.
            if next() % 8 == 0 {
                continue;
            }
            let skips: Vec<u32> = (0..f)
                .map(|_| u32::from(next()) % n as u32)
                .filter(|s| *s != a)
                .collect();
            dag.layer(r).authors([a]).skip_parents_from(skips).build();
        }
    }
    dag
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn linearization_outputs_each_tx_once_in_causal_order(
        n in 4usize..8,
        rounds in 3u64..12,
        choices in proptest::collection::vec(any::<u8>(), 16..64),
        leaders in 1u32..3,
    ) {
        let dag = random_dag(n, rounds, &choices);
        let committer = Committer::new(
            Arc::new(dag.committee().clone()),
            Arc::new(StakeWeightedSchedule),
            leaders,
        );
        let mut lin = Linearizer::new(50);
        // Two linearizers sharing a memo, and one sharing it that skipped
        // the first commit (another history: it must never hit).
        let memo = HistoryMemo::shared();
        let mut shared = [0, 1].map(|_| Linearizer::new(50).with_memo(memo.clone()));
        let (mut other, mut other_plain) = (Linearizer::new(50).with_memo(memo.clone()), Linearizer::new(50));
        let mut subs = Vec::new();
        let decided = committer.try_decide(dag.store(), None);
        for (i, status) in decided.into_iter().enumerate() {
            if let LeaderStatus::Commit { block, .. } = status {
                let c = dag.committee();
                let sub = Arc::unwrap_or_clone(lin.linearize(dag.store(), &block, c));
                for l in &mut shared {
                    prop_assert_eq!(&*l.linearize(dag.store(), &block, c), &sub);
                }
                if i > 0 {
                    let alone = other_plain.linearize(dag.store(), &block, c);
                    prop_assert_eq!(other.linearize(dag.store(), &block, c), alone);
                }
                subs.push(sub);
            }
        }
        // The first of the pair computed each commit, the second took it.
        let (hits, computed) = memo.counts();
        prop_assert!(hits >= subs.len() as u64 && computed >= subs.len() as u64);
        prop_assert!(check_commit_sequence(&subs).is_ok());
        let order: Vec<BlockRef> = subs.iter().flat_map(|s| s.blocks.iter().copied()).collect();
        prop_assert!(check_causal_order(&order, dag.store()).is_ok());
        // Every committed leader closes its sub-DAG and is the last block.
        for s in &subs {
            prop_assert_eq!(s.blocks.last(), Some(&s.leader));
        }
    }

    #[test]
    fn evidence_verifies_iff_two_conflicting_signed_blocks(
        same_author in any::<bool>(),
        same_round in any::<bool>(),
        same_content in any::<bool>(),
        good_sig_a in any::<bool>(),
        good_sig_b in any::<bool>(),
        swap in any::<bool>(),
    ) {
        let dag = DagBuilder::new(4);
        let keys = dag.keys();
        let committee = dag.committee();
        let mk = |author: u32, round: u64, ts: u64, good: bool| {
            let signer: &Keypair = if good { &keys[author as usize] } else { &keys[3] };
            Block::new_signed(
                signer,
                AuthorityIndex::new(author),
                Round::new(round),
                Timestamp::from_micros(ts),
                vec![],
                vec![],
            )
            .signed_header()
        };
        // Author 3 signing its own block is "good": use authors 0..3.
        let a = mk(0, 5, 1, good_sig_a);
        let b = mk(
            if same_author { 0 } else { 1 },
            if same_round { 5 } else { 6 },
            if same_content { 1 } else { 2 },
            good_sig_b,
        );
        let ev = if swap { Evidence::new(b, a) } else { Evidence::new(a, b) };
        let expect = same_author && same_round && !same_content && good_sig_a && good_sig_b;
        let got = ev.verify(committee);
        prop_assert_eq!(got.is_ok(), expect, "{:?}", got);
        if expect {
            prop_assert_eq!(got.unwrap(), committee.node(AuthorityIndex::new(0)).unwrap());
        }
    }
}
