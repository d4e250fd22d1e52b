//! The marketplace application on hand-built ledger batches: a job from
//! post to settlement with no keeper transactions (clearing and deadlines
//! run in the ledger's end-of-batch hook), a provider caught on a trap, a
//! framing client losing its bond, and a silent provider defaulting.

use idlegrid_dag_ledger::ledger::{
    Genesis, Host, Ledger, NoEvidence, Nonce, Params, SignatureCheck, Transaction, TxKind,
    check_all,
};
use idlegrid_entrap::{JobPlan, Outcome, TrapSpec, Verdict, output_commitment};
use idlegrid_market::{JobGoods, KDouble};
use idlegrid_node::batch::batch_context;
use idlegrid_node::market::{
    Apps, JobRequest, MARKETPLACE_APP, MarketRules, MarketTx, MarketplaceApp, Notice, Settlement,
    round_id,
};
use idlegrid_primitives::{
    AccountId, Amount, Digest, Domain, Duration, Keypair, Salt, Seed, Timestamp, encode,
};
use idlegrid_reputation::Role as RepRole;

const TRUTH: Domain = Domain::new("idlegrid/node/test/truth");
const STAKE: u128 = 10_000;
const BOND: u128 = 2_000;

fn truth(x: &Digest) -> Digest {
    Digest::of(TRUTH, x)
}

struct World {
    ledger: Ledger,
    apps: Apps,
    now: Timestamp,
    provider: Keypair,
    client: Keypair,
    referees: Vec<Keypair>,
    nonces: std::collections::BTreeMap<AccountId, u64>,
    notices: Vec<Notice>,
}

impl World {
    fn new() -> Self {
        let key = |i: u64| Keypair::from_seed(&Seed::from_u64(i));
        let (provider, client) = (key(1), key(2));
        let referees: Vec<Keypair> = (10..13).map(key).collect();
        let mut balances = vec![
            (provider.account_id(), Amount::new(1_000_000)),
            (client.account_id(), Amount::new(100_000_000)),
        ];
        balances.extend(
            referees
                .iter()
                .map(|r| (r.account_id(), Amount::new(1_000_000))),
        );
        let genesis = Genesis {
            balances,
            stakes: vec![
                (provider.account_id(), Amount::new(STAKE * 2)),
                (client.account_id(), Amount::new(BOND * 10)),
            ],
            params: Params::default(),
        };
        let rules = MarketRules {
            stake_per_slot: Amount::new(STAKE),
            slash_to_client_bps: 5_000,
            stage_deadline: Duration::from_secs(5),
            clearing_period: Duration::from_secs(1),
            committee_size: 3,
            referees: referees.iter().map(Keypair::node_id).collect(),
            book: Default::default(),
            reputation_epoch_secs: 10,
        };
        let market =
            MarketplaceApp::new(rules, Box::new(KDouble::new(5_000).unwrap()), true).unwrap();
        Self {
            ledger: Ledger::new(genesis).unwrap(),
            apps: Apps { market },
            now: Timestamp::ZERO,
            provider,
            client,
            referees,
            nonces: Default::default(),
            notices: Vec::new(),
        }
    }

    /// Applies one batch `step_ms` later; every transaction must apply.
    fn batch(&mut self, step_ms: u64, txs: Vec<(Keypair, MarketTx)>) {
        self.now = self.now + Duration::from_millis(step_ms);
        let signed: Vec<Vec<u8>> = txs
            .into_iter()
            .map(|(k, p)| {
                let n = self.nonces.entry(k.account_id()).or_default();
                *n += 1;
                Transaction {
                    chain: self.ledger.params().chain_id,
                    sender: k.account_id(),
                    nonce: Nonce::new(*n - 1),
                    kind: TxKind::App {
                        app_id: MARKETPLACE_APP,
                        payload: encode(&p),
                    },
                }
                .sign(&k)
                .to_bytes()
            })
            .collect();
        let ctx = batch_context(self.now, 1, self.ledger.epoch());
        let mut host = Host {
            apps: &mut self.apps,
            evidence: &NoEvidence,
            signatures: SignatureCheck::Single,
        };
        let r = self.ledger.apply_batch(ctx, &signed, &mut host).unwrap();
        for rc in &r.receipts {
            assert!(rc.is_ok(), "transaction rejected: {rc:?}");
        }
        check_all(&self.ledger).expect("ledger invariants");
        assert_eq!(self.apps.market.effect_failures(), 0);
        self.notices.extend(self.apps.market.drain_notices());
    }

    fn settlement(&self) -> Option<&Settlement> {
        self.notices.iter().find_map(|n| match n {
            Notice::Settled(s) => Some(s),
            _ => None,
        })
    }

    fn wealth(&self, k: &Keypair) -> u128 {
        let a = self.ledger.account(&k.account_id()).unwrap();
        a.balance.get() + a.bonded.get()
    }

    /// Offer and post a one-lot job; empty batches until the clearing
    /// (end-of-batch, no tick transaction) matches it.
    fn matched_lot(&mut self) {
        let offer = MarketTx::Offer {
            price: Amount::new(100),
            capacity: 1,
            stake_per_slot: Amount::new(STAKE),
            region: 0,
        };
        let job = MarketTx::PostJob(JobRequest {
            job: 0,
            lots: 1,
            max_slots_per_lot: 8,
            max_price: Amount::new(200),
            cap_micros_per_subtask: 1_000_000,
            min_reputation_bps: 0,
            client_bond: Amount::new(BOND),
            deadline: Timestamp::from_micros(60_000_000),
            goods: JobGoods::none(),
        });
        self.batch(
            100,
            vec![(self.provider.clone(), offer), (self.client.clone(), job)],
        );
        for _ in 0..20 {
            if self
                .notices
                .iter()
                .any(|n| matches!(n, Notice::Matched { .. }))
            {
                return;
            }
            self.batch(100, vec![]);
        }
        panic!("no clearing without tick transactions: {:?}", self.notices);
    }

    /// Plans the lot with 3 real subtasks and 2 traps; `frame` plants a
    /// wrong expected answer on the first trap.
    fn plan(&mut self, frame: bool) -> JobPlan {
        let input = |i: u64| Digest::of(Domain::new("idlegrid/node/test/input"), &i);
        let traps = (0..2)
            .map(|i| {
                let x = input(100 + i);
                let expected = if frame && i == 0 {
                    input(999)
                } else {
                    truth(&x)
                };
                TrapSpec::precomputed(x, expected)
            })
            .collect();
        let plan = JobPlan::builder(round_id(0, 0))
            .real_inputs((0..3).map(input).collect())
            .traps(traps)
            .seed(Seed::from_u64(7))
            .build()
            .unwrap();
        let tx = MarketTx::Plan {
            job: 0,
            lot: 0,
            plan: plan.public().clone(),
        };
        self.batch(100, vec![(self.client.clone(), tx)]);
        plan
    }

    /// The provider delivers; `cheat` answers every subtask wrongly.
    fn deliver(&mut self, plan: &JobPlan, cheat: bool) -> Vec<Digest> {
        let outputs: Vec<Digest> = plan
            .public()
            .slot_inputs
            .iter()
            .map(|x| {
                if cheat {
                    Digest::of(TRUTH, &(x, 1u8))
                } else {
                    truth(x)
                }
            })
            .collect();
        let salt = Salt::from_bytes([5; 32]);
        let tx = MarketTx::Deliver {
            client: self.client.account_id(),
            job: 0,
            lot: 0,
            commitment: output_commitment(round_id(0, 0), &outputs, &salt),
            outputs: outputs.clone(),
            salt,
            usage_micros: 2_000_000,
        };
        self.batch(100, vec![(self.provider.clone(), tx)]);
        outputs
    }

    fn verify(&mut self, plan: &JobPlan, outputs: &[Digest]) {
        let tx = MarketTx::Verify {
            job: 0,
            lot: 0,
            reveal: plan.trap_reveal(vec![]),
            accuse: plan.wrong_traps(outputs).unwrap(),
        };
        self.batch(100, vec![(self.client.clone(), tx)]);
    }

    fn idle_until_settled(&mut self) -> Settlement {
        for _ in 0..200 {
            if let Some(s) = self.settlement() {
                return s.clone();
            }
            self.batch(100, vec![]);
        }
        panic!("round never settled: {:?}", self.notices);
    }
}

#[test]
fn a_clean_job_settles_and_pays_without_keeper_ticks() {
    let mut w = World::new();
    let supply = w.ledger.total_supply();
    let before = w.wealth(&w.provider);
    w.matched_lot();
    let plan = w.plan(false);
    let outputs = w.deliver(&plan, false);
    w.verify(&plan, &outputs);
    let s = w.idle_until_settled();
    assert_eq!(s.outcome, Outcome::Clean);
    let price = w
        .notices
        .iter()
        .find_map(|n| match n {
            Notice::Matched { price, .. } => Some(*price),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        price,
        Amount::new(150),
        "k-double, k = 1/2, between 100 and 200"
    );
    assert_eq!(s.paid, Amount::new(300), "price × 2 s metered");
    assert!(s.slashed.is_zero() && s.bond_forfeited.is_zero());
    assert_eq!(w.wealth(&w.provider), before + 300);
    assert!(
        w.notices
            .iter()
            .any(|n| matches!(n, Notice::JobClosed { .. }))
    );
    assert_eq!(w.ledger.total_supply(), supply);
    assert_eq!(w.apps.market.open_jobs(), 0);
}

#[test]
fn a_provider_caught_on_a_trap_loses_its_stake() {
    let mut w = World::new();
    let (client0, provider0) = (w.wealth(&w.client), w.wealth(&w.provider));
    w.matched_lot();
    let plan = w.plan(false);
    let outputs = w.deliver(&plan, true);
    w.verify(&plan, &outputs);
    let accused = w
        .notices
        .iter()
        .any(|n| matches!(n, Notice::Accused { .. }));
    assert!(accused, "the client accused the cheater");
    let tx = MarketTx::Accept {
        client: w.client.account_id(),
        job: 0,
        lot: 0,
    };
    w.batch(100, vec![(w.provider.clone(), tx)]);
    let s = w.idle_until_settled();
    assert_eq!(s.outcome, Outcome::Admitted);
    assert!(s.paid.is_zero());
    assert!(!s.slashed.is_zero());
    assert_eq!(w.wealth(&w.provider), provider0 - s.slashed.get());
    assert!(w.wealth(&w.client) > client0, "the client gets its share");
    // The verdict reached the book as negative evidence on the provider.
    let node = w.provider.account_id().node();
    let state = w
        .apps
        .market
        .book()
        .state(&node, RepRole::Provider)
        .unwrap();
    assert!(state.negative > state.positive, "{state:?}");
}

#[test]
fn a_framing_client_loses_its_bond_to_the_provider() {
    let mut w = World::new();
    let provider0 = w.wealth(&w.provider);
    w.matched_lot();
    let plan = w.plan(true);
    let outputs = w.deliver(&plan, false);
    w.verify(&plan, &outputs);
    let tx = MarketTx::Dispute {
        client: w.client.account_id(),
        job: 0,
        lot: 0,
    };
    w.batch(100, vec![(w.provider.clone(), tx)]);
    let (committee, disputed) = w
        .notices
        .iter()
        .find_map(|n| match n {
            Notice::DisputeOpened {
                committee,
                disputed,
                ..
            } => Some((committee.clone(), disputed.clone())),
            _ => None,
        })
        .expect("dispute opened");
    // Every referee re-executes the disputed trap and votes.
    let votes = w
        .referees
        .iter()
        .filter(|r| committee.contains(&r.node_id()))
        .map(|r| {
            let outputs = disputed.iter().map(|d| truth(&d.trap.input)).collect();
            let tx = MarketTx::Vote {
                client: w.client.account_id(),
                job: 0,
                lot: 0,
                outputs,
            };
            (r.clone(), tx)
        })
        .collect();
    w.batch(100, votes);
    let s = w.idle_until_settled();
    assert_eq!(s.outcome, Outcome::Judged(Verdict::ClientFramed));
    assert_eq!(s.bond_forfeited, Amount::new(BOND));
    assert!(s.slashed.is_zero());
    assert!(w.wealth(&w.provider) >= provider0 + BOND, "bond and pay");
}

#[test]
fn a_silent_provider_defaults_when_its_deadline_passes_in_an_empty_batch() {
    let mut w = World::new();
    w.matched_lot();
    let _plan = w.plan(false);
    // Nobody sends anything: the stage deadline fires at the end of an
    // empty batch.
    let s = w.idle_until_settled();
    assert_eq!(s.outcome, Outcome::ProviderDefaulted);
    assert!(s.paid.is_zero());
}

#[test]
fn a_rejected_transaction_changes_nothing() {
    let mut w = World::new();
    w.matched_lot();
    let digest = w.ledger.state_digest();
    // A delivery for a lot that has no open round (no plan yet).
    let tx = Transaction {
        chain: w.ledger.params().chain_id,
        sender: w.provider.account_id(),
        nonce: Nonce::new(w.nonces[&w.provider.account_id()]),
        kind: TxKind::App {
            app_id: MARKETPLACE_APP,
            payload: encode(&MarketTx::Accept {
                client: w.client.account_id(),
                job: 0,
                lot: 0,
            }),
        },
    }
    .sign(&w.provider)
    .to_bytes();
    let ctx = batch_context(w.now, 1, w.ledger.epoch());
    let mut host = Host {
        apps: &mut w.apps,
        evidence: &NoEvidence,
        signatures: SignatureCheck::Single,
    };
    let r = w.ledger.apply_batch(ctx, &[tx], &mut host).unwrap();
    let err = r.receipts[0].as_ref().unwrap_err();
    assert!(err.to_string().contains("no open round"), "{err}");
    assert_eq!(w.ledger.state_digest(), digest);
    // Garbage payloads are typed rejections too.
    let junk = Transaction {
        chain: w.ledger.params().chain_id,
        sender: w.provider.account_id(),
        nonce: Nonce::new(w.nonces[&w.provider.account_id()]),
        kind: TxKind::App {
            app_id: MARKETPLACE_APP,
            payload: vec![0xff; 40],
        },
    }
    .sign(&w.provider)
    .to_bytes();
    let mut host = Host {
        apps: &mut w.apps,
        evidence: &NoEvidence,
        signatures: SignatureCheck::Single,
    };
    let r = w.ledger.apply_batch(ctx, &[junk], &mut host).unwrap();
    assert!(r.receipts[0].is_err());
    assert_eq!(w.ledger.state_digest(), digest);
}
