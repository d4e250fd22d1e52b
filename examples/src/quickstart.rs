//! `quickstart`: one client, three providers, one job with traps, on the
//! reference node (`idlegrid-node`): four validators, the providers and
//! the clients are nodes of one in-process network ([`crate::network`]).
//!
//! 1. **offer** — the providers offer a WebAssembly slot each, bonding its
//!    stake; their prices follow as sealed asks, one per batch;
//! 2. **match** — the client posts a job of three lots with its limit price
//!    sealed; a bargain hunter bids too, and a fourth, expensive provider
//!    asks: their prices set McAfee's uniform price. The batch closes, the
//!    orders are revealed and cleared by every validator;
//! 3. **plan** — for each matched lot the client asks the entrapment
//!    optimizer how many traps the provider's credibility calls for, mixes
//!    them in (inputs whose outputs it computed itself) and puts the plan on
//!    the ledger: the round opens, pay escrowed, client bond and provider
//!    stake locked;
//! 4. **execution** — the client hands each provider its lot's bytes; the
//!    providers run them on the deterministic [`WasmExecutor`](idlegrid_executor::WasmExecutor)
//!    (fuel is the meter); one provider skips work and guesses some outputs.
//!    With a stake of 5 000 against a few thousand of pay, one trap per lot
//!    already makes cheating on any number of subtasks a loss in
//!    expectation (the optimizer's deterrence count), so a rational provider
//!    computes honestly; this one guesses anyway, and with the default seed
//!    its guess lands on its trap (with other seeds it may go unnoticed on
//!    this one job);
//! 5. **outputs, traps, accusation** — outputs are committed and revealed
//!    on the ledger, the client opens its traps and accuses the provider
//!    whose trap answers are wrong; it admits;
//! 6. **settlement** — the ledger pays for metered compute, slashes the
//!    cheater (half to the client, half burned), updates reputation, and
//!    refunds the rest of the escrow when the job closes;
//! 7. **checks** — supply conserved, every validator holds the same state,
//!    honest results equal the client's own run.
//!
//! Every step is printed from what the nodes report (their events) and
//! from validator 0's marketplace notices; the example never acts for a node.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::error::Error;
use std::rc::Rc;

use idlegrid_dag_ledger::ledger::check_supply;
use idlegrid_entrap::Outcome;
use idlegrid_market::{ExecutorKind, Features, JobGoods, McAfee};
use idlegrid_node::client::{ClientEvent, JobData, JobSpec, TrapPolicy};
use idlegrid_node::local::LocalEvent;
use idlegrid_node::market::{
    ClearingRecord, JobRequest, MarketTx, Notice, Settlement, decode_market, unsealed,
};
use idlegrid_node::provider::ProviderEvent;
use idlegrid_primitives::{AccountId, Amount, Duration, Keypair, RngCore, Seed, Timestamp};
use idlegrid_reputation::Role as RepRole;

use crate::common::{FnvTraps, fnv_bytes, run_fnv, short_acc, wasm_executor, wasm_provider};
use crate::network::{Builder, CLEARING_PERIOD, Funds, Network, Seen};

/// Options of the quickstart.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Root seed: keys, salts, plans and the cheater's choices.
    pub seed: u64,
    /// Real subtasks in the job (spread over the three providers).
    pub subtasks: usize,
    /// Which provider (0..3) cheats, if any.
    pub cheater: Option<usize>,
    /// Fraction of its subtasks the cheater guesses instead of computing, in percent.
    pub cheat_percent: u32,
    /// Print each step.
    pub verbose: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seed: 2027,
            subtasks: 12,
            cheater: Some(1),
            cheat_percent: 30,
            verbose: true,
        }
    }
}

/// One provider's lot as settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LotReport {
    /// The provider.
    pub provider: AccountId,
    /// Real subtasks in the lot.
    pub real: usize,
    /// Traps in the lot.
    pub traps: usize,
    /// Subtasks whose output the provider guessed.
    pub guessed: usize,
    /// How the round ended.
    pub outcome: Outcome,
    /// Paid to the provider (price × metered compute).
    pub paid: Amount,
    /// Holdings (free + bonded) at genesis.
    pub holdings_before: Amount,
    /// Holdings once the job closed.
    pub holdings_after: Amount,
    /// Provider reputation after settlement (the ledger's book), in parts
    /// per million.
    pub reputation_ppm: u64,
}

/// What the quickstart did.
#[derive(Clone, Debug)]
pub struct Report {
    /// The uniform McAfee price per compute-second.
    pub price: Amount,
    /// Lots of the client's job matched.
    pub matches: usize,
    /// Per lot, in provider order.
    pub lots: Vec<LotReport>,
    /// Client holdings at genesis.
    pub client_before: Amount,
    /// Client holdings once the job closed.
    pub client_after: Amount,
    /// Stake taken from cheaters and paid to the client.
    pub slashed_to_client: Amount,
    /// Tokens burned.
    pub burned: Amount,
    /// Initial supply.
    pub initial_supply: Amount,
    /// Supply after the job (`initial − burned`).
    pub final_supply: Amount,
    /// True if the honest lots' real outputs equal the client's own run.
    pub honest_outputs_verified: bool,
    /// True if every validator ended with the same ledger state.
    pub validators_agree: bool,
}

macro_rules! say {
    ($o:expr, $($t:tt)*) => { if $o { println!($($t)*); } };
}

const STAKE: Amount = Amount::new(5_000);
const CLIENT_BOND: Amount = Amount::new(500);
const JOB: u64 = 1;
/// The most compute a subtask is paid for (the job's cap), µs.
const CAP_MICROS: u64 = 100_000;
/// Providers' asks (the last is the expensive bystander's).
const ASKS: [u128; 4] = [8_000, 9_000, 11_000, 30_000];

/// Runs the quickstart.
pub fn run(opts: Options) -> Result<Report, Box<dyn Error>> {
    let mut q = Quickstart::new(opts)?;
    q.wait_for_offers()?;
    q.post_jobs()?;
    q.follow_job()?;
    q.report()
}

/// The participants' keys.
struct Keys {
    client: Keypair,
    hunter: Keypair,
    /// The three providers, then the expensive bystander.
    providers: Vec<Keypair>,
}

struct Quickstart {
    opts: Options,
    net: Network,
    keys: Keys,
    data: JobData,
    story: Story,
    before: BTreeMap<AccountId, Amount>,
    initial_supply: Amount,
}

impl Quickstart {
    fn new(opts: Options) -> Result<Self, Box<dyn Error>> {
        let root = Seed::from_u64(opts.seed);
        let key = |label: &str, i: u64| Keypair::from_seed(&root.derive_indexed(label, i));
        let keys = Keys {
            client: key("client", 0),
            hunter: key("bargain hunter", 0),
            providers: (0..ASKS.len() as u64).map(|i| key("provider", i)).collect(),
        };
        let guessed = Rc::new(RefCell::new(BTreeMap::new()));
        let net = build(&opts, &root, &keys, &guessed)?;
        let accounts = keys.providers.iter().chain([&keys.client]);
        let before = accounts
            .map(|k| (k.account_id(), net.holdings(&k.account_id())))
            .collect();
        let initial_supply = net.ledger().total_supply();
        say!(
            opts.verbose,
            "== genesis: 4 validators, 4 providers, 2 clients, supply {initial_supply}"
        );
        let names = names(&keys);
        Ok(Self {
            data: job_data(opts.subtasks),
            story: Story::new(opts.verbose, &keys, names, guessed),
            opts,
            net,
            keys,
            before,
            initial_supply,
        })
    }

    /// Runs until every provider's offer is on the ledger.
    fn wait_for_offers(&mut self) -> Result<(), Box<dyn Error>> {
        let offered = |s: Seen<'_>| match s {
            Seen::Event(LocalEvent::Provider(_, ProviderEvent::Applied { tx })) => {
                matches!(decode_market(tx), Some(MarketTx::Offer { .. }))
            }
            _ => false,
        };
        let n = self.keys.providers.len();
        if !self
            .net
            .run_until_count(Duration::from_secs(10), n, offered)
        {
            return Err("the providers' offers did not reach the ledger".into());
        }
        say!(
            self.opts.verbose,
            "== offers: {n} providers each offer one WebAssembly slot, {STAKE} of stake bonded per slot; their prices follow sealed"
        );
        Ok(())
    }

    /// Posts the client's job and the bargain hunter's early in a batch,
    /// so both bids are sealed in the same batch as every provider's ask.
    fn post_jobs(&mut self) -> Result<(), Box<dyn Error>> {
        let period = CLEARING_PERIOD.as_micros();
        let start = (self.net.net.now().as_micros() / period + 1) * period + 100_000;
        let wait = Duration::from_micros(start - self.net.net.now().as_micros());
        let story = &mut self.story;
        self.net.run(wait, |s| story.see(s));
        let now = self.net.net.now();
        let job = job_spec(now, JOB, Amount::new(20_000), self.data.clone());
        let bargain = job_spec(now, JOB, Amount::new(6_000), one_lot());
        let (c, h) = (self.keys.client.node_id(), self.keys.hunter.node_id());
        let mine = self.net.net.client_mut(&c).ok_or("no client")?;
        mine.post_job(now, job)?;
        let theirs = self.net.net.client_mut(&h).ok_or("no bargain hunter")?;
        theirs.post_job(now, bargain)?;
        say!(
            self.opts.verbose,
            "== job: the client posts job {JOB}: 3 lots, {} real subtasks, its limit price sealed; a bargain hunter bids for 1 lot",
            self.opts.subtasks
        );
        Ok(())
    }

    /// Follows the job until it closes.
    fn follow_job(&mut self) -> Result<(), Box<dyn Error>> {
        let story = &mut self.story;
        if !self.net.run(Duration::from_secs(120), |s| story.see(s)) {
            return Err("the job did not close within 120 s".into());
        }
        Ok(())
    }

    fn report(&self) -> Result<Report, Box<dyn Error>> {
        let ledger = self.net.ledger();
        check_supply(ledger).map_err(|e| format!("{e:?}"))?;
        let s = &self.story;
        let lots = self.lots()?;
        let honest_ok = lots
            .iter()
            .filter(|l| l.outcome == Outcome::Clean)
            .all(|l| self.outputs_verified(&l.provider));
        let slashed_to_client = s.settled.iter().fold(Amount::ZERO, |a, x| {
            a.saturating_add(
                x.slashed
                    .saturating_sub(x.burned)
                    .saturating_sub(x.referee_fees),
            )
        });
        let client = self.keys.client.account_id();
        let r = Report {
            price: s.price.ok_or("no match")?,
            matches: s.lot_of.len(),
            lots,
            client_before: self.before[&client],
            client_after: self.net.holdings(&client),
            slashed_to_client,
            burned: ledger.burned(),
            initial_supply: self.initial_supply,
            final_supply: ledger.total_supply(),
            honest_outputs_verified: honest_ok,
            validators_agree: self.net.validators_agree(),
        };
        if self.opts.verbose {
            print_table(&r, &s.names);
        }
        Ok(r)
    }

    /// One report per matched provider, in provider order.
    fn lots(&self) -> Result<Vec<LotReport>, Box<dyn Error>> {
        let s = &self.story;
        let book = self.net.validator(0).market().book();
        let mut out = Vec::new();
        for k in &self.keys.providers {
            let p = k.account_id();
            let Some(&lot) = s.lot_of.get(&p) else {
                continue;
            };
            let settled = s.settled.iter().find(|x| x.lot == lot);
            let settled = settled.ok_or("a lot did not settle")?;
            let score = book.score(&p.node(), RepRole::Provider).to_f64();
            out.push(LotReport {
                provider: p,
                real: (settled.slots - settled.traps) as usize,
                traps: settled.traps as usize,
                guessed: s.guessed.borrow().get(&p).copied().unwrap_or(0),
                outcome: settled.outcome,
                paid: settled.paid,
                holdings_before: self.before[&p],
                holdings_after: self.net.holdings(&p),
                reputation_ppm: (score * 1e6) as u64,
            });
        }
        Ok(out)
    }

    /// True if `provider`'s lot's real outputs equal the client's own run.
    fn outputs_verified(&self, provider: &AccountId) -> bool {
        let s = &self.story;
        let Some(lot) = s.lot_of.get(provider) else {
            return false;
        };
        let exec = wasm_executor();
        let mine: Option<Vec<Vec<u8>>> = self.data.inputs[*lot as usize]
            .iter()
            .map(|x| run_fnv(&exec, x).ok().map(|r| r.output))
            .collect();
        mine.is_some() && s.outputs.get(lot) == mine.as_ref()
    }
}

/// The network: four validators, the providers (one of them cheating),
/// the client and the bargain hunter.
fn build(
    opts: &Options,
    root: &Seed,
    keys: &Keys,
    guessed: &Rc<RefCell<BTreeMap<AccountId, usize>>>,
) -> Result<Network, Box<dyn Error>> {
    let mut b = Builder::new(root, 4, STAKE, || Box::new(McAfee));
    let provider_funds = Funds {
        balance: Amount::new(100_000),
        stake: Amount::new(20_000),
    };
    for (i, k) in keys.providers.iter().enumerate() {
        let guess = guesses(opts, root, i);
        let exec = wasm_provider(k.account_id(), guess, true, Rc::clone(guessed));
        b.provider(k, provider_funds, Amount::new(ASKS[i]), exec);
    }
    let client_funds = Funds {
        balance: Amount::new(1_000_000),
        stake: Amount::new(10_000),
    };
    for k in [&keys.client, &keys.hunter] {
        let traps = Box::new(FnvTraps::new(trap_input));
        b.client(k, client_funds, trap_policy(), traps);
    }
    b.build(|i| crate::common::wasm_referee(i, Rc::default()))
}

/// Provider `i`'s guesses: the cheater makes up `cheat_percent` of its
/// outputs (it cannot tell traps from real subtasks), the others none.
fn guesses(opts: &Options, root: &Seed, i: usize) -> crate::common::Guess {
    if opts.cheater != Some(i) {
        return Box::new(|_, _| None);
    }
    let pct = opts.cheat_percent;
    let mut rng = root.derive_indexed("behaviour", i as u64).rng();
    Box::new(move |_, _| {
        (rng.next_u32() % 100 < pct).then(|| rng.next_u32().to_le_bytes().to_vec())
    })
}

/// How the clients size their traps: a subtask bills about 40 compute-ms
/// (the examples' fuel convention), so it pays about a 25th of the price
/// per compute-second, and costs an honest provider about 0.8 of that.
fn trap_policy() -> TrapPolicy {
    TrapPolicy {
        cost_per_subtask: Amount::new(600),
        stake: STAKE,
        price_to_pay_divisor: 25,
    }
}

/// Real inputs: `n` records over three lots.
fn job_data(n: usize) -> JobData {
    let per_lot = n.div_ceil(3).max(1);
    let records: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("record {i:04}: temperature series chunk").into_bytes())
        .collect();
    JobData {
        program: fnv_bytes(),
        inputs: records.chunks(per_lot).map(<[_]>::to_vec).collect(),
    }
}

/// A one-record lot (the bargain hunter's).
fn one_lot() -> JobData {
    JobData {
        program: fnv_bytes(),
        inputs: vec![vec![b"one".to_vec()]],
    }
}

/// Trap inputs shaped like the real records.
fn trap_input(_job: u64, lot: u32, i: u64) -> Vec<u8> {
    let n = 5_000 + u64::from(lot) * 100 + i;
    format!("record {n:04}: temperature series chunk").into_bytes()
}

/// A job over `data`'s lots, limit price `max_price` (sealed by the node).
fn job_spec(now: Timestamp, job: u64, max_price: Amount, data: JobData) -> JobSpec {
    let lots = data.inputs.len() as u32;
    JobSpec {
        request: JobRequest {
            job,
            lots,
            max_slots_per_lot: 32,
            commitment: unsealed(),
            cap_micros_per_subtask: CAP_MICROS,
            min_reputation_bps: 0,
            client_bond: CLIENT_BOND,
            deadline: now + Duration::from_secs(10),
            goods: JobGoods::none(),
            executor: ExecutorKind::Wasm,
            requires: Features::NONE,
        },
        max_price,
        inputs: data.digests(),
        data: Some(data),
    }
}

/// Printable names of the accounts.
fn names(keys: &Keys) -> BTreeMap<AccountId, String> {
    let mut n: BTreeMap<AccountId, String> = keys
        .providers
        .iter()
        .map(|k| (k.account_id(), short_acc(&k.account_id())))
        .collect();
    n.insert(keys.client.account_id(), "the client".into());
    n.insert(keys.hunter.account_id(), "the bargain hunter".into());
    n
}

/// The observer: prints each protocol step as the nodes report it and
/// collects what the report needs.
struct Story {
    verbose: bool,
    client: AccountId,
    names: BTreeMap<AccountId, String>,
    guessed: Rc<RefCell<BTreeMap<AccountId, usize>>>,
    price: Option<Amount>,
    /// The client's lots by provider.
    lot_of: BTreeMap<AccountId, u32>,
    settled: Vec<Settlement>,
    /// Real output bytes by lot.
    outputs: BTreeMap<u32, Vec<Vec<u8>>>,
    cleared: bool,
}

impl Story {
    fn say(&self, line: std::fmt::Arguments<'_>) {
        if self.verbose {
            println!("{line}");
        }
    }

    fn new(
        verbose: bool,
        keys: &Keys,
        names: BTreeMap<AccountId, String>,
        guessed: Rc<RefCell<BTreeMap<AccountId, usize>>>,
    ) -> Self {
        Self {
            verbose,
            client: keys.client.account_id(),
            names,
            guessed,
            price: None,
            lot_of: BTreeMap::new(),
            settled: Vec::new(),
            outputs: BTreeMap::new(),
            cleared: false,
        }
    }

    fn name(&self, a: &AccountId) -> String {
        self.names.get(a).cloned().unwrap_or_else(|| short_acc(a))
    }

    /// Prints and records one observation; true once the job closed.
    fn see(&mut self, s: Seen<'_>) -> bool {
        match s {
            Seen::Notice(n) => {
                self.notice(n);
                false
            }
            Seen::Event(LocalEvent::Client(id, e)) if id.account() == self.client => {
                self.client_event(e)
            }
            Seen::Event(LocalEvent::Provider(id, e)) => {
                self.provider_event(&id.account(), e);
                false
            }
            Seen::Event(_) => false,
        }
    }

    fn notice(&mut self, n: &Notice) {
        match n {
            Notice::OrderSealed { owner, order, batch } if self.names.contains_key(owner) => {
                if matches!(order, idlegrid_node::market::OrderKey::Bid { .. }) {
                    self.say(format_args!(
                        "== market: {}'s bid is sealed in batch {}: a commitment, nobody sees its price",
                        self.name(owner),
                        batch.0
                    ));
                }
            }
            Notice::Cleared(rec) => self.cleared(rec),
            Notice::Matched {
                client,
                lot,
                provider,
                price,
                ..
            } if *client == self.client => {
                self.price = Some(*price);
                self.lot_of.insert(*provider, *lot);
                self.say(format_args!(
                    "== match: lot {lot} -> provider {}, {price} per compute-second (uniform)",
                    self.name(provider)
                ));
            }
            Notice::RoundOpened {
                client,
                lot,
                provider,
                inputs,
                ..
            } if *client == self.client => self.say(format_args!(
                "== escrow: round of lot {lot} opened on the ledger: {} subtasks' pay escrowed, client bond {CLIENT_BOND} and {}'s stake {STAKE} locked",
                inputs.len(),
                self.name(provider)
            )),
            Notice::Delivered {
                client, provider, ..
            } if *client == self.client => self.say(format_args!(
                "== outputs: provider {} commits to its outputs and reveals them on the ledger",
                self.name(provider)
            )),
            _ => {}
        }
    }

    /// The clearing of the client's batch: what was sealed, revealed.
    fn cleared(&mut self, rec: &ClearingRecord) {
        if self.cleared || !rec.bids.iter().any(|b| b.client == self.client) {
            return;
        }
        self.cleared = true;
        let mut asks: Vec<_> = rec.asks.iter().map(|a| a.price).collect();
        asks.sort();
        let asks: Vec<String> = asks.iter().map(ToString::to_string).collect();
        let bids: Vec<String> = rec
            .bids
            .iter()
            .map(|b| format!("{} x{}", b.max_price, b.slots.get()))
            .collect();
        self.say(format_args!(
            "== market: the batch closed; revealed asks [{}], bids [{}]; McAfee clears it, welfare {}",
            asks.join(", "),
            bids.join(", "),
            rec.welfare
        ));
    }

    fn client_event(&mut self, e: &ClientEvent) -> bool {
        match e {
            ClientEvent::Planned {
                lot,
                provider,
                traps,
                slots,
                ..
            } => self.say(format_args!(
                "== plan: lot {lot} for provider {}: the optimizer asks for {traps} trap(s), mixed among {} real subtasks ({slots} in all)",
                self.name(provider),
                slots - traps
            )),
            ClientEvent::Results { lot, accused, .. } => self.say(format_args!(
                "== trap reveal: lot {lot}: traps opened, {} answered wrongly{}",
                accused.len(),
                if accused.is_empty() {
                    String::new()
                } else {
                    format!(" at {accused:?} -> accusation")
                }
            )),
            ClientEvent::Outputs { lot, outputs, .. } => {
                self.outputs.insert(*lot, outputs.clone());
            }
            ClientEvent::Settled(s) if s.job == JOB => self.settled_lot(s),
            ClientEvent::JobClosed { job, refunded } if *job == JOB => {
                self.say(format_args!(
                    "== job closed: {refunded} of the escrow refunded to the client"));
                return true;
            }
            _ => {}
        }
        false
    }

    fn provider_event(&mut self, who: &AccountId, e: &ProviderEvent) {
        match e {
            ProviderEvent::Execute { inputs, .. } => {
                let g = self.guessed.borrow().get(who).copied().unwrap_or(0);
                self.say(format_args!(
                    "== execution: provider {} ran {} subtasks on WasmExecutor{}",
                    self.name(who),
                    inputs.len() - g,
                    if g > 0 {
                        format!(", guessed {g} output(s) (cheating)")
                    } else {
                        String::new()
                    }
                ));
            }
            ProviderEvent::Answered { confessed, .. } => self.say(format_args!(
                "== provider {} {}",
                self.name(who),
                if *confessed {
                    "admits (no dispute)"
                } else {
                    "disputes"
                }
            )),
            _ => {}
        }
    }

    fn settled_lot(&mut self, s: &Settlement) {
        let to_client = s
            .slashed
            .saturating_sub(s.burned)
            .saturating_sub(s.referee_fees);
        self.say(format_args!(
            "== settlement: provider {}: {:?}, paid {} for {} compute-µs{}",
            self.name(&s.provider),
            s.outcome,
            s.paid,
            s.usage_micros,
            if s.slashed.is_zero() {
                String::new()
            } else {
                format!(
                    "; SLASHED {}: {to_client} to the client, {} burned",
                    s.slashed, s.burned
                )
            }
        ));
        self.settled.push(s.clone());
    }
}

fn print_table(r: &Report, names: &BTreeMap<AccountId, String>) {
    println!(
        "\n{:<10} {:>5} {:>5} {:>7} {:<28} {:>10} {:>10} {:>8}",
        "provider", "real", "traps", "guessed", "outcome", "before", "after", "rep"
    );
    for l in &r.lots {
        println!(
            "{:<10} {:>5} {:>5} {:>7} {:<28} {:>10} {:>10} {:>8.3}",
            names[&l.provider],
            l.real,
            l.traps,
            l.guessed,
            format!("{:?}", l.outcome),
            l.holdings_before.get(),
            l.holdings_after.get(),
            l.reputation_ppm as f64 / 1e6
        );
    }
    println!(
        "client: {} -> {}; slashed to client {}; burned {}; supply {} -> {} (= initial - burned: {})",
        r.client_before,
        r.client_after,
        r.slashed_to_client,
        r.burned,
        r.initial_supply,
        r.final_supply,
        r.initial_supply.checked_sub(r.burned).ok() == Some(r.final_supply)
    );
    println!(
        "honest lots' real outputs equal the client's own run: {}; validators agree: {}",
        r.honest_outputs_verified, r.validators_agree
    );
}
