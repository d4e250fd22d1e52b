//! `local_cluster`: a committee of reference validators ([`ValidatorNode`]:
//! consensus, ledger and marketplace, from `idlegrid-node`) over real TCP
//! on 127.0.0.1, committing clients' ledger transfers end to end.
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
//! 4. **consensus** — each validator is a sans-IO [`ValidatorNode`] driven
//!    by the transport's [`Runner`] (one future per validator on a
//!    two-thread tokio runtime); the node applies every committed sub-DAG
//!    to its own ledger replica (the node's one commit → batch rule) and
//!    reports it ([`ValidatorEvent::Applied`]);
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
use idlegrid_dag_ledger::consensus::{Committee, ConsensusConfig, check_prefix_consistency};
use idlegrid_dag_ledger::ledger::{
    ChainId, Genesis, Ledger, Nonce, Params, SignedTransaction, Transaction, TxKind, check_all,
};
use idlegrid_market::KDouble;
use idlegrid_node::market::MarketRules;
use idlegrid_node::validator::{ValidatorEvent, ValidatorNode, ValidatorSetup};
use idlegrid_primitives::{AccountId, Amount, Digest, Duration, Keypair, NodeId, Seed};
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

/// The validators' setup: the plan's genesis and marketplace rules (the
/// marketplace stays idle: nobody offers or bids).
fn setup(genesis: Genesis, validators: &[NodeId]) -> Result<ValidatorSetup, Box<dyn Error>> {
    Ok(ValidatorSetup {
        ledger: Ledger::new(genesis)?,
        rules: MarketRules {
            stake_per_slot: Amount::new(1_000),
            slash_to_client_bps: 5_000,
            stage_deadline: Duration::from_secs(15),
            clearing_period: Duration::from_secs(1),
            committee_size: 3,
            referees: validators.to_vec(),
            book: Default::default(),
            reputation_epoch_secs: 10,
            global_trust: None,
        },
        consensus: ConsensusConfig::default(),
        mechanism: || Box::new(KDouble::new(5_000).expect("k = 0.5 is valid")),
        epoch_secs: 1,
    })
}

/// What one validator reported of its commits.
#[derive(Default)]
struct Replica {
    /// `(commit digest, state digest after applying it)` per commit.
    commits: Vec<(Digest, Digest)>,
    applied: usize,
    rejected: usize,
}

impl Replica {
    /// Records one applied commit; returns whether it carried transfers.
    fn record(&mut self, e: &ValidatorEvent) -> Option<(u64, Digest, Digest, u32, u32)> {
        let ValidatorEvent::Applied {
            index,
            commit,
            digest,
            applied,
            rejected,
            ..
        } = e
        else {
            return None;
        };
        assert_eq!(self.commits.len() as u64, *index, "commits arrive in order");
        self.commits.push((*commit, *digest));
        self.applied += *applied as usize;
        self.rejected += *rejected as usize;
        Some((*index, *commit, *digest, *applied, *rejected))
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
    let ids: Vec<NodeId> = keys.iter().map(Keypair::node_id).collect();
    let committee = Committee::equal(ids.iter().copied())?;
    let setup = setup(plan.genesis.clone(), &ids)?;
    let mut validators = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let seed = root.derive_indexed("consensus", i as u64);
            ValidatorNode::new(k.clone(), committee.clone(), &setup, seed, false)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut queued = vec![0usize; opts.validators];
    for (v, tx) in &plan.transfers {
        validators[*v].submit(tx)?;
        queued[*v] += 1;
    }
    for (i, q) in queued.iter().enumerate() {
        say!(opts, "validator {i}: {q} transfers in its mempool");
    }
    let mut replicas: Vec<Replica> = (0..opts.validators).map(|_| Replica::default()).collect();

    say!(
        opts,
        "== consensus (commits carrying transfers; empty ones are counted)"
    );
    let outcome = drive(
        opts,
        validators,
        (&transports, &committee),
        &mut replicas,
        plan.transfers.len(),
    )
    .await;
    for t in &transports {
        t.shutdown().await;
    }
    let validators = outcome?;

    say!(opts, "== agreement");
    let ledgers: Vec<&Ledger> = validators.iter().map(ValidatorNode::ledger).collect();
    Ok(agreement(
        opts,
        &transports,
        connected,
        (&replicas, &ledgers),
        &plan,
    ))
}

/// Runs one [`Runner`] per validator until every replica has applied or
/// rejected every transfer, then stops them all and returns the nodes.
async fn drive(
    opts: &Options,
    validators: Vec<ValidatorNode>,
    (transports, committee): (&[Arc<TcpTransport>], &Committee),
    replicas: &mut [Replica],
    transfers: usize,
) -> Result<Vec<ValidatorNode>, Box<dyn Error>> {
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
                    // This validator's turn to audit a commit: small state, inline.
                    if let ValidatorEvent::Audit(a) = &e {
                        if let Err(v) = a.run() {
                            eprintln!("validator {i}: commit {} failed its audit: {v}", a.index());
                        }
                    }
                    let Some((index, commit, state, applied, rejected)) = replica.record(&e) else {
                        return;
                    };
                    let ValidatorEvent::Applied {
                        leader,
                        transactions,
                        ..
                    } = e
                    else {
                        return;
                    };
                    if verbose && transactions > 0 {
                        let leader_node = committee.node(leader.author).map(|n| n.short());
                        println!(
                            "validator {i}: commit #{index} leader {} round {}: {transactions} \
                             transfers ({applied} applied, {rejected} rejected), digest {}, \
                             state {}",
                            leader_node.unwrap_or_default(),
                            leader.round,
                            commit.short(),
                            state.short(),
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
    let mut nodes = Vec::with_capacity(stopped.len());
    for s in stopped {
        if !matches!(s.reason, idlegrid_transport::StopReason::Shutdown) {
            return Err(format!("a runner stopped early: {:?}", s.reason).into());
        }
        nodes.push(s.machine);
    }
    Ok(nodes)
}

/// Compares the replicas and prints the verdict.
fn agreement(
    opts: &Options,
    transports: &[Arc<TcpTransport>],
    connected: Vec<usize>,
    (replicas, ledgers): (&[Replica], &[&Ledger]),
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
    let balances_as_expected = ledgers.iter().all(|l| {
        check_all(l).is_ok()
            && plan
                .expected
                .iter()
                .all(|(who, amount)| l.balance(who) == *amount)
    });
    let nodes: Vec<NodeReport> = replicas
        .iter()
        .zip(ledgers)
        .zip(transports)
        .zip(connected)
        .map(|(((r, l), t), connected_peers)| NodeReport {
            node: t.local_id(),
            addr: t.local_addr(),
            connected_peers,
            handshakes_ok: t.stats().handshakes_ok,
            commits: r.commits.len(),
            applied: r.applied,
            rejected: r.rejected,
            state_digest: l.state_digest(),
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
