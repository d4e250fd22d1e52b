//! Property tests for every law of the reputation model.

use idlegrid_primitives::{Amount, Digest, Domain, Epoch, Keypair, NodeId, Seed};
use idlegrid_reputation::strategies as st;
use idlegrid_reputation::*;
use proptest::prelude::*;

const JOB: Domain = Domain::new("idlegrid/test/job");

/// Cheap distinct ids (not keys: these tests apply unsigned feedback).
fn ids(n: usize) -> Vec<NodeId> {
    (0..n)
        .map(|i| NodeId::from_bytes(Digest::hash(JOB, &(i as u64).to_le_bytes()).to_bytes()))
        .collect()
}

fn book_with(ids: &[NodeId]) -> ReputationBook {
    let mut b = ReputationBook::new(BookParams::default(), Epoch::ZERO).unwrap();
    for (i, id) in ids.iter().enumerate() {
        b.register(*id, Amount::new(if i < 2 { 100 } else { 0 }))
            .unwrap();
    }
    b
}

/// A history: feedback templates plus "advance by k epochs" steps.
#[derive(Debug, Clone)]
enum Step {
    Fb(usize, usize, Outcome, u128),
    Advance(u64),
}

fn step(n: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0..n, 1..n, st::outcome(), 1u128..1_000_000)
            .prop_map(move |(r, off, o, v)| Step::Fb(r, (r + off) % n, o, v)),
        1 => (1u64..20).prop_map(Step::Advance),
    ]
}

fn run(ids: &[NodeId], steps: &[Step]) -> ReputationBook {
    let mut b = book_with(ids);
    for (k, s) in steps.iter().enumerate() {
        match *s {
            Step::Fb(r, j, outcome, v) => {
                let fb = Feedback {
                    reporter: ids[r],
                    subject: ids[j],
                    outcome,
                    job: JobId(Digest::hash(JOB, &(k as u64).to_le_bytes())),
                    value: Amount::new(v),
                    epoch: b.epoch(),
                };
                b.apply_feedback(&fb).unwrap();
            }
            Step::Advance(k) => b.advance_to(b.epoch().plus(k)).unwrap(),
        }
    }
    b
}

const N: usize = 6;

// 256 cases per law by default; set PROPTEST_CASES for longer runs.
proptest! {
    /// Scores and credibility stay in [0, 1]; fresh never above proven.
    #[test]
    fn scores_bounded_and_fresh_is_minimum(steps in prop::collection::vec(step(N), 0..60)) {
        let id = ids(N);
        let b = run(&id, &steps);
        check_book(&b).unwrap();
    }

    /// Good feedback never lowers a score or credibility; bad never raises.
    #[test]
    fn monotone_in_feedback(
        steps in prop::collection::vec(step(N), 0..40),
        r in 0..N, off in 1..N, outcome in st::outcome(), v in st::value(),
    ) {
        let id = ids(N);
        let mut b = run(&id, &steps);
        let subject = id[(r + off) % N];
        let role = outcome.role();
        let (s0, c0) = (b.score(&subject, role), b.credibility(&subject));
        let fb = Feedback {
            reporter: id[r], subject, outcome,
            job: JobId(Digest::hash(JOB, b"extra")), value: v, epoch: b.epoch(),
        };
        b.apply_feedback(&fb).unwrap();
        let (s1, c1) = (b.score(&subject, role), b.credibility(&subject));
        if outcome.is_positive() {
            prop_assert!(s1 >= s0, "good feedback lowered {s0} -> {s1}");
            prop_assert!(role != Role::Provider || c1 >= c0);
        } else {
            prop_assert!(s1 <= s0, "bad feedback raised {s0} -> {s1}");
            prop_assert!(role != Role::Provider || c1 <= c0);
        }
    }

    /// More successes never lower a score at the state level, for any valid
    /// parameters.
    #[test]
    fn more_successes_never_lower(s in st::beta_state(), p in st::beta_params(), w in st::evidence()) {
        let more = s.add(true, w).unwrap();
        prop_assert!(more.score(&p) >= s.score(&p));
        prop_assert!(more.credibility(&p) >= s.credibility(&p));
        let worse = s.add(false, w).unwrap();
        prop_assert!(worse.score(&p) <= s.score(&p));
        prop_assert!(worse.credibility(&p) <= s.credibility(&p));
    }

    /// Decay moves a score toward the prior (zero) and never past it, for
    /// any valid parameters and gap.
    #[test]
    fn decay_moves_toward_prior(s in st::beta_state(), p in st::beta_params(), k in 0u64..10_000) {
        let d = s.decayed_to(Epoch::new(k), p.forgetting);
        prop_assert!(d.score(&p) <= s.score(&p));
        let dd = d.decayed_to(Epoch::new(k + 1), p.forgetting);
        prop_assert!(dd.score(&p) <= d.score(&p));
    }

    /// Advancing the book's epoch never raises any score.
    #[test]
    fn advancing_never_raises(steps in prop::collection::vec(step(N), 0..40), k in 1u64..50) {
        let id = ids(N);
        let mut b = run(&id, &steps);
        let before: Vec<_> = id.iter().flat_map(|i| Role::ALL.map(|r| b.score(i, r))).collect();
        b.advance_to(b.epoch().plus(k)).unwrap();
        let after: Vec<_> = id.iter().flat_map(|i| Role::ALL.map(|r| b.score(i, r))).collect();
        for (x, y) in before.iter().zip(&after) {
            prop_assert!(y <= x);
        }
    }

    /// Whitewashing: replacing any identity by a fresh one never raises its
    /// score in any role, nor its credibility.
    #[test]
    fn whitewashing_never_pays(steps in prop::collection::vec(step(N), 0..60), who in 0..N) {
        let id = ids(N);
        let mut b = run(&id, &steps);
        let newbie = ids(N + 1)[N];
        b.register(newbie, Amount::ZERO).unwrap();
        for role in Role::ALL {
            prop_assert!(b.score(&newbie, role) <= b.score(&id[who], role));
        }
        prop_assert!(b.credibility(&newbie) <= b.credibility(&id[who]));
    }

    /// Within an epoch the order of (distinct) feedback does not matter.
    #[test]
    fn order_within_epoch_is_irrelevant(
        prefix in prop::collection::vec(step(N), 0..20),
        batch in prop::collection::vec((0..N, 1..N, st::outcome(), st::value()), 1..30),
        perm_seed in any::<u64>(),
    ) {
        let id = ids(N);
        let base = run(&id, &prefix);
        let fbs: Vec<Feedback> = batch.iter().enumerate().map(|(k, &(r, off, outcome, value))| Feedback {
            reporter: id[r], subject: id[(r + off) % N], outcome,
            job: JobId(Digest::hash(JOB, &(1_000_000 + k as u64).to_le_bytes())),
            value, epoch: base.epoch(),
        }).collect();
        let mut shuffled = fbs.clone();
        // Deterministic Fisher–Yates from the seed.
        let mut x = perm_seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let (mut a, mut b) = (base.clone(), base);
        for f in &fbs { a.apply_feedback(f).unwrap(); }
        for f in &shuffled { b.apply_feedback(f).unwrap(); }
        prop_assert_eq!(a.state_digest(), b.state_digest());
    }

    /// Determinism: the same inputs give the same state, bit for bit.
    #[test]
    fn deterministic(steps in prop::collection::vec(step(N), 0..40)) {
        let id = ids(N);
        prop_assert_eq!(run(&id, &steps).state_digest(), run(&id, &steps).state_digest());
    }

    /// Arbitrary (often invalid) feedback is accepted or rejected with a
    /// typed error, and a rejection changes nothing.
    #[test]
    fn bad_input_is_typed_and_atomic(
        steps in prop::collection::vec(step(N), 0..20),
        r in 0..N + 2, s in 0..N + 2, outcome in st::outcome(),
        value in idlegrid_primitives::strategies::amount(), e in 0u64..40,
    ) {
        let id = ids(N + 2); // the last two are never registered
        let mut b = run(&id[..N], &steps);
        let before = b.state_digest();
        let fb = Feedback {
            reporter: id[r], subject: id[s], outcome,
            job: JobId(Digest::hash(JOB, b"x")), value, epoch: Epoch::new(e),
        };
        match b.apply_feedback(&fb) {
            Ok(()) => check_book(&b).unwrap(),
            Err(_) => prop_assert_eq!(b.state_digest(), before),
        }
    }

    /// Decoding arbitrary bytes as signed feedback never panics.
    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = SignedFeedback::from_bytes(&bytes);
    }

    /// EigenTrust converges on random sparse graphs and sums to one.
    #[test]
    fn eigentrust_converges_and_sums_to_one(
        n in 2usize..40,
        edges in prop::collection::vec((0u32..40, 0u32..40, 1u64..1000), 0..200),
        stakes in prop::collection::vec(0u128..1000, 40),
        pre in 0usize..3,
        params in st::trust_params(),
    ) {
        let id = ids(n);
        let mut nodes: Vec<_> = id.iter().zip(&stakes).map(|(i, s)| (*i, Amount::new(*s))).collect();
        nodes[0].1 = Amount::new(1); // at least one anchor
        let edges: Vec<_> = edges.into_iter().filter(|(a, b, _)| (*a as usize) < n && (*b as usize) < n).collect();
        let params = TrustParams { max_iterations: 1000, ..params };
        let g = TrustGraph::from_indexed(nodes, edges, &params).unwrap();
        let tv = EigenTrust::compute(&g, &id[..pre.min(n)], &params).unwrap();
        prop_assert!(tv.converged, "no convergence in {} iterations", tv.iterations);
        check_trust_vector(&tv, Score::from_raw(1 << 24).unwrap()).unwrap();
    }

    /// Determinism of the graph: the order in which nodes and edges are
    /// given does not change a single bit of the trust vector.
    #[test]
    fn eigentrust_independent_of_input_order(
        n in 2usize..30,
        edges in prop::collection::vec((0u32..30, 0u32..30, 1u64..1000), 0..150),
        rot in 0usize..30,
    ) {
        let id = ids(n);
        let nodes: Vec<_> = id.iter().enumerate()
            .map(|(i, x)| (*x, Amount::new(i as u128 % 3))).collect();
        let edges: Vec<_> = edges.into_iter()
            .filter(|(a, b, _)| (*a as usize) < n && (*b as usize) < n).collect();
        let params = TrustParams::default();
        let g1 = TrustGraph::from_indexed(nodes.clone(), edges.clone(), &params).unwrap();
        // Rotate the node list, remap edge indices, reverse the edge list.
        let r = rot % n;
        let mut rotated = nodes.clone();
        rotated.rotate_left(r);
        let remap = |i: u32| ((i as usize + n - r) % n) as u32;
        let edges2: Vec<_> = edges.iter().rev().map(|&(a, b, w)| (remap(a), remap(b), w)).collect();
        let g2 = TrustGraph::from_indexed(rotated, edges2, &params).unwrap();
        prop_assert_eq!(&g1, &g2);
        let pre = [id[0]];
        prop_assert_eq!(
            EigenTrust::compute(&g1, &pre, &params).unwrap(),
            EigenTrust::compute(&g2, &pre, &params).unwrap()
        );
    }

    /// Trust gating only withholds: the gated score is never above the
    /// score, equals it exactly when the identity's trust is at or above
    /// the share of the mean, and a higher share never gates fewer ids.
    #[test]
    fn trust_gate_never_lifts_and_is_monotone(
        steps in prop::collection::vec(step(N), 0..60),
        lo in 0u32..20_000,
        extra in 0u32..20_000,
    ) {
        let id = ids(N);
        let b = run(&id, &steps);
        let tv = b.global_trust(&[], &TrustParams::default()).unwrap();
        let hi = lo + extra;
        for x in &id {
            let score = b.score(x, Role::Provider);
            let gated = b.score_gated_at(x, Role::Provider, &tv, lo);
            prop_assert!(gated <= score);
            let below = tv.is_below_share_of_mean(x, lo);
            if below {
                prop_assert_eq!(gated, score.min(b.fresh_score()));
                prop_assert!(tv.is_below_share_of_mean(x, hi));
            } else {
                prop_assert_eq!(gated, score);
            }
            let t = u128::from(tv.get(x).raw());
            let expect = t == 0 || t * N as u128 * 10_000 < u128::from(lo) * tv.raw_sum();
            prop_assert_eq!(below, expect);
        }
    }

    /// A Sybil ring of any size that only rates itself (and possibly rates
    /// honest peers) gets exactly zero global trust without an edge from
    /// stake or a pre-trusted peer — and positive trust with one.
    #[test]
    fn sybil_ring_gets_no_trust(
        honest in 2usize..20,
        ring in 1usize..60,
        honest_edges in prop::collection::vec((0usize..20, 0usize..20, 1u64..100), 1..60),
        ring_edges in prop::collection::vec((0usize..60, 0usize..80, 1u64..1_000_000), 0..300),
        params in st::trust_params(),
    ) {
        let id = ids(honest + ring);
        let nodes: Vec<_> = id.iter().enumerate()
            .map(|(i, x)| (*x, Amount::new(if i == 1 { 10 } else { 0 }))).collect();
        let mut edges: Vec<(u32, u32, u64)> = honest_edges.iter()
            .filter(|(a, b, _)| *a < honest && *b < honest)
            .map(|&(a, b, w)| (a as u32, b as u32, w)).collect();
        for &(a, b, w) in &ring_edges {
            if a < ring {
                // From a ring member to anyone (ring or honest).
                edges.push(((honest + a) as u32, (b % (honest + ring)) as u32, w));
            }
        }
        let g = TrustGraph::from_indexed(nodes.clone(), edges.clone(), &params).unwrap();
        let tv = EigenTrust::compute(&g, &id[..1], &params).unwrap();
        for x in &id[honest..] {
            prop_assert_eq!(tv.get(x), Score::ZERO);
        }
        // One edge from the pre-trusted peer into the ring lets trust in.
        edges.push((0, honest as u32, 1_000));
        let g = TrustGraph::from_indexed(nodes, edges, &params).unwrap();
        let tv = EigenTrust::compute(&g, &id[..1], &params).unwrap();
        prop_assert!(tv.get(&id[honest]) > Score::ZERO);
    }
}

#[test]
fn signed_feedback_paths() {
    let k = |i| Keypair::from_seed(&Seed::from_u64(i));
    let (a, b, c) = (k(1), k(2), k(3));
    let mut book = ReputationBook::new(BookParams::default(), Epoch::new(5)).unwrap();
    book.register(a.node_id(), Amount::ZERO).unwrap();
    book.register(b.node_id(), Amount::ZERO).unwrap();
    let fb = |rep: &Keypair, sub: NodeId, job: &[u8], value: u128, epoch: u64| Feedback {
        reporter: rep.node_id(),
        subject: sub,
        outcome: Outcome::Delivered,
        job: JobId(Digest::hash(JOB, job)),
        value: Amount::new(value),
        epoch: Epoch::new(epoch),
    };
    let good = fb(&a, b.node_id(), b"1", 10, 5);
    book.record(&good.sign(&a)).unwrap();
    assert!(matches!(
        book.record(&good.sign(&a)),
        Err(ReputationError::DuplicateFeedback { .. })
    ));
    // Signed by the wrong key.
    let forged = fb(&a, b.node_id(), b"2", 10, 5).sign(&c);
    assert!(matches!(
        book.record(&forged),
        Err(ReputationError::BadSignature { .. })
    ));
    // Unknown reporter / subject, self-feedback, value, epochs.
    assert_eq!(
        book.record(&fb(&c, b.node_id(), b"3", 10, 5).sign(&c)),
        Err(ReputationError::UnknownReporter(c.node_id()))
    );
    assert_eq!(
        book.record(&fb(&a, c.node_id(), b"3", 10, 5).sign(&a)),
        Err(ReputationError::UnknownSubject(c.node_id()))
    );
    assert_eq!(
        book.record(&fb(&a, a.node_id(), b"3", 10, 5).sign(&a)),
        Err(ReputationError::SelfFeedback(a.node_id()))
    );
    assert!(matches!(
        book.record(&fb(&a, b.node_id(), b"3", 0, 5).sign(&a)),
        Err(ReputationError::ValueOutOfRange { .. })
    ));
    assert!(matches!(
        book.record(&fb(&a, b.node_id(), b"3", u128::MAX, 5).sign(&a)),
        Err(ReputationError::ValueOutOfRange { .. })
    ));
    assert!(matches!(
        book.record(&fb(&a, b.node_id(), b"3", 10, 6).sign(&a)),
        Err(ReputationError::FutureEpoch { .. })
    ));
    book.advance_to(Epoch::new(20)).unwrap();
    assert!(matches!(
        book.record(&fb(&a, b.node_id(), b"3", 10, 5).sign(&a)),
        Err(ReputationError::StaleFeedback { .. })
    ));
    assert!(matches!(
        book.advance_to(Epoch::new(20)),
        Err(ReputationError::EpochNotAfter { .. })
    ));
    // Late but in-window feedback counts less than fresh feedback.
    let late = fb(&a, b.node_id(), b"4", 10, 14);
    let fresh = fb(&a, b.node_id(), b"5", 10, 20);
    let mut b1 = book.clone();
    b1.apply_feedback(&late).unwrap();
    let mut b2 = book.clone();
    b2.apply_feedback(&fresh).unwrap();
    assert!(b1.score(&b.node_id(), Role::Provider) < b2.score(&b.node_id(), Role::Provider));
}

#[test]
fn quota_and_limits() {
    let id = ids(4);
    let params = BookParams {
        max_feedback_per_reporter_per_epoch: 2,
        max_identities: 3,
        ..BookParams::default()
    };
    let mut b = ReputationBook::new(params, Epoch::ZERO).unwrap();
    for x in &id[..3] {
        b.register(*x, Amount::ZERO).unwrap();
    }
    assert_eq!(
        b.register(id[3], Amount::ZERO),
        Err(ReputationError::TooManyIdentities { limit: 3 })
    );
    let fb = |k: u8| Feedback {
        reporter: id[0],
        subject: id[1],
        outcome: Outcome::Failed,
        job: JobId(Digest::hash(JOB, &[k])),
        value: Amount::new(1),
        epoch: b.epoch(),
    };
    let (f1, f2, f3) = (fb(1), fb(2), fb(3));
    b.apply_feedback(&f1).unwrap();
    b.apply_feedback(&f2).unwrap();
    assert!(matches!(
        b.apply_feedback(&f3),
        Err(ReputationError::ReporterQuotaExceeded { .. })
    ));
    b.advance_epoch();
    let mut f3 = f3;
    f3.epoch = b.epoch();
    b.apply_feedback(&f3).unwrap();
    assert!(matches!(
        Score::try_from_f64(f64::NAN),
        Err(ReputationError::InvalidFloat { .. })
    ));
    let bad = BookParams {
        window_epochs: 0,
        ..BookParams::default()
    };
    assert!(ReputationBook::new(bad, Epoch::ZERO).is_err());
}
