//! The marketplace run: validators on the simulated WAN, light nodes
//! (providers and clients) driven between engine slices.

use std::collections::{BTreeMap, BTreeSet};

use idlegrid_dag_ledger::consensus::byzantine::Participant;
use idlegrid_dag_ledger::consensus::{Committee, ConsensusConfig};
use idlegrid_dag_ledger::ledger::{Genesis, Params};
use idlegrid_entrap::LifetimeError;
use idlegrid_executor::{Behaviour, Rate};
use idlegrid_market::registry::{AccessPolicy, GoodKind, RegistryOp, SignedOp, content_digest};
use idlegrid_market::{ExecutorKind, Features, JobGoods, MECHANISMS, NamedMechanism};
use idlegrid_node::byzantine::{Forger, LeafWithholder};
use idlegrid_node::client::{ClientNode, LifetimeMode, TrapPolicy, TrapTargets, check_trap_policy};
use idlegrid_node::light::{FactDelivery, FactWindow, LightCore, LightSetup};
use idlegrid_node::market::{
    Environment, JobRequest, MarketParams, MarketRules, MarketTx, TrustGate, score_bps, unsealed,
};
use idlegrid_node::provider::{ProviderNode, ProviderOffer};
use idlegrid_node::validator::{StateSharing, ValidatorNode, ValidatorSetup};
use idlegrid_node::verification::VerificationMode;
use idlegrid_node::wire::NodeMessage;
use idlegrid_primitives::{AccountId, Amount, Digest, Duration, Keypair, Seed, Timestamp};
use idlegrid_reputation::BookParams;
use rand::Rng;
use serde::Serialize;

use super::agents::{Identity, MachineId, Presence, is_cheater};
use super::nodes::{
    IdentityPlan, MarketNode, Member, OwnerNode, ProviderPlan, SimClient, SimProvider, SimTraps,
    SimValidator, Whitewash, Workload, executor,
};
use super::observer::MarketObserver;
use super::tally::{MarketTally, ProviderInfo};
use super::valuation::Valuation;
use crate::audit::AuditLane;
use crate::consensus::Behavior;
use crate::durable::{Disks, new_disks};
use crate::{
    Fault, NetworkConfig, NodeIndex, NodeSpec, RegionId, RestartMode, SimConfig, SimError,
    Simulation,
};

pub(crate) mod detection;
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
    /// Careless clients (the last ones): every lot of theirs repeats one
    /// input, which the client node refuses to plan, so their matched lots
    /// lapse on the ledger at the plan deadline.
    pub careless_clients: u32,
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
    /// What every client's traps must achieve per lot (assurance target,
    /// trap cap, credibility discount).
    pub trap_targets: TrapTargets,
    /// How every client verifies its lots.
    pub verification: VerificationMode,
    /// Stake per provider slot.
    pub stake_per_slot: u128,
    /// Relative weights of the cheating behaviours among cheaters.
    pub mix: CheaterMix,
    /// Bait-and-switch providers work honestly for this many subtasks.
    pub bait_honest_tasks: u32,
    /// Colluding providers work honestly for this many subtasks first.
    pub colluder_honest_tasks: u32,
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
    /// Each client's limit price per compute-second, drawn per client
    /// from the run's seed ([`Valuation::Fixed`] at 10,000 by default).
    pub valuation: Valuation,
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
    /// Validators each light node subscribes to for facts at first
    /// (`LightSetup::fact_sources`; 0 = every validator).
    pub fact_sources: u32,
    /// How much of the stake those hold at least
    /// (`LightSetup::fact_window`).
    pub fact_window: FactWindow,
    /// How light nodes hear their facts: reported or certified
    /// (`LightSetup::delivery`).
    pub delivery: FactDelivery,
    /// Whitewashing providers and honest newcomers (none by default).
    pub sybil: SybilConfig,
    /// The validators' clearing mechanism (k-double, `k = 1/2`, by default).
    pub mechanism: NamedMechanism,
    /// The lowest provider reputation clients accept in their bids (the
    /// market's reputation filter; a newcomer's score by default).
    pub reputation_filter: ReputationFilter,
    /// EigenTrust global trust in the validators' reputation filter (off
    /// by default; see [`TrustGate`]).
    pub global_trust: Option<TrustGate>,
    /// What a restarted validator remembers: with
    /// [`RestartMode::Store`] (the default) every validator writes its
    /// blocks, commits and ledger checkpoints to a simulated disk and a
    /// restarted one recovers from it, as the real node does from redb.
    /// Light nodes restart fresh (they learn their state from validators).
    pub restart: RestartMode,
    /// With [`RestartMode::Store`]: probability that a crash loses (part
    /// of) a validator's un-synced writes.
    pub lose_unsynced: f64,
    /// The engine's bound on pending events (a scenario's
    /// `max_queue_len`): every light node subscribes to its fact sources
    /// at the start, one message each.
    pub max_queue_len: usize,
    /// Validators holding the very same replicated state share one copy
    /// (node's [`StateSharing`]; on by default). Off is the check mode
    /// (`--no-sharing`): every validator computes every batch on its own
    /// copy, and the run digest must be the same.
    pub share_state: bool,
    /// Validators' audits of their turns' commits run on a worker thread
    /// (see [`crate::audit`]; on by default), not on the engine's. The run
    /// and its outcome are the same either way.
    pub background_audits: bool,
    /// Threads handling the engine's windows of events (1: one event at a
    /// time; see `Simulation::set_threads`). The run and its outcome are
    /// the same for any count.
    pub engine_threads: usize,
}

/// The lowest provider reputation score a client's bid accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReputationFilter {
    /// Any provider (no filter).
    Off,
    /// No provider below a newcomer's score (the default).
    #[default]
    Fresh,
    /// No provider below this score, in basis points (`0..=10_000`).
    MinBps(u16),
}

impl ReputationFilter {
    /// The bid's `min_reputation_bps`, given a newcomer's score.
    pub fn min_bps(self, fresh_bps: u16) -> u16 {
        match self {
            ReputationFilter::Off => 0,
            ReputationFilter::Fresh => fresh_bps,
            ReputationFilter::MinBps(b) => b,
        }
    }
}

/// Ledger checkpoint interval of the simulated validators' stores (the
/// real node's `CHECKPOINT_EVERY`).
pub(crate) const CHECKPOINT_EVERY: u64 = 200;

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
            careless_clients: 0,
            active_secs: 40,
            drain_secs: 60,
            job_interval_secs: 2.0,
            subtasks_per_lot: 16,
            max_lots: 4,
            trap_targets: TrapTargets::default(),
            verification: VerificationMode::Entrap,
            stake_per_slot: 50_000,
            mix: CheaterMix::default(),
            bait_honest_tasks: 20,
            colluder_honest_tasks: 0,
            provider_capacity: 1,
            price_min: 6_000,
            price_max: 10_000,
            speed_min: 500_000_000,
            speed_max: 2_000_000_000,
            valuation: Valuation::Fixed(PRICE),
            adaptive_pricing: true,
            network: NetworkConfig::default(),
            byzantine: Vec::new(),
            consensus: ConsensusConfig::default(),
            faults: Vec::new(),
            replay_command: None,
            gateways: 1,
            fact_sources: 0,
            fact_window: FactWindow::Quorum,
            delivery: FactDelivery::Reported,
            sybil: SybilConfig::default(),
            mechanism: MECHANISMS[0],
            reputation_filter: ReputationFilter::Fresh,
            global_trust: None,
            restart: RestartMode::Store,
            lose_unsynced: 0.5,
            max_queue_len: SimConfig::new(0).max_queue_len,
            share_state: true,
            background_audits: true,
            engine_threads: 1,
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
    /// The validators' disks, with [`RestartMode::Store`].
    pub storage: Option<crate::durable::DiskStats>,
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

/// Convicted against cheated lots per behaviour, with the expectation.
fn detection_line(v: &serde_json::Value) -> Option<String> {
    let by = v["entrap"]["detection_by_behaviour"].as_object()?;
    if by.is_empty() {
        return None;
    }
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
    Some(format!(
        "detection     convicted/cheated lots vs the hypergeometric expectation: {}",
        parts.join(", ")
    ))
}

/// Mean profit per provider behaviour.
fn by_behaviour_line(v: &serde_json::Value) -> Option<String> {
    let by = v["economics"]["profit_by_behaviour"].as_object()?;
    let parts: Vec<String> = by
        .iter()
        .map(|(k, x)| {
            let after = match x["after_first_cheat_mean"].as_f64() {
                Some(a) if k != "honest" => format!(", {a:.0} from its first cheat on"),
                _ => String::new(),
            };
            format!(
                "{k} {:.0} ({} with work{after})",
                x["mean"].as_f64().unwrap_or(0.0),
                x["with_work"].as_u64().unwrap_or(0)
            )
        })
        .collect();
    Some(format!("by behaviour  {}", parts.join(", ")))
}

/// Whitewashers against newcomers, when the run has whitewashers.
fn sybil_line(v: &serde_json::Value) -> Option<String> {
    let y = &v["reputation"]["sybil"];
    if y["whitewashers"].as_u64().unwrap_or(0) == 0 {
        return None;
    }
    let g = |k: &str| y[k].as_f64().unwrap_or(0.0);
    Some(format!(
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
    ))
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
            "jobs          {} completed of {} submitted ({} refused, {} open at the end, {} closed with no lot run), {} lots settled; latency p50 {:.1} s, p90 {:.1} s, p99 {:.1} s",
            self.jobs_completed,
            f(&["jobs", "submitted"]),
            f(&["jobs", "refused"]),
            f(&["jobs", "open"]),
            f(&["jobs", "unrun"]),
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
        if let Some(line) = super::prices::render_line(&v) {
            let _ = writeln!(s, "{line}");
        }
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
            "entrap        {} traps (ratio {:.2}), verification overhead all-in {:.3} (steady {:.3}; provider traps {:.3} + trap answers {:.3} + referees {:.4} + replicas {:.3}), framings caught {} of {} ({} hit cheaters who admitted, {} unresolved); {} escalations",
            f(&["entrap", "traps_planted"]),
            f(&["entrap", "trap_ratio"]),
            f(&["entrap", "verification_overhead"]),
            f(&["entrap", "verification_overhead_steady"]),
            f(&[
                "entrap",
                "verification_overhead_by_source",
                "provider_traps"
            ]),
            f(&["entrap", "verification_overhead_by_source", "trap_answers"]),
            f(&[
                "entrap",
                "verification_overhead_by_source",
                "referee_reexecutions"
            ]),
            f(&["entrap", "verification_overhead_by_source", "replicas"]),
            f(&["entrap", "framings_caught"]),
            f(&["entrap", "framing_attempts"]),
            f(&["entrap", "framings_on_admitted_cheats"]),
            f(&["entrap", "framings_unresolved"]),
            f(&["entrap", "escalations"]),
        );
        if let Some(line) = detection_line(&v) {
            let _ = writeln!(s, "{line}");
        }
        let _ = writeln!(
            s,
            "profit        honest mean {:.0}, cheater mean {:.0}",
            self.honest_profit_mean, self.cheater_profit_mean
        );
        for line in [by_behaviour_line(&v), sybil_line(&v)]
            .into_iter()
            .flatten()
        {
            let _ = writeln!(s, "{line}");
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
            "ledger        supply conserved: {} (initial {}, final {}, burned {}; {} batches checked in full, {} validator digests compared; {} batch applications computed, {} shared)",
            if self.supply_conserved { "yes" } else { "NO" },
            self.initial_supply,
            self.initial_supply - self.burned,
            self.burned,
            f(&["ledger", "batches_checked"]),
            f(&["ledger", "batches_compared"]),
            f(&["ledger", "batches_computed"]),
            f(&["ledger", "batches_shared"]),
        );
        adversary_lines(&mut s, &f);
        s
    }

    /// The summary as JSON (the key names).
    pub fn summary_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.summary).unwrap_or_default()
    }
}

/// The text summary's lines on what Byzantine validators did to the
/// ledger and to light nodes, when they did anything (`f` reads a figure
/// of the summary by its path).
fn adversary_lines(s: &mut String, f: &dyn Fn(&[&str]) -> f64) {
    use std::fmt::Write as _;
    let forged = f(&["ledger", "forged_transactions"]);
    if forged > 0.0 {
        let _ = writeln!(
            s,
            "forgeries     {forged} transactions with forged signatures in Byzantine blocks, refused by every validator"
        );
    }
    let unplanned = f(&["jobs", "lots_unplanned"]);
    if unplanned > 0.0 {
        let _ = writeln!(
            s,
            "unplanned     {unplanned} matched lots lapsed at their plan deadline ({} of careful clients), {} of lot bonds burned",
            f(&["jobs", "lots_unplanned_careful"]),
            f(&["jobs", "unplanned_bonds_burned"]),
        );
    }
    let withheld = f(&["ledger", "withheld_fact_messages"]);
    if withheld > 0.0 {
        let _ = writeln!(
            s,
            "withholding   {withheld} certified-fact messages held back by Byzantine gateways; light nodes asked other validators {} times, replaced {} sources seen withholding ({} of them honest)",
            f(&["ledger", "light_node_suspicions"]),
            f(&["ledger", "light_sources_replaced"]),
            f(&["ledger", "light_sources_replaced_honest"]),
        );
    } else if f(&["ledger", "light_sources_replaced"]) > 0.0 {
        let _ = writeln!(
            s,
            "sources       light nodes replaced {} certified sources seen withholding ({} of them honest)",
            f(&["ledger", "light_sources_replaced"]),
            f(&["ledger", "light_sources_replaced_honest"]),
        );
    }
    let asks = f(&["ledger", "light_node_suspicions"]);
    if asks > 0.0 {
        let _ = writeln!(
            s,
            "replays       light nodes asked other validators for a replay {asks} times ({} validators), {} of them for a late batch closing ({} spurious: a source sent it after); {} proven-facts messages in answer",
            f(&["ledger", "light_node_replays_asked"]),
            f(&["ledger", "light_node_closing_asks"]),
            f(&["ledger", "light_node_closing_asks_spurious"]),
            f(&["ledger", "replayed_fact_messages"]),
        );
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
    if cfg.framing_clients.saturating_add(cfg.careless_clients) > cfg.clients {
        return bad(
            "careless_clients",
            "more framing and careless clients than clients",
        );
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
    let traps = check_traps(
        &cfg.trap_targets,
        cfg.subtasks_per_lot,
        cfg.price_min,
        cfg.stake_per_slot,
    );
    if let Err((field, reason)) = traps {
        return bad(field, &reason);
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
    if cfg.fact_sources > cfg.validators {
        return bad("fact_sources", "must be 0 (every validator) ..= validators");
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
    if let ReputationFilter::MinBps(b @ 10_001..) = cfg.reputation_filter {
        return bad(
            "reputation_filter",
            &format!("min score must be 0..=10000 bps, got {b}"),
        );
    }
    if let Err((field, reason)) = cfg.valuation.check() {
        return bad(field, &format!("valuation: {reason}"));
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

/// Every client's trap policy: the provider's cost per subtask as the
/// client estimates it, the slot stake, pay per subtask = price / 20.
fn trap_policy(stake: Amount) -> TrapPolicy {
    TrapPolicy {
        cost_per_subtask: Amount::new(PRICE / 40),
        stake,
        price_to_pay_divisor: 20,
    }
}

/// Whether the trap targets can be met for a provider without a record at
/// the lowest price a lot can clear at (the lowest provider's ask floor),
/// before the run: a target no trap count within the cap meets, or a stake
/// too small to deter, is refused with what would meet it.
pub fn check_traps(
    t: &TrapTargets,
    n: u32,
    price_min: u128,
    stake_per_slot: u128,
) -> Result<(), (&'static str, String)> {
    if !(t.miss_probability > 0.0 && t.miss_probability < 1.0) {
        return Err(("trap_targets.miss_probability", "must be in (0, 1)".into()));
    }
    let cap = t.cap(n);
    if cap == 0 || cap > MAX_TRAPS_PER_LOT {
        let reason = format!("the trap cap must be 1..={MAX_TRAPS_PER_LOT}, got {cap}");
        return Err(("trap_targets.max_traps", reason));
    }
    let lowest = super::prices::ask_floor(Amount::new(price_min / 2));
    let policy = trap_policy(Amount::new(stake_per_slot));
    if let Some(mode) = &t.lifetime {
        return check_lifetime(&policy, mode, n, lowest);
    }
    match check_trap_policy(&policy, t, n, lowest) {
        Ok(_) => Ok(()),
        Err(e @ idlegrid_node::client::TrapPolicyError::Deterrence { .. }) => Err((
            "stake_per_slot",
            format!("{e} (raise the stake per slot to at least that)"),
        )),
        Err(e @ idlegrid_node::client::TrapPolicyError::Assurance { .. }) => Err((
            "trap_targets",
            format!(
                "{e}: raise the trap cap, the subtasks per lot or the cheating rate to catch, or lower the confidence (a larger stake does not help: it deters, it does not detect)"
            ),
        )),
        Err(e) => Err(("trap_targets", e.to_string())),
    }
}

/// [`check_traps`] for the lifetime mode: the planner for a provider's
/// lots at the lowest price.
fn check_lifetime(
    policy: &TrapPolicy,
    mode: &LifetimeMode,
    n: u32,
    lowest: Amount,
) -> Result<(), (&'static str, String)> {
    let params = policy.lifetime_params(mode, n.saturating_add(mode.max_traps), lowest);
    match idlegrid_entrap::plan_lifetime(&params) {
        Ok(_) => Ok(()),
        Err(e @ LifetimeError::DeterrenceUnreachable { .. }) => Err((
            "stake_per_slot",
            format!("{e} (raise the stake per slot to at least that)"),
        )),
        Err(e) => Err(("trap_targets", e.to_string())),
    }
}

/// The most traps a scenario may allow per lot.
pub const MAX_TRAPS_PER_LOT: u32 = 600;

const PRICE: u128 = 10_000; // per compute-second
const CAP_MICROS: u64 = 200_000; // pay-as-you-go cap per subtask
/// Every simulated job's bond per lot.
pub const CLIENT_BOND: u128 = 5_000;
/// Bond of every sealed ask and bid (the validators' `MarketParams`).
const SEAL_BOND: u128 = MarketParams::DEFAULT.seal_bond.get();
/// A sealed batch: longer than a commit's latency plus a light node's
/// reaction under Byzantine validators, so that a provider's reveal (which
/// carries its next ask) lands in the next batch and every batch sees every
/// provider's ask (1 s batches clear as many lots, with twice the
/// transactions).
const CLEARING_PERIOD: Duration = Duration::from_millis(2_000);
/// Providers keep asking this long after the workload ends (the last
/// jobs' unfilled lots are re-sealed for a few batches).
const ASK_AFTER_WORKLOAD: Duration = Duration::from_secs(10);
/// Per-use price of the registered app.
const APP_PRICE: u128 = 2_000;
/// Per-use price of the registered dataset.
const DATASET_PRICE: u128 = 500;

/// Builds validator `ctx.index` of the committee (its consensus behaviour
/// from the scenario).
fn validator(ctx: &crate::NodeContext<'_>, w: &World) -> Participant<ValidatorNode> {
    let key = Keypair::from_seed(&ctx.key_seed);
    let (committee, behaviors) = (&w.committee, &w.behaviors);
    let notices = ctx.index.get() == 0;
    let honest = match &w.disks {
        None => ValidatorNode::new(key.clone(), committee.clone(), &w.setup, ctx.seed, notices),
        Some(_) if ctx.incarnation == 0 => {
            ValidatorNode::new(key.clone(), committee.clone(), &w.setup, ctx.seed, notices)
                .map(|v| v.with_persistence(CHECKPOINT_EVERY))
        }
        Some(disks) => {
            let stored = crate::durable::lock(&disks[ctx.index.get()]).restart(
                &mut ctx.seed.derive("disk-crash").rng(),
                w.cfg.lose_unsynced,
                false,
            );
            ValidatorNode::recover(
                key.clone(),
                committee.clone(),
                &w.setup,
                ctx.seed,
                notices,
                stored,
                CHECKPOINT_EVERY,
            )
        }
    }
    .unwrap_or_else(|e| panic!("validator {} cannot start: {e}", ctx.index.get()))
    .with_signature_verifier(w.signatures.clone())
    .with_state_sharing(w.sharing.clone());
    let behavior = behaviors.get(ctx.index.get()).and_then(|b| b.adversary());
    Participant::new(honest, behavior, &key, committee)
}

/// Bytes a node message takes on the wire (consensus as the consensus
/// scenario counts it).
pub(crate) fn node_wire_size(m: &NodeMessage) -> usize {
    match m {
        NodeMessage::Consensus(c) => crate::consensus::wire_size(c),
        // Variant tag, the consensus message (with its own tag), the votes:
        // each an index, a 32-byte root and a 64-byte signature.
        NodeMessage::Voted { consensus, votes } => {
            let vote = |v: &idlegrid_node::wire::FactsVote| {
                crate::consensus::varint_len(v.index as usize) + 32 + 64
            };
            1 + crate::consensus::wire_size(consensus)
                + crate::consensus::varint_len(votes.len())
                + votes.iter().map(vote).sum::<usize>()
        }
        other => idlegrid_primitives::encoded_len(other),
    }
}

/// The fingerprint of a node message in the run digest.
pub(crate) fn node_fingerprint(m: &NodeMessage) -> idlegrid_primitives::Digest {
    node_fingerprint_with(m, certificate_digest)
}

/// The digest a certificate enters a message's fingerprint by.
pub(crate) fn certificate_digest(
    c: &idlegrid_node::wire::FactsCertificate,
) -> idlegrid_primitives::Digest {
    idlegrid_primitives::Digest::of(NODE_MESSAGE, c)
}

const NODE_MESSAGE: idlegrid_primitives::Domain =
    idlegrid_primitives::Domain::new("idlegrid/sim/node-message");

/// [`node_fingerprint`], with `cert` giving the digest of a certificate
/// ([`certificate_digest`]; a caller may remember it): a block
/// carrying votes is identified by the block's identity and the votes, a
/// message of certified facts by its certificate's digest and its leaves.
pub(crate) fn node_fingerprint_with(
    m: &NodeMessage,
    cert: impl FnOnce(&idlegrid_node::wire::FactsCertificate) -> idlegrid_primitives::Digest,
) -> idlegrid_primitives::Digest {
    use idlegrid_primitives::Digest;
    match m {
        NodeMessage::Consensus(c) => crate::consensus::fingerprint(c),
        NodeMessage::Voted { consensus, votes } => Digest::hash_parts(
            NODE_MESSAGE,
            &[
                b"voted",
                crate::consensus::fingerprint(consensus).as_bytes(),
                Digest::of(NODE_MESSAGE, votes).as_bytes(),
            ],
        ),
        NodeMessage::Certified(p) => Digest::hash_parts(
            NODE_MESSAGE,
            &[
                b"certified",
                cert(&p.cert).as_bytes(),
                Digest::of(NODE_MESSAGE, &p.leaves).as_bytes(),
            ],
        ),
        other => Digest::of(NODE_MESSAGE, other),
    }
}

/// A validator node of the simulation (its behaviour from the scenario;
/// validator 0 reports notices to the observer).
fn sim_validator(ctx: &crate::NodeContext<'_>, w: &World) -> MarketNode {
    let node = validator(ctx, w);
    let i = ctx.index.get();
    let disk = w.disks.as_ref().map(|d| (std::sync::Arc::clone(d), i));
    let forger = (w.behaviors.get(i) == Some(&Behavior::Forge))
        .then(|| Forger::new(Keypair::from_seed(&ctx.key_seed), None));
    let withholder =
        (w.behaviors.get(i) == Some(&Behavior::WithholdFacts)).then(LeafWithholder::default);
    let ahead = w
        .behaviors
        .get(i)
        .map_or(Duration::ZERO, |b| b.clock_ahead());
    let v = SimValidator::new(node, i == 0, disk, forger)
        .withholding(withholder)
        .clock_ahead(ahead);
    MarketNode::Validator(Box::new(v))
}

/// What one light node of the world is.
#[derive(Debug, Clone)]
enum Role {
    Provider(ProviderRole),
    Client(ClientRole),
    Owner(GoodKind, Digest, Amount),
}

#[derive(Debug, Clone)]
struct ProviderRole {
    behaviour: Behaviour,
    speed: u64,
    price: Amount,
    plan: IdentityPlan,
    heir: Option<AccountId>,
    region: u8,
}

#[derive(Debug, Clone)]
struct ClientRole {
    framing: bool,
    careless: bool,
    first_post: Timestamp,
    /// Limit price per compute-second.
    limit: u128,
}

/// Everything the node factory needs, shared by every node it builds.
struct World {
    setup: ValidatorSetup,
    /// One memo of verified block signatures for every validator of the
    /// run (see [`crate::consensus::shared_verifier`]).
    signatures: idlegrid_primitives::SignatureVerifier,
    /// One copy of the replicated state per distinct state (see
    /// [`MarketplaceConfig::share_state`]).
    sharing: StateSharing,
    /// The validators' disks, with [`RestartMode::Store`].
    disks: Option<Disks>,
    committee: Committee,
    behaviors: Vec<Behavior>,
    roles: Vec<Role>,
    n_val: usize,
    chain: idlegrid_dag_ledger::ledger::ChainId,
    cfg: MarketplaceConfig,
    stake: Amount,
    provider_stake: Amount,
    min_new_account: Amount,
    template: JobRequest,
    goods: (Digest, Digest, Amount, Amount),
    /// The colluding providers' pooled memory.
    coalition: super::coalition::Coalition,
}

/// A position in `0..n` from an account id, as good as uniform (the bias
/// of 8 bytes mod `n` is below n / 2⁶⁴).
fn spread(id: &AccountId, n: usize) -> usize {
    let b = id.as_bytes();
    let word = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    (word % n.max(1) as u64) as usize
}

impl World {
    fn build(&self, ctx: &crate::NodeContext<'_>) -> MarketNode {
        let i = ctx.index.get();
        if i < self.n_val {
            return sim_validator(ctx, self);
        }
        let key = Keypair::from_seed(&ctx.key_seed);
        let light = LightSetup {
            key: key.clone(),
            chain: self.chain,
            committee: self.committee.clone(),
            // Uniform over the committee: one byte mod 200 gave validators
            // 0..=55 twice the light nodes of the others.
            first_gateway: spread(&key.account_id(), self.n_val),
            patience: Duration::from_secs(20),
            fanout: self.cfg.gateways as usize,
            fact_sources: self.cfg.fact_sources as usize,
            fact_window: self.cfg.fact_window,
            delivery: self.cfg.delivery,
            signatures: self.signatures.clone(),
            // Every simulated light node's key is fresh.
            next_nonce: Some(0),
        };
        match &self.roles[i - self.n_val] {
            Role::Provider(p) => self.provider(ctx, light, p),
            Role::Client(c) => self.client(ctx, light, c),
            Role::Owner(kind, digest, price) => {
                let op = RegistryOp::Register {
                    kind: *kind,
                    digest: *digest,
                    version: 1,
                    price_per_use: *price,
                    policy: AccessPolicy::Public,
                };
                let record = MarketTx::Registry(SignedOp::sign(&key, 0, op));
                MarketNode::Owner(Box::new(OwnerNode::new(LightCore::new(light), record)))
            }
        }
    }

    fn provider(
        &self,
        ctx: &crate::NodeContext<'_>,
        light: LightSetup,
        p: &ProviderRole,
    ) -> MarketNode {
        let offer = ProviderOffer {
            price: p.price,
            capacity: self.cfg.provider_capacity,
            stake_per_slot: self.stake,
            region: p.region,
            environment: Environment::simulated(),
        };
        let mut node = ProviderNode::new(light, offer, ctx.seed.derive("provider"));
        if !matches!(
            p.plan,
            IdentityPlan::Genesis | IdentityPlan::Whitewash { generation: 0 }
        ) {
            node = node.without_auto_offer();
        }
        let whitewash = matches!(p.plan, IdentityPlan::Whitewash { .. }).then_some(Whitewash {
            heir: p.heir,
            provider_stake: self.provider_stake,
            min_new_account: self.min_new_account,
            reenter_until: Timestamp::ZERO + Duration::from_secs(self.cfg.sybil.join_until_secs),
        });
        let cost = p.price.get() / 2;
        let coalition = matches!(p.behaviour, Behaviour::Colluding { .. }).then(|| {
            let honest = executor(Behaviour::Honest, p.speed, ctx.seed.derive("exec-honest"));
            Member {
                coalition: self.coalition.clone(),
                honest,
                honest_tasks: u64::from(self.cfg.colluder_honest_tasks),
            }
        });
        let plan = ProviderPlan {
            exec: executor(p.behaviour, p.speed, ctx.seed.derive("exec")),
            coalition,
            plan: p.plan,
            whitewash,
            ask_until: Timestamp::ZERO
                + Duration::from_secs(self.cfg.active_secs)
                + ASK_AFTER_WORKLOAD,
            price: p.price,
            floor: super::prices::ask_floor(Amount::new(cost)),
            max_price: self
                .cfg
                .adaptive_pricing
                .then_some(Amount::new(self.cfg.valuation.upper())),
        };
        MarketNode::Provider(Box::new(SimProvider::new(node, plan)))
    }

    fn client(
        &self,
        ctx: &crate::NodeContext<'_>,
        light: LightSetup,
        c: &ClientRole,
    ) -> MarketNode {
        let me = light.key.account_id();
        let policy = trap_policy(self.stake);
        let traps = SimTraps {
            client: me,
            framing: c.framing,
        };
        let node = ClientNode::new(light, policy, Box::new(traps), ctx.seed.derive("client"))
            .with_trap_targets(self.cfg.trap_targets)
            .with_verification(self.cfg.verification);
        let w = Workload {
            active_until: Timestamp::ZERO + Duration::from_secs(self.cfg.active_secs),
            job_interval_secs: self.cfg.job_interval_secs,
            max_lots: self.cfg.max_lots,
            subtasks_per_lot: self.cfg.subtasks_per_lot,
            template: self.template.clone(),
            max_price: Amount::new(c.limit),
            bid_window: Duration::from_secs(20),
            goods: self.goods,
            careless: c.careless,
        };
        let rng = ctx.seed.derive("workload").rng();
        MarketNode::Client(Box::new(SimClient::new(node, rng, c.first_post, w)))
    }
}

/// The light-node population: roles, the run's view of each provider
/// identity, framing clients, genesis endowments.
struct Population {
    roles: Vec<Role>,
    providers: BTreeMap<AccountId, ProviderInfo>,
    framing: BTreeMap<AccountId, bool>,
    careless: BTreeSet<AccountId>,
    limits: BTreeMap<AccountId, u128>,
    balances: Vec<(AccountId, Amount)>,
    stakes: Vec<(AccountId, Amount)>,
}

/// Machines with their identities: genesis providers, newcomers, and each
/// whitewashing machine's `max_identities` keys (later ones funded by
/// their predecessor).
#[allow(clippy::too_many_arguments)]
fn providers(
    cfg: &MarketplaceConfig,
    root: &Seed,
    ids: &[AccountId],
    rng: &mut impl Rng,
    balance: Amount,
    stake: Amount,
    pop: &mut Population,
) {
    let mut sybil_rng = root.derive("sybil").rng();
    let nreg = cfg.network.regions.len().max(1);
    let mut next = 0usize;
    let machines = cfg.providers + cfg.sybil.whitewashers + cfg.sybil.newcomers;
    for m in 0..machines {
        let k = m.saturating_sub(cfg.providers);
        let whitewasher = m >= cfg.providers && k < cfg.sybil.whitewashers;
        let (behaviour, first_plan, r): (Behaviour, IdentityPlan, &mut dyn rand::RngCore) =
            if m < cfg.providers {
                (behaviour_for(m, cfg), IdentityPlan::Genesis, &mut *rng)
            } else if whitewasher {
                let rate = Rate::from_ppm((cfg.cheat_rate * 1e6) as u32);
                (
                    Behaviour::LazyCheater { rate },
                    IdentityPlan::Whitewash { generation: 0 },
                    &mut sybil_rng,
                )
            } else {
                let (a, b) = (cfg.sybil.join_from_secs, cfg.sybil.join_until_secs);
                let at = sybil_rng.gen_range(a * 1_000_000..=b * 1_000_000);
                let plan = IdentityPlan::Newcomer {
                    join_at: Timestamp::from_micros(at),
                };
                (Behaviour::Honest, plan, &mut sybil_rng)
            };
        let speed = r.gen_range(cfg.speed_min..=cfg.speed_max);
        let price = r.gen_range(cfg.price_min..=cfg.price_max);
        let keys = if whitewasher {
            cfg.sybil.max_identities
        } else {
            1
        };
        for g in 0..keys {
            let account = ids[next];
            let plan = match first_plan {
                IdentityPlan::Whitewash { .. } => IdentityPlan::Whitewash { generation: g },
                other => other,
            };
            let heir = (whitewasher && g + 1 < keys).then(|| ids[next + 1]);
            // A fresh key asks a fresh price, at least the machine's floor.
            let price = if g == 0 {
                price
            } else {
                sybil_rng
                    .gen_range(cfg.price_min..=cfg.price_max)
                    .max(price / 2 * 11 / 10)
            };
            let identity = match plan {
                IdentityPlan::Genesis => Identity::Genesis,
                IdentityPlan::Newcomer { join_at } => Identity::Newcomer { join_at },
                IdentityPlan::Whitewash { generation } => Identity::Whitewash { generation },
            };
            let endowed = g == 0;
            if endowed {
                pop.balances.push((account, balance));
                pop.stakes.push((account, stake));
            }
            pop.roles.push(Role::Provider(ProviderRole {
                behaviour,
                speed,
                price: Amount::new(price),
                plan,
                heir,
                region: (m as usize % nreg) as u8,
            }));
            let presence = Presence {
                joined_at: matches!(
                    plan,
                    IdentityPlan::Genesis | IdentityPlan::Whitewash { generation: 0 }
                )
                .then_some(Timestamp::ZERO),
                ..Presence::default()
            };
            pop.providers.insert(
                account,
                ProviderInfo {
                    machine: MachineId(m),
                    behaviour,
                    identity,
                    cost_per_second: Amount::new(price / 2),
                    first_ask: Amount::new(price),
                    initial_wealth: if endowed {
                        balance.saturating_add(stake)
                    } else {
                        Amount::ZERO
                    },
                    presence,
                    spent_micros: 0,
                    cheated_lots: 0,
                    lots_run: 0,
                    profit_after_first_cheat: 0.0,
                },
            );
            next += 1;
        }
    }
}

/// One memo of replicated state for every validator, or none in the check
/// mode (see [`MarketplaceConfig::share_state`]).
fn state_sharing(cfg: &MarketplaceConfig) -> StateSharing {
    if cfg.share_state {
        StateSharing::shared()
    } else {
        StateSharing::off()
    }
}

/// Light nodes in the world, in engine order after the validators.
fn light_count(cfg: &MarketplaceConfig) -> usize {
    let p = cfg.providers + cfg.sybil.newcomers + cfg.sybil.whitewashers * cfg.sybil.max_identities;
    p as usize + cfg.clients as usize + 2
}

/// The app and the dataset every third job uses.
fn goods() -> (Digest, Digest) {
    (
        content_digest(GoodKind::App, b"idlegrid/sim/app/render-v1"),
        content_digest(GoodKind::Dataset, b"idlegrid/sim/dataset/scenes-v1"),
    )
}

fn config_err(field: &'static str, reason: impl ToString) -> MarketplaceError {
    MarketplaceError::Config {
        field,
        reason: reason.to_string(),
    }
}

/// Runs the marketplace scenario: validators, providers, clients and
/// owners are all nodes of the simulated world.
pub fn run_marketplace(cfg: &MarketplaceConfig) -> Result<MarketplaceReport, MarketplaceError> {
    validate(cfg)?;
    let (mut sim, sim_cfg, disks, sharing) = setup(cfg)?;
    let series = drive(&mut sim, &sim_cfg, cfg)?;
    let mut r = report(sim, &sim_cfg, cfg, series)?;
    r.storage = disks.map(|d| crate::durable::total_stats(&d));
    // Batch applications computed, and taken from another validator that
    // held the very same state (0 with `--no-sharing`: every one computed).
    let (shared, computed) = sharing.counts();
    let computed = if cfg.share_state {
        computed
    } else {
        r.summary.ledger["batches_compared"].as_u64().unwrap_or(0)
    };
    r.summary.ledger["batches_computed"] = serde_json::json!(computed);
    r.summary.ledger["batches_shared"] = serde_json::json!(shared);
    Ok(r)
}

type MarketSim = Simulation<MarketNode, MarketObserver>;

/// Builds the world: identities, genesis, every node.
fn setup(
    cfg: &MarketplaceConfig,
) -> Result<(MarketSim, SimConfig, Option<Disks>, StateSharing), MarketplaceError> {
    let root = Seed::from_u64(cfg.seed).derive("marketplace");
    let mut rng = root.derive("driver").rng();
    let stake = Amount::new(cfg.stake_per_slot);
    let params = Params::default();
    let n_val = cfg.validators as usize;
    let specs = node_specs(cfg, n_val);
    let sim_cfg = sim_config(cfg);
    let ids = engine_ids(cfg, &sim_cfg, &specs)?;
    let val_ids = ids[..n_val].to_vec();
    let accounts: Vec<AccountId> = ids[n_val..].iter().map(|i| i.account()).collect();
    let provider_balance = Amount::new(1_000_000);
    let provider_stake = provider_stake(cfg, stake)?;
    let mut pop = Population {
        roles: Vec::new(),
        providers: BTreeMap::new(),
        framing: BTreeMap::new(),
        careless: BTreeSet::new(),
        limits: BTreeMap::new(),
        balances: val_ids
            .iter()
            .map(|v| (v.account(), Amount::new(1_000_000)))
            .collect(),
        stakes: Vec::new(),
    };
    providers(
        cfg,
        &root,
        &accounts,
        &mut rng,
        provider_balance,
        provider_stake,
        &mut pop,
    );
    clients(cfg, &root, &accounts, &mut rng, &mut pop);
    let (app, data) = owners(&accounts, &mut pop);
    let min_new_account = params.min_new_account;
    let chain = params.chain_id;
    let genesis = Genesis {
        balances: std::mem::take(&mut pop.balances),
        stakes: std::mem::take(&mut pop.stakes),
        params,
    };
    let setup = validator_setup(cfg, genesis, stake, &val_ids)?;
    let committee =
        Committee::equal(val_ids.iter().copied()).map_err(|e| config_err("validators", e))?;
    let fresh = idlegrid_reputation::ReputationBook::new(BookParams::default(), Default::default())
        .map_err(|e| config_err("reputation", e))?
        .fresh_score();
    let disks = (cfg.restart == RestartMode::Store).then(|| new_disks(n_val));
    let sharing = state_sharing(cfg);
    let world = World {
        setup,
        signatures: crate::consensus::shared_verifier(cfg.seed, specs.len()),
        sharing: sharing.clone(),
        disks: disks.clone(),
        committee,
        behaviors: cfg.byzantine.clone(),
        roles: pop.roles,
        n_val,
        chain,
        cfg: cfg.clone(),
        stake,
        provider_stake,
        min_new_account,
        template: job_template(cfg, fresh),
        goods: (
            app,
            data,
            Amount::new(APP_PRICE),
            Amount::new(DATASET_PRICE),
        ),
        coalition: super::coalition::Coalition::default(),
    };
    let tally = MarketTally::new(
        pop.providers,
        (pop.framing, pop.careless),
        pop.limits,
        Timestamp::ZERO + Duration::from_secs(cfg.active_secs),
    );
    let mut sim = Simulation::new(
        sim_cfg.clone(),
        cfg.network.clone(),
        specs,
        move |ctx| world.build(ctx),
        MarketObserver::new(
            tally,
            (0..n_val)
                .map(|i| !cfg.byzantine.get(i).is_some_and(|b| b.is_byzantine()))
                .collect(),
            match cfg.background_audits {
                true => AuditLane::background(),
                false => AuditLane::inline(),
            },
        ),
    )?;
    sim.set_size_of_message(node_wire_size);
    sim.set_threads(cfg.engine_threads);
    let mut fingerprints = super::fingerprint::Fingerprints::default();
    sim.set_message_fingerprint(move |m| fingerprints.of(m));
    for (at, f) in &cfg.faults {
        sim.schedule(*at, f.clone())?;
    }
    Ok((sim, sim_cfg, disks, sharing))
}

/// A provider's stake: its slot stakes plus the bonds of the sealed asks
/// in flight (one per batch, each live for its reveal window).
fn provider_stake(cfg: &MarketplaceConfig, stake: Amount) -> Result<Amount, MarketplaceError> {
    let provider_stake = Amount::new(
        cfg.stake_per_slot * u128::from(cfg.provider_capacity)
            + SEAL_BOND * (u128::from(MarketParams::DEFAULT.reveal_batches) + 2)
            + 1,
    );
    let slots = stake
        .checked_mul(u128::from(cfg.provider_capacity))
        .unwrap_or(Amount::MAX);
    if provider_stake < slots {
        return Err(config_err(
            "stake_per_slot",
            "provider stake cannot cover its slot bonds",
        ));
    }
    Ok(provider_stake)
}

/// What every validator starts from: the genesis ledger, the market
/// rules (the validators are the referees) and the clearing mechanism.
fn validator_setup(
    cfg: &MarketplaceConfig,
    genesis: Genesis,
    stake: Amount,
    val_ids: &[idlegrid_primitives::NodeId],
) -> Result<ValidatorSetup, MarketplaceError> {
    let rules = MarketRules {
        stake_per_slot: stake,
        slash_to_client_bps: 5_000,
        stage_deadline: Duration::from_secs(15),
        clearing_period: CLEARING_PERIOD,
        committee_size: 3,
        referees: val_ids.to_vec(),
        book: BookParams::default(),
        reputation_epoch_secs: 10,
        global_trust: cfg.global_trust,
    };
    Ok(ValidatorSetup {
        ledger: idlegrid_dag_ledger::ledger::Ledger::new(genesis)
            .map_err(|e| config_err("genesis", e))?,
        rules,
        consensus: cfg.consensus.clone(),
        mechanism: cfg.mechanism.build,
        epoch_secs: 1,
    })
}

/// Validators first, then light nodes, each group round-robin over the
/// regions; a `Delay` validator's egress delay on its spec.
fn node_specs(cfg: &MarketplaceConfig, n_val: usize) -> Vec<NodeSpec> {
    let nreg = cfg.network.regions.len().max(1);
    (0..n_val + light_count(cfg))
        .map(|i| {
            let region = if i < n_val {
                i % nreg
            } else {
                (i - n_val) % nreg
            };
            let mut spec = NodeSpec::in_region(RegionId::new(region as u16));
            if let Some(Behavior::Delay { extra }) = cfg.byzantine.get(i).filter(|_| i < n_val) {
                spec.egress_delay = *extra;
            }
            spec
        })
        .collect()
}

/// The engine's settings of a marketplace run.
fn sim_config(cfg: &MarketplaceConfig) -> SimConfig {
    let mut sim_cfg = SimConfig::new(cfg.seed);
    sim_cfg.restart = cfg.restart;
    sim_cfg.max_time = Timestamp::ZERO + Duration::from_secs(cfg.active_secs + cfg.drain_secs);
    sim_cfg.max_events = 400_000_000;
    sim_cfg.max_queue_len = cfg.max_queue_len;
    // Validators are nodes 0..V, and every light node talks to them.
    sim_cfg.hubs = cfg.validators as usize;
    sim_cfg.replay_command = Some(
        cfg.replay_command
            .clone()
            .unwrap_or_else(|| format!("idlegrid-sim run --seed {}", cfg.seed)),
    );
    sim_cfg
}

/// Identities are the engine's (derived from the root seed): learn them
/// from a probe, then write the genesis.
fn engine_ids(
    cfg: &MarketplaceConfig,
    sim_cfg: &SimConfig,
    specs: &[NodeSpec],
) -> Result<Vec<idlegrid_primitives::NodeId>, MarketplaceError> {
    let probe: Simulation<crate::demo::Gossip, ()> = Simulation::new(
        sim_cfg.clone(),
        cfg.network.clone(),
        specs.to_vec(),
        |ctx| crate::demo::Gossip::new(ctx, crate::demo::GossipConfig::default()),
        (),
    )?;
    Ok(probe.node_ids().to_vec())
}

/// The clients: each with its limit price (from its own seed stream), a
/// funded account, a bond stake and a first posting time.
fn clients(
    cfg: &MarketplaceConfig,
    root: &Seed,
    accounts: &[AccountId],
    rng: &mut impl Rng,
    pop: &mut Population,
) {
    let limits = cfg
        .valuation
        .draw_all(cfg.clients, &mut root.derive("valuation").rng());
    for (c, limit) in limits.into_iter().enumerate() {
        let account = accounts[pop.roles.len()];
        let framing = (c as u32) < cfg.framing_clients;
        let careless = (c as u32) >= cfg.clients - cfg.careless_clients;
        if careless {
            pop.careless.insert(account);
        }
        pop.balances.push((account, Amount::new(1_000_000_000)));
        pop.stakes
            .push((account, Amount::new(CLIENT_BOND * 200 + SEAL_BOND * 50)));
        pop.framing.insert(account, framing);
        pop.limits.insert(account, limit);
        let first_post = Timestamp::from_micros(rng.gen_range(1_000_000..4_000_000u64));
        pop.roles.push(Role::Client(ClientRole {
            framing,
            careless,
            first_post,
            limit,
        }));
    }
}

/// The app's and the dataset's owners; returns the two goods' digests.
fn owners(accounts: &[AccountId], pop: &mut Population) -> (Digest, Digest) {
    let (app, data) = goods();
    for (kind, digest, price) in [
        (GoodKind::App, app, APP_PRICE),
        (GoodKind::Dataset, data, DATASET_PRICE),
    ] {
        pop.balances
            .push((accounts[pop.roles.len()], Amount::new(1_000_000)));
        pop.roles
            .push(Role::Owner(kind, digest, Amount::new(price)));
    }
    (app, data)
}

/// What every client's job asks for, but for its own fields.
fn job_template(cfg: &MarketplaceConfig, fresh: idlegrid_reputation::Score) -> JobRequest {
    JobRequest {
        job: 0,
        lots: 1,
        max_slots_per_lot: cfg.subtasks_per_lot + cfg.trap_targets.cap(cfg.subtasks_per_lot),
        commitment: unsealed(),
        cap_micros_per_subtask: CAP_MICROS,
        // Reputation feeds the market filter: by default no provider
        // worse than a newcomer.
        min_reputation_bps: cfg.reputation_filter.min_bps(score_bps(fresh)),
        client_bond: Amount::new(CLIENT_BOND),
        deadline: Timestamp::ZERO,
        goods: JobGoods::none(),
        executor: ExecutorKind::Simulated,
        requires: Features::NONE,
    }
}

fn invariant(
    invariant: &'static str,
    at: Timestamp,
    message: String,
    cfg: &MarketplaceConfig,
    sim_cfg: &SimConfig,
) -> MarketplaceError {
    MarketplaceError::Invariant {
        invariant,
        at,
        message,
        seed: cfg.seed,
        replay: sim_cfg.replay(),
    }
}

/// The honest validator whose ledger the report reads (validator 0).
fn view(sim: &MarketSim) -> &ValidatorNode {
    match sim.node(NodeIndex::new(0)) {
        Some(MarketNode::Validator(v)) => v.node.inner(),
        _ => unreachable!("node 0 is a validator"),
    }
}

/// Transactions the `forge` validators put into their blocks, once it is
/// checked that none moved a coin: no validator's ledger, the forgers'
/// own included, paid anything to a forger's sink.
fn forgeries(sim: &MarketSim, n_val: u32) -> Result<u64, String> {
    let validators: Vec<(u32, &SimValidator)> = (0..n_val)
        .filter_map(|i| match sim.node(NodeIndex::new(i)) {
            Some(MarketNode::Validator(v)) => Some((i, &**v)),
            _ => None,
        })
        .collect();
    let mut forged = 0;
    for f in validators.iter().filter_map(|(_, v)| v.forger()) {
        forged += f.forged();
        let sink = f.sink_account();
        for (i, v) in &validators {
            let paid = v.node.inner().ledger().balance(&sink);
            if paid > Amount::ZERO {
                return Err(format!(
                    "validator {i}'s ledger paid {paid} to a forger's sink {}",
                    sink.short()
                ));
            }
        }
    }
    Ok(forged)
}

/// What withholding cost and how light nodes met it.
#[derive(Debug, Default)]
struct Withholding {
    /// Certified-fact messages the `withhold_facts` validators held back.
    withheld: u64,
    /// Times light nodes asked other validators because a fact they
    /// expected had not come (`LightCore::suspect_withheld`), the
    /// validators asked over all of them, the asks made because a batch
    /// closing was late (and of them those a late source showed spurious),
    /// and the proven-facts messages validators sent in answer.
    suspicions: u64,
    replays_asked: u64,
    closing_asks: u64,
    closing_asks_spurious: u64,
    replayed: u64,
    /// Sources light nodes replaced as seen withholding
    /// (`LightCore::withholders`), and how many of them were not
    /// `withhold_facts` validators.
    replaced: u64,
    replaced_honest: u64,
}

fn withholding(sim: &MarketSim) -> Withholding {
    let mut w = Withholding::default();
    let mut withholders = std::collections::BTreeSet::new();
    for i in 0..sim.node_ids().len() {
        let Some(MarketNode::Validator(v)) = sim.node(NodeIndex::new(i as u32)) else {
            continue;
        };
        w.replayed += v.node.inner().replayed();
        if let Some(h) = v.withholder() {
            w.withheld += h.withheld();
            withholders.insert(sim.node_ids()[i]);
        }
    }
    for i in 0..sim.node_ids().len() {
        let core = match sim.node(NodeIndex::new(i as u32)) {
            Some(MarketNode::Provider(p)) => p.node.core(),
            Some(MarketNode::Client(c)) => c.node.core(),
            _ => continue,
        };
        w.suspicions += core.suspicions();
        w.replays_asked += core.replays_asked();
        w.closing_asks += core.closing_asks();
        w.closing_asks_spurious += core.closing_asks_spurious();
        for v in core.withholders() {
            w.replaced += 1;
            w.replaced_honest += u64::from(!withholders.contains(v));
        }
    }
    w
}

/// Runs the world second by second, sampling the series.
fn drive(
    sim: &mut MarketSim,
    sim_cfg: &SimConfig,
    cfg: &MarketplaceConfig,
) -> Result<MarketSeries, MarketplaceError> {
    let mut series = MarketSeries::default();
    let mut now = Timestamp::ZERO;
    while now < sim_cfg.max_time {
        now = (now + Duration::from_secs(1)).min(sim_cfg.max_time);
        sim.run_until(now)?;
        if let Some(v) = sim.observer().failure() {
            return Err(invariant("ledger", now, v, cfg, sim_cfg));
        }
        sample(sim, &mut series);
    }
    Ok(series)
}

/// One second of the series: prices and matches of the second, jobs
/// closed, mean wealth change of honest and cheating machines.
fn sample(sim: &mut MarketSim, series: &mut MarketSeries) {
    let (matches, price_sum, closed) = std::mem::take(&mut sim.observer_mut().tally.second);
    series
        .clearing_price
        .push((matches > 0).then(|| price_sum / matches as f64));
    series.matches.push(matches);
    series.jobs_completed.push(closed);
    let ledger = view(sim).ledger();
    let (mut hon, mut che) = ((0.0f64, 0u64), (0.0f64, 0u64));
    for (a, p) in &sim.observer().tally.providers {
        let w = wealth(ledger, a);
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

/// Balance + bonded + unbonding.
fn wealth(ledger: &idlegrid_dag_ledger::ledger::Ledger, a: &AccountId) -> i128 {
    ledger.account(a).map_or(0, |x| {
        (x.balance.get() + x.bonded.get() + x.unbonding_total().get()) as i128
    })
}

/// Profit and detection per machine (a whitewasher's identities add up;
/// transfers between them cancel).
#[derive(Default)]
struct MachineAgg {
    profit: f64,
    after_first_cheat: f64,
    work: bool,
    cheated: bool,
    caught: bool,
}

/// Economics of the run: profit per behaviour, per honest/cheating
/// machine, cheaters caught.
struct Economics {
    by_b: BTreeMap<&'static str, (f64, u64)>,
    /// Profit from the first cheated lot on, over machines that cheated.
    after_cheat: BTreeMap<&'static str, (f64, u64)>,
    scores: BTreeMap<&'static str, (f64, u64)>,
    with_work: BTreeMap<&'static str, u64>,
    hon: (f64, u64),
    che: (f64, u64),
    cheating_providers: u64,
    cheaters_caught: u64,
    cheaters_assigned: u64,
}

/// The validators' trust gate at the end of the run: its setting and how
/// many providers' records it withheld in the last epoch.
fn trust_json(
    view: &ValidatorNode,
    tally: &MarketTally,
    cfg: &MarketplaceConfig,
) -> serde_json::Value {
    let Some(gate) = cfg.global_trust else {
        return serde_json::json!({ "enabled": false });
    };
    let market = view.market();
    let gated = tally
        .providers
        .keys()
        .filter(|a| {
            let book = market
                .book()
                .score(&a.node(), idlegrid_reputation::Role::Provider);
            market.provider_score(a) < book
        })
        .count();
    serde_json::json!({
        "enabled": true,
        "min_bps_of_mean": gate.min_bps_of_mean,
        "computed": market.global_trust().is_some(),
        "providers_gated": gated,
    })
}

fn economics(view: &ValidatorNode, tally: &MarketTally) -> Economics {
    let ledger = view.ledger();
    let mut e = Economics {
        by_b: BTreeMap::new(),
        after_cheat: BTreeMap::new(),
        scores: BTreeMap::new(),
        with_work: BTreeMap::new(),
        hon: (0.0, 0),
        che: (0.0, 0),
        cheating_providers: 0,
        cheaters_caught: 0,
        cheaters_assigned: 0,
    };
    let mut machines: BTreeMap<MachineId, (&'static str, Behaviour, MachineAgg)> = BTreeMap::new();
    for (a, p) in &tally.providers {
        let cost = p.cost_per_second.get() as f64 * p.spent_micros as f64 / 1e6;
        let profit = (wealth(ledger, a) - p.initial_wealth.get() as i128) as f64 - cost;
        let name = p.label();
        let s = e.scores.entry(name).or_default();
        s.0 += f64::from(score_bps(view.market().provider_score(a))) / 1e4;
        s.1 += 1;
        let m = &mut machines
            .entry(p.machine)
            .or_insert_with(|| (name, p.behaviour, MachineAgg::default()))
            .2;
        m.profit += profit;
        m.after_first_cheat += p.profit_after_first_cheat;
        m.work |= p.lots_run > 0;
        m.cheated |= p.cheated_lots > 0;
        m.caught |= tally.slashed.contains_key(a);
    }
    for (name, behaviour, a) in machines.values() {
        *e.with_work.entry(name).or_default() += u64::from(a.work);
        e.cheaters_assigned += u64::from(is_cheater(behaviour));
        let b = e.by_b.entry(name).or_default();
        b.0 += a.profit;
        b.1 += 1;
        if a.cheated {
            let c = e.after_cheat.entry(name).or_default();
            *c = (c.0 + a.after_first_cheat, c.1 + 1);
        }
        if *behaviour == Behaviour::Honest {
            e.hon = (e.hon.0 + a.profit, e.hon.1 + 1);
        } else if is_cheater(behaviour) {
            e.che = (e.che.0 + a.profit, e.che.1 + 1);
            if a.cheated {
                e.cheating_providers += 1;
                e.cheaters_caught += u64::from(a.caught);
            }
        }
    }
    e
}

fn mean((s, n): (f64, u64)) -> f64 {
    if n == 0 { 0.0 } else { s / n as f64 }
}

/// The report: summary sections from the observer's tally and validator
/// 0's final ledger.
fn report(
    mut sim: MarketSim,
    sim_cfg: &SimConfig,
    cfg: &MarketplaceConfig,
    series: MarketSeries,
) -> Result<MarketplaceReport, MarketplaceError> {
    let end = sim_cfg.max_time;
    let run = sim.finish(crate::StopReason::TimeLimit)?;
    let obs = sim.observer();
    if let Some(v) = obs.failure() {
        return Err(invariant("ledger", end, v, cfg, sim_cfg));
    }
    let view = view(&sim);
    let open = view.market().open_jobs();
    if open > 0 {
        let msg = format!("{open} jobs still open after the drain period");
        return Err(invariant("every-job-settles", end, msg, cfg, sim_cfg));
    }
    if let Err(v) = view.market().check_lots(view.ledger()) {
        return Err(invariant(v.invariant, end, v.detail, cfg, sim_cfg));
    }
    let forged = forgeries(&sim, cfg.validators)
        .map_err(|msg| invariant("forgeries-move-nothing", end, msg, cfg, sim_cfg))?;
    let held = withholding(&sim);
    let ledger = view.ledger();
    let t = &obs.tally;
    let m = &t.c;
    let e = economics(view, t);
    let detection_rate = if m.cheated_lots == 0 {
        1.0
    } else {
        m.detected_lots as f64 / m.cheated_lots as f64
    };
    let supply_ok = obs.violations() == 0
        && ledger.total_supply().get() + ledger.burned().get() == ledger.initial_supply().get();
    let profit_by: serde_json::Map<String, serde_json::Value> = e
        .by_b
        .iter()
        .map(|(k, v)| {
            let mu = mean(*v);
            let per_stake = mu / (f64::from(cfg.provider_capacity) * cfg.stake_per_slot as f64);
            let json = serde_json::json!({
                "mean": mu,
                "per_stake": per_stake,
                "providers": v.1,
                "with_work": e.with_work.get(k).copied().unwrap_or(0),
                "after_first_cheat_mean": mean(e.after_cheat.get(k).copied().unwrap_or_default()),
            });
            ((*k).to_string(), json)
        })
        .collect();
    let score_by: serde_json::Map<String, serde_json::Value> = e
        .scores
        .iter()
        .map(|(k, v)| ((*k).to_string(), serde_json::json!(mean(*v))))
        .collect();
    let joined = t
        .providers
        .values()
        .filter(|p| p.presence.joined_at.is_some())
        .count() as u64;
    let active_until = Timestamp::ZERO + Duration::from_secs(cfg.active_secs);
    let summary = MarketplaceSummary {
        ledger: serde_json::json!({
            "initial_supply": ledger.initial_supply().get().to_string(),
            "final_supply": ledger.total_supply().get().to_string(),
            "burned": ledger.burned().get().to_string(),
            "invariant_violations": obs.violations(),
            "batches_checked": obs.checked(),
            "batches_compared": obs.batches(),
            "validators_compared": cfg.validators,
            "forged_transactions": forged,
            "withheld_fact_messages": held.withheld,
            "light_node_suspicions": held.suspicions,
            "light_node_replays_asked": held.replays_asked,
            "light_node_closing_asks": held.closing_asks,
            "light_node_closing_asks_spurious": held.closing_asks_spurious,
            "replayed_fact_messages": held.replayed,
            "light_sources_replaced": held.replaced,
            "light_sources_replaced_honest": held.replaced_honest,
        }),
        market: market_json(t, joined, cfg),
        jobs: jobs_json(t),
        entrap: entrap_json(t, &e, detection_rate, run.virtual_time),
        economics: serde_json::json!({
            "honest_profit_mean": mean(e.hon),
            "cheater_profit_mean": mean(e.che),
            // Paid to providers per useful (real, non-replica) subtask.
            "client_cost_per_useful_subtask": cost_per_useful_subtask(m),
            "profit_by_behaviour": profit_by,
        }),
        reputation: serde_json::json!({
            "mean_score_by_behaviour": score_by,
            "sybil": sybil::summary(&t.providers, &cfg.sybil, &t.c, active_until),
            "global_trust": trust_json(view, t, cfg),
        }),
        registry: registry_json(view),
    };
    Ok(MarketplaceReport {
        digest: run.digest,
        ledger_digest: ledger.state_digest(),
        summary,
        consensus_metrics: obs.consensus_metrics().clone(),
        byzantine: cfg.byzantine.iter().filter(|b| b.is_byzantine()).count(),
        events: run.events,
        jobs_completed: m.jobs_closed,
        cheaters_caught: e.cheaters_caught,
        cheating_providers: e.cheating_providers,
        detection_rate,
        honest_profit_mean: mean(e.hon),
        cheater_profit_mean: mean(e.che),
        supply_conserved: supply_ok,
        initial_supply: ledger.initial_supply().get(),
        burned: ledger.burned().get(),
        report: run,
        series,
        storage: None,
    })
}

fn market_json(t: &MarketTally, joined: u64, cfg: &MarketplaceConfig) -> serde_json::Value {
    let m = &t.c;
    let wb = &t.welfare;
    let pr = dist(t.prices.clone());
    serde_json::json!({
        "orders": m.jobs_submitted + joined,
        "matches": m.matches,
        "volume": m.volume.to_string(),
        "clearing_price": {"mean": pr.mean, "p50": pr.p50, "p90": pr.p90},
        "welfare": m.welfare,
        // How the clean lots' gains from trade split (clients valued at
        // their limit price), and the mechanism's declared budget surplus
        // per compute-second (lots are priced at the seller price).
        "provider_surplus": m.provider_surplus,
        "client_surplus": m.client_surplus,
        "budget_surplus": wb.surplus.to_string(),
        "reprices": m.reprices,
        // Sealed orders whose bond was burned (not revealed in time), and
        // bids re-sealed for unfilled lots.
        "seal_forfeits": m.seal_forfeits,
        "bid_reseals": m.bid_reseals,
        // Declared gains `Σ slots·(bid − ask)` of the mechanism against the
        // exact welfare-maximizing assignment of the same orders, summed
        // over clearing periods (`null` when a period was too large for
        // the exact solver).
        "welfare_declared": wb.mechanism.to_string(),
        "welfare_optimal": wb.optimal.map(|o| o.to_string()),
        "efficiency": wb.optimal.filter(|o| *o > 0).map(|o| wb.mechanism as f64 / o as f64),
        "welfare_periods": wb.periods,
        "mechanism": cfg.mechanism.name,
        // Where clearing prices can fall: provider costs, first asks and
        // the floors adaptive providers undercut to; client limits.
        "price_spread": super::prices::spreads_json(t, cfg.adaptive_pricing),
    })
}

fn jobs_json(t: &MarketTally) -> serde_json::Value {
    let m = &t.c;
    let lat = dist(t.latencies.clone());
    serde_json::json!({
        "submitted": m.jobs_submitted,
        "completed": m.jobs_closed,
        // Not completed: refused by the ledger (the `PostJob` itself), or
        // still open when the run stopped.
        "failed": m.jobs_submitted.saturating_sub(m.jobs_closed),
        "refused": m.jobs_refused,
        "open": m.jobs_submitted.saturating_sub(m.jobs_closed + m.jobs_refused),
        // Closed (counted in `completed`) without a lot settled: every lot
        // lapsed, unmatched or unplanned.
        "unrun": m.jobs_unrun,
        "lots_settled": m.lots_settled,
        "lots_lapsed": m.lapsed_lots,
        // Matched lots no plan reached by the deadline: careless clients'
        // (every lot repeats an input), and everybody else's (must be 0).
        "lots_unplanned": m.unplanned_lots,
        "lots_unplanned_careful": m.unplanned_careful,
        "unplanned_bonds_burned": m.unplanned_bonds,
        "rejections": m.rejections,
        "outcomes": m.outcomes,
        // Honest providers' lots settled as defaulted or abandoned, by the
        // first step of the lot that never happened.
        "stalled_at": t.stalls.by_step,
        "latency_seconds": {"p50": lat.p50, "p90": lat.p90, "p99": lat.p99},
    })
}

fn entrap_json(
    t: &MarketTally,
    e: &Economics,
    detection_rate: f64,
    end: Timestamp,
) -> serde_json::Value {
    let m = &t.c;
    let ratio = |a: u64| {
        if m.real_subtasks == 0 {
            0.0
        } else {
            a as f64 / m.real_subtasks as f64
        }
    };
    let mut out = serde_json::json!({
        "traps_planted": m.traps_planted,
        "reused_traps": m.reused_traps,
        "trap_ratio": ratio(m.traps_planted),
        "cheating_providers": e.cheating_providers,
        "cheaters_assigned": e.cheaters_assigned,
        "cheaters_caught": e.cheaters_caught,
        "detection_rate": detection_rate,
        "cheated_lots": m.cheated_lots,
        "detected_lots": m.detected_lots,
        // Cheated lots settled without a slash (accepted, and paid unless
        // the referees dismissed them), and the virtual seconds from a
        // caught cheater's first cheated lot to its first conviction.
        "cheated_lots_accepted": m.cheated_lots.saturating_sub(m.detected_lots),
        "time_to_catch_s": time_to_catch(t),
        "honest_slashed": m.honest_slashed,
        "client_abandoned": m.client_abandoned,
        "framing_attempts": m.framing_attempts,
        "framings_caught": m.framings_caught,
        "framings_on_admitted_cheats": m.framings_on_admitted_cheats,
        "disputes": m.disputes,
        "referee_reexecutions": m.referee_reexecutions,
        // Disputes escalated to a larger committee, framings whose dispute
        // convicted nobody, fees paid to majority referees.
        "escalations": m.escalations,
        "framings_unresolved": m.framing_attempts.saturating_sub(m.framings_caught + m.framings_on_admitted_cheats),
        "referee_fees": m.referee_fees.to_string(),
        "detection_by_behaviour": t.detection.to_json(),
    });
    // All-in verification compute (provider traps, the client's trap
    // answers, referee re-executions, replicas) over the useful compute:
    // the whole run, its last two thirds, and by source.
    if let (Some(o), serde_json::Value::Object(v)) =
        (out.as_object_mut(), t.verification.to_json(end))
    {
        o.extend(v);
    }
    out
}

/// Paid to providers over the real (non-trap, non-replica) subtasks.
fn cost_per_useful_subtask(m: &super::tally::Counts) -> f64 {
    if m.real_subtasks == 0 {
        0.0
    } else {
        m.volume as f64 / m.real_subtasks as f64
    }
}

/// Seconds from each convicted provider's first cheated lot (its
/// execution) to its first conviction: median, mean and how many.
fn time_to_catch(t: &MarketTally) -> serde_json::Value {
    let mut s: Vec<f64> = t
        .providers
        .values()
        .filter_map(|p| {
            let (c, f) = (p.presence.convicted_at?, p.presence.first_cheat_at?);
            Some(c.saturating_since(f).as_micros() as f64 / 1e6)
        })
        .collect();
    s.sort_by(f64::total_cmp);
    let p50 = s.get(s.len() / 2).copied().unwrap_or(0.0);
    let mean = if s.is_empty() {
        0.0
    } else {
        s.iter().sum::<f64>() / s.len() as f64
    };
    serde_json::json!({"p50": p50, "mean": mean, "caught": s.len()})
}

fn registry_json(view: &ValidatorNode) -> serde_json::Value {
    let reg = view.market().registry().stats();
    serde_json::json!({
        "apps": reg.apps,
        "datasets": reg.datasets,
        "owner_revenue": reg.owner_revenue.get().to_string(),
        "jobs_settled": reg.settled_jobs,
        "jobs_open": reg.open_jobs,
    })
}
