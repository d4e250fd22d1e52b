//! Byzantine validators as wrappers around honest validator nodes: the
//! consensus adversaries of the consensus crate wrap a whole
//! `ValidatorNode`; jobs still settle, equivocations are reported, and the
//! honest validators' ledgers agree.

use std::collections::{BTreeMap, BTreeSet};

use idlegrid_dag_ledger::consensus::{Committee, ConsensusEvent};
use idlegrid_entrap::Outcome;
use idlegrid_node::byzantine::{ByzantineBehavior, Forger, ForgingProposer, Participant};
use idlegrid_node::client::{ClientEvent, JobSpec};
use idlegrid_node::local::{LocalEvent, LocalNode, Testnet, simulated_job, testnet, testnet_keys};
use idlegrid_node::validator::{ValidatorEvent, ValidatorNode};
use idlegrid_primitives::{Amount, Digest, Domain, Duration, Seed, Timestamp};

const SEED: u64 = 4;

/// A testnet whose validator 3 (nobody's gateway) is `behavior`.
fn with_byzantine(behavior: ByzantineBehavior) -> Testnet {
    let keys = testnet_keys(SEED, 4, 1, 1);
    let mut t = testnet(SEED, 4, 1, 1);
    let committee = Committee::equal(t.validators.iter().copied()).unwrap();
    let key = &keys[0][3];
    let honest = ValidatorNode::new(
        key.clone(),
        committee.clone(),
        &t.setup,
        Seed::from_u64(7),
        false,
    )
    .unwrap();
    let wrapped = Participant::byzantine(honest, behavior, key, &committee);
    let Participant::Byzantine(b) = wrapped else {
        unreachable!("built Byzantine")
    };
    *t.net.node_mut(&key.node_id()).unwrap() = LocalNode::Other(Box::new(b));
    t
}

fn job(now: Timestamp) -> JobSpec {
    let inputs = vec![
        (0..8u64)
            .map(|i| Digest::of(Domain::new("test/byzantine-input"), &i))
            .collect(),
    ];
    simulated_job(1, inputs, 64, now)
}

/// Runs one job to its close; returns every event.
fn run_job(t: &mut Testnet) -> Vec<LocalEvent> {
    let tick = Duration::from_millis(10);
    let mut events = Vec::new();
    t.net
        .run_until(Timestamp::from_micros(2_000_000), tick, |_| false);
    events.extend(t.net.take_events());
    let now = t.net.now();
    let client = t.clients[0];
    t.net
        .client_mut(&client)
        .unwrap()
        .post_job(now, job(now))
        .unwrap();
    let closed = t.net.run_until(now + Duration::from_secs(90), tick, |e| {
        matches!(e, LocalEvent::Client(_, ClientEvent::JobClosed { .. }))
    });
    events.extend(t.net.take_events());
    assert!(closed, "the job closed");
    events
}

fn settled_clean(events: &[LocalEvent]) {
    let s: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            LocalEvent::Client(_, ClientEvent::Settled(s)) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].outcome, Outcome::Clean);
    assert!(s[0].paid > Amount::ZERO && s[0].slashed.is_zero());
}

/// Every honest validator reported the same state digest after each
/// commit index (they may stand at different heights when the run stops).
fn honest_digests_agree(t: &Testnet, events: &[LocalEvent]) {
    let byzantine = t.validators[3];
    let mut by_index: BTreeMap<u64, BTreeSet<Digest>> = BTreeMap::new();
    let mut reporters = BTreeSet::new();
    for e in events {
        if let LocalEvent::Validator(by, ValidatorEvent::Applied { index, digest, .. }) = e
            && *by != byzantine
        {
            by_index.entry(*index).or_default().insert(*digest);
            reporters.insert(*by);
        }
    }
    assert_eq!(reporters.len(), 3);
    assert!(by_index.len() > 10, "{} commits", by_index.len());
    for (i, d) in &by_index {
        assert_eq!(d.len(), 1, "honest validators disagree after commit {i}");
    }
}

#[test]
fn an_equivocating_validator_is_reported_and_the_job_settles() {
    let mut t = with_byzantine(ByzantineBehavior::Equivocate);
    let events = run_job(&mut t);
    settled_clean(&events);
    honest_digests_agree(&t, &events);
    let byzantine = t.validators[3];
    let reported = events.iter().filter(|e| {
        matches!(e, LocalEvent::Validator(by, ValidatorEvent::Consensus(c))
            if *by != byzantine && matches!(**c, ConsensusEvent::Equivocation(_)))
    });
    assert!(reported.count() > 0, "honest validators saw both versions");
}

#[test]
fn a_withholding_validator_does_not_stop_the_job() {
    let mut t = with_byzantine(ByzantineBehavior::Withhold { recipients: 0 });
    let events = run_job(&mut t);
    settled_clean(&events);
    honest_digests_agree(&t, &events);
}

#[test]
fn transactions_with_forged_signatures_in_a_byzantine_block_move_nothing() {
    // Validator 3 puts transfers out of the client's account, signed with
    // its own key, straight into its blocks (past its gateway).
    let keys = testnet_keys(SEED, 4, 1, 1);
    let mut t = testnet(SEED, 4, 1, 1);
    let committee = Committee::equal(t.validators.iter().copied()).unwrap();
    let forger_key = keys[0][3].clone();
    let victim = t.clients[0].account();
    let inner = ValidatorNode::new(
        forger_key.clone(),
        committee,
        &t.setup,
        Seed::from_u64(7),
        false,
    )
    .unwrap();
    let forger = ForgingProposer::new(inner, forger_key.clone(), victim);
    *t.net.node_mut(&forger_key.node_id()).unwrap() = LocalNode::Other(Box::new(forger));
    let genesis = |a: &idlegrid_primitives::AccountId| t.setup.ledger.balance(a);
    let (victim_before, sink) = (genesis(&victim), Forger::sink(&forger_key));
    assert!(victim_before > Amount::ZERO);
    assert_eq!(genesis(&sink), Amount::ZERO);

    t.net.run_until(
        Timestamp::from_micros(4_000_000),
        Duration::from_millis(10),
        |_| false,
    );
    let events = t.net.take_events();

    // Every forgery was committed, and every validator refused it: the
    // forger's own ledger too.
    let rejected: BTreeMap<_, u32> = events.iter().fold(BTreeMap::new(), |mut m, e| {
        if let LocalEvent::Validator(by, ValidatorEvent::Applied { rejected, .. }) = e {
            *m.entry(*by).or_default() += rejected;
        }
        m
    });
    assert_eq!(rejected.len(), 4, "every validator applied commits");
    for (by, n) in &rejected {
        assert_eq!(
            u64::from(*n),
            Forger::MAX,
            "validator {by:?} refused every forgery"
        );
    }
    for v in t.validators.iter().filter_map(|v| t.net.validator(v)) {
        assert_eq!(v.ledger().balance(&victim), victim_before, "nothing taken");
        assert_eq!(v.ledger().balance(&sink), Amount::ZERO, "nothing gained");
        assert_eq!(v.ledger().nonce(&victim).get(), 0, "no nonce spent");
    }
    honest_digests_agree(&t, &events);
}
