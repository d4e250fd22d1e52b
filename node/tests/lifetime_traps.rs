//! The client's lifetime trap mode: lots carry traps with a drawn
//! probability, and what a provider observes of a lot — its slot count and
//! the events it goes through — is the same whether or not the lot carries
//! traps (trap positions are uniform: the entrap crate's plan tests).

use std::collections::BTreeMap;

use idlegrid_entrap::AssuranceTarget;
use idlegrid_entrap::{Bps, Outcome, ReuseRule};
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

/// [`run`], stamping every event with the virtual time it was observed at.
fn run_stamped(t: &mut Testnet, jobs: u64, lots: u32) -> Vec<(Timestamp, LocalEvent)> {
    let client = t.clients[0];
    let tick = Duration::from_millis(10);
    let mut all = Vec::new();
    for id in 0..jobs {
        let now = t.net.now() + Duration::from_secs(1);
        t.net.run_until(now, tick, |_| false);
        all.extend(t.net.take_events().into_iter().map(|e| (now, e)));
        t.net
            .client_mut(&client)
            .unwrap()
            .post_job(now, job(id, lots, now))
            .unwrap();
        let end = now + Duration::from_secs(90);
        let mut closed = false;
        while !closed && t.net.now() < end {
            let at = t.net.now();
            t.net.run_until(at + tick, tick, |_| false);
            for e in t.net.take_events() {
                closed |= matches!(e, LocalEvent::Client(_, ClientEvent::JobClosed { .. }));
                all.push((at, e));
            }
        }
        assert!(closed, "job {id} closed");
    }
    all
}

/// What a provider observes of one lot, with times.
#[derive(Debug, Default, Clone)]
struct Observed {
    kinds: Vec<&'static str>,
    slots: usize,
    input_bytes: usize,
    matched: Option<Timestamp>,
    execute: Option<Timestamp>,
    settled: Option<Timestamp>,
    /// The slot of the smallest input digest (uniform under
    /// indistinguishable positions).
    min_rank: usize,
}

fn observe(events: &[(Timestamp, LocalEvent)]) -> BTreeMap<(u64, u32), Observed> {
    let mut seen: BTreeMap<(u64, u32), Observed> = BTreeMap::new();
    for (at, e) in events {
        let LocalEvent::Provider(_, ev) = e else {
            continue;
        };
        let (key, kind) = match ev {
            ProviderEvent::Matched { lot, .. } => (*lot, "matched"),
            ProviderEvent::Execute { lot, .. } => (*lot, "execute"),
            ProviderEvent::Settled(s) => ((s.client, s.job, s.lot), "settled"),
            _ => continue,
        };
        let o = seen.entry((key.1, key.2)).or_default();
        o.kinds.push(kind);
        match ev {
            ProviderEvent::Matched { .. } => o.matched = Some(*at),
            ProviderEvent::Execute { inputs, .. } => {
                o.execute = Some(*at);
                o.slots = inputs.len();
                o.input_bytes = idlegrid_primitives::encoded_len(inputs);
                o.min_rank = (0..inputs.len()).min_by_key(|&i| inputs[i]).unwrap_or(0);
            }
            _ => o.settled = Some(*at),
        }
    }
    seen
}

/// Mean and standard error of a sample.
fn mean_se(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, (var / n).sqrt())
}

/// Two samples' means differ by less than four standard errors (or are
/// equal when both samples are constant).
fn same_mean(what: &str, a: &[f64], b: &[f64]) {
    let ((ma, sa), (mb, sb)) = (mean_se(a), mean_se(b));
    let se = (sa * sa + sb * sb).sqrt();
    if se == 0.0 {
        assert_eq!(ma, mb, "{what}: constant but different");
    } else {
        let z = (ma - mb) / se;
        assert!(z.abs() < 4.0, "{what}: means {ma} vs {mb}, z = {z}");
    }
}

#[test]
fn a_provider_observes_the_same_sizes_timing_order_and_counts_with_or_without_traps() {
    let mut t = testnet(7, 4, 4, 1);
    let client = t.clients[0];
    t.net
        .client_mut(&client)
        .unwrap()
        .set_trap_targets(lifetime());
    let events = run_stamped(&mut t, 8, 4);
    let mut traps = BTreeMap::new();
    for (_, e) in &events {
        if let LocalEvent::Client(
            _,
            ClientEvent::Planned {
                job, lot, traps: k, ..
            },
        ) = e
        {
            traps.insert((*job, *lot), *k);
        }
    }
    let seen = observe(&events);
    let full = (PER_LOT + MAX_TRAPS) as usize;
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for (key, k) in &traps {
        let o = seen.get(key).expect("the provider saw every planned lot");
        if o.slots < full {
            continue; // a job's tail: recognisable, and always trapped
        }
        if *k > 0 {
            with.push(o)
        } else {
            without.push(o)
        }
    }
    assert!(
        with.len() >= 3 && without.len() >= 3,
        "{} / {}",
        with.len(),
        without.len()
    );
    // Counts and sizes: identical.
    let first = with[0];
    for o in with.iter().chain(&without) {
        assert_eq!(o.kinds, first.kinds, "event sequence");
        assert_eq!(o.slots, first.slots, "slot count");
        assert_eq!(o.input_bytes, first.input_bytes, "input bytes");
    }
    // Timing: match → inputs, inputs → settlement.
    let ms = |a: Option<Timestamp>, b: Option<Timestamp>| {
        (b.unwrap().as_micros() - a.unwrap().as_micros()) as f64 / 1e3
    };
    let delays =
        |v: &[&Observed], f: &dyn Fn(&Observed) -> f64| v.iter().map(|o| f(o)).collect::<Vec<_>>();
    let to_inputs = |o: &Observed| ms(o.matched, o.execute);
    let to_settle = |o: &Observed| ms(o.execute, o.settled);
    same_mean(
        "match to inputs",
        &delays(&with, &to_inputs),
        &delays(&without, &to_inputs),
    );
    same_mean(
        "inputs to settlement",
        &delays(&with, &to_settle),
        &delays(&without, &to_settle),
    );
    // Order: where the smallest input sits.
    let rank = |o: &Observed| o.min_rank as f64;
    same_mean(
        "slot of the smallest input",
        &delays(&with, &rank),
        &delays(&without, &rank),
    );
}

/// Lifetime targets a 4-lot horizon reaches quickly, with guarded answer
/// reuse: after 4 verified clean lots a provider's trap lots carry one
/// reused answer and one fresh trap.
fn with_reuse() -> TrapTargets {
    TrapTargets {
        lifetime: Some(LifetimeMode {
            target: AssuranceTarget {
                cheat_rate: Bps::new(5_000).unwrap(),
                lots: 4,
                miss_probability: 0.05,
            },
            max_traps: MAX_TRAPS,
            halving_lots: None,
        }),
        reuse: Some(ReuseRule {
            fraction: Bps::new(10_000).unwrap(),
            max_uses: 4,
            max_age: Duration::from_secs(3_600),
            guarded: true,
        }),
        ..TrapTargets::default()
    }
}

/// The client's view of each lot, `(traps, reused traps)`, checking on the
/// way that honest providers are never accused by a reused answer and that
/// no provider is handed an input twice.
fn reuse_plans(events: &[(Timestamp, LocalEvent)]) -> BTreeMap<(u64, u32), (u32, u32)> {
    let mut planned = BTreeMap::new();
    let mut inputs_seen: BTreeMap<_, std::collections::BTreeSet<Digest>> = BTreeMap::new();
    for (_, e) in events {
        match e {
            LocalEvent::Client(
                _,
                ClientEvent::Planned {
                    job,
                    lot,
                    traps,
                    computed_answers,
                    cross_checks,
                    ..
                },
            ) => {
                let reused = traps - computed_answers - cross_checks;
                planned.insert((*job, *lot), (*traps, reused));
            }
            LocalEvent::Client(_, ClientEvent::Settled(s)) => {
                assert_eq!(s.outcome, Outcome::Clean, "honest providers pass");
            }
            LocalEvent::Provider(p, ProviderEvent::Execute { inputs, .. }) => {
                let mine = inputs_seen.entry(*p).or_default();
                for d in inputs {
                    assert!(mine.insert(*d), "a provider was handed an input twice");
                }
            }
            _ => {}
        }
    }
    planned
}

#[test]
fn reused_traps_look_like_fresh_ones_and_never_return_to_a_provider_that_saw_them() {
    let mut t = testnet(11, 4, 4, 1);
    let client = t.clients[0];
    t.net
        .client_mut(&client)
        .unwrap()
        .set_trap_targets(with_reuse());
    let events = run_stamped(&mut t, 14, 4);
    let planned = reuse_plans(&events);
    let seen = observe(&events);
    let full = (PER_LOT + MAX_TRAPS) as usize;
    let (mut reused, mut fresh, mut none) = (Vec::new(), Vec::new(), Vec::new());
    for (key, (k, r)) in &planned {
        let o = seen.get(key).expect("the provider saw every planned lot");
        assert!(*k == 0 || r < k, "a trap lot keeps a fresh trap");
        if o.slots < full {
            continue;
        }
        match (k, r) {
            (0, _) => none.push(o),
            (_, 0) => fresh.push(o),
            _ => reused.push(o),
        }
    }
    assert!(
        reused.len() >= 3 && fresh.len() >= 3 && none.len() >= 3,
        "{} reused / {} fresh / {} trap-free",
        reused.len(),
        fresh.len(),
        none.len()
    );
    let first = reused[0];
    for o in reused.iter().chain(&fresh).chain(&none) {
        assert_eq!(o.kinds, first.kinds, "event sequence");
        assert_eq!(o.slots, first.slots, "slot count");
        assert_eq!(o.input_bytes, first.input_bytes, "input bytes");
    }
    let ms = |a: Option<Timestamp>, b: Option<Timestamp>| {
        (b.unwrap().as_micros() - a.unwrap().as_micros()) as f64 / 1e3
    };
    let f =
        |v: &[&Observed], g: &dyn Fn(&Observed) -> f64| v.iter().map(|o| g(o)).collect::<Vec<_>>();
    let to_inputs = |o: &Observed| ms(o.matched, o.execute);
    let to_settle = |o: &Observed| ms(o.execute, o.settled);
    let rank = |o: &Observed| o.min_rank as f64;
    for other in [&fresh, &none] {
        same_mean(
            "match to inputs",
            &f(&reused, &to_inputs),
            &f(other, &to_inputs),
        );
        same_mean(
            "inputs to settlement",
            &f(&reused, &to_settle),
            &f(other, &to_settle),
        );
        same_mean(
            "slot of the smallest input",
            &f(&reused, &rank),
            &f(other, &rank),
        );
    }
}
