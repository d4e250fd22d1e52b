//! The marketplace run: validators on the simulated WAN, light nodes
//! (providers and clients) driven between engine slices.

use std::collections::{BTreeMap, BTreeSet};

use idlegrid_dag_ledger::consensus::ConsensusConfig;
use idlegrid_dag_ledger::ledger::{Genesis, Params, SignedTransaction};
use idlegrid_entrap::{JobPlan, Outcome as RoundOutcome, SubtaskIndex, TrapSpec, optimize_traps};
use idlegrid_executor::{Behaviour, Rate};
use idlegrid_market::registry::{AccessPolicy, GoodKind, RegistryOp, SignedOp, content_digest};
use idlegrid_market::{JobGoods, KDouble, Mechanism};
use idlegrid_primitives::{AccountId, Amount, Duration, Keypair, Seed, Timestamp};
use idlegrid_reputation::BookParams;
use rand::Rng;
use serde::Serialize;

use super::agents::{
    ClientAgent, Identity, LotWork, MachineId, Outbox, ProviderAgent, input_digest, is_cheater,
    truth,
};
use super::observer::MarketObserver;
use super::welfare::WelfareBenchmark;
use crate::consensus::Behavior;
use crate::{Fault, NetworkConfig, NodeIndex, NodeSpec, RegionId, SimConfig, SimError, Simulation};
use idlegrid_dag_ledger::consensus::Committee;
use idlegrid_node::market::{JobRequest, MarketRules, MarketTx, Notice, round_id, score_bps};
use idlegrid_node::validator::{ValidatorNode, ValidatorSetup};
use idlegrid_node::wire::NodeMessage;

mod detection;
mod sybil;

pub use sybil::{MAX_IDENTITIES, SybilConfig};

/// Population and economics of a marketplace run.
#[derive(Debug, Clone)]
pub struct MarketplaceConfig {
    /// Root seed.
    pub seed: u64,
    /// Validators.
    pub validators: u32,
    /// Providers.
    pub providers: u32,
    /// Clients.
    pub clients: u32,
    /// Fraction of providers that cheat (split over the cheating behaviours).
    pub cheater_fraction: f64,
    /// Fraction of providers with random faults.
    pub faulty_fraction: f64,
    /// Cheating rate of lazy/colluding/bait-and-switch providers.
    pub cheat_rate: f64,
    /// Framing clients (the first ones).
    pub framing_clients: u32,
    /// Virtual seconds during which clients post jobs.
    pub active_secs: u64,
    /// Extra virtual seconds for every job to settle.
    pub drain_secs: u64,
    /// Mean seconds between a client's jobs.
    pub job_interval_secs: f64,
    /// Real subtasks per lot.
    pub subtasks_per_lot: u32,
    /// Largest lots per job.
    pub max_lots: u32,
    /// Stake per provider slot.
    pub stake_per_slot: u128,
    /// Relative weights of the cheating behaviours among cheaters.
    pub mix: CheaterMix,
    /// Bait-and-switch providers work honestly for this many subtasks.
    pub bait_honest_tasks: u32,
    /// Parallel lots per provider.
    pub provider_capacity: u32,
    /// Provider asks are drawn uniformly from this range (per compute-second).
    pub price_min: u128,
    /// Upper end of the ask range.
    pub price_max: u128,
    /// Slowest machine, work units per second.
    pub speed_min: u64,
    /// Fastest machine, work units per second.
    pub speed_max: u64,
    /// Clients' limit price per compute-second.
    pub max_price: u128,
    /// Providers adapt their ask: idle ones undercut (down to 1.1 × their
    /// cost), matched ones raise.
    pub adaptive_pricing: bool,
    /// The network the validators run on (light nodes use its latencies).
    pub network: NetworkConfig,
    /// Validator behaviours by node index (missing = honest).
    pub byzantine: Vec<Behavior>,
    /// Consensus configuration of every validator.
    pub consensus: ConsensusConfig,
    /// Fault schedule applied to the validators.
    pub faults: Vec<(Timestamp, Fault)>,
    /// The command that replays this run (printed on invariant failures).
    pub replay_command: Option<String>,
    /// Validators each light-node transaction is submitted to (more than
    /// one keeps a Byzantine or crashed gateway from silencing a provider's
    /// dispute past its deadline).
    pub gateways: u32,
    /// Whitewashing providers and honest newcomers (none by default).
    pub sybil: SybilConfig,
}

/// Relative weights of the cheating behaviours (cheaters are assigned
/// round-robin over a pattern with these multiplicities).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheaterMix {
    /// Lazy cheaters (skip work at `cheat_rate`).
    pub lazy: u32,
    /// Trap guessers (cheat where they guess no trap is).
    pub trap_guessing: u32,
    /// Colluding group (one shared wrong answer).
    pub colluding: u32,
    /// Honest first, then cheat.
    pub bait_and_switch: u32,
}

impl Default for CheaterMix {
    fn default() -> Self {
        Self {
            lazy: 1,
            trap_guessing: 1,
            colluding: 1,
            bait_and_switch: 1,
        }
    }
}

impl CheaterMix {
    fn pattern(&self) -> Vec<u8> {
        let mut v = Vec::new();
        for (kind, w) in [
            self.lazy,
            self.trap_guessing,
            self.colluding,
            self.bait_and_switch,
        ]
        .into_iter()
        .enumerate()
        {
            v.extend(std::iter::repeat_n(kind as u8, w as usize));
        }
        v
    }
}

impl Default for MarketplaceConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            validators: 24,
            providers: 300,
            clients: 30,
            cheater_fraction: 0.10,
            faulty_fraction: 0.0,
            cheat_rate: 0.3,
            framing_clients: 2,
            active_secs: 40,
            drain_secs: 60,
            job_interval_secs: 2.0,
            subtasks_per_lot: 16,
            max_lots: 4,
            stake_per_slot: 50_000,
            mix: CheaterMix::default(),
            bait_honest_tasks: 20,
            provider_capacity: 1,
            price_min: 6_000,
            price_max: 10_000,
            speed_min: 500_000_000,
            speed_max: 2_000_000_000,
            max_price: PRICE,
            adaptive_pricing: true,
            network: NetworkConfig::default(),
            byzantine: Vec::new(),
            consensus: {
                let mut c = ConsensusConfig::default();
                c.verify_signatures = false;
                c
            },
            faults: Vec::new(),
            replay_command: None,
            gateways: 1,
            sybil: SybilConfig::default(),
        }
    }
}

/// Why a marketplace run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MarketplaceError {
    /// A configuration value is unusable.
    #[error("invalid marketplace configuration: {field}: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The engine stopped (invariant failures carry seed and replay command).
    #[error(transparent)]
    Sim(#[from] SimError),
    /// A marketplace invariant failed.
    #[error("invariant `{invariant}` failed at {at}: {message}\n  seed {seed}; replay: {replay}")]
    Invariant {
        /// Which.
        invariant: &'static str,
        /// When.
        at: Timestamp,
        /// What.
        message: String,
        /// The seed.
        seed: u64,
        /// Replay command.
        replay: String,
    },
}

/// Mean and percentiles.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Dist {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

fn dist(mut v: Vec<f64>) -> Dist {
    if v.is_empty() {
        return Dist::default();
    }
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    Dist {
        mean: v.iter().sum::<f64>() / v.len() as f64,
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
    }
}

/// Profit of one behaviour class.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProfitStats {
    /// Mean profit per provider.
    pub mean: f64,
    /// Mean profit per unit of stake.
    pub per_stake: f64,
    /// Providers.
    pub count: u64,
}

/// The marketplace section of `summary.json` (keys are an interface).
#[derive(Debug, Clone, Default, Serialize)]
pub struct MarketplaceSummary {
    /// Ledger figures.
    pub ledger: serde_json::Value,
    /// Market figures.
    pub market: serde_json::Value,
    /// Job figures.
    pub jobs: serde_json::Value,
    /// Entrapment figures; `detection_by_behaviour` compares the lots
    /// convicted per behaviour with the optimizer's exact probabilities.
    pub entrap: serde_json::Value,
    /// Economics.
    pub economics: serde_json::Value,
    /// Reputation; `sybil` compares whitewashed identities with honest
    /// newcomers.
    pub reputation: serde_json::Value,
    /// The app and dataset registry: `apps`, `datasets`, `owner_revenue`.
    pub registry: serde_json::Value,
}

/// The result of a marketplace run.
#[derive(Debug, Clone)]
pub struct MarketplaceReport {
    /// Engine digest (chained over every event).
    pub digest: idlegrid_primitives::Digest,
    /// Final ledger state digest (node 0).
    pub ledger_digest: idlegrid_primitives::Digest,
    /// Summary sections.
    pub summary: MarketplaceSummary,
    /// Consensus metrics of the validators (for `summary.json`'s
    /// `consensus` section).
    pub consensus_metrics: crate::metrics::Metrics,
    /// Byzantine validators in the run.
    pub byzantine: usize,
    /// Engine events.
    pub events: u64,
    /// Jobs completed.
    pub jobs_completed: u64,
    /// Cheating providers caught (slashed at least once).
    pub cheaters_caught: u64,
    /// Cheating providers that cheated at least once.
    pub cheating_providers: u64,
    /// Detected cheated lots / cheated lots.
    pub detection_rate: f64,
    /// Mean profit of honest providers.
    pub honest_profit_mean: f64,
    /// Mean profit of cheating providers.
    pub cheater_profit_mean: f64,
    /// Supply conserved (total = initial − burned at every batch).
    pub supply_conserved: bool,
    /// Initial supply.
    pub initial_supply: u128,
    /// Burned.
    pub burned: u128,
    /// The engine's report (digest, counters, per-second series).
    pub report: crate::RunReport,
    /// Per-virtual-second marketplace series (prices, matches, jobs,
    /// balances of honest vs cheating providers).
    pub series: MarketSeries,
}

/// Coarse per-virtual-second marketplace series, recorded by the driver
/// (index = virtual second). Balances are mean wealth (balance + bonded +
/// unbonding) relative to genesis, before compute cost.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MarketSeries {
    /// Mean clearing price of the lots matched in that second (`None`
    /// when nothing matched).
    pub clearing_price: Vec<Option<f64>>,
    /// Lots matched in that second.
    pub matches: Vec<u64>,
    /// Jobs closed in that second.
    pub jobs_completed: Vec<u64>,
    /// Mean wealth change of honest providers at the end of the second.
    pub honest_balance: Vec<f64>,
    /// Mean wealth change of cheating providers at the end of the second.
    pub cheater_balance: Vec<f64>,
}

impl MarketSeries {
    /// The series as CSV (`second,clearing_price,matches,jobs_completed,honest_balance,cheater_balance`).
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "second,clearing_price,matches,jobs_completed,honest_balance,cheater_balance\n",
        );
        for i in 0..self.matches.len() {
            let price = self.clearing_price[i]
                .map(|p| format!("{p:.1}"))
                .unwrap_or_default();
            out += &format!(
                "{i},{price},{},{},{:.1},{:.1}\n",
                self.matches[i],
                self.jobs_completed[i],
                self.honest_balance[i],
                self.cheater_balance[i]
            );
        }
        out
    }
}

impl MarketplaceReport {
    /// The terminal summary.
    pub fn render(&self) -> String {
        format!("{}digest        {}", self.render_lines(), self.digest)
    }

    /// The marketplace lines of the terminal summary (each ends in `\n`).
    pub fn render_lines(&self) -> String {
        use std::fmt::Write as _;
        let v = self.summary_json();
        let f = |path: &[&str]| {
            path.iter()
                .try_fold(&v, |x, k| x.get(*k))
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(0.0)
        };
        let mut s = String::new();
        let _ = writeln!(
            s,
            "jobs          {} completed of {} submitted ({} failed), {} lots settled; latency p50 {:.1} s, p90 {:.1} s, p99 {:.1} s",
            self.jobs_completed,
            f(&["jobs", "submitted"]),
            f(&["jobs", "failed"]),
            f(&["jobs", "lots_settled"]),
            f(&["jobs", "latency_seconds", "p50"]),
            f(&["jobs", "latency_seconds", "p90"]),
            f(&["jobs", "latency_seconds", "p99"]),
        );
        let _ = writeln!(
            s,
            "market        {} matches, clearing price mean {:.0} (p50 {:.0}, p90 {:.0}), volume {}, welfare {:.0}",
            f(&["market", "matches"]),
            f(&["market", "clearing_price", "mean"]),
            f(&["market", "clearing_price", "p50"]),
            f(&["market", "clearing_price", "p90"]),
            v["market"]["volume"].as_str().unwrap_or("0"),
            f(&["market", "welfare"]),
        );
        if let Some(e) = v["market"]["efficiency"].as_f64() {
            let _ = writeln!(
                s,
                "efficiency    {:.1} % of the optimal assignment's declared welfare over {} clearings",
                100.0 * e,
                f(&["market", "welfare_periods"]),
            );
        }
        let _ = writeln!(
            s,
            "cheaters      {} caught of {} that cheated ({} assigned); lot detection rate {:.1} %; {} honest slashed",
            self.cheaters_caught,
            self.cheating_providers,
            f(&["entrap", "cheaters_assigned"]),
            100.0 * self.detection_rate,
            f(&["entrap", "honest_slashed"]),
        );
        let _ = writeln!(
            s,
            "entrap        {} traps (ratio {:.2}), verification overhead {:.2}, framings caught {} of {} ({} hit cheaters who admitted)",
            f(&["entrap", "traps_planted"]),
            f(&["entrap", "trap_ratio"]),
            f(&["entrap", "verification_overhead"]),
            f(&["entrap", "framings_caught"]),
            f(&["entrap", "framing_attempts"]),
            f(&["entrap", "framings_on_admitted_cheats"]),
        );
        if let Some(by) = v["entrap"]["detection_by_behaviour"].as_object()
            && !by.is_empty()
        {
            let parts: Vec<String> = by
                .iter()
                .map(|(k, x)| {
                    let z = x["z"]
                        .as_f64()
                        .map_or("n/a".to_string(), |z| format!("{z:+.2}"));
                    format!(
                        "{k} {}/{} (expected {:.1} ± {:.1}, z {z}{})",
                        x["detected"].as_u64().unwrap_or(0),
                        x["cheated_lots"].as_u64().unwrap_or(0),
                        x["expected"].as_f64().unwrap_or(0.0),
                        x["sd"].as_f64().unwrap_or(0.0),
                        if x["uniform"].as_bool().unwrap_or(true) {
                            ""
                        } else {
                            ", not uniform"
                        },
                    )
                })
                .collect();
            let _ = writeln!(
                s,
                "detection     convicted/cheated lots vs the hypergeometric expectation: {}",
                parts.join(", ")
            );
        }
        let _ = writeln!(
            s,
            "profit        honest mean {:.0}, cheater mean {:.0}",
            self.honest_profit_mean, self.cheater_profit_mean
        );
        if let Some(by) = v["economics"]["profit_by_behaviour"].as_object() {
            let parts: Vec<String> = by
                .iter()
                .map(|(k, x)| {
                    format!(
                        "{k} {:.0} ({} with work)",
                        x["mean"].as_f64().unwrap_or(0.0),
                        x["with_work"].as_u64().unwrap_or(0)
                    )
                })
                .collect();
            let _ = writeln!(s, "by behaviour  {}", parts.join(", "));
        }
        let y = &v["reputation"]["sybil"];
        if y["whitewashers"].as_u64().unwrap_or(0) > 0 {
            let g = |k: &str| y[k].as_f64().unwrap_or(0.0);
            let _ = writeln!(
                s,
                "sybil         {} whitewashes by {} whitewashers vs {} newcomers: first match after {:.1} s (newcomers {:.1} s), {:.3} lots/s while present (newcomers {:.3}), traps per real subtask {:.2} on the first lot (newcomers {:.2}), {:.2} overall (newcomers {:.2}); {:.0} % of those matched caught again, on lot {:.1}, {:.1} s after re-entry",
                g("whitewashes"),
                g("whitewashers"),
                g("newcomers"),
                g("whitewashed_time_to_first_match_s"),
                g("newcomer_time_to_first_match_s"),
                g("whitewashed_work_rate"),
                g("newcomer_work_rate"),
                g("whitewashed_first_lot_trap_ratio"),
                g("newcomer_first_lot_trap_ratio"),
                g("whitewashed_trap_ratio"),
                g("newcomer_trap_ratio"),
                100.0 * g("whitewashed_caught_again"),
                g("whitewashed_lots_to_caught"),
                g("whitewashed_time_to_caught_s"),
            );
        }
        let _ = writeln!(
            s,
            "registry      {} apps, {} datasets; owners paid {} over {} jobs",
            f(&["registry", "apps"]),
            f(&["registry", "datasets"]),
            v["registry"]["owner_revenue"].as_str().unwrap_or("0"),
            f(&["registry", "jobs_settled"]),
        );
        let _ = writeln!(
            s,
            "ledger        supply conserved: {} (initial {}, final {}, burned {}; {} batches checked in full, {} validator digests compared)",
            if self.supply_conserved { "yes" } else { "NO" },
            self.initial_supply,
            self.initial_supply - self.burned,
            self.burned,
            f(&["ledger", "batches_checked"]),
            f(&["ledger", "batches_compared"]),
        );
        s
    }

    /// The summary as JSON (the key names).
    pub fn summary_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.summary).unwrap_or_default()
    }
}

fn behaviour_for(i: u32, cfg: &MarketplaceConfig) -> Behaviour {
    let n = cfg.providers.max(1);
    let cheaters = (f64::from(n) * cfg.cheater_fraction).round() as u32;
    let faulty = (f64::from(n) * cfg.faulty_fraction).round() as u32;
    let rate = Rate::from_ppm((cfg.cheat_rate * 1e6) as u32);
    // Spread cheaters evenly through the population.
    let stride = n.checked_div(cheaters).unwrap_or(u32::MAX);
    let pattern = cfg.mix.pattern();
    if cheaters > 0 && !pattern.is_empty() && i % stride == stride - 1 && i / stride < cheaters {
        return match pattern[(i / stride) as usize % pattern.len()] {
            0 => Behaviour::LazyCheater { rate },
            1 => Behaviour::TrapGuessing {
                rate,
                accuracy: Rate::percent(50),
            },
            2 => Behaviour::Colluding { group: 7, rate },
            _ => Behaviour::BaitAndSwitch {
                honest_tasks: u64::from(cfg.bait_honest_tasks),
                rate,
            },
        };
    }
    if faulty > 0 && i % (n / faulty).max(1) == 0 && i / (n / faulty).max(1) < faulty {
        return Behaviour::Faulty {
            rate: Rate::percent(2),
        };
    }
    Behaviour::Honest
}

fn validate(cfg: &MarketplaceConfig) -> Result<(), MarketplaceError> {
    let bad = |field, reason: &str| {
        Err(MarketplaceError::Config {
            field,
            reason: reason.into(),
        })
    };
    if !(4..=200).contains(&cfg.validators) {
        return bad("validators", "must be 4..=200");
    }
    if cfg.providers == 0 || cfg.clients == 0 {
        return bad("providers", "providers and clients must be positive");
    }
    if !(0.0..=1.0).contains(&cfg.cheater_fraction) || !(0.0..=1.0).contains(&cfg.faulty_fraction) {
        return bad("cheater_fraction", "fractions must be within 0..=1");
    }
    if !(0.0..=1.0).contains(&cfg.cheat_rate) {
        return bad("cheat_rate", "must be within 0..=1");
    }
    if cfg.framing_clients > cfg.clients {
        return bad("framing_clients", "more framing clients than clients");
    }
    if cfg.job_interval_secs.is_nan() || cfg.job_interval_secs <= 0.0 {
        return bad("job_interval_secs", "must be positive");
    }
    if cfg.subtasks_per_lot == 0 || cfg.subtasks_per_lot > 200 {
        return bad("subtasks_per_lot", "must be 1..=200");
    }
    if cfg.max_lots == 0 || cfg.max_lots > 16 {
        return bad("max_lots", "must be 1..=16");
    }
    if cfg.stake_per_slot == 0 {
        return bad("stake_per_slot", "must be positive");
    }
    if cfg.cheater_fraction > 0.0 && cfg.mix.pattern().is_empty() {
        return bad(
            "mix",
            "cheaters need at least one behaviour with positive weight",
        );
    }
    if cfg.gateways == 0 || cfg.gateways > cfg.validators {
        return bad("gateways", "must be 1..=validators");
    }
    if !(1..=16).contains(&cfg.provider_capacity) {
        return bad("provider_capacity", "must be 1..=16");
    }
    if cfg.price_min == 0 || cfg.price_min > cfg.price_max || cfg.price_max > 1 << 60 {
        return bad("price_min", "need 0 < price_min <= price_max <= 2^60");
    }
    if cfg.speed_min == 0 || cfg.speed_min > cfg.speed_max {
        return bad("speed_min", "need 0 < speed_min <= speed_max");
    }
    if cfg.max_price == 0 || cfg.max_price > 1 << 60 {
        return bad("max_price", "must be in 1..=2^60");
    }
    if let Err((field, reason)) = cfg.sybil.check(cfg.active_secs) {
        return bad(field, &reason);
    }
    let f = crate::consensus::ConsensusParams::max_faulty(cfg.validators as usize);
    let byz = cfg.byzantine.iter().filter(|b| b.is_byzantine()).count();
    if cfg.byzantine.len() > cfg.validators as usize || byz > f {
        return bad(
            "byzantine",
            &format!(
                "{byz} Byzantine validators but {} tolerate at most {f}",
                cfg.validators
            ),
        );
    }
    Ok(())
}

const PRICE: u128 = 10_000; // per compute-second
const CAP_MICROS: u64 = 200_000; // pay-as-you-go cap per subtask
const CLIENT_BOND: u128 = 5_000;
const STEP: Duration = Duration::from_millis(50);
const REPRICE_PERIOD: Duration = Duration::from_millis(2_000);
/// Price per use of the marketplace's one paid app.
const APP_PRICE: u128 = 2_000;
/// Price per use of the marketplace's one dataset.
const DATASET_PRICE: u128 = 500;

/// The goods of a client's `job`: every third job runs the paid app on the
/// dataset, every third runs the app alone, the rest neither.
fn job_goods(
    job: u64,
    app: idlegrid_primitives::Digest,
    data: idlegrid_primitives::Digest,
) -> JobGoods {
    match job % 3 {
        0 => JobGoods {
            app: Some(app),
            datasets: vec![data],
            max_fee_per_slot: Amount::new(APP_PRICE + DATASET_PRICE),
        },
        1 => JobGoods {
            app: Some(app),
            datasets: Vec::new(),
            max_fee_per_slot: Amount::new(APP_PRICE),
        },
        _ => JobGoods::none(),
    }
}

/// Builds validator `ctx.index` of the committee (its consensus behaviour
/// from the scenario; only node 0 emits notices, the light nodes' view).
fn validator(
    ctx: &crate::NodeContext<'_>,
    setup: &ValidatorSetup,
    committee: &Committee,
    behaviors: &[Behavior],
) -> ValidatorNode {
    let mut setup = setup.clone();
    if let Some(b) = behaviors.get(ctx.index.get()) {
        setup.consensus.byzantine = b.to_config();
    }
    let key = Keypair::from_seed(&ctx.key_seed);
    ValidatorNode::new(
        key,
        committee.clone(),
        &setup,
        ctx.seed,
        ctx.index.get() == 0,
    )
    .expect("validated validator setup")
}

/// Bytes a node message takes on the wire (consensus as the consensus
/// scenario counts it).
fn node_wire_size(m: &NodeMessage) -> usize {
    match m {
        NodeMessage::Consensus(c) => crate::consensus::wire_size(c),
        other => idlegrid_primitives::encoded_len(other),
    }
}

/// The fingerprint of a node message in the run digest.
fn node_fingerprint(m: &NodeMessage) -> idlegrid_primitives::Digest {
    match m {
        NodeMessage::Consensus(c) => crate::consensus::fingerprint(c),
        other => idlegrid_primitives::Digest::of(
            idlegrid_primitives::Domain::new("idlegrid/sim/node-message"),
            other,
        ),
    }
}

fn mechanism() -> Box<dyn Mechanism> {
    Box::new(KDouble::new(5_000).expect("k = 0.5 is valid"))
}

struct Lot {
    provider: AccountId,
}

/// Runs the marketplace composition (see the module docs).
pub fn run_marketplace(cfg: &MarketplaceConfig) -> Result<MarketplaceReport, MarketplaceError> {
    validate(cfg)?;
    let root = Seed::from_u64(cfg.seed).derive("marketplace");
    let mut rng = root.derive("driver").rng();
    let stake = Amount::new(cfg.stake_per_slot);
    let params = Params::default();
    let chain = params.chain_id;
    let params_min_new_account = params.min_new_account;

    // Validator identities are the engine's (derived from the root seed).
    let n_val = cfg.validators as usize;
    let nreg = cfg.network.regions.len().max(1);
    let specs: Vec<NodeSpec> = (0..n_val)
        .map(|i| {
            let mut spec = NodeSpec::in_region(RegionId::new((i % nreg) as u16));
            if let Some(Behavior::Delay { extra }) = cfg.byzantine.get(i) {
                spec.egress_delay = *extra;
            }
            spec
        })
        .collect();

    // Light nodes.
    // Machines: the genesis population, then the whitewashers and the
    // newcomers (drawn from their own stream so that adding them leaves
    // the genesis population unchanged).
    let mut sybil_rng = root.derive("sybil").rng();
    let n_sybil = cfg.sybil.whitewashers + cfg.sybil.newcomers;
    let mut providers: Vec<ProviderAgent> = (0..cfg.providers + n_sybil)
        .map(|i| {
            let key = Keypair::from_seed(&root.derive_indexed("provider", u64::from(i)));
            let k = i.saturating_sub(cfg.providers);
            let (behaviour, identity, r) = if i < cfg.providers {
                (behaviour_for(i, cfg), Identity::Genesis, &mut rng)
            } else if k < cfg.sybil.whitewashers {
                let rate = Rate::from_ppm((cfg.cheat_rate * 1e6) as u32);
                (
                    Behaviour::LazyCheater { rate },
                    Identity::Whitewash { generation: 0 },
                    &mut sybil_rng,
                )
            } else {
                let (a, b) = (cfg.sybil.join_from_secs, cfg.sybil.join_until_secs);
                let at = sybil_rng.gen_range(a * 1_000_000..=b * 1_000_000);
                (
                    Behaviour::Honest,
                    Identity::Newcomer {
                        join_at: Timestamp::from_micros(at),
                    },
                    &mut sybil_rng,
                )
            };
            let speed = r.gen_range(cfg.speed_min..=cfg.speed_max);
            let price = Amount::new(r.gen_range(cfg.price_min..=cfg.price_max));
            let spec = sybil::MachineSpec {
                machine: MachineId(i),
                behaviour,
                speed,
                price,
                exec_seed: root.derive_indexed("exec", u64::from(i)),
                region: (i as usize % nreg) as u16,
                capacity: cfg.provider_capacity,
            };
            sybil::first_identity(key, chain, spec, identity)
        })
        .collect();
    let mut clients: Vec<ClientAgent> = (0..cfg.clients)
        .map(|i| ClientAgent {
            outbox: Outbox::new(
                Keypair::from_seed(&root.derive_indexed("client", u64::from(i))),
                chain,
            ),
            framing: i < cfg.framing_clients,
            region: (i as usize % nreg) as u16,
            next_job: 0,
            plans: BTreeMap::new(),
            initial_wealth: Amount::ZERO,
        })
        .collect();
    // The registry: one paid app and one dataset, each with its own owner.
    let app_owner = Keypair::from_seed(&root.derive("app-owner"));
    let data_owner = Keypair::from_seed(&root.derive("dataset-owner"));
    let app_digest = content_digest(GoodKind::App, b"idlegrid/sim/app/render-v1");
    let data_digest = content_digest(GoodKind::Dataset, b"idlegrid/sim/dataset/scenes-v1");
    let mut owner_boxes = [
        Outbox::new(app_owner.clone(), chain),
        Outbox::new(data_owner.clone(), chain),
    ];

    // Genesis: validators need only quota; stakes cover every bond up front.
    let mut sim_cfg = SimConfig::new(cfg.seed);
    let total = Duration::from_secs(cfg.active_secs + cfg.drain_secs);
    sim_cfg.max_time = Timestamp::ZERO + total;
    sim_cfg.max_events = 200_000_000;
    sim_cfg.replay_command = Some(
        cfg.replay_command
            .clone()
            .unwrap_or_else(|| format!("idlegrid-sim run --seed {}", cfg.seed)),
    );
    let provider_balance = Amount::new(1_000_000);
    let provider_stake = Amount::new(cfg.stake_per_slot * u128::from(cfg.provider_capacity) + 1);
    let client_balance = Amount::new(1_000_000_000);
    let client_stake = Amount::new(CLIENT_BOND * 200);
    let mut balances = vec![
        (app_owner.account_id(), Amount::new(1_000_000)),
        (data_owner.account_id(), Amount::new(1_000_000)),
    ];
    let mut stakes = Vec::new();
    for p in providers.iter_mut() {
        balances.push((p.outbox.account(), provider_balance));
        stakes.push((p.outbox.account(), provider_stake));
        p.initial_wealth = provider_balance.saturating_add(provider_stake);
    }
    for c in clients.iter_mut() {
        balances.push((c.outbox.account(), client_balance));
        stakes.push((c.outbox.account(), client_stake));
        c.initial_wealth = client_balance.saturating_add(client_stake);
    }
    // Bonds must be coverable before the run starts.
    if provider_stake
        < stake
            .checked_mul(u128::from(cfg.provider_capacity))
            .unwrap_or(Amount::MAX)
    {
        return Err(MarketplaceError::Config {
            field: "stake_per_slot",
            reason: "provider stake cannot cover its slot bonds".into(),
        });
    }

    // Build the simulation once to learn validator identities, then the genesis.
    let net = cfg.network.clone();
    let regions = net.regions.clone();
    let val_ids: Vec<idlegrid_primitives::NodeId> = {
        let probe: Simulation<crate::demo::Gossip, ()> = Simulation::new(
            sim_cfg.clone(),
            net.clone(),
            specs.clone(),
            |ctx| crate::demo::Gossip::new(ctx, crate::demo::GossipConfig::default()),
            (),
        )?;
        probe.node_ids().to_vec()
    };
    for v in &val_ids {
        balances.push((v.account(), Amount::new(1_000_000)));
    }
    let genesis = Genesis {
        balances,
        stakes,
        params,
    };
    let rules = MarketRules {
        stake_per_slot: stake,
        slash_to_client_bps: 5_000,
        stage_deadline: Duration::from_secs(15),
        clearing_period: Duration::from_millis(1_000),
        committee_size: 3,
        referees: val_ids.clone(),
        book: BookParams::default(),
        reputation_epoch_secs: 10,
    };
    let consensus = cfg.consensus.clone();
    let setup = ValidatorSetup {
        ledger: idlegrid_dag_ledger::ledger::Ledger::new(genesis).map_err(|e| {
            MarketplaceError::Config {
                field: "genesis",
                reason: e.to_string(),
            }
        })?,
        rules,
        consensus,
        mechanism,
        epoch_secs: 1,
    };
    let committee =
        Committee::equal(val_ids.iter().copied()).map_err(|e| MarketplaceError::Config {
            field: "validators",
            reason: e.to_string(),
        })?;
    let behaviors = cfg.byzantine.clone();
    let mut sim = Simulation::new(
        sim_cfg.clone(),
        net,
        specs,
        move |ctx| validator(ctx, &setup, &committee, &behaviors),
        MarketObserver::new(n_val),
    )?;
    sim.set_size_of_message(node_wire_size);
    sim.set_message_fingerprint(node_fingerprint);
    for (at, f) in &cfg.faults {
        sim.schedule(*at, f.clone())?;
    }
    // A light node's gateway: by account, moved on after every failover.
    let mut failover: BTreeMap<AccountId, usize> = BTreeMap::new();
    let gw = |a: &AccountId, failover: &BTreeMap<AccountId, usize>| {
        let k = failover.get(a).copied().unwrap_or(0);
        NodeIndex::new(((a.as_bytes()[0] as usize + k) % n_val) as u32)
    };
    let val_index: BTreeMap<idlegrid_primitives::NodeId, usize> =
        val_ids.iter().enumerate().map(|(i, v)| (*v, i)).collect();
    let mut by_acct: BTreeMap<AccountId, usize> = providers
        .iter()
        .enumerate()
        .map(|(i, p)| (p.outbox.account(), i))
        .collect();
    let client_idx: BTreeMap<AccountId, usize> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| (c.outbox.account(), i))
        .collect();
    let latency = |a: u16, b: u16| regions.latency(RegionId::new(a), RegionId::new(b));

    let mut outgoing: Vec<SignedTransaction> = Vec::new();
    // Providers offer at once (newcomers at their join time).
    for p in providers.iter_mut().filter(|p| p.is_active()) {
        outgoing.push(sybil::offer(p, Timestamp::ZERO, stake));
    }
    let sybil_env = sybil::Env {
        root: &root,
        chain,
        provider_stake,
        stake_per_slot: stake,
        min_new_account: params_min_new_account,
        max_identities: cfg.sybil.max_identities,
        reenter_until: Timestamp::ZERO + Duration::from_secs(cfg.sybil.join_until_secs),
        price_min: cfg.price_min,
        price_max: cfg.price_max,
        out_of_market: Amount::new(cfg.max_price.saturating_mul(1_000).max(1 << 61)),
    };
    let mut sybil_counters = sybil::Counters::default();
    let mut detection = detection::DetectionTallies::default();
    // Owners list their goods at once.
    let listings = [
        (&app_owner, GoodKind::App, app_digest, APP_PRICE),
        (&data_owner, GoodKind::Dataset, data_digest, DATASET_PRICE),
    ];
    for (ob, (key, kind, digest, price)) in owner_boxes.iter_mut().zip(listings) {
        let rec = SignedOp::sign(
            key,
            0,
            RegistryOp::Register {
                kind,
                digest,
                version: 1,
                price_per_use: Amount::new(price),
                policy: AccessPolicy::Public,
            },
        );
        outgoing.push(ob.sign(Timestamp::ZERO, MarketTx::Registry(rec)));
    }
    let mut next_post: Vec<Timestamp> = (0..clients.len())
        .map(|_| Timestamp::from_micros(rng.gen_range(1_000_000..4_000_000u64)))
        .collect();
    let mut lots: BTreeMap<(AccountId, u64, u32), Lot> = BTreeMap::new();
    let mut job_posted_at: BTreeMap<(AccountId, u64), Timestamp> = BTreeMap::new();
    let mut latencies = Vec::new();
    let mut prices = Vec::new();
    let mut m = Metrics::default();
    let mut welfare = WelfareBenchmark::default();
    let mut next_reprice = Timestamp::ZERO + REPRICE_PERIOD;
    let mut slashed_providers: BTreeSet<AccountId> = BTreeSet::new();
    let mut awaiting: BTreeSet<(usize, (AccountId, u64, u32))> = BTreeSet::new();
    let mut now = Timestamp::ZERO;
    let active_until = Timestamp::ZERO + Duration::from_secs(cfg.active_secs);
    let mut series = MarketSeries::default();
    let mut next_sample = Timestamp::ZERO + Duration::from_secs(1);
    let (mut sec_price, mut sec_matches, mut jobs_before) = ((0.0f64, 0u64), 0u64, 0u64);

    while now < sim_cfg.max_time {
        // Submit what the light nodes produced.
        // Each transaction goes to `gateways` validators spread over the
        // committee (duplicates fail the nonce check and change nothing).
        let spread = (n_val / cfg.gateways as usize).max(1);
        for tx in outgoing.drain(..) {
            let g = gw(&tx.tx.sender, &failover);
            for r in 0..cfg.gateways as usize {
                let g = NodeIndex::new(((g.get() + r * spread) % n_val) as u32);
                sim.with_node(g, |node, _| {
                    let _ = node.submit(&tx);
                })?;
            }
        }
        now = now + STEP;
        sim.run_until(now)?;
        if let Some(v) = sim.observer().failure() {
            return Err(MarketplaceError::Invariant {
                invariant: "ledger",
                at: now,
                message: v,
                seed: cfg.seed,
                replay: sim_cfg.replay(),
            });
        }
        let mut notices = Vec::new();
        sim.with_node(NodeIndex::new(0), |node, _| notices = node.drain_notices())?;
        let view = sim.node(NodeIndex::new(0)).expect("node 0 exists");
        // Coarse per-second series (state as of this slice).
        if now >= next_sample {
            next_sample = next_sample + Duration::from_secs(1);
            series
                .clearing_price
                .push((sec_price.1 > 0).then(|| sec_price.0 / sec_price.1 as f64));
            series.matches.push(sec_matches);
            series.jobs_completed.push(m.jobs_closed - jobs_before);
            (sec_price, sec_matches, jobs_before) = ((0.0, 0), 0, m.jobs_closed);
            // Per machine: a whitewasher's identities add up (their
            // transfers cancel), and it counts once.
            let (mut hon, mut che) = ((0.0f64, 0u64), (0.0f64, 0u64));
            for p in &providers {
                let w = view
                    .ledger()
                    .account(&p.outbox.account())
                    .map_or(0i128, |x| {
                        (x.balance.get() + x.bonded.get() + x.unbonding_total().get()) as i128
                    });
                let delta = (w - p.initial_wealth.get() as i128) as f64;
                let first = u64::from(p.is_first_identity());
                if p.behaviour == Behaviour::Honest {
                    hon = (hon.0 + delta, hon.1 + first);
                } else if is_cheater(&p.behaviour) {
                    che = (che.0 + delta, che.1 + first);
                }
            }
            series.honest_balance.push(hon.0 / hon.1.max(1) as f64);
            series.cheater_balance.push(che.0 / che.1.max(1) as f64);
        }
        // Resubmission of rejected sequences.
        let patience = Duration::from_secs(20);
        for ob in providers
            .iter_mut()
            .map(|p| &mut p.outbox)
            .chain(clients.iter_mut().map(|c| &mut c.outbox))
            .chain(owner_boxes.iter_mut())
        {
            let n = view.ledger().nonce(&ob.account()).get();
            let re = ob.reconcile(n, now, patience);
            if !re.is_empty() {
                failover.insert(ob.account(), ob.failovers() as usize);
            }
            m.resubmitted += re.len() as u64;
            outgoing.extend(re);
        }
        // Newcomers join, whitewashed keys bond and offer once funded,
        // abandoned keys sweep their matured stake.
        if n_sybil > 0 {
            sybil::step(
                &mut providers,
                view.ledger(),
                &sybil_env,
                now,
                &mut outgoing,
                &mut sybil_counters,
            );
        }
        // Adaptive pricing: an idle provider undercuts (down to its floor),
        // a matched one raises (up to the clients' limit).
        if cfg.adaptive_pricing && now >= next_reprice {
            next_reprice = now + REPRICE_PERIOD;
            for p in providers.iter_mut().filter(|p| p.is_active()) {
                let new = if p.recent_matches == 0 {
                    (p.price.get() * 92 / 100).max(p.floor.get())
                } else {
                    (p.price.get() * 104 / 100)
                        .min(cfg.max_price)
                        .max(p.floor.get())
                };
                p.recent_matches = 0;
                if new != p.price.get() {
                    p.price = Amount::new(new);
                    m.reprices += 1;
                    outgoing.push(p.outbox.sign(now, MarketTx::Reprice { price: p.price }));
                }
            }
        }
        // Clients post jobs.
        let fresh_bps = score_bps(view.market().book().fresh_score());
        if now < active_until {
            for (ci, c) in clients.iter_mut().enumerate() {
                if now < next_post[ci] {
                    continue;
                }
                let gap = -cfg.job_interval_secs * (1.0 - rng.r#gen::<f64>()).ln();
                next_post[ci] = now + Duration::from_micros((gap * 1e6) as u64 + 1);
                let job = c.next_job;
                c.next_job += 1;
                let lots_n = rng.gen_range(1..=cfg.max_lots);
                let req = JobRequest {
                    job,
                    lots: lots_n,
                    max_slots_per_lot: cfg.subtasks_per_lot * 3 + 4,
                    max_price: Amount::new(cfg.max_price),
                    cap_micros_per_subtask: CAP_MICROS,
                    // Reputation feeds the market filter: no provider
                    // worse than a newcomer.
                    min_reputation_bps: fresh_bps,
                    client_bond: Amount::new(CLIENT_BOND),
                    deadline: now + Duration::from_secs(20),
                    goods: job_goods(job, app_digest, data_digest),
                };
                job_posted_at.insert((c.outbox.account(), job), now);
                m.jobs_submitted += 1;
                m.orders += 1;
                outgoing.push(c.outbox.sign(now, MarketTx::PostJob(req)));
            }
        }
        // React to the ledger.
        let mut votes: Vec<(usize, MarketTx)> = Vec::new();
        let mut abandons: Vec<usize> = Vec::new();
        for n in notices {
            match n {
                Notice::Matched {
                    client,
                    job,
                    lot,
                    provider,
                    price,
                    credibility_ppm,
                } => {
                    m.matches += 1;
                    prices.push(price.get() as f64);
                    sec_matches += 1;
                    sec_price = (sec_price.0 + price.get() as f64, sec_price.1 + 1);
                    let ci = client_idx[&client];
                    let pi = by_acct[&provider];
                    providers[pi].recent_matches += 1;
                    let c = &mut clients[ci];
                    // Reputation feeds the trap optimizer.
                    let cred = f64::from(credibility_ppm) / 1e6;
                    let nreal = cfg.subtasks_per_lot;
                    let mut op = idlegrid_entrap::Params::new(
                        nreal,
                        Amount::new(PRICE / 40),
                        Amount::new(price.get() / 20),
                        stake,
                    );
                    op.credibility = cred.clamp(0.0, 0.999);
                    op.max_traps = nreal * 2 + 4;
                    let k = optimize_traps(&op)
                        .map(|a| a.recommended.get())
                        .unwrap_or(2)
                        .clamp(1, nreal * 2 + 4);
                    let rid = round_id(job, lot);
                    let real: Vec<_> = (0..u64::from(nreal))
                        .map(|i| input_digest(&client, job, lot, i))
                        .collect();
                    let traps: Vec<TrapSpec> = (0..u64::from(k))
                        .map(|i| {
                            let x = input_digest(&client, job, lot, 10_000 + i);
                            let expected = if c.framing && i == 0 {
                                idlegrid_primitives::Digest::of(
                                    idlegrid_primitives::Domain::new("idlegrid/sim/frame"),
                                    &x,
                                )
                            } else {
                                truth(&x)
                            };
                            TrapSpec::precomputed(x, expected)
                        })
                        .collect();
                    if c.framing {
                        m.framing_attempts += 1;
                    }
                    m.traps_planted += u64::from(k);
                    m.real_subtasks += u64::from(nreal);
                    {
                        let p = &mut providers[pi];
                        let present = now < active_until && p.is_active();
                        let pr = &mut p.presence;
                        if pr.first_match_at.is_none() {
                            pr.first_match_at = Some(now);
                            pr.first_lot_traps = u64::from(k);
                            pr.first_lot_real = u64::from(nreal);
                        }
                        pr.traps_faced += u64::from(k);
                        pr.real_faced += u64::from(nreal);
                        pr.matches_present += u64::from(present);
                    }
                    let Ok(plan) = JobPlan::builder(rid)
                        .real_inputs(real)
                        .traps(traps)
                        .seed(root.derive_indexed(
                            "plan",
                            job ^ (u64::from(lot) << 40) ^ u64::from(ci as u32) << 48,
                        ))
                        .build()
                    else {
                        continue;
                    };
                    outgoing.push(c.outbox.sign(
                        now,
                        MarketTx::Plan {
                            job,
                            lot,
                            plan: plan.public().clone(),
                        },
                    ));
                    // Task hand-off off-ledger, with WAN latency.
                    let arrive = now + latency(c.region, providers[pi].region);
                    let inputs = plan.public().slot_inputs.clone();
                    let is_trap: Vec<bool> = (0..inputs.len())
                        .map(|s| plan.is_trap(SubtaskIndex::new(s as u32)))
                        .collect();
                    c.plans.insert((job, lot), plan);
                    let w: LotWork = providers[pi].execute(&inputs, &is_trap, arrive);
                    providers[pi].work.insert((client, job, lot), w);
                    lots.insert((client, job, lot), Lot { provider });
                }
                Notice::RoundOpened {
                    client, job, lot, ..
                } => {
                    if let Some(l) = lots.get(&(client, job, lot)) {
                        let pi = by_acct[&l.provider];
                        if let Some(w) = providers[pi].work.get_mut(&(client, job, lot)) {
                            w.opened = true;
                            if !w.delivered {
                                awaiting.insert((pi, (client, job, lot)));
                            }
                        }
                    }
                }
                Notice::Delivered {
                    client, job, lot, ..
                } => {
                    let ci = client_idx[&client];
                    let Some(l) = lots.get(&(client, job, lot)) else {
                        continue;
                    };
                    let pi = by_acct[&l.provider];
                    let outputs = providers[pi].work[&(client, job, lot)].outputs.clone();
                    let c = &mut clients[ci];
                    let Some(plan) = c.plans.get(&(job, lot)) else {
                        continue;
                    };
                    let accuse = plan.wrong_traps(&outputs).unwrap_or_default();
                    let reveal = plan.trap_reveal(vec![]);
                    outgoing.push(c.outbox.sign(
                        now,
                        MarketTx::Verify {
                            job,
                            lot,
                            reveal,
                            accuse,
                        },
                    ));
                }
                Notice::Accused {
                    client,
                    job,
                    lot,
                    provider,
                    traps,
                } => {
                    let pi = by_acct[&provider];
                    let p = &mut providers[pi];
                    let w = &p.work[&(client, job, lot)];
                    // A provider that knowingly cheated on an accused slot
                    // accepts; otherwise it disputes.
                    let guilty = traps
                        .iter()
                        .any(|t| w.cheated.get(t.get() as usize).copied().unwrap_or(false));
                    let tx = if guilty {
                        MarketTx::Accept { client, job, lot }
                    } else {
                        m.disputes += 1;
                        MarketTx::Dispute { client, job, lot }
                    };
                    outgoing.push(p.outbox.sign(now, tx));
                }
                Notice::DisputeOpened {
                    client,
                    job,
                    lot,
                    committee,
                    disputed,
                    ..
                } => {
                    // Referees re-execute the disputed traps deterministically.
                    let outputs: Vec<_> = disputed.iter().map(|d| truth(&d.trap.input)).collect();
                    m.referee_reexecutions += (outputs.len() * committee.len()) as u64;
                    for r in committee {
                        if let Some(&v) = val_index.get(&r) {
                            let tx = MarketTx::Vote {
                                client,
                                job,
                                lot,
                                outputs: outputs.clone(),
                            };
                            votes.push((v, tx));
                        }
                    }
                }
                Notice::Settled(s) => {
                    m.lots_settled += 1;
                    let pi = by_acct[&s.provider];
                    let p = &providers[pi];
                    let ci = client_idx[&s.client];
                    let framing = clients[ci].framing;
                    let cheated = p
                        .work
                        .get(&(s.client, s.job, s.lot))
                        .is_some_and(|w| w.cheated.iter().any(|c| *c));
                    let caught = !s.slashed.is_zero();
                    if cheated {
                        m.cheated_lots += 1;
                        if caught {
                            m.detected_lots += 1;
                        }
                    }
                    if caught {
                        slashed_providers.insert(s.provider);
                    }
                    if !s.bond_forfeited.is_zero() && framing {
                        m.framings_caught += 1;
                    } else if framing && cheated && matches!(s.outcome, RoundOutcome::Admitted) {
                        // The framed lot went to a provider that really
                        // cheated and admitted: no referee ever saw the
                        // false trap answer.
                        m.framings_on_admitted_cheats += 1;
                    }
                    if caught && p.behaviour == Behaviour::Honest && cfg.framing_clients == 0 {
                        return Err(MarketplaceError::Invariant {
                            invariant: "no-honest-slashed",
                            at: now,
                            message: format!(
                                "honest provider slashed in job {} lot {}",
                                s.job, s.lot
                            ),
                            seed: cfg.seed,
                            replay: sim_cfg.replay(),
                        });
                    }
                    if caught && p.behaviour == Behaviour::Honest {
                        m.honest_slashed += 1;
                    }
                    if matches!(s.outcome, RoundOutcome::Clean)
                        && let Some(w) = p.work.get(&(s.client, s.job, s.lot))
                    {
                        // Gains from trade, valuing useful compute at the
                        // clients' limit price.
                        m.welfare += (cfg.max_price as f64 - p.cost_per_second.get() as f64)
                            * w.usage_micros as f64
                            / 1e6;
                    }
                    if matches!(s.outcome, RoundOutcome::Clean) || s.paid > Amount::ZERO {
                        m.volume += s.paid.get();
                    }
                    clients[ci].plans.remove(&(s.job, s.lot));
                    let guilty = detection::convicted(&s.outcome);
                    if let Some(w) = p.work.get(&(s.client, s.job, s.lot))
                        && cheated
                    {
                        let count = |v: &[bool]| v.iter().filter(|x| **x).count() as u32;
                        let lot = detection::CheatedLot {
                            slots: w.cheated.len() as u32,
                            traps: count(&w.is_trap),
                            corrupted: count(&w.cheated),
                            trap_hit: w.cheated.iter().zip(&w.is_trap).any(|(c, t)| *c && *t),
                            convicted: guilty,
                            slashed: caught,
                        };
                        detection.record(p.label(), &p.behaviour, lot);
                    }
                    let p = &mut providers[pi];
                    p.presence.lots_settled += 1;
                    if guilty && p.presence.convicted_at.is_none() {
                        p.presence.convicted_at = Some(now);
                        p.presence.lots_to_conviction = p.presence.lots_settled;
                    }
                    if caught && matches!(p.identity, Identity::Whitewash { .. }) {
                        abandons.push(pi);
                    }
                }
                Notice::JobClosed { client, job, .. } => {
                    m.jobs_closed += 1;
                    if let Some(t) = job_posted_at.remove(&(client, job)) {
                        latencies.push(now.saturating_since(t).as_micros() as f64 / 1e6);
                    }
                }
                Notice::Lapsed { lots, .. } => m.lapsed_lots += u64::from(lots),
                Notice::Cleared(record) => welfare.record(&record),
                Notice::EffectFailed { reason } => {
                    return Err(MarketplaceError::Invariant {
                        invariant: "settlement-effects",
                        at: now,
                        message: reason,
                        seed: cfg.seed,
                        replay: sim_cfg.replay(),
                    });
                }
                _ => {}
            }
        }
        // Slashed whitewashers abandon their keys (their slot is gone).
        for pi in abandons {
            sybil::abandon(
                &mut providers,
                &mut by_acct,
                pi,
                view.ledger(),
                view.market(),
                &sybil_env,
                &mut sybil_rng,
                now,
                &mut outgoing,
                &mut sybil_counters,
            );
        }
        for (v, tx) in votes {
            sim.with_node(NodeIndex::new(v as u32), |node, _| {
                let _ = node.submit_own(&tx);
            })?;
        }
        // Providers deliver finished work once the round is open (only the
        // opened, undelivered lots are scanned: provider index, then key).
        let ready: Vec<_> = awaiting
            .iter()
            .filter(|(pi, k)| providers[*pi].work[k].done_at <= now)
            .copied()
            .collect();
        for (pi, key) in ready {
            awaiting.remove(&(pi, key));
            let p = &mut providers[pi];
            {
                let w = p.work.get_mut(&key).expect("listed");
                w.delivered = true;
                let salt = idlegrid_primitives::Salt::from_bytes(
                    idlegrid_primitives::Digest::of(
                        idlegrid_primitives::Domain::new("idlegrid/sim/salt"),
                        &key,
                    )
                    .to_bytes(),
                );
                let rid = round_id(key.1, key.2);
                let tx = MarketTx::Deliver {
                    client: key.0,
                    job: key.1,
                    lot: key.2,
                    commitment: idlegrid_entrap::output_commitment(rid, &w.outputs, &salt),
                    outputs: w.outputs.clone(),
                    salt,
                    usage_micros: w.usage_micros,
                };
                outgoing.push(p.outbox.sign(now, tx));
            }
        }
    }
    let report = sim.finish(crate::StopReason::TimeLimit)?;
    let consensus_metrics = sim.observer().consensus_metrics().clone();
    if let Some(v) = sim.observer().failure() {
        return Err(MarketplaceError::Invariant {
            invariant: "ledger",
            at: now,
            message: v,
            seed: cfg.seed,
            replay: sim_cfg.replay(),
        });
    }
    let view = sim.node(NodeIndex::new(0)).expect("node 0");
    let ledger = view.ledger();
    let open = view.market().open_jobs();
    if open > 0 {
        return Err(MarketplaceError::Invariant {
            invariant: "every-job-settles",
            at: now,
            message: format!("{open} jobs still open after the drain period"),
            seed: cfg.seed,
            replay: sim_cfg.replay(),
        });
    }
    let wealth = |a: &AccountId| {
        let acc = ledger.account(a);
        acc.map_or(0i128, |x| {
            (x.balance.get() + x.bonded.get() + x.unbonding_total().get()) as i128
        })
    };
    let mut by_b: BTreeMap<&'static str, (f64, u64)> = BTreeMap::new();
    let mut scores: BTreeMap<&'static str, (f64, u64)> = BTreeMap::new();
    let (mut hon, mut che) = ((0.0, 0u64), (0.0, 0u64));
    let mut cheating_providers = 0;
    let mut cheaters_caught = 0;
    let mut cheaters_assigned = 0u64;
    let mut with_work: BTreeMap<&'static str, u64> = BTreeMap::new();
    // Profit per machine: a whitewasher's identities add up (transfers
    // between them cancel).
    #[derive(Default)]
    struct MachineAgg {
        profit: f64,
        work: bool,
        cheated: bool,
        caught: bool,
    }
    let mut machines: BTreeMap<MachineId, (&'static str, Behaviour, MachineAgg)> = BTreeMap::new();
    for p in &providers {
        let cost = p.cost_per_second.get() as f64 * p.spent_micros as f64 / 1e6;
        let profit = (wealth(&p.outbox.account()) - p.initial_wealth.get() as i128) as f64 - cost;
        let name = p.label();
        let s = scores.entry(name).or_default();
        s.0 += f64::from(score_bps(view.market().provider_score(&p.outbox.account()))) / 1e4;
        s.1 += 1;
        let e = &mut machines
            .entry(p.machine)
            .or_insert_with(|| (name, p.behaviour, MachineAgg::default()))
            .2;
        e.profit += profit;
        e.work |= !p.work.is_empty();
        e.cheated |= p.cheated_lots > 0;
        e.caught |= slashed_providers.contains(&p.outbox.account());
    }
    for (name, behaviour, a) in machines.values() {
        *with_work.entry(name).or_default() += u64::from(a.work);
        cheaters_assigned += u64::from(is_cheater(behaviour));
        let e = by_b.entry(name).or_default();
        e.0 += a.profit;
        e.1 += 1;
        if *behaviour == Behaviour::Honest {
            hon.0 += a.profit;
            hon.1 += 1;
        } else if is_cheater(behaviour) {
            che.0 += a.profit;
            che.1 += 1;
            if a.cheated {
                cheating_providers += 1;
                cheaters_caught += u64::from(a.caught);
            }
        }
    }
    let mean = |(s, n): (f64, u64)| if n == 0 { 0.0 } else { s / n as f64 };
    let detection_rate = if m.cheated_lots == 0 {
        1.0
    } else {
        m.detected_lots as f64 / m.cheated_lots as f64
    };
    let supply_ok = sim.observer().violations() == 0
        && ledger.total_supply().get() + ledger.burned().get() == ledger.initial_supply().get();
    let profit_by: serde_json::Map<String, serde_json::Value> = by_b
        .iter()
        .map(|(k, v)| {
            let mu = mean(*v);
            (
                (*k).to_string(),
                serde_json::json!({
                    "mean": mu,
                    "per_stake": mu / (f64::from(cfg.provider_capacity) * cfg.stake_per_slot as f64),
                    "providers": v.1,
                    "with_work": with_work.get(k).copied().unwrap_or(0),
                }),
            )
        })
        .collect();
    let score_by: serde_json::Map<String, serde_json::Value> = scores
        .iter()
        .map(|(k, v)| ((*k).to_string(), serde_json::json!(mean(*v))))
        .collect();
    let reg = view.market().registry().stats();
    let wb = welfare;
    let lat = dist(latencies);
    let pr = dist(prices);
    let summary = MarketplaceSummary {
        ledger: serde_json::json!({
            "initial_supply": ledger.initial_supply().get().to_string(),
            "final_supply": ledger.total_supply().get().to_string(),
            "burned": ledger.burned().get().to_string(),
            "invariant_violations": sim.observer().violations(),
            "batches_checked": sim.observer().checked(),
            "batches_compared": sim.observer().batches(),
            "validators_compared": n_val,
        }),
        market: serde_json::json!({
            "orders": m.orders + providers.iter().filter(|p| p.presence.joined_at.is_some()).count() as u64,
            "matches": m.matches,
            "volume": m.volume.to_string(),
            "clearing_price": {"mean": pr.mean, "p50": pr.p50, "p90": pr.p90},
            "welfare": m.welfare,
            "reprices": m.reprices,
            // Declared gains `Σ slots·(bid − ask)` of the mechanism against
            // the exact welfare-maximizing assignment of the same orders,
            // summed over clearing periods (`null` when a period was too
            // large for the exact solver).
            "welfare_declared": wb.mechanism.to_string(),
            "welfare_optimal": wb.optimal.map(|o| o.to_string()),
            "efficiency": wb.optimal.filter(|o| *o > 0).map(|o| wb.mechanism as f64 / o as f64),
            "welfare_periods": wb.periods,
            "mechanism": "k-double (k = 0.5)",
        }),
        jobs: serde_json::json!({
            "submitted": m.jobs_submitted,
            "completed": m.jobs_closed,
            "failed": m.jobs_submitted.saturating_sub(m.jobs_closed),
            "lots_settled": m.lots_settled,
            "lots_lapsed": m.lapsed_lots,
            "latency_seconds": {"p50": lat.p50, "p90": lat.p90, "p99": lat.p99},
        }),
        entrap: serde_json::json!({
            "traps_planted": m.traps_planted,
            "trap_ratio": if m.real_subtasks == 0 { 0.0 } else { m.traps_planted as f64 / m.real_subtasks as f64 },
            "cheating_providers": cheating_providers,
            "cheaters_assigned": cheaters_assigned,
            "cheaters_caught": cheaters_caught,
            "detection_rate": detection_rate,
            "cheated_lots": m.cheated_lots,
            "detected_lots": m.detected_lots,
            "honest_slashed": m.honest_slashed,
            "framing_attempts": m.framing_attempts,
            "framings_caught": m.framings_caught,
            "framings_on_admitted_cheats": m.framings_on_admitted_cheats,
            "disputes": m.disputes,
            "verification_overhead": if m.real_subtasks == 0 { 0.0 } else { (m.traps_planted + m.referee_reexecutions) as f64 / m.real_subtasks as f64 },
            "referee_reexecutions": m.referee_reexecutions,
            "detection_by_behaviour": detection.to_json(),
        }),
        economics: serde_json::json!({
            "honest_profit_mean": mean(hon),
            "cheater_profit_mean": mean(che),
            "profit_by_behaviour": profit_by,
        }),
        reputation: serde_json::json!({
            "mean_score_by_behaviour": score_by,
            "sybil": sybil::summary(&providers, &cfg.sybil, &sybil_counters, active_until),
        }),
        registry: serde_json::json!({
            "apps": reg.apps,
            "datasets": reg.datasets,
            "owner_revenue": reg.owner_revenue.get().to_string(),
            "jobs_settled": reg.settled_jobs,
            "jobs_open": reg.open_jobs,
        }),
    };
    Ok(MarketplaceReport {
        digest: report.digest,
        ledger_digest: ledger.state_digest(),
        summary,
        consensus_metrics,
        byzantine: cfg.byzantine.iter().filter(|b| b.is_byzantine()).count(),
        events: report.events,
        jobs_completed: m.jobs_closed,
        cheaters_caught,
        cheating_providers,
        detection_rate,
        honest_profit_mean: mean(hon),
        cheater_profit_mean: mean(che),
        supply_conserved: supply_ok,
        initial_supply: ledger.initial_supply().get(),
        burned: ledger.burned().get(),
        report,
        series,
    })
}

#[derive(Default)]
struct Metrics {
    jobs_submitted: u64,
    jobs_closed: u64,
    orders: u64,
    matches: u64,
    volume: u128,
    lots_settled: u64,
    lapsed_lots: u64,
    traps_planted: u64,
    real_subtasks: u64,
    cheated_lots: u64,
    detected_lots: u64,
    honest_slashed: u64,
    framing_attempts: u64,
    framings_caught: u64,
    disputes: u64,
    resubmitted: u64,
    reprices: u64,
    referee_reexecutions: u64,
    framings_on_admitted_cheats: u64,
    welfare: f64,
}
