//! Durable validators under crashes: the `node` crate's
//! [`ValidatorNode`]s (consensus + ledger + marketplace) with persistence
//! on, each over a simulated disk ([`SimDisk`]) that survives its crashes.
//!
//! A crash is the engine's `Fault::Crash`; the restart (`Fault::Restart`)
//! rebuilds the node from **what its disk held** (see [`crate::durable`]).
//! Chosen restarts lose the whole disk: that validator restarts with a
//! lost store and must learn its own latest block from peers before
//! proposing.
//!
//! [`CrashesObserver`] checks, as commits happen:
//! - **no honest equivocation** (every validator is honest here);
//! - **prefix consistency of state**: the ledger digest after commit `k` is
//!   the same at every validator, across restarts;
//! - **no committed transaction lost**: a validator never reports a commit
//!   index at or below one it reported before a crash (it recovered a
//!   state at least that far) and never skips one within an incarnation;
//! - **ledger invariants** (`check_all`, run in turn: conservation of
//!   supply, no negative amounts, the incremental digest);
//! - **catch-up**: a live validator is never more than `catch_up_commits`
//!   behind the highest commit once `catch_up_grace` has passed since it
//!   started — also one that lost its store or was down longer than its
//!   peers' DAG window: it catches up by **state sync** (a snapshot that
//!   f + 1 validators attest), and the state it installs must equal the
//!   state every other validator reported after that commit;
//! - **no honest peer dropped** from a state sync (every peer is honest
//!   here, so a dropped one means a bug on the serving or fetching side).

use std::collections::BTreeMap;

use idlegrid_dag_ledger::consensus::{Committee, ConsensusConfig, ConsensusEvent};
use idlegrid_dag_ledger::ledger::{Genesis, Ledger, Nonce, Params, Transaction, TxKind};
use idlegrid_market::KDouble;
use idlegrid_node::market::MarketRules;
use idlegrid_node::store::persist_step;
use idlegrid_node::validator::{SyncEvent, ValidatorEvent, ValidatorNode, ValidatorSetup};
use idlegrid_node::wire::NodeMessage;
use idlegrid_primitives::{
    AccountId, Amount, Digest, Duration, Keypair, Machine, NodeId, Seed, Timestamp, Transmit,
};

pub use crate::durable::{DiskStats, Disks, SimDisk};
use crate::durable::{Replicas, total_stats};
use crate::fault::Fault;
use crate::metrics::Metrics;
use crate::node::{NodeContext, NodeIndex};
use crate::observer::{Observer, Violation};

/// Load is submitted in batches this far apart.
const LOAD_PERIOD: Duration = Duration::from_millis(50);
/// Bound on commit digests the observer remembers.
const MAX_RECORDED_COMMITS: usize = 1 << 20;

/// Parameters of a crashes run.
#[derive(Debug, Clone)]
pub struct CrashesParams {
    /// Signed transfers each validator submits per virtual second.
    pub tx_per_second: f64,
    /// Ledger checkpoint every this many commits.
    pub checkpoint_every: u64,
    /// Probability that a crash loses (part of) the un-synced writes.
    pub lose_unsynced: f64,
    /// `(node, incarnation)`: that restart finds the disk empty.
    pub lose_store: Vec<(u32, u32)>,
    /// A live validator may be at most this many commits behind.
    pub catch_up_commits: u64,
    /// ...once it has been up this long.
    pub catch_up_grace: Duration,
    /// Consensus configuration of every validator.
    pub config: ConsensusConfig,
    /// Checks every validator's block signatures (one memo per run, see
    /// [`crate::consensus::shared_verifier`]).
    pub signatures: idlegrid_primitives::SignatureVerifier,
}

fn payer_key(i: usize) -> Keypair {
    Keypair::from_seed(&Seed::from_u64(0x5eed_0000 + i as u64))
}

fn sink() -> AccountId {
    Keypair::from_seed(&Seed::from_u64(0x5eed_ffff)).account_id()
}

/// The genesis and rules shared by every validator of a run of `ids`.
pub fn setup(ids: &[NodeId], config: &ConsensusConfig) -> ValidatorSetup {
    let mut balances: Vec<(AccountId, Amount)> = ids
        .iter()
        .map(|v| (v.account(), Amount::new(1_000_000)))
        .collect();
    balances.extend((0..ids.len()).map(|i| (payer_key(i).account_id(), Amount::new(1 << 40))));
    balances.push((sink(), Amount::new(1_000_000)));
    let genesis = Genesis {
        balances,
        stakes: Vec::new(),
        params: Params::default(),
    };
    ValidatorSetup {
        ledger: Ledger::new(genesis).expect("valid genesis"),
        rules: MarketRules {
            stake_per_slot: Amount::new(1_000),
            slash_to_client_bps: 5_000,
            stage_deadline: Duration::from_secs(15),
            clearing_period: Duration::from_secs(1),
            committee_size: ids.len().min(3) as u8,
            referees: ids.to_vec(),
            book: Default::default(),
            reputation_epoch_secs: 10,
            global_trust: None,
        },
        consensus: config.clone(),
        mechanism: || Box::new(KDouble::new(5_000).expect("valid k")),
        epoch_secs: 1,
    }
}

/// A durable validator node with a transfer load (see the module docs).
pub struct DurableValidator {
    node: ValidatorNode,
    disk: Disks,
    index: usize,
    payer: Keypair,
    next_nonce: u64,
    tx_per_period: f64,
    carry: f64,
    next_load: Timestamp,
}

impl DurableValidator {
    /// Builds (incarnation 0) or restarts node `ctx.index` from its disk.
    pub fn new(ctx: &NodeContext<'_>, params: &CrashesParams, disks: &Disks) -> Self {
        let committee = Committee::equal(ctx.nodes.iter().copied()).expect("valid committee");
        let setup = setup(ctx.nodes, &params.config);
        let key = Keypair::from_seed(&ctx.key_seed);
        let i = ctx.index.get();
        let seed = ctx.seed.derive("validator-node");
        let node = if ctx.incarnation == 0 {
            ValidatorNode::new(key, committee, &setup, seed, false)
                .expect("valid validator")
                .with_persistence(params.checkpoint_every)
                .with_signature_verifier(params.signatures.clone())
        } else {
            let lost = params.lose_store.contains(&(i as u32, ctx.incarnation));
            let stored = crate::durable::lock(&disks[i]).restart(
                &mut ctx.seed.derive("disk-crash").rng(),
                params.lose_unsynced,
                lost,
            );
            ValidatorNode::recover(
                key,
                committee,
                &setup,
                seed,
                false,
                stored,
                params.checkpoint_every,
            )
            .unwrap_or_else(|e| panic!("validator {i} cannot recover from its disk: {e}"))
            .with_signature_verifier(params.signatures.clone())
        };
        let payer = payer_key(i);
        let next_nonce = node.ledger().nonce(&payer.account_id()).get();
        Self {
            node,
            disk: std::sync::Arc::clone(disks),
            index: i,
            payer,
            next_nonce,
            tx_per_period: params.tx_per_second * LOAD_PERIOD.as_micros() as f64 / 1e6,
            carry: 0.0,
            next_load: ctx.now,
        }
    }

    /// The node.
    pub fn node(&self) -> &ValidatorNode {
        &self.node
    }

    fn submit_load(&mut self) {
        let account = self.payer.account_id();
        self.next_nonce = self
            .next_nonce
            .max(self.node.ledger().nonce(&account).get());
        self.carry += self.tx_per_period;
        while self.carry >= 1.0 {
            self.carry -= 1.0;
            let tx = Transaction {
                chain: self.node.ledger().params().chain_id,
                sender: account,
                nonce: Nonce::new(self.next_nonce),
                kind: TxKind::Transfer {
                    to: sink(),
                    amount: Amount::new(1 + self.index as u128),
                },
            }
            .sign(&self.payer);
            if self.node.submit(&tx).is_ok() {
                self.next_nonce += 1;
            }
        }
    }

    fn persist(&mut self) {
        let mut disk = crate::durable::lock(&self.disk[self.index]);
        if let Err(e) = persist_step(&mut self.node, &mut *disk) {
            unreachable!("the memory-backed disk never fails: {e}");
        }
    }
}

impl Machine for DurableValidator {
    type Message = NodeMessage;
    type Event = ValidatorEvent;

    fn handle_message(&mut self, now: Timestamp, from: NodeId, msg: NodeMessage) {
        self.node.handle_message(now, from, msg);
        self.persist();
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        if now >= self.next_load {
            self.submit_load();
            self.next_load = now + LOAD_PERIOD;
        }
        if self.node.poll_timeout().is_some_and(|t| t <= now) {
            self.node.handle_timeout(now);
        }
        self.persist();
    }

    fn poll_transmit(&mut self) -> Option<Transmit<NodeMessage>> {
        self.node.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<ValidatorEvent> {
        let ev = self.node.poll_event();
        if let Some(ValidatorEvent::StateSync(SyncEvent::Installed { .. })) = &ev {
            // Transactions queued before the jump are gone with the old
            // consensus: sign from the installed ledger's nonce again.
            self.next_nonce = self.node.ledger().nonce(&self.payer.account_id()).get();
        }
        // Releasing events can apply commits that write checkpoints.
        self.persist();
        ev
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        [self.node.poll_timeout(), Some(self.next_load)]
            .into_iter()
            .flatten()
            .min()
    }
}

/// The invariants of a crashes run (see the module docs).
pub struct CrashesObserver {
    lose_store: Vec<(u32, u32)>,
    canonical: BTreeMap<u64, Digest>,
    replicas: Replicas,
    /// A state sync under way: (since, commits behind the highest then).
    sync_started: Vec<Option<(Timestamp, u64)>>,
    metrics: Metrics,
}

impl CrashesObserver {
    /// An observer for `n` validators.
    pub fn new(n: usize, params: &CrashesParams) -> Self {
        Self {
            lose_store: params.lose_store.clone(),
            canonical: BTreeMap::new(),
            replicas: Replicas::new(
                vec![true; n],
                params.catch_up_commits,
                params.catch_up_grace,
            ),
            sync_started: vec![None; n],
            metrics: Metrics::default(),
        }
    }

    /// Validator `i` installed the state after commit `index`: it must be
    /// the state the others reported there, and it resumes from there.
    fn on_installed(
        &mut self,
        now: Timestamp,
        (i, index, digest): (usize, u64, Digest),
    ) -> Result<(), Violation> {
        if self.canonical.get(&index).is_some_and(|d| *d != digest) {
            return Err(Violation::new(
                "state-sync-digest",
                format!(
                    "validator {i} installed another state after commit {index} than its peers reported"
                ),
            ));
        }
        self.replicas.on_installed(i, index)?;
        self.metrics.add("state_syncs", 1);
        if let Some((since, behind)) = self.sync_started[i].take() {
            let ms = now.saturating_since(since).as_micros() / 1_000;
            self.metrics.add("state_sync_ms", ms);
            self.metrics.add("state_sync_commits_behind", behind);
        }
        Ok(())
    }

    fn on_applied(
        &mut self,
        i: usize,
        index: u64,
        digest: Digest,
        violation: Option<&String>,
    ) -> Result<(), Violation> {
        if let Some(v) = violation {
            return Err(Violation::new(
                "ledger-invariants",
                format!("validator {i} after commit {index}: {v}"),
            ));
        }
        self.replicas.on_commit(i, index)?;
        match self.canonical.get(&index) {
            Some(d) if *d != digest => Err(Violation::new(
                "state-prefix-consistency",
                format!("validator {i} has another ledger state after commit {index}"),
            )),
            Some(_) => Ok(()),
            None => {
                if self.canonical.len() < MAX_RECORDED_COMMITS {
                    self.canonical.insert(index, digest);
                    self.metrics.add("commits", 1);
                }
                Ok(())
            }
        }
    }
}
impl Observer<ValidatorEvent> for CrashesObserver {
    fn on_event(
        &mut self,
        now: Timestamp,
        node: NodeIndex,
        event: &ValidatorEvent,
    ) -> Result<(), Violation> {
        let i = node.get();
        match event {
            ValidatorEvent::Applied {
                index,
                digest,
                violation,
                applied,
                ..
            } => {
                let new = !self.canonical.contains_key(index);
                self.on_applied(i, *index, *digest, violation.as_ref())?;
                if new {
                    self.metrics
                        .add("committed_transactions", u64::from(*applied));
                }
            }
            // Few validators, short runs: audits run inline.
            ValidatorEvent::Audit(a) => a.run().map_err(|v| {
                Violation::new(
                    "ledger-invariants",
                    format!("validator {i} after commit {}: {v}", a.index()),
                )
            })?,
            ValidatorEvent::Consensus(ev) => match &**ev {
                ConsensusEvent::Equivocation(e) => {
                    return Err(Violation::new(
                        "no-honest-equivocation",
                        format!(
                            "validator {i} holds evidence that validator {} equivocated in round {}",
                            e.author().as_usize(),
                            e.first.header.round.get()
                        ),
                    ));
                }
                ConsensusEvent::InvalidMessage { .. } => self.metrics.add("invalid_messages", 1),
                _ => {}
            },
            ValidatorEvent::StateSync(SyncEvent::Started { .. }) => {
                let at = self.replicas.last_reported(i).unwrap_or(0);
                self.sync_started[i] = Some((now, self.replicas.highest().saturating_sub(at)));
            }
            ValidatorEvent::StateSync(SyncEvent::Installed { index, digest }) => {
                self.on_installed(now, (i, *index, *digest))?;
            }
            ValidatorEvent::StateSync(SyncEvent::PeerDropped { peer, error }) => {
                return Err(Violation::new(
                    "no-honest-peer-dropped",
                    format!(
                        "validator {i} dropped honest peer {peer:?} from a state sync: {error}"
                    ),
                ));
            }
            ValidatorEvent::StateSync(SyncEvent::Failed { error }) => {
                return Err(Violation::new(
                    "state-sync-failed",
                    format!("validator {i}: {error}"),
                ));
            }
            _ => {}
        }
        Ok(())
    }

    fn on_fault(&mut self, now: Timestamp, fault: &Fault) -> Result<(), Violation> {
        if let Fault::Crash { nodes } = fault {
            self.metrics.add("crashes", nodes.len() as u64);
        }
        let lose = &self.lose_store;
        for (_, lost) in self
            .replicas
            .on_fault(now, fault, |i, inc| lose.contains(&(i as u32, inc)))
        {
            self.metrics.add("restarts", 1);
            self.metrics.add("lost_stores", u64::from(lost));
        }
        Ok(())
    }

    fn on_tick(&mut self, now: Timestamp) -> Result<(), Violation> {
        self.replicas.on_tick(now)
    }

    fn finish(&mut self, _now: Timestamp) -> Result<(), Violation> {
        if self.replicas.highest() == 0 {
            return Err(Violation::new("liveness", "no commit at all"));
        }
        Ok(())
    }

    fn metrics(&self) -> Option<&Metrics> {
        Some(&self.metrics)
    }
}

/// Adds a crashes run's figures to its summary (`ledger` in
/// `summary.json`, a line in the terminal summary).
pub fn summarize(
    mut summary: crate::report::Summary,
    m: &Metrics,
    disks: &[std::sync::Mutex<SimDisk>],
) -> crate::report::Summary {
    let d = total_stats(disks);
    let v = serde_json::json!({
        "commits": m.counter("commits"),
        "committed_transactions": m.counter("committed_transactions"),
        "crashes": m.counter("crashes"),
        "restarts": m.counter("restarts"),
        "lost_stores": m.counter("lost_stores"),
        "disk_syncs": d.syncs,
        "unsynced_writes_lost": d.lost_writes,
        "torn_writes": d.torn_writes,
        "disks_wiped": d.wiped,
        "state_syncs": m.counter("state_syncs"),
        "state_sync_ms_total": m.counter("state_sync_ms"),
        "state_sync_commits_behind_total": m.counter("state_sync_commits_behind"),
    });
    summary.marketplace_text = Some(format!(
        "crashes       {} commits, {} transfers applied; {} crashes, {} restarts ({} from a lost store); {} state syncs; {} syncs, {} un-synced writes lost, {} torn\n",
        m.counter("commits"),
        m.counter("committed_transactions"),
        m.counter("crashes"),
        m.counter("restarts"),
        m.counter("lost_stores"),
        m.counter("state_syncs"),
        d.syncs,
        d.lost_writes,
        d.torn_writes
    ));
    summary.ledger = Some(v);
    summary.storage = Some(d);
    summary
}
