//! The client: `idlegrid job submit`.
//!
//! The script keeps the shape users already write: it reads records, one
//! per line, on standard input and prints results on standard output. The
//! client cuts the input lines into chunks (one chunk = one subtask) and
//! groups them into lots; for every lot it builds traps — samples of the
//! user's own records, answered beforehand by running the script in the
//! local sandbox, twice, refusing a script whose answers differ — and hands
//! everything to a [`ClientNode`], which posts the job, plans the traps,
//! sends the bytes to the matched providers, checks the traps and accuses.
//! Lots whose provider was caught, failed or never matched are posted again
//! as a new job, up to `retries` times. The merged outputs are in input
//! order, so they equal `python3 SCRIPT < INPUTS` run locally.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use idlegrid_entrap::TrapSpec;
use idlegrid_executor::{ProcessExecutor, split_lines};
use idlegrid_market::{ExecutorKind, Features, JobGoods};
use idlegrid_node::client::{ClientEvent, ClientNode, JobData, JobSpec, TrapPolicy, TrapSource};
use idlegrid_node::market::{JobRequest, MarketTx, unsealed};
use idlegrid_node::wire::{input_digest, output_digest};
use idlegrid_primitives::{Amount, Digest, Duration, Seed, Timestamp};
use idlegrid_transport::{Clock, Transport};
use rand::Rng;
use rand::seq::SliceRandom;
use tokio::sync::mpsc;

use crate::CliError;
use crate::config::{Loaded, Role as NodeRole};
use crate::runtime::{
    Completion, Log, REACH_WITHIN, Role, bind, drive, failure_of, reach_validators, run_subtask,
};

/// What `job submit` was asked.
#[derive(Debug, Clone)]
pub struct SubmitOptions {
    /// The script.
    pub script: PathBuf,
    /// Its input records.
    pub inputs: PathBuf,
    /// Subtasks (chunks of input lines).
    pub split: usize,
    /// Lots (providers) the chunks are spread over.
    pub lots: u32,
    /// Highest price per compute-second.
    pub max_price: u128,
    /// Seconds until unmatched lots lapse.
    pub deadline_secs: u64,
    /// Times a failed lot is posted again.
    pub retries: u32,
    /// Give up after this many seconds in all.
    pub timeout_secs: u64,
    /// Features the providers' runtime must have beyond the script's own
    /// imports (which are read from the script).
    pub requires: Vec<String>,
}

/// How a submission ended.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    /// The submission's id (its first job's).
    pub id: u64,
    /// Merged outputs, input order (complete only if `verified`).
    #[serde(skip)]
    pub output: Vec<u8>,
    /// Every chunk's output was verified.
    pub verified: bool,
    /// Jobs posted (1 + retries used).
    pub jobs: u32,
    /// Providers that ran verified lots.
    pub providers: Vec<String>,
    /// Paid to providers.
    pub paid: u128,
    /// Slashed from providers caught cheating.
    pub slashed: u128,
    /// Escrow refunded.
    pub refunded: u128,
    /// Traps planted.
    pub traps: u32,
    /// Lots with an accusation.
    pub accused_lots: u32,
    /// Lots that lapsed (unmatched, or matched and never planned).
    pub lapsed_lots: u32,
    /// Why it is not verified, if not.
    pub error: Option<String>,
}

/// Trap pools by job and lot, shared between the submitter (which fills
/// them before posting) and the client node (which draws from them).
#[derive(Debug, Default, Clone)]
struct Pools(Arc<Mutex<PoolsInner>>);

#[derive(Debug, Default)]
struct PoolsInner {
    specs: BTreeMap<(u64, u32), Vec<TrapSpec>>,
    bytes: BTreeMap<Digest, Vec<u8>>,
}

impl TrapSource for Pools {
    fn trap(&mut self, job: u64, lot: u32, i: u64) -> TrapSpec {
        let p = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let pool = &p.specs[&(job, lot)];
        pool[(i as usize) % pool.len()]
    }

    fn payload(&mut self, input: &Digest) -> Option<Vec<u8>> {
        let p = self.0.lock().unwrap_or_else(|e| e.into_inner());
        p.bytes.get(input).cloned()
    }
}

/// Traps per lot: the trap optimiser asks for at most `2n + 4` among `n`
/// real subtasks.
fn pool_size(real: usize) -> usize {
    2 * real + 4
}

/// A trap input: a chunk-sized sample of the user's records, shuffled, so
/// a provider cannot tell it from a real chunk.
fn trap_input(records: &[&[u8]], size: usize, rng: &mut impl Rng) -> Vec<u8> {
    let mut pick: Vec<&[u8]> = (0..size.max(1))
        .map(|_| records[rng.gen_range(0..records.len())])
        .collect();
    pick.shuffle(rng);
    let mut out: Vec<u8> = Vec::new();
    for r in pick {
        out.extend_from_slice(r);
        if !r.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    out
}

/// Up to `n` trap inputs that differ from each other and from the lot's
/// real chunks (a repeated input would give the traps away), sampled with
/// a bounded number of tries; tiny inputs may allow fewer.
fn distinct_traps<'a>(
    records: &[&[u8]],
    size: usize,
    n: usize,
    real: impl Iterator<Item = &'a [u8]>,
    rng: &mut impl Rng,
) -> Vec<Vec<u8>> {
    let mut seen: std::collections::BTreeSet<Vec<u8>> = real.map(<[u8]>::to_vec).collect();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n * 16 {
        if out.len() == n {
            break;
        }
        let t = trap_input(records, size, rng);
        if seen.insert(t.clone()) {
            out.push(t);
        }
    }
    out
}

/// Builds and answers a lot's traps in the local sandbox, running each
/// twice: a script whose answers differ is refused before anyone is paid.
async fn answer_traps(
    exec: &Arc<ProcessExecutor>,
    program: &[u8],
    inputs: Vec<Vec<u8>>,
) -> Result<Vec<(TrapSpec, Vec<u8>)>, CliError> {
    // Two sandboxes at a time: each holds a handful of descriptors, and the
    // sandbox's descriptor limit counts the numbers its parent has open.
    let slots = Arc::new(tokio::sync::Semaphore::new(2));
    let mut runs = tokio::task::JoinSet::new();
    for (i, input) in inputs.into_iter().enumerate() {
        let (exec, program, slots) = (exec.clone(), program.to_vec(), slots.clone());
        runs.spawn(async move {
            let _slot = slots.acquire_owned().await;
            let (a, _) = run_subtask(&*exec, &program, &input).await;
            let (b, _) = run_subtask(&*exec, &program, &input).await;
            (i, input, a, b)
        });
    }
    let mut done = Vec::new();
    while let Some(r) = runs.join_next().await {
        done.push(r.map_err(|e| CliError::Job(format!("local trap run: {e}")))?);
    }
    done.sort_by_key(|d| d.0);
    let mut out = Vec::with_capacity(done.len());
    for (_, input, a, b) in done {
        if let Some(why) = failure_of(&a) {
            return Err(CliError::Job(format!(
                "the script fails in the sandbox on a sample of your records ({why}); \
                 nothing was posted or paid. Sample:\n{}",
                String::from_utf8_lossy(&input[..input.len().min(300)])
            )));
        }
        if a != b {
            return Err(CliError::Job(format!(
                "the script printed different results on two runs over the same input:\n{}\
                 first run: {:?}\nsecond run: {:?}\n\
                 Providers would fail traps and lose their stake. Make it deterministic: \
                 seed every random generator (random.seed(0)), do not print times, \
                 addresses or set/dict orders that vary.",
                String::from_utf8_lossy(&input),
                String::from_utf8_lossy(&a[..a.len().min(300)]),
                String::from_utf8_lossy(&b[..b.len().min(300)]),
            )));
        }
        let spec = TrapSpec::precomputed(input_digest(program, &input), output_digest(&a));
        out.push((spec, input));
    }
    Ok(out)
}

/// One posted job: which chunks its lots carry.
#[derive(Debug, Clone)]
struct Posted {
    lots: Vec<Vec<usize>>,
}

/// A lot's progress, for the status file.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct LotState {
    job: u64,
    lot: u32,
    state: &'static str,
    provider: Option<String>,
    traps: u32,
}

/// A progress bar per lot on standard error — posted, then matched and
/// running on its provider, then verified (or accused), then paid (or its
/// provider slashed) — drawn only on a terminal.
#[derive(Debug)]
struct LotBars {
    multi: indicatif::MultiProgress,
    bars: BTreeMap<(u64, u32), indicatif::ProgressBar>,
}

impl LotBars {
    fn new() -> Self {
        Self {
            multi: indicatif::MultiProgress::with_draw_target(
                indicatif::ProgressDrawTarget::stderr_with_hz(4),
            ),
            bars: BTreeMap::new(),
        }
    }

    fn show(&mut self, l: &LotState) {
        let step = match l.state {
            "posted" => 0,
            "running" => 1,
            "verified" | "accused" => 2,
            _ => 3,
        };
        let bar = self.bars.entry((l.job, l.lot)).or_insert_with(|| {
            let style = indicatif::ProgressStyle::with_template("{prefix:>16} [{bar:12}] {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> ");
            let b = self.multi.add(indicatif::ProgressBar::new(3));
            b.set_style(style);
            b.set_prefix(format!("job {} lot {}", l.job, l.lot));
            b
        });
        bar.set_position(step);
        let on = l
            .provider
            .as_deref()
            .map(|p| format!(" on {p}"))
            .unwrap_or_default();
        bar.set_message(format!("{}{on}", l.state));
        if step == 3 {
            bar.finish();
        }
    }
}

/// The client role: a [`ClientNode`] and the submission it serves.
struct ClientRole {
    node: ClientNode,
    log: Log,
    program: Vec<u8>,
    chunks: Vec<Vec<u8>>,
    outputs: Vec<Option<Vec<u8>>>,
    posted: BTreeMap<u64, Posted>,
    open: BTreeSet<u64>,
    lots: BTreeMap<(u64, u32), LotState>,
    bars: LotBars,
    accused: BTreeMap<(u64, u32), bool>,
    names: BTreeMap<idlegrid_primitives::AccountId, String>,
    summary: Summary,
    retries_left: u32,
    pools: Pools,
    opts: SubmitOptions,
    seed: Seed,
    exec: Arc<ProcessExecutor>,
    failed: Option<String>,
    preparing: bool,
    requires: Features,
}

impl ClientRole {
    fn verified(&self) -> bool {
        self.outputs.iter().all(Option::is_some)
    }

    /// Posts `chunks` (indices) as a new job: traps first, off the loop.
    fn post(&mut self, chunks: Vec<usize>, done: &mpsc::Sender<Completion<Self>>) {
        let lots = (self.opts.lots as usize).min(chunks.len()).max(1);
        let per: Vec<Vec<usize>> = chunks
            .chunks(chunks.len().div_ceil(lots))
            .map(<[usize]>::to_vec)
            .collect();
        // Ids from `REPLICA_JOB_BASE` up are the node's own replica jobs.
        let job: u64 = self
            .seed
            .derive_indexed("job", u64::from(self.summary.jobs))
            .rng()
            .gen_range(0..idlegrid_node::verification::REPLICA_JOB_BASE);
        self.summary.jobs += 1;
        if self.summary.id == 0 {
            self.summary.id = job;
        }
        let mut rng = self.seed.derive_indexed("traps", job).rng();
        let all: Vec<u8> = self.chunks.concat();
        let records: Vec<&[u8]> = all.split_inclusive(|&b| b == b'\n').collect();
        let size = records.len().div_ceil(self.chunks.len().max(1));
        let trap_inputs: Vec<Vec<Vec<u8>>> = per
            .iter()
            .map(|l| {
                let real = l.iter().map(|&c| self.chunks[c].as_slice());
                distinct_traps(&records, size, pool_size(l.len()), real, &mut rng)
            })
            .collect();
        if trap_inputs.iter().any(Vec::is_empty) {
            self.fail(
                "the records are too few or too alike to hide a trap among them: \
                 use more records or a larger --split"
                    .into(),
            );
            return;
        }
        let (exec, program, done) = (Arc::clone(&self.exec), self.program.clone(), done.clone());
        let data_inputs: Vec<Vec<Vec<u8>>> = per
            .iter()
            .map(|l| l.iter().map(|&c| self.chunks[c].clone()).collect())
            .collect();
        self.preparing = true;
        self.log.line(format_args!(
            "job {job}: {} subtasks in {} lots; answering {} traps locally",
            chunks.len(),
            per.len(),
            trap_inputs.iter().map(Vec::len).sum::<usize>()
        ));
        tokio::spawn(async move {
            let mut answered = Vec::new();
            for inputs in trap_inputs {
                match answer_traps(&exec, &program, inputs).await {
                    Ok(a) => answered.push(a),
                    Err(e) => {
                        let c: Completion<Self> = Box::new(move |r, _| r.fail(e.to_string()));
                        let _ = done.send(c).await;
                        return;
                    }
                }
            }
            let c: Completion<Self> =
                Box::new(move |r, now| r.posted_traps(now, job, per, data_inputs, answered));
            let _ = done.send(c).await;
        });
    }

    fn posted_traps(
        &mut self,
        now: Timestamp,
        job: u64,
        per: Vec<Vec<usize>>,
        inputs: Vec<Vec<Vec<u8>>>,
        answered: Vec<Vec<(TrapSpec, Vec<u8>)>>,
    ) {
        self.preparing = false;
        {
            let mut p = self.pools.0.lock().unwrap_or_else(|e| e.into_inner());
            for (lot, traps) in answered.into_iter().enumerate() {
                let specs = traps.iter().map(|(s, _)| *s).collect();
                p.specs.insert((job, lot as u32), specs);
                for (s, b) in traps {
                    p.bytes.insert(s.input, b);
                }
            }
        }
        let data = JobData {
            program: self.program.clone(),
            inputs,
        };
        let lots = per.len() as u32;
        let request = JobRequest {
            job,
            lots,
            max_slots_per_lot: 64,
            // Sealed: the client node commits to `max_price` and reveals it
            // once the batch closes.
            commitment: unsealed(),
            cap_micros_per_subtask: 10_000_000,
            min_reputation_bps: 0,
            client_bond: Amount::new(5_000),
            deadline: now + Duration::from_secs(self.opts.deadline_secs),
            goods: JobGoods::none(),
            executor: ExecutorKind::Process,
            requires: self.requires.clone(),
        };
        let spec = JobSpec {
            request,
            max_price: Amount::new(self.opts.max_price),
            inputs: data.digests(),
            data: Some(data),
        };
        match self.node.post_job(now, spec) {
            Ok(()) => {
                for lot in 0..lots {
                    let l = LotState {
                        job,
                        lot,
                        state: "posted",
                        ..LotState::default()
                    };
                    self.bars.show(&l);
                    self.lots.insert((job, lot), l);
                }
                self.posted.insert(job, Posted { lots: per });
                self.open.insert(job);
                self.log.line(format_args!("job {job} posted"));
            }
            Err(e) => self.fail(format!("posting job {job}: {e}")),
        }
    }

    fn fail(&mut self, why: String) {
        self.log.line(format_args!("giving up: {why}"));
        self.failed = Some(why);
    }

    /// A lot's real outputs: kept (with its provider's name) if its traps
    /// checked.
    fn on_outputs(&mut self, job: u64, lot: u32, outputs: Vec<Vec<u8>>) {
        let clean = self.accused.get(&(job, lot)) == Some(&false);
        let chunks = self
            .posted
            .get(&job)
            .and_then(|p| p.lots.get(lot as usize))
            .cloned();
        if let (true, Some(chunks)) = (clean, chunks)
            && chunks.len() == outputs.len()
        {
            for (c, o) in chunks.into_iter().zip(outputs) {
                self.outputs[c] = Some(o);
            }
            if let Some(p) = self.lots.get(&(job, lot)).and_then(|l| l.provider.clone())
                && !self.summary.providers.contains(&p)
            {
                self.summary.providers.push(p);
            }
        }
    }

    fn on_settled(&mut self, s: &idlegrid_node::market::Settlement) {
        self.summary.paid += s.paid.get();
        self.summary.slashed += s.slashed.get();
        self.log.line(format_args!(
            "job {} lot {}: settled, paid {}, provider slashed {}",
            s.job, s.lot, s.paid, s.slashed
        ));
        let state = if s.slashed.is_zero() {
            "paid"
        } else {
            "slashed"
        };
        if self.accused.get(&(s.job, s.lot)) == Some(&false) {
            self.set(s.job, s.lot, state);
        } else {
            self.set(s.job, s.lot, "slashed");
        }
    }

    fn set(&mut self, job: u64, lot: u32, state: &'static str) {
        if let Some(l) = self.lots.get_mut(&(job, lot)) {
            l.state = state;
            self.bars.show(l);
        }
    }

    fn name(&self, a: &idlegrid_primitives::AccountId) -> String {
        self.names.get(a).cloned().unwrap_or_else(|| a.to_string())
    }

    /// A job closed: post again every chunk still without a verified output.
    fn closed(&mut self, job: u64, done: &mpsc::Sender<Completion<Self>>) {
        self.open.remove(&job);
        if !self.open.is_empty() || self.preparing || self.verified() {
            return;
        }
        let missing: Vec<usize> = (0..self.chunks.len())
            .filter(|&c| self.outputs[c].is_none())
            .collect();
        if self.retries_left == 0 {
            self.fail(format!(
                "{} subtasks unverified and no retries left",
                missing.len()
            ));
            return;
        }
        self.retries_left -= 1;
        self.log.line(format_args!(
            "re-posting {} subtasks as a new job",
            missing.len()
        ));
        self.post(missing, done);
    }
}

impl Role for ClientRole {
    type M = ClientNode;

    fn machine(&mut self) -> &mut ClientNode {
        &mut self.node
    }

    fn on_event(
        &mut self,
        ev: ClientEvent,
        _now: Timestamp,
        done: &mpsc::Sender<Completion<Self>>,
    ) {
        match ev {
            ClientEvent::PlanFailed { job, lot, error } => {
                self.fail(format!(
                    "job {job} lot {lot} cannot be planned: {error} (are some input chunks identical?)"
                ));
            }
            ClientEvent::Planned {
                job,
                lot,
                provider,
                price,
                traps,
                slots,
                ..
            } => {
                let who = self.name(&provider);
                self.log.line(format_args!(
                    "job {job} lot {lot}: matched with {who} at {price}/s, {traps} traps among {slots} subtasks"
                ));
                self.summary.traps += traps;
                if let Some(l) = self.lots.get_mut(&(job, lot)) {
                    l.provider = Some(who);
                    l.traps = traps;
                }
                self.set(job, lot, "running");
            }
            ClientEvent::Results {
                job, lot, accused, ..
            } => {
                let bad = !accused.is_empty();
                self.accused.insert((job, lot), bad);
                if bad {
                    self.summary.accused_lots += 1;
                    self.log.line(format_args!(
                        "job {job} lot {lot}: {} traps failed, provider accused",
                        accused.len()
                    ));
                    self.set(job, lot, "accused");
                } else {
                    self.set(job, lot, "verified");
                }
            }
            ClientEvent::Outputs { job, lot, outputs } => self.on_outputs(job, lot, outputs),
            ClientEvent::Settled(s) => self.on_settled(&s),
            ClientEvent::Unplanned { job, lot, bond, .. } => {
                self.summary.lapsed_lots += 1;
                self.set(job, lot, "lapsed");
                self.log.line(format_args!(
                    "job {job} lot {lot}: no plan reached the ledger by its deadline; the lot lapsed, its bond of {bond} burned"
                ));
            }
            ClientEvent::Lapsed { job, lots } => {
                self.summary.lapsed_lots += lots;
                self.log
                    .line(format_args!("job {job}: {lots} lots lapsed unmatched"));
            }
            ClientEvent::JobClosed { job, refunded } => {
                self.summary.refunded += refunded.get();
                self.log
                    .line(format_args!("job {job} closed, {refunded} refunded"));
                self.closed(job, done);
            }
            ClientEvent::Rejected { tx, reason } => match *tx {
                MarketTx::PostJob(r) => {
                    self.open.remove(&r.job);
                    self.fail(format!(
                        "the ledger refused job {}: {}",
                        r.job, reason.detail
                    ));
                }
                tx => self
                    .log
                    .line(format_args!("transaction rejected: {reason:?} ({tx:?})")),
            },
            ClientEvent::Ignored { from, reason } => {
                self.log
                    .line(format_args!("ignored a message from {from}: {reason}"));
            }
            _ => {}
        }
    }

    fn status(&self) -> serde_json::Value {
        let done = self.outputs.iter().filter(|o| o.is_some()).count();
        serde_json::json!({
            "id": self.summary.id,
            "subtasks": self.chunks.len(),
            "verified_subtasks": done,
            "lots": self.lots.values().collect::<Vec<_>>(),
            "summary": self.summary,
            "finished": self.finished(),
            "error": self.failed,
        })
    }

    fn finished(&self) -> bool {
        self.failed.is_some() || (self.verified() && self.open.is_empty() && !self.preparing)
    }
}

/// Submits a job with the client of `cfg` and waits for it.
pub async fn submit(cfg: &Loaded, opts: SubmitOptions) -> Result<Summary, CliError> {
    if cfg.me.role != NodeRole::Client {
        return Err(CliError::Invalid(format!(
            "{} is a {}, not a client",
            cfg.me.name, cfg.me.role
        )));
    }
    let program = std::fs::read(&opts.script).map_err(|e| CliError::io(&opts.script, e))?;
    let input = std::fs::read(&opts.inputs).map_err(|e| CliError::io(&opts.inputs, e))?;
    let chunks = split_lines(&input, opts.split.max(1));
    if chunks.is_empty() {
        return Err(CliError::Invalid(format!(
            "{}: no input records",
            opts.inputs.display()
        )));
    }
    std::fs::create_dir_all(&cfg.data_dir).map_err(|e| CliError::io(&cfg.data_dir, e))?;
    let clock = Clock::since_unix_micros(cfg.network.genesis_unix_micros);
    let bars = LotBars::new();
    let log = Log::new(&cfg.me.name, clock).above(bars.multi.clone());
    let exec = Arc::new(ProcessExecutor::default());
    let requires = crate::environment::script_requires(&*exec, &program, &opts.requires).await?;
    if !requires.is_empty() {
        log.line(format_args!("the job needs providers with: {requires}"));
    }
    let pools = Pools::default();
    let index = cfg
        .network
        .with_role(NodeRole::Client)
        .position(|m| m.name == cfg.me.name)
        .unwrap_or(0);
    let policy = TrapPolicy {
        cost_per_subtask: Amount::new(250),
        stake: Amount::new(cfg.network.market.stake_per_slot.into()),
        price_to_pay_divisor: 20,
    };
    let seed = crate::runtime::secret_seed();
    let node = ClientNode::new(
        cfg.network.light_setup(&cfg.key, index),
        policy,
        Box::new(pools.clone()),
        seed,
    );
    let names = cfg
        .network
        .members
        .iter()
        .map(|m| {
            (
                crate::config::NetworkConfig::id_of(m).account(),
                m.name.clone(),
            )
        })
        .collect();
    let mut role = ClientRole {
        node,
        log: log.clone(),
        program,
        outputs: vec![None; chunks.len()],
        chunks,
        posted: BTreeMap::new(),
        open: BTreeSet::new(),
        lots: BTreeMap::new(),
        bars,
        accused: BTreeMap::new(),
        names,
        summary: Summary::default(),
        retries_left: opts.retries,
        pools,
        seed,
        exec,
        failed: None,
        preparing: false,
        requires,
        opts: opts.clone(),
    };
    let net = bind(cfg).await?;
    let (tx, mut rx) = mpsc::channel(4);
    let all: Vec<usize> = (0..role.chunks.len()).collect();
    role.post(all, &tx);
    // The first completion (traps answered) is applied inside `drive`.
    let first = rx.recv().await;
    if let Some(c) = first {
        c(&mut role, clock.now());
    }
    if let Err(e) = reach_validators(&net, cfg, REACH_WITHIN).await {
        net.shutdown().await;
        return Err(e);
    }
    let timeout = tokio::time::sleep(std::time::Duration::from_secs(opts.timeout_secs));
    let status = status_path(&cfg.data_dir, role.summary.id);
    if let Some(dir) = status.parent() {
        std::fs::create_dir_all(dir).map_err(|e| CliError::io(dir, e))?;
    }
    log.line(format_args!(
        "submission {} (see `idlegrid job status {}`)",
        role.summary.id, role.summary.id
    ));
    let r = drive(&mut role, &net, clock, Some(&status), async {
        tokio::select! {
            () = timeout => {}
            () = crate::runtime::shutdown_signal() => {}
        }
    })
    .await;
    net.shutdown().await;
    r?;
    Ok(final_summary(&role))
}

/// What a finished (or timed-out) submission reports: its outputs, and
/// why it is not verified if it is not.
fn final_summary(role: &ClientRole) -> Summary {
    let mut summary = role.summary.clone();
    summary.verified = role.verified();
    summary.error = role
        .failed
        .clone()
        .or_else(|| (!summary.verified).then(|| "timed out".to_string()));
    summary.output = role.outputs.iter().flatten().flatten().copied().collect();
    let failed: Vec<String> = role
        .outputs
        .iter()
        .enumerate()
        .filter_map(|(i, o)| Some(format!("subtask {i}: {}", failure_of(o.as_ref()?)?)))
        .collect();
    if !failed.is_empty() {
        summary.verified = false;
        summary.error = Some(format!(
            "the script failed on {} subtasks (verified: every provider saw the same failure):\n{}",
            failed.len(),
            failed.join("\n")
        ));
    }
    summary
}

/// The status file of submission `id` in a client's data dir.
pub fn status_path(data_dir: &Path, id: u64) -> PathBuf {
    data_dir.join("jobs").join(format!("{id}.json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use idlegrid_primitives::Seed;

    #[test]
    fn trap_inputs_never_repeat_a_chunk_or_each_other() {
        let records: Vec<&[u8]> = vec![b"a\n", b"b\n", b"c\n", b"d\n"];
        let real: Vec<&[u8]> = vec![b"a\nb\n", b"c\nd\n"];
        for s in 0..200 {
            let mut rng = Seed::from_u64(s).rng();
            let t = distinct_traps(&records, 2, 8, real.iter().copied(), &mut rng);
            assert_eq!(t.len(), 8, "16 orderings of 2 from 4 leave room for 8");
            let mut all: Vec<&[u8]> = t.iter().map(Vec::as_slice).chain(real.clone()).collect();
            all.sort_unstable();
            all.dedup();
            assert_eq!(all.len(), 10, "seed {s}: {t:?}");
        }
        // One record, one chunk: no trap can differ from it.
        let mut rng = Seed::from_u64(1).rng();
        let one: Vec<&[u8]> = vec![b"x\n"];
        assert!(distinct_traps(&one, 1, 4, one.iter().copied(), &mut rng).is_empty());
    }
}
