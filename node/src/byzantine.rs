//! Byzantine behaviours as wrappers around the honest machines (the way
//! commonware's consensus mocks are built): the honest code has no switch
//! for them. Test and simulation code.
//!
//! - Consensus misbehaviour (an [`Equivocator`], a [`Withholder`], an
//!   [`InvalidBlockAuthor`]) wraps a whole [`ValidatorNode`] with the
//!   consensus crate's [`Byzantine`] wrapper: a node message carries
//!   consensus messages ([`Envelope`]), which the adversary rewrites; the
//!   ledger, the marketplace and the gateway inside stay honest.
//! - A [`LyingGateway`] forges the facts a validator serves its light
//!   nodes; a [`LeafWithholder`] holds back the ones they must act on.
//! - A [`Forger`] (a [`ForgingProposer`] around an honest node) puts
//!   transactions with forged signatures into its own blocks, past its own
//!   gateway.
//!
//! ```
//! use idlegrid_node::byzantine::{ByzantineBehavior, Participant};
//! use idlegrid_node::validator::ValidatorNode;
//! # fn wrap(node: ValidatorNode, key: &idlegrid_primitives::Keypair,
//! #         committee: &idlegrid_dag_ledger::consensus::Committee) -> Participant<ValidatorNode> {
//! // The honest node, signing a second block for every round it proposes.
//! Participant::byzantine(node, ByzantineBehavior::Equivocate, key, committee)
//! # }
//! ```

use idlegrid_dag_ledger::consensus::ConsensusMessage;
pub use idlegrid_dag_ledger::consensus::byzantine::{
    Adversary, Byzantine, ByzantineBehavior, Envelope, Equivocator, InvalidBlockAuthor,
    Participant, Recipient, Withholder,
};
use idlegrid_dag_ledger::ledger::{Transaction, TxKind};
use idlegrid_entrap::SubtaskIndex;
use idlegrid_primitives::{
    AccountId, Amount, Digest, Domain, Duration, Keypair, Machine, NodeId, Seed, Timestamp,
    Transmit,
};

use crate::validator::{ValidatorEvent, ValidatorNode};
use crate::wire::{Fact, NodeMessage};

const FORGE_DOMAIN: Domain = Domain::new("idlegrid/node/byzantine/forged");

/// A validator that serves its subscribers forged facts next to the true
/// ones: every delivery comes with a second one whose outputs are wrong
/// (a client acting on it would accuse an honest provider), every opened
/// round with an accusation the client never made (a provider acting on it
/// would confess), every match with a richer twin and every settlement
/// with one that pays double.
#[derive(Debug)]
pub struct LyingGateway {
    inner: ValidatorNode,
    forged: u64,
}

impl LyingGateway {
    /// Wraps an honest validator.
    pub fn new(inner: ValidatorNode) -> Self {
        Self { inner, forged: 0 }
    }

    /// Facts forged so far.
    pub fn forged(&self) -> u64 {
        self.forged
    }

    fn forge(f: &Fact) -> Option<Fact> {
        let mut f = f.clone();
        match &mut f {
            Fact::Delivered { outputs, .. } => {
                for o in outputs.iter_mut() {
                    *o = Digest::of(FORGE_DOMAIN, o);
                }
            }
            Fact::RoundOpened {
                client,
                job,
                lot,
                provider,
                ..
            } => {
                return Some(Fact::Accused {
                    client: *client,
                    job: *job,
                    lot: *lot,
                    provider: *provider,
                    traps: vec![SubtaskIndex::new(0)],
                });
            }
            Fact::Matched { price, .. } => *price = price.saturating_add(Amount::new(1)),
            Fact::Settled(s) => s.paid = s.paid.saturating_add(s.paid),
            _ => return None,
        }
        Some(f)
    }
}

impl Machine for LyingGateway {
    type Message = NodeMessage;
    type Event = ValidatorEvent;

    fn handle_message(&mut self, now: Timestamp, from: NodeId, msg: NodeMessage) {
        self.inner.handle_message(now, from, msg);
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        self.inner.handle_timeout(now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit<NodeMessage>> {
        let mut t = self.inner.poll_transmit()?;
        if let NodeMessage::Facts(batch) = &mut t.msg {
            let forged: Vec<Fact> = batch.facts.iter().filter_map(Self::forge).collect();
            self.forged += forged.len() as u64;
            batch.facts = batch.facts.iter().cloned().chain(forged).collect();
        }
        if let NodeMessage::Certified(proven) = &mut t.msg {
            // A sealing batch announced closed one batch early would make
            // sealers reveal their prices while others may still seal:
            // forged under the honest proof and certificate.
            for leaf in &mut proven.leaves {
                if !leaf.facts.iter().any(Fact::to_every_subscriber) {
                    continue;
                }
                leaf.facts = leaf
                    .facts
                    .iter()
                    .map(|f| match f {
                        Fact::SealingClosed { batch } => Fact::SealingClosed {
                            batch: crate::market::BatchNo(batch.0 + 1),
                        },
                        f => f.clone(),
                    })
                    .collect();
                self.forged += 1;
            }
        }
        Some(t)
    }

    fn poll_event(&mut self) -> Option<ValidatorEvent> {
        self.inner.poll_event()
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        self.inner.poll_timeout()
    }
}

/// A validator that serves its light nodes their certified facts except
/// the leaves they must act on before a deadline and that another party's
/// transaction makes: a lot's match, its round's opening, its delivery, an
/// accusation. Everything else it serves, so its subscribers never find it
/// silent; a certificate proves what a leaf says, not that every leaf was
/// sent. Used by [`WithholdingGateway`] and by the simulator's
/// `withhold_facts` validators (their drivers drop each message
/// [`LeafWithholder::withholds`]).
#[derive(Debug, Default)]
pub struct LeafWithholder {
    withheld: u64,
}

impl LeafWithholder {
    /// Whether `t` is withheld (counted if so).
    pub fn withholds(&mut self, t: &Transmit<NodeMessage>) -> bool {
        let NodeMessage::Certified(proven) = &t.msg else {
            return false;
        };
        let deadline_bound = |f: &Fact| {
            matches!(
                f,
                Fact::Matched { .. }
                    | Fact::RoundOpened { .. }
                    | Fact::Delivered { .. }
                    | Fact::Accused { .. }
            )
        };
        let hit = proven
            .leaves
            .iter()
            .any(|l| l.facts.iter().any(deadline_bound));
        self.withheld += u64::from(hit);
        hit
    }

    /// Messages withheld so far.
    pub fn withheld(&self) -> u64 {
        self.withheld
    }

    /// The next message `poll` yields that is not withheld: what a driver
    /// sends instead of the validator's own next message.
    pub fn next(
        &mut self,
        mut poll: impl FnMut() -> Option<Transmit<NodeMessage>>,
    ) -> Option<Transmit<NodeMessage>> {
        std::iter::from_fn(&mut poll).find(|t| !self.withholds(t))
    }
}

/// An honest validator behind a [`LeafWithholder`]: what a driver that
/// runs validators as machines (the local testnet) puts in the committee.
#[derive(Debug)]
pub struct WithholdingGateway {
    inner: ValidatorNode,
    withholder: LeafWithholder,
}

impl WithholdingGateway {
    /// Wraps an honest validator.
    pub fn new(inner: ValidatorNode) -> Self {
        Self {
            inner,
            withholder: LeafWithholder::default(),
        }
    }

    /// Messages withheld so far.
    pub fn withheld(&self) -> u64 {
        self.withholder.withheld()
    }
}

impl Machine for WithholdingGateway {
    type Message = NodeMessage;
    type Event = ValidatorEvent;

    fn handle_message(&mut self, now: Timestamp, from: NodeId, msg: NodeMessage) {
        self.inner.handle_message(now, from, msg);
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        self.inner.handle_timeout(now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit<NodeMessage>> {
        let inner = &mut self.inner;
        self.withholder.next(|| inner.poll_transmit())
    }

    fn poll_event(&mut self) -> Option<ValidatorEvent> {
        self.inner.poll_event()
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        self.inner.poll_timeout()
    }
}

/// What a Byzantine proposer does to forge transactions: every
/// [`Forger::EVERY`], at most [`Forger::MAX`] times, it puts into its own
/// node's consensus queue a transfer of half the victim's balance to its
/// [`Forger::sink`], at the victim's current nonce, signed with its own key
/// instead of the victim's. It goes in directly, past the gateway's check,
/// as any proposer can put any bytes into its block. Every validator
/// applying the commit must refuse it (`BadSignature`), the forger's own
/// ledger included (its ledger stays honest), so the sink, an account
/// nobody else pays, must stay empty. Used by [`ForgingProposer`] and by
/// the simulator's `forge` validators.
#[derive(Debug)]
pub struct Forger {
    key: Keypair,
    victim: Option<AccountId>,
    forged: u64,
    next_at: Timestamp,
}

impl Forger {
    /// Time between two forgeries.
    pub const EVERY: Duration = Duration::from_millis(500);
    /// Forgeries at most.
    pub const MAX: u64 = 4;

    /// A forger signing with `key` (its node's key), taking from `victim`,
    /// or, with `None`, from the richest other account its ledger holds at
    /// the time.
    pub fn new(key: Keypair, victim: Option<AccountId>) -> Self {
        Self {
            key,
            victim,
            forged: 0,
            next_at: Timestamp::ZERO,
        }
    }

    /// Where the forger with `key` sends what it forges: an account (a
    /// key derived from the forger's) only a forged transfer pays.
    pub fn sink(key: &Keypair) -> AccountId {
        let seed = Digest::of(FORGE_DOMAIN, &key.account_id()).to_bytes();
        Keypair::from_seed(&Seed::from_bytes(seed)).account_id()
    }

    /// Forged transactions queued so far.
    pub fn forged(&self) -> u64 {
        self.forged
    }

    /// This forger's [`Forger::sink`].
    pub fn sink_account(&self) -> AccountId {
        Self::sink(&self.key)
    }

    /// Forges into `node`'s queue if it is time to.
    pub fn act(&mut self, node: &mut ValidatorNode, now: Timestamp) {
        if now < self.next_at || self.forged >= Self::MAX {
            return;
        }
        self.next_at = now + Self::EVERY;
        let ledger = node.ledger();
        let me = self.key.account_id();
        let victim = self.victim.or_else(|| {
            let others = ledger.accounts().filter(|(a, _)| **a != me);
            others.max_by_key(|(_, acc)| acc.balance).map(|(a, _)| *a)
        });
        let Some(victim) = victim else { return };
        let balance = ledger.balance(&victim);
        if balance.get() < 2 {
            return;
        }
        // The victim's transaction, signed with the forger's key.
        let signed = Transaction {
            chain: ledger.params().chain_id,
            sender: victim,
            nonce: ledger.nonce(&victim),
            kind: TxKind::Transfer {
                to: Self::sink(&self.key),
                amount: Amount::new(balance.get() / 2),
            },
        }
        .sign(&self.key);
        if node.queue_unchecked(signed.to_bytes()).is_ok() {
            self.forged += 1;
        }
    }
}

/// A validator that forges transactions into its own blocks (a
/// [`Forger`] around an honest node).
#[derive(Debug)]
pub struct ForgingProposer {
    inner: ValidatorNode,
    forger: Forger,
}

impl ForgingProposer {
    /// `inner` (whose key is `key`) forging transfers out of `victim`.
    pub fn new(inner: ValidatorNode, key: Keypair, victim: AccountId) -> Self {
        Self {
            inner,
            forger: Forger::new(key, Some(victim)),
        }
    }

    /// Forged transactions queued so far.
    pub fn forged(&self) -> u64 {
        self.forger.forged()
    }
}

impl Machine for ForgingProposer {
    type Message = NodeMessage;
    type Event = ValidatorEvent;

    fn handle_message(&mut self, now: Timestamp, from: NodeId, msg: NodeMessage) {
        self.forger.act(&mut self.inner, now);
        self.inner.handle_message(now, from, msg);
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        self.forger.act(&mut self.inner, now);
        self.inner.handle_timeout(now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit<NodeMessage>> {
        self.inner.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<ValidatorEvent> {
        self.inner.poll_event()
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        self.inner.poll_timeout()
    }
}

impl Envelope for NodeMessage {
    /// The consensus message, for an adversary to rewrite; votes riding on
    /// a block are dropped with it (a Byzantine validator's votes are its
    /// own to withhold, and it sends the rewritten block without them).
    fn open(self) -> Result<ConsensusMessage, Self> {
        match self {
            NodeMessage::Consensus(m) | NodeMessage::Voted { consensus: m, .. } => Ok(m),
            other => Err(other),
        }
    }
    fn seal(msg: ConsensusMessage) -> Self {
        NodeMessage::Consensus(msg)
    }
}
