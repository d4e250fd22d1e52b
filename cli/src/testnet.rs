//! A network of separate OS processes on this machine (or, with `hosts`,
//! config files for several machines): `testnet init|up|down|status`.
//!
//! Layout of a testnet dir: `network.toml`; one directory per node with
//! `node.toml`, `key` (mode 0600), and once running `pid`, `node.log`,
//! `status.json` and (validators) `store.redb`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use std::time::Duration;

use idlegrid_market::Features;
use idlegrid_node::market::MAX_CAPACITY;
use idlegrid_primitives::{Keypair, Seed};
use rand::RngCore;

use crate::CliError;
use crate::config::{
    ConsensusSettings, Loaded, MarketConfig, Member, NetworkConfig, NodeConfig, OfferFile,
    ProviderConfig, Role, read_toml, write_toml,
};

/// What `testnet init` builds.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Validators.
    pub validators: usize,
    /// Providers.
    pub providers: usize,
    /// Clients.
    pub clients: usize,
    /// Hosts the nodes are dealt over, round robin (validators first).
    pub hosts: Vec<IpAddr>,
    /// **Testing only**: providers (by index) that cheat, and on what share
    /// of their subtasks (parts per million). A cheater asks half the price.
    pub cheaters: Vec<Cheater>,
    /// Providers' asking price per compute-second.
    pub price: u64,
    /// Lots each provider runs at once.
    pub capacity: u32,
    /// Consensus settings of the network file.
    pub consensus: ConsensusSettings,
}

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            validators: 4,
            providers: 3,
            clients: 1,
            hosts: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            cheaters: Vec::new(),
            price: 1_000,
            capacity: 2,
            consensus: ConsensusSettings::default(),
        }
    }
}

/// **Testing only**: a provider configured to cheat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cheater {
    /// Provider index.
    pub provider: usize,
    /// Share of its subtasks it makes up, parts per million.
    pub ppm: u32,
    /// It disputes when caught (referees must convict it).
    pub denies: bool,
}

/// Stake a provider locks per slot in a testnet.
pub const STAKE_PER_SLOT: u64 = 1_000;

/// Listening ports are picked from here up to the kernel's ephemeral range.
const LOW_PORT: u16 = 10_000;

/// A free port on `host`, bound then released. It is taken below the
/// kernel's ephemeral port range (`ip_local_port_range`), from a random
/// start: a port the kernel hands out for `:0` can be handed out again to
/// another process's outgoing connection before the node binds it (tests
/// running side by side hit that), one below the range cannot; the random
/// start keeps testnets made at once from probing the same ports.
fn free_port(host: IpAddr) -> Result<SocketAddr, CliError> {
    let high = ephemeral_low().unwrap_or(32_768).max(LOW_PORT + 1);
    let span = high - LOW_PORT;
    let start = (rand::rngs::OsRng.next_u32() % u32::from(span)) as u16;
    for k in 0..span.min(4_096) {
        let port = LOW_PORT + (start + k) % span;
        if let Ok(l) = TcpListener::bind((host, port)) {
            return l.local_addr().map_err(|e| CliError::Network(e.to_string()));
        }
    }
    let l = TcpListener::bind((host, 0))
        .map_err(|e| CliError::Network(format!("no free port on {host}: {e}")))?;
    l.local_addr().map_err(|e| CliError::Network(e.to_string()))
}

/// The lowest ephemeral port of this machine's kernel (Linux).
fn ephemeral_low() -> Option<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
}

/// Creates the testnet dir `dir`: keys, network file, node files.
pub fn init(dir: &Path, opts: &InitOptions) -> Result<NetworkConfig, CliError> {
    if opts.validators == 0 || opts.hosts.is_empty() {
        return Err(CliError::Invalid(
            "a testnet needs at least one validator and one host".into(),
        ));
    }
    let net_path = dir.join("network.toml");
    if net_path.exists() {
        return Err(CliError::Invalid(format!(
            "{} already exists",
            net_path.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| CliError::io(dir, e))?;
    let roles = [
        (Role::Validator, opts.validators),
        (Role::Provider, opts.providers),
        (Role::Client, opts.clients),
    ];
    let mut members = Vec::new();
    let mut i = 0;
    for (role, n) in roles {
        for k in 0..n {
            let name = format!("{role}-{k}");
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let seed = Seed::from_bytes(bytes);
            let key = Keypair::from_seed(&seed);
            let node_dir = dir.join(&name);
            std::fs::create_dir_all(&node_dir).map_err(|e| CliError::io(&node_dir, e))?;
            crate::config::write_key(&node_dir.join("key"), &seed)?;
            let cheater = opts.cheaters.iter().find(|c| c.provider == k);
            let cheat = cheater.map_or(0, |c| c.ppm);
            let provider = (role == Role::Provider).then_some(ProviderConfig {
                // A cheater undercuts the others, as one would: it wins the
                // auction and its lots are the ones to check.
                price: if cheat > 0 {
                    opts.price / 2
                } else {
                    opts.price
                },
                capacity: opts.capacity,
                testing_cheat_ppm: cheat,
                testing_cheat_denies: cheater.is_some_and(|c| c.denies),
                features: None,
            });
            let node = NodeConfig {
                name: name.clone(),
                network: PathBuf::from("../network.toml"),
                key_file: PathBuf::from("key"),
                data_dir: PathBuf::from("."),
                provider,
                dial: Default::default(),
            };
            write_toml(&node_dir.join("node.toml"), &node)?;
            let (balance, stake) = match role {
                Role::Validator => (1_000_000, 0),
                Role::Provider => (100_000_000, STAKE_PER_SLOT * u64::from(opts.capacity) * 4),
                // Clients bond `client_bond` per job from their stake.
                Role::Client => (100_000_000, 100_000),
            };
            members.push(Member {
                name,
                role,
                id: key.node_id().to_string(),
                addr: free_port(opts.hosts[i % opts.hosts.len()])?,
                balance,
                stake,
            });
            i += 1;
        }
    }
    let network = NetworkConfig {
        genesis_unix_micros: unix_micros(),
        market: MarketConfig {
            stake_per_slot: STAKE_PER_SLOT,
            slash_to_client_bps: 5_000,
            stage_deadline_ms: 15_000,
            clearing_period_ms: 500,
            committee_size: 3,
            global_trust_min_bps_of_mean: None,
        },
        consensus: opts.consensus.clone(),
        members,
    };
    network.check(&net_path)?;
    write_toml(&net_path, &network)?;
    Ok(network)
}

// The genesis time is the one wall-clock reading of `init`.
#[allow(clippy::disallowed_methods)]
fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The network file of a testnet dir.
pub fn network(dir: &Path) -> Result<NetworkConfig, CliError> {
    let path = dir.join("network.toml");
    let n: NetworkConfig = read_toml(&path)?;
    n.check(&path)?;
    Ok(n)
}

/// The pid of `name`'s process if it runs (checked against its command
/// line, so a reused pid is not mistaken for it).
pub fn running(dir: &Path, name: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(dir.join(name).join("pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let zombie = stat
        .rsplit(')')
        .next()
        .is_some_and(|s| s.trim_start().starts_with('Z'));
    let mine = String::from_utf8_lossy(&cmdline).contains(&format!("{name}/node.toml"));
    (mine && !zombie).then_some(pid)
}

/// Starts every validator and provider of `dir` as its own process
/// running `exe node run`, detached, logging to `NAME/node.log`.
pub fn up(dir: &Path, exe: &Path) -> Result<Vec<(String, u32)>, CliError> {
    let net = network(dir)?;
    let nodes: Vec<&Member> = net
        .members
        .iter()
        .filter(|m| m.role != Role::Client)
        .collect();
    if let Some(m) = nodes.iter().find(|m| running(dir, &m.name).is_some()) {
        return Err(CliError::Invalid(format!(
            "{} is already up ({} runs); `idlegrid testnet down --dir {}` first",
            dir.display(),
            m.name,
            dir.display()
        )));
    }
    let mut started = Vec::new();
    for m in nodes {
        started.push((m.name.clone(), start_node(dir, exe, &m.name)?));
    }
    Ok(started)
}

/// Starts one node of `dir` (also to restart a killed one).
pub fn start_node(dir: &Path, exe: &Path, name: &str) -> Result<u32, CliError> {
    use std::os::unix::process::CommandExt;
    let node_dir = dir.join(name);
    let log_path = node_dir.join("node.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| CliError::io(&log_path, e))?;
    let err = log.try_clone().map_err(|e| CliError::io(&log_path, e))?;
    let child = std::process::Command::new(exe)
        .args(["node", "run", "--config"])
        .arg(node_dir.join("node.toml"))
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| CliError::io(exe, e))?;
    let pid = child.id();
    let pid_path = node_dir.join("pid");
    std::fs::write(&pid_path, format!("{pid}\n")).map_err(|e| CliError::io(&pid_path, e))?;
    Ok(pid)
}

/// Sends `signal` to `name`'s process if it runs.
pub fn signal(dir: &Path, name: &str, signal: rustix::process::Signal) -> bool {
    let Some(pid) = running(dir, name).and_then(rustix::process::Pid::from_raw) else {
        return false;
    };
    rustix::process::kill_process(pid, signal).is_ok()
}

/// Stops every node of `dir`: SIGTERM, then SIGKILL after `grace`.
/// Returns the names that were running.
pub fn down(dir: &Path, grace: std::time::Duration) -> Result<Vec<String>, CliError> {
    let net = network(dir)?;
    let names: Vec<String> = net
        .members
        .iter()
        .map(|m| m.name.clone())
        .filter(|n| signal(dir, n, rustix::process::Signal::TERM))
        .collect();
    let steps = (grace.as_millis() / 50).max(1);
    for _ in 0..steps {
        if names.iter().all(|n| running(dir, n).is_none()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for n in &names {
        signal(dir, n, rustix::process::Signal::KILL);
        let _ = std::fs::remove_file(dir.join(n).join("pid"));
    }
    Ok(names)
}

/// One node's line of `testnet status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeStatus {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Its process, if up.
    pub pid: Option<i32>,
    /// Its last status file.
    pub status: Option<serde_json::Value>,
}

/// Who is up, and what each last reported.
pub fn status(dir: &Path) -> Result<Vec<NodeStatus>, CliError> {
    let net = network(dir)?;
    Ok(net
        .members
        .iter()
        .filter(|m| m.role != Role::Client)
        .map(|m| NodeStatus {
            name: m.name.clone(),
            role: m.role,
            pid: running(dir, &m.name),
            status: std::fs::read_to_string(dir.join(&m.name).join("status.json"))
                .ok()
                .and_then(|s| serde_json::from_str(&s).ok()),
        })
        .collect())
}

/// A provider's offer as its status file reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedOffer {
    /// Price per compute-second.
    pub price: String,
    /// Slots.
    pub capacity: u32,
    /// Advertised features.
    pub features: Vec<String>,
}

/// Hands `offer` to the running provider of `cfg` (its offer file) and
/// waits until the ledger lists it, refuses it, or `wait` passes.
pub fn change_offer(
    cfg: &Loaded,
    offer: &OfferFile,
    wait: Duration,
) -> Result<ListedOffer, CliError> {
    if cfg.me.role != Role::Provider {
        return Err(CliError::Invalid(format!(
            "{} is not a provider",
            cfg.me.name
        )));
    }
    if offer.price == 0 || !(1..=MAX_CAPACITY).contains(&offer.capacity) {
        return Err(CliError::Invalid(format!(
            "price must be positive and capacity 1..={MAX_CAPACITY}"
        )));
    }
    if let Some(f) = &offer.features {
        Features::from_names(f).map_err(|e| CliError::Invalid(format!("--features: {e}")))?;
    }
    let path = OfferFile::path(&cfg.data_dir);
    let text = toml::to_string(offer).map_err(|e| CliError::Invalid(e.to_string()))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| CliError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| CliError::io(&path, e))?;
    let status = cfg.data_dir.join("status.json");
    const POLL: Duration = Duration::from_millis(200);
    for _ in 0..wait.as_millis().div_ceil(POLL.as_millis()) {
        std::thread::sleep(POLL);
        let Some(o) = std::fs::read_to_string(&status)
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .map(|v| v["offer"].clone())
        else {
            continue;
        };
        let price = o["price"].as_str().unwrap_or_default().to_string();
        if price != offer.price.to_string() || o["capacity"] != offer.capacity {
            continue;
        }
        if let Some(r) = o["rejected"].as_str() {
            return Err(CliError::Invalid(format!("the offer was refused: {r}")));
        }
        if o["listed"] == true {
            let features = o["features"].as_array().map_or_else(Vec::new, |a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(str::to_string))
                    .collect()
            });
            return Ok(ListedOffer {
                price,
                capacity: offer.capacity,
                features,
            });
        }
    }
    Err(CliError::Invalid(format!(
        "{} did not list the new offer within {} s: is it running (`idlegrid testnet status`)?",
        cfg.me.name,
        wait.as_secs()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_below_the_ephemeral_range_and_bindable() {
        let host = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let high = ephemeral_low().unwrap_or(32_768);
        for _ in 0..20 {
            let a = free_port(host).unwrap();
            assert!((LOW_PORT..high).contains(&a.port()), "{a}");
            // Released: the node can bind it.
            drop(TcpListener::bind(a).unwrap());
        }
    }
}
