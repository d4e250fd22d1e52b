//! Scenario files (TOML): what to simulate, on which network, with which
//! faults, under which invariants.
//!
//! Every section rejects unknown fields, and every value is validated with a
//! message naming the field, so a typo never silently runs a different
//! experiment. The embedded default ([`DEFAULT_SCENARIO`]) documents every
//! field.

use std::path::Path;

use idlegrid_primitives::{Duration, Timestamp};
use serde::Deserialize;
use thiserror::Error;

use crate::consensus::{Behavior, ConsensusParams, MIN_TX_BYTES};
use crate::demo::GossipConfig;
use crate::engine::{MAX_NODES, RestartMode, SimConfig};
use crate::fault::Fault;
use crate::network::{Bandwidth, MAX_REGIONS, NetworkConfig, Regions, WORLD6};
use crate::node::{NodeIndex, NodeSpec};
use idlegrid_dag_ledger::consensus::{ConsensusConfig, MAX_COMMITTEE_SIZE};
use idlegrid_market::MechanismRegistry;

/// The scenario `idlegrid-sim run` uses when given no file: the whole
/// marketplace (see [`crate::marketplace`]).
pub const DEFAULT_SCENARIO: &str = include_str!("../../scenarios/default.toml");

/// The scenarios shipped in `sim/scenarios/`, by name (`idlegrid-sim
/// scenarios` lists them; `idlegrid-sim run <name>` runs one).
pub const BUILTIN_SCENARIOS: &[(&str, &str)] = &[
    ("default", DEFAULT_SCENARIO),
    ("cheaters", include_str!("../../scenarios/cheaters.toml")),
    ("sybil", include_str!("../../scenarios/sybil.toml")),
    ("longrun", include_str!("../../scenarios/longrun.toml")),
    (
        "longrun-reuse",
        include_str!("../../scenarios/longrun-reuse.toml"),
    ),
    (
        "longrun-collusion",
        include_str!("../../scenarios/longrun-collusion.toml"),
    ),
    ("framing", include_str!("../../scenarios/framing.toml")),
    ("partition", include_str!("../../scenarios/partition.toml")),
    ("byzantine", include_str!("../../scenarios/byzantine.toml")),
    (
        "withholding",
        include_str!("../../scenarios/withholding.toml"),
    ),
    ("large", include_str!("../../scenarios/large.toml")),
    ("huge", include_str!("../../scenarios/huge.toml")),
    ("consensus", include_str!("../../scenarios/consensus.toml")),
    ("gossip", include_str!("../../scenarios/gossip.toml")),
    ("crashes", include_str!("../../scenarios/crashes.toml")),
    (
        "throughput",
        include_str!("../../scenarios/throughput.toml"),
    ),
    ("demand", include_str!("../../scenarios/demand.toml")),
];

/// The text of the built-in scenario `name`.
pub fn builtin(name: &str) -> Option<&'static str> {
    BUILTIN_SCENARIOS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
}

/// Names of the built-in scenarios, comma-separated (for messages).
pub fn builtin_names() -> String {
    BUILTIN_SCENARIOS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Longest virtual run a scenario may ask for (one day).
pub const MAX_DURATION_MS: u64 = 86_400_000;
/// Most events a scenario may ask for.
pub const MAX_EVENTS: u64 = 10_000_000_000;

/// Transaction deliveries (`nodes² × tx_per_second × seconds`: every
/// validator handles every transaction) the simulator handles per second
/// of one core's time, measured on the 2-core machine of the README's
/// figures: the README's `idlegrid-sim throughput` sweep (24 runs, 2.37e8
/// deliveries in 197 s of user time; overloaded runs cost the most).
pub const TX_DELIVERIES_PER_CPU_SECOND: f64 = 1.2e6;

/// Most transaction deliveries one consensus run may ask for: about an
/// hour of one core at [`TX_DELIVERIES_PER_CPU_SECOND`].
pub const MAX_TX_DELIVERIES: f64 = TX_DELIVERIES_PER_CPU_SECOND * 3_600.0;

/// Why a scenario could not be loaded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped fields.
    #[error("invalid scenario: {0}")]
    Parse(String),
    /// A field has an invalid value.
    #[error("invalid scenario: `{field}` {reason}")]
    Invalid {
        /// Dotted path of the field, e.g. `network.loss`.
        field: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Which machine every node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MachineKind {
    /// DAG BFT consensus validators ([`crate::consensus`]).
    Consensus,
    /// The demonstration gossip machine ([`crate::demo`]).
    #[default]
    Gossip,
    /// The whole marketplace ([`crate::marketplace`]): `nodes` are the
    /// validators; providers and clients come from `[marketplace]`.
    Marketplace,
    /// Durable validators (the `node` crate's, with a transfer load) over
    /// simulated disks, restarted from what their disks held
    /// ([`crate::crashes`]); parameters in `[crashes]`.
    Crashes,
}

impl MachineKind {
    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            MachineKind::Consensus => "consensus",
            MachineKind::Gossip => "gossip",
            MachineKind::Marketplace => "marketplace",
            MachineKind::Crashes => "crashes",
        }
    }
}

/// A scenario file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, reported in summaries.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Root seed (overridden by `--seed`).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Virtual duration of the run in milliseconds.
    pub duration_ms: u64,
    /// Event bound.
    #[serde(default = "default_max_events")]
    pub max_events: u64,
    /// Bound on pending events.
    #[serde(default = "default_max_queue")]
    pub max_queue_len: usize,
    /// Which machine the nodes run.
    #[serde(default)]
    pub machine: MachineKind,
    /// The network.
    #[serde(default)]
    pub network: NetworkSection,
    /// The nodes.
    pub nodes: NodesSection,
    /// Gossip parameters (with `machine = "gossip"`).
    #[serde(default)]
    pub gossip: GossipSection,
    /// Consensus parameters (with `machine = "consensus"`).
    #[serde(default)]
    pub consensus: ConsensusSection,
    /// Marketplace populations (with `machine = "marketplace"`).
    #[serde(default)]
    pub marketplace: Option<MarketplaceSection>,
    /// Durable validators and their disks (with `machine = "crashes"`).
    #[serde(default)]
    pub crashes: CrashesSection,
    /// Invariant bounds.
    #[serde(default)]
    pub invariants: InvariantsSection,
    /// The fault schedule.
    #[serde(default)]
    pub faults: Vec<FaultEntry>,
    /// The sweep `idlegrid-sim sweep` runs over this scenario.
    #[serde(default)]
    pub sweep: Option<SweepTable>,
}

fn default_seed() -> u64 {
    1
}
fn default_max_events() -> u64 {
    100_000_000
}
fn default_max_queue() -> usize {
    4_000_000
}

/// `[network]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    /// `"world6"` (default), `"datacenter"` (one region, 0.25 ms one way)
    /// or `"custom"` with `[[network.regions]]`.
    #[serde(default = "default_preset")]
    pub preset: String,
    /// Custom regions, each with a row of one-way latencies in ms.
    #[serde(default)]
    pub regions: Vec<RegionEntry>,
    /// Jitter as a fraction of the base latency.
    #[serde(default = "default_jitter")]
    pub jitter: f64,
    /// Loss probability.
    #[serde(default)]
    pub loss: f64,
    /// Upload bandwidth per node in Mbit/s; 0 = unlimited.
    #[serde(default = "default_upload")]
    pub upload_mbps: f64,
    /// Download bandwidth per node in Mbit/s; 0 = unlimited (default).
    /// Any finite value switches the network to max-min fair sharing of
    /// every node's uplink and downlink ([`crate::network::fair`]).
    #[serde(default)]
    pub download_mbps: f64,
    /// Bound on messages in flight per directed link.
    #[serde(default = "default_in_flight")]
    pub max_in_flight_per_link: u32,
    /// Links deliver in order.
    #[serde(default = "default_true")]
    pub fifo: bool,
}

fn default_preset() -> String {
    "world6".into()
}
fn default_jitter() -> f64 {
    0.1
}
fn default_upload() -> f64 {
    1_000.0
}
fn default_in_flight() -> u32 {
    100_000
}
fn default_true() -> bool {
    true
}

impl Default for NetworkSection {
    fn default() -> Self {
        Self {
            preset: default_preset(),
            regions: Vec::new(),
            jitter: default_jitter(),
            loss: 0.0,
            upload_mbps: default_upload(),
            download_mbps: 0.0,
            max_in_flight_per_link: default_in_flight(),
            fifo: true,
        }
    }
}

/// `[[network.regions]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionEntry {
    /// Region name.
    pub name: String,
    /// One-way latency in ms to each region, in table order.
    pub latency_ms: Vec<f64>,
}

/// `[nodes]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodesSection {
    /// Number of nodes.
    pub count: usize,
    /// Regions to place nodes in, round-robin; empty = all regions.
    #[serde(default)]
    pub regions: Vec<String>,
    /// What a restarted node remembers: `"store"` (what its simulated
    /// disk held: validators write blocks, commits and checkpoints, and a
    /// crash may lose the un-synced ones), `"resume"` (its whole state, the
    /// same machine resumes) or `"fresh"` (nothing). Default: `"store"`
    /// for validators (consensus, marketplace, crashes), `"fresh"` for
    /// gossip.
    #[serde(default)]
    pub restart: Option<RestartMode>,
    /// With `restart = "store"` (consensus, marketplace): probability that
    /// a crash loses (part of) the un-synced writes. Default 0.5.
    #[serde(default = "default_lose_unsynced")]
    pub lose_unsynced: f64,
}

/// `[consensus]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusSection {
    /// Byzantine validators.
    #[serde(default)]
    pub byzantine: Vec<ByzantineEntry>,
    /// Transactions each validator submits per virtual second.
    #[serde(default = "default_tx_rate")]
    pub tx_per_second: f64,
    /// The offered load of the whole committee, tx/s, split evenly over the
    /// honest validators; when given it takes the place of
    /// `tx_per_second` (so a sweep over `nodes.count` keeps the total).
    #[serde(default)]
    pub total_tx_per_second: Option<f64>,
    /// Bytes per transaction.
    #[serde(default = "default_tx_bytes")]
    pub tx_bytes: usize,
    /// Wait for the round leader before proposing anyway, ms.
    #[serde(default = "default_leader_timeout")]
    pub leader_timeout_ms: u64,
    /// Leaders per round.
    #[serde(default = "default_leaders")]
    pub leaders_per_round: u32,
    /// Wait for leaders only about as long as they recently took (never
    /// more than `leader_timeout_ms`); false (the default) always waits
    /// the timeout.
    #[serde(default = "default_adaptive_leader_wait")]
    pub adaptive_leader_wait: bool,
    /// How long a missing ancestor may take to arrive on its own before it
    /// is fetched, ms (dag-ledger's `ConsensusConfig::fetch_grace`); absent,
    /// its default. 0 fetches at once.
    #[serde(default)]
    pub fetch_grace_ms: Option<u64>,
    /// Removed: block signatures are always verified (the simulated
    /// validators share one memo of verified signatures, so each block is
    /// verified once per run). Setting it is an error naming the field.
    #[serde(default)]
    pub verify_signatures: Option<bool>,
    /// Once the network is healthy, a commit must follow within this, ms.
    #[serde(default = "default_liveness")]
    pub liveness_bound_ms: u64,
    /// CPU time (µs) a validator spends verifying each block it receives
    /// (its signature); 0 = CPU is free. 36 µs measured:
    /// `consensus::verify_signature/block` of `cargo bench -p
    /// idlegrid-dag-ledger --bench consensus`.
    #[serde(default)]
    pub cpu_us_per_block_verify: f64,
    /// CPU time (µs) per transaction of a received block (checking and
    /// applying it); 0 = free. 16 µs measured for a signed transfer:
    /// `ledger::apply_transfers/sig=batch/n=1000` of `cargo bench -p
    /// idlegrid-dag-ledger --bench ledger` (15.9 ms per 1 000).
    #[serde(default)]
    pub cpu_us_per_tx_apply: f64,
    /// Commits in the first `warmup_ms` are left out of the steady-state
    /// throughput (`consensus.load.committed_tx_per_second`) and of the
    /// transaction commit latency. Default 0.
    #[serde(default)]
    pub warmup_ms: u64,
}

/// `[crashes]`: durable validators over simulated disks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashesSection {
    /// Signed transfers each validator submits per virtual second.
    #[serde(default = "default_crash_tx_rate")]
    pub tx_per_second: f64,
    /// Ledger checkpoint every this many commits.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// Probability that a crash loses (part of) the un-synced writes.
    #[serde(default = "default_lose_unsynced")]
    pub lose_unsynced: f64,
    /// Restarts that find the whole disk lost.
    #[serde(default)]
    pub lose_store: Vec<LoseStoreEntry>,
    /// A live validator may be at most this many commits behind...
    #[serde(default = "default_catch_up_commits")]
    pub catch_up_commits: u64,
    /// ...once it has been up this long, ms.
    #[serde(default = "default_catch_up_grace")]
    pub catch_up_grace_ms: u64,
}

/// `[[crashes.lose_store]]`: the `restart`-th restart of `node` (1 = the
/// first) finds its disk empty.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoseStoreEntry {
    /// The node.
    pub node: u32,
    /// Which of its restarts.
    pub restart: u32,
}

fn default_crash_tx_rate() -> f64 {
    20.0
}
fn default_checkpoint_every() -> u64 {
    16
}
fn default_lose_unsynced() -> f64 {
    0.5
}
fn default_catch_up_commits() -> u64 {
    100
}
fn default_catch_up_grace() -> u64 {
    5_000
}

impl Default for CrashesSection {
    fn default() -> Self {
        Self {
            tx_per_second: default_crash_tx_rate(),
            checkpoint_every: default_checkpoint_every(),
            lose_unsynced: default_lose_unsynced(),
            lose_store: Vec::new(),
            catch_up_commits: default_catch_up_commits(),
            catch_up_grace_ms: default_catch_up_grace(),
        }
    }
}

fn default_tx_rate() -> f64 {
    200.0
}
fn default_tx_bytes() -> usize {
    128
}
fn default_leader_timeout() -> u64 {
    250
}
fn default_leaders() -> u32 {
    1
}
fn default_adaptive_leader_wait() -> bool {
    false
}
fn default_liveness() -> u64 {
    10_000
}

impl Default for ConsensusSection {
    fn default() -> Self {
        Self {
            byzantine: Vec::new(),
            tx_per_second: default_tx_rate(),
            total_tx_per_second: None,
            tx_bytes: default_tx_bytes(),
            leader_timeout_ms: default_leader_timeout(),
            leaders_per_round: default_leaders(),
            adaptive_leader_wait: default_adaptive_leader_wait(),
            fetch_grace_ms: None,
            verify_signatures: None,
            liveness_bound_ms: default_liveness(),
            cpu_us_per_block_verify: 0.0,
            cpu_us_per_tx_apply: 0.0,
            warmup_ms: 0,
        }
    }
}

/// A Byzantine behaviour in a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BehaviorKind {
    /// Two blocks per round.
    Equivocate,
    /// Blocks reach only `recipients` peers; no fetches served.
    Withhold,
    /// Blocks with too few parents.
    InvalidBlocks,
    /// Every message sent `delay_ms` late.
    Delay,
    /// Its clock reads `ahead_ms` ahead of everybody's (its blocks carry
    /// that time, trying to move consensus time and every deadline on the
    /// ledger forward).
    ClockAhead,
    /// Transfers with forged signatures in its own blocks (marketplace).
    Forge,
    /// Certified facts served except those light nodes must act on
    /// (marketplace).
    WithholdFacts,
}

/// Most a `clock_ahead` validator's clock may read ahead: a year.
const MAX_AHEAD_MS: u64 = 366 * 86_400_000;

/// One `[[consensus.byzantine]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByzantineEntry {
    /// Node indices.
    pub nodes: Vec<u32>,
    /// What they do.
    pub behavior: BehaviorKind,
    /// For `withhold`: peers that still receive blocks.
    #[serde(default)]
    pub recipients: u32,
    /// For `delay`: extra delay, ms.
    #[serde(default)]
    pub delay_ms: u64,
    /// For `clock_ahead`: how far ahead its clock reads, ms.
    #[serde(default)]
    pub ahead_ms: u64,
}

/// `[gossip]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GossipSection {
    /// Rumor period per node, ms.
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
    /// Payload bytes per rumor.
    #[serde(default = "default_payload")]
    pub payload_bytes: usize,
    /// Forwarding fanout; 0 (or at least the number of peers) = all peers.
    #[serde(default = "default_fanout")]
    pub fanout: usize,
}

fn default_interval() -> u64 {
    500
}
fn default_payload() -> usize {
    1_024
}
fn default_fanout() -> usize {
    4
}

impl Default for GossipSection {
    fn default() -> Self {
        Self {
            interval_ms: default_interval(),
            payload_bytes: default_payload(),
            fanout: default_fanout(),
        }
    }
}

/// `[invariants]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvariantsSection {
    /// Gossip: fail if a rumor takes longer than this to reach a node.
    pub max_propagation_ms: Option<u64>,
}

/// One `[[faults]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultEntry {
    /// Cut links between groups.
    Partition {
        /// When, ms.
        at_ms: u64,
        /// Groups of node indices.
        groups: Vec<Vec<u32>>,
    },
    /// Cut links `from → to` only.
    Block {
        /// When, ms.
        at_ms: u64,
        /// Senders.
        from: Vec<u32>,
        /// Receivers.
        to: Vec<u32>,
    },
    /// Restore all links.
    Heal {
        /// When, ms.
        at_ms: u64,
    },
    /// Crash nodes.
    Crash {
        /// When, ms.
        at_ms: u64,
        /// Node indices.
        nodes: Vec<u32>,
    },
    /// Restart crashed nodes.
    Restart {
        /// When, ms.
        at_ms: u64,
        /// Node indices.
        nodes: Vec<u32>,
    },
    /// Change the loss rate.
    SetLoss {
        /// When, ms.
        at_ms: u64,
        /// New loss probability.
        loss: f64,
    },
}

fn idx(v: &[u32]) -> Vec<NodeIndex> {
    v.iter().map(|i| NodeIndex::new(*i)).collect()
}

impl FaultEntry {
    /// When the fault applies and what it does.
    pub fn to_fault(&self) -> (Timestamp, Fault) {
        match self {
            FaultEntry::Partition { at_ms, groups } => (
                Timestamp::from_millis(*at_ms),
                Fault::Partition {
                    groups: groups.iter().map(|g| idx(g)).collect(),
                },
            ),
            FaultEntry::Block { at_ms, from, to } => (
                Timestamp::from_millis(*at_ms),
                Fault::Block {
                    from: idx(from),
                    to: idx(to),
                },
            ),
            FaultEntry::Heal { at_ms } => (Timestamp::from_millis(*at_ms), Fault::Heal),
            FaultEntry::Crash { at_ms, nodes } => (
                Timestamp::from_millis(*at_ms),
                Fault::Crash { nodes: idx(nodes) },
            ),
            FaultEntry::Restart { at_ms, nodes } => (
                Timestamp::from_millis(*at_ms),
                Fault::Restart { nodes: idx(nodes) },
            ),
            FaultEntry::SetLoss { at_ms, loss } => (
                Timestamp::from_millis(*at_ms),
                Fault::SetLoss { loss: *loss },
            ),
        }
    }
}

fn check_mbps(field: &str, v: f64) -> Result<(), ScenarioError> {
    if !(0.0..=1e6).contains(&v) || (v > 0.0 && v < 1e-3) {
        return Err(invalid(
            field,
            format!("must be 0 (unlimited) or in [0.001, 1000000] Mbit/s, got {v}"),
        ));
    }
    Ok(())
}

fn check_prob(field: &str, v: f64) -> Result<(), ScenarioError> {
    if !(0.0..=1.0).contains(&v) {
        return Err(invalid(
            field,
            format!("must be a probability in [0, 1], got {v}"),
        ));
    }
    Ok(())
}

impl Scenario {
    /// The embedded default scenario.
    pub fn default_scenario() -> Self {
        Self::parse(DEFAULT_SCENARIO).expect("the embedded default scenario is valid")
    }

    /// A built-in scenario by name, or else a file by path.
    pub fn named_or_file(name_or_path: &str) -> Result<Self, ScenarioError> {
        Self::parse(&Self::source_text(name_or_path)?)
    }

    /// The TOML text of a built-in scenario by name, or else of a file by
    /// path (not parsed).
    pub fn source_text(name_or_path: &str) -> Result<String, ScenarioError> {
        let path = Path::new(name_or_path);
        // A directory named like a built-in (a sweep's `--out demand`)
        // does not hide it.
        if let Some(text) = builtin(name_or_path)
            && !path.is_file()
        {
            return Ok(text.to_string());
        }
        if !path.exists() && !name_or_path.contains(['/', '.']) {
            return Err(invalid(
                "scenario",
                format!(
                    "`{name_or_path}` is neither a built-in scenario ({}) nor a file",
                    builtin_names()
                ),
            ));
        }
        std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Deserializes and validates an already parsed TOML document (e.g.
    /// one edited by `sweep --param`).
    pub fn from_toml(value: toml::Value) -> Result<Self, ScenarioError> {
        let s: Scenario = value
            .try_into()
            .map_err(|e: toml::de::Error| ScenarioError::Parse(e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Self, ScenarioError> {
        Self::parse_with(text, &MechanismRegistry::builtin())
    }

    /// Parses and validates TOML text whose `marketplace.mechanism` may
    /// name any mechanism of `mechanisms` (e.g. one a library user
    /// registered), not only the built-ins.
    pub fn parse_with(text: &str, mechanisms: &MechanismRegistry) -> Result<Self, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse(e.to_string()))?;
        s.validate_with(mechanisms)?;
        Ok(s)
    }

    /// Reads, parses and validates a file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Checks every value; errors name the field.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        self.validate_with(&MechanismRegistry::builtin())
    }

    /// Checks every value, `marketplace.mechanism` against `mechanisms`;
    /// errors name the field.
    pub fn validate_with(&self, mechanisms: &MechanismRegistry) -> Result<(), ScenarioError> {
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        if self.duration_ms == 0 || self.duration_ms > MAX_DURATION_MS {
            return Err(invalid(
                "duration_ms",
                format!("must be in 1..={MAX_DURATION_MS}, got {}", self.duration_ms),
            ));
        }
        if let Some(t) = &self.sweep {
            t.validate()?;
        }
        if self.max_events == 0 || self.max_events > MAX_EVENTS {
            return Err(invalid(
                "max_events",
                format!("must be in 1..={MAX_EVENTS}"),
            ));
        }
        if !(1_000..=100_000_000).contains(&self.max_queue_len) {
            return Err(invalid("max_queue_len", "must be in 1000..=100000000"));
        }
        self.validate_network()?;
        self.validate_nodes()?;
        let n = self.nodes.count;
        if self.consensus.verify_signatures.is_some() {
            return Err(invalid(
                "consensus.verify_signatures",
                "was removed: block signatures are always verified (the simulated validators share one memo of verified signatures, so it costs little); delete the line",
            ));
        }
        match self.machine {
            MachineKind::Consensus => self.validate_consensus()?,
            MachineKind::Marketplace => {
                self.validate_consensus()?;
                self.validate_marketplace(mechanisms)?;
            }
            MachineKind::Crashes => self.validate_crashes()?,
            MachineKind::Gossip if self.nodes.restart == Some(RestartMode::Store) => {
                return Err(invalid(
                    "nodes.restart",
                    "gossip nodes keep no store: use \"fresh\" or \"resume\"",
                ));
            }
            MachineKind::Gossip => {}
        }
        if self.machine != MachineKind::Marketplace && self.marketplace.is_some() {
            return Err(invalid(
                "marketplace",
                "is only used with `machine = \"marketplace\"`",
            ));
        }
        if let Some(0) = self.invariants.max_propagation_ms {
            return Err(invalid("invariants.max_propagation_ms", "must be positive"));
        }
        self.validate_faults(n)
    }

    /// The `[network]` section.
    fn validate_network(&self) -> Result<(), ScenarioError> {
        let net = &self.network;
        check_prob("network.loss", net.loss)?;
        if !(0.0..=10.0).contains(&net.jitter) {
            return Err(invalid(
                "network.jitter",
                format!(
                    "must be a fraction of latency in [0, 10], got {}",
                    net.jitter
                ),
            ));
        }
        if !(0.0..=1e6).contains(&net.upload_mbps) {
            return Err(invalid(
                "network.upload_mbps",
                format!(
                    "must be in [0, 1000000] (0 = unlimited), got {}",
                    net.upload_mbps
                ),
            ));
        }
        if net.upload_mbps > 0.0 && net.upload_mbps < 1e-3 {
            return Err(invalid(
                "network.upload_mbps",
                format!(
                    "must be 0 (unlimited) or at least 0.001, got {}",
                    net.upload_mbps
                ),
            ));
        }
        check_mbps("network.download_mbps", net.download_mbps)?;
        if net.max_in_flight_per_link == 0 {
            return Err(invalid(
                "network.max_in_flight_per_link",
                "must be positive",
            ));
        }
        Ok(())
    }

    /// `[nodes]` and `[gossip]`.
    fn validate_nodes(&self) -> Result<(), ScenarioError> {
        let regions = self.regions()?;
        let n = self.nodes.count;
        if n == 0 || n > MAX_NODES {
            return Err(invalid(
                "nodes.count",
                format!("must be in 1..={MAX_NODES}, got {n}"),
            ));
        }
        for r in &self.nodes.regions {
            if regions.find(r).is_none() {
                return Err(invalid(
                    "nodes.regions",
                    format!("unknown region `{r}`; known: {}", region_names(&regions)),
                ));
            }
        }
        let g = &self.gossip;
        if !(1..=3_600_000).contains(&g.interval_ms) {
            return Err(invalid("gossip.interval_ms", "must be in 1..=3600000"));
        }
        if g.payload_bytes > 64 << 20 {
            return Err(invalid("gossip.payload_bytes", "must be at most 64 MiB"));
        }
        Ok(())
    }

    /// Every scheduled fault: within the run, naming existing nodes.
    fn validate_faults(&self, n: usize) -> Result<(), ScenarioError> {
        for (k, f) in self.faults.iter().enumerate() {
            let (at, fault) = f.to_fault();
            let field = format!("faults[{k}]");
            if at.as_millis() > self.duration_ms {
                return Err(invalid(
                    format!("{field}.at_ms"),
                    format!("is after the end of the run ({} ms)", self.duration_ms),
                ));
            }
            if let Some(bad) = fault.nodes().iter().find(|i| i.get() >= n) {
                return Err(invalid(
                    field,
                    format!("names node {} but nodes are 0..{n}", bad.get()),
                ));
            }
            if let Fault::SetLoss { loss } = fault {
                check_prob(&format!("{field}.loss"), loss)?;
            }
            if let Fault::Partition { groups } = &fault {
                let mut seen = vec![false; n];
                for i in groups.iter().flatten() {
                    if std::mem::replace(&mut seen[i.get()], true) {
                        return Err(invalid(
                            format!("{field}.groups"),
                            format!("node {} is in more than one group", i.get()),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn validate_crashes(&self) -> Result<(), ScenarioError> {
        let n = self.nodes.count;
        let c = &self.crashes;
        if !(4..=MAX_COMMITTEE_SIZE).contains(&n) {
            return Err(invalid(
                "nodes.count",
                format!("crashes needs 4..={MAX_COMMITTEE_SIZE} validators, got {n}"),
            ));
        }
        if self.nodes.restart.is_some_and(|r| r != RestartMode::Store) {
            return Err(invalid(
                "nodes.restart",
                "must be \"store\" (or unset) for crashes: a restarted validator recovers from its disk",
            ));
        }
        if !(0.0..=10_000.0).contains(&c.tx_per_second) {
            return Err(invalid("crashes.tx_per_second", "must be in [0, 10000]"));
        }
        check_prob("crashes.lose_unsynced", c.lose_unsynced)?;
        if c.catch_up_commits == 0 {
            return Err(invalid("crashes.catch_up_commits", "must be positive"));
        }
        if let Some(bad) = c
            .lose_store
            .iter()
            .find(|e| e.node as usize >= n || e.restart == 0)
        {
            return Err(invalid(
                "crashes.lose_store",
                format!(
                    "node {} restart {}: nodes are 0..{n}, restarts count from 1",
                    bad.node, bad.restart
                ),
            ));
        }
        if !(1..=60_000).contains(&self.consensus.leader_timeout_ms) {
            return Err(invalid(
                "consensus.leader_timeout_ms",
                "must be in 1..=60000",
            ));
        }
        Ok(())
    }

    /// Parameters of a `crashes` run.
    pub fn crashes_params(&self) -> crate::crashes::CrashesParams {
        let c = &self.crashes;
        crate::crashes::CrashesParams {
            tx_per_second: c.tx_per_second,
            checkpoint_every: c.checkpoint_every,
            lose_unsynced: c.lose_unsynced,
            lose_store: c.lose_store.iter().map(|e| (e.node, e.restart)).collect(),
            catch_up_commits: c.catch_up_commits,
            catch_up_grace: Duration::from_millis(c.catch_up_grace_ms),
            config: self.consensus_params().config,
            signatures: crate::consensus::shared_verifier(self.seed, self.nodes.count),
        }
    }

    fn validate_consensus(&self) -> Result<(), ScenarioError> {
        let n = self.nodes.count;
        let c = &self.consensus;
        if n > MAX_COMMITTEE_SIZE {
            return Err(invalid(
                "nodes.count",
                format!("a committee holds at most {MAX_COMMITTEE_SIZE} validators, got {n}"),
            ));
        }
        if self.nodes.restart == Some(RestartMode::Fresh) {
            return Err(invalid(
                "nodes.restart",
                "must be \"store\" or \"resume\" for validators: a validator restarted without its DAG would sign a second block for rounds it already signed",
            ));
        }
        check_prob("nodes.lose_unsynced", self.nodes.lose_unsynced)?;
        if !(0.0..=1e6).contains(&c.tx_per_second) {
            return Err(invalid(
                "consensus.tx_per_second",
                format!("must be in [0, 1000000], got {}", c.tx_per_second),
            ));
        }
        if let Some(t) = c.total_tx_per_second
            && !(0.0..=1e8).contains(&t)
        {
            return Err(invalid(
                "consensus.total_tx_per_second",
                format!("must be in [0, 100000000], got {t}"),
            ));
        }
        if !(MIN_TX_BYTES..=65_536).contains(&c.tx_bytes) {
            return Err(invalid(
                "consensus.tx_bytes",
                format!("must be in {MIN_TX_BYTES}..=65536, got {}", c.tx_bytes),
            ));
        }
        if !(1..=60_000).contains(&c.leader_timeout_ms) {
            return Err(invalid(
                "consensus.leader_timeout_ms",
                "must be in 1..=60000",
            ));
        }
        if let Some(g) = c.fetch_grace_ms
            && g > 60_000
        {
            return Err(invalid(
                "consensus.fetch_grace_ms",
                format!("must be in 0..=60000, got {g}"),
            ));
        }
        if !(1..=16).contains(&c.leaders_per_round) || c.leaders_per_round as usize > n {
            return Err(invalid(
                "consensus.leaders_per_round",
                "must be in 1..=16 and at most nodes.count",
            ));
        }
        for (field, v) in [
            (
                "consensus.cpu_us_per_block_verify",
                c.cpu_us_per_block_verify,
            ),
            ("consensus.cpu_us_per_tx_apply", c.cpu_us_per_tx_apply),
        ] {
            if !(0.0..=1e6).contains(&v) {
                return Err(invalid(
                    field,
                    format!("must be in [0, 1000000] µs (0 = free), got {v}"),
                ));
            }
        }
        if c.warmup_ms >= self.duration_ms {
            return Err(invalid(
                "consensus.warmup_ms",
                format!(
                    "must be shorter than duration_ms ({}), got {}",
                    self.duration_ms, c.warmup_ms
                ),
            ));
        }
        self.check_load_fits()?;
        if !(10..=MAX_DURATION_MS).contains(&c.liveness_bound_ms) {
            return Err(invalid(
                "consensus.liveness_bound_ms",
                "must be at least 10 and at most a day",
            ));
        }
        self.check_byzantine()
    }

    /// Checks `[[consensus.byzantine]]`: nodes in range and named once,
    /// each behaviour's fields, and at most f of them.
    fn check_byzantine(&self) -> Result<(), ScenarioError> {
        let n = self.nodes.count;
        let mut seen = vec![false; n];
        for (k, b) in self.consensus.byzantine.iter().enumerate() {
            let field = format!("consensus.byzantine[{k}]");
            for i in &b.nodes {
                let i = *i as usize;
                if i >= n {
                    return Err(invalid(
                        format!("{field}.nodes"),
                        format!("names node {i} but nodes are 0..{n}"),
                    ));
                }
                if std::mem::replace(&mut seen[i], true) {
                    return Err(invalid(
                        format!("{field}.nodes"),
                        format!("node {i} is listed twice"),
                    ));
                }
            }
            if b.behavior == BehaviorKind::Forge && self.machine != MachineKind::Marketplace {
                return Err(invalid(
                    format!("{field}.behavior"),
                    "`forge` needs machine = \"marketplace\" (it forges ledger transfers)",
                ));
            }
            if b.behavior == BehaviorKind::WithholdFacts && self.machine != MachineKind::Marketplace
            {
                return Err(invalid(
                    format!("{field}.behavior"),
                    "`withhold_facts` needs machine = \"marketplace\" (it withholds light nodes' facts)",
                ));
            }
            if b.behavior == BehaviorKind::Delay && !(1..=600_000).contains(&b.delay_ms) {
                return Err(invalid(
                    format!("{field}.delay_ms"),
                    "must be in 1..=600000 for `delay`",
                ));
            }
            if b.behavior == BehaviorKind::ClockAhead && self.machine != MachineKind::Marketplace {
                return Err(invalid(
                    format!("{field}.behavior"),
                    "`clock_ahead` needs machine = \"marketplace\" (its deadlines are what the clock would move)",
                ));
            }
            if b.behavior == BehaviorKind::ClockAhead && !(1..=MAX_AHEAD_MS).contains(&b.ahead_ms) {
                return Err(invalid(
                    format!("{field}.ahead_ms"),
                    format!("must be in 1..={MAX_AHEAD_MS} (a year) for `clock_ahead`"),
                ));
            }
        }
        let f = ConsensusParams::max_faulty(n);
        let byz = seen.iter().filter(|s| **s).count();
        if byz > f {
            return Err(invalid(
                "consensus.byzantine",
                format!(
                    "impossible committee: {byz} Byzantine validators but n = {n} tolerates at most f = {f} (need 3f + 1 <= n)"
                ),
            ));
        }
        Ok(())
    }

    /// Refuses a consensus load this machine cannot simulate: every
    /// transaction is handled by every validator, so the work grows as
    /// `nodes² × tx_per_second × seconds` (see [`MAX_TX_DELIVERIES`]).
    fn check_load_fits(&self) -> Result<(), ScenarioError> {
        let n = self.nodes.count as f64;
        let seconds = self.duration_ms as f64 / 1e3;
        let rate = self.tx_per_validator();
        let deliveries = n * n * rate * seconds;
        if deliveries > MAX_TX_DELIVERIES {
            let field = match self.consensus.total_tx_per_second {
                Some(_) => "consensus.total_tx_per_second",
                None => "consensus.tx_per_second",
            };
            return Err(invalid(
                field,
                format!(
                    "{} validators × {} tx/s each × {seconds} s means {deliveries:.2e} transaction deliveries (nodes² × rate × time), more than the {MAX_TX_DELIVERIES:.0e} one run may simulate (about an hour of one core at the measured speed); lower the load, the committee or duration_ms",
                    self.nodes.count, rate
                ),
            ));
        }
        Ok(())
    }

    /// Transactions each honest validator submits per second:
    /// `consensus.total_tx_per_second` split evenly, or
    /// `consensus.tx_per_second`.
    pub fn tx_per_validator(&self) -> f64 {
        let honest = self
            .behaviors()
            .iter()
            .filter(|b| !b.is_byzantine())
            .count();
        match self.consensus.total_tx_per_second {
            Some(total) => total / honest.max(1) as f64,
            None => self.consensus.tx_per_second,
        }
    }

    /// Behaviour of every node.
    pub fn behaviors(&self) -> Vec<Behavior> {
        let mut out = vec![Behavior::Honest; self.nodes.count];
        for b in &self.consensus.byzantine {
            let beh = match b.behavior {
                BehaviorKind::Equivocate => Behavior::Equivocate,
                BehaviorKind::Withhold => Behavior::Withhold {
                    recipients: b.recipients,
                },
                BehaviorKind::InvalidBlocks => Behavior::InvalidBlocks,
                BehaviorKind::Forge => Behavior::Forge,
                BehaviorKind::WithholdFacts => Behavior::WithholdFacts,
                BehaviorKind::Delay => Behavior::Delay {
                    extra: Duration::from_millis(b.delay_ms),
                },
                BehaviorKind::ClockAhead => Behavior::ClockAhead {
                    ahead: Duration::from_millis(b.ahead_ms),
                },
            };
            for i in &b.nodes {
                if let Some(slot) = out.get_mut(*i as usize) {
                    *slot = beh;
                }
            }
        }
        out
    }

    /// Consensus parameters.
    pub fn consensus_params(&self) -> ConsensusParams {
        let c = &self.consensus;
        let config = ConsensusConfig::default()
            .with_leader_timeout(Duration::from_millis(c.leader_timeout_ms))
            .with_leaders_per_round(c.leaders_per_round)
            .with_adaptive_leader_wait(c.adaptive_leader_wait);
        let config = match c.fetch_grace_ms {
            Some(ms) => config.with_fetch_grace(Duration::from_millis(ms)),
            None => config,
        };
        ConsensusParams {
            behaviors: self.behaviors(),
            tx_per_second: self.tx_per_validator(),
            tx_bytes: c.tx_bytes,
            config,
            liveness_bound: Duration::from_millis(c.liveness_bound_ms),
            cpu: crate::consensus::CpuCost {
                block_verify_ns: (c.cpu_us_per_block_verify * 1e3).round() as u64,
                tx_apply_ns: (c.cpu_us_per_tx_apply * 1e3).round() as u64,
            },
            signatures: crate::consensus::shared_verifier(self.seed, self.nodes.count),
            store: (self.restart_mode() == RestartMode::Store).then(|| {
                crate::consensus::StoreParams {
                    disks: crate::durable::new_disks(self.nodes.count),
                    lose_unsynced: self.nodes.lose_unsynced,
                }
            }),
        }
    }

    /// What restarted nodes remember.
    pub fn restart_mode(&self) -> RestartMode {
        self.nodes.restart.unwrap_or(match self.machine {
            MachineKind::Consensus | MachineKind::Marketplace | MachineKind::Crashes => {
                RestartMode::Store
            }
            MachineKind::Gossip => RestartMode::Fresh,
        })
    }

    /// The region table.
    pub fn regions(&self) -> Result<Regions, ScenarioError> {
        match self.network.preset.as_str() {
            "world6" if self.network.regions.is_empty() => Ok(Regions::world6()),
            "datacenter" if self.network.regions.is_empty() => Ok(Regions::datacenter()),
            "world6" | "datacenter" => Err(invalid(
                "network.regions",
                "custom regions need `preset = \"custom\"`",
            )),
            "custom" => {
                let rs = &self.network.regions;
                if rs.is_empty() || rs.len() > MAX_REGIONS {
                    return Err(invalid(
                        "network.regions",
                        format!("must list 1..={MAX_REGIONS} regions"),
                    ));
                }
                let mut rows = Vec::with_capacity(rs.len());
                for (k, r) in rs.iter().enumerate() {
                    if rs[..k].iter().any(|o| o.name == r.name) {
                        return Err(invalid(
                            format!("network.regions[{k}].name"),
                            format!("duplicate region `{}`", r.name),
                        ));
                    }
                    if r.latency_ms.len() != rs.len() {
                        return Err(invalid(
                            format!("network.regions[{k}].latency_ms"),
                            format!(
                                "must have one entry per region ({}), got {}",
                                rs.len(),
                                r.latency_ms.len()
                            ),
                        ));
                    }
                    let mut row = Vec::with_capacity(rs.len());
                    for ms in &r.latency_ms {
                        if !(0.0..=60_000.0).contains(ms) {
                            return Err(invalid(
                                format!("network.regions[{k}].latency_ms"),
                                format!("latencies must be in [0, 60000] ms, got {ms}"),
                            ));
                        }
                        row.push(Duration::from_micros((ms * 1_000.0).round() as u64));
                    }
                    rows.push(row);
                }
                Ok(Regions::new(
                    rs.iter().map(|r| r.name.clone()).collect(),
                    rows,
                ))
            }
            other => Err(invalid(
                "network.preset",
                format!("unknown preset `{other}`; use \"world6\", \"datacenter\" or \"custom\""),
            )),
        }
    }

    /// The network configuration.
    pub fn network_config(&self) -> Result<NetworkConfig, ScenarioError> {
        let n = &self.network;
        Ok(NetworkConfig {
            regions: self.regions()?,
            jitter: n.jitter,
            loss: n.loss,
            upload: Bandwidth::from_bits_per_sec((n.upload_mbps * 1e6).round() as u64),
            download: Bandwidth::from_bits_per_sec((n.download_mbps * 1e6).round() as u64),
            max_in_flight_per_link: n.max_in_flight_per_link,
            fifo: n.fifo,
        })
    }

    /// Node placement: round-robin over `nodes.regions` (or all regions).
    pub fn node_specs(&self) -> Result<Vec<NodeSpec>, ScenarioError> {
        let regions = self.regions()?;
        let order: Vec<_> = if self.nodes.regions.is_empty() {
            regions.ids().collect()
        } else {
            self.nodes
                .regions
                .iter()
                .map(|r| {
                    regions
                        .find(r)
                        .ok_or_else(|| invalid("nodes.regions", format!("unknown region `{r}`")))
                })
                .collect::<Result<_, _>>()?
        };
        let behaviors = self.behaviors();
        Ok((0..self.nodes.count)
            .map(|i| {
                let mut spec = NodeSpec::in_region(order[i % order.len()]);
                if self.machine != MachineKind::Gossip
                    && let Behavior::Delay { extra } = behaviors[i]
                {
                    spec.egress_delay = extra;
                }
                spec
            })
            .collect())
    }

    /// The engine configuration for `seed`, replaying with `replay`.
    pub fn sim_config(&self, seed: u64, replay: String) -> SimConfig {
        SimConfig {
            seed,
            max_time: Timestamp::from_millis(self.duration_ms),
            max_events: self.max_events,
            max_queue_len: self.max_queue_len,
            tick: Duration::from_millis(100),
            replay_command: Some(replay),
            restart: self.restart_mode(),
            hubs: 0,
        }
    }

    /// The gossip configuration.
    pub fn gossip_config(&self) -> GossipConfig {
        GossipConfig {
            interval: Duration::from_millis(self.gossip.interval_ms),
            payload_bytes: self.gossip.payload_bytes,
            fanout: self.gossip.fanout,
            ..GossipConfig::default()
        }
    }

    /// The fault schedule.
    pub fn fault_schedule(&self) -> Vec<(Timestamp, Fault)> {
        self.faults.iter().map(FaultEntry::to_fault).collect()
    }
}

fn region_names(r: &Regions) -> String {
    r.ids()
        .map(|i| r.name(i).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Names of the built-in regions (for help texts).
pub fn builtin_regions() -> &'static [&'static str] {
    &WORLD6
}

mod marketplace;
mod memory;
mod sweep_table;
pub use marketplace::{
    ClientsSection, FilterKind, MarketplaceSection, MixSection, ProvidersSection,
    ReputationSection, SybilSection, ValuationSection,
};
pub use memory::{FITTED as FITTED_MEMORY_MODEL, MemoryModel, Scale, TooLarge, posted_jobs};
pub use sweep_table::{MAX_SEEDS, SweepParam, SweepTable, parse_seeds};
