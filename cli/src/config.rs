//! Configuration files: the network (genesis, market rules, every node's
//! identity and address) and one file per node (its role, key, listen
//! address, provider settings). TOML; unknown fields are refused, so a
//! typo is an error naming the file, not a silently ignored setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use idlegrid_dag_ledger::consensus::{Committee, ConsensusConfig};
use idlegrid_dag_ledger::ledger::{Genesis, Ledger, Params};
use idlegrid_market::KDouble;
use idlegrid_node::light::LightSetup;
use idlegrid_node::market::{MarketRules, TrustGate};
use idlegrid_node::validator::ValidatorSetup;
use idlegrid_primitives::{Amount, Duration, Keypair, NodeId, Seed};
use idlegrid_transport::AddressBook;
use serde::{Deserialize, Serialize};

use crate::CliError;

/// What a node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Consensus, ledger, marketplace, gateway for light nodes.
    Validator,
    /// Rents out its machine.
    Provider,
    /// Buys compute (`idlegrid job submit`).
    Client,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Validator => "validator",
            Self::Provider => "provider",
            Self::Client => "client",
        })
    }
}

/// One node of the network, as everyone knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Human name (also its directory in a testnet dir).
    pub name: String,
    /// Role.
    pub role: Role,
    /// Node id (hex public key).
    pub id: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Genesis balance.
    pub balance: u64,
    /// Genesis stake.
    pub stake: u64,
}

/// Market rules of the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketConfig {
    /// Stake a provider locks per slot.
    pub stake_per_slot: u64,
    /// Share of a slashed stake that goes to the client, basis points.
    pub slash_to_client_bps: u16,
    /// Deadline of each stage of a lot (deliver, verify, answer), ms.
    pub stage_deadline_ms: u64,
    /// Clearing period, ms.
    pub clearing_period_ms: u64,
    /// Referees per dispute.
    pub committee_size: u8,
    /// Gate providers' reputation by EigenTrust global trust: a provider
    /// below this share of the mean trust, in basis points of the mean
    /// (`0..=1000000`; 5000 is half the mean), counts as a newcomer in
    /// clients' reputation filters. Absent: no gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_trust_min_bps_of_mean: Option<u32>,
}

/// Consensus settings of a real network (`[consensus]` in the network
/// file; every validator must use the same). On loopback or a LAN a round
/// completes in about a millisecond, so rounds are paced at 50 ms (Sui's
/// `min_round_delay`). A validator down for longer than the DAG window
/// (1 000 rounds, about 50 s) catches up by state sync from the latest
/// checkpoint that validators holding f + 1 of the stake attest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusSettings {
    /// Rounds of the DAG a validator keeps (`gc_depth`).
    pub dag_window_rounds: u64,
    /// A ledger checkpoint every this many commits (the snapshots state
    /// sync serves; also where recovery starts replaying).
    pub checkpoint_every: u64,
    /// Least time between a validator's rounds, ms (default 50; 0 proposes
    /// as soon as a round is ready, as the simulator's validators do —
    /// right where links are slow, e.g. `bench --latency world6`).
    #[serde(default = "default_min_round_delay_ms")]
    pub min_round_delay_ms: u64,
}

fn default_min_round_delay_ms() -> u64 {
    50
}

impl Default for ConsensusSettings {
    fn default() -> Self {
        Self {
            dag_window_rounds: 1_000,
            checkpoint_every: 200,
            min_round_delay_ms: default_min_round_delay_ms(),
        }
    }
}

impl ConsensusSettings {
    /// The consensus configuration every validator derives from them.
    pub fn config(&self) -> ConsensusConfig {
        let mut c = ConsensusConfig::default();
        c.min_round_delay = Duration::from_millis(self.min_round_delay_ms);
        c.gc_depth = self.dag_window_rounds;
        c
    }

    fn check(&self) -> Result<(), String> {
        if !(20..=100_000).contains(&self.dag_window_rounds) {
            return Err(format!(
                "consensus.dag_window_rounds must be in 20..=100000, got {}",
                self.dag_window_rounds
            ));
        }
        if self.min_round_delay_ms > 1_000 {
            return Err(format!(
                "consensus.min_round_delay_ms must be at most 1000, got {}",
                self.min_round_delay_ms
            ));
        }
        if !(1..=1_000_000).contains(&self.checkpoint_every) {
            return Err(format!(
                "consensus.checkpoint_every must be in 1..=1000000, got {}",
                self.checkpoint_every
            ));
        }
        Ok(())
    }
}

/// The network file: genesis, rules and members. The same on every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Consensus time zero, microseconds since the Unix epoch.
    pub genesis_unix_micros: u64,
    /// Market rules.
    pub market: MarketConfig,
    /// Consensus settings (defaults when the section is absent).
    #[serde(default)]
    pub consensus: ConsensusSettings,
    /// Every node.
    pub members: Vec<Member>,
}

/// A provider's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Asking price per compute-second.
    pub price: u64,
    /// Lots it runs at once.
    pub capacity: u32,
    /// **Testing only**: the share of subtasks (parts per million) on which
    /// it returns garbage instead of running them, to show cheaters caught.
    #[serde(default)]
    pub testing_cheat_ppm: u32,
    /// **Testing only**: a cheater that disputes when caught instead of
    /// confessing, so referees must re-run the traps to convict it.
    #[serde(default)]
    pub testing_cheat_denies: bool,
    /// The runtime features it advertises (`python3.11`, `numpy`, …);
    /// absent: found by probing the sandbox's interpreter at start.
    #[serde(default)]
    pub features: Option<Vec<String>>,
}

/// A running provider's new offer, written by `idlegrid provider offer`
/// into its data dir ([`OfferFile::path`]) and applied within a second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferFile {
    /// Asking price per compute-second of its next sealed asks.
    pub price: u64,
    /// Lots it runs at once (1..=16).
    pub capacity: u32,
    /// The features it advertises instead of the current ones.
    #[serde(default)]
    pub features: Option<Vec<String>>,
}

impl OfferFile {
    /// Where a provider with data dir `data_dir` looks for it.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("offer.toml")
    }
}

/// One node's own file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Its name in the network file.
    pub name: String,
    /// The network file (relative to this file's directory).
    pub network: PathBuf,
    /// Its secret key file (hex seed; relative to this file's directory).
    pub key_file: PathBuf,
    /// Where it keeps its store, logs and status (relative to this file's
    /// directory).
    pub data_dir: PathBuf,
    /// Provider settings (providers only).
    #[serde(default)]
    pub provider: Option<ProviderConfig>,
    /// Addresses this node dials instead of the network file's, by member
    /// name (a latency relay between validators, `idlegrid bench
    /// --latency relay`). Peers still authenticate by key.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub dial: std::collections::BTreeMap<String, SocketAddr>,
}

/// A node config with everything it names, loaded and checked.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file it came from.
    pub path: PathBuf,
    /// The node's file.
    pub node: NodeConfig,
    /// The network file.
    pub network: NetworkConfig,
    /// Its key.
    pub key: Keypair,
    /// Its entry in the network.
    pub me: Member,
    /// Its data directory, resolved.
    pub data_dir: PathBuf,
    /// A guest: a light node that is not a member of the network (an
    /// integrator's program, a wallet on another machine). It dials the
    /// validators, which serve it as a guest of their transport.
    pub guest: bool,
}

/// Reads a TOML file into `T`, naming the file in every error.
pub fn read_toml<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::io(path, e))?;
    toml::from_str(&text).map_err(|e| CliError::Config {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

/// Writes `value` as TOML.
pub fn write_toml<T: Serialize>(path: &Path, value: &T) -> Result<(), CliError> {
    let text = toml::to_string_pretty(value).map_err(|e| CliError::Config {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    std::fs::write(path, text).map_err(|e| CliError::io(path, e))
}

/// Reads a key file (a hex seed).
pub fn read_key(path: &Path) -> Result<Keypair, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::io(path, e))?;
    let seed: Seed = text.trim().parse().map_err(|_| CliError::Config {
        path: path.to_path_buf(),
        detail: "not a key file (expected 64 hex digits)".into(),
    })?;
    Ok(Keypair::from_seed(&seed))
}

/// Writes `seed` as a key file (hex, owner-only, never over a file).
pub fn write_key(path: &Path, seed: &Seed) -> Result<(), CliError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| CliError::io(path, e))?;
    writeln!(f, "{seed}").map_err(|e| CliError::io(path, e))
}

/// A fresh key from the operating system's randomness, written to `path`;
/// returns its node id.
pub fn new_key(path: &Path) -> Result<NodeId, CliError> {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let seed = Seed::from_bytes(bytes);
    write_key(path, &seed)?;
    Ok(Keypair::from_seed(&seed).node_id())
}

impl Loaded {
    /// Loads a node config and what it names; checks that the key matches
    /// the node's entry in the network file.
    pub fn load(path: &Path) -> Result<Self, CliError> {
        let node: NodeConfig = read_toml(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let net_path = base.join(&node.network);
        let network: NetworkConfig = read_toml(&net_path)?;
        network.check(&net_path)?;
        let key = read_key(&base.join(&node.key_file))?;
        let bad = |detail: String| CliError::Config {
            path: path.to_path_buf(),
            detail,
        };
        let me = network
            .members
            .iter()
            .find(|m| m.name == node.name)
            .cloned()
            .ok_or_else(|| {
                bad(format!(
                    "no member named {:?} in {}",
                    node.name,
                    net_path.display()
                ))
            })?;
        if me.id != key.node_id().to_string() {
            return Err(bad(format!(
                "key file {} does not hold the key of {:?}",
                node.key_file.display(),
                node.name
            )));
        }
        if (me.role == Role::Provider) != node.provider.is_some() {
            return Err(bad(
                "a [provider] section is required for providers and only for them".into(),
            ));
        }
        if let Some(n) = node
            .dial
            .keys()
            .find(|n| !network.members.iter().any(|m| &m.name == *n))
        {
            return Err(bad(format!(
                "dial: no member named {n:?} in {}",
                net_path.display()
            )));
        }
        Ok(Self {
            path: path.to_path_buf(),
            data_dir: base.join(&node.data_dir),
            node,
            network,
            key,
            me,
            guest: false,
        })
    }

    /// A guest client: the key in `key_path` on the network of
    /// `network_path`, though the network file does not list it (see
    /// [`Loaded::guest`](Self#structfield.guest)). Its data (job status)
    /// goes to `idlegrid-<id>/` beside the key file.
    pub fn guest(network_path: &Path, key_path: &Path) -> Result<Self, CliError> {
        let network: NetworkConfig = read_toml(network_path)?;
        network.check(network_path)?;
        let key = read_key(key_path)?;
        let id = key.node_id().to_string();
        if let Some(m) = network.members.iter().find(|m| m.id == id) {
            return Err(CliError::Config {
                path: key_path.to_path_buf(),
                detail: format!(
                    "this is the key of member {:?} of {}; use its config (--config)",
                    m.name,
                    network_path.display()
                ),
            });
        }
        let short: String = id.chars().take(8).collect();
        let base = key_path.parent().unwrap_or(Path::new("."));
        let name = format!("guest-{short}");
        let node = NodeConfig {
            name: name.clone(),
            network: std::path::absolute(network_path)
                .map_err(|e| CliError::io(network_path, e))?,
            key_file: std::path::absolute(key_path).map_err(|e| CliError::io(key_path, e))?,
            data_dir: PathBuf::from(format!("idlegrid-{short}")),
            provider: None,
            dial: Default::default(),
        };
        Ok(Self {
            path: node.network.clone(),
            data_dir: base.join(&node.data_dir),
            me: Member {
                name,
                role: Role::Client,
                id,
                // Guests only dial out; the listener takes any free port.
                addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                balance: 0,
                stake: 0,
            },
            node,
            network,
            key,
            guest: true,
        })
    }
}

impl NetworkConfig {
    /// Checks the file: unique names, ids and addresses, ids that parse,
    /// at least one validator.
    pub fn check(&self, path: &Path) -> Result<(), CliError> {
        let bad = |detail: String| CliError::Config {
            path: path.to_path_buf(),
            detail,
        };
        let mut names = std::collections::BTreeSet::new();
        let mut ids = std::collections::BTreeSet::new();
        for m in &self.members {
            if !names.insert(&m.name) {
                return Err(bad(format!("member name {:?} appears twice", m.name)));
            }
            let id: NodeId =
                m.id.parse()
                    .map_err(|_| bad(format!("member {:?}: id is not a node id", m.name)))?;
            if !ids.insert(id) {
                return Err(bad(format!("member {:?}: id appears twice", m.name)));
            }
        }
        if self.validators().next().is_none() {
            return Err(bad("the network has no validator".into()));
        }
        self.consensus.check().map_err(bad)
    }

    /// Members with this role.
    pub fn with_role(&self, role: Role) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(move |m| m.role == role)
    }

    /// Validators, in file order.
    pub fn validators(&self) -> impl Iterator<Item = &Member> {
        self.with_role(Role::Validator)
    }

    /// A member's node id (checked by [`NetworkConfig::check`]).
    pub fn id_of(m: &Member) -> NodeId {
        m.id.parse()
            .unwrap_or_else(|_| unreachable!("checked on load"))
    }

    /// The validator committee (equal stake).
    pub fn committee(&self) -> Committee {
        Committee::equal(self.validators().map(Self::id_of))
            .unwrap_or_else(|_| unreachable!("checked on load"))
    }

    /// Every member's address; `dial` replaces some (by member name).
    pub fn address_book(
        &self,
        dial: &std::collections::BTreeMap<String, SocketAddr>,
    ) -> AddressBook {
        let mut book = AddressBook::new();
        for m in &self.members {
            book.insert(Self::id_of(m), dial.get(&m.name).copied().unwrap_or(m.addr));
        }
        book
    }

    /// The validator setup every validator derives from this file.
    pub fn validator_setup(&self) -> Result<ValidatorSetup, CliError> {
        let genesis = Genesis {
            balances: self
                .members
                .iter()
                .map(|m| (Self::id_of(m).account(), Amount::new(m.balance.into())))
                .collect(),
            stakes: self
                .members
                .iter()
                .filter(|m| m.stake > 0)
                .map(|m| (Self::id_of(m).account(), Amount::new(m.stake.into())))
                .collect(),
            params: Params::default(),
        };
        let ledger =
            Ledger::new(genesis).map_err(|e| CliError::Invalid(format!("genesis: {e}")))?;
        let m = &self.market;
        let global_trust = m
            .global_trust_min_bps_of_mean
            .map(|min_bps_of_mean| {
                let gate = TrustGate {
                    min_bps_of_mean,
                    ..TrustGate::half_of_mean()
                };
                gate.validate().map(|()| gate).map_err(|e| {
                    CliError::Invalid(format!("market.global_trust_min_bps_of_mean: {e}"))
                })
            })
            .transpose()?;
        Ok(ValidatorSetup {
            ledger,
            rules: MarketRules {
                stake_per_slot: Amount::new(m.stake_per_slot.into()),
                slash_to_client_bps: m.slash_to_client_bps,
                stage_deadline: Duration::from_millis(m.stage_deadline_ms),
                clearing_period: Duration::from_millis(m.clearing_period_ms),
                committee_size: m.committee_size,
                referees: self.validators().map(Self::id_of).collect(),
                book: Default::default(),
                reputation_epoch_secs: 10,
                global_trust,
            },
            consensus: self.consensus.config(),
            // The k-double auction at k = 1/2 (the simulator's default).
            mechanism: || {
                Box::new(KDouble::new(5_000).unwrap_or_else(|_| unreachable!("5000 is valid")))
            },
            epoch_secs: 1,
        })
    }

    /// A light node's setup (its first gateway picked from its index).
    pub fn light_setup(&self, key: &Keypair, gateway: usize) -> LightSetup {
        LightSetup {
            key: key.clone(),
            chain: Params::default().chain_id,
            committee: self.committee(),
            first_gateway: gateway,
            patience: Duration::from_secs(5),
            fanout: 2,
            // Testnets are small: every validator reports facts.
            fact_sources: 0,
            fact_window: Default::default(),
            delivery: Default::default(),
            signatures: Default::default(),
            // A process cannot know whether its key signed before (a
            // restarted provider, a second `job submit`): it learns the
            // account's next nonce from its f + 1-backed holdings.
            next_nonce: None,
        }
    }
}
