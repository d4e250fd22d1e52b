//! A hand-built ledger with the marketplace application: one provider, one
//! client, three referees, batches applied by hand (shared by the
//! integration tests).
#![allow(dead_code)]

use idlegrid_dag_ledger::ledger::{
    Genesis, Host, Ledger, LedgerError, Nonce, Params, Receipt, SignatureCheck, Transaction,
    TxKind, check_all,
};
use idlegrid_entrap::{DisputedTrap, JobPlan, RefereeTicket, TrapSpec, output_commitment};
use idlegrid_market::{ExecutorKind, Features, JobGoods, KDouble};
use idlegrid_node::batch::batch_context;
use idlegrid_node::market::sealing::Sealer;
use idlegrid_node::market::{
    Apps, Environment, JobRequest, MARKETPLACE_APP, MarketParams, MarketRules, MarketTx,
    MarketplaceApp, Notice, Settlement, round_id,
};
use idlegrid_primitives::{
    AccountId, Amount, Digest, Domain, Duration, Keypair, NodeId, Salt, Seed, Timestamp, encode,
};

pub const TRUTH: Domain = Domain::new("idlegrid/node/test/truth");
pub const STAKE: u128 = 10_000;
pub const BOND: u128 = 2_000;
pub const SEAL_BOND: u128 = 300;
pub const REFEREE_FEE: u128 = 100;

pub fn truth(x: &Digest) -> Digest {
    Digest::of(TRUTH, x)
}

/// The provider's one-slot offer.
pub fn offer() -> MarketTx {
    MarketTx::Offer {
        capacity: 1,
        stake_per_slot: Amount::new(STAKE),
        region: 0,
        environment: Environment::simulated(),
    }
}

pub struct World {
    pub ledger: Ledger,
    pub apps: Apps,
    pub now: Timestamp,
    pub provider: Keypair,
    pub client: Keypair,
    pub referees: Vec<Keypair>,
    pub nonces: std::collections::BTreeMap<AccountId, u64>,
    pub notices: Vec<Notice>,
    /// Notices already fed to the sealers.
    pub seen: usize,
    /// The provider's and the client's sealers.
    pub sealers: [Sealer; 2],
}

impl World {
    pub fn new() -> Self {
        let key = |i: u64| Keypair::from_seed(&Seed::from_u64(i));
        let (provider, client) = (key(1), key(2));
        let referees: Vec<Keypair> = (10..17).map(key).collect();
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
                (provider.account_id(), Amount::new(STAKE * 3)),
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
            global_trust: None,
        };
        let params = MarketParams {
            seal_bond: Amount::new(SEAL_BOND),
            reveal_batches: 1,
            reveal_commits: 1,
            ticket_window: Duration::from_secs(1),
            max_escalations: 2,
            referee_fee: Amount::new(REFEREE_FEE),
        };
        let market = MarketplaceApp::new(rules, Box::new(KDouble::new(5_000).unwrap()), true)
            .unwrap()
            .with_params(params);
        Self {
            ledger: Ledger::new(genesis).unwrap(),
            apps: Apps { market },
            now: Timestamp::ZERO,
            referees,
            nonces: Default::default(),
            notices: Vec::new(),
            seen: 0,
            sealers: [
                Sealer::new(provider.account_id(), Seed::from_u64(50), 1),
                Sealer::new(client.account_id(), Seed::from_u64(51), 1),
            ],
            provider,
            client,
        }
    }

    /// Applies one batch `step_ms` later; every transaction must apply.
    pub fn batch(&mut self, step_ms: u64, txs: Vec<(Keypair, MarketTx)>) {
        for rc in self.try_batch(step_ms, txs) {
            assert!(rc.is_ok(), "transaction rejected: {rc:?}");
        }
    }

    /// Applies one batch `step_ms` later and returns its receipts (a
    /// rejected transaction does not use its nonce).
    pub fn try_batch(
        &mut self,
        step_ms: u64,
        txs: Vec<(Keypair, MarketTx)>,
    ) -> Vec<Result<Receipt, LedgerError>> {
        self.now = self.now + Duration::from_millis(step_ms);
        let mut next = self.nonces.clone();
        let signed: Vec<Vec<u8>> = txs
            .iter()
            .map(|(k, p)| {
                let n = next.entry(k.account_id()).or_default();
                *n += 1;
                self.sign_with(k, p, *n - 1)
            })
            .collect();
        let ctx = batch_context(self.now, 1, self.ledger.epoch(), self.beacon());
        let mut host = Host {
            signatures: SignatureCheck::Single,
            ..Host::default_for(&mut self.apps)
        };
        let r = self.ledger.apply_batch(ctx, &signed, &mut host).unwrap();
        for (k, _) in &txs {
            let n = self.ledger.nonce(&k.account_id()).get();
            self.nonces.insert(k.account_id(), n);
        }
        check_all(&self.ledger).expect("ledger invariants");
        (self.apps.market.check_lots(&self.ledger)).expect("lots and slots accounted for");
        assert_eq!(self.apps.market.effect_failures(), 0);
        self.notices.extend(self.apps.market.drain_notices());
        r.receipts
    }

    /// The batch's committed randomness (a hash of its time here; the
    /// reference node takes the commit's digest).
    pub fn beacon(&self) -> Digest {
        Digest::of(Domain::new("idlegrid/node/test/beacon"), &self.now)
    }

    /// `k`'s marketplace transaction with its next nonce.
    pub fn sign(&self, k: &Keypair, p: &MarketTx) -> Vec<u8> {
        let n = self.nonces.get(&k.account_id()).copied().unwrap_or(0);
        self.sign_with(k, p, n)
    }

    fn sign_with(&self, k: &Keypair, p: &MarketTx, n: u64) -> Vec<u8> {
        Transaction {
            chain: self.ledger.params().chain_id,
            sender: k.account_id(),
            nonce: Nonce::new(n),
            kind: TxKind::App {
                app_id: MARKETPLACE_APP,
                payload: encode(p),
            },
        }
        .sign(k)
        .to_bytes()
    }

    /// Feeds new notices to the provider's and client's sealers; returns
    /// the reveals and re-seals they want sent.
    pub fn follow(&mut self) -> Vec<(Keypair, MarketTx)> {
        let mut out = Vec::new();
        for n in &self.notices[self.seen..] {
            for (i, k) in [&self.provider, &self.client].into_iter().enumerate() {
                for tx in self.sealers[i].handle_notice(n) {
                    out.push((k.clone(), tx));
                }
            }
        }
        self.seen = self.notices.len();
        out
    }

    /// A one-lot job request whose bid is sealed at `max_price`.
    pub fn job(&mut self, job: u64, max_price: u128) -> MarketTx {
        MarketTx::PostJob(JobRequest {
            job,
            lots: 1,
            max_slots_per_lot: 8,
            commitment: self.sealers[1].seal_bid(job, Amount::new(max_price)),
            cap_micros_per_subtask: 1_000_000,
            min_reputation_bps: 0,
            client_bond: Amount::new(BOND),
            deadline: Timestamp::from_micros(60_000_000),
            goods: JobGoods::none(),
            executor: ExecutorKind::Simulated,
            requires: Features::NONE,
        })
    }

    /// Every referee's ticket for the last ticket window.
    pub fn tickets(&self) -> Vec<(Keypair, MarketTx)> {
        let Some(randomness) = self.notices.iter().rev().find_map(|n| match n {
            Notice::TicketWindow { randomness, .. } => Some(*randomness),
            _ => None,
        }) else {
            return Vec::new();
        };
        self.referees
            .iter()
            .map(|r| {
                let ticket = RefereeTicket::draw(r, &randomness);
                let tx = MarketTx::Ticket {
                    client: self.client.account_id(),
                    job: 0,
                    lot: 0,
                    ticket,
                };
                (r.clone(), tx)
            })
            .collect()
    }

    /// The last seated committee (level, members, disputed traps), if any
    /// after notice `from`.
    pub fn seated(&self, from: usize) -> Option<(u8, Vec<NodeId>, Vec<DisputedTrap>)> {
        self.notices[from..].iter().rev().find_map(|n| match n {
            Notice::DisputeOpened {
                level,
                committee,
                disputed,
                ..
            } => Some((*level, committee.clone(), disputed.clone())),
            _ => None,
        })
    }

    /// The provider disputes lot 0; every referee sends a ticket; empty
    /// batches until the committee is seated.
    pub fn dispute_until_seated(&mut self) -> (Vec<NodeId>, Vec<DisputedTrap>) {
        let tx = MarketTx::Dispute {
            client: self.client.account_id(),
            job: 0,
            lot: 0,
        };
        self.batch(100, vec![(self.provider.clone(), tx)]);
        self.seat_next(0)
    }

    /// Waits for the ticket window of `level`, every referee sends a
    /// ticket; empty batches until that committee is seated.
    pub fn seat_next(&mut self, level: u8) -> (Vec<NodeId>, Vec<DisputedTrap>) {
        let window = |n: &Notice| matches!(n, Notice::TicketWindow { level: l, .. } if *l == level);
        self.run_until(window);
        let from = self.notices.len();
        let tickets = self.tickets();
        self.batch(100, tickets);
        for _ in 0..40 {
            if let Some((l, c, d)) = self.seated(from)
                && l == level
            {
                return (c, d);
            }
            self.batch(100, vec![]);
        }
        panic!("no committee seated: {:?}", &self.notices[from..]);
    }

    /// Votes of `voters` (true outputs) for lot 0's disputed traps.
    pub fn votes(&self, voters: &[NodeId], disputed: &[DisputedTrap]) -> Vec<(Keypair, MarketTx)> {
        self.referees
            .iter()
            .filter(|r| voters.contains(&r.node_id()))
            .map(|r| {
                let outputs = disputed.iter().map(|d| truth(&d.trap.input)).collect();
                let tx = MarketTx::Vote {
                    client: self.client.account_id(),
                    job: 0,
                    lot: 0,
                    outputs,
                };
                (r.clone(), tx)
            })
            .collect()
    }

    /// Empty batches (sending what the sealers want) until `done` holds
    /// for a notice.
    pub fn run_until(&mut self, done: impl Fn(&Notice) -> bool) {
        for _ in 0..100 {
            if self.notices.iter().any(&done) {
                return;
            }
            let txs = self.follow();
            self.batch(100, txs);
        }
        panic!("condition never met: {:?}", self.notices);
    }

    pub fn settlement(&self) -> Option<&Settlement> {
        self.notices.iter().find_map(|n| match n {
            Notice::Settled(s) => Some(s),
            _ => None,
        })
    }

    pub fn wealth(&self, k: &Keypair) -> u128 {
        let a = self.ledger.account(&k.account_id()).unwrap();
        a.balance.get() + a.bonded.get()
    }

    /// Offer and post a one-lot job, both sealed (ask 100, bid 200);
    /// empty batches until the batch closes, the sealers reveal and the
    /// clearing (end-of-batch, no tick transaction) matches it.
    pub fn matched_lot(&mut self) {
        let offer = offer();
        let ask = self.sealers[0].seal_ask(Amount::new(100));
        let job = self.job(0, 200);
        self.batch(
            100,
            vec![
                (self.provider.clone(), offer),
                (self.provider.clone(), ask),
                (self.client.clone(), job),
            ],
        );
        self.run_until(|n| matches!(n, Notice::Matched { .. }));
    }

    /// Plans the lot with 3 real subtasks and 2 traps; `frame` plants a
    /// wrong expected answer on the first trap.
    pub fn plan(&mut self, frame: bool) -> JobPlan {
        let (plan, tx) = Self::plan_tx(frame);
        self.batch(100, vec![(self.client.clone(), tx)]);
        plan
    }

    /// The plan of [`World::plan`] and its transaction, unsent.
    pub fn plan_tx(frame: bool) -> (JobPlan, MarketTx) {
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
        (plan, tx)
    }

    /// The provider delivers; `cheat` answers every subtask wrongly.
    pub fn deliver(&mut self, plan: &JobPlan, cheat: bool) -> Vec<Digest> {
        self.deliver_after(100, plan, cheat)
    }

    /// [`World::deliver`] in a batch `step_ms` after the last.
    pub fn deliver_after(&mut self, step_ms: u64, plan: &JobPlan, cheat: bool) -> Vec<Digest> {
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
        self.batch(step_ms, vec![(self.provider.clone(), tx)]);
        outputs
    }

    pub fn verify(&mut self, plan: &JobPlan, outputs: &[Digest]) {
        let tx = MarketTx::Verify {
            job: 0,
            lot: 0,
            reveal: plan.trap_reveal(vec![]),
            accuse: plan.wrong_traps(outputs).unwrap(),
        };
        self.batch(100, vec![(self.client.clone(), tx)]);
    }

    pub fn idle_until_settled(&mut self) -> Settlement {
        for _ in 0..200 {
            if let Some(s) = self.settlement() {
                return s.clone();
            }
            self.batch(100, vec![]);
        }
        panic!("round never settled: {:?}", self.notices);
    }
}
