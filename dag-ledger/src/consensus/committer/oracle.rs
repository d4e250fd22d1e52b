//! The commit rule as first written: every certificate recounted from
//! scratch on every call. Test oracle for the counting [`Committer`].
//!
//! [`Committer`]: super::Committer

use std::sync::Arc;

use idlegrid_primitives::Round;

use super::{DecisionKind, LeaderSlot, LeaderStatus};
use crate::consensus::block::VerifiedBlock;
use crate::consensus::committee::{Committee, StakeAggregator};
use crate::consensus::dag::DagStore;
use crate::consensus::leader_schedule::LeaderSchedule;

/// The straightforward committer (no counts kept).
#[derive(Clone, Debug)]
pub(super) struct OracleCommitter {
    committee: Arc<Committee>,
    schedule: Arc<dyn LeaderSchedule>,
    leaders_per_round: u32,
}

impl OracleCommitter {
    /// The reference committer with the same parameters as `Committer::new`.
    pub fn new(
        committee: Arc<Committee>,
        schedule: Arc<dyn LeaderSchedule>,
        leaders_per_round: u32,
    ) -> Self {
        assert!(leaders_per_round >= 1);
        let leaders_per_round = leaders_per_round.min(committee.size() as u32);
        Self {
            committee,
            schedule,
            leaders_per_round,
        }
    }

    /// The leader slots of `round` (none for genesis round 0).
    pub fn slots(&self, round: Round) -> Vec<LeaderSlot> {
        if round == Round::ZERO {
            return Vec::new();
        }
        (0..self.leaders_per_round)
            .map(|offset| LeaderSlot {
                round,
                offset,
                authority: self.schedule.leader(&self.committee, round, offset),
            })
            .collect()
    }

    fn is_vote(voter: &VerifiedBlock, leader: &VerifiedBlock) -> bool {
        voter.parent_by(leader.author()) == Some(&leader.reference())
    }

    fn is_certificate(
        &self,
        cert: &VerifiedBlock,
        leader: &VerifiedBlock,
        store: &DagStore,
    ) -> bool {
        let vote_round = leader.round().next();
        let mut votes = StakeAggregator::new(&self.committee);
        for p in cert.parents().iter().filter(|p| p.round == vote_round) {
            if let Some(voter) = store.get(p)
                && Self::is_vote(voter, leader)
                && self
                    .committee
                    .is_quorum(votes.add(voter.author(), &self.committee))
            {
                return true;
            }
        }
        false
    }

    /// Direct decision for `slot` (commit, skip, or undecided).
    pub fn try_direct_decide(&self, slot: LeaderSlot, store: &DagStore) -> LeaderStatus {
        let vote_round = slot.round.next();
        let cert_round = vote_round.next();
        for leader in store.slot(slot.round, slot.authority) {
            let mut certs = StakeAggregator::new(&self.committee);
            for c in store.round_blocks(cert_round) {
                if self.is_certificate(c, leader, store)
                    && self
                        .committee
                        .is_quorum(certs.add(c.author(), &self.committee))
                {
                    return LeaderStatus::Commit {
                        slot,
                        block: leader.clone(),
                        kind: DecisionKind::Direct,
                    };
                }
            }
        }
        let mut blame = StakeAggregator::new(&self.committee);
        for b in store.round_blocks(vote_round) {
            let links = b
                .parent_by(slot.authority)
                .is_some_and(|p| p.round == slot.round);
            if !links
                && self
                    .committee
                    .is_quorum(blame.add(b.author(), &self.committee))
            {
                return LeaderStatus::Skip {
                    slot,
                    kind: DecisionKind::Direct,
                };
            }
        }
        LeaderStatus::Undecided(slot)
    }

    /// Indirect decision for `slot` given the statuses of later slots in
    /// increasing order (`later`).
    pub fn try_indirect_decide<'a>(
        &self,
        slot: LeaderSlot,
        later: impl IntoIterator<Item = &'a LeaderStatus>,
        store: &DagStore,
    ) -> LeaderStatus {
        let anchor_round = slot.round.plus(3);
        let cert_round = slot.round.plus(2);
        for status in later {
            if status.slot().round < anchor_round {
                continue;
            }
            match status {
                LeaderStatus::Undecided(_) => return LeaderStatus::Undecided(slot),
                LeaderStatus::Skip { .. } => continue,
                LeaderStatus::Commit { block: anchor, .. } => {
                    let certs = store.reachable_at(anchor, cert_round);
                    for leader in store.slot(slot.round, slot.authority) {
                        if certs.iter().any(|c| self.is_certificate(c, leader, store)) {
                            return LeaderStatus::Commit {
                                slot,
                                block: leader.clone(),
                                kind: DecisionKind::Indirect,
                            };
                        }
                    }
                    return LeaderStatus::Skip {
                        slot,
                        kind: DecisionKind::Indirect,
                    };
                }
            }
        }
        LeaderStatus::Undecided(slot)
    }

    /// Decides every slot after position `after` (all slots if `None`) up
    /// to the highest round that can be decided, and returns the decided
    /// prefix in slot order (stopping before the first undecided slot).
    pub fn try_decide(&self, store: &DagStore, after: Option<(Round, u32)>) -> Vec<LeaderStatus> {
        let highest = store.highest_round();
        let Some(last) = highest.get().checked_sub(2).map(Round::new) else {
            return Vec::new();
        };
        let start = after.map_or(Round::new(1), |(r, _)| r).max(Round::new(1));
        let mut slots = Vec::new();
        let mut r = start;
        while r <= last {
            slots.extend(
                self.slots(r)
                    .into_iter()
                    .filter(|s| after.is_none_or(|a| s.position() > a)),
            );
            r = r.next();
        }
        // Decide from the latest slot backwards so that anchors are known.
        let mut rev: Vec<LeaderStatus> = Vec::with_capacity(slots.len());
        for &slot in slots.iter().rev() {
            let mut status = self.try_direct_decide(slot, store);
            if !status.is_decided() {
                status = self.try_indirect_decide(slot, rev.iter().rev(), store);
            }
            rev.push(status);
        }
        rev.into_iter()
            .rev()
            .take_while(LeaderStatus::is_decided)
            .collect()
    }
}
