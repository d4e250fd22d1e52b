//! `idlegrid`: run the marketplace for real. See the crate docs of
//! `idlegrid_cli` and the README's "Run a real network on your machine".

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use idlegrid_cli::config::{ConsensusSettings, Loaded, OfferFile};
use idlegrid_cli::job::{SubmitOptions, status_path, submit};
use idlegrid_cli::testnet::{self, InitOptions};
use idlegrid_cli::{CliError, account, runtime};
use idlegrid_dag_ledger::ledger::TxKind;
use idlegrid_primitives::Amount;

/// Prints a line on standard output; a closed pipe (`| head`) is not an
/// error worth a panic.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

#[derive(Parser)]
#[command(
    name = "idlegrid",
    version,
    about = "Rent out idle computers, or rent them: idlegrid nodes for real"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// A network of node processes on this machine.
    #[command(subcommand)]
    Testnet(TestnetCmd),
    /// One node.
    #[command(subcommand)]
    Node(NodeCmd),
    /// Jobs: submit a Python script, follow it.
    #[command(subcommand)]
    Job(JobCmd),
    /// Accounts.
    #[command(subcommand)]
    Account(AccountCmd),
    /// A running provider.
    #[command(subcommand)]
    Provider(ProviderCmd),
    /// Keys.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Committed tx/s and commit latency of validator processes on this
    /// machine under a fixed offered load of signed transfers.
    Bench(BenchArgs),
}

#[derive(Args)]
struct BenchArgs {
    /// Validator processes (each run starts a fresh testnet).
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Offered loads, total transfers per second, comma-separated: one run each.
    #[arg(long, value_delimiter = ',', default_value = "200")]
    load: Vec<f64>,
    /// Light clients offering the load, each with its own account and
    /// its own window of transfers in flight (default: one per validator).
    #[arg(long)]
    clients: Option<usize>,
    /// Put each run's testnet (the validators' redb stores) on /dev/shm,
    /// where an fsync costs nothing, as in the simulator.
    #[arg(long)]
    tmpfs: bool,
    /// Measured seconds of each run (after a warm-up of up to 2 s).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// WAN emulation between validators: `none` (loopback) or `world6`
    /// (the simulator's six-region matrix, validators placed round-robin).
    #[arg(long, default_value = "none")]
    latency: String,
    /// Least time between a validator's rounds, ms (0: propose as soon as
    /// a round is ready, as the simulator's validators do). Default: 50,
    /// as a testnet's; 0 with --compare-sim, which refuses any other value.
    #[arg(long)]
    min_round_delay_ms: Option<u64>,
    /// Also run the simulator's consensus scenario with the same size,
    /// matrix, load and transaction size, and print both.
    #[arg(long)]
    compare_sim: bool,
    /// The `idlegrid-sim` binary (default: beside this one).
    #[arg(long)]
    sim_bin: Option<PathBuf>,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Keep each run's testnet (configs, logs, stores) under this dir.
    #[arg(long)]
    keep_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum KeyCmd {
    /// Writes a new secret key to FILE (never over an existing file) and
    /// prints its node id: the account others pay, usable with
    /// `--network FILE --key FILE` as a guest of any network.
    New {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum ProviderCmd {
    /// Changes a running provider's offer: price, slots and advertised features.
    Offer {
        /// The provider's config file.
        #[arg(long)]
        config: PathBuf,
        /// Asking price per compute-second of its next sealed asks.
        #[arg(long)]
        price: u64,
        /// Lots it runs at once (1..=16).
        #[arg(long)]
        capacity: u32,
        /// Features to advertise instead of the current ones, comma-separated.
        #[arg(long, value_delimiter = ',')]
        features: Option<Vec<String>>,
        /// Seconds to wait for the ledger to list the offer.
        #[arg(long, default_value_t = 20)]
        wait: u64,
    },
}

#[derive(Subcommand)]
enum TestnetCmd {
    /// Keys, genesis and one config per node.
    Init {
        /// The testnet dir (must not hold a network.toml yet).
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 4)]
        validators: usize,
        #[arg(long, default_value_t = 3)]
        providers: usize,
        #[arg(long, default_value_t = 1)]
        clients: usize,
        /// Hosts the nodes are dealt over, comma-separated (default 127.0.0.1).
        #[arg(long, value_delimiter = ',')]
        hosts: Vec<IpAddr>,
        /// TESTING ONLY: provider INDEX cheats on PPM parts per million of its subtasks
        /// (INDEX:PPM, or INDEX:PPM:deny for one that disputes when caught).
        #[arg(long = "testing-cheater", value_parser = parse_cheater)]
        cheaters: Vec<testnet::Cheater>,
        /// Rounds of the DAG validators keep; one down longer catches up by
        /// state sync (rounds are paced at 50 ms).
        #[arg(long, default_value_t = 1_000)]
        dag_window: u64,
        /// A ledger checkpoint (what state sync serves) every this many commits.
        #[arg(long, default_value_t = 200)]
        checkpoint_every: u64,
    },
    /// Starts every validator and provider as its own process.
    Up {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Stops every node of the dir.
    Down {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Who is up, commit index, balances.
    Status {
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum NodeCmd {
    /// Runs one node until SIGTERM.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Args)]
struct ClientArgs {
    /// A testnet dir (its first client's config).
    #[arg(long, conflicts_with_all = ["config", "network"])]
    dir: Option<PathBuf>,
    /// A client config file.
    #[arg(long, conflicts_with = "network")]
    config: Option<PathBuf>,
    /// A network file, to act as a guest that is not a member of it (with
    /// --key: e.g. from `idlegrid key new`).
    #[arg(long, requires = "key")]
    network: Option<PathBuf>,
    /// The guest's key file.
    #[arg(long, requires = "network")]
    key: Option<PathBuf>,
}

impl ClientArgs {
    fn load(&self) -> Result<Loaded, CliError> {
        match (&self.dir, &self.config, &self.network, &self.key) {
            (_, _, Some(n), Some(k)) => Loaded::guest(n, k),
            (_, Some(c), _, _) => Loaded::load(c),
            (Some(d), None, _, _) => Loaded::load(&d.join("client-0").join("node.toml")),
            _ => Err(CliError::Invalid(
                "give --dir DIR, --config FILE, or --network FILE --key FILE".into(),
            )),
        }
    }
}

#[derive(Subcommand)]
enum JobCmd {
    /// Runs SCRIPT over the input records on providers; waits; writes the merged output.
    Submit {
        /// A Python script reading records on stdin, printing results on stdout.
        script: PathBuf,
        /// The input records, one per line.
        #[arg(long)]
        inputs: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
        /// Where to write the merged output (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Subtasks the records are cut into.
        #[arg(long, default_value_t = 10)]
        split: usize,
        /// Lots (providers) the subtasks are spread over.
        #[arg(long, default_value_t = 3)]
        lots: u32,
        /// Highest price per compute-second.
        #[arg(long, default_value_t = 10_000)]
        max_price: u128,
        /// Seconds until unmatched lots lapse.
        #[arg(long, default_value_t = 20)]
        deadline: u64,
        /// Times failed lots are posted again.
        #[arg(long, default_value_t = 3)]
        retries: u32,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Wait for the result (always on; kept for scripts that pass it).
        #[arg(long)]
        wait: bool,
        /// Features providers must have beyond the script's own imports
        /// (which are read from the script), comma-separated.
        #[arg(long, value_delimiter = ',')]
        requires: Vec<String>,
    },
    /// Progress of a submission.
    Status {
        id: u64,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Subcommand)]
enum AccountCmd {
    /// The client's holdings, as f + 1 validators report them.
    Balance {
        #[command(flatten)]
        client: ClientArgs,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 20)]
        timeout: u64,
    },
    /// Pays AMOUNT to a member (by name) or a node id.
    Pay {
        #[arg(long)]
        to: String,
        #[arg(long)]
        amount: u128,
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long, default_value_t = 20)]
        timeout: u64,
    },
    /// Bonds AMOUNT of the balance as stake.
    Bond {
        #[arg(long)]
        amount: u128,
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long, default_value_t = 20)]
        timeout: u64,
    },
}

fn parse_cheater(s: &str) -> Result<testnet::Cheater, String> {
    let mut parts = s.split(':');
    let (Some(i), Some(p)) = (parts.next(), parts.next()) else {
        return Err("expected INDEX:PPM or INDEX:PPM:deny".into());
    };
    let provider = i.parse().map_err(|_| format!("bad provider index {i:?}"))?;
    let ppm: u32 = p.parse().map_err(|_| format!("bad ppm {p:?}"))?;
    if ppm > 1_000_000 {
        return Err("ppm is at most 1000000".into());
    }
    let denies = match parts.next() {
        None => false,
        Some("deny") => true,
        Some(x) => return Err(format!("unknown cheater mode {x:?} (only \"deny\")")),
    };
    Ok(testnet::Cheater {
        provider,
        ppm,
        denies,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn tokio() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Invalid(format!("tokio runtime: {e}")))
}

fn run(cmd: Cmd) -> Result<ExitCode, CliError> {
    match cmd {
        Cmd::Testnet(t) => testnet_cmd(t),
        Cmd::Node(NodeCmd::Run { config }) => {
            let cfg = Loaded::load(&config)?;
            tokio()?.block_on(runtime::run_node(&cfg))?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Job(j) => job_cmd(j),
        Cmd::Account(a) => account_cmd(a),
        Cmd::Bench(b) => bench_cmd(b),
        Cmd::Key(KeyCmd::New { out }) => {
            let id = idlegrid_cli::config::new_key(&out)?;
            say!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Provider(ProviderCmd::Offer {
            config,
            price,
            capacity,
            features,
            wait,
        }) => {
            let cfg = Loaded::load(&config)?;
            let offer = OfferFile {
                price,
                capacity,
                features,
            };
            let listed = testnet::change_offer(&cfg, &offer, std::time::Duration::from_secs(wait))?;
            say!(
                "{}: {} slots at {}/s with {}",
                cfg.me.name,
                listed.capacity,
                listed.price,
                listed.features.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn testnet_cmd(t: TestnetCmd) -> Result<ExitCode, CliError> {
    match t {
        TestnetCmd::Init {
            dir,
            validators,
            providers,
            clients,
            hosts,
            cheaters,
            dag_window,
            checkpoint_every,
        } => {
            let mut opts = InitOptions {
                validators,
                providers,
                clients,
                cheaters,
                consensus: ConsensusSettings {
                    dag_window_rounds: dag_window,
                    checkpoint_every,
                    ..ConsensusSettings::default()
                },
                ..InitOptions::default()
            };
            if !hosts.is_empty() {
                opts.hosts = hosts;
            }
            let net = testnet::init(&dir, &opts)?;
            for m in &net.members {
                say!("{:<12} {:<9} {}", m.name, m.role.to_string(), m.addr);
            }
            say!(
                "testnet in {}; start it with `idlegrid testnet up --dir {}`",
                dir.display(),
                dir.display()
            );
        }
        TestnetCmd::Up { dir } => {
            let exe =
                std::env::current_exe().map_err(|e| CliError::io(Path::new("idlegrid"), e))?;
            for (name, pid) in testnet::up(&dir, &exe)? {
                say!("{name:<12} started, pid {pid}");
            }
        }
        TestnetCmd::Down { dir } => {
            let stopped = testnet::down(&dir, std::time::Duration::from_secs(5))?;
            say!("stopped {} nodes", stopped.len());
        }
        TestnetCmd::Status { dir } => {
            for n in testnet::status(&dir)? {
                let s = n.status.unwrap_or_default();
                let field = |k: &str| {
                    s.get(k)
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "-".into())
                };
                let what = match n.role {
                    idlegrid_cli::config::Role::Validator => format!("commit {}", field("commit")),
                    _ => format!(
                        "lots settled {}, earned {}, slashed {}",
                        field("lots_settled"),
                        field("earned"),
                        field("slashed")
                    ),
                };
                let up = n
                    .pid
                    .map_or("down".to_string(), |p| format!("up (pid {p})"));
                say!("{:<12} {:<9} {:<16} {what}", n.name, n.role.to_string(), up);
            }
            return balances(&dir);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn job_cmd(j: JobCmd) -> Result<ExitCode, CliError> {
    match j {
        JobCmd::Submit {
            script,
            inputs,
            client,
            out,
            split,
            lots,
            max_price,
            deadline,
            retries,
            timeout,
            wait: _,
            requires,
        } => {
            let cfg = client.load()?;
            let opts = SubmitOptions {
                script,
                inputs,
                split,
                lots,
                max_price,
                deadline_secs: deadline,
                retries,
                timeout_secs: timeout,
                requires,
            };
            let s = tokio()?.block_on(submit(&cfg, opts))?;
            match &out {
                Some(p) => std::fs::write(p, &s.output).map_err(|e| CliError::io(p, e))?,
                None => {
                    use std::io::Write;
                    let _ = std::io::stdout().write_all(&s.output);
                }
            }
            eprintln!(
                "submission {}: {} — {} jobs, providers [{}], paid {}, traps {}, accused lots {}, slashed {}, lapsed lots {}, refunded {}",
                s.id,
                if s.verified {
                    "verified"
                } else {
                    "NOT verified"
                },
                s.jobs,
                s.providers.join(", "),
                s.paid,
                s.traps,
                s.accused_lots,
                s.slashed,
                s.lapsed_lots,
                s.refunded
            );
            if let Some(e) = &s.error {
                eprintln!("error: {e}");
            }
            Ok(if s.verified {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        JobCmd::Status { id, client } => {
            let cfg = client.load()?;
            let path = status_path(&cfg.data_dir, id);
            let text = std::fs::read_to_string(&path).map_err(|e| CliError::io(&path, e))?;
            say!("{text}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn account_cmd(a: AccountCmd) -> Result<ExitCode, CliError> {
    let (client, timeout, req) = match a {
        AccountCmd::Balance { client, timeout } => (client, timeout, None),
        AccountCmd::Pay {
            to,
            amount,
            client,
            timeout,
        } => (client, timeout, Some((Some(to), amount))),
        AccountCmd::Bond {
            amount,
            client,
            timeout,
        } => (client, timeout, Some((None, amount))),
    };
    let cfg = client.load()?;
    let req = match req {
        None => account::Request::Balance,
        Some((Some(to), amount)) => account::Request::Submit(TxKind::Transfer {
            to: account::recipient(&cfg, &to)?,
            amount: Amount::new(amount),
        }),
        Some((None, amount)) => account::Request::Submit(TxKind::Bond {
            amount: Amount::new(amount),
        }),
    };
    let timeout = std::time::Duration::from_secs(timeout);
    let h = tokio()?.block_on(account::run(&cfg, req, timeout))?;
    say!(
        "{}: balance {}, bonded {} ({} free), unbonding {} ({} withdrawable)",
        cfg.me.name,
        h.balance,
        h.bonded,
        h.free_stake,
        h.unbonding,
        h.withdrawable
    );
    Ok(ExitCode::SUCCESS)
}

/// Every account, as the most advanced running validator last reported it.
fn balances(dir: &Path) -> Result<ExitCode, CliError> {
    let best = testnet::status(dir)?
        .into_iter()
        .filter(|n| n.role == idlegrid_cli::config::Role::Validator)
        .filter_map(|n| n.status)
        .max_by_key(|s| {
            s.get("commit")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0)
        })
        .ok_or_else(|| {
            CliError::Invalid(format!(
                "no validator of {} has reported yet",
                dir.display()
            ))
        })?;
    say!("as of commit {}", best["commit"]);
    if let Some(accounts) = best["accounts"].as_object() {
        for (name, a) in accounts {
            say!(
                "{name:<12} balance {:>14} bonded {:>10} locked {:>10}",
                a["balance"].as_str().unwrap_or("-"),
                a["bonded"].as_str().unwrap_or("-"),
                a["locked"].as_str().unwrap_or("-")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_cmd(b: BenchArgs) -> Result<ExitCode, CliError> {
    use idlegrid_cli::bench::{self, BenchOptions, Latency, relay::LatencyMatrix};
    let latency = match b.latency.as_str() {
        "none" => Latency::None,
        "world6" => Latency::Relay(LatencyMatrix::world6()),
        other => {
            return Err(CliError::Invalid(format!(
                "--latency {other:?}: expected `none` or `world6`"
            )));
        }
    };
    let opts = BenchOptions {
        validators: b.validators,
        loads: b.load,
        clients: b.clients.unwrap_or(b.validators),
        tmpfs: b.tmpfs,
        duration: std::time::Duration::from_secs(b.duration),
        latency,
        min_round_delay_ms: b
            .min_round_delay_ms
            .unwrap_or(if b.compare_sim { 0 } else { 50 }),
        keep_dir: b.keep_dir,
    };
    bench::cmd::check_compare(&opts, b.compare_sim)?;
    let sim = b
        .compare_sim
        .then(|| bench::compare::sim_binary(b.sim_bin.as_deref()))
        .transpose()?;
    let exe = std::env::current_exe().map_err(|e| CliError::io(Path::new("idlegrid"), e))?;
    let results = tokio()?.block_on(bench::cmd::execute(&opts, &exe, sim.as_deref()))?;
    if let Some(path) = &b.json {
        let text =
            serde_json::to_string_pretty(&results).map_err(|e| CliError::Invalid(e.to_string()))?;
        std::fs::write(path, text).map_err(|e| CliError::io(path, e))?;
        say!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
