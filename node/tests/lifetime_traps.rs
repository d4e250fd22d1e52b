//! The client's lifetime trap mode: lots carry traps with a drawn
//! probability, and what a provider observes of a lot — its slot count and
//! the events it goes through — is the same whether or not the lot carries
//! traps (trap positions are uniform: the entrap crate's plan tests).

use std::collections::BTreeMap;

use idlegrid_entrap::AssuranceTarget;
use idlegrid_entrap::{Bps, Outcome};
use idlegrid_node::client::{ClientEvent, JobSpec, LifetimeMode, TrapTargets};
use idlegrid_node::local::{LocalEvent, Testnet, simulated_job, testnet};
use idlegrid_node::provider::ProviderEvent;
use idlegrid_primitives::{Digest, Domain, Duration, Timestamp};

const PER_LOT: u32 = 8;
const MAX_TRAPS: u32 = 2;

fn job(id: u64, lots: u32, now: Timestamp) -> JobSpec {
    let inputs = (0..lots)
        .map(|l| {
            (0..u64::from(PER_LOT))
                .map(|i| Digest::of(Domain::new("test/input"), &(id, l, i)))
                .collect()
        })
        .collect();
    simulated_job(id, inputs, PER_LOT + MAX_TRAPS, now)
}

fn lifetime() -> TrapTargets {
    TrapTargets {
        lifetime: Some(LifetimeMode {
            target: AssuranceTarget {
                cheat_rate: Bps::new(1_000).unwrap(),
                lots: 60,
                miss_probability: 0.01,
            },
            max_traps: MAX_TRAPS,
            halving_lots: None,
        }),
        ..TrapTargets::default()
    }
}

/// What a provider saw of one lot: the kinds of its events in order and
/// the number of slots it ran.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Seen {
    events: Vec<&'static str>,
    slots: usize,
}

fn run(t: &mut Testnet, jobs: u64, lots: u32) -> Vec<LocalEvent> {
    let client = t.clients[0];
    let mut all = Vec::new();
    for id in 0..jobs {
        let now = t.net.now() + Duration::from_secs(1);
        t.net.run_until(now, Duration::from_millis(10), |_| false);
        t.net
            .client_mut(&client)
            .unwrap()
            .post_job(now, job(id, lots, now))
            .unwrap();
        let closed = t.net.run_until(
            now + Duration::from_secs(90),
            Duration::from_millis(10),
            |e| matches!(e, LocalEvent::Client(_, ClientEvent::JobClosed { .. })),
        );
        assert!(closed, "job {id} closed");
        all.extend(t.net.take_events());
    }
    all
}

#[test]
fn trap_free_lots_look_like_trap_carrying_ones_to_the_provider() {
    let mut t = testnet(5, 4, 4, 1);
    let client = t.clients[0];
    t.net
        .client_mut(&client)
        .unwrap()
        .set_trap_targets(lifetime());
    let events = run(&mut t, 6, 4);
    // The client's view: traps per (job, lot); the providers' view.
    let mut traps = BTreeMap::new();
    let mut seen: BTreeMap<(u64, u32), Seen> = BTreeMap::new();
    for e in &events {
        match e {
            LocalEvent::Client(
                _,
                ClientEvent::Planned {
                    job,
                    lot,
                    traps: k,
                    slots,
                    ..
                },
            ) => {
                traps.insert((*job, *lot), (*k, *slots));
            }
            LocalEvent::Client(_, ClientEvent::Settled(s)) => {
                assert_eq!(
                    s.outcome,
                    Outcome::Clean,
                    "honest providers are never accused"
                );
            }
            LocalEvent::Provider(_, ev) => {
                let (key, kind, slots) = match ev {
                    ProviderEvent::Matched { lot, .. } => (lot, "matched", None),
                    ProviderEvent::Execute { lot, inputs, .. } => {
                        (lot, "execute", Some(inputs.len()))
                    }
                    ProviderEvent::Settled(s) => (&(s.client, s.job, s.lot), "settled", None),
                    _ => continue,
                };
                let entry = seen.entry((key.1, key.2)).or_default();
                entry.events.push(kind);
                if let Some(n) = slots {
                    entry.slots = n;
                }
            }
            _ => {}
        }
    }
    let full = (PER_LOT + MAX_TRAPS) as usize;
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for (key, (k, slots)) in &traps {
        let s = seen.get(key).expect("the provider saw every planned lot");
        assert_eq!(s.slots, *slots as usize);
        if s.slots < full {
            // A job's tail lot: fewer slots, and always traps.
            assert!(*k > 0, "tail lot {key:?} carries traps");
            continue;
        }
        if *k > 0 {
            with.push(s.clone())
        } else {
            without.push(s.clone())
        }
    }
    assert!(
        !with.is_empty() && !without.is_empty(),
        "both kinds drawn: {} / {}",
        with.len(),
        without.len()
    );
    // Same slot count, same event sequence, whatever the lot carries.
    let first = &with[0];
    assert!(
        with.iter().chain(&without).all(|s| s == first),
        "{with:?} vs {without:?}"
    );
}
