//! The commit rule (Mysticeti-C), a pure function of the local DAG.
//!
//! Each round has `leaders_per_round` leader *slots*, ordered by
//! `(round, offset)`. For a slot at round `r` led by authority `a`:
//!
//! - a round `r+1` block **votes** for leader block `L` if it references `L`
//!   as a parent, and **blames** the slot if it references no round-`r`
//!   block of `a`;
//! - a round `r+2` block is a **certificate** for `L` if its round `r+1`
//!   parents voting for `L` hold a quorum of stake.
//!
//! Decisions, tried in this order:
//!
//! 1. **direct commit**: certificates for `L` by a quorum of stake exist at
//!    round `r+2`;
//! 2. **direct skip**: a quorum of stake blames the slot at round `r+1`;
//! 3. **indirect**: take the first slot at round `>= r+3` that is not
//!    skipped (the *anchor*). If it is undecided, so is this slot. If it is
//!    committed, commit `L` if the anchor's causal history holds a
//!    certificate for `L`, otherwise skip the slot.
//!
//! Safety: honest validators reference one block per author and round, so
//! two blocks of one slot can never both gather a quorum of votes; a
//! direct commit puts certificates in every quorum of round `r+2`, hence in
//! the causal history of every later anchor; a direct skip leaves no quorum
//! of votes, hence no certificate anywhere. Every honest validator therefore
//! decides every slot the same way, and the decided prefix (stopping at the
//! first undecided slot) is the same sequence everywhere.
//!
//! A leader block is committed within three message delays of its proposal
//! in the synchronous case: one to reach the round `r+1` proposers, one for
//! their votes to reach round `r+2` proposers, one for the certificates to
//! reach everybody.
//!
//! # Cost
//!
//! The validator re-runs [`Committer::try_decide`] after every input. The
//! committer keeps incremental counts of blames, votes and certificates
//! (see `tally`): each block is read once, when the committer first sees it
//! in the store, and added to the counts of the leader slots below it, so
//! deciding a slot is a few lookups instead of a rescan of its rounds
//! `r+1` and `r+2`. The counts live behind a mutex so that deciding stays
//! `&self`; they follow the store's garbage collection. A slot whose
//! authority is not the schedule's leader (only callers of
//! [`Committer::try_direct_decide`] can ask for one) is decided by scanning.
//! The test-only `oracle` keeps the rule as first written (every
//! certificate recounted on every call); a property test feeds both random
//! DAGs block by block and compares every decision.

#[cfg(test)]
mod oracle;
mod tally;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard};

use idlegrid_primitives::Round;

pub(super) use self::tally::SupportMemo;
use self::tally::Tally;
use super::block::VerifiedBlock;
use super::committee::{AuthorityIndex, Committee, StakeAggregator};
use super::dag::DagStore;
use super::leader_schedule::LeaderSchedule;

/// One leader slot: `(round, offset)` and the elected authority.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct LeaderSlot {
    /// The round.
    pub round: Round,
    /// The leader offset within the round (`0..leaders_per_round`).
    pub offset: u32,
    /// The elected authority.
    pub authority: AuthorityIndex,
}

impl LeaderSlot {
    /// The slots of `round` led by `leaders`, in offset order.
    fn of(round: Round, leaders: &[AuthorityIndex]) -> impl Iterator<Item = Self> + '_ {
        (0..).zip(leaders).map(move |(offset, &authority)| Self {
            round,
            offset,
            authority,
        })
    }

    /// The slot's position in the total order of slots.
    pub fn position(&self) -> (Round, u32) {
        (self.round, self.offset)
    }
}

/// How a slot was decided.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DecisionKind {
    /// Decided from the slot's own rounds `r+1`/`r+2`.
    Direct,
    /// Decided from a later committed anchor.
    Indirect,
}

/// The status of a leader slot.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum LeaderStatus {
    /// The slot commits this leader block.
    Commit {
        /// The slot.
        slot: LeaderSlot,
        /// The committed leader block.
        block: VerifiedBlock,
        /// Direct or indirect.
        kind: DecisionKind,
    },
    /// The slot has no committed leader.
    Skip {
        /// The slot.
        slot: LeaderSlot,
        /// Direct or indirect.
        kind: DecisionKind,
    },
    /// Not decided yet.
    Undecided(LeaderSlot),
}

impl LeaderStatus {
    /// The slot.
    pub fn slot(&self) -> LeaderSlot {
        match self {
            Self::Commit { slot, .. } | Self::Skip { slot, .. } => *slot,
            Self::Undecided(slot) => *slot,
        }
    }
    /// True unless undecided.
    pub fn is_decided(&self) -> bool {
        !matches!(self, Self::Undecided(_))
    }
}

/// Applies the commit rule over a [`DagStore`].
///
/// Decisions are a pure function of the store; the committer only keeps
/// incremental counts over it between calls (cloning it starts empty
/// counts, which catch up on the next call).
#[derive(Debug)]
pub struct Committer {
    committee: Arc<Committee>,
    schedule: Arc<dyn LeaderSchedule>,
    leaders_per_round: u32,
    tally: Mutex<Tally>,
}

impl Clone for Committer {
    fn clone(&self) -> Self {
        Self::new(
            self.committee.clone(),
            self.schedule.clone(),
            self.leaders_per_round,
        )
    }
}

impl Committer {
    /// A committer with the given schedule and leaders per round (>= 1).
    pub fn new(
        committee: Arc<Committee>,
        schedule: Arc<dyn LeaderSchedule>,
        leaders_per_round: u32,
    ) -> Self {
        assert!(leaders_per_round >= 1, "validated by ConsensusConfig");
        let leaders_per_round = leaders_per_round.min(committee.size() as u32);
        let tally = Tally::new(committee.clone(), schedule.clone(), leaders_per_round);
        Self {
            committee,
            schedule,
            leaders_per_round,
            tally: Mutex::new(tally),
        }
    }

    /// The committee.
    pub fn committee(&self) -> &Committee {
        &self.committee
    }

    /// The leader slots of `round` (none for genesis round 0).
    pub fn slots(&self, round: Round) -> Vec<LeaderSlot> {
        LeaderSlot::of(round, &self.leaders(round)).collect()
    }

    /// The leader authorities of `round`, in offset order, from the
    /// tally's cache of live rounds (a validator asks for them at every
    /// proposal; the schedule hashes to draw them).
    pub fn leaders(&self, round: Round) -> Arc<[AuthorityIndex]> {
        self.locked_tally().leaders(round)
    }

    /// The counts, brought up to date with `store`.
    fn tally(&self, store: &DagStore) -> MutexGuard<'_, Tally> {
        let mut tally = self.locked_tally();
        tally.sync(store);
        tally
    }

    /// The counts as they are.
    fn locked_tally(&self) -> MutexGuard<'_, Tally> {
        // A panic while counting may leave a block half counted: start
        // over rather than trust the counts.
        self.tally.lock().unwrap_or_else(|poisoned| {
            let mut t = poisoned.into_inner();
            *t = Tally::new(
                self.committee.clone(),
                self.schedule.clone(),
                self.leaders_per_round,
            );
            t
        })
    }

    fn is_vote(voter: &VerifiedBlock, leader: &VerifiedBlock) -> bool {
        voter.parent_by(leader.author()) == Some(&leader.reference())
    }

    /// Counts from scratch whether `cert` (round `r+2`) is a certificate for
    /// `leader` (round `r`).
    fn count_certificate(
        &self,
        cert: &VerifiedBlock,
        leader: &VerifiedBlock,
        store: &DagStore,
    ) -> bool {
        let vote_round = leader.round().next();
        let mut votes = StakeAggregator::new(&self.committee);
        cert.parents()
            .iter()
            .filter(|p| p.round == vote_round)
            .filter_map(|p| store.get(p))
            .any(|voter| {
                Self::is_vote(voter, leader)
                    && self
                        .committee
                        .is_quorum(votes.add(voter.author(), &self.committee))
            })
    }

    /// True if `cert`'s round `r+1` parents voting for `leader` hold a
    /// quorum (counted if the slot is the schedule's, else scanned).
    fn is_certificate(
        &self,
        tally: &mut Tally,
        cert: &VerifiedBlock,
        leader: &VerifiedBlock,
        store: &DagStore,
    ) -> bool {
        if tally.tracks(leader.round(), leader.author()) {
            tally.is_certificate(&cert.reference(), &leader.reference())
        } else {
            self.count_certificate(cert, leader, store)
        }
    }

    /// Direct decision for `slot` (commit, skip, or undecided).
    pub fn try_direct_decide(&self, slot: LeaderSlot, store: &DagStore) -> LeaderStatus {
        self.direct_decide(&mut self.tally(store), slot, store)
    }

    fn direct_decide(&self, tally: &mut Tally, slot: LeaderSlot, store: &DagStore) -> LeaderStatus {
        if !tally.tracks(slot.round, slot.authority) {
            return self.scan_direct_decide(slot, store);
        }
        for leader in store.slot(slot.round, slot.authority) {
            if self
                .committee
                .is_quorum(tally.certified_stake(&leader.reference()))
            {
                return LeaderStatus::Commit {
                    slot,
                    block: leader.clone(),
                    kind: DecisionKind::Direct,
                };
            }
        }
        if self
            .committee
            .is_quorum(tally.blame_stake(slot.round, slot.authority))
        {
            return LeaderStatus::Skip {
                slot,
                kind: DecisionKind::Direct,
            };
        }
        LeaderStatus::Undecided(slot)
    }

    /// [`Committer::direct_decide`] by scanning rounds `r+1` and `r+2`.
    fn scan_direct_decide(&self, slot: LeaderSlot, store: &DagStore) -> LeaderStatus {
        let vote_round = slot.round.next();
        let cert_round = vote_round.next();
        for leader in store.slot(slot.round, slot.authority) {
            let mut certs = StakeAggregator::new(&self.committee);
            for c in store.round_blocks(cert_round) {
                if self.count_certificate(c, leader, store)
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
        self.indirect_decide(&mut self.tally(store), slot, later, store)
    }

    fn indirect_decide<'a>(
        &self,
        tally: &mut Tally,
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
                        if certs
                            .iter()
                            .any(|c| self.is_certificate(tally, c, leader, store))
                        {
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
        let mut tally = self.tally(store);
        let mut slots = Vec::new();
        let mut r = start;
        while r <= last {
            let leaders = tally.leaders(r);
            slots.extend(
                LeaderSlot::of(r, &leaders).filter(|s| after.is_none_or(|a| s.position() > a)),
            );
            r = r.next();
        }
        // Decide from the latest slot backwards so that anchors are known.
        let mut rev: Vec<LeaderStatus> = Vec::with_capacity(slots.len());
        for &slot in slots.iter().rev() {
            let mut status = self.direct_decide(&mut tally, slot, store);
            if !status.is_decided() {
                status = self.indirect_decide(&mut tally, slot, rev.iter().rev(), store);
            }
            rev.push(status);
        }
        rev.into_iter()
            .rev()
            .take_while(LeaderStatus::is_decided)
            .collect()
    }
}
