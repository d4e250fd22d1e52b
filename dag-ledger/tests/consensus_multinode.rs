//! Multi-node runs of the consensus harness: safety over seeds with
//! Byzantine validators, liveness after a partition heals, commit latency.

use idlegrid_dag_ledger::consensus::byzantine::ByzantineBehavior;
use idlegrid_dag_ledger::consensus::harness::{Harness, HarnessConfig};
use idlegrid_primitives::{Duration, Round, Timestamp};

fn byzantine(kind: usize) -> ByzantineBehavior {
    match kind % 3 {
        0 => ByzantineBehavior::Equivocate,
        1 => ByzantineBehavior::Withhold { recipients: 1 },
        _ => ByzantineBehavior::TooFewParents,
    }
}

/// Runs `n` validators with `faulty` Byzantine ones for `ms` of virtual time.
fn run(n: usize, faulty: usize, seed: u64, ms: u64) -> Harness {
    let mut cfg = HarnessConfig::new(n, seed);
    for k in 0..faulty {
        // Spread faulty validators over the committee.
        cfg = cfg.with_behavior((k * 3 + seed as usize) % n, byzantine(k + seed as usize));
    }
    let mut h = Harness::new(cfg);
    h.submit_load(20);
    h.run_until(Timestamp::from_millis(ms));
    h
}

#[test]
fn honest_committee_commits_and_agrees() {
    let h = run(4, 0, 1, 1_000);
    h.check_safety().unwrap();
    assert!(h.min_honest_commits() > 10, "{}", h.min_honest_commits());
    // Every submitted transaction is committed exactly once.
    let txs: usize = h.commits(0).iter().map(|s| s.transactions.len()).sum();
    assert_eq!(txs, 4 * 20);
}

#[test]
fn safety_over_seeds_with_byzantine_validators() {
    for (n, f) in [(4usize, 1usize), (7, 2), (10, 3)] {
        for seed in 0..6 {
            let h = run(n, f, seed, 1_500);
            if let Err(e) = h.check_safety() {
                panic!("n={n} f={f} seed={seed}: {e}");
            }
            assert!(
                h.min_honest_commits() > 3,
                "n={n} f={f} seed={seed}: only {} commits",
                h.min_honest_commits()
            );
        }
    }
}

#[test]
fn byzantine_faults_are_detected() {
    let cfg = HarnessConfig::new(4, 9).with_behavior(0, ByzantineBehavior::Equivocate);
    let mut h = Harness::new(cfg);
    h.run_until(Timestamp::from_millis(500));
    h.check_safety().unwrap();
    assert!(h.evidence_reported() > 0);
    // Whoever sees both variants reports it (a validator that only ever
    // sees one variant has nothing to report).
    let eq = h.validator(0).authority();
    assert!(
        h.honest()
            .iter()
            .any(|&i| h.validator(i).equivocators().contains(&eq))
    );
    // The equivocator's own (honest) machine never saw a second version.
    assert!(h.validator(0).equivocators().is_empty());

    let cfg = HarnessConfig::new(4, 9).with_behavior(1, ByzantineBehavior::TooFewParents);
    let mut h = Harness::new(cfg);
    h.run_until(Timestamp::from_millis(2_000));
    h.check_safety().unwrap();
    assert!(h.invalid_messages() > 0);
    assert!(h.min_honest_commits() > 5);
}

#[test]
fn synchronous_commit_latency_is_three_message_delays() {
    let delta = Duration::from_millis(10);
    let cfg = HarnessConfig::new(4, 3).with_delays(delta, delta);
    let mut h = Harness::new(cfg);
    h.run_until(Timestamp::from_millis(400));
    h.check_safety().unwrap();
    for i in 0..4 {
        let lat = h.commit_latencies(i);
        assert!(lat.len() > 20, "{}", lat.len());
        // Every leader is committed exactly 3 message delays after it was
        // proposed (direct commit, no timeouts in the synchronous case).
        assert!(lat.iter().all(|l| *l == delta.saturating_mul(3)), "{lat:?}");
    }
}

#[test]
fn commits_resume_after_partition_heals() {
    // 2/2 split: no side has a quorum, so nobody commits; after healing,
    // commits resume and histories agree.
    let mut h = Harness::new(HarnessConfig::new(4, 5));
    h.submit_load(10);
    h.run_until(Timestamp::from_millis(300));
    let before = h.min_honest_commits();
    h.partition(vec![0, 0, 1, 1]);
    h.run_for(Duration::from_millis(2_000));
    let during: Vec<usize> = (0..4).map(|i| h.commits(i).len()).collect();
    h.run_for(Duration::ZERO);
    assert!(
        during.iter().all(|&c| c <= before + 2),
        "{before} {during:?}"
    );
    h.heal();
    h.run_for(Duration::from_millis(3_000));
    h.check_safety().unwrap();
    assert!(h.min_honest_commits() > during.iter().max().unwrap() + 10);
}

#[test]
fn isolated_validator_catches_up_after_heal() {
    let mut h = Harness::new(HarnessConfig::new(4, 6));
    h.submit_load(10);
    h.run_until(Timestamp::from_millis(200));
    h.partition(vec![0, 0, 0, 1]);
    h.run_for(Duration::from_millis(1_500));
    let lagging = h.commits(3).len();
    assert!(
        h.commits(0).len() > lagging + 3,
        "{} {lagging}",
        h.commits(0).len()
    );
    h.heal();
    h.run_for(Duration::from_millis(3_000));
    h.check_safety().unwrap();
    assert!(h.commits(3).len() + 3 >= h.commits(0).len());
    // Memory stays bounded by the gc window.
    let s = h.stats(3);
    assert!(s.stored_blocks <= 4 * 260, "{s:?}");
}

#[test]
fn a_withholder_that_sends_to_nobody_is_never_seen() {
    let cfg =
        HarnessConfig::new(4, 2).with_behavior(3, ByzantineBehavior::Withhold { recipients: 0 });
    let mut h = Harness::new(cfg);
    h.submit_load(5);
    h.run_until(Timestamp::from_millis(3_000));
    h.check_safety().unwrap();
    assert!(h.min_honest_commits() > 3, "{}", h.min_honest_commits());
    let withholder = h.validator(3).authority();
    // It keeps proposing (its honest machine runs) but no honest validator
    // ever stores one of its blocks: none was sent, none was served.
    assert!(h.stats(3).proposed_round.get() > 5);
    for i in h.honest() {
        let seen = (1..=h.validator(i).store().highest_round().get()).any(|r| {
            !h.validator(i)
                .store()
                .slot(Round::new(r), withholder)
                .is_empty()
        });
        assert!(!seen, "validator {i} holds a block of the withholder");
    }
}

#[test]
fn several_leaders_per_round_with_signatures() {
    let consensus = idlegrid_dag_ledger::consensus::ConsensusConfig::default()
        .with_leaders_per_round(2)
        .with_leader_timeout(Duration::from_millis(100));
    let cfg = HarnessConfig::new(7, 11)
        .with_consensus(consensus)
        .with_behavior(2, ByzantineBehavior::Equivocate)
        .with_behavior(5, ByzantineBehavior::Withhold { recipients: 2 });
    let mut h = Harness::new(cfg);
    h.submit_load(10);
    h.run_until(Timestamp::from_millis(1_500));
    h.check_safety().unwrap();
    assert!(h.min_honest_commits() > 10);
}

/// Long sweep: `cargo test -p idlegrid-dag-ledger --test consensus_multinode -- --ignored`.
#[test]
#[ignore]
fn safety_sweep_many_seeds() {
    for (n, f) in [(4usize, 1usize), (7, 2), (10, 3)] {
        for seed in 0..200 {
            let h = run(n, f, seed, 3_000);
            if let Err(e) = h.check_safety() {
                panic!("n={n} f={f} seed={seed}: {e}");
            }
            assert!(h.min_honest_commits() > 5, "n={n} f={f} seed={seed}");
        }
    }
}
