//! The client's verification modes on a small testnet with one provider
//! that corrupts every subtask and one honest provider: replication
//! catches the cheater by disagreement and the referees' re-execution and
//! slashes it, never the honest one; with no verification the cheated
//! work is accepted and paid. Money is conserved throughout.

use idlegrid_node::client::{ClientEvent, JobSpec};
use idlegrid_node::local::{LocalEvent, LocalNode, Testnet, simulated_job, testnet};
use idlegrid_node::market::Settlement;
use idlegrid_node::provider::ExecReport;
use idlegrid_node::verification::{REPLICA_JOB_BASE, VerificationMode};
use idlegrid_primitives::{AccountId, Digest, Domain, Duration, Timestamp};

const PER_LOT: u32 = 4;

fn job(id: u64, now: Timestamp) -> JobSpec {
    let inputs = vec![
        (0..u64::from(PER_LOT))
            .map(|i| Digest::of(Domain::new("test/input"), &(id, i)))
            .collect(),
    ];
    simulated_job(id, inputs, PER_LOT, now)
}

/// Two providers (capacity 1 each, so a held lot's replica goes to the
/// other): provider 0 corrupts every subtask. Returns the testnet and the
/// cheater's account.
fn world(mode: VerificationMode) -> (Testnet, AccountId) {
    let mut t = testnet(21, 4, 2, 1);
    let cheater = t.providers[0];
    if let Some(LocalNode::Provider(_, exec)) = t.net.node_mut(&cheater) {
        *exec = Box::new(|_, inputs, _| ExecReport {
            outputs: inputs
                .iter()
                .map(|x| Digest::of(Domain::new("test/wrong"), x))
                .collect(),
            usage_micros: 1_000 * inputs.len() as u64,
            cheated: vec![true; inputs.len()],
            data: None,
        });
    }
    let client = t.clients[0];
    t.net.client_mut(&client).unwrap().set_verification(mode);
    (t, cheater.account())
}

/// Posts `jobs` one-lot jobs one after the other; returns every settlement.
fn run(t: &mut Testnet, jobs: u64) -> Vec<Settlement> {
    let client = t.clients[0];
    let mut settled = Vec::new();
    for id in 0..jobs {
        let now = t.net.now() + Duration::from_secs(1);
        t.net.run_until(now, Duration::from_millis(10), |_| false);
        let c = t.net.client_mut(&client).unwrap();
        c.post_job(now, job(id, now)).unwrap();
        let closed = t.net.run_until(
            now + Duration::from_secs(120),
            Duration::from_millis(10),
            |e| matches!(e, LocalEvent::Client(_, ClientEvent::JobClosed { job, .. }) if *job == id),
        );
        assert!(closed, "job {id} closed");
        // Let the replica job close too.
        let later = t.net.now() + Duration::from_secs(30);
        t.net.run_until(later, Duration::from_millis(10), |_| false);
        settled.extend(t.net.take_events().into_iter().filter_map(|e| match e {
            LocalEvent::Client(_, ClientEvent::Settled(s)) => Some(s),
            _ => None,
        }));
    }
    let v = t.validators[0];
    let l = t.net.validator_mut(&v).unwrap().ledger();
    assert_eq!(
        l.total_supply().get() + l.burned().get(),
        l.initial_supply().get(),
        "supply conserved"
    );
    settled
}

#[test]
fn replication_slashes_the_cheater_by_disagreement_and_never_the_honest() {
    let (mut t, cheater) = world(VerificationMode::Replication);
    let settled = run(&mut t, 3);
    // The first job was replicated (one original and one replica lot);
    // once the cheater's stake is slashed it gets no more matches, later
    // replicas lapse unmatched and their originals run plain.
    assert!(
        settled.iter().any(|s| s.job == REPLICA_JOB_BASE),
        "{settled:?}"
    );
    assert_eq!(settled.iter().filter(|s| s.job == 0).count(), 1);
    for s in &settled {
        if s.provider == cheater {
            assert!(!s.slashed.is_zero(), "the cheater is slashed: {s:?}");
            assert!(s.paid.is_zero(), "and not paid: {s:?}");
        } else {
            assert!(s.slashed.is_zero(), "an honest provider slashed: {s:?}");
            assert!(!s.paid.is_zero(), "the honest provider is paid: {s:?}");
        }
    }
    assert!(settled.iter().any(|s| s.provider == cheater));
    assert!(settled.iter().any(|s| s.provider != cheater));
}

#[test]
fn without_verification_cheated_work_is_accepted_and_paid() {
    let (mut t, cheater) = world(VerificationMode::None);
    let settled = run(&mut t, 4);
    assert_eq!(settled.len(), 4, "no replicas: {settled:?}");
    let cheats: Vec<_> = settled.iter().filter(|s| s.provider == cheater).collect();
    assert!(!cheats.is_empty(), "the cheater got work: {settled:?}");
    for s in cheats {
        assert_eq!(s.traps, 0);
        assert!(s.slashed.is_zero() && !s.paid.is_zero(), "{s:?}");
    }
}

#[test]
fn replica_job_ids_are_reserved() {
    let (mut t, _) = world(VerificationMode::Replication);
    let client = t.clients[0];
    let now = t.net.now();
    let c = t.net.client_mut(&client).unwrap();
    let r = c.post_job(now, job(REPLICA_JOB_BASE, now));
    assert!(matches!(
        r,
        Err(idlegrid_node::client::PostError::ReservedId(_))
    ));
}

#[test]
fn a_held_lot_whose_replica_is_never_matched_is_planned_before_its_deadline() {
    // One provider of one slot: the replica of its lot cannot be matched
    // while the lot waits. The bid window (two minutes) outlasts the plan
    // deadline (two stages, 30 s): the client must not wait for the
    // replica's bid to lapse, or the ledger lapses the held lot unplanned.
    let mut t = testnet(22, 4, 1, 1);
    let client = t.clients[0];
    t.net
        .client_mut(&client)
        .unwrap()
        .set_verification(VerificationMode::Replication);
    let now = t.net.now() + Duration::from_secs(1);
    t.net.run_until(now, Duration::from_millis(10), |_| false);
    let mut spec = job(0, now);
    spec.request.deadline = now + Duration::from_secs(120);
    t.net
        .client_mut(&client)
        .unwrap()
        .post_job(now, spec)
        .unwrap();
    let closed = |job: u64| move |e: &LocalEvent| matches!(e, LocalEvent::Client(_, ClientEvent::JobClosed { job: j, .. }) if *j == job);
    let end = now + Duration::from_secs(200);
    assert!(t.net.run_until(end, Duration::from_millis(10), closed(0)));
    let mut events = t.net.take_events();
    // The replica job closes too (matched once the slot is free, and run
    // plain: its partner no longer waits for it).
    assert!(
        t.net
            .run_until(end, Duration::from_millis(10), closed(REPLICA_JOB_BASE))
    );
    events.extend(t.net.take_events());
    let unplanned: Vec<_> = (events.iter())
        .filter(|e| matches!(e, LocalEvent::Client(_, ClientEvent::Unplanned { .. })))
        .collect();
    assert!(unplanned.is_empty(), "{unplanned:?}");
    let settled: Vec<Settlement> = (events.into_iter())
        .filter_map(|e| match e {
            LocalEvent::Client(_, ClientEvent::Settled(s)) => Some(s),
            _ => None,
        })
        .collect();
    let original = settled.iter().find(|s| s.job == 0).expect("job 0 settled");
    assert!(!original.paid.is_zero(), "{original:?}");
}
