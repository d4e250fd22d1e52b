//! Providers and clients as light nodes: every fact they act on comes
//! from f + 1 validators, every hand-off is a message.

use idlegrid_dag_ledger::consensus::Committee;
use idlegrid_entrap::Outcome;
use idlegrid_node::byzantine::LyingGateway;
use idlegrid_node::client::{ClientEvent, JobSpec};
use idlegrid_node::local::{
    LocalEvent, LocalNode, Testnet, reference_output, simulated_job, testnet, testnet_keys,
    testnet_setup, testnet_with,
};
use idlegrid_node::market::MarketError;
use idlegrid_node::provider::{ExecReport, ProviderEvent};
use idlegrid_node::validator::ValidatorNode;
use idlegrid_node::wire::RejectionKind;
use idlegrid_primitives::{Amount, Digest, Domain, Duration, NodeId, Seed, Timestamp};

fn job(id: u64, lots: u32, now: Timestamp) -> JobSpec {
    let inputs = (0..lots)
        .map(|l| {
            (0..8u64)
                .map(|i| Digest::of(Domain::new("test/input"), &(id, l, i)))
                .collect()
        })
        .collect();
    simulated_job(id, inputs, 64, now)
}

fn run_job(t: &mut Testnet, spec: JobSpec) -> Vec<LocalEvent> {
    let client = t.clients[0];
    t.net.run_until(
        Timestamp::from_micros(2_000_000),
        Duration::from_millis(10),
        |_| false,
    );
    let now = t.net.now();
    t.net
        .client_mut(&client)
        .unwrap()
        .post_job(now, spec)
        .unwrap();
    let closed = t.net.run_until(
        now + Duration::from_secs(90),
        Duration::from_millis(10),
        |e| matches!(e, LocalEvent::Client(_, ClientEvent::JobClosed { .. })),
    );
    let events = t.net.take_events();
    assert!(closed, "the job closed");
    events
}

/// The first client pays `amount` to `to`; true once its fate came back
/// applied (within 10 s).
fn pay(t: &mut Testnet, to: idlegrid_primitives::AccountId, amount: u128) -> bool {
    let (client, now) = (t.clients[0], t.net.now());
    let pay = idlegrid_dag_ledger::ledger::TxKind::Transfer {
        to,
        amount: Amount::new(amount),
    };
    t.net
        .client_mut(&client)
        .unwrap()
        .submit_ledger(now, pay)
        .unwrap();
    t.net.run_until(
        now + Duration::from_secs(10),
        Duration::from_millis(10),
        |e| matches!(e, LocalEvent::Client(_, ClientEvent::Applied { .. })),
    )
}

fn settlements(events: &[LocalEvent]) -> Vec<idlegrid_node::market::Settlement> {
    events
        .iter()
        .filter_map(|e| match e {
            LocalEvent::Client(_, ClientEvent::Settled(s)) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn digests_agree(t: &Testnet) {
    let d: Vec<_> = t
        .validators
        .iter()
        .filter_map(|v| t.net.validator(v))
        .map(|v| v.ledger().state_digest())
        .collect();
    assert!(d.windows(2).all(|w| w[0] == w[1]), "validators agree");
    for v in t.validators.iter().filter_map(|v| t.net.validator(v)) {
        let l = v.ledger();
        assert_eq!(
            l.total_supply().get() + l.burned().get(),
            l.initial_supply().get()
        );
    }
}

#[test]
fn a_job_posted_by_a_client_is_run_verified_and_paid() {
    let mut t = testnet(1, 4, 2, 1);
    let ev = run_job(&mut t, job(7, 2, Timestamp::ZERO + Duration::from_secs(2)));
    let s = settlements(&ev);
    assert_eq!(s.len(), 2, "both lots settled");
    assert!(
        s.iter()
            .all(|s| s.outcome == Outcome::Clean && s.paid > Amount::ZERO)
    );
    assert!(s.iter().all(|s| s.traps >= 1), "every lot carried traps");
    // The client got the real outputs, in input order.
    let spec = job(7, 2, Timestamp::ZERO);
    for e in &ev {
        if let LocalEvent::Client(
            _,
            ClientEvent::Results {
                lot,
                outputs,
                accused,
                ..
            },
        ) = e
        {
            let want: Vec<Digest> = spec.inputs[*lot as usize]
                .iter()
                .map(reference_output)
                .collect();
            assert_eq!(outputs, &want);
            assert!(accused.is_empty());
        }
    }
    digests_agree(&t);
}

#[test]
fn a_provider_that_skips_work_is_caught_on_a_trap_and_slashed() {
    let mut t = testnet(2, 4, 1, 1);
    let p = t.providers[0];
    if let Some(LocalNode::Provider(_, exec)) = t.net.node_mut(&p) {
        *exec = Box::new(|_, inputs: &[Digest], _| ExecReport {
            outputs: inputs
                .iter()
                .map(|d| Digest::of(Domain::new("lazy"), d))
                .collect(),
            usage_micros: 1_000,
            cheated: vec![true; inputs.len()],
            data: None,
        });
    }
    let ev = run_job(&mut t, job(1, 1, Timestamp::ZERO + Duration::from_secs(2)));
    let s = settlements(&ev);
    assert_eq!(s.len(), 1);
    assert!(
        s[0].slashed > Amount::ZERO,
        "caught and slashed: {:?}",
        s[0]
    );
    assert_eq!(s[0].paid, Amount::ZERO);
    digests_agree(&t);
}

/// A client that plants a wrong expected answer for every lot's first trap.
#[derive(Debug)]
struct FramingTraps;

impl idlegrid_node::client::TrapSource for FramingTraps {
    fn trap(&mut self, job: u64, lot: u32, i: u64) -> idlegrid_entrap::TrapSpec {
        let t = idlegrid_node::local::ReferenceTraps.trap(job, lot, i);
        if i > 0 {
            return t;
        }
        let wrong = Digest::of(Domain::new("test/framed"), &t.input);
        idlegrid_entrap::TrapSpec::precomputed(t.input, wrong)
    }
}

#[test]
fn a_framing_client_is_judged_by_the_validators_referees_and_pays_the_provider() {
    let mut t = testnet(5, 4, 1, 1);
    let client = t.clients[0];
    let key = testnet_keys(5, 4, 1, 1)[2][0].clone();
    let committee = Committee::equal(t.validators.iter().copied()).unwrap();
    let policy = idlegrid_node::client::TrapPolicy {
        cost_per_subtask: Amount::new(250),
        stake: Amount::new(idlegrid_node::local::TESTNET_STAKE),
        price_to_pay_divisor: 20,
    };
    let framer = idlegrid_node::client::ClientNode::new(
        idlegrid_node::local::light_setup(&key, &committee, 0),
        policy,
        Box::new(FramingTraps),
        Seed::from_u64(11),
    );
    *t.net.node_mut(&client).unwrap() = LocalNode::Client(Box::new(framer));
    let ev = run_job(&mut t, job(1, 1, Timestamp::ZERO + Duration::from_secs(2)));
    let duties = ev
        .iter()
        .filter(|e| {
            matches!(
                e,
                LocalEvent::Validator(
                    _,
                    idlegrid_node::validator::ValidatorEvent::RefereeDuty { .. }
                )
            )
        })
        .count();
    assert_eq!(duties, 3, "a committee of three was seated");
    let s = settlements(&ev);
    assert_eq!(s.len(), 1);
    assert_eq!(
        s[0].outcome,
        Outcome::Judged(idlegrid_entrap::Verdict::ClientFramed)
    );
    assert!(s[0].bond_forfeited > Amount::ZERO && s[0].paid > Amount::ZERO);
    assert!(
        s[0].referee_fees > Amount::ZERO,
        "the majority referees are paid"
    );
    assert!(s[0].slashed.is_zero());
    digests_agree(&t);
}

/// A fresh honest validator 0 of the seed-3 testnet of 4 validators, 1
/// provider and 1 client (with the same key), to wrap in an adversary.
fn honest_validator_0(t: &Testnet) -> ValidatorNode {
    let keys = testnet_keys(3, 4, 1, 1);
    let setup = testnet_setup(&keys);
    let committee = Committee::equal(t.validators.iter().copied()).unwrap();
    ValidatorNode::new(
        keys[0][0].clone(),
        committee,
        &setup,
        Seed::from_u64(5),
        false,
    )
    .unwrap()
}

/// Replaces validator 0 of that testnet with a [`LyingGateway`].
fn make_validator_0_lie(t: &mut Testnet) {
    let inner = honest_validator_0(t);
    let liar = t.validators[0];
    *t.net.node_mut(&liar).unwrap() = LocalNode::Other(Box::new(LyingGateway::new(inner)));
}

#[test]
fn forged_facts_from_a_lying_gateway_are_never_acted_on() {
    // Validator 0 lies to every light node that uses it as gateway (both
    // do: first_gateway 0).
    let mut t = testnet(3, 4, 1, 1);
    make_validator_0_lie(&mut t);
    let ev = run_job(&mut t, job(9, 1, Timestamp::ZERO + Duration::from_secs(2)));
    let s = settlements(&ev);
    assert_eq!(s.len(), 1);
    // The forged accusation was never confessed to, the forged wrong
    // outputs never accused: the lot settled clean, nobody lost anything.
    assert_eq!(s[0].outcome, Outcome::Clean);
    assert_eq!(s[0].slashed, Amount::ZERO);
    assert_eq!(s[0].bond_forfeited, Amount::ZERO);
    for e in &ev {
        if let LocalEvent::Client(_, ClientEvent::Results { accused, .. }) = e {
            assert!(accused.is_empty(), "no false accusation");
        }
    }
    let settled = ev
        .iter()
        .filter(|e| matches!(e, LocalEvent::Provider(_, ProviderEvent::Settled(_))))
        .count();
    assert_eq!(settled, 1, "the forged double payment was not believed");
}

#[test]
fn certified_facts_come_from_one_source_and_a_forger_is_replaced_at_once() {
    use idlegrid_node::facts::FactError;
    use idlegrid_node::light::FactDelivery;
    use idlegrid_node::provider::Ignored;
    // Every light node asks only its first gateway, validator 0, for the
    // sealing closings, certified; validator 0 forges them (each closing
    // announced one batch early, under the honest signatures).
    // Patience: a minute, far past the job's reveal window, so only the
    // provider's asking an honest validator at its first refused
    // certificate (not the patience running out) can serve the job.
    let global = FactDelivery::Certified {
        sources: 1,
        patience: Duration::from_secs(60),
    };
    let mut t = testnet_with(3, [4, 1, 1], global);
    make_validator_0_lie(&mut t);
    // The provider seals its asks, so it needs the closings to reveal: the
    // job is served only once it asked an honest validator for them.
    let ev = run_job(&mut t, job(9, 1, Timestamp::ZERO + Duration::from_secs(2)));
    let refusals = |want: fn(&FactError) -> bool| {
        ev.iter()
            .filter(|e| match e {
                LocalEvent::Provider(
                    _,
                    ProviderEvent::Ignored {
                        reason: Ignored::Facts(f),
                        ..
                    },
                ) => want(f),
                _ => false,
            })
            .count()
    };
    // The first forgery is checked and refused; the forger's later
    // certificates are refused unread.
    assert_eq!(refusals(|f| matches!(f, FactError::Certificate(_))), 1);
    assert!(refusals(|f| matches!(f, FactError::Forger(_))) > 0);
    let provider = t.providers[0];
    let forgers: Vec<NodeId> = t
        .net
        .provider_mut(&provider)
        .unwrap()
        .core()
        .forgers()
        .copied()
        .collect();
    assert_eq!(forgers, vec![t.validators[0]]);
    let s = settlements(&ev);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].outcome, Outcome::Clean);
    assert_eq!(
        s[0].bond_forfeited,
        Amount::ZERO,
        "no early reveal, no forfeit"
    );
    digests_agree(&t);
}

#[test]
fn a_transaction_the_ledger_rejects_comes_back_typed() {
    let mut t = testnet(4, 4, 1, 1);
    let client: NodeId = t.clients[0];
    t.net.run_until(
        Timestamp::from_micros(1_000_000),
        Duration::from_millis(10),
        |_| false,
    );
    let now = t.net.now();
    // 65 lots: the marketplace takes at most 64.
    let spec = job(3, 65, now);
    t.net
        .client_mut(&client)
        .unwrap()
        .post_job(now, spec)
        .unwrap();
    let got = t.net.run_until(
        now + Duration::from_secs(10),
        Duration::from_millis(10),
        |e| matches!(e, LocalEvent::Client(_, ClientEvent::Rejected { .. })),
    );
    assert!(got, "the rejection came back");
    let ev = t.net.take_events();
    let r = ev
        .iter()
        .find_map(|e| match e {
            LocalEvent::Client(_, ClientEvent::Rejected { reason, .. }) => Some(reason.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(r.kind, RejectionKind::Market, "{r:?}");
    // The marketplace's own error, typed, from the receipt.
    assert_eq!(
        r.market,
        Some(MarketError::JobShape {
            lots: 65,
            max_slots_per_lot: 64,
        }),
        "{r:?}"
    );
    assert!(r.detail.contains("lots"), "{}", r.detail);
    // The refused job is not left open: the client forgot it, and its id
    // may be posted again (and this time the job runs to the end).
    let c = t.net.client_mut(&client).unwrap();
    assert_eq!(c.open_jobs(), 0, "a refused job is not open");
    let events = run_job(&mut t, job(3, 1, now));
    assert!(
        events.iter().any(|e| matches!(
            e,
            LocalEvent::Client(_, ClientEvent::JobClosed { job: 3, .. })
        )),
        "the id was posted again and the job closed"
    );
}

#[test]
fn a_provider_seals_one_ask_per_batch_reveals_every_one_and_stops_when_told() {
    let mut t = testnet(3, 4, 1, 1);
    let tick = Duration::from_millis(10);
    let p = t.providers[0];
    let nonce = |t: &Testnet| {
        let v = t.net.validator(&t.validators[0]).unwrap();
        v.ledger().nonce(&p.account()).get()
    };
    t.net
        .run_until(Timestamp::from_micros(10_000_000), tick, |_| false);
    // The offer, then one sealing transaction per 500 ms batch (each
    // reveal carries the next ask), none forfeited.
    let asked = nonce(&t);
    assert!((8..=25).contains(&asked), "{asked} transactions in 10 s");
    let v = t.net.validator(&t.validators[0]).unwrap();
    assert!(v.ledger().burned().is_zero(), "every ask was revealed");
    let now = t.net.now();
    match t.net.node_mut(&p) {
        Some(LocalNode::Provider(node, _)) => node.set_ask(now, None),
        _ => panic!("a provider"),
    }
    // The ask already sealed is still revealed; then it stays quiet.
    t.net
        .run_until(now + Duration::from_secs(3), tick, |_| false);
    let settled = nonce(&t);
    t.net
        .run_until(now + Duration::from_secs(6), tick, |_| false);
    assert_eq!(nonce(&t), settled, "no ask after set_ask(None)");
    let v = t.net.validator(&t.validators[0]).unwrap();
    assert!(v.ledger().burned().is_zero());
    assert_eq!(v.market().sealed().len(), 0, "nothing left sealed");
    digests_agree(&t);
}

/// A light node learns its holdings without touching them (a wallet asking
/// its balance), and a plain transfer's fate and the new holdings come back
/// f + 1-backed.
#[test]
fn a_client_reads_its_holdings_and_pays_through_the_light_protocol() {
    let mut t = testnet(3, 4, 1, 1);
    let client = t.clients[0];
    let now = t.net.now();
    t.net.client_mut(&client).unwrap().request_holdings();
    t.net.run_until(
        now + Duration::from_secs(5),
        Duration::from_millis(10),
        |_| false,
    );
    let held = *t
        .net
        .client_mut(&client)
        .unwrap()
        .core()
        .holdings()
        .expect("holdings reported");
    assert_eq!(held.account, client.account());
    assert!(held.balance > Amount::ZERO);

    let to = t.providers[0].account();
    assert!(pay(&mut t, to, 1_234), "the transfer's fate came back");
    let after = *t
        .net
        .client_mut(&client)
        .unwrap()
        .core()
        .holdings()
        .unwrap();
    assert_eq!(after.balance.get(), held.balance.get() - 1_234);
    // More than it has: a typed rejection, not silence.
    let now = t.net.now();
    let too_much = idlegrid_dag_ledger::ledger::TxKind::Transfer {
        to,
        amount: Amount::new(u128::from(u64::MAX)),
    };
    t.net
        .client_mut(&client)
        .unwrap()
        .submit_ledger(now, too_much)
        .unwrap();
    let rejected = t.net.run_until(
        now + Duration::from_secs(10),
        Duration::from_millis(10),
        |e| {
            matches!(
                e,
                LocalEvent::Client(_, ClientEvent::LedgerRejected { reason, .. })
                    if reason.kind == RejectionKind::Funds
            )
        },
    );
    assert!(rejected, "the overdraft came back typed");

    // The same key in a new process that does not know its nonce (a second
    // `job submit`): it learns it from its holdings, then signs.
    let key = idlegrid_node::local::testnet_keys(3, 4, 1, 1)[2][0].clone();
    let committee = Committee::equal(t.validators.iter().copied()).unwrap();
    let mut setup = idlegrid_node::local::light_setup(&key, &committee, 0);
    setup.next_nonce = None;
    let policy = idlegrid_node::client::TrapPolicy {
        cost_per_subtask: Amount::new(250),
        stake: Amount::new(idlegrid_node::local::TESTNET_STAKE),
        price_to_pay_divisor: 20,
    };
    let again = idlegrid_node::client::ClientNode::new(
        setup,
        policy,
        Box::new(idlegrid_node::local::ReferenceTraps),
        Seed::from_u64(9),
    );
    t.net.add(client, LocalNode::Client(Box::new(again)));
    let now = t.net.now();
    let pay = idlegrid_dag_ledger::ledger::TxKind::Transfer {
        to,
        amount: Amount::new(1),
    };
    t.net
        .client_mut(&client)
        .unwrap()
        .submit_ledger(now, pay)
        .unwrap();
    let applied = t.net.run_until(
        now + Duration::from_secs(20),
        Duration::from_millis(10),
        |e| matches!(e, LocalEvent::Client(_, ClientEvent::Applied { .. })),
    );
    assert!(applied, "signed with the learnt nonce and applied");
    let last = *t
        .net
        .client_mut(&client)
        .unwrap()
        .core()
        .holdings()
        .unwrap();
    assert_eq!(last.nonce, 2, "a transfer, a refused overdraft, a transfer");
    digests_agree(&t);
}

/// A validator keeps the facts of its last commits and replays those about
/// a new subscriber's account when asked (what the sources a light node's
/// fact window widens to are asked), in commit order, and only to a node
/// not subscribed already (a subscriber heard them as they committed).
#[test]
fn a_new_fact_source_replays_the_kept_facts_once() {
    use idlegrid_node::wire::{Fact, GatewayRequest, NodeMessage};
    use idlegrid_primitives::Machine;
    let mut t = testnet(3, 4, 1, 1);
    let newcomer = idlegrid_primitives::Keypair::from_seed(&Seed::from_u64(4_242));
    assert!(
        pay(&mut t, newcomer.account_id(), 1_234),
        "the transfer applied"
    );
    let now = t.net.now();
    let v = t.net.validator_mut(&t.validators[0]).unwrap();
    while v.poll_transmit().is_some() {}
    let replay = |v: &mut ValidatorNode, from: u64| {
        let req = NodeMessage::Gateway(GatewayRequest::SubscribeFrom(from));
        v.handle_message(now, newcomer.node_id(), req);
        std::iter::from_fn(|| v.poll_transmit())
            .filter_map(|t| match t.msg {
                NodeMessage::Facts(b) => Some(b),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let batches = replay(v, 0);
    let credited = |b: &idlegrid_node::wire::FactBatch| {
        b.facts.iter().any(|f| {
            matches!(f, Fact::Balance(a)
                if a.account == newcomer.account_id() && a.balance == Amount::new(1_234))
        })
    };
    assert_eq!(
        batches.iter().filter(|b| credited(b)).count(),
        1,
        "{batches:?}"
    );
    assert!(batches.windows(2).all(|w| w[0].index < w[1].index));
    let credit = batches.iter().find(|b| credited(b)).unwrap().index;
    // Subscribed now: asking again replays nothing.
    assert!(replay(v, 0).is_empty());
    // A fresh validator asked from after the credit replays nothing of it.
    let w = t.net.validator_mut(&t.validators[1]).unwrap();
    while w.poll_transmit().is_some() {}
    assert!(!replay(w, credit + 1).iter().any(credited));
}

/// A testnet whose light nodes take certified facts from validator 0
/// alone, a [`WithholdingGateway`](idlegrid_node::byzantine::WithholdingGateway)
/// (returned).
fn withholding_testnet() -> (Testnet, NodeId) {
    use idlegrid_node::byzantine::WithholdingGateway;
    use idlegrid_node::light::FactDelivery;
    let global = FactDelivery::Certified {
        sources: 1,
        patience: Duration::from_secs(3),
    };
    let mut t = testnet_with(3, [4, 1, 1], global);
    let inner = honest_validator_0(&t);
    let withholder = t.validators[0];
    *t.net.node_mut(&withholder).unwrap() =
        LocalNode::Other(Box::new(WithholdingGateway::new(inner)));
    (t, withholder)
}

#[test]
fn a_gateway_withholding_the_facts_to_act_on_costs_nobody_their_lot() {
    // Both light nodes take certified facts from validator 0 alone, which
    // serves them every leaf but those with a match, an opening, a
    // delivery or an accusation: never silent, so only the nodes'
    // expectations (inputs came but no opening; a job that heard nothing
    // for the patience) can find the withheld facts, at other validators.
    // The testnet commits every few tens of ms, so a validator keeps the
    // certificates of the last second or two, less than the patience: the
    // nodes ask again every 32 commits instead.
    let (mut t, _withholder) = withholding_testnet();
    let ev = run_job(&mut t, job(9, 1, Timestamp::ZERO + Duration::from_secs(2)));
    let s = settlements(&ev);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].outcome, Outcome::Clean, "delivered, checked, paid");
    assert!(s[0].slashed.is_zero() && s[0].bond_forfeited.is_zero());
    let (p, c) = (t.providers[0], t.clients[0]);
    let asked = t.net.provider_mut(&p).unwrap().core().suspicions();
    assert!(asked > 0, "the provider asked others");
    let asked = t.net.client_mut(&c).unwrap().core().suspicions();
    assert!(asked > 0, "the client asked others");
    digests_agree(&t);
}

#[test]
fn a_source_caught_withholding_is_replaced() {
    // As above: validator 0 alone sends both light nodes certified facts
    // and withholds the ones they must act on. The replays that find the
    // first job's withheld leaves show that validator 0 sent certificates
    // of commits before and after them without them: each node replaces it,
    // and a later job needs no replay.
    let (mut t, withholder) = withholding_testnet();
    let (p, c) = (t.providers[0], t.clients[0]);
    let first = run_job(&mut t, job(9, 1, Timestamp::ZERO + Duration::from_secs(2)));
    assert_eq!(settlements(&first)[0].outcome, Outcome::Clean);
    let caught = |t: &mut Testnet| {
        let pc = t.net.provider_mut(&p).unwrap().core();
        let pw: Vec<_> = pc.withholders().copied().collect();
        let cc = t.net.client_mut(&c).unwrap().core();
        let cw: Vec<_> = cc.withholders().copied().collect();
        (pw, cw)
    };
    let asked = |t: &mut Testnet| {
        let a = t.net.provider_mut(&p).unwrap().core().suspicions();
        a + t.net.client_mut(&c).unwrap().core().suspicions()
    };
    let first_asks = asked(&mut t);
    let now = t.net.now();
    let second = run_job(&mut t, job(10, 1, now));
    assert_eq!(settlements(&second)[0].outcome, Outcome::Clean);
    assert_eq!(caught(&mut t), (vec![withholder], vec![withholder]));
    let before = asked(&mut t);
    let now = t.net.now();
    let third = run_job(&mut t, job(11, 1, now));
    let s = settlements(&third);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].outcome, Outcome::Clean, "delivered, checked, paid");
    assert!(first_asks > 0);
    assert_eq!(asked(&mut t), before, "no fact of the third job withheld");
    digests_agree(&t);
}
