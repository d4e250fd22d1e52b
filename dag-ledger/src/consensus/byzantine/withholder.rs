//! A validator that keeps its blocks from most of its peers.

use super::{Adversary, Recipient, own_block};
use crate::consensus::committee::AuthorityIndex;
use crate::consensus::message::ConsensusMessage;

/// Sends its own blocks only to the first `recipients` peers (in committee
/// order) and drops every answer to a fetch or latest-block request: the
/// other validators learn its blocks only through the few that received
/// them, if at all.
#[derive(Debug)]
pub struct Withholder {
    me: AuthorityIndex,
    recipients: usize,
    dropped: u64,
}

impl Withholder {
    /// The withholder of validator `me`, still sending its blocks to
    /// `recipients` peers.
    pub fn new(me: AuthorityIndex, recipients: u32) -> Self {
        Self {
            me,
            recipients: recipients as usize,
            dropped: 0,
        }
    }

    /// Messages dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl Adversary for Withholder {
    fn per_peer(&self, msg: &ConsensusMessage) -> bool {
        own_block(msg, self.me)
    }

    fn rewrite(&mut self, to: Recipient, msg: ConsensusMessage) -> Option<ConsensusMessage> {
        let keep = match (&msg, to) {
            (ConsensusMessage::FetchResponse(_), _)
            | (ConsensusMessage::LatestOwnBlockResponse(_), _) => false,
            (m, Recipient::Peer { position, .. }) if own_block(m, self.me) => {
                position < self.recipients
            }
            (m, Recipient::All) => !own_block(m, self.me),
            _ => true,
        };
        if !keep {
            self.dropped += 1;
        }
        keep.then_some(msg)
    }
}
