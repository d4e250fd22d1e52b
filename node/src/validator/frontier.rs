//! The commit frontier: what consensus needs to resume after commit `i`
//! without the commits before it.
//!
//! A validator that restarts from a checkpoint (its own, or a state-sync
//! snapshot) no longer has the commit log up to it. Consensus resumes from
//! the last commit's position (index, leader, round, timestamp, running
//! digest) and the set of blocks already ordered at or above the
//! garbage-collection round, which must never be ordered again (see
//! [`idlegrid_dag_ledger::consensus::Recovered`]). The node tracks that set
//! from the commits it applies — the same rule as the consensus
//! linearizer, so it is equal on every validator after commit `i` — and
//! hands it to consensus as one [`CommittedSubDag`] whose `blocks` are that
//! set and whose transactions are empty.

use idlegrid_dag_ledger::consensus::{CommittedSet, CommittedSubDag};
use idlegrid_primitives::Round;

/// The committed set and the last commit's position (see the module docs).
#[derive(Clone, Debug)]
pub(super) struct CommitFrontier {
    gc_depth: u64,
    last: Option<CommittedSubDag>,
    committed: CommittedSet,
}

impl CommitFrontier {
    /// Nothing committed yet.
    pub(super) fn new(gc_depth: u64) -> Self {
        Self {
            gc_depth,
            last: None,
            committed: CommittedSet::default(),
        }
    }

    /// Resumes from a frontier taken by [`CommitFrontier::frontier`].
    pub(super) fn restore(gc_depth: u64, frontier: &CommittedSubDag) -> Self {
        let mut f = Self::new(gc_depth);
        f.advance(frontier);
        f
    }

    /// Commit `sub` was applied.
    pub(super) fn advance(&mut self, sub: &CommittedSubDag) {
        if let Some(last) = &self.last {
            assert_eq!(sub.index, last.index + 1, "commits are applied in order");
        }
        self.committed.extend(sub.blocks.iter().copied());
        let mut last = sub.clone();
        last.blocks.clear();
        last.transactions.clear();
        self.last = Some(last);
        let gc = sub.round.saturating_minus(self.gc_depth);
        self.committed.prune(gc);
    }

    /// The index of the last commit applied.
    pub(super) fn index(&self) -> Option<u64> {
        self.last.as_ref().map(|c| c.index)
    }

    /// The round of the last commit applied (zero before any).
    pub(super) fn round(&self) -> Round {
        self.last.as_ref().map_or(Round::ZERO, |c| c.round)
    }

    /// The frontier as a transaction-less commit (`None` before any commit).
    pub(super) fn frontier(&self) -> Option<CommittedSubDag> {
        let mut f = self.last.clone()?;
        f.blocks = self.committed.iter().collect();
        Some(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idlegrid_dag_ledger::consensus::{AuthorityIndex, BlockRef};
    use idlegrid_primitives::{Digest, Keypair, Seed, Timestamp};

    fn commit(index: u64, round: u64, blocks: &[(u64, u8)]) -> CommittedSubDag {
        let r = |(round, b): (u64, u8)| BlockRef {
            round: Round::new(round),
            author: AuthorityIndex::new(u32::from(b % 4)),
            digest: Digest::from_bytes([b; 32]),
        };
        CommittedSubDag {
            index,
            leader: r((round, 0)),
            leader_node: Keypair::from_seed(&Seed::from_u64(1)).node_id(),
            round: Round::new(round),
            timestamp: Timestamp::from_millis(round),
            blocks: blocks.iter().copied().map(r).collect(),
            transactions: Vec::new(),
            digest: Digest::from_bytes([index as u8; 32]),
        }
    }

    #[test]
    fn the_frontier_keeps_committed_blocks_above_the_gc_round_only() {
        let mut f = CommitFrontier::new(3);
        f.advance(&commit(0, 2, &[(1, 1), (2, 2)]));
        f.advance(&commit(1, 5, &[(3, 3), (5, 4)]));
        let fr = f.frontier().unwrap();
        assert_eq!((fr.index, fr.round), (1, Round::new(5)));
        let rounds: Vec<u64> = fr.blocks.iter().map(|b| b.round.get()).collect();
        assert_eq!(rounds, vec![2, 3, 5]);
        // Resuming from it gives the same frontier after the next commit.
        let mut g = CommitFrontier::restore(3, &fr);
        let next = commit(2, 6, &[(6, 5)]);
        f.advance(&next);
        g.advance(&next);
        assert_eq!(f.frontier(), g.frontier());
    }
}
