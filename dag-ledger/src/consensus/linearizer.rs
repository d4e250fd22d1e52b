//! Linearization: from committed leaders to one sequence of transactions.
//!
//! When a leader block is committed, its causal history that was not part
//! of an earlier commit (and is not below the garbage-collection round) is
//! collected, sorted by `(round, author, digest)` — parents always have
//! lower rounds, so the order respects causality — and its transactions are
//! output in that order as one [`CommittedSubDag`]. A running digest chains
//! every sub-DAG, so two validators with equal digests at index `i` have
//! identical sequences up to `i`.
//!
//! A commit's time is the stake-weighted median of the timestamps of the
//! leader's round `r - 1` parents (never earlier than the previous
//! commit's; [`commit_time`]), not the leader's own clock reading: those
//! parents hold a quorum of stake, so with at most `f` Byzantine the median
//! lies between two honest validators' clocks, whatever the Byzantine
//! blocks (or a Byzantine leader) claim. This is the BFT-time rule of
//! Tendermint and Sui's median-based commit timestamps; a leader's own
//! timestamp would let one Byzantine leader move every deadline on the
//! ledger to the year 2100 at once.
//!
//! The gc round used for commit `k` is `round(leader k-1) - gc_depth`, a
//! function of the committed sequence only, so all validators skip the same
//! old blocks. Validators of one process may share the orders they computed
//! through a [`HistoryMemo`].

use idlegrid_primitives::{Digest, Domain, NodeId, Round, Timestamp, encode};
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use super::block::{BlockRef, Transaction, VerifiedBlock};
use super::committed_set::CommittedSet;
use super::committee::Committee;
use super::dag::DagStore;
use super::history_memo::{HistoryKey, HistoryMemo};

/// Domain of the running commit digest.
pub const COMMIT_DOMAIN: Domain = Domain::new("idlegrid/dag/commit");

/// One committed leader with the transactions it orders.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CommittedSubDag {
    /// Position in the commit sequence (0-based, gap-free).
    pub index: u64,
    /// The committed leader block.
    pub leader: BlockRef,
    /// The leader's node id.
    pub leader_node: NodeId,
    /// The leader's round.
    pub round: Round,
    /// Commit time: the stake-weighted median of the leader's round `r - 1`
    /// parents' timestamps, or the previous commit's if that is later
    /// ([`commit_time`]; between two honest clocks).
    pub timestamp: Timestamp,
    /// The blocks ordered by this commit, in order.
    pub blocks: Vec<BlockRef>,
    /// Their transactions, in order.
    pub transactions: Vec<Transaction>,
    /// Running digest over all sub-DAGs up to and including this one.
    pub digest: Digest,
}

/// Collects the not-yet-committed causal history of `leader`, skipping
/// blocks below `gc_round` and blocks for which `committed` is true,
/// sorted by `(round, author, digest)`.
pub fn collect_history(
    store: &DagStore,
    leader: &VerifiedBlock,
    gc_round: Round,
    committed: impl Fn(&BlockRef) -> bool,
) -> Vec<VerifiedBlock> {
    let mut seen = CommittedSet::default();
    let mut stack = vec![leader.clone()];
    seen.insert(leader.reference());
    let mut out = Vec::new();
    while let Some(b) = stack.pop() {
        for p in b.parents() {
            if p.round < gc_round || committed(p) || !seen.insert(*p) {
                continue;
            }
            match store.get(p) {
                Some(pb) => stack.push(pb.clone()),
                // Causal completeness above the gc round is a store invariant.
                None => debug_assert!(false, "missing ancestor {p:?} above gc round"),
            }
        }
        out.push(b);
    }
    out.sort_by_key(|b| b.reference());
    out
}

/// The stake-weighted median of the timestamps of `leader`'s parents of the
/// round below it: the earliest timestamp at or below which more than half
/// of those parents' stake lies. They hold a quorum (2f + 1) of stake, so
/// more than `f` of it lies at or below the median and at or above it:
/// some honest validator's clock read at least the median, and some
/// honest validator's at most. The leader's own older block (a parent from
/// an earlier round, possibly pruned on some validators but not others)
/// does not count. A function of the leader's reference and the committee,
/// as [`HistoryMemo`] requires.
pub fn commit_time(store: &DagStore, leader: &VerifiedBlock, committee: &Committee) -> Timestamp {
    let below = leader.round().prev();
    let stamps = leader
        .parents()
        .iter()
        .filter(|p| Some(p.round) == below)
        .filter_map(|p| {
            let b = store.get(p);
            // Causal completeness above the gc round is a store invariant.
            debug_assert!(b.is_some(), "missing parent {p:?} of a committed leader");
            b.map(|b| (b.header.timestamp, committee.stake(p.author)))
        })
        .collect();
    weighted_median(stamps)
}

/// The earliest timestamp at or below which more than half of the stake
/// lies ([`Timestamp::ZERO`] for no stake): at least half of the stake
/// lies at or above it.
pub fn weighted_median(mut stamps: Vec<(Timestamp, u64)>) -> Timestamp {
    stamps.sort_unstable();
    let total: u64 = stamps.iter().map(|&(_, s)| s).sum();
    let mut at_or_below = 0u64;
    for (t, s) in stamps {
        at_or_below = at_or_below.saturating_add(s);
        if at_or_below.saturating_mul(2) > total {
            return t;
        }
    }
    Timestamp::ZERO
}

/// Turns committed leaders into [`CommittedSubDag`]s.
#[derive(Clone, Debug)]
pub struct Linearizer {
    gc_depth: u64,
    committed: CommittedSet,
    last_round: Round,
    last_timestamp: Timestamp,
    next_index: u64,
    running: Digest,
    /// Orders shared with other validators of this process, if any.
    memo: Option<Arc<HistoryMemo>>,
}

impl Linearizer {
    /// A linearizer that ignores blocks more than `gc_depth` rounds below the
    /// previous committed leader.
    pub fn new(gc_depth: u64) -> Self {
        Self {
            gc_depth,
            committed: CommittedSet::default(),
            last_round: Round::ZERO,
            last_timestamp: Timestamp::ZERO,
            next_index: 0,
            running: Digest::default(),
            memo: None,
        }
    }

    /// Shares the orders it computes with, and takes them from, the other
    /// linearizers given `memo` (see [`HistoryMemo`]).
    pub fn with_memo(mut self, memo: Arc<HistoryMemo>) -> Self {
        self.set_memo(memo);
        self
    }

    pub(crate) fn set_memo(&mut self, memo: Arc<HistoryMemo>) {
        self.memo = Some(memo);
    }

    /// The memo it shares orders through, if any.
    pub fn memo(&self) -> Option<&Arc<HistoryMemo>> {
        self.memo.as_ref()
    }

    /// A linearizer resuming after `commits` (recovered from a store; in
    /// index order, the last being the latest commit): the sequence goes on
    /// at the next index with the same running digest, and blocks that
    /// these commits ordered at or above the gc round are never ordered
    /// again. Empty `commits` is a fresh linearizer.
    pub fn restore(gc_depth: u64, commits: &[std::sync::Arc<CommittedSubDag>]) -> Self {
        let mut l = Self::new(gc_depth);
        let Some(last) = commits.last() else {
            return l;
        };
        l.last_round = last.round;
        l.last_timestamp = last.timestamp;
        l.next_index = last.index + 1;
        l.running = last.digest;
        let gc = l.gc_round();
        l.committed = commits
            .iter()
            .flat_map(|c| c.blocks.iter())
            .filter(|r| r.round >= gc)
            .copied()
            .collect();
        l
    }

    /// The gc round implied by the commits so far.
    pub fn gc_round(&self) -> Round {
        self.last_round.saturating_minus(self.gc_depth)
    }
    /// The round of the last committed leader (zero before any commit).
    pub fn last_committed_round(&self) -> Round {
        self.last_round
    }
    /// Number of sub-DAGs output so far.
    pub fn commits(&self) -> u64 {
        self.next_index
    }
    /// True if `r` was ordered by an earlier commit.
    pub fn is_committed(&self, r: &BlockRef) -> bool {
        self.committed.contains(r)
    }

    /// Orders the history of a newly committed `leader` of `committee`.
    /// Leaders must be passed in commit order (non-decreasing rounds).
    pub fn linearize(
        &mut self,
        store: &DagStore,
        leader: &VerifiedBlock,
        committee: &Committee,
    ) -> Arc<CommittedSubDag> {
        assert!(
            leader.round() >= self.last_round,
            "leaders are committed in non-decreasing rounds"
        );
        let key = HistoryKey {
            running: self.running,
            leader: leader.reference(),
            gc_depth: self.gc_depth,
        };
        let leader_node = committee.authorities()[leader.author().as_usize()].node;
        // The leader's node id (and the stake the commit time weighs) come
        // from the committee, which the key does not name: a sharer with
        // another committee's id misses.
        let known = (self.memo.as_ref())
            .and_then(|m| m.get(&key))
            .filter(|sub| sub.leader_node == leader_node);
        let sub = match known {
            Some(sub) => {
                debug_assert_eq!(*sub, self.order(store, leader, committee));
                sub
            }
            None => {
                let sub = Arc::new(self.order(store, leader, committee));
                if let Some(m) = &self.memo {
                    m.insert(key, Arc::clone(&sub));
                }
                sub
            }
        };
        self.advance(&sub);
        sub
    }

    /// Takes `sub`, the next commit, into the linearizer's state.
    fn advance(&mut self, sub: &CommittedSubDag) {
        debug_assert_eq!(sub.index, self.next_index);
        self.committed.extend(sub.blocks.iter().copied());
        self.running = sub.digest;
        self.next_index = sub.index + 1;
        self.last_round = sub.round;
        self.last_timestamp = sub.timestamp;
        let gc = self.gc_round();
        self.committed.prune(gc);
    }

    /// The next commit, of `leader`: its history not ordered before, in
    /// order. A function of the key of [`HistoryMemo`] only.
    fn order(
        &self,
        store: &DagStore,
        leader: &VerifiedBlock,
        committee: &Committee,
    ) -> CommittedSubDag {
        let gc = self.gc_round();
        let blocks = collect_history(store, leader, gc, |r| self.committed.contains(r));
        let refs: Vec<BlockRef> = blocks.iter().map(|b| b.reference()).collect();
        let transactions: Vec<Transaction> = blocks
            .iter()
            .flat_map(|b| b.transactions.iter().cloned())
            .collect();
        let index = self.next_index;
        let running = self
            .running
            .chain(COMMIT_DOMAIN, &encode(&(index, leader.reference(), &refs)));
        CommittedSubDag {
            index,
            leader: leader.reference(),
            leader_node: committee.authorities()[leader.author().as_usize()].node,
            round: leader.round(),
            timestamp: self
                .last_timestamp
                .max(commit_time(store, leader, committee)),
            blocks: refs,
            transactions,
            digest: running,
        }
    }
}
