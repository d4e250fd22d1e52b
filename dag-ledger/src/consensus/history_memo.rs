//! Commits already ordered, shared by validators run in one process: a pure
//! function cache for the [`Linearizer`](super::Linearizer).
//!
//! Ordering a committed leader's history is a deterministic function of the
//! leader block (whose digest fixes its whole causal history), of the blocks
//! earlier commits ordered and of the gc round. The last two are functions
//! of the commit sequence so far, which the running commit digest binds
//! (it chains every earlier commit's index, leader and blocks). So two
//! validators whose running digests agree and who commit the same leader
//! with the same `gc_depth` produce the same [`CommittedSubDag`], and the
//! second can take the first's instead of walking the history again (a
//! committee's worth of parents per block, for every block of the commit).
//!
//! The driver decides who shares a memo: the simulator gives one to all its
//! simulated validators, a real process needs none (it runs one validator).
//! A validator learns nothing from a hit that its own computation would not
//! give it (debug builds recompute every hit and compare). Keys are 256-bit
//! digests and references: a validator whose history differs (a Byzantine
//! one's, a lagging one's) has another running digest and misses.
//!
//! Bounded: at most [`HistoryMemo::CAPACITY`] commits, the oldest first out
//! (validators lag each other by a few commits; a validator further behind
//! orders on its own). Sub-DAGs are shared, not copied.
//!
//! ```
//! use idlegrid_dag_ledger::consensus::{DagBuilder, HistoryMemo, Linearizer};
//! use idlegrid_primitives::Round;
//!
//! let mut dag = DagBuilder::new(4);
//! dag.layers(1..=3).build();
//! let leader = dag.block(3, 0).unwrap();
//! let memo = HistoryMemo::shared();
//! let mut a = Linearizer::new(50).with_memo(memo.clone());
//! let mut b = Linearizer::new(50).with_memo(memo.clone());
//! let first = a.linearize(dag.store(), &leader, dag.committee());
//! let second = b.linearize(dag.store(), &leader, dag.committee());
//! assert!(std::sync::Arc::ptr_eq(&first, &second));
//! assert_eq!(memo.counts(), (1, 1)); // one hit, one computed
//! assert_eq!(first.round, Round::new(3));
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use idlegrid_primitives::Digest;

use super::block::BlockRef;
use super::linearizer::CommittedSubDag;

/// What a commit's order depends on (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct HistoryKey {
    /// The running commit digest before this commit.
    pub running: Digest,
    /// The committed leader.
    pub leader: BlockRef,
    /// The linearizer's gc depth.
    pub gc_depth: u64,
}

#[derive(Default)]
struct Table {
    map: BTreeMap<HistoryKey, Arc<CommittedSubDag>>,
    /// Keys in insertion order, for eviction.
    order: VecDeque<HistoryKey>,
    hits: u64,
    computed: u64,
}

/// Commits ordered by validators of one process, shared between them (see
/// the module docs). Share it by cloning the `Arc`.
#[derive(Default)]
pub struct HistoryMemo {
    table: Mutex<Table>,
}

impl std::fmt::Debug for HistoryMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (hits, computed) = self.counts();
        f.debug_struct("HistoryMemo")
            .field("hits", &hits)
            .field("computed", &computed)
            .finish()
    }
}

impl HistoryMemo {
    /// Commits remembered at most.
    pub const CAPACITY: usize = 64;

    /// A memo to give every validator of one process.
    pub fn shared() -> Arc<Self> {
        Arc::default()
    }

    /// Commits taken from the memo, and commits ordered and remembered.
    pub fn counts(&self) -> (u64, u64) {
        let t = self.lock();
        (t.hits, t.computed)
    }

    /// Commits remembered now (at most [`Self::CAPACITY`]).
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// True if nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic elsewhere leaves the table consistent: every write below
        // completes before the guard drops.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The commit ordered for `key`, if remembered.
    pub(crate) fn get(&self, key: &HistoryKey) -> Option<Arc<CommittedSubDag>> {
        let mut t = self.lock();
        let sub = t.map.get(key).cloned();
        if sub.is_some() {
            t.hits += 1;
        }
        sub
    }

    /// Remembers `sub` as the commit ordered for `key`, evicting the
    /// oldest commit when full.
    pub(crate) fn insert(&self, key: HistoryKey, sub: Arc<CommittedSubDag>) {
        let mut t = self.lock();
        t.computed += 1;
        if t.map.insert(key, sub).is_none() {
            t.order.push_back(key);
        }
        while t.order.len() > Self::CAPACITY {
            if let Some(old) = t.order.pop_front() {
                t.map.remove(&old);
            }
        }
    }
}
