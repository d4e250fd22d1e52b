//! **Adversary code for tests and simulations**: Byzantine validators as
//! wrappers around the honest [`Validator`], the way commonware's
//! consensus mocks (`equivocator.rs`, `conflicter.rs`, …) sit beside the
//! honest engine. The honest validator has no switch for any of this.
//!
//! A [`Byzantine`] machine drives an honest inner machine unchanged and
//! rewrites what it sends, through an [`Adversary`]:
//!
//! - [`Equivocator`]: holding the validator's signing key, signs a second,
//!   conflicting block for each of its own blocks and sends one version to
//!   half of its peers and the other to the other half;
//! - [`Withholder`]: sends its own blocks to its first few peers only and
//!   serves no fetch or latest-block request;
//! - [`InvalidBlockAuthor`]: re-signs each of its own blocks with only its
//!   own previous block as parent (less than a quorum), which honest
//!   validators reject.
//!
//! The inner machine may be a bare [`Validator`] (consensus tests, the
//! harness, the simulator's consensus scenario, the fuzz fixture) or any
//! machine whose messages carry consensus messages ([`Envelope`]), such as
//! a whole ledger node: the node crate wraps its validator node the same
//! way. [`ByzantineBehavior`] names the behaviours so that a test or a
//! scenario can describe a committee as data, and [`Participant`] holds
//! either an honest machine or a wrapped one.
//!
//! The module is compiled in every build rather than behind a feature: the
//! in-crate [`harness`](super::harness) (public, used by benches and other
//! crates' tests), the simulator and the fuzz fixture all need it, and the
//! wrappers only use the public API an outsider already has (a keypair and
//! [`Block::new_signed`]); they give a Byzantine node nothing it could not
//! build for itself.
//!
//! ```
//! use idlegrid_dag_ledger::consensus::byzantine::{ByzantineBehavior, Participant};
//! use idlegrid_dag_ledger::consensus::{Committee, ConsensusConfig, ConsensusMessage, Validator};
//! use idlegrid_primitives::{Destination, Keypair, Machine, Seed, Timestamp};
//!
//! let keys: Vec<Keypair> = (0..4).map(|i| Keypair::from_seed(&Seed::from_u64(i))).collect();
//! let committee = Committee::equal(keys.iter().map(Keypair::node_id)).unwrap();
//! let honest = Validator::new(keys[0].clone(), committee.clone(), ConsensusConfig::default(), Seed::from_u64(9)).unwrap();
//! let mut v = Participant::byzantine(honest, ByzantineBehavior::Equivocate, &keys[0], &committee);
//! v.handle_timeout(Timestamp::ZERO); // the honest validator proposes round 1...
//! let sent: Vec<_> = std::iter::from_fn(|| v.poll_transmit()).collect();
//! // ...and its three peers each get a block of round 1, in two versions.
//! assert_eq!(sent.len(), 3);
//! assert!(sent.iter().all(|t| matches!(t.to, Destination::To(_))));
//! let digests: std::collections::BTreeSet<_> = sent
//!     .iter()
//!     .map(|t| match &t.msg {
//!         ConsensusMessage::Block(b) => b.header.digest(),
//!         _ => unreachable!(),
//!     })
//!     .collect();
//! assert_eq!(digests.len(), 2);
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Debug;

use idlegrid_primitives::{Destination, Keypair, Machine, NodeId, Timestamp, Transmit};

#[cfg(doc)]
use super::Block;
use super::committee::{AuthorityIndex, Committee};
use super::message::ConsensusMessage;
use super::validator::Validator;

mod equivocator;
mod invalid;
mod withholder;

pub use equivocator::Equivocator;
pub use invalid::InvalidBlockAuthor;
pub use withholder::Withholder;

/// Where a message an honest machine sent is going.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipient {
    /// A broadcast to every peer that the adversary did not ask to split
    /// ([`Adversary::per_peer`]).
    All,
    /// One committee peer.
    Peer {
        /// Its node.
        node: NodeId,
        /// Its position among the peers (the committee in order, without
        /// the wrapped validator).
        position: usize,
    },
}

/// How a Byzantine validator tampers with what its honest machine sends.
pub trait Adversary: Debug + Send {
    /// Whether a broadcast of `msg` is split into one copy per peer, so
    /// that [`Adversary::rewrite`] sees each recipient.
    fn per_peer(&self, msg: &ConsensusMessage) -> bool;

    /// What leaves instead of `msg` for `to`: a replacement, the message
    /// itself, or nothing (dropped).
    fn rewrite(&mut self, to: Recipient, msg: ConsensusMessage) -> Option<ConsensusMessage>;
}

impl<A: Adversary + ?Sized> Adversary for Box<A> {
    fn per_peer(&self, msg: &ConsensusMessage) -> bool {
        (**self).per_peer(msg)
    }
    fn rewrite(&mut self, to: Recipient, msg: ConsensusMessage) -> Option<ConsensusMessage> {
        (**self).rewrite(to, msg)
    }
}

/// A wire message that may carry a consensus message (so that an
/// [`Adversary`] can wrap a machine that speaks more than consensus).
pub trait Envelope: Sized {
    /// The consensus message inside, or the message unchanged.
    fn open(self) -> Result<ConsensusMessage, Self>;
    /// Wraps a consensus message.
    fn seal(msg: ConsensusMessage) -> Self;
}

impl Envelope for ConsensusMessage {
    fn open(self) -> Result<ConsensusMessage, Self> {
        Ok(self)
    }
    fn seal(msg: ConsensusMessage) -> Self {
        msg
    }
}

/// The Byzantine behaviours, as data (for test tables and scenarios).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ByzantineBehavior {
    /// [`Equivocator`]: two blocks per round, one to each half of the peers.
    Equivocate,
    /// [`Withholder`]: its blocks reach only the first `recipients` peers
    /// (in committee order); it serves no fetches. `0` keeps every block
    /// to itself.
    Withhold {
        /// How many peers still receive its blocks.
        recipients: u32,
    },
    /// [`InvalidBlockAuthor`]: its blocks reference only its own previous
    /// block (less than a quorum of parents); honest validators reject
    /// them.
    TooFewParents,
}

impl ByzantineBehavior {
    /// The adversary for the validator holding `key` in `committee`.
    ///
    /// # Panics
    /// If `key` is not a committee member (a test bug).
    pub fn adversary(self, key: &Keypair, committee: &Committee) -> Box<dyn Adversary> {
        let me = committee
            .index_of(&key.node_id())
            .expect("a Byzantine validator is a committee member");
        match self {
            Self::Equivocate => Box::new(Equivocator::new(key.clone(), me)),
            Self::Withhold { recipients } => Box::new(Withholder::new(me, recipients)),
            Self::TooFewParents => Box::new(InvalidBlockAuthor::new(key.clone(), me)),
        }
    }
}

/// An honest machine `M` whose transmits an [`Adversary`] rewrites (see
/// the module docs). Inputs, events and timeouts pass through unchanged.
pub struct Byzantine<M: Machine, A> {
    inner: M,
    adversary: A,
    /// Peers in committee order, and each one's position.
    peers: Vec<NodeId>,
    position: BTreeMap<NodeId, usize>,
    out: VecDeque<Transmit<M::Message>>,
}

impl<M: Machine + Debug, A: Debug> Debug for Byzantine<M, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Byzantine")
            .field("inner", &self.inner)
            .field("adversary", &self.adversary)
            .finish_non_exhaustive()
    }
}

impl<M: Machine, A: Adversary> Byzantine<M, A>
where
    M::Message: Envelope,
{
    /// Wraps `inner`, the machine of validator `me` in `committee`.
    pub fn new(inner: M, adversary: A, me: NodeId, committee: &Committee) -> Self {
        let peers: Vec<NodeId> = committee
            .authorities()
            .iter()
            .map(|a| a.node)
            .filter(|n| *n != me)
            .collect();
        let position = peers.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        Self {
            inner,
            adversary,
            peers,
            position,
            out: VecDeque::new(),
        }
    }

    /// The honest machine inside.
    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// The honest machine inside (to submit transactions, read state…).
    pub fn inner_mut(&mut self) -> &mut M {
        &mut self.inner
    }

    /// The adversary.
    pub fn adversary(&self) -> &A {
        &self.adversary
    }

    fn rewrite(&mut self, t: Transmit<M::Message>) {
        let msg = match t.msg.open() {
            Ok(m) => m,
            Err(other) => {
                self.out.push_back(Transmit {
                    to: t.to,
                    msg: other,
                });
                return;
            }
        };
        match t.to {
            Destination::Broadcast if self.adversary.per_peer(&msg) => {
                for position in 0..self.peers.len() {
                    let node = self.peers[position];
                    let to = Recipient::Peer { node, position };
                    if let Some(m) = self.adversary.rewrite(to, msg.clone()) {
                        self.out.push_back(Transmit::to(node, M::Message::seal(m)));
                    }
                }
            }
            Destination::Broadcast => {
                if let Some(m) = self.adversary.rewrite(Recipient::All, msg) {
                    self.out.push_back(Transmit::broadcast(M::Message::seal(m)));
                }
            }
            Destination::To(node) => {
                let sent = match self.position.get(&node) {
                    Some(&position) => {
                        let to = Recipient::Peer { node, position };
                        self.adversary.rewrite(to, msg)
                    }
                    // Not a committee peer: nothing to tamper with.
                    None => Some(msg),
                };
                if let Some(m) = sent {
                    self.out.push_back(Transmit::to(node, M::Message::seal(m)));
                }
            }
        }
    }
}

impl<M: Machine, A: Adversary> Machine for Byzantine<M, A>
where
    M::Message: Envelope,
{
    type Message = M::Message;
    type Event = M::Event;

    fn handle_message(&mut self, now: Timestamp, from: NodeId, msg: M::Message) {
        self.inner.handle_message(now, from, msg);
    }
    fn handle_timeout(&mut self, now: Timestamp) {
        self.inner.handle_timeout(now);
    }
    fn poll_transmit(&mut self) -> Option<Transmit<M::Message>> {
        loop {
            if let Some(t) = self.out.pop_front() {
                return Some(t);
            }
            let t = self.inner.poll_transmit()?;
            self.rewrite(t);
        }
    }
    fn poll_event(&mut self) -> Option<M::Event> {
        self.inner.poll_event()
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        self.inner.poll_timeout()
    }
}

/// One member of a test committee: an honest machine, or one wrapped by
/// an adversary. Drive it as any [`Machine`]; [`Participant::inner`]
/// reaches the honest machine in both cases.
#[derive(Debug)]
pub enum Participant<M: Machine> {
    /// Follows the protocol.
    Honest(M),
    /// Wrapped by an adversary.
    Byzantine(Byzantine<M, Box<dyn Adversary>>),
}

impl<M: Machine> Participant<M>
where
    M::Message: Envelope,
{
    /// `inner` (the machine of `key` in `committee`) with `behavior`.
    pub fn byzantine(
        inner: M,
        behavior: ByzantineBehavior,
        key: &Keypair,
        committee: &Committee,
    ) -> Self {
        let adversary = behavior.adversary(key, committee);
        Self::Byzantine(Byzantine::new(inner, adversary, key.node_id(), committee))
    }

    /// `inner` with `behavior`, or honest if `None`.
    pub fn new(
        inner: M,
        behavior: Option<ByzantineBehavior>,
        key: &Keypair,
        committee: &Committee,
    ) -> Self {
        match behavior {
            Some(b) => Self::byzantine(inner, b, key, committee),
            None => Self::Honest(inner),
        }
    }

    /// True unless wrapped by an adversary.
    pub fn is_honest(&self) -> bool {
        matches!(self, Self::Honest(_))
    }

    /// The honest machine.
    pub fn inner(&self) -> &M {
        match self {
            Self::Honest(m) => m,
            Self::Byzantine(b) => b.inner(),
        }
    }

    /// The honest machine.
    pub fn inner_mut(&mut self) -> &mut M {
        match self {
            Self::Honest(m) => m,
            Self::Byzantine(b) => b.inner_mut(),
        }
    }
}

impl Participant<Validator> {
    /// Decodes and handles raw bytes (see [`Validator::handle_bytes`]).
    pub fn handle_bytes(&mut self, now: Timestamp, from: NodeId, bytes: &[u8]) {
        self.inner_mut().handle_bytes(now, from, bytes);
    }
}

impl<M: Machine> Machine for Participant<M>
where
    M::Message: Envelope,
{
    type Message = M::Message;
    type Event = M::Event;

    fn handle_message(&mut self, now: Timestamp, from: NodeId, msg: M::Message) {
        match self {
            Self::Honest(m) => m.handle_message(now, from, msg),
            Self::Byzantine(b) => b.handle_message(now, from, msg),
        }
    }
    fn handle_timeout(&mut self, now: Timestamp) {
        match self {
            Self::Honest(m) => m.handle_timeout(now),
            Self::Byzantine(b) => b.handle_timeout(now),
        }
    }
    fn poll_transmit(&mut self) -> Option<Transmit<M::Message>> {
        match self {
            Self::Honest(m) => m.poll_transmit(),
            Self::Byzantine(b) => b.poll_transmit(),
        }
    }
    fn poll_event(&mut self) -> Option<M::Event> {
        match self {
            Self::Honest(m) => m.poll_event(),
            Self::Byzantine(b) => b.poll_event(),
        }
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        match self {
            Self::Honest(m) => m.poll_timeout(),
            Self::Byzantine(b) => b.poll_timeout(),
        }
    }
}

/// True if `msg` is a block authored by `me`.
fn own_block(msg: &ConsensusMessage, me: AuthorityIndex) -> bool {
    matches!(msg, ConsensusMessage::Block(b) if b.header.author == me)
}

#[cfg(test)]
mod tests;
