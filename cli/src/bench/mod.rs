//! `idlegrid bench`: committed transactions per second and commit latency
//! of real validator processes on this machine.
//!
//! Each run builds a fresh testnet (N validators, N client accounts),
//! starts every validator as its own OS process (`idlegrid node run`, as
//! `testnet up` does), and drives a fixed offered load of signed transfers
//! for a fixed time from N light clients — the reference node's
//! [`ClientNode`], one per validator as its gateway, each over its own
//! encrypted TCP transport, as tasks of the bench process (separate client
//! processes would add N more processes competing for the same cores and
//! measure nothing the clients' own sockets do not). Clients measure
//! submit → f + 1 validators report it applied ([`load`]); validators' CPU
//! comes from `/proc`. With `--latency world6`, every validator-to-validator
//! link passes a [`relay::Relay`] that delays it by the two regions'
//! one-way latency.
//!
//! Everything the command starts is stopped, and its directory removed,
//! when it ends, fails or is interrupted (SIGINT/SIGTERM): see
//! [`Testbed`]. Sizes the machine cannot run are refused up front
//! ([`check`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use idlegrid_dag_ledger::ledger::{Nonce, Transaction, TxKind};
use idlegrid_node::client::{ClientNode, TrapPolicy};
use idlegrid_primitives::{Amount, Timestamp};
use idlegrid_transport::{Clock, Transport};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use crate::CliError;
use crate::config::{Loaded, NetworkConfig, NodeConfig, read_toml, write_toml};
use crate::testnet::{self, InitOptions};

pub mod cmd;
pub mod compare;
pub mod load;
pub mod relay;
pub mod report;

use load::{ClientTally, LoadMachine, LoadRole, Schedule};
pub use report::{Percentiles, RunReport};

/// Most validators a bench starts, whatever the machine.
pub const MAX_VALIDATORS: usize = 32;
/// Validators per core a bench starts at most (each is a busy process).
pub const VALIDATORS_PER_CORE: usize = 8;
/// Memory a validator process needs, MiB (its DAG window, store, buffers).
pub const MIB_PER_VALIDATOR: u64 = 200;
/// Highest offered load per client, tx/s: a client account's ledger quota
/// is 10 000 transactions per one-second epoch; half of it leaves room for
/// an epoch boundary falling inside a burst.
pub const MAX_RATE_PER_CLIENT: f64 = 5_000.0;
/// Most submissions one run measures (offered load × duration): each keeps
/// two latency samples in memory until the run's report.
pub const MAX_MEASURED_SUBMISSIONS: u64 = 4_000_000;
/// Most client tasks a bench runs.
pub const MAX_CLIENTS: usize = 64;
/// Longest measured time, s.
pub const MAX_DURATION_SECS: u64 = 600;
/// How long validators get to make their first commit.
const START_WITHIN: Duration = Duration::from_secs(30);
/// Confirmations are awaited this long after the last submission.
const DRAIN: Duration = Duration::from_secs(5);

/// How validator-to-validator links are slowed down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Latency {
    /// Plain loopback.
    None,
    /// A userspace relay per link, with this matrix.
    Relay(relay::LatencyMatrix),
}

impl Latency {
    /// What the report calls it.
    pub fn describe(&self) -> String {
        match self {
            Self::None => "none (loopback)".into(),
            Self::Relay(m) => format!(
                "userspace relay, {} regions ({})",
                m.names.len(),
                m.names.join(", ")
            ),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Validator processes.
    pub validators: usize,
    /// Offered loads, total tx/s over all clients, one run each.
    pub loads: Vec<f64>,
    /// Light clients, each an account with its own connections and its own
    /// window of transfers in flight; client `k`'s gateway is validator
    /// `k % validators`.
    pub clients: usize,
    /// Put each run's testnet (the validators' redb stores) on `/dev/shm`,
    /// where an fsync costs nothing, as in the simulator, which models no
    /// disk.
    pub tmpfs: bool,
    /// Measured time of each run (after a warm-up).
    pub duration: Duration,
    /// WAN emulation.
    pub latency: Latency,
    /// The validators' least time between rounds, ms (the network file's
    /// `consensus.min_round_delay_ms`).
    pub min_round_delay_ms: u64,
    /// Keep each run's testnet under this dir (default: a temporary dir,
    /// removed).
    pub keep_dir: Option<PathBuf>,
}

/// What the machine offers.
#[derive(Debug, Clone, Copy)]
pub struct MachineInfo {
    /// Cores available to this process.
    pub cores: usize,
    /// MemAvailable, MiB (None if /proc/meminfo is unreadable).
    pub mem_available_mib: Option<u64>,
}

impl MachineInfo {
    /// This machine.
    pub fn probe() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mem_available_mib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("MemAvailable:"))?;
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .map(|kib| kib / 1024);
        Self {
            cores,
            mem_available_mib,
        }
    }
}

/// Refuses, with the reason, what `machine` cannot run.
pub fn check(opts: &BenchOptions, machine: MachineInfo) -> Result<(), CliError> {
    check_size(opts, machine).and_then(|()| check_load(opts))
}

fn refuse(m: String) -> Result<(), CliError> {
    Err(CliError::Invalid(format!("refused: {m}")))
}

/// Validators, memory, duration, round delay.
fn check_size(opts: &BenchOptions, machine: MachineInfo) -> Result<(), CliError> {
    let n = opts.validators;
    let cap = (VALIDATORS_PER_CORE * machine.cores).min(MAX_VALIDATORS);
    if n < 1 || n > cap {
        return refuse(format!(
            "{n} validators: this machine runs 1..={cap} ({VALIDATORS_PER_CORE} per core on {} cores, at most {MAX_VALIDATORS})",
            machine.cores
        ));
    }
    if let Some(avail) = machine.mem_available_mib {
        let need = MIB_PER_VALIDATOR * n as u64;
        if need > avail {
            return refuse(format!(
                "{n} validators need about {need} MiB; {avail} MiB are available"
            ));
        }
    }
    let secs = opts.duration.as_secs();
    if !(1..=MAX_DURATION_SECS).contains(&secs) {
        return refuse(format!(
            "--duration {secs}: must be 1..={MAX_DURATION_SECS} s"
        ));
    }
    if !(1..=MAX_CLIENTS).contains(&opts.clients) {
        return refuse(format!(
            "--clients {}: must be 1..={MAX_CLIENTS}",
            opts.clients
        ));
    }
    if opts.tmpfs && !Path::new(TMPFS).is_dir() {
        return refuse(format!("--tmpfs: no {TMPFS} on this machine"));
    }
    if opts.min_round_delay_ms > 1_000 {
        return refuse(format!(
            "--min-round-delay-ms {}: at most 1000",
            opts.min_round_delay_ms
        ));
    }
    Ok(())
}

/// Offered loads: per client quota, and the latency samples kept.
fn check_load(opts: &BenchOptions) -> Result<(), CliError> {
    let n = opts.clients;
    if opts.loads.is_empty() || opts.loads.len() > 32 {
        return refuse("give 1..=32 offered loads".into());
    }
    let max_load = MAX_RATE_PER_CLIENT * n as f64;
    if let Some(l) = opts
        .loads
        .iter()
        .find(|l| !(l.is_finite() && **l > 0.0 && **l <= max_load))
    {
        return refuse(format!(
            "offered load {l} tx/s: must be positive and at most {max_load} with {n} clients ({MAX_RATE_PER_CLIENT} tx/s each: half a client account's ledger quota of 10000 per 1 s epoch)"
        ));
    }
    let secs = opts.duration.as_secs_f64();
    if let Some(l) = opts
        .loads
        .iter()
        .find(|l| **l * secs > MAX_MEASURED_SUBMISSIONS as f64)
    {
        return refuse(format!(
            "offered load {l} tx/s for {secs} s: more than {MAX_MEASURED_SUBMISSIONS} measured submissions (each keeps its latencies in memory); shorten --duration"
        ));
    }
    Ok(())
}

/// Where `--tmpfs` puts the testnets.
pub const TMPFS: &str = "/dev/shm";

impl BenchOptions {
    /// Where each run's testnet is made.
    pub fn base_dir(&self) -> PathBuf {
        match (&self.keep_dir, self.tmpfs) {
            (Some(d), _) => d.clone(),
            (None, true) => PathBuf::from(TMPFS),
            (None, false) => std::env::temp_dir(),
        }
    }

    /// What the report says about the validators' stores.
    pub fn describe_store(&self) -> String {
        let base = self.base_dir();
        let fs = if base.starts_with(TMPFS) {
            "tmpfs: fsync is free"
        } else {
            "fsync as that file system does it"
        };
        format!("redb under {} ({fs})", base.display())
    }
}

/// Whether the kernel has netem (`sch_netem` loaded or built in).
pub fn netem_available() -> bool {
    Path::new("/sys/module/sch_netem").exists()
}

/// A running testnet of validator processes; dropping it stops them
/// (SIGTERM, then SIGKILL) and removes its directory unless kept.
pub struct Testbed {
    dir: PathBuf,
    keep: bool,
    /// Validator names and pids.
    pub validators: Vec<(String, u32)>,
    relays: Vec<relay::Relay>,
}

impl Testbed {
    /// The testnet directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        self.relays.clear();
        let _ = testnet::down(&self.dir, Duration::from_secs(3));
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A fresh directory for one run.
fn run_dir(opts: &BenchOptions, load: f64) -> Result<(PathBuf, bool), CliError> {
    let name = format!(
        "bench-n{}-load{}-{}",
        opts.validators,
        load,
        std::process::id()
    );
    let keep = opts.keep_dir.is_some();
    let dir = match keep {
        true => opts.base_dir().join(name),
        false => opts.base_dir().join(format!("idlegrid-{name}")),
    };
    if dir.exists() {
        return Err(CliError::Invalid(format!(
            "{} already exists",
            dir.display()
        )));
    }
    Ok((dir, keep))
}

/// Builds the testnet, starts relays (if any) and the validator processes.
pub async fn start(opts: &BenchOptions, load: f64, exe: &Path) -> Result<Testbed, CliError> {
    let (dir, keep) = run_dir(opts, load)?;
    let mut bed = Testbed {
        dir,
        keep,
        validators: Vec::new(),
        relays: Vec::new(),
    };
    let init = InitOptions {
        validators: opts.validators,
        providers: 0,
        clients: opts.clients,
        consensus: crate::config::ConsensusSettings {
            min_round_delay_ms: opts.min_round_delay_ms,
            ..Default::default()
        },
        ..InitOptions::default()
    };
    let net = testnet::init(&bed.dir, &init)?;
    if let Latency::Relay(m) = &opts.latency {
        bed.relays = wire_relays(&bed.dir, &net, m).await?;
    }
    for v in net.validators() {
        let pid = testnet::start_node(&bed.dir, exe, &v.name)?;
        bed.validators.push((v.name.clone(), pid));
    }
    Ok(bed)
}

/// One relay per ordered pair of validators; validator `i` dials `j`
/// through relay `(i, j)` (its node file's `dial`).
async fn wire_relays(
    dir: &Path,
    net: &NetworkConfig,
    m: &relay::LatencyMatrix,
) -> Result<Vec<relay::Relay>, CliError> {
    let vs: Vec<_> = net.validators().cloned().collect();
    let mut relays = Vec::new();
    for (i, a) in vs.iter().enumerate() {
        let path = dir.join(&a.name).join("node.toml");
        let mut node: NodeConfig = read_toml(&path)?;
        for (j, b) in vs.iter().enumerate().filter(|(j, _)| *j != i) {
            let r = relay::Relay::start(b.addr, m.between(i, j)).await?;
            node.dial.insert(b.name.clone(), r.addr());
            relays.push(r);
        }
        write_toml(&path, &node)?;
    }
    Ok(relays)
}

/// Waits until every validator reported a commit, or fails naming the
/// laggards (their logs hold why).
async fn await_commits(bed: &Testbed, cancel: &mut watch::Receiver<bool>) -> Result<(), CliError> {
    let steps = START_WITHIN.as_millis() / 200;
    for _ in 0..steps {
        let late: Vec<&str> = bed
            .validators
            .iter()
            .filter(|(n, _)| validator_commit(bed.dir(), n) == 0)
            .map(|(n, _)| n.as_str())
            .collect();
        if late.is_empty() {
            return Ok(());
        }
        interruptible(cancel, tokio::time::sleep(Duration::from_millis(200))).await?;
    }
    Err(CliError::Network(format!(
        "validators did not commit within {} s; see {}/validator-*/node.log",
        START_WITHIN.as_secs(),
        bed.dir().display()
    )))
}

fn validator_commit(dir: &Path, name: &str) -> u64 {
    std::fs::read_to_string(dir.join(name).join("status.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v["commit"].as_u64())
        .unwrap_or(0)
}

/// Runs `fut` unless the bench is interrupted first.
async fn interruptible<T>(
    cancel: &mut watch::Receiver<bool>,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, CliError> {
    if *cancel.borrow() {
        return Err(interrupted());
    }
    tokio::select! {
        v = fut => Ok(v),
        _ = cancel.changed() => Err(interrupted()),
    }
}

fn interrupted() -> CliError {
    CliError::Invalid("interrupted: validators stopped, testnet removed".into())
}

/// A client task: connects, reports ready, waits for its schedule, drives
/// its load, returns its tally.
async fn client_task(
    cfg: Loaded,
    index: usize,
    ready: oneshot::Sender<()>,
    go: oneshot::Receiver<(Schedule, Timestamp)>,
    mut cancel: watch::Receiver<bool>,
) -> Result<ClientTally, CliError> {
    let clock = Clock::since_unix_micros(cfg.network.genesis_unix_micros);
    let net = crate::runtime::bind(&cfg).await?;
    let r = async {
        crate::runtime::reach_validators(&net, &cfg, crate::runtime::REACH_WITHIN).await?;
        let _ = ready.send(());
        let (schedule, drain_until) = interruptible(&mut cancel, go)
            .await?
            .map_err(|_| interrupted())?;
        let mut role = LoadRole::new(machine(&cfg, index, schedule), drain_until, clock);
        let stop = clock
            .instant_at(drain_until)
            .unwrap_or_else(tokio::time::Instant::now);
        let mut c = cancel.clone();
        let shutdown = async move {
            tokio::select! {
                () = tokio::time::sleep_until(stop) => {}
                _ = c.changed() => {}
            }
        };
        crate::runtime::drive(&mut role, &net, clock, None, shutdown).await?;
        if *cancel.borrow() {
            return Err(interrupted());
        }
        Ok(role.into_tally())
    }
    .await;
    net.shutdown().await;
    r
}

/// Client `index` of `cfg`'s network paying the next client, through
/// validator `index % validators`, one gateway per transfer (as the simulator submits
/// each transaction at one validator).
fn machine(cfg: &Loaded, index: usize, schedule: Schedule) -> LoadMachine {
    let mut setup = cfg.network.light_setup(&cfg.key, index);
    setup.fanout = 1;
    setup.next_nonce = Some(0);
    let clients: Vec<_> = cfg.network.with_role(crate::config::Role::Client).collect();
    let to = NetworkConfig::id_of(clients[(index + 1) % clients.len()]).account();
    let policy = TrapPolicy {
        cost_per_subtask: Amount::new(1),
        stake: Amount::new(1),
        price_to_pay_divisor: 1,
    };
    let node = ClientNode::new(
        setup,
        policy,
        Box::new(crate::account::NoTraps),
        crate::runtime::secret_seed(),
    );
    LoadMachine::new(node, to, schedule)
}

/// Bytes of one benchmark transfer on the wire (signed, encoded).
pub fn transfer_bytes() -> usize {
    let key = idlegrid_primitives::Keypair::from_seed(&idlegrid_primitives::Seed::from_u64(0));
    let tx = Transaction {
        chain: idlegrid_dag_ledger::ledger::Params::default().chain_id,
        sender: key.account_id(),
        nonce: Nonce::new(u64::MAX / 2),
        kind: TxKind::Transfer {
            to: key.account_id(),
            amount: Amount::new(4_096),
        },
    }
    .sign(&key);
    idlegrid_primitives::encoded_len(&tx)
}

/// One run at offered load `load` (total tx/s): start, measure, stop.
pub async fn run_one(
    opts: &BenchOptions,
    load: f64,
    exe: &Path,
    mut cancel: watch::Receiver<bool>,
) -> Result<RunReport, CliError> {
    let bed = start(opts, load, exe).await?;
    eprintln!("bench: testnet in {}", bed.dir().display());
    await_commits(&bed, &mut cancel).await?;
    let (mut tasks, gos) = spawn_clients(&bed, opts.clients, &cancel).await?;
    let n = opts.clients;
    let clock = Clock::since_unix_micros(testnet::network(bed.dir())?.genesis_unix_micros);
    let warmup = idlegrid_primitives::Duration::from_micros(
        (opts.duration.as_micros() as u64 / 4).min(2_000_000),
    );
    let start_at = clock.now() + idlegrid_primitives::Duration::from_millis(200);
    let schedule = Schedule {
        rate: load / n as f64,
        start: start_at,
        measure_from: start_at + warmup,
        end: start_at + warmup + opts.duration.into(),
    };
    let drain_until = schedule.end + DRAIN.into();
    for go in gos {
        let _ = go.send((schedule, drain_until));
    }
    let cpu = report::measure_cpu(&bed, clock, schedule, &mut cancel).await?;
    let mut tallies = Vec::with_capacity(n);
    while let Some(r) = tasks.join_next().await {
        tallies.push(joined(r)?);
    }
    Ok(RunReport::new(opts, load, &tallies, cpu))
}

/// The client tasks (aborted if dropped: an early return stops them all)
/// and the senders of their schedule.
type ClientHandles = (
    JoinSet<Result<ClientTally, CliError>>,
    Vec<oneshot::Sender<(Schedule, Timestamp)>>,
);

fn joined<T>(r: Result<Result<T, CliError>, tokio::task::JoinError>) -> Result<T, CliError> {
    r.map_err(|e| CliError::Invalid(format!("client task: {e}")))?
}

/// Starts one client task per validator and waits until all reach f + 1
/// validators; the first that fails to fails the run.
async fn spawn_clients(
    bed: &Testbed,
    clients: usize,
    cancel: &watch::Receiver<bool>,
) -> Result<ClientHandles, CliError> {
    let (mut tasks, mut gos, mut readies) = (JoinSet::new(), Vec::new(), Vec::new());
    for k in 0..clients {
        let cfg = Loaded::load(&bed.dir().join(format!("client-{k}")).join("node.toml"))?;
        let (ready_tx, ready_rx) = oneshot::channel();
        let (go_tx, go_rx) = oneshot::channel();
        tasks.spawn(client_task(cfg, k, ready_tx, go_rx, cancel.clone()));
        gos.push(go_tx);
        readies.push(ready_rx);
    }
    let mut cancel = cancel.clone();
    for r in readies {
        if interruptible(&mut cancel, r).await?.is_err() {
            // A client ended before it was ready: report the first error.
            while let Some(r) = tasks.join_next().await {
                joined(r)?;
            }
            return Err(interrupted());
        }
    }
    Ok((tasks, gos))
}

/// Every run of `opts`, in order; stops at the first failure or interrupt.
pub async fn run(
    opts: &BenchOptions,
    exe: &Path,
    cancel: watch::Receiver<bool>,
    mut on_run: impl FnMut(&RunReport),
) -> Result<Vec<RunReport>, CliError> {
    let mut out = Vec::new();
    for &load in &opts.loads {
        let r = run_one(opts, load, exe, cancel.clone()).await?;
        on_run(&r);
        out.push(r);
    }
    Ok(out)
}
