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
//!   nodes.
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
use idlegrid_entrap::SubtaskIndex;
use idlegrid_primitives::{Amount, Digest, Domain, Machine, NodeId, Timestamp, Transmit};

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
            batch.facts.extend(forged);
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

impl Envelope for NodeMessage {
    fn open(self) -> Result<ConsensusMessage, Self> {
        match self {
            NodeMessage::Consensus(m) => Ok(m),
            other => Err(other),
        }
    }
    fn seal(msg: ConsensusMessage) -> Self {
        NodeMessage::Consensus(msg)
    }
}
