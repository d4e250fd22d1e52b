//! `wasm_referee`: a disputed trap settled by deterministic re-execution on
//! [`WasmExecutor`](idlegrid_executor::WasmExecutor), on the reference node.
//!
//! Two cases, each on its own in-process network ([`crate::network`]) of
//! five validators (the referee candidates), one provider and one client,
//! all `idlegrid-node` machines:
//!
//! - **framing client** — the client plants a wrong expected output for
//!   one trap and accuses the honest provider of answering it wrongly. The
//!   provider disputes and hands the validators the disputed trap's bytes;
//!   the validators draw VRF tickets on the dispute's randomness and the
//!   lowest three take the seats; each seated validator re-executes only
//!   the disputed trap on its own `WasmExecutor` (same module, same input:
//!   same output and fuel on every machine) and votes. Verdict
//!   `ClientFramed`: the provider is paid, the client's bond pays the
//!   majority referees their fee and the rest goes to the provider.
//! - **cheating provider** — the provider guesses a subtask (the example
//!   makes it one of the traps, so that the case is deterministic) and
//!   disputes the accusation anyway. The referees' re-execution agrees with
//!   the client: `ProviderCheated`, its stake is slashed (half to the
//!   client, the referees' fees and the rest burned).
//!
//! Every step is printed from what the nodes report and from validator 0's
//! marketplace notices; the example never acts for a node.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::error::Error;
use std::rc::Rc;

use idlegrid_dag_ledger::ledger::check_supply;
use idlegrid_entrap::{Outcome, Verdict};
use idlegrid_market::{ExecutorKind, Features, JobGoods, KDouble};
use idlegrid_node::client::{ClientEvent, JobData, JobSpec, TrapPolicy};
use idlegrid_node::local::LocalEvent;
use idlegrid_node::market::{JobRequest, MarketTx, Notice, Settlement, decode_market, unsealed};
use idlegrid_node::provider::ProviderEvent;
use idlegrid_node::validator::ValidatorEvent;
use idlegrid_primitives::{AccountId, Amount, Digest, Duration, Keypair, NodeId, Seed};

use crate::common::{
    FnvTraps, Guess, RefereeRun, fnv_bytes, short, short_acc, wasm_provider, wasm_referee,
};
use crate::network::{Builder, Funds, Network, Seen};

/// Options of the example.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Root seed.
    pub seed: u64,
    /// Referee candidates: the validators (at least 3).
    pub candidates: usize,
    /// Print each step.
    pub verbose: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seed: 7,
            candidates: 5,
            verbose: true,
        }
    }
}

/// One dispute's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseReport {
    /// The case name.
    pub name: &'static str,
    /// The committee's verdict.
    pub verdict: Verdict,
    /// Seats drawn by VRF sortition (validator indices among the candidates).
    pub committee: Vec<usize>,
    /// Each seated referee's re-executed output digest for the disputed
    /// trap, in seat order.
    pub referee_outputs: Vec<Digest>,
    /// Fuel each re-execution burned (identical on every referee).
    pub fuel: Vec<u64>,
    /// Paid to the provider for its metered compute.
    pub paid: Amount,
    /// The client's bond forfeited to the provider (after the fees).
    pub bond_forfeited: Amount,
    /// Fees paid to the majority referees by the convicted party.
    pub referee_fees: Amount,
    /// Client holdings change (signed).
    pub client_delta: i128,
    /// Provider holdings change (signed).
    pub provider_delta: i128,
    /// Tokens burned in this case.
    pub burned: Amount,
    /// Supply conserved (`initial − burned`).
    pub supply_conserved: bool,
}

/// Both cases.
#[derive(Clone, Debug)]
pub struct Report {
    /// The framing client.
    pub framing: CaseReport,
    /// The cheating provider.
    pub cheating: CaseReport,
}

macro_rules! say {
    ($o:expr, $($t:tt)*) => { if $o { println!($($t)*); } };
}

/// Provider stake per slot.
pub const STAKE: Amount = Amount::new(4_000);
/// Client bond per lot.
pub const BOND: Amount = Amount::new(1_000);
const JOB: u64 = 42;

/// Runs both cases.
pub fn run(opts: Options) -> Result<Report, Box<dyn Error>> {
    if opts.candidates < 3 {
        return Err("need at least 3 referee candidates".into());
    }
    let framing = Case::new(&opts, "framing client", true)?.run()?;
    let cheating = Case::new(&opts, "cheating provider", false)?.run()?;
    Ok(Report { framing, cheating })
}

/// One case's network and what the observer saw.
struct Case {
    name: &'static str,
    net: Network,
    client: AccountId,
    provider: AccountId,
    before: (Amount, Amount),
    initial: Amount,
    story: Story,
}

impl Case {
    fn new(opts: &Options, name: &'static str, framing: bool) -> Result<Self, Box<dyn Error>> {
        say!(opts.verbose, "\n######## case: {name}");
        let root = Seed::from_u64(opts.seed).derive(name);
        let client = Keypair::from_seed(&root.derive("client"));
        let provider = Keypair::from_seed(&root.derive("provider"));
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut b = Builder::new(&root, opts.candidates, STAKE, || {
            Box::new(KDouble::new(5_000).expect("k = 0.5 is valid"))
        });
        let validators: Vec<NodeId> = b.validators().iter().map(Keypair::node_id).collect();
        let funds = |stake| Funds {
            balance: Amount::new(100_000),
            stake: Amount::new(stake),
        };
        let exec = wasm_provider(provider.account_id(), guess(framing), false, Rc::default());
        b.provider(&provider, funds(10_000), Amount::new(10_000), exec);
        let traps = if framing {
            FnvTraps::framing(trap_input, 0)
        } else {
            FnvTraps::new(trap_input)
        };
        b.client(&client, funds(5_000), trap_policy(), Box::new(traps));
        let net = b.build(|i| wasm_referee(i, Rc::clone(&log)))?;
        let (c, p) = (client.account_id(), provider.account_id());
        let story = Story::new(opts.verbose, framing, validators, log);
        Ok(Self {
            name,
            before: (net.holdings(&c), net.holdings(&p)),
            initial: net.ledger().total_supply(),
            net,
            client: c,
            provider: p,
            story,
        })
    }

    fn run(mut self) -> Result<CaseReport, Box<dyn Error>> {
        self.wait_for_offer()?;
        let now = self.net.net.now();
        let c = self.client.node();
        let node = self.net.net.client_mut(&c).ok_or("no client")?;
        node.post_job(now, job_spec(now))?;
        let story = &mut self.story;
        if !self.net.run(Duration::from_secs(120), |s| story.see(s)) {
            return Err("the job did not close within 120 s".into());
        }
        self.report()
    }

    fn wait_for_offer(&mut self) -> Result<(), Box<dyn Error>> {
        let offered = |s: Seen<'_>| match s {
            Seen::Event(LocalEvent::Provider(_, ProviderEvent::Applied { tx })) => {
                matches!(decode_market(tx), Some(MarketTx::Offer { .. }))
            }
            _ => false,
        };
        if !self
            .net
            .run_until_count(Duration::from_secs(10), 1, offered)
        {
            return Err("the provider's offer did not reach the ledger".into());
        }
        Ok(())
    }

    fn report(&self) -> Result<CaseReport, Box<dyn Error>> {
        let ledger = self.net.ledger();
        check_supply(ledger).map_err(|e| format!("{e:?}"))?;
        let s = self
            .story
            .settled
            .as_ref()
            .ok_or("the lot did not settle")?;
        let Outcome::Judged(verdict) = s.outcome else {
            return Err(format!("expected a judged round, got {:?}", s.outcome).into());
        };
        let delta = |a: &AccountId, before: Amount| {
            self.net.holdings(a).get() as i128 - before.get() as i128
        };
        let runs = self.story.seated_runs();
        let r = CaseReport {
            name: self.name,
            verdict,
            committee: self.story.seats.clone(),
            referee_outputs: runs.iter().map(|r| r.output).collect(),
            fuel: runs.iter().map(|r| r.fuel).collect(),
            paid: s.paid,
            bond_forfeited: s.bond_forfeited,
            referee_fees: s.referee_fees,
            client_delta: delta(&self.client, self.before.0),
            provider_delta: delta(&self.provider, self.before.1),
            burned: ledger.burned(),
            supply_conserved: ledger.initial_supply() == self.initial
                && self.initial.checked_sub(ledger.burned()).ok() == Some(ledger.total_supply()),
        };
        say!(
            self.story.verbose,
            "== result: client {:+}, provider {:+}, referees' fees {}, burned {}, supply conserved: {} (provider {}, validators agree: {})",
            r.client_delta,
            r.provider_delta,
            r.referee_fees,
            r.burned,
            r.supply_conserved,
            short_acc(&self.provider),
            self.net.validators_agree()
        );
        Ok(r)
    }
}

/// The cheating provider makes up the output of the job's first trap (it
/// cannot know it is one; the example picks it so the case is
/// deterministic) and claims it computed everything.
fn guess(framing: bool) -> Guess {
    if framing {
        return Box::new(|_, _| None);
    }
    let trap = trap_input(JOB, 0, 0);
    Box::new(move |_, input| (input == trap.as_slice()).then(|| b"a guess".to_vec()))
}

/// The client's trap sizing: a window bills about 20 compute-ms, so it
/// pays about a 50th of the price per compute-second.
fn trap_policy() -> TrapPolicy {
    TrapPolicy {
        cost_per_subtask: Amount::new(250),
        stake: STAKE,
        price_to_pay_divisor: 50,
    }
}

/// Trap inputs shaped like the real windows.
fn trap_input(_job: u64, lot: u32, i: u64) -> Vec<u8> {
    let n = 900 + u64::from(lot) * 50 + i;
    format!("genome window {n:03}").into_bytes()
}

/// One lot of four genome windows, limit price 20 000 per compute-second.
fn job_spec(now: idlegrid_primitives::Timestamp) -> JobSpec {
    let data = JobData {
        program: fnv_bytes(),
        inputs: vec![
            (0..4)
                .map(|i| format!("genome window {i:03}").into_bytes())
                .collect(),
        ],
    };
    JobSpec {
        request: JobRequest {
            job: JOB,
            lots: 1,
            max_slots_per_lot: 32,
            commitment: unsealed(),
            cap_micros_per_subtask: 100_000,
            min_reputation_bps: 0,
            client_bond: BOND,
            deadline: now + Duration::from_secs(20),
            goods: JobGoods::none(),
            executor: ExecutorKind::Wasm,
            requires: Features::NONE,
        },
        max_price: Amount::new(20_000),
        inputs: data.digests(),
        data: Some(data),
    }
}

/// The observer: prints each step and collects what the report needs.
struct Story {
    verbose: bool,
    framing: bool,
    validators: Vec<NodeId>,
    log: Rc<RefCell<Vec<RefereeRun>>>,
    /// Runs already printed.
    printed: usize,
    tickets: BTreeMap<usize, bool>,
    seats: Vec<usize>,
    settled: Option<Settlement>,
}

impl Story {
    fn say(&self, line: std::fmt::Arguments<'_>) {
        if self.verbose {
            println!("{line}");
        }
    }

    fn new(
        verbose: bool,
        framing: bool,
        validators: Vec<NodeId>,
        log: Rc<RefCell<Vec<RefereeRun>>>,
    ) -> Self {
        Self {
            verbose,
            framing,
            validators,
            log,
            printed: 0,
            tickets: BTreeMap::new(),
            seats: Vec::new(),
            settled: None,
        }
    }

    fn index(&self, v: &NodeId) -> usize {
        self.validators
            .iter()
            .position(|x| x == v)
            .expect("a validator")
    }

    /// The seated referees' first run each, in seat order.
    fn seated_runs(&self) -> Vec<RefereeRun> {
        let log = self.log.borrow();
        self.seats
            .iter()
            .filter_map(|s| log.iter().find(|r| r.referee == *s).cloned())
            .collect()
    }

    /// Prints and records one observation; true once the job closed.
    fn see(&mut self, s: Seen<'_>) -> bool {
        let closed = self.observe(s);
        if !self.seats.is_empty() {
            // Re-executions, once the seating is printed.
            self.print_runs();
        }
        closed
    }

    fn observe(&mut self, s: Seen<'_>) -> bool {
        match s {
            Seen::Notice(n) => self.notice(n),
            Seen::Event(LocalEvent::Client(_, e)) => return self.client_event(e),
            Seen::Event(LocalEvent::Provider(_, e)) => self.provider_event(e),
            Seen::Event(LocalEvent::Validator(v, ValidatorEvent::TicketDrawn { sent, .. })) => {
                self.tickets.insert(self.index(v), *sent);
            }
            Seen::Event(_) => {}
        }
        false
    }

    /// Prints the referees' re-executions since the last call.
    fn print_runs(&mut self) {
        let log = self.log.borrow();
        for r in &log[self.printed..] {
            self.say(format_args!(
                "   referee {} re-executed trap {} on its own WasmExecutor: output {} (expected {}, provider {}), {} fuel",
                r.referee,
                r.trap.get(),
                short(&r.output),
                short(&r.expected),
                short(&r.provider_output),
                r.fuel
            ));
        }
        self.printed = log.len();
    }

    fn notice(&mut self, n: &Notice) {
        match n {
            Notice::RoundOpened { inputs, .. } => self.say(format_args!(
                "== escrow: round opened on the ledger: pay for {} subtasks escrowed, client bond {BOND}, provider stake {STAKE}",
                inputs.len()
            )),
            Notice::TicketWindow { seats, .. } => self.say(format_args!(
                "== dispute: a ticket window opens; every validator draws a VRF ticket on the dispute's randomness, the lowest {seats} take the seats"
            )),
            Notice::DisputeOpened { committee, .. } => {
                self.seats = committee.iter().map(|m| self.index(m)).collect();
                let sent: Vec<usize> = self
                    .tickets
                    .iter()
                    .filter(|t| *t.1)
                    .map(|t| *t.0)
                    .collect();
                self.say(format_args!(
                    "== dispute: VRF sortition seats referees {:?} of {} (tickets sent by {sent:?})",
                    self.seats,
                    self.validators.len()
                ));
            }
            _ => {}
        }
    }

    fn client_event(&mut self, e: &ClientEvent) -> bool {
        match e {
            ClientEvent::Planned { traps, slots, .. } => {
                self.say(format_args!("== plan: {traps} trap(s) among {slots} subtasks"));
                if self.framing {
                    self.say(format_args!(
                        "== plan: the client commits a WRONG expected output for one trap (framing)"
                    ));
                }
            }
            ClientEvent::Results { accused, .. } => self.say(format_args!(
                "== trap reveal: the client finds {} wrong trap answer(s) at {accused:?} and accuses",
                accused.len()
            )),
            ClientEvent::Settled(s) => self.verdict(s),
            ClientEvent::JobClosed { .. } => return true,
            _ => {}
        }
        false
    }

    fn provider_event(&mut self, e: &ProviderEvent) {
        match e {
            ProviderEvent::Execute { inputs, .. } if !self.framing => self.say(format_args!(
                "== execution: the provider guesses one of its {} subtasks instead of running it",
                inputs.len()
            )),
            ProviderEvent::Answered {
                confessed: false, ..
            } => self.say(format_args!(
                "== dispute: the provider disputes and hands the validators the accused trap's bytes"
            )),
            _ => {}
        }
    }

    fn verdict(&mut self, s: &Settlement) {
        if let Outcome::Judged(verdict) = s.outcome {
            self.say(format_args!("== verdict: {verdict:?}"));
        }
        self.say(format_args!(
            "   settlement: provider paid {}; client bond to the provider {}; referees' fees {}; stake slashed {} (burned {})",
            s.paid,
            s.bond_forfeited,
            s.referee_fees,
            s.slashed,
            s.burned
        ));
        self.settled = Some(s.clone());
    }
}
