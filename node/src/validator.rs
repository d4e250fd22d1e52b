//! The validator: consensus + ledger + marketplace application, driven as
//! one [`Machine`].
//!
//! Every committed sub-DAG is applied to the node's own [`Ledger`], so
//! every validator holds the replicated state; the node emits one
//! [`ValidatorEvent::Applied`] per batch with the state digest so the observer
//! can compare validators after every batch. The full [`check_all`]
//! (conservation, no negative amounts, accounting, the incremental digest
//! against a recomputation) is O(state), so commit index `i` is checked by
//! validator `i mod n` only: every batch is checked once, every validator
//! takes its turn, and equal digests carry the result to the others. Light nodes (providers, clients)
//! submit signed transactions through a validator with
//! [`ValidatorNode::submit`]; the validator checks the signature once there
//! (the mempool check) and the ledger applies committed batches with
//! [`SignatureCheck::Skip`].

use idlegrid_dag_ledger::consensus::{
    Committee, ConsensusConfig, ConsensusEvent, ConsensusMessage, Validator,
};
use idlegrid_dag_ledger::ledger::{
    Host, Ledger, NoEvidence, SignatureCheck, SignedTransaction, Transaction, TxKind, check_all,
};
use idlegrid_market::Mechanism;
use idlegrid_primitives::{Digest, Keypair, Machine, NodeId, Seed, Timestamp, Transmit, encode};

use crate::batch::batch_context;

mod durable;
use crate::market::{Apps, MARKETPLACE_APP, MarketRules, MarketTx, MarketplaceApp, Notice};
pub use durable::{Checkpoint, NodePersistRequest, NodeStorageOp, StoredNode};

/// What a validator node reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValidatorEvent {
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
pub struct ValidatorSetup {
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
}

impl std::fmt::Debug for ValidatorSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidatorSetup").finish_non_exhaustive()
    }
}

/// A validator running consensus, the ledger and the marketplace.
pub struct ValidatorNode {
    validator: Validator,
    /// This node's index and the committee size (whose turn `check_all` is).
    turn: (u64, u64),
    ledger: Ledger,
    apps: Apps,
    key: Keypair,
    epoch_secs: u64,
    pending_nonce: u64,
    rejected_submissions: u64,
    events: std::collections::VecDeque<ValidatorEvent>,
    durable: durable::Durability,
}

impl std::fmt::Debug for ValidatorNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidatorNode")
            .field("ledger", &self.ledger)
            .finish_non_exhaustive()
    }
}

/// Why a validator could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValidatorError {
    /// The key is not a committee member.
    #[error("node {0} is not in the committee")]
    NotInCommittee(NodeId),
    /// The consensus configuration was refused.
    #[error("consensus: {0}")]
    Consensus(#[from] idlegrid_dag_ledger::consensus::ConsensusError),
    /// The reputation parameters were refused.
    #[error("reputation book: {0}")]
    Reputation(#[from] idlegrid_reputation::ReputationError),
    /// What the store held cannot be recovered from (a gap in the commit
    /// log, a checkpoint the replay does not reach).
    #[error("cannot recover from the store: {0}; the store is damaged")]
    Recovery(String),
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

impl ValidatorNode {
    /// A validator with long-term `key` in `committee`. `seed` derives its
    /// consensus and batch-verification randomness; `emit_notices` makes
    /// its marketplace report [`Notice`]s (see [`ValidatorNode::drain_notices`]).
    pub fn new(
        key: Keypair,
        committee: Committee,
        setup: &ValidatorSetup,
        seed: Seed,
        emit_notices: bool,
    ) -> Result<Self, ValidatorError> {
        let me = key.node_id();
        let index = committee
            .index_of(&me)
            .ok_or(ValidatorError::NotInCommittee(me))?;
        let size = committee.size();
        let validator = Validator::new(
            key.clone(),
            committee,
            setup.consensus.clone(),
            seed.derive("validator"),
        )?;
        let mut ledger = setup.ledger.clone();
        ledger.set_verification_seed(&seed.derive("ledger-verify"));
        let market = MarketplaceApp::new(setup.rules.clone(), (setup.mechanism)(), emit_notices)?;
        Ok(Self {
            validator,
            turn: (u64::from(index.get()), size as u64),
            ledger,
            apps: Apps { market },
            key,
            epoch_secs: setup.epoch_secs.max(1),
            pending_nonce: 0,
            rejected_submissions: 0,
            events: Default::default(),
            durable: Default::default(),
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

    /// Drains the marketplace notices (empty unless built with
    /// `emit_notices`).
    pub fn drain_notices(&mut self) -> Vec<Notice> {
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
        let ctx = batch_context(sub.timestamp, self.epoch_secs, self.ledger.epoch());
        let txs: Vec<&[u8]> = sub.transactions.iter().map(|t| t.as_bytes()).collect();
        let mut host = Host {
            apps: &mut self.apps,
            evidence: &NoEvidence,
            signatures: SignatureCheck::Skip,
        };
        let checked = sub.index % self.turn.1.max(1) == self.turn.0;
        let ev = match self.ledger.apply_batch(ctx, &txs, &mut host) {
            Ok(r) => ValidatorEvent::Applied {
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
            Err(e) => ValidatorEvent::Applied {
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
        self.checkpoint_if_due(sub.index);
    }

    fn pump(&mut self) {
        while let Some(ev) = self.validator.poll_event() {
            match ev {
                ConsensusEvent::Committed(sub) => self.apply(&sub),
                other => {
                    if self.events.len() < 100_000 {
                        self.events
                            .push_back(ValidatorEvent::Consensus(Box::new(other)));
                    }
                }
            }
        }
    }
}

impl Machine for ValidatorNode {
    type Message = ConsensusMessage;
    type Event = ValidatorEvent;

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

    fn poll_event(&mut self) -> Option<ValidatorEvent> {
        self.pump();
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        self.validator.poll_timeout()
    }
}
