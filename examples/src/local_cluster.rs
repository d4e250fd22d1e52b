//! `local_cluster`: a committee of dag-ledger validators over real TCP on
//! 127.0.0.1, committing clients' ledger transfers end to end.
//!
//! 1. **listen** — every validator binds an ephemeral port on loopback; the
//!    addresses make up the [`AddressBook`];
//! 2. **handshake** — each validator starts a [`TcpTransport`], which dials
//!    the peers with larger ids and accepts the others; every connection is
//!    mutually authenticated (each side signs the other's nonce). The
//!    example waits until every validator is connected to every peer;
//! 3. **submit** — clients sign ledger transfers ([`SignedTransaction`],
//!    consecutive nonces) and hand each to one validator's mempool
//!    (client `c` talks to validator `c mod n`, so one client's
//!    transactions keep their nonce order inside that validator's blocks);
//! 4. **consensus** — each validator is a sans-IO [`Validator`] driven by the
//!    transport's [`Runner`] (one future per validator on a two-thread tokio
//!    runtime); every committed sub-DAG is applied at once to that
//!    validator's own [`Ledger`] replica;
//! 5. **agreement** — the run stops by itself once every replica has applied
//!    every transfer; the commit digests must be prefixes of one another,
//!    the ledger state digests must be equal after the common prefix, and
//!    every replica must hold the balances the transfer plan predicts.
//!
//! Time only bounds the run ([`Options::timeout`] turns a hang into an
//! error); nothing printed depends on timing except how many (empty)
//! commits happen before the stop. Keys and transfers come from the seed.

use std::collections::BTreeMap;
use std::error::Error;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use futures::future::join_all;
use idlegrid_dag_ledger::consensus::{
    CommittedSubDag, Committee, ConsensusConfig, ConsensusEvent, Validator,
    check_prefix_consistency,
};
use idlegrid_dag_ledger::ledger::{
    BatchContext, ChainId, Genesis, Host, Ledger, NoApps, Nonce, Params, SignedTransaction,
    Transaction, TxKind, check_all,
};
use idlegrid_primitives::{AccountId, Amount, Digest, Epoch, Keypair, NodeId, Seed};
use idlegrid_transport::{AddressBook, PostcardCodec, Runner, TcpConfig, TcpTransport, Transport};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Validators in the committee (equal stake; at least 4 to tolerate a fault).
    pub validators: usize,
    /// Clients sending transfers.
    pub clients: usize,
    /// Transfers signed by each client.
    pub transfers_per_client: usize,
    /// Root seed of keys and transfer amounts.
    pub seed: u64,
    /// Failure guard for connecting and for the whole run.
    pub timeout: std::time::Duration,
    /// Print every step.
    pub verbose: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            validators: 4,
            clients: 4,
            transfers_per_client: 3,
            seed: 13,
            timeout: std::time::Duration::from_secs(60),
            verbose: true,
        }
    }
}

/// One validator at the end of the run.
#[derive(Debug, Clone)]
pub struct NodeReport {
    /// Its identity.
    pub node: NodeId,
    /// Where it listened.
    pub addr: SocketAddr,
    /// Peers it had authenticated connections to before consensus started.
    pub connected_peers: usize,
    /// Handshakes its transport completed.
    pub handshakes_ok: u64,
    /// Sub-DAGs it committed (most carry no transaction).
    pub commits: usize,
    /// Transfers its ledger applied.
    pub applied: usize,
    /// Transfers its ledger rejected.
    pub rejected: usize,
    /// Its ledger's state digest after its last commit.
    pub state_digest: Digest,
}

/// What the run showed.
#[derive(Debug, Clone)]
pub struct Report {
    /// Per validator, in committee order.
    pub nodes: Vec<NodeReport>,
    /// Transfers submitted by all clients.
    pub transfers: usize,
    /// Commits every validator has (the shortest sequence).
    pub common_prefix: usize,
    /// The running commit digest at the end of the common prefix.
    pub prefix_digest: Digest,
    /// Every commit-digest sequence is a prefix of the longest.
    pub sequences_agree: bool,
    /// Every ledger replica has the same state digest after the common
    /// prefix.
    pub states_agree: bool,
    /// Every replica holds the balances the transfer plan predicts.
    pub balances_as_expected: bool,
}

macro_rules! say {
    ($o:expr, $($t:tt)*) => { if $o.verbose { println!($($t)*); } };
}

/// Runs the cluster on a two-thread tokio runtime.
pub fn run(opts: Options) -> Result<Report, Box<dyn Error>> {
    if opts.validators < 4 || opts.clients == 0 || opts.transfers_per_client == 0 {
        return Err("need at least 4 validators, 1 client and 1 transfer per client".into());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run_async(&opts))
}

/// The clients' side, fixed by the seed: genesis, signed transfers and the
/// balances they must lead to.
struct Plan {
    genesis: Genesis,
    /// `(validator, transfer)`: which mempool each transfer goes to.
    transfers: Vec<(usize, SignedTransaction)>,
    expected: BTreeMap<AccountId, Amount>,
}

const CLIENT_FUNDS: u128 = 1_000_000;
const MERCHANTS: usize = 2;

fn plan(opts: &Options, root: &Seed, validators: &[Keypair]) -> Plan {
    let clients: Vec<Keypair> = (0..opts.clients)
        .map(|c| Keypair::from_seed(&root.derive_indexed("client", c as u64)))
        .collect();
    let merchants: Vec<AccountId> = (0..MERCHANTS)
        .map(|m| Keypair::from_seed(&root.derive_indexed("merchant", m as u64)).account_id())
        .collect();
    let params = Params::default();
    let chain: ChainId = params.chain_id;
    let mut expected: BTreeMap<AccountId, Amount> = BTreeMap::new();
    let mut balances = Vec::new();
    for c in &clients {
        balances.push((c.account_id(), Amount::new(CLIENT_FUNDS)));
        expected.insert(c.account_id(), Amount::new(CLIENT_FUNDS));
    }
    for m in &merchants {
        expected.insert(*m, Amount::ZERO);
    }
    let stakes = validators
        .iter()
        .map(|v| (v.account_id(), Amount::new(100_000)))
        .collect();
    let mut transfers = Vec::new();
    for (c, key) in clients.iter().enumerate() {
        let mut nonce = Nonce::default();
        for i in 0..opts.transfers_per_client {
            let to = merchants[(c + i) % MERCHANTS];
            let amount = Amount::new(1_000 + 100 * c as u128 + 10 * i as u128);
            let tx = Transaction {
                chain,
                sender: key.account_id(),
                nonce,
                kind: TxKind::Transfer { to, amount },
            }
            .sign(key);
            nonce = nonce.checked_next().expect("a few nonces");
            let debit = expected.get_mut(&key.account_id()).expect("client");
            *debit = debit.checked_sub(amount).expect("funded");
            let credit = expected.get_mut(&to).expect("merchant");
            *credit = credit.checked_add(amount).expect("no overflow");
            transfers.push((c % validators.len(), tx));
        }
    }
    Plan {
        genesis: Genesis {
            balances,
            stakes,
            params,
        },
        transfers,
        expected,
    }
}

/// One validator's ledger replica, fed with its commits.
struct Replica {
    ledger: Ledger,
    /// `(commit digest, state digest after applying it)` per commit.
    commits: Vec<(Digest, Digest)>,
    applied: usize,
    rejected: usize,
}

impl Replica {
    /// Applies one committed sub-DAG as one ledger batch. The batch context
    /// comes from consensus only: epoch = commit index + 1, time = the
    /// commit's timestamp.
    fn apply(&mut self, c: &CommittedSubDag) -> (usize, usize) {
        let ctx = BatchContext {
            epoch: Epoch::new(c.index + 1),
            now: c.timestamp,
            beacon: c.digest,
        };
        let txs: Vec<&[u8]> = c.transactions.iter().map(|t| t.as_bytes()).collect();
        let mut apps = NoApps;
        let result = self
            .ledger
            .apply_batch(ctx, &txs, &mut Host::default_for(&mut apps))
            .expect("epochs follow commit indices, so they never go back");
        assert_eq!(
            self.commits.len() as u64,
            c.index,
            "commits arrive in order"
        );
        self.commits.push((c.digest, result.state_digest));
        self.applied += result.applied();
        self.rejected += result.rejected();
        (result.applied(), result.rejected())
    }
}

/// Binds one listener per validator on loopback and names them all.
async fn listen(
    opts: &Options,
    keys: &[Keypair],
) -> Result<(Vec<TcpListener>, AddressBook), Box<dyn Error>> {
    let mut listeners = Vec::new();
    let mut book = AddressBook::new();
    for (i, k) in keys.iter().enumerate() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = l.local_addr()?;
        say!(
            opts,
            "validator {i} ({}) listening on {addr}",
            k.node_id().short()
        );
        book.insert(k.node_id(), addr);
        listeners.push(l);
    }
    Ok((listeners, book))
}

/// Waits until every transport is connected to every peer.
async fn await_connections(
    opts: &Options,
    transports: &[Arc<TcpTransport>],
    names: &BTreeMap<NodeId, usize>,
) -> Result<(), Box<dyn Error>> {
    let all = transports.len() - 1;
    tokio::time::timeout(opts.timeout, async {
        while transports.iter().any(|t| t.connected_peers().len() < all) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .map_err(|_| "validators did not all connect in time")?;
    for (i, t) in transports.iter().enumerate() {
        let mut peers: Vec<usize> = t.connected_peers().iter().map(|p| names[p]).collect();
        peers.sort_unstable();
        say!(
            opts,
            "validator {i}: authenticated connections to {peers:?} ({} handshakes)",
            t.stats().handshakes_ok
        );
    }
    Ok(())
}

async fn run_async(opts: &Options) -> Result<Report, Box<dyn Error>> {
    let root = Seed::from_u64(opts.seed);
    let keys: Vec<Keypair> = (0..opts.validators)
        .map(|i| Keypair::from_seed(&root.derive_indexed("validator", i as u64)))
        .collect();
    let names: BTreeMap<NodeId, usize> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.node_id(), i))
        .collect();

    say!(opts, "== listen");
    let (listeners, book) = listen(opts, &keys).await?;
    say!(opts, "== handshake");
    let transports = keys
        .iter()
        .zip(listeners)
        .map(|(k, l)| {
            TcpTransport::from_listener(k.clone(), l, book.clone(), TcpConfig::default())
                .map(Arc::new)
        })
        .collect::<Result<Vec<_>, _>>()?;
    await_connections(opts, &transports, &names).await?;
    let connected: Vec<usize> = transports
        .iter()
        .map(|t| t.connected_peers().len())
        .collect();

    say!(opts, "== submit");
    let plan = plan(opts, &root, &keys);
    let committee = Committee::equal(keys.iter().map(Keypair::node_id))?;
    let mut validators = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            Validator::new(
                k.clone(),
                committee.clone(),
                ConsensusConfig::default(),
                root.derive_indexed("consensus", i as u64),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (v, tx) in &plan.transfers {
        validators[*v].submit_transaction(tx.to_bytes())?;
    }
    for (i, v) in validators.iter().enumerate() {
        say!(
            opts,
            "validator {i}: {} transfers in its mempool",
            v.stats().queued_transactions
        );
    }
    let mut replicas = (0..opts.validators)
        .map(|_| {
            Ok(Replica {
                ledger: Ledger::new(plan.genesis.clone())?,
                commits: Vec::new(),
                applied: 0,
                rejected: 0,
            })
        })
        .collect::<Result<Vec<_>, Box<dyn Error>>>()?;

    say!(
        opts,
        "== consensus (commits carrying transfers; empty ones are counted)"
    );
    let outcome = drive(
        opts,
        validators,
        &transports,
        &mut replicas,
        plan.transfers.len(),
    )
    .await;
    for t in &transports {
        t.shutdown().await;
    }
    outcome?;

    say!(opts, "== agreement");
    Ok(agreement(opts, &transports, connected, &replicas, &plan))
}

/// Runs one [`Runner`] per validator until every replica has applied or
/// rejected every transfer, then stops them all.
async fn drive(
    opts: &Options,
    validators: Vec<Validator>,
    transports: &[Arc<TcpTransport>],
    replicas: &mut [Replica],
    transfers: usize,
) -> Result<(), Box<dyn Error>> {
    let (stop_tx, stop_rx) = watch::channel(false);
    // (validator, transfers its ledger has handled so far)
    let (progress_tx, mut progress_rx) = mpsc::unbounded_channel::<(usize, usize)>();
    let verbose = opts.verbose;
    let runners = validators
        .into_iter()
        .zip(transports.iter().cloned())
        .zip(replicas.iter_mut())
        .enumerate()
        .map(|(i, ((v, t), replica))| {
            let mut stop = stop_rx.clone();
            let progress = progress_tx.clone();
            Runner::new(v, t, PostcardCodec::default()).run(
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                },
                move |e| {
                    let ConsensusEvent::Committed(c) = e else {
                        return;
                    };
                    let (applied, rejected) = replica.apply(&c);
                    if verbose && !c.transactions.is_empty() {
                        println!(
                            "validator {i}: commit #{} leader {} round {}: {} transfers \
                             ({applied} applied, {rejected} rejected), digest {}, state {}",
                            c.index,
                            c.leader_node.short(),
                            c.round,
                            c.transactions.len(),
                            c.digest.short(),
                            replica
                                .commits
                                .last()
                                .map(|(_, s)| s.short())
                                .unwrap_or_default(),
                        );
                    }
                    // The collector outlives the runners.
                    let _ = progress.send((i, replica.applied + replica.rejected));
                },
            )
        })
        .collect::<Vec<_>>();
    drop(progress_tx);
    let collect = async {
        let mut handled = vec![0; transports.len()];
        while handled.iter().any(|&h| h < transfers) {
            let Some((i, h)) = progress_rx.recv().await else {
                break;
            };
            handled[i] = h;
        }
        stop_tx.send_replace(true);
    };
    let (stopped, ()) = tokio::time::timeout(opts.timeout, async {
        tokio::join!(join_all(runners), collect)
    })
    .await
    .map_err(|_| "the validators did not all commit every transfer in time")?;
    for s in &stopped {
        if !matches!(s.reason, idlegrid_transport::StopReason::Shutdown) {
            return Err(format!("a runner stopped early: {:?}", s.reason).into());
        }
    }
    Ok(())
}

/// Compares the replicas and prints the verdict.
fn agreement(
    opts: &Options,
    transports: &[Arc<TcpTransport>],
    connected: Vec<usize>,
    replicas: &[Replica],
    plan: &Plan,
) -> Report {
    let digests: Vec<Vec<Digest>> = replicas
        .iter()
        .map(|r| r.commits.iter().map(|(d, _)| *d).collect())
        .collect();
    let sequences_agree = check_prefix_consistency(&digests).is_ok();
    let common_prefix = digests.iter().map(Vec::len).min().unwrap_or(0);
    let at_prefix = |r: &Replica| r.commits.get(common_prefix.wrapping_sub(1)).copied();
    let first = at_prefix(&replicas[0]);
    let states_agree = common_prefix > 0 && replicas.iter().all(|r| at_prefix(r) == first);
    let (prefix_digest, prefix_state) = first.unwrap_or_default();
    let balances_as_expected = replicas.iter().all(|r| {
        check_all(&r.ledger).is_ok()
            && plan
                .expected
                .iter()
                .all(|(who, amount)| r.ledger.balance(who) == *amount)
    });
    let nodes: Vec<NodeReport> = replicas
        .iter()
        .zip(transports)
        .zip(connected)
        .map(|((r, t), connected_peers)| NodeReport {
            node: t.local_id(),
            addr: t.local_addr(),
            connected_peers,
            handshakes_ok: t.stats().handshakes_ok,
            commits: r.commits.len(),
            applied: r.applied,
            rejected: r.rejected,
            state_digest: r.ledger.state_digest(),
        })
        .collect();
    for (i, n) in nodes.iter().enumerate() {
        say!(
            opts,
            "validator {i}: {} commits, {} transfers applied, {} rejected, state {}",
            n.commits,
            n.applied,
            n.rejected,
            n.state_digest.short()
        );
    }
    say!(
        opts,
        "common prefix: {common_prefix} commits, digest {}, state {}; sequences agree: \
         {sequences_agree}, states agree: {states_agree}, balances as planned: \
         {balances_as_expected}",
        prefix_digest.short(),
        prefix_state.short()
    );
    Report {
        nodes,
        transfers: plan.transfers.len(),
        common_prefix,
        prefix_digest,
        sequences_agree,
        states_agree,
        balances_as_expected,
    }
}
