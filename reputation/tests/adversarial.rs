//! An adversarial scenario: a Sybil ring inflating itself, a whitewashing
//! cheater, and slandering clients, against honest providers and clients
//! anchored on staked validators.

use idlegrid_primitives::{Amount, Digest, Domain, Epoch, NodeId, RngCore, Seed};
use idlegrid_reputation::*;

const D: Domain = Domain::new("idlegrid/test/adversarial");

fn id(label: &str, i: u64) -> NodeId {
    NodeId::from_bytes(Digest::hash_parts(D, &[label.as_bytes(), &i.to_le_bytes()]).to_bytes())
}

struct World {
    book: ReputationBook,
    jobs: u64,
}

impl World {
    fn fb(&mut self, reporter: NodeId, subject: NodeId, outcome: Outcome, value: u128) {
        self.jobs += 1;
        let fb = Feedback {
            reporter,
            subject,
            outcome,
            job: JobId(Digest::hash(D, &self.jobs.to_le_bytes())),
            value: Amount::new(value),
            epoch: self.book.epoch(),
        };
        // Quota overruns by the ring are expected rejections.
        match self.book.apply_feedback(&fb) {
            Ok(()) | Err(ReputationError::ReporterQuotaExceeded { .. }) => {}
            Err(e) => panic!("unexpected rejection: {e}"),
        }
    }
}

#[test]
fn sybil_ring_whitewasher_and_slanderers() {
    let validators: Vec<_> = (0..3).map(|i| id("validator", i)).collect();
    let honest_p: Vec<_> = (0..20).map(|i| id("provider", i)).collect();
    let honest_c: Vec<_> = (0..20).map(|i| id("client", i)).collect();
    let slanderers: Vec<_> = (0..5).map(|i| id("slanderer", i)).collect();
    let ring: Vec<_> = (0..30).map(|i| id("sybil", i)).collect();
    let cheater = id("cheater", 0);

    let params = BookParams {
        max_feedback_per_reporter_per_epoch: 64,
        ..BookParams::default()
    };
    let mut w = World {
        book: ReputationBook::new(params, Epoch::ZERO).unwrap(),
        jobs: 0,
    };
    for v in &validators {
        w.book.register(*v, Amount::new(1_000_000)).unwrap();
    }
    for x in honest_p
        .iter()
        .chain(&honest_c)
        .chain(&slanderers)
        .chain(&ring)
    {
        w.book.register(*x, Amount::ZERO).unwrap();
    }
    w.book.register(cheater, Amount::new(1_000)).unwrap();

    let mut rng = Seed::from_u64(99).rng();
    let mut pick = |xs: &[NodeId]| xs[(rng.next_u64() % xs.len() as u64) as usize];
    for _epoch in 0..15 {
        // Validators occasionally buy compute too (their feedback anchors trust).
        for v in validators.clone() {
            let p = pick(&honest_p);
            w.fb(v, p, Outcome::Delivered, 100);
            w.fb(p, v, Outcome::Paid, 100);
        }
        for c in honest_c.clone() {
            for _ in 0..2 {
                let p = pick(&honest_p);
                w.fb(c, p, Outcome::Delivered, 100);
                w.fb(p, c, Outcome::Paid, 100);
            }
        }
        // Slanderers get honest work but report failures, and still pay.
        for c in slanderers.clone() {
            let p = pick(&honest_p);
            w.fb(c, p, Outcome::Failed, 100);
            w.fb(p, c, Outcome::Paid, 100);
        }
        // The ring rates itself glowingly, at the maximum value, as often as it can.
        for (i, s) in ring.iter().enumerate() {
            for k in 0..64 {
                let other = ring[(i + 1 + k % (ring.len() - 1)) % ring.len()];
                w.fb(*s, other, Outcome::Delivered, u128::from(u64::MAX));
            }
        }
        w.book.advance_epoch();
    }
    // The cheater is hired by an honest client and caught by the referees.
    w.fb(honest_c[0], cheater, Outcome::Delivered, 100);
    w.fb(validators[0], cheater, Outcome::CaughtCheating, 100);
    check_book(&w.book).unwrap();

    let tp = TrustParams::default();
    let trust = w.book.global_trust(&validators, &tp).unwrap();
    check_trust_vector(&trust, Score::from_raw(1 << 24).unwrap()).unwrap();
    assert!(trust.converged);

    // 1. The ring: locally glowing, globally worthless.
    let ring_trust: u128 = ring.iter().map(|x| u128::from(trust.get(x).raw())).sum();
    assert_eq!(ring_trust, 0);
    for s in &ring {
        assert!(w.book.score(s, Role::Provider) > Score::from_ppm(900_000).unwrap());
        assert_eq!(w.book.score_gated(s, Role::Provider, &trust), Score::ZERO);
        assert_eq!(
            w.book.credibility_gated(s, &trust),
            w.book.fresh_credibility()
        );
    }

    // 2. Honest providers survive slander: positive trust, a passing score.
    for p in &honest_p {
        assert!(trust.get(p) > Score::ZERO);
        assert!(w.book.score_gated(p, Role::Provider, &trust) > Score::from_ppm(600_000).unwrap());
    }

    // 3. The whitewasher gains nothing by starting over.
    let newbie = id("cheater", 1);
    w.book.register(newbie, Amount::ZERO).unwrap();
    let caught = w.book.score(&cheater, Role::Provider);
    assert!(caught < Score::from_ppm(100_000).unwrap());
    assert!(w.book.score(&newbie, Role::Provider) <= caught);
    assert!(w.book.credibility(&newbie) <= w.book.credibility(&cheater));
    for p in &honest_p {
        assert!(w.book.score(&newbie, Role::Provider) <= w.book.score(p, Role::Provider));
    }
    check_book(&w.book).unwrap();
}
