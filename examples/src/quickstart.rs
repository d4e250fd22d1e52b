//! `quickstart`: one client, three providers, one job with traps, all in one
//! process.
//!
//! 1. **match** — three providers and the client post sealed orders (plus
//!    two bystander orders that set McAfee's price); the batch is revealed
//!    and cleared;
//! 2. **plan** — the client splits the job into one lot per matched
//!    provider, asks the optimizer how many traps each lot needs and mixes
//!    them in (traps are inputs whose outputs it computed itself);
//! 3. **escrow** — the client opens one round per lot on the ledger: pay for
//!    every subtask escrowed, client bond locked; providers lock their stake;
//! 4. **execution** — providers run their subtasks on the deterministic
//!    [`WasmExecutor`]; one provider skips work and guesses some outputs;
//! 5. **commit, reveal, trap reveal, accusation** — outputs are committed
//!    and revealed, the client opens its traps and accuses the provider
//!    whose trap answers are wrong; it admits;
//! 6. **settlement** — the rounds' effects move money on the ledger (pay,
//!    refund, slash) and feed the reputation book;
//! 7. **checks** — supply conserved, ledger invariants hold, honest results
//!    equal a local run.

use std::collections::BTreeMap;
use std::error::Error;

use idlegrid_dag_ledger::ledger::check_supply;
use idlegrid_entrap::{
    Bps, Deadlines, Effect, JobId, JobPlan, Outcome, Params, Terms, TrapSpec, optimize_traps,
    output_commitment, split_into_lots,
};
use idlegrid_executor::WasmExecutor;
use idlegrid_market::{
    Ask, BatchConfig, Bid, ExecutorKind, ExecutorSet, Features, JobGoods, McAfee, Order, OrderId,
    Region, RegionSet, Reputation, Resources, SealedBatch, Slots, seal,
};
use idlegrid_primitives::{
    AccountId, Amount, Digest, Duration, Epoch, Keypair, RngCore, Salt, Seed, Timestamp,
};
use idlegrid_reputation::{BookParams, ReputationBook, Role as RepRole};

use crate::common::{feed_reputation, input_digest, run_fnv, short};
use crate::jobs_app::JobTx;
use crate::local::LocalLedger;

/// Options of the quickstart.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Root seed: keys, salts, shuffles and the cheater's choices.
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
            seed: 2026,
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
    /// Holdings (free + bonded) before the job.
    pub holdings_before: Amount,
    /// Holdings after settlement.
    pub holdings_after: Amount,
    /// Provider reputation after settlement, in parts per million.
    pub reputation_ppm: u64,
}

/// What the quickstart did.
#[derive(Clone, Debug)]
pub struct Report {
    /// The uniform McAfee price per slot-second.
    pub price: Amount,
    /// Matches cleared.
    pub matches: usize,
    /// Per lot, in provider order.
    pub lots: Vec<LotReport>,
    /// Client holdings before and after.
    pub client_before: Amount,
    /// Client holdings after settlement.
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
}

macro_rules! say {
    ($o:expr, $($t:tt)*) => { if $o.verbose { println!($($t)*); } };
}

const STAKE: Amount = Amount::new(5_000);
const CLIENT_BOND: Amount = Amount::new(500);

/// Runs the quickstart.
pub fn run(opts: Options) -> Result<Report, Box<dyn Error>> {
    let root = Seed::from_u64(opts.seed);
    let client = Keypair::from_seed(&root.derive("client"));
    let providers: Vec<Keypair> = (0..3)
        .map(|i| Keypair::from_seed(&root.derive_indexed("provider", i)))
        .collect();
    let exec = WasmExecutor::default();

    // ---- 0. genesis -------------------------------------------------------
    let mut balances = vec![(client.account_id(), Amount::new(1_000_000))];
    let mut stakes = vec![(client.account_id(), Amount::new(10_000))];
    for p in &providers {
        balances.push((p.account_id(), Amount::new(100_000)));
        stakes.push((p.account_id(), Amount::new(20_000)));
    }
    let beacon = Digest::hash(crate::common::INPUT_DOMAIN, b"quickstart beacon");
    let mut chain = LocalLedger::new(balances, stakes, beacon)?;
    let initial_supply = chain.ledger.total_supply();
    say!(
        opts,
        "== genesis: 1 client, 3 providers, supply {initial_supply}"
    );

    // ---- 1. sealed-bid match ----------------------------------------------
    let (price, matched) = sealed_match(&opts, &root, &client, &providers)?;
    let matches = matched.len();

    // ---- 2. plan: lots and traps -----------------------------------------
    let job = JobId::new(1);
    let real_inputs: Vec<Vec<u8>> = (0..opts.subtasks)
        .map(|i| format!("record {i:04}: temperature series chunk").into_bytes())
        .collect();
    let mut bytes_of: BTreeMap<Digest, Vec<u8>> = BTreeMap::new();
    for x in &real_inputs {
        bytes_of.insert(input_digest(x), x.clone());
    }
    let lots_n = matched.len();
    let per_lot = opts.subtasks.div_ceil(lots_n) as u32;
    let cost = price.mul_ratio(8, 10)?;
    let advice = optimize_traps(&Params::new(per_lot, cost, price, STAKE))?;
    // Assurance for tiny lots of a fresh provider is expensive (see the
    // entrap docs); the quickstart takes the deterrence count plus a margin.
    let k = advice
        .deterrence
        .map_or(3, |t| t.get() as usize)
        .max(3)
        .min(advice.recommended.get() as usize);
    say!(
        opts,
        "== plan: {} real subtasks over {lots_n} lots; optimizer: deterrence {:?}, assurance {:?}, recommended {} -> {k} traps per lot",
        opts.subtasks,
        advice.deterrence.map(|t| t.get()),
        advice.assurance.map(|t| t.get()),
        advice.recommended
    );
    let mut traps_per_lot = Vec::new();
    for lot in 0..lots_n {
        let mut traps = Vec::new();
        for j in 0..k {
            // Same format and size as real inputs, answers computed locally.
            let x = format!(
                "record {:04}: temperature series chunk",
                5000 + lot * 100 + j
            )
            .into_bytes();
            let expected = run_fnv(&exec, &x)?.output_digest;
            bytes_of.insert(input_digest(&x), x.clone());
            traps.push(TrapSpec::precomputed(input_digest(&x), expected));
        }
        traps_per_lot.push(traps);
    }
    let digests: Vec<Digest> = real_inputs.iter().map(|x| input_digest(x)).collect();
    let plans = split_into_lots(job, &digests, traps_per_lot, &root.derive("plans"))?;

    // ---- 3. escrow on the ledger -----------------------------------------
    let client_before = chain.holdings(&client.account_id());
    let holdings_before: Vec<Amount> = providers
        .iter()
        .map(|p| chain.holdings(&p.account_id()))
        .collect();
    let terms: Vec<Terms> = matched
        .iter()
        .map(|provider| Terms {
            job,
            client: client.account_id(),
            provider: *provider,
            pay_per_subtask: price,
            client_bond: CLIENT_BOND,
            stake: STAKE,
            slash_to_client: Bps::new(5_000).expect("valid"),
            no_show_penalty: Bps::new(1_000).expect("valid"),
            deadlines: Deadlines::uniform(Duration::from_secs(60)),
            committee_size: 3,
        })
        .collect();
    let deadline = Epoch::new(chain.epoch().get() + 100);
    chain.commit_jobs(
        terms
            .iter()
            .zip(&plans)
            .map(|(t, p)| {
                (
                    &client,
                    JobTx::Open {
                        terms: *t,
                        plan: p.public().clone(),
                        escrow_deadline: deadline,
                    },
                )
            })
            .collect(),
    )?;
    for (t, p) in terms.iter().zip(&plans) {
        say!(
            opts,
            "== escrow: round for provider {} opened: {} subtasks x {} = {} escrowed, client bond {} locked",
            short_acc(&t.provider),
            p.public().slots(),
            price,
            t.escrow(p.public().slots())?,
            CLIENT_BOND
        );
    }
    let key_of = |a: &AccountId| {
        providers
            .iter()
            .find(|k| k.account_id() == *a)
            .expect("matched provider")
    };
    chain.commit_jobs(
        terms
            .iter()
            .map(|t| (key_of(&t.provider), JobTx::BondStake { job }))
            .collect(),
    )?;
    say!(
        opts,
        "== stake: each provider locked {STAKE} of its bonded stake"
    );

    // ---- 4. execution -----------------------------------------------------
    let mut outputs: Vec<Vec<Digest>> = Vec::new();
    let mut output_bytes: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut guessed = Vec::new();
    for (t, plan) in terms.iter().zip(&plans) {
        let idx = providers
            .iter()
            .position(|k| k.account_id() == t.provider)
            .expect("provider");
        let cheats = opts.cheater == Some(idx);
        let mut rng = root.derive_indexed("behaviour", idx as u64).rng();
        let (mut ds, mut bs, mut g) = (Vec::new(), Vec::new(), 0);
        for d in &plan.public().slot_inputs {
            let input = bytes_of
                .get(d)
                .ok_or("provider got an input digest it cannot resolve")?;
            let out = if cheats && (rng.next_u32() % 100) < opts.cheat_percent {
                g += 1;
                rng.next_u32().to_le_bytes().to_vec() // a guess, no work done
            } else {
                run_fnv(&exec, input)?.output
            };
            ds.push(idlegrid_executor::output_digest(&out));
            bs.push(out);
        }
        say!(
            opts,
            "== execution: provider {} ran {} subtasks on WasmExecutor{}",
            short_acc(&t.provider),
            ds.len(),
            if g > 0 {
                format!(", guessed {g} outputs (cheating)")
            } else {
                String::new()
            }
        );
        outputs.push(ds);
        output_bytes.push(bs);
        guessed.push(g);
    }

    // ---- 5. commit, reveal, trap reveal, accusation -----------------------
    let salts: Vec<Salt> = (0..terms.len())
        .map(|i| Salt::random(&mut root.derive_indexed("output-salt", i as u64).rng()))
        .collect();
    chain.commit_jobs(
        terms
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let commitment = output_commitment(job, &outputs[i], &salts[i]);
                (
                    key_of(&t.provider),
                    JobTx::CommitOutputs { job, commitment },
                )
            })
            .collect(),
    )?;
    chain.commit_jobs(
        terms
            .iter()
            .enumerate()
            .map(|(i, t)| {
                (
                    key_of(&t.provider),
                    JobTx::RevealOutputs {
                        job,
                        outputs: outputs[i].clone(),
                        salt: salts[i],
                    },
                )
            })
            .collect(),
    )?;
    say!(
        opts,
        "== outputs committed, then revealed, by every provider"
    );
    chain.commit_jobs(
        terms
            .iter()
            .zip(&plans)
            .map(|(t, p)| {
                (
                    &client,
                    JobTx::RevealTraps {
                        job,
                        provider: t.provider,
                        reveal: p.trap_reveal(vec![]),
                    },
                )
            })
            .collect(),
    )?;
    let mut accusations = Vec::new();
    for (i, (t, p)) in terms.iter().zip(&plans).enumerate() {
        let wrong = p.wrong_traps(&outputs[i])?;
        say!(
            opts,
            "== trap reveal: provider {}: {} traps opened, {} answered wrongly{}",
            short_acc(&t.provider),
            p.trap_count(),
            wrong.len(),
            if wrong.is_empty() {
                String::new()
            } else {
                format!(" at {wrong:?} -> accusation")
            }
        );
        accusations.push((
            &client,
            JobTx::Accuse {
                job,
                provider: t.provider,
                traps: wrong,
            },
        ));
    }
    chain.commit_jobs(accusations)?;
    let accused: Vec<&Terms> = terms
        .iter()
        .filter(|t| {
            chain
                .app()
                .round(job, &t.provider)
                .is_some_and(|r| r.outcome().is_none())
        })
        .collect();
    if !accused.is_empty() {
        chain.commit_jobs(
            accused
                .iter()
                .map(|t| (key_of(&t.provider), JobTx::Accept { job }))
                .collect(),
        )?;
        for t in &accused {
            say!(
                opts,
                "== provider {} admits (no dispute)",
                short_acc(&t.provider)
            );
        }
    }

    // ---- 6. settlement and reputation --------------------------------------
    let mut book = ReputationBook::new(BookParams::default(), Epoch::ZERO)?;
    book.register(client.node_id(), Amount::ZERO)?;
    for p in &providers {
        book.register(p.node_id(), Amount::ZERO)?;
    }
    let notes = chain.app_mut().drain_reputation();
    let fed = feed_reputation(&mut book, &notes)?;
    let mut slashed_to_client = Amount::ZERO;
    for e in &chain.app().settled {
        say!(opts, "   effect: {}", describe(e));
        if let Effect::SlashStake { to_client, .. } = e {
            slashed_to_client = slashed_to_client.checked_add(*to_client)?;
        }
    }
    say!(opts, "== reputation: {fed} feedback records applied");

    // ---- 7. checks ----------------------------------------------------------
    check_supply(&chain.ledger).map_err(|e| format!("{e:?}"))?;
    let burned = chain.ledger.burned();
    let final_supply = chain.ledger.total_supply();
    let mut honest_ok = true;
    let mut lots = Vec::new();
    for (i, (t, p)) in terms.iter().zip(&plans).enumerate() {
        let round = chain
            .app()
            .round(job, &t.provider)
            .ok_or("round vanished")?;
        let outcome = round.outcome().ok_or("round not settled")?;
        if outcome == Outcome::Clean {
            honest_ok &= verify_real_outputs(&exec, p, &output_bytes[i], &bytes_of)?;
        }
        let idx = providers
            .iter()
            .position(|k| k.account_id() == t.provider)
            .expect("provider");
        lots.push(LotReport {
            provider: t.provider,
            real: p.public().slots() - p.trap_count().get() as usize,
            traps: p.trap_count().get() as usize,
            guessed: guessed[i],
            outcome,
            holdings_before: holdings_before[idx],
            holdings_after: chain.holdings(&t.provider),
            reputation_ppm: (book.score(&t.provider.node(), RepRole::Provider).to_f64() * 1e6)
                as u64,
        });
    }
    let client_after = chain.holdings(&client.account_id());
    if opts.verbose {
        println!(
            "\n{:<10} {:>5} {:>5} {:>7} {:<28} {:>10} {:>10} {:>8}",
            "provider", "real", "traps", "guessed", "outcome", "before", "after", "rep"
        );
        for l in &lots {
            println!(
                "{:<10} {:>5} {:>5} {:>7} {:<28} {:>10} {:>10} {:>8.3}",
                short_acc(&l.provider),
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
            "client: {client_before} -> {client_after}; slashed to client {slashed_to_client}; burned {burned}; supply {initial_supply} -> {final_supply} (= initial - burned: {})",
            initial_supply.checked_sub(burned)? == final_supply
        );
        println!("honest lots' real outputs equal the client's own run: {honest_ok}");
    }
    Ok(Report {
        price,
        matches,
        lots,
        client_before,
        client_after,
        slashed_to_client,
        burned,
        initial_supply,
        final_supply,
        honest_outputs_verified: honest_ok,
    })
}

/// The sealed-bid batch: commit, reveal, close with McAfee. Returns the
/// price and the matched providers in match order.
fn sealed_match(
    opts: &Options,
    root: &Seed,
    client: &Keypair,
    providers: &[Keypair],
) -> Result<(Amount, Vec<AccountId>), Box<dyn Error>> {
    let slot = Resources::new(1000, 512, 0, 0);
    let end = Timestamp::from_millis(3_600_000);
    let ask = |id: u64, provider: AccountId, price: u128| {
        Order::Ask(Ask {
            id: OrderId::new(id),
            provider,
            resources: slot,
            executors: ExecutorSet::single(ExecutorKind::Wasm),
            features: Features::NONE,
            region: Region::new(0),
            price: Amount::new(price),
            slots: Slots::new(1),
            window_start: Timestamp::ZERO,
            window_end: end,
        })
    };
    let bid = |id: u64, client: AccountId, price: u128, slots: u32| {
        Order::Bid(Bid {
            id: OrderId::new(id),
            client,
            demand: slot,
            slots: Slots::new(slots),
            max_price: Amount::new(price),
            deadline: end,
            regions: RegionSet::single(Region::new(0)),
            min_reputation: Reputation::ZERO,
            executor: ExecutorKind::Wasm,
            requires: Features::NONE,
            goods: JobGoods::none(),
        })
    };
    let bystander = |n: &str| Keypair::from_seed(&root.derive(n)).account_id();
    let orders = vec![
        ask(1, providers[0].account_id(), 8),
        ask(2, providers[1].account_id(), 9),
        ask(3, providers[2].account_id(), 11),
        ask(4, bystander("expensive provider"), 30),
        bid(5, client.account_id(), 20, 3),
        bid(6, bystander("bargain hunter"), 6, 1),
    ];
    let epoch = Epoch::new(1);
    let mut batch = SealedBatch::open(epoch, Timestamp::ZERO, BatchConfig::default())?;
    let mut rng = root.derive("order-salts").rng();
    let mut sealed = Vec::new();
    for o in &orders {
        let salt = Salt::random(&mut rng);
        let c = seal(epoch, o, &salt);
        batch.commit(Timestamp::ZERO, o.owner(), c, Amount::new(5))?;
        sealed.push((o.clone(), salt, c));
    }
    say!(
        opts,
        "== market: {} sealed orders committed (digests only)",
        sealed.len()
    );
    let t = batch.commit_deadline();
    for (o, salt, c) in &sealed {
        batch.reveal(t, o.owner(), *c, o.clone(), *salt)?;
    }
    let rep = |_: &AccountId| Reputation::MAX;
    let out = batch.close(batch.reveal_deadline(), &McAfee, &rep)?;
    let mine: Vec<_> = out
        .clearing
        .matches
        .iter()
        .filter(|m| m.client == client.account_id())
        .collect();
    let price = mine
        .first()
        .ok_or("the client's bid did not clear")?
        .seller_price;
    for m in &mine {
        if m.buyer_price != m.seller_price {
            return Err("trade reduction applied; this example expects a uniform price".into());
        }
        say!(
            opts,
            "== match: bid {} x ask {} ({}), {} slot at {} per slot-second",
            m.bid.get(),
            m.ask.get(),
            short_acc(&m.provider),
            m.slots.get(),
            m.buyer_price
        );
    }
    say!(
        opts,
        "   McAfee: welfare {}, volume {} slots, surplus {}",
        out.clearing.stats.welfare,
        out.clearing.stats.volume_slots,
        out.clearing.stats.surplus
    );
    Ok((price, mine.iter().map(|m| m.provider).collect()))
}

/// Re-runs the lot's real subtasks locally and compares the outputs.
fn verify_real_outputs(
    exec: &WasmExecutor,
    plan: &JobPlan,
    outputs: &[Vec<u8>],
    bytes_of: &BTreeMap<Digest, Vec<u8>>,
) -> Result<bool, Box<dyn Error>> {
    for (i, d) in plan.public().slot_inputs.iter().enumerate() {
        if plan.is_trap(idlegrid_entrap::SubtaskIndex::new(i as u32)) {
            continue;
        }
        let input = bytes_of.get(d).ok_or("unknown input")?;
        if run_fnv(exec, input)?.output != outputs[i] {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Short printable form of an account.
pub fn short_acc(a: &AccountId) -> String {
    short(&Digest::from_bytes(*a.as_bytes()))
}

/// One line per effect.
pub fn describe(e: &Effect) -> String {
    match e {
        Effect::PayProvider {
            provider, amount, ..
        } => format!("pay provider {} {amount}", short_acc(provider)),
        Effect::RefundClient { amount, .. } => format!("refund client {amount}"),
        Effect::ReturnClientBond { amount, .. } => format!("return client bond {amount}"),
        Effect::ForfeitClientBond {
            provider, amount, ..
        } => {
            format!(
                "client bond {amount} forfeited to provider {}",
                short_acc(provider)
            )
        }
        Effect::BurnClientBond { amount, .. } => format!("burn client bond {amount}"),
        Effect::ReturnStake {
            provider, amount, ..
        } => format!("return stake {amount} to {}", short_acc(provider)),
        Effect::SlashStake {
            provider,
            to_client,
            burned,
            ..
        } => format!(
            "SLASH provider {}: {to_client} to the client, {burned} burned",
            short_acc(provider)
        ),
        Effect::Reputation {
            subject,
            role,
            feedback,
            ..
        } => {
            format!(
                "reputation: {} as {role:?}: {feedback:?}",
                short_acc(subject)
            )
        }
    }
}
