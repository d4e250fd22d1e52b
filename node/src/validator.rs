//! The validator: consensus + ledger + marketplace application, driven as
//! one [`Machine`].
//!
//! Every committed sub-DAG is applied to the node's own [`Ledger`], so
//! every validator holds the replicated state (a driver running many
//! validators in one process may let those holding the very same state
//! share one copy, see [`StateSharing`]); the node emits one
//! [`ValidatorEvent::Applied`] per batch with the state digest so the observer
//! can compare validators after every batch. The full
//! [`check_all`](idlegrid_dag_ledger::ledger::check_all)
//! (conservation, no negative amounts, accounting, the incremental digest
//! against a recomputation) is O(state), so commit index `i` is checked by
//! validator `i mod n` only: every batch is checked once, every validator
//! takes its turn, and equal digests carry the result to the others. The
//! node hands that check to its driver as an effect
//! ([`ValidatorEvent::Audit`], see [`Audit`]), to run off the node's
//! critical path. Light nodes (providers, clients)
//! submit signed transactions through a validator with
//! [`ValidatorNode::submit`]; the validator checks the signature there (the
//! mempool check) and again when it applies the committed batch that carries
//! it, with one batch verification: a proposer can put any bytes in its
//! block, so only the applying validator's own check counts. Both checks go
//! through the node's [`SignatureVerifier`], so with a memoizing one a
//! transaction that came through this gateway (or, in a simulator, through
//! any validator of the process) is verified once.

use std::collections::BTreeMap;

use idlegrid_dag_ledger::consensus::{
    AuthorityIndex, Committee, ConsensusConfig, ConsensusEvent, Validator,
};
use idlegrid_dag_ledger::ledger::{Ledger, SignedTransaction, Transaction, TxKind};
use idlegrid_market::Mechanism;
use idlegrid_primitives::{
    AccountId, Destination, Digest, Keypair, Machine, NodeId, Seed, SignatureVerifier, Timestamp,
    Transmit, encode,
};

use crate::batch::batch_context;
use crate::certified::{
    FactsCertificate, FactsMode, FactsVote, MAX_VOTES_PER_BLOCK, ProvenFacts, VotePool,
};
use crate::market::referees::ticket_worth_sending;

mod audit;
mod durable;
mod frontier;
mod publish;
mod referee;
mod rejoin;
mod shared;
pub mod state_sync;
mod subscribers;
use crate::market::{Apps, MARKETPLACE_APP, MarketRules, MarketTx, MarketplaceApp, Notice};
use crate::wire::{Fact, FactBatch, GatewayRequest, NodeMessage};
use publish::CommitFacts;
pub use shared::StateSharing;
use shared::{Applied, Replica};
use std::collections::BTreeSet;

use std::sync::Arc;
use subscribers::Subscribers;

/// A committed transaction's receipt or rejection.
type TxResult =
    Result<idlegrid_dag_ledger::ledger::Receipt, idlegrid_dag_ledger::ledger::LedgerError>;

/// Light nodes one validator serves facts to at most (when full, the one
/// heard from least recently makes room).
pub const MAX_SUBSCRIBERS: usize = 1 << 20;
/// Reporting commits at which a subscriber that asked for its holdings
/// hears them: validators that receive the request up to 8 × (this − 1)
/// commits apart (one lagging behind the others) still report at a common
/// commit, where the light node's f + 1 quorum forms.
pub const HOLDINGS_REPORTS: u8 = 8;
/// Commits whose facts a validator keeps to replay to a new fact source's
/// subscriber ([`GatewayRequest::SubscribeFrom`]): several seconds of
/// commits, more than a validity window's patience (2 s in the simulator)
/// lets pass before it widens. A fact older than that is not replayed (with
/// a 2f + 1 window widening is beyond the fault model anyway).
pub const REPLAY_COMMITS: usize = 64;

/// A drained validator keeps room for twice its peers' messages, and at
/// least twice this many.
const OUT_KEPT_MIN: usize = 32;
pub use audit::Audit;
pub use durable::{
    Checkpoint, InstallError, MAX_CHECKPOINT_PART, NodePersistRequest, NodeStorageOp, StoredNode,
};
pub use state_sync::{SyncConfig, SyncError};

/// What state sync reports (see [`state_sync`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncEvent {
    /// Validators holding f + 1 of the stake offered this snapshot, far
    /// enough ahead: fetching it.
    Started {
        /// Its commit index.
        index: u64,
        /// Its root.
        root: Digest,
    },
    /// A peer sent something that does not match; it is dropped for this
    /// sync.
    PeerDropped {
        /// The peer.
        peer: NodeId,
        /// What it did.
        error: SyncError,
    },
    /// The assembled snapshot was refused; the sync starts over.
    Failed {
        /// Why.
        error: SyncError,
    },
    /// The snapshot is installed: the node's state is that after commit
    /// `index`, and consensus resumes from there.
    Installed {
        /// Commit index.
        index: u64,
        /// Ledger state digest.
        digest: Digest,
    },
}

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
        /// True if this node audits this batch's post-state (its turn): a
        /// [`ValidatorEvent::Audit`] follows.
        checked: bool,
        /// Why the batch as a whole was refused, if it was.
        violation: Option<String>,
        /// Settlement effects the ledger refused so far.
        effect_failures: u64,
        /// Marketplace notices discarded undrained so far (the facts light
        /// nodes act on are built from them; zero unless the node is
        /// broken).
        dropped_notices: u64,
        /// The committed leader (for commit-latency metrics).
        leader: idlegrid_dag_ledger::consensus::BlockRef,
        /// The commit's running digest (equal on every validator that
        /// committed the same sequence).
        commit: Digest,
        /// Blocks in the committed sub-DAG.
        blocks: u32,
        /// Transactions in the committed sub-DAG.
        transactions: u32,
    },
    /// Effect: audit this commit's post-state in full ([`Audit::run`],
    /// where the driver likes) and report a failure. The node does not wait
    /// for the answer.
    Audit(Box<Audit>),
    /// A consensus event other than a commit (proposals, evidence…).
    Consensus(Box<ConsensusEvent>),
    /// It drew its referee ticket for a dispute's ticket window (`level` 0:
    /// the first committee; above: an escalation) and sent it if `sent`
    /// (only a ticket that may win a seat is sent).
    TicketDrawn {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// Escalations before this window.
        level: u8,
        /// Sent (its score may win a seat).
        sent: bool,
    },
    /// Effect: this validator sits on a dispute's referee committee. Run the
    /// disputed traps' inputs and answer with [`ValidatorNode::vote`].
    RefereeDuty {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// The disputed traps (their inputs are what to run).
        disputed: Vec<idlegrid_entrap::DisputedTrap>,
        /// The program and the disputed traps' input bytes, in `disputed`
        /// order, once the disputing provider sent them (a duty without
        /// them is reported again when they arrive).
        data: Option<crate::wire::LotData>,
    },
    /// State sync progress (see [`state_sync`]).
    StateSync(SyncEvent),
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
    /// The replicated state (shared with validators holding the very same
    /// one, see [`shared`]).
    state: Arc<Replica>,
    sharing: StateSharing,
    key: Keypair,
    epoch_secs: u64,
    pending_nonce: u64,
    rejected_submissions: u64,
    events: std::collections::VecDeque<ValidatorEvent>,
    /// Light nodes by account, served the facts that concern them.
    subscribers: Subscribers,
    /// Votes on commits' facts and the certificates they formed.
    votes: VotePool,
    /// Its own votes not sent yet: they ride on its next block broadcast
    /// (at most [`MAX_VOTES_PER_BLOCK`], the latest).
    unsent_votes: Vec<FactsVote>,
    /// Checks facts votes (the consensus validator and the market hold
    /// their own copies).
    signatures: SignatureVerifier,
    /// Subscribers that asked for their holdings, and how many more
    /// reporting commits they hear them at.
    holdings_wanted: BTreeMap<AccountId, u8>,
    /// The last [`REPLAY_COMMITS`] applied commits (their facts built),
    /// oldest first, by index.
    recent: std::collections::VecDeque<(u64, Arc<CommitFacts>)>,
    /// Fact batches and unicast copies of consensus broadcasts.
    out: std::collections::VecDeque<Transmit<NodeMessage>>,
    /// Proven-facts messages sent in answer to light nodes' replay
    /// requests ([`GatewayRequest::Replay`]).
    replayed: u64,
    /// The other validators (a consensus broadcast goes to them only, never
    /// to light nodes connected to this one).
    peers: Vec<NodeId>,
    /// Keep a copy of every notice for [`ValidatorNode::drain_notices`].
    keep_notices: bool,
    kept: Vec<Notice>,
    durable: durable::Durability,
    desk: referee::RefereeDesk,
    /// Where consensus resumes after the last applied commit.
    frontier: frontier::CommitFrontier,
    /// Snapshots this node serves (with persistence and checkpoints).
    serving: state_sync::Serving,
    /// Fetching a snapshot (with persistence and checkpoints).
    sync: Option<state_sync::StateSync>,
    seed: Seed,
    mechanism: fn() -> Box<dyn Mechanism>,
}

impl std::fmt::Debug for ValidatorNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidatorNode")
            .field("ledger", &self.state.ledger)
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
        let peers: Vec<NodeId> = committee
            .indices()
            .filter_map(|i| committee.node(i))
            .filter(|n| *n != me)
            .collect();
        let validator = Validator::new(
            key.clone(),
            committee,
            setup.consensus.clone(),
            seed.derive("validator"),
        )?;
        let mut ledger = setup.ledger.clone();
        ledger.set_verification_seed(&seed.derive("ledger-verify"));
        let market = MarketplaceApp::new(setup.rules.clone(), (setup.mechanism)(), true)?;
        Ok(Self {
            validator,
            turn: (u64::from(index.get()), size as u64),
            state: Arc::new(Replica {
                ledger,
                apps: Apps { market },
            }),
            sharing: StateSharing::off(),
            key,
            epoch_secs: setup.epoch_secs.max(1),
            pending_nonce: 0,
            rejected_submissions: 0,
            events: Default::default(),
            subscribers: Subscribers::new(MAX_SUBSCRIBERS),
            votes: VotePool::default(),
            unsent_votes: Vec::new(),
            signatures: SignatureVerifier::plain(),
            holdings_wanted: BTreeMap::new(),
            recent: Default::default(),
            out: Default::default(),
            replayed: 0,
            peers,
            keep_notices: emit_notices,
            kept: Vec::new(),
            durable: Default::default(),
            desk: Default::default(),
            frontier: frontier::CommitFrontier::new(setup.consensus.gc_depth),
            serving: Default::default(),
            sync: None,
            seed,
            mechanism: setup.mechanism,
        })
    }

    /// Checks consensus block signatures, transaction signatures (at the
    /// gateway and in committed batches) and referee tickets' VRF proofs
    /// through `signatures` (plain by default): a driver running many
    /// validators in one process gives them one memoizing verifier so each
    /// block, transaction and ticket is verified once (see
    /// [`SignatureVerifier`]). Every one is verified either way.
    pub fn with_signature_verifier(mut self, signatures: SignatureVerifier) -> Self {
        Arc::make_mut(&mut self.state)
            .apps
            .market
            .set_proof_verifier(signatures.clone());
        self.signatures = signatures.clone();
        self.validator = self.validator.with_signature_verifier(signatures);
        self
    }

    /// Shares replicated state with the other validators given the same
    /// `sharing` (off by default): a driver running many validators in one
    /// process gives them one [`StateSharing::shared`], so a committed batch
    /// is applied once per distinct pre-state instead of once per
    /// validator. Every validator still applies every commit, to a state
    /// provably identical to its own (see [`StateSharing`]). Call it last:
    /// a builder that changes the state afterwards (such as
    /// [`ValidatorNode::with_signature_verifier`]) gives this validator a
    /// copy of its own, which is correct but shares nothing.
    pub fn with_state_sharing(mut self, sharing: StateSharing) -> Self {
        sharing.adopt(&mut self.state);
        if let Some(memo) = sharing.history() {
            self.validator = self.validator.with_history_memo(Arc::clone(memo));
        }
        self.sharing = sharing;
        self
    }

    /// The node's ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.state.ledger
    }

    /// True while, its store lost, the node asks peers holding a quorum of
    /// the stake for its latest block before it proposes again (so that it
    /// never signs a second block for a round). Until then it commits what
    /// others propose but adds no blocks of its own: with another
    /// validator down as well, that can be more faults than the committee
    /// tolerates.
    pub fn syncing_own_block(&self) -> bool {
        self.validator.syncing_own_block()
    }

    /// The node's marketplace state.
    pub fn market(&self) -> &MarketplaceApp {
        &self.state.apps.market
    }

    /// Drains the marketplace notices (empty unless built with
    /// `emit_notices`).
    pub fn drain_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.kept)
    }

    /// Light nodes subscribed to this validator's facts.
    pub fn subscribers(&self) -> usize {
        self.subscribers.len()
    }

    /// Submissions refused at the gateway.
    pub fn rejected_submissions(&self) -> u64 {
        self.rejected_submissions
    }

    /// Proven-facts messages sent in answer to light nodes' replay requests
    /// ([`GatewayRequest::Replay`]).
    pub fn replayed(&self) -> u64 {
        self.replayed
    }

    /// A light node's transaction, checked and queued for the next block.
    pub fn submit(&mut self, tx: &SignedTransaction) -> Result<(), SubmitError> {
        if tx
            .verify_with(self.state.apps.market.proof_verifier())
            .is_err()
        {
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

    /// Queues transaction bytes for this node's next blocks without the
    /// gateway's check: what a Byzantine proposer can do
    /// ([`crate::byzantine::ForgingProposer`]).
    pub(crate) fn queue_unchecked(
        &mut self,
        tx: Vec<u8>,
    ) -> Result<(), idlegrid_dag_ledger::consensus::ConsensusError> {
        self.validator.submit_transaction(tx)
    }

    /// Signs and submits a marketplace transaction from this validator's
    /// own account (referee votes).
    pub fn submit_own(&mut self, payload: &MarketTx) -> Result<(), SubmitError> {
        let me = self.key.account_id();
        let nonce = self.state.ledger.nonce(&me).get().max(self.pending_nonce);
        self.pending_nonce = nonce + 1;
        let tx = Transaction {
            chain: self.state.ledger.params().chain_id,
            sender: me,
            nonce: idlegrid_dag_ledger::ledger::Nonce::new(nonce),
            kind: TxKind::App {
                app_id: MARKETPLACE_APP,
                payload: encode(payload),
            },
        }
        .sign_with(&self.key, &self.signatures);
        self.submit(&tx)
    }

    /// Draws this validator's referee ticket on a dispute's `randomness`
    /// (from [`Notice::TicketWindow`], with its `seats`, among `eligible`
    /// referees) and submits it from its own account if its score may win
    /// a seat ([`ticket_worth_sending`]). Returns whether it was sent.
    ///
    /// A validator does this by itself for every ticket window in its own
    /// committed notices; a driver calls it only to re-draw.
    pub fn submit_ticket(
        &mut self,
        (client, job, lot): (AccountId, u64, u32),
        randomness: &Digest,
        (seats, eligible): (usize, usize),
    ) -> Result<bool, SubmitError> {
        let (_, ticket) = idlegrid_entrap::RefereeTicket::draw_if(
            &self.key,
            randomness,
            &self.signatures,
            |score| ticket_worth_sending(score, seats, eligible),
        );
        let Some(ticket) = ticket else {
            return Ok(false);
        };
        self.submit_own(&MarketTx::Ticket {
            client,
            job,
            lot,
            ticket,
        })?;
        Ok(true)
    }

    fn apply(&mut self, sub: &idlegrid_dag_ledger::consensus::CommittedSubDag) {
        let ctx = batch_context(
            sub.timestamp,
            self.epoch_secs,
            self.state.ledger.epoch(),
            sub.digest,
        );
        let txs: Vec<&[u8]> = sub.transactions.iter().map(|t| t.as_bytes()).collect();
        let key = (sub.index, sub.digest, sub.timestamp);
        let applied = self.sharing.apply(&mut self.state, key, ctx, &txs);
        let turn = sub.index % self.turn.1.max(1) == self.turn.0;
        let (digest, applied_n, rejected, violation) = match &applied.result {
            Ok(r) => {
                self.own_rejections(&txs, r);
                self.publish(sub.index, &txs, &r.receipts, &applied);
                (
                    r.state_digest,
                    r.applied() as u32,
                    r.rejected() as u32,
                    None,
                )
            }
            Err(e) => (
                self.state.ledger.state_digest(),
                0,
                txs.len() as u32,
                Some(format!("batch refused: {e}")),
            ),
        };
        self.frontier.advance(sub);
        if self.durable.replaying() {
            return;
        }
        let checked = turn && violation.is_none();
        self.events.push_back(ValidatorEvent::Applied {
            index: sub.index,
            digest,
            applied: applied_n,
            rejected,
            checked,
            violation,
            effect_failures: self.state.apps.market.effect_failures(),
            dropped_notices: self.state.apps.market.dropped_notices(),
            leader: sub.leader,
            commit: sub.digest,
            blocks: sub.blocks.len() as u32,
            transactions: txs.len() as u32,
        });
        if checked {
            let audit = Audit::new(sub.index, self.state.ledger.clone());
            self.events
                .push_back(ValidatorEvent::Audit(Box::new(audit)));
        }
        self.checkpoint_if_due(sub.index);
    }

    /// Sends every subscriber the facts of commit `index` that concern it
    /// (see [`CommitFacts`]), built once per application of the commit
    /// (also without subscribers: they are kept for replays), and votes on
    /// them.
    fn publish(&mut self, index: u64, txs: &[&[u8]], receipts: &[TxResult], applied: &Applied) {
        let notices = &applied.notices;
        self.referee_duties(notices);
        if self.keep_notices {
            self.kept.extend(notices.iter().cloned());
        }
        let due = match index % crate::wire::HOLDINGS_EVERY == 0 {
            true => self.holdings_due(),
            false => BTreeSet::new(),
        };
        let ledger = &self.state.ledger;
        let facts = applied
            .facts
            .get_or_init(|| Arc::new(CommitFacts::build(txs, receipts, notices, ledger)));
        if self.recent.len() >= REPLAY_COMMITS {
            self.recent.pop_front();
        }
        self.recent.push_back((index, Arc::clone(facts)));
        let facts = Arc::clone(facts);
        self.vote_facts(index, facts.root());
        if self.subscribers.is_empty() {
            return;
        }
        let ledger = &self.state.ledger;
        let mut send = |acct: &AccountId, mode: FactsMode| {
            if let Some(batch) = facts.batch(acct, due.contains(acct), mode, ledger) {
                send_facts(&mut self.out, acct.node(), index, batch);
            }
        };
        // In account order: every subscriber when the commit has facts for
        // everyone (without collecting them), else those the commit or a
        // holdings report concerns.
        if facts.for_everyone() {
            self.subscribers.accounts().for_each(|(a, m)| send(a, m));
        } else {
            union_ascending(facts.accounts(), due.iter())
                .filter_map(|a| Some((a, self.subscribers.mode(a)?)))
                .for_each(|(a, m)| send(a, m));
        }
    }

    /// Commit `index` is applied, with `root` the root of its facts tree if
    /// it has facts: votes on it (not while replaying the store: those
    /// votes were sent before the crash), to be sent with its next block,
    /// and sends the facts its vote certifies, if it completes a
    /// certificate.
    fn vote_facts(&mut self, index: u64, root: Option<Digest>) {
        let committee = self.validator.committee().clone();
        let me = AuthorityIndex::new(self.turn.0 as u32);
        let own = root.filter(|_| !self.durable.replaying()).map(|root| {
            FactsVote::sign_with(&self.key, &committee, (index, root), &self.signatures)
        });
        if let Some(v) = &own {
            if self.unsent_votes.len() >= MAX_VOTES_PER_BLOCK {
                self.unsent_votes.remove(0);
            }
            self.unsent_votes.push(v.clone());
        }
        if let Some(cert) = self.votes.applied(&committee, me, index, own.as_ref()) {
            self.send_certified(&cert, None);
        }
    }

    /// A peer's votes, riding on its block: each kept if it verifies and its
    /// commit is in the window; a certificate one completes is sent.
    fn on_votes(&mut self, from: NodeId, votes: &[FactsVote]) {
        let committee = self.validator.committee().clone();
        let Some(who) = committee.index_of(&from) else {
            self.rejected_submissions += 1;
            return;
        };
        if votes.len() > MAX_VOTES_PER_BLOCK {
            self.rejected_submissions += 1;
            return;
        }
        for vote in votes {
            if !self.votes.wants(who, vote.index) {
                continue;
            }
            if vote.verify(&committee, who, &self.signatures).is_err() {
                self.rejected_submissions += 1;
                continue;
            }
            if let Some(cert) = self.votes.record(&committee, who, vote) {
                self.send_certified(&cert, None);
            }
        }
    }

    /// Sends the leaves of the certified commit that concern them, proven,
    /// to the subscribers that asked for certified facts (only to `to` if
    /// given): every one of them if the commit has facts for everyone,
    /// else those it concerns. Nothing if the commit's facts are no longer
    /// kept.
    fn send_certified(&mut self, cert: &Arc<FactsCertificate>, to: Option<AccountId>) {
        let Some(facts) = self
            .recent
            .iter()
            .find(|(i, _)| *i == cert.index)
            .map(|(_, f)| Arc::clone(f))
        else {
            return;
        };
        let mut send = |acct: &AccountId| {
            let leaves = facts.proven(acct);
            if !leaves.is_empty() {
                let msg = NodeMessage::Certified(ProvenFacts {
                    cert: Arc::clone(cert),
                    leaves,
                });
                self.out.push_back(Transmit::to(acct.node(), msg));
            }
        };
        match to {
            Some(acct) => send(&acct),
            None if facts.for_everyone() => self.subscribers.certified().for_each(send),
            None => {
                intersect_ascending(facts.accounts(), self.subscribers.certified()).for_each(send)
            }
        }
    }

    /// Sends `to` the facts about its account of the kept commits from
    /// `from` on (see [`GatewayRequest::SubscribeFrom`]), without the
    /// holdings reports it may have asked this validator for: reported, or
    /// proven for those certified when `mode` is [`FactsMode::Certified`].
    fn replay_facts(&mut self, to: NodeId, from: u64, mode: FactsMode) {
        let acct = to.account();
        match mode {
            FactsMode::Reported => {
                let kept = self.recent.iter().filter(|(index, _)| *index >= from);
                for (index, facts) in kept {
                    if let Some(batch) = facts.batch(&acct, false, mode, &self.state.ledger) {
                        send_facts(&mut self.out, to, *index, batch);
                    }
                }
            }
            FactsMode::Certified => {
                let certs: Vec<_> = self.votes.certificates_from(from).cloned().collect();
                for c in &certs {
                    self.send_certified(c, Some(acct));
                }
            }
            FactsMode::Silent => {}
        }
    }

    /// The subscribers that asked for their holdings (they hear them at
    /// this commit), counting the reports down.
    fn holdings_due(&mut self) -> BTreeSet<AccountId> {
        let due = self.holdings_wanted.keys().copied().collect();
        for left in self.holdings_wanted.values_mut() {
            *left -= 1;
        }
        self.holdings_wanted.retain(|_, left| *left > 0);
        due
    }

    /// Duties of this validator as a referee in a commit's notices: a
    /// ticket for every window it may sit in (sent by itself), and a
    /// [`ValidatorEvent::RefereeDuty`] for every committee it was seated on.
    fn referee_duties(&mut self, notices: &[Notice]) {
        let me = self.key.node_id();
        let referees = &self.state.apps.market.rules().referees;
        let (eligible, referee) = (referees.len(), referees.contains(&me));
        for n in notices {
            if let Notice::TicketWindow {
                client,
                job,
                lot,
                level,
                randomness,
                seats,
                ..
            } = n
                && referee
                && *client != me.account()
            {
                let lot_ref = (*client, *job, *lot);
                let seats = usize::from(*seats);
                if let Ok(sent) = self.submit_ticket(lot_ref, randomness, (seats, eligible)) {
                    self.events.push_back(ValidatorEvent::TicketDrawn {
                        client: *client,
                        job: *job,
                        lot: *lot,
                        level: *level,
                        sent,
                    });
                }
            }
            if let Notice::DisputeOpened {
                client,
                job,
                lot,
                provider,
                committee,
                disputed,
                ..
            } = n
                && committee.contains(&me)
            {
                let d = self
                    .desk
                    .duty((*client, *job, *lot), *provider, disputed.clone());
                self.report_duty(d);
            }
        }
    }

    fn report_duty(&mut self, d: referee::Duty) {
        let (client, job, lot) = d.lot;
        self.events.push_back(ValidatorEvent::RefereeDuty {
            client,
            job,
            lot,
            disputed: d.disputed,
            data: d.data,
        });
    }

    /// Votes, as a referee, the outputs it computed for a dispute's traps
    /// (in the order of the duty's `disputed`).
    pub fn vote(
        &mut self,
        client: AccountId,
        job: u64,
        lot: u32,
        outputs: Vec<Digest>,
    ) -> Result<(), SubmitError> {
        self.submit_own(&MarketTx::Vote {
            client,
            job,
            lot,
            outputs,
        })
    }

    fn gateway(&mut self, from: NodeId, req: GatewayRequest) {
        match req {
            GatewayRequest::Subscribe => self.subscribe_with(from, None, FactsMode::Reported),
            GatewayRequest::SubscribeFrom(index) => {
                self.subscribe_with(from, Some(index), FactsMode::Reported)
            }
            GatewayRequest::SubscribeWith { from: start, mode } => {
                self.subscribe_with(from, start, mode)
            }
            GatewayRequest::Replay { from: start } => {
                let queued = self.out.len();
                self.replay_facts(from, start, FactsMode::Certified);
                self.replayed += (self.out.len() - queued) as u64;
            }
            GatewayRequest::Submit(tx) => {
                self.subscribers.heard_from(from);
                let _ = self.submit(&tx);
            }
            GatewayRequest::Holdings => {
                self.subscribers.heard_from(from);
                if self.subscribers.get(&from.account()) == Some(from) {
                    self.holdings_wanted
                        .insert(from.account(), HOLDINGS_REPORTS);
                }
            }
        }
    }

    /// Subscribes `node` with its facts sent as `mode` says; with `start`,
    /// replays its facts from that commit on to a new subscriber, and the
    /// proven facts of the kept certificates to one that did not ask for
    /// them before.
    fn subscribe_with(&mut self, node: NodeId, start: Option<u64>, mode: FactsMode) {
        let s = self.subscribers.subscribe(node, mode);
        if let Some(gone) = s.evicted {
            self.holdings_wanted.remove(&gone);
        }
        let Some(index) = start else { return };
        if s.before != Some(mode) && (s.before.is_none() || mode == FactsMode::Certified) {
            self.replay_facts(node, index, mode);
        }
    }

    /// If the ledger refused one of this validator's own transactions (a
    /// vote or ticket that came too late), the nonces signed after it can
    /// never apply: sign the next ones from the ledger's nonce again
    /// (those still in flight may apply or fail; each is one message).
    fn own_rejections(&mut self, txs: &[&[u8]], r: &idlegrid_dag_ledger::ledger::BatchResult) {
        let me = self.key.account_id();
        let mine = r.receipts.iter().zip(txs).any(|(rc, tx)| {
            rc.is_err() && SignedTransaction::from_bytes(tx).is_ok_and(|t| t.tx.sender == me)
        });
        if mine {
            self.pending_nonce = self.state.ledger.nonce(&me).get();
        }
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

/// `facts` in pieces of at most `max` (`max > 0`), in order, none if it
/// is empty; `facts` itself, shared, when it fits in one (a subscriber's
/// facts of a commit almost always do).
fn pieces(facts: Arc<[Fact]>, max: usize) -> Vec<Arc<[Fact]>> {
    match facts.len() {
        0 => Vec::new(),
        n if n <= max => vec![facts],
        _ => facts.chunks(max).map(Arc::from).collect(),
    }
}

impl Machine for ValidatorNode {
    type Message = NodeMessage;
    type Event = ValidatorEvent;

    fn handle_message(&mut self, now: Timestamp, from: NodeId, msg: NodeMessage) {
        match msg {
            NodeMessage::Consensus(m) => self.validator.handle_message(now, from, m),
            NodeMessage::Voted { consensus, votes } => {
                self.on_votes(from, &votes);
                self.validator.handle_message(now, from, consensus)
            }
            NodeMessage::Gateway(r) => self.gateway(from, r),
            NodeMessage::Peer(crate::wire::PeerMessage::Evidence(e)) => {
                if let Some(d) = self.desk.evidence(from, e) {
                    self.report_duty(d);
                }
            }
            NodeMessage::Sync(m) => self.on_sync(now, from, m),
            NodeMessage::Facts(_) | NodeMessage::Certified(_) | NodeMessage::Peer(_) => {
                self.rejected_submissions += 1
            }
        }
        self.pump();
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        if self.validator.poll_timeout().is_some_and(|t| t <= now) {
            self.validator.handle_timeout(now);
        }
        self.sync_tick(now);
        self.pump();
    }

    fn poll_transmit(&mut self) -> Option<Transmit<NodeMessage>> {
        if let Some(t) = self.out.pop_front() {
            return Some(t);
        }
        // A commit's facts go to every subscriber at once; a drained
        // validator keeps room for a broadcast, not for that burst (a
        // simulator holds a hundred validators, each with thousands of
        // subscribers).
        let kept = 2 * self.peers.len().max(OUT_KEPT_MIN);
        if self.out.capacity() > kept {
            self.out.shrink_to(kept);
        }
        let t = self.validator.poll_transmit()?;
        match t.to {
            Destination::To(to) => Some(Transmit::to(to, NodeMessage::Consensus(t.msg))),
            Destination::Broadcast => {
                // Its own votes ride on its broadcasts (its blocks).
                let msg = match self.unsent_votes.is_empty() {
                    true => NodeMessage::Consensus(t.msg),
                    false => NodeMessage::Voted {
                        consensus: t.msg,
                        votes: std::mem::take(&mut self.unsent_votes).into(),
                    },
                };
                let (first, rest) = self.peers.split_first()?;
                for p in rest {
                    self.out.push_back(Transmit::to(*p, msg.clone()));
                }
                Some(Transmit::to(*first, msg))
            }
        }
    }

    fn poll_event(&mut self) -> Option<ValidatorEvent> {
        self.pump();
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        let sync = self.sync.as_ref().map(state_sync::StateSync::deadline);
        [self.validator.poll_timeout(), sync]
            .into_iter()
            .flatten()
            .min()
    }
}

/// The union of two ascending sequences, ascending, each item once.
fn union_ascending<'a, T: Ord + 'a>(
    a: impl Iterator<Item = &'a T>,
    b: impl Iterator<Item = &'a T>,
) -> impl Iterator<Item = &'a T> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) => match x.cmp(y) {
            std::cmp::Ordering::Less => a.next(),
            std::cmp::Ordering::Greater => b.next(),
            std::cmp::Ordering::Equal => {
                b.next();
                a.next()
            }
        },
        (Some(_), None) => a.next(),
        (None, _) => b.next(),
    })
}

/// The items two ascending sequences share, ascending.
fn intersect_ascending<'a, T: Ord + 'a>(
    a: impl Iterator<Item = &'a T>,
    b: impl Iterator<Item = &'a T>,
) -> impl Iterator<Item = &'a T> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || {
        loop {
            match a.peek()?.cmp(b.peek()?) {
                std::cmp::Ordering::Less => drop(a.next()),
                std::cmp::Ordering::Greater => drop(b.next()),
                std::cmp::Ordering::Equal => {
                    b.next();
                    return a.next();
                }
            }
        }
    })
}

/// Queues `batch`, the facts of commit `index` for `to`, in pieces of at
/// most [`MAX_FACTS_PER_BATCH`](crate::wire::MAX_FACTS_PER_BATCH).
fn send_facts(
    out: &mut std::collections::VecDeque<Transmit<NodeMessage>>,
    to: NodeId,
    index: u64,
    batch: std::sync::Arc<[Fact]>,
) {
    for facts in pieces(batch, crate::wire::MAX_FACTS_PER_BATCH) {
        let batch = FactBatch { index, facts };
        out.push_back(Transmit::to(to, NodeMessage::Facts(batch)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(n: u8) -> Fact {
        Fact::SealingClosed {
            batch: crate::market::BatchNo(u64::from(n)),
        }
    }

    proptest::proptest! {
        /// The union (intersection) of two ascending sequences is the
        /// sorted set union (intersection).
        #[test]
        fn union_and_intersection_ascending_are_the_set_operations(
            a in proptest::collection::btree_set(0u8..40, 0..20),
            b in proptest::collection::btree_set(0u8..40, 0..20),
        ) {
            let got: Vec<u8> = union_ascending(a.iter(), b.iter()).copied().collect();
            let want: Vec<u8> = a.union(&b).copied().collect();
            proptest::prop_assert_eq!(got, want);
            let got: Vec<u8> = intersect_ascending(a.iter(), b.iter()).copied().collect();
            let want: Vec<u8> = a.intersection(&b).copied().collect();
            proptest::prop_assert_eq!(got, want);
        }

        /// The pieces are `chunks`' pieces, the empty batch none, and a
        /// batch that fits is sent as it is.
        #[test]
        fn pieces_are_chunks(n in 0u8..40, max in 1usize..12) {
            let facts: Arc<[Fact]> = (0..n).map(fact).collect();
            let want: Vec<Vec<Fact>> = facts.chunks(max).map(<[Fact]>::to_vec).collect();
            let got = pieces(Arc::clone(&facts), max);
            proptest::prop_assert_eq!(got.iter().map(|p| p.to_vec()).collect::<Vec<_>>(), want);
            if !facts.is_empty() && facts.len() <= max {
                proptest::prop_assert!(Arc::ptr_eq(&got[0], &facts));
            }
        }
    }
}
