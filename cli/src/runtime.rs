//! The runtime: drives `idlegrid-node` machines over the encrypted TCP
//! transport with the real clock. One loop ([`drive`]) for every role; a
//! role ([`Role`]) adds what only it needs: the validator's durability step
//! before anything leaves, the provider's sandboxed executor, the client's
//! job tracking. Every protocol decision stays in the machines.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use idlegrid_dag_ledger::consensus::ConsensusEvent;
use idlegrid_executor::{Executor, Limits, ProcessExecutor, Program, Task};
use idlegrid_market::{ExecutorKind, ExecutorSet};
use idlegrid_node::market::{Environment, MAX_CAPACITY, MarketTx, decode_market};
use idlegrid_node::provider::{ExecReport, LotKey, ProviderEvent, ProviderNode, ProviderOffer};
use idlegrid_node::store::persist_step;
use idlegrid_node::validator::{SyncEvent, ValidatorEvent, ValidatorNode};
use idlegrid_node::wire::{LotData, NodeMessage, input_digest, output_digest};
use idlegrid_primitives::{
    Amount, Destination, Machine, Seed, SignatureMemo, SignatureVerifier, Timestamp, Transmit,
};
use idlegrid_store::RedbStore;
use idlegrid_transport::{Clock, Codec, PostcardCodec, TcpConfig, TcpTransport, Transport};
use rand::Rng;
use tokio::sync::mpsc;

use crate::CliError;
use crate::config::{Loaded, NetworkConfig, OfferFile, Role as NodeRole};

/// Work finished off the loop (an execution), applied to the role.
pub type Completion<R> = Box<dyn FnOnce(&mut R, Timestamp) + Send>;

/// How long a light node waits for its first links to the validators.
pub const REACH_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// What one kind of node adds to the driving loop.
pub trait Role: Sized + 'static {
    /// The machine.
    type M: Machine<Message = NodeMessage>;
    /// The machine.
    fn machine(&mut self) -> &mut Self::M;
    /// Runs after every input, before any transmit leaves.
    fn after_input(&mut self) -> Result<(), CliError> {
        Ok(())
    }
    /// Handles one event; slow work goes to a task that sends a
    /// [`Completion`] back.
    fn on_event(
        &mut self,
        ev: <Self::M as Machine>::Event,
        now: Timestamp,
        done: &mpsc::Sender<Completion<Self>>,
    );
    /// Runs every half second, before the status file is written.
    fn on_tick(&mut self, now: Timestamp) {
        let _ = now;
    }
    /// The status file's content.
    fn status(&self) -> serde_json::Value;
    /// True when the role has finished (a client whose job is done).
    fn finished(&self) -> bool {
        false
    }
}

/// A one-line log on standard error: `[  12.345s name] message`.
#[derive(Debug, Clone)]
pub struct Log {
    name: String,
    clock: Clock,
    /// Progress bars the lines are printed above, when they are drawn.
    bars: Option<indicatif::MultiProgress>,
}

impl Log {
    /// A log for `name` on `clock`.
    pub fn new(name: &str, clock: Clock) -> Self {
        Self {
            name: name.to_string(),
            clock,
            bars: None,
        }
    }

    /// The same log, printing above `bars` while they are drawn.
    pub fn above(mut self, bars: indicatif::MultiProgress) -> Self {
        self.bars = Some(bars);
        self
    }

    /// Writes one line.
    pub fn line(&self, msg: impl std::fmt::Display) {
        let t = self.clock.now().as_micros();
        let line = format!(
            "[{:>5}.{:03}s {}] {msg}",
            t / 1_000_000,
            (t / 1_000) % 1_000,
            self.name
        );
        match &self.bars {
            Some(b) if !b.is_hidden() => {
                let _ = b.println(line);
            }
            _ => eprintln!("{line}"),
        }
    }
}

/// Reads an offer file: price, capacity and the environment (`base` with
/// the file's features, when it lists them).
fn parse_offer(text: &str, base: &Environment) -> Result<(Amount, u32, Environment), String> {
    let o: OfferFile = toml::from_str(text).map_err(|e| e.to_string())?;
    if o.price == 0 || !(1..=MAX_CAPACITY).contains(&o.capacity) {
        return Err(format!(
            "price must be positive and capacity 1..={MAX_CAPACITY}"
        ));
    }
    let mut environment = base.clone();
    if let Some(names) = &o.features {
        environment.features =
            idlegrid_market::Features::from_names(names).map_err(|e| e.to_string())?;
    }
    Ok((Amount::new(o.price.into()), o.capacity, environment))
}

/// A fresh secret seed from the operating system for one process: the
/// salts of sealed orders and the coefficients of batch signature
/// verification must be unpredictable to everyone else (a seed derived
/// from public data would let anyone open sealed prices or craft
/// signatures that pass a batch check), and a restarted process must not
/// reuse the salts its earlier run revealed.
pub fn secret_seed() -> Seed {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Seed::from_bytes(bytes)
}

/// Guests (light nodes outside the network file) one validator or
/// provider serves at once.
pub const MAX_GUESTS: usize = 256;

/// Binds the node's transport on its configured address. Validators and
/// providers serve up to [`MAX_GUESTS`] guests; a guest dials every
/// validator (the ledger) and provider (the data plane).
pub async fn bind(cfg: &Loaded) -> Result<TcpTransport, CliError> {
    let serves = matches!(cfg.me.role, NodeRole::Validator | NodeRole::Provider);
    let config = TcpConfig {
        max_guests: if serves { MAX_GUESTS } else { 0 },
        dial_all: cfg.guest,
        ..TcpConfig::default()
    };
    let book = if cfg.guest {
        cfg.network
            .members
            .iter()
            .filter(|m| m.role != NodeRole::Client)
            .map(|m| (NetworkConfig::id_of(m), m.addr))
            .collect()
    } else {
        cfg.network.address_book(&cfg.node.dial)
    };
    TcpTransport::bind(cfg.key.clone(), cfg.me.addr, book, config)
        .await
        .map_err(|e| CliError::Network(format!("listen on {}: {e}", cfg.me.addr)))
}

/// Waits until the transport has authenticated links to f + 1 of the
/// validators (what a light node needs to trust a fact), at most `within`;
/// otherwise one clear error naming the network file and the addresses.
pub async fn reach_validators(
    net: &TcpTransport,
    cfg: &Loaded,
    within: std::time::Duration,
) -> Result<(), CliError> {
    let validators: Vec<_> = cfg.network.validators().collect();
    let need = (validators.len().max(1) - 1) / 3 + 1;
    let up = || {
        validators
            .iter()
            .filter(|m| net.is_connected(&NetworkConfig::id_of(m)))
            .count()
    };
    const POLL: std::time::Duration = std::time::Duration::from_millis(100);
    for _ in 0..within.as_millis().div_ceil(POLL.as_millis()) {
        if up() >= need {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
    let base = cfg.path.parent().unwrap_or(Path::new("."));
    let addrs: Vec<String> = validators.iter().map(|m| m.addr.to_string()).collect();
    Err(CliError::Network(format!(
        "cannot reach the validators listed in {}: {} of {} answered within {} s, {need} needed ({})",
        base.join(&cfg.node.network).display(),
        up(),
        validators.len(),
        within.as_secs(),
        addrs.join(", ")
    )))
}

async fn send(net: &TcpTransport, codec: &PostcardCodec, t: Transmit<NodeMessage>) {
    let bytes = codec.encode(&t.msg);
    // A full queue or an unknown peer drops the message; the protocols
    // retransmit what they need.
    let _ = match t.to {
        Destination::To(to) => net.send(to, bytes).await,
        Destination::Broadcast => net.broadcast(bytes).await.map(|_| ()),
    };
}

/// Drives `role` until `shutdown` resolves or the role has finished,
/// writing `status` (JSON) every half second.
pub async fn drive<R: Role>(
    role: &mut R,
    net: &TcpTransport,
    clock: Clock,
    status: Option<&Path>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), CliError> {
    let codec = PostcardCodec::default();
    let (done_tx, mut done_rx) = mpsc::channel::<Completion<R>>(1_024);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    loop {
        role.after_input()?;
        loop {
            let mut idle = true;
            while let Some(t) = role.machine().poll_transmit() {
                idle = false;
                send(net, &codec, t).await;
            }
            while let Some(ev) = role.machine().poll_event() {
                idle = false;
                role.on_event(ev, clock.now(), &done_tx);
            }
            if idle {
                break;
            }
            role.after_input()?;
        }
        if role.finished() {
            write_status(status, &role.status());
            return Ok(());
        }
        let wake = role
            .machine()
            .poll_timeout()
            .and_then(|t| clock.instant_at(t));
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = &mut shutdown => {
                write_status(status, &role.status());
                return Ok(());
            }
            Some(c) = done_rx.recv() => c(role, clock.now()),
            () = sleep => role.machine().handle_timeout(clock.now()),
            r = net.recv() => match r {
                Ok((from, bytes)) => {
                    if let Ok(msg) = codec.decode(&bytes) {
                        role.machine().handle_message(clock.now(), from, msg);
                    }
                }
                Err(e) => return Err(CliError::Network(format!("transport stopped: {e}"))),
            },
            _ = tick.tick() => {
                role.on_tick(clock.now());
                write_status(status, &role.status());
            }
        }
    }
}

/// Writes the status file atomically (write, then rename).
fn write_status(path: Option<&Path>, value: &serde_json::Value) {
    let Some(path) = path else { return };
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, value.to_string()).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

/// A validator: consensus, ledger and marketplace, durable in redb.
pub struct ValidatorRole {
    node: ValidatorNode,
    store: RedbStore,
    network: NetworkConfig,
    log: Log,
    commit: u64,
    /// The state digest after each of the latest commits (oldest first),
    /// for comparing validators at one index.
    recent: VecDeque<(u64, idlegrid_primitives::Digest)>,
    /// Committee members this validator holds equivocation evidence against.
    equivocators: BTreeSet<String>,
    name: String,
    exec: Arc<ProcessExecutor>,
}

/// Commits whose state digest a validator's status keeps.
const RECENT_DIGESTS: usize = 64;

impl ValidatorRole {
    /// Opens (or creates) the store in `cfg.data_dir` and recovers the
    /// node from it.
    pub fn open(cfg: &Loaded, log: Log) -> Result<Self, CliError> {
        let setup = cfg.network.validator_setup()?;
        let path = cfg.data_dir.join("store.redb");
        let fresh = !path.exists();
        let store = if fresh {
            RedbStore::create(&path)
        } else {
            RedbStore::open(&path)
        }
        .map_err(|e| CliError::Store(e.to_string()))?;
        let mut stored = idlegrid_node::store::NodeStore::load(&store)
            .map_err(|e| CliError::Store(e.to_string()))?;
        // A new store cannot tell whether this key signed before (its old
        // store lost or deleted): learn our latest block from peers before
        // proposing, never sign a round twice.
        stored.consensus.lost = fresh;
        let checkpoint_every = cfg.network.consensus.checkpoint_every;
        let seed = secret_seed();
        // Transactions this validator's gateway verified are not verified
        // again when the batch carrying them commits.
        let signatures = SignatureVerifier::memoized(SignatureMemo::shared(&secret_seed()));
        let node = ValidatorNode::recover(
            cfg.key.clone(),
            cfg.network.committee(),
            &setup,
            seed,
            false,
            stored,
            checkpoint_every,
        )
        .map_err(|e| CliError::Store(format!("recovery from {}: {e}", path.display())))?
        .with_signature_verifier(signatures);
        let commit = node.consensus().stats().commits;
        log.line(format_args!(
            "{} store {}, recovered to commit {commit}",
            if fresh { "created" } else { "opened" },
            path.display()
        ));
        Ok(Self {
            node,
            store,
            network: cfg.network.clone(),
            log,
            commit,
            recent: VecDeque::with_capacity(RECENT_DIGESTS),
            equivocators: BTreeSet::new(),
            name: cfg.me.name.clone(),
            exec: Arc::new(ProcessExecutor::default()),
        })
    }
}

impl ValidatorRole {
    /// Re-runs a dispute's traps in the sandbox and votes the outputs.
    fn referee(
        &mut self,
        client: idlegrid_primitives::AccountId,
        job: u64,
        lot: u32,
        data: LotData,
        done: &mpsc::Sender<Completion<Self>>,
    ) {
        self.log.line(format_args!(
            "referee for job {job} lot {lot}: re-running {} disputed traps",
            data.inputs.len()
        ));
        let (exec, done) = (Arc::clone(&self.exec), done.clone());
        tokio::spawn(async move {
            let mut outputs = Vec::with_capacity(data.inputs.len());
            for input in &data.inputs {
                outputs.push(output_digest(
                    &run_subtask(&*exec, &data.program, input).await.0,
                ));
            }
            let c: Completion<ValidatorRole> = Box::new(move |r, _| {
                if let Err(e) = r.node.vote(client, job, lot, outputs) {
                    r.log
                        .line(format_args!("vote for job {job} lot {lot} refused: {e}"));
                }
            });
            let _ = done.send(c).await;
        });
    }
}

impl ValidatorRole {
    /// Runs a commit's audit on the blocking pool (it reads the whole
    /// state) and logs a failure when it comes back.
    fn audit(audit: idlegrid_node::validator::Audit, done: &mpsc::Sender<Completion<Self>>) {
        let done = done.clone();
        tokio::spawn(async move {
            let index = audit.index();
            let line = match tokio::task::spawn_blocking(move || audit.run()).await {
                Ok(Ok(())) => return,
                Ok(Err(v)) => format!("INVARIANT VIOLATED at commit {index}: {v}"),
                Err(e) => format!("the audit of commit {index} did not finish: {e}"),
            };
            let c: Completion<ValidatorRole> =
                Box::new(move |r, _| r.log.line(format_args!("{line}")));
            let _ = done.send(c).await;
        });
    }

    fn on_consensus(&mut self, ev: &ConsensusEvent) {
        if let ConsensusEvent::Equivocation(e) = ev {
            let who = self
                .network
                .validators()
                .nth(e.author().as_usize())
                .map_or_else(|| format!("{:?}", e.author()), |m| m.name.clone());
            self.log.line(format_args!(
                "equivocation evidence: {who} signed two blocks in round {}",
                e.first.header.round.get()
            ));
            self.equivocators.insert(who);
        }
    }

    fn on_sync(&mut self, ev: &SyncEvent) {
        match ev {
            SyncEvent::Installed { index, digest } => {
                self.commit = *index;
                self.log.line(format_args!(
                    "state sync: installed the snapshot after commit {index} (state {})",
                    digest.short()
                ));
            }
            SyncEvent::Started { index, root } => self.log.line(format_args!(
                "state sync: fetching the snapshot after commit {index} (root {}) that f + 1 validators attest",
                root.short()
            )),
            SyncEvent::PeerDropped { peer, error } => self.log.line(format_args!(
                "state sync: dropped peer {}: {error}",
                peer.short()
            )),
            SyncEvent::Failed { error } => self
                .log
                .line(format_args!("state sync failed, starting over: {error}")),
            other => self.log.line(format_args!("state sync: {other:?}")),
        }
    }
}

impl Role for ValidatorRole {
    type M = ValidatorNode;

    fn machine(&mut self) -> &mut ValidatorNode {
        &mut self.node
    }

    fn after_input(&mut self) -> Result<(), CliError> {
        persist_step(&mut self.node, &mut self.store).map_err(|e| CliError::Store(e.to_string()))
    }

    fn on_event(
        &mut self,
        ev: ValidatorEvent,
        _now: Timestamp,
        done: &mpsc::Sender<Completion<Self>>,
    ) {
        match ev {
            ValidatorEvent::Applied {
                index,
                digest,
                applied,
                rejected,
                violation,
                ..
            } => {
                self.commit = index;
                if self.recent.len() == RECENT_DIGESTS {
                    self.recent.pop_front();
                }
                self.recent.push_back((index, digest));
                if let Some(v) = violation {
                    self.log
                        .line(format_args!("INVARIANT VIOLATED at commit {index}: {v}"));
                }
                if applied + rejected > 0 {
                    self.log.line(format_args!(
                        "commit {index}: {applied} transactions applied, {rejected} rejected"
                    ));
                }
            }
            ValidatorEvent::RefereeDuty {
                client,
                job,
                lot,
                data: Some(data),
                ..
            } => self.referee(client, job, lot, data, done),
            ValidatorEvent::Audit(audit) => Self::audit(*audit, done),
            ValidatorEvent::Consensus(ev) => self.on_consensus(&ev),
            ValidatorEvent::StateSync(ev) => self.on_sync(&ev),
            ValidatorEvent::RefereeDuty { job, lot, .. } => {
                // Reported again when the disputing provider's bytes arrive.
                self.log.line(format_args!(
                    "referee duty for job {job} lot {lot}: waiting for the provider's bytes"
                ));
            }
            _ => {}
        }
    }

    fn status(&self) -> serde_json::Value {
        let ledger = self.node.ledger();
        let accounts: serde_json::Map<String, serde_json::Value> = self
            .network
            .members
            .iter()
            .map(|m| {
                let a = NetworkConfig::id_of(m).account();
                let v = serde_json::json!({
                    "balance": ledger.balance(&a).get().to_string(),
                    "bonded": ledger.bonded(&a).get().to_string(),
                    "locked": ledger.locked(&a).get().to_string(),
                });
                (m.name.clone(), v)
            })
            .collect();
        serde_json::json!({
            "name": self.name,
            "role": NodeRole::Validator,
            "pid": std::process::id(),
            "commit": self.commit,
            "state_digest": ledger.state_digest().to_string(),
            "recent_digests": self
                .recent
                .iter()
                .map(|(i, d)| (i.to_string(), serde_json::Value::from(d.to_string())))
                .collect::<serde_json::Map<_, _>>(),
            "equivocators": self.equivocators.iter().collect::<Vec<_>>(),
            "syncing_own_block": self.node.syncing_own_block(),
            "initial_supply": ledger.initial_supply().get().to_string(),
            "total_supply": ledger.total_supply().get().to_string(),
            "burned": ledger.burned().get().to_string(),
            "accounts": accounts,
        })
    }
}

/// A provider: runs its lots' subtasks in the sandbox.
pub struct ProviderRole {
    node: ProviderNode,
    exec: Arc<ProcessExecutor>,
    cheat_ppm: u32,
    cheat_denies: bool,
    seed: Seed,
    runs: u64,
    log: Log,
    name: String,
    earned: Amount,
    slashed: Amount,
    lots_done: u64,
    offer_file: PathBuf,
    /// The offer file's text last applied (or refused), so it is read
    /// again only when it changes.
    offer_text: Option<String>,
    offer_rejected: Option<String>,
    /// The ledger applied its latest offer.
    offer_listed: bool,
}

impl ProviderRole {
    /// The provider of `cfg`; finds what its sandbox can import unless the
    /// config lists its features.
    pub async fn new(cfg: &Loaded, log: Log) -> Result<Self, CliError> {
        let p = cfg
            .node
            .provider
            .as_ref()
            .ok_or_else(|| CliError::Invalid("not a provider".into()))?;
        let index = cfg
            .network
            .with_role(NodeRole::Provider)
            .position(|m| m.name == cfg.me.name)
            .unwrap_or(0);
        let exec = Arc::new(ProcessExecutor::default());
        let (features, dropped) =
            crate::environment::provider_features(&*exec, p.features.as_deref()).await?;
        log.line(format_args!("offers a Python sandbox with: {features}"));
        if !dropped.is_empty() {
            log.line(format_args!("not advertised: {}", dropped.join(", ")));
        }
        let mut offer = ProviderOffer {
            price: Amount::new(p.price.into()),
            capacity: p.capacity,
            stake_per_slot: Amount::new(cfg.network.market.stake_per_slot.into()),
            region: 0,
            environment: Environment {
                executors: ExecutorSet::single(ExecutorKind::Process),
                features,
            },
        };
        // A restarted provider offers what `provider offer` last set, in
        // its first offer (two offers in a row could apply in either order
        // if an earlier run's transaction holds up the first).
        let offer_file = OfferFile::path(&cfg.data_dir);
        let offer_text = std::fs::read_to_string(&offer_file).ok();
        if let Some(text) = &offer_text {
            match parse_offer(text, &offer.environment) {
                Ok((price, capacity, environment)) => {
                    (offer.price, offer.capacity, offer.environment) =
                        (price, capacity, environment);
                    log.line(format_args!(
                        "offer from {}: {capacity} slots at {price}/s",
                        offer_file.display()
                    ));
                }
                Err(e) => log.line(format_args!("{}: {e}", offer_file.display())),
            }
        }
        let seed = secret_seed();
        let setup = cfg.network.light_setup(&cfg.key, index);
        if p.testing_cheat_ppm > 0 {
            log.line(format_args!(
                "TESTING: this provider cheats on {} ppm of its subtasks",
                p.testing_cheat_ppm
            ));
        }
        Ok(Self {
            node: ProviderNode::new(setup, offer, seed),
            exec,
            cheat_ppm: p.testing_cheat_ppm,
            cheat_denies: p.testing_cheat_denies,
            seed: seed.derive("cheat"),
            runs: 0,
            log,
            name: cfg.me.name.clone(),
            earned: Amount::ZERO,
            slashed: Amount::ZERO,
            lots_done: 0,
            offer_file,
            offer_text,
            offer_rejected: None,
            offer_listed: false,
        })
    }

    /// Applies the offer file if it changed since it was last read.
    fn poll_offer_file(&mut self, now: Timestamp) {
        let Ok(text) = std::fs::read_to_string(&self.offer_file) else {
            return;
        };
        if self.offer_text.as_ref() == Some(&text) {
            return;
        }
        self.offer_text = Some(text.clone());
        match parse_offer(&text, &self.node.offer().environment) {
            Ok((price, capacity, environment)) => {
                self.log.line(format_args!(
                    "new offer: {capacity} slots at {price}/s with {}",
                    environment.features
                ));
                self.offer_rejected = None;
                self.offer_listed = false;
                self.node.change_offer(now, price, capacity, environment);
            }
            Err(e) => {
                self.log
                    .line(format_args!("{}: {e}", self.offer_file.display()));
                self.offer_rejected = Some(e);
            }
        }
    }

    fn execute(
        &mut self,
        lot: LotKey,
        data: Option<LotData>,
        done: &mpsc::Sender<Completion<Self>>,
    ) {
        let Some(data) = data else {
            self.log.line(format_args!(
                "lot {}/{}: no input bytes from the client, not run",
                lot.1, lot.2
            ));
            return;
        };
        self.runs += 1;
        let mut rng = self.seed.derive_indexed("lot", self.runs).rng();
        let cheat: Vec<bool> = data
            .inputs
            .iter()
            .map(|_| rng.gen_range(0..1_000_000) < self.cheat_ppm)
            .collect();
        self.log.line(format_args!(
            "lot {}/{}: running {} subtasks in the sandbox",
            lot.1,
            lot.2,
            data.inputs.len()
        ));
        let exec = Arc::clone(&self.exec);
        let done = done.clone();
        let denies = self.cheat_denies;
        tokio::spawn(async move {
            let mut report = run_lot(&*exec, &data, &cheat).await;
            if denies {
                // It claims it computed everything: caught, it disputes.
                report.cheated.iter_mut().for_each(|c| *c = false);
            }
            let c: Completion<ProviderRole> =
                Box::new(move |r, now| r.node.handle_executed(now, lot, report));
            let _ = done.send(c).await;
        });
    }
}

/// What a subtask prints when the sandbox refused or failed it: the same
/// bytes on every honest machine, so a failing script fails traps nobody.
pub fn failure_output(e: &idlegrid_executor::ExecError) -> Vec<u8> {
    format!("{FAILURE_PREFIX}{e}\n").into_bytes()
}

/// How a [`failure_output`] starts.
pub const FAILURE_PREFIX: &str = "idlegrid: subtask failed: ";

/// The failure a subtask's output reports, if it is a [`failure_output`].
pub fn failure_of(output: &[u8]) -> Option<String> {
    let text = output.strip_prefix(FAILURE_PREFIX.as_bytes())?;
    Some(String::from_utf8_lossy(text).trim_end().to_string())
}

/// The file in a subtask's working directory that holds its seed (32 hex
/// digits derived from the program and the input).
pub const SEED_FILE: &str = "idlegrid_seed";

/// Runs one subtask of `program` in the sandbox; the output bytes.
pub async fn run_subtask(exec: &dyn Executor, program: &[u8], input: &[u8]) -> (Vec<u8>, u64) {
    // A seed the script may read (`open("idlegrid_seed").read()`): the same
    // for a subtask on every machine, so seeded randomness stays checkable.
    let seed = input_digest(program, input).to_string();
    let task = Task::new(Program::python(program.to_vec()), input.to_vec())
        .with_file(SEED_FILE, seed.as_bytes()[..32].to_vec());
    let mut attempt = 0;
    loop {
        match exec.execute(&task, &Limits::default()).await {
            Ok(x) => return (x.output, x.usage.compute_micros),
            // A host failure says nothing about the script: try again.
            Err(idlegrid_executor::ExecError::Host(_)) if attempt < 3 => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
            }
            Err(e) => return (failure_output(&e), 0),
        }
    }
}

/// Runs a lot's subtasks; `cheat[i]` replaces subtask `i` by garbage.
async fn run_lot(exec: &dyn Executor, data: &LotData, cheat: &[bool]) -> ExecReport {
    let mut outputs = Vec::with_capacity(data.inputs.len());
    let mut usage = 0;
    for (input, &c) in data.inputs.iter().zip(cheat) {
        if c {
            outputs.push(b"made up\n".to_vec());
            continue;
        }
        let (out, micros) = run_subtask(exec, &data.program, input).await;
        usage += micros;
        outputs.push(out);
    }
    ExecReport {
        outputs: outputs.iter().map(|o| output_digest(o)).collect(),
        usage_micros: usage.max(1),
        cheated: cheat.to_vec(),
        data: Some(outputs),
    }
}

impl Role for ProviderRole {
    type M = ProviderNode;

    fn machine(&mut self) -> &mut ProviderNode {
        &mut self.node
    }

    fn on_event(
        &mut self,
        ev: ProviderEvent,
        _now: Timestamp,
        done: &mpsc::Sender<Completion<Self>>,
    ) {
        match ev {
            ProviderEvent::Execute { lot, data, .. } => self.execute(lot, data, done),
            ProviderEvent::Matched { lot, price } => {
                self.log
                    .line(format_args!("matched lot {}/{} at {price}/s", lot.1, lot.2));
            }
            ProviderEvent::Settled(s) => {
                self.lots_done += 1;
                self.earned = self.earned.saturating_add(s.paid);
                self.slashed = self.slashed.saturating_add(s.slashed);
                self.log.line(format_args!(
                    "lot {}/{} settled: paid {}, slashed {}",
                    s.job, s.lot, s.paid, s.slashed
                ));
            }
            ProviderEvent::Unplanned { lot, .. } => self.log.line(format_args!(
                "lot {}/{} lapsed: its client never planned it; the slot is free",
                lot.1, lot.2
            )),
            ProviderEvent::Answered { lot, confessed } => self.log.line(format_args!(
                "lot {}/{} accused: {}",
                lot.1,
                lot.2,
                if confessed { "accepted" } else { "disputed" }
            )),
            ProviderEvent::Applied { tx } => {
                if let Some(MarketTx::Offer { capacity, .. }) = decode_market(&tx) {
                    self.offer_listed = true;
                    self.log
                        .line(format_args!("offer listed: {capacity} slots"));
                }
            }
            ProviderEvent::Rejected { tx, reason } => {
                if matches!(*tx, MarketTx::Offer { .. }) {
                    self.offer_rejected = Some(reason.detail.clone());
                }
                self.log
                    .line(format_args!("transaction rejected: {reason:?} ({tx:?})"));
            }
            ProviderEvent::Ignored { from, reason } => {
                self.log
                    .line(format_args!("ignored a message from {from}: {reason}"));
            }
            _ => {}
        }
    }

    fn on_tick(&mut self, now: Timestamp) {
        self.poll_offer_file(now);
    }

    fn status(&self) -> serde_json::Value {
        let o = self.node.offer();
        serde_json::json!({
            "name": self.name,
            "role": NodeRole::Provider,
            "pid": std::process::id(),
            "offer": {
                "price": o.price.get().to_string(),
                "capacity": o.capacity,
                "features": o.environment.features.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
                "listed": self.offer_listed,
                "rejected": self.offer_rejected,
            },
            "open_lots": self.node.open_lots(),
            "lots_settled": self.lots_done,
            "earned": self.earned.get().to_string(),
            "slashed": self.slashed.get().to_string(),
        })
    }
}

/// Runs the node of `cfg` (validator or provider) until SIGTERM/SIGINT.
pub async fn run_node(cfg: &Loaded) -> Result<(), CliError> {
    std::fs::create_dir_all(&cfg.data_dir).map_err(|e| CliError::io(&cfg.data_dir, e))?;
    let clock = Clock::since_unix_micros(cfg.network.genesis_unix_micros);
    let log = Log::new(&cfg.me.name, clock);
    let status: PathBuf = cfg.data_dir.join("status.json");
    let net = bind(cfg).await?;
    log.line(format_args!(
        "{} {} listening on {}",
        cfg.me.role,
        cfg.key.node_id(),
        net.local_addr()
    ));
    let stop = shutdown_signal();
    let r = match cfg.me.role {
        NodeRole::Validator => {
            let mut role = ValidatorRole::open(cfg, log.clone())?;
            drive(&mut role, &net, clock, Some(&status), stop).await
        }
        NodeRole::Provider => {
            let mut role = ProviderRole::new(cfg, log.clone()).await?;
            drive(&mut role, &net, clock, Some(&status), stop).await
        }
        NodeRole::Client => Err(CliError::Invalid(
            "a client does not run as a node; use `idlegrid job submit`".into(),
        )),
    };
    net.shutdown().await;
    log.line("stopped");
    r
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
