//! The reference validator node: consensus + ledger + marketplace
//! application, driven as one [`Machine`].
//!
//! Every committed sub-DAG is applied to the node's own [`Ledger`], so
//! every validator holds the replicated state; the node emits one
//! [`NodeEvent::Applied`] per batch with the state digest so the observer
//! can compare validators after every batch. The full [`check_all`]
//! (conservation, no negative amounts, accounting, the incremental digest
//! against a recomputation) is O(state), so commit index `i` is checked by
//! validator `i mod n` only: every batch is checked once, every validator
//! takes its turn, and equal digests carry the result to the others. Light nodes (providers, clients)
//! submit signed transactions through a validator with
//! [`LedgerNode::submit`]; the validator checks the signature once there
//! (the mempool check) and the ledger applies committed batches with
//! [`SignatureCheck::Skip`].

use idlegrid_dag_ledger::consensus::{
    Committee, ConsensusConfig, ConsensusEvent, ConsensusMessage, Validator,
};
use idlegrid_dag_ledger::ledger::{
    BatchContext, Host, Ledger, NoEvidence, SignatureCheck, SignedTransaction, Transaction, TxKind,
    check_all,
};
use idlegrid_market::Mechanism;
use idlegrid_primitives::{Digest, Epoch, Keypair, Machine, NodeId, Timestamp, Transmit, encode};

use super::app::{Apps, MARKETPLACE_APP, MarketRules, MarketTx, MarketplaceApp};
use crate::node::NodeContext;

/// What a validator node reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeEvent {
    /// A committed batch was applied to this node's ledger.
    Applied {
        /// Commit index.
        index: u64,
        /// Ledger state digest after the batch.
        digest: Digest,
        /// Transactions applied / rejected.
        applied: u32,
        /// Rejected transactions.
        rejected: u32,
        /// True if this node ran `check_all` on this batch (its turn).
        checked: bool,
        /// `check_all` failure, if any.
        violation: Option<String>,
        /// Settlement effects the ledger refused so far.
        effect_failures: u64,
        /// The committed leader (for commit-latency metrics).
        leader: idlegrid_dag_ledger::consensus::BlockRef,
        /// Blocks in the committed sub-DAG.
        blocks: u32,
        /// Transactions in the committed sub-DAG.
        transactions: u32,
    },
    /// A consensus event other than a commit (proposals, evidence…).
    Consensus(Box<ConsensusEvent>),
}

/// Everything a validator node is built from.
#[derive(Clone)]
pub struct NodeSetup {
    /// The genesis ledger (same on every node; validated once and cloned
    /// per node).
    pub ledger: Ledger,
    /// Marketplace rules (same on every node).
    pub rules: MarketRules,
    /// Consensus configuration.
    pub consensus: ConsensusConfig,
    /// Builds the clearing mechanism.
    pub mechanism: fn() -> Box<dyn Mechanism>,
    /// Consensus seconds per ledger epoch.
    pub epoch_secs: u64,
    /// Validator behaviours by node index (missing = honest).
    pub behaviors: Vec<crate::consensus::Behavior>,
}

impl std::fmt::Debug for NodeSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeSetup").finish_non_exhaustive()
    }
}

/// A validator running consensus, the ledger and the marketplace.
pub struct LedgerNode {
    validator: Validator,
    /// This node's index and the committee size (whose turn `check_all` is).
    turn: (u64, u64),
    ledger: Ledger,
    apps: Apps,
    key: Keypair,
    epoch_secs: u64,
    pending_nonce: u64,
    rejected_submissions: u64,
    events: std::collections::VecDeque<NodeEvent>,
}

impl std::fmt::Debug for LedgerNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerNode")
            .field("ledger", &self.ledger)
            .finish_non_exhaustive()
    }
}

/// Why a submission was refused at the gateway.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// Bad signature.
    #[error("transaction signature does not verify")]
    BadSignature,
    /// The validator's queue is full.
    #[error("validator refused the transaction: {0}")]
    Refused(String),
}

impl LedgerNode {
    /// Builds node `ctx.index`; the committee is every simulation node.
    /// Only node 0's marketplace buffers notices (it is the light clients'
    /// view of the ledger).
    pub fn new(ctx: &NodeContext<'_>, setup: &NodeSetup) -> Result<Self, String> {
        let committee = Committee::equal(ctx.nodes.iter().copied()).map_err(|e| e.to_string())?;
        let key = Keypair::from_seed(&ctx.key_seed);
        let mut config = setup.consensus.clone();
        if let Some(b) = setup.behaviors.get(ctx.index.get()) {
            config.byzantine = b.to_config();
        }
        let validator =
            Validator::new(key.clone(), committee, config, ctx.seed.derive("validator"))
                .map_err(|e| e.to_string())?;
        let mut ledger = setup.ledger.clone();
        ledger.set_verification_seed(&ctx.seed.derive("ledger-verify"));
        let market = MarketplaceApp::new(
            setup.rules.clone(),
            (setup.mechanism)(),
            ctx.index.get() == 0,
        )
        .map_err(|e| e.to_string())?;
        Ok(Self {
            validator,
            turn: (ctx.index.get() as u64, ctx.nodes.len() as u64),
            ledger,
            apps: Apps { market },
            key,
            epoch_secs: setup.epoch_secs.max(1),
            pending_nonce: 0,
            rejected_submissions: 0,
            events: Default::default(),
        })
    }

    /// The node's ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The node's marketplace state.
    pub fn market(&self) -> &MarketplaceApp {
        &self.apps.market
    }

    /// Drains the marketplace notices (node 0 only records them).
    pub fn drain_notices(&mut self) -> Vec<super::app::Notice> {
        self.apps.market.drain_notices()
    }

    /// Submissions refused at the gateway.
    pub fn rejected_submissions(&self) -> u64 {
        self.rejected_submissions
    }

    /// A light node's transaction, checked and queued for the next block.
    pub fn submit(&mut self, tx: &SignedTransaction) -> Result<(), SubmitError> {
        if tx.verify().is_err() {
            self.rejected_submissions += 1;
            return Err(SubmitError::BadSignature);
        }
        self.validator
            .submit_transaction(tx.to_bytes())
            .map_err(|e| {
                self.rejected_submissions += 1;
                SubmitError::Refused(e.to_string())
            })
    }

    /// Signs and submits a marketplace transaction from this validator's
    /// own account (referee votes).
    pub fn submit_own(&mut self, payload: &MarketTx) -> Result<(), SubmitError> {
        let me = self.key.account_id();
        let nonce = self.ledger.nonce(&me).get().max(self.pending_nonce);
        self.pending_nonce = nonce + 1;
        let tx = Transaction {
            chain: self.ledger.params().chain_id,
            sender: me,
            nonce: idlegrid_dag_ledger::ledger::Nonce::new(nonce),
            kind: TxKind::App {
                app_id: MARKETPLACE_APP,
                payload: encode(payload),
            },
        }
        .sign(&self.key);
        self.submit(&tx)
    }

    fn apply(&mut self, sub: &idlegrid_dag_ledger::consensus::CommittedSubDag) {
        let secs = sub.timestamp.as_micros() / 1_000_000 / self.epoch_secs;
        let epoch = Epoch::new(secs).max(self.ledger.epoch());
        let ctx = BatchContext {
            epoch,
            now: sub.timestamp,
        };
        let txs: Vec<&[u8]> = sub.transactions.iter().map(|t| t.as_bytes()).collect();
        let mut host = Host {
            apps: &mut self.apps,
            evidence: &NoEvidence,
            signatures: SignatureCheck::Skip,
        };
        let checked = sub.index % self.turn.1.max(1) == self.turn.0;
        let ev = match self.ledger.apply_batch(ctx, &txs, &mut host) {
            Ok(r) => NodeEvent::Applied {
                index: sub.index,
                digest: r.state_digest,
                applied: r.applied() as u32,
                rejected: r.rejected() as u32,
                checked,
                violation: checked
                    .then(|| check_all(&self.ledger).err().map(|v| v.to_string()))
                    .flatten(),
                effect_failures: self.apps.market.effect_failures(),
                leader: sub.leader,
                blocks: sub.blocks.len() as u32,
                transactions: txs.len() as u32,
            },
            Err(e) => NodeEvent::Applied {
                index: sub.index,
                digest: self.ledger.state_digest(),
                applied: 0,
                rejected: txs.len() as u32,
                checked,
                violation: Some(format!("batch refused: {e}")),
                effect_failures: self.apps.market.effect_failures(),
                leader: sub.leader,
                blocks: sub.blocks.len() as u32,
                transactions: txs.len() as u32,
            },
        };
        self.events.push_back(ev);
    }

    fn pump(&mut self) {
        while let Some(ev) = self.validator.poll_event() {
            match ev {
                ConsensusEvent::Committed(sub) => self.apply(&sub),
                other => {
                    if self.events.len() < 100_000 {
                        self.events.push_back(NodeEvent::Consensus(Box::new(other)));
                    }
                }
            }
        }
    }
}

impl Machine for LedgerNode {
    type Message = ConsensusMessage;
    type Event = NodeEvent;

    fn handle_message(&mut self, now: Timestamp, from: NodeId, msg: ConsensusMessage) {
        self.validator.handle_message(now, from, msg);
        self.pump();
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        if self.validator.poll_timeout().is_some_and(|t| t <= now) {
            self.validator.handle_timeout(now);
        }
        self.pump();
    }

    fn poll_transmit(&mut self) -> Option<Transmit<ConsensusMessage>> {
        self.validator.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<NodeEvent> {
        self.pump();
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        self.validator.poll_timeout()
    }
}
