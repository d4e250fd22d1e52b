//! Durable validators in the simulator: a simulated disk per validator
//! ([`SimDisk`]) that survives its crashes, and the checks every scenario
//! with restarts runs on the validators' commit streams ([`Replicas`]).
//!
//! A restart under [`RestartMode::Store`](crate::RestartMode::Store)
//! rebuilds the validator from **what its disk held**: writes are durable
//! only after a sync; at a crash a seeded coin decides whether the
//! un-synced tail survives, is cut short, or is cut with its last record
//! torn (a torn record fails its checksum and is discarded, so it is lost
//! like the ones after it). A restart may also lose the whole disk: that
//! validator must learn its own latest block from peers before proposing
//! (and, with a ledger, its state by state sync).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use idlegrid_dag_ledger::consensus::{
    CommittedSubDag, PersistRequest, PersistSeq, Recovered, StorageOp,
};
use idlegrid_node::store::{Infallible, MemoryStore, NodeStore};
use idlegrid_node::validator::{NodePersistRequest, NodeStorageOp, StoredNode};
use idlegrid_primitives::Digest;
use idlegrid_primitives::{Duration, Timestamp};
use rand::Rng;

use crate::fault::Fault;
use crate::observer::Violation;

/// What a simulated disk went through (`storage` in `summary.json`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DiskStats {
    /// Syncs.
    pub syncs: u64,
    /// Un-synced writes lost at crashes.
    pub lost_writes: u64,
    /// Records torn at crashes.
    pub torn_writes: u64,
    /// Whole-disk losses.
    pub wiped: u64,
}

/// A simulated disk: a [`MemoryStore`] whose crashes lose un-synced writes
/// as a seeded coin decides.
#[derive(Debug, Default)]
pub struct SimDisk {
    store: MemoryStore,
    stats: DiskStats,
    /// The commits the disks of one run hold (see [`SharedCommits`]).
    commits: Arc<Mutex<SharedCommits>>,
}

/// The commits the disks of one run hold, one copy of each: honest
/// validators write equal commits (index, running digest and content), and
/// a disk holding another's equal copy holds the same bytes a real disk
/// would. Each validator keeps the commits since its last checkpoint (up to
/// 200), each naming every block and transaction it orders: at 100
/// validators a tenth of the run's memory. Held weakly: a commit no disk
/// holds any more is forgotten.
#[derive(Debug, Default)]
struct SharedCommits {
    by_key: BTreeMap<(u64, Digest), Weak<CommittedSubDag>>,
    /// Insertions since dead entries were last dropped.
    since_sweep: usize,
}

impl SharedCommits {
    /// `commit`, or the equal copy another disk holds.
    fn intern(&mut self, commit: &Arc<CommittedSubDag>) -> Arc<CommittedSubDag> {
        let key = (commit.index, commit.digest);
        if let Some(held) = self.by_key.get(&key).and_then(Weak::upgrade)
            && *held == **commit
        {
            return held;
        }
        self.by_key.insert(key, Arc::downgrade(commit));
        self.since_sweep += 1;
        if self.since_sweep >= self.by_key.len().max(1024) {
            self.by_key.retain(|_, c| c.strong_count() > 0);
            self.since_sweep = 0;
        }
        Arc::clone(commit)
    }
}

impl SimDisk {
    /// A crash: with probability `lose`, only a random prefix of the
    /// un-synced writes survives, its last record possibly torn (and so
    /// discarded); otherwise the OS had flushed them all.
    pub fn crash(&mut self, rng: &mut impl Rng, lose: f64) {
        let pending = self.store.unsynced();
        let mut keep = pending;
        if pending > 0 && rng.gen_bool(lose.clamp(0.0, 1.0)) {
            keep = rng.gen_range(0..=pending);
            if keep > 0 && rng.gen_bool(0.5) {
                keep -= 1;
                self.stats.torn_writes += 1;
            }
        }
        self.stats.lost_writes += (pending - keep) as u64;
        self.store.crash(keep);
    }

    /// The whole disk is lost.
    pub fn wipe(&mut self) {
        self.store = MemoryStore::new();
        self.stats.wiped += 1;
    }

    /// Disks sharing one copy of equal commits (see [`new_disks`]).
    fn sharing(commits: &Arc<Mutex<SharedCommits>>) -> Self {
        Self {
            commits: Arc::clone(commits),
            ..Self::default()
        }
    }

    /// What it went through.
    pub fn stats(&self) -> DiskStats {
        self.stats
    }
}

impl NodeStore for SimDisk {
    type Error = Infallible;
    fn write(&mut self, mut req: NodePersistRequest) -> Result<(), Infallible> {
        if let NodeStorageOp::Consensus(StorageOp::Commit(c)) = &mut req.op {
            *c = lock(&self.commits).intern(c);
        }
        self.store.write(req)
    }
    fn sync(&mut self) -> Result<idlegrid_dag_ledger::consensus::PersistSeq, Infallible> {
        self.stats.syncs += 1;
        self.store.sync()
    }
    fn load(&self) -> Result<StoredNode, Infallible> {
        self.store.load()
    }
}

/// Disks of every node, kept by the world across crashes; each behind its
/// own lock (nodes handled on several threads write their own disks at
/// once).
pub type Disks = Arc<[Mutex<SimDisk>]>;

/// `m`, locked. Whatever held it and panicked left it as a sequential
/// program would have at that point (nothing here is written in two
/// steps), so a poisoned lock is taken as is, not made a second panic.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SimDisk {
    /// A restart: the crash's fate of the un-synced writes (see
    /// [`SimDisk::crash`]), then what the disk holds — nothing, and a
    /// store marked lost, if `wipe`.
    pub fn restart(&mut self, rng: &mut impl Rng, lose: f64, wipe: bool) -> StoredNode {
        self.crash(rng, lose);
        if wipe {
            self.wipe();
            return StoredNode {
                consensus: Recovered::lost(),
                checkpoint: None,
            };
        }
        self.load().unwrap_or_default()
    }

    /// Writes one consensus-only request (a validator without a ledger).
    pub fn write_consensus(&mut self, req: PersistRequest) {
        let req = NodePersistRequest {
            seq: req.seq,
            op: NodeStorageOp::Consensus(req.op),
        };
        self.write(req).unwrap_or_else(|e| unreachable!("{e}"));
    }

    /// Makes every write durable; the last sequence number written.
    pub fn sync_all(&mut self) -> PersistSeq {
        self.sync().unwrap_or_else(|e| unreachable!("{e}"))
    }
}

/// A restarted validator of the `consensus` and `marketplace` scenarios
/// must be within this many commits of the highest ...
pub const CATCH_UP_COMMITS: u64 = 20;
/// ... once it has been up this long (any honest validator, from the start).
pub const CATCH_UP_GRACE: Duration = Duration::from_secs(5);

/// `n` empty disks, holding one copy of the commits they hold alike.
pub fn new_disks(n: usize) -> Disks {
    let commits = Arc::default();
    (0..n)
        .map(|_| Mutex::new(SimDisk::sharing(&commits)))
        .collect()
}

/// Sums the disks' statistics.
pub fn total_stats(disks: &[Mutex<SimDisk>]) -> DiskStats {
    let mut d = DiskStats::default();
    for s in disks.iter().map(|disk| lock(disk).stats()) {
        d.syncs += s.syncs;
        d.lost_writes += s.lost_writes;
        d.torn_writes += s.torn_writes;
        d.wiped += s.wiped;
    }
    d
}

/// Per-validator commit streams across crashes and restarts: **no
/// committed transaction lost** (a validator never reports a commit index
/// at or below one it reported before a crash, unless its store was lost),
/// **gap-free** commits within an incarnation (a state sync may jump
/// forward), and **catch-up** (a live tracked validator is never more than
/// `commits` behind the highest commit once `grace` has passed since it
/// started). Validators not tracked (Byzantine ones) are only counted for
/// the highest commit.
#[derive(Debug)]
pub struct Replicas {
    tracked: Vec<bool>,
    commits: u64,
    grace: Duration,
    highest: u64,
    last_reported: Vec<Option<u64>>,
    /// Reported in the current incarnation (gap-free check).
    reported_now: Vec<bool>,
    up_since: Vec<Option<Timestamp>>,
    incarnation: Vec<u32>,
}

impl Replicas {
    /// Checks for the validators whose `tracked` entry is true.
    pub fn new(tracked: Vec<bool>, commits: u64, grace: Duration) -> Self {
        let n = tracked.len();
        Self {
            tracked,
            commits,
            grace,
            highest: 0,
            last_reported: vec![None; n],
            reported_now: vec![false; n],
            up_since: vec![Some(Timestamp::ZERO); n],
            incarnation: vec![0; n],
        }
    }

    /// The highest commit index any validator reported.
    pub fn highest(&self) -> u64 {
        self.highest
    }

    /// The last commit validator `i` reported (or installed).
    pub fn last_reported(&self, i: usize) -> Option<u64> {
        self.last_reported.get(i).copied().flatten()
    }

    /// Validator `i` reported commit `index`.
    pub fn on_commit(&mut self, i: usize, index: u64) -> Result<(), Violation> {
        if i >= self.tracked.len() {
            return Ok(());
        }
        if let (Some(last), true) = (self.last_reported[i], self.tracked[i]) {
            if index <= last {
                return Err(Violation::new(
                    "no-committed-transaction-lost",
                    format!(
                        "validator {i} reported commit {index} again after {last}: it restarted from an older state"
                    ),
                ));
            }
            if self.reported_now[i] && index != last + 1 {
                return Err(Violation::new(
                    "gap-free-commits",
                    format!("validator {i} jumped from commit {last} to {index}"),
                ));
            }
        }
        self.last_reported[i] = Some(index);
        self.reported_now[i] = true;
        self.highest = self.highest.max(index);
        Ok(())
    }

    /// Validator `i` installed the state after commit `index` by state
    /// sync: it must move it forward.
    pub fn on_installed(&mut self, i: usize, index: u64) -> Result<(), Violation> {
        if self.last_reported(i).is_some_and(|last| index <= last) {
            return Err(Violation::new(
                "state-sync-forward",
                format!("validator {i} installed commit {index}, not ahead of its own state"),
            ));
        }
        self.last_reported[i] = Some(index);
        self.reported_now[i] = true;
        Ok(())
    }

    /// Crashes and restarts; `lost_store(i, incarnation)` says whether that
    /// restart found its disk empty. Returns the restarted validators and
    /// whether each lost its store.
    pub fn on_fault(
        &mut self,
        now: Timestamp,
        fault: &Fault,
        lost_store: impl Fn(usize, u32) -> bool,
    ) -> Vec<(usize, bool)> {
        let mut restarted = Vec::new();
        match fault {
            Fault::Crash { nodes } => {
                for n in nodes.iter().filter(|n| n.get() < self.tracked.len()) {
                    self.up_since[n.get()] = None;
                    self.reported_now[n.get()] = false;
                }
            }
            Fault::Restart { nodes } => {
                for i in nodes.iter().map(|n| n.get()) {
                    if i >= self.tracked.len() || self.up_since[i].is_some() {
                        continue;
                    }
                    self.incarnation[i] += 1;
                    self.up_since[i] = Some(now);
                    let lost = lost_store(i, self.incarnation[i]);
                    if lost {
                        self.last_reported[i] = None;
                    }
                    restarted.push((i, lost));
                }
            }
            _ => {}
        }
        restarted
    }

    /// The catch-up check (call it on every tick).
    pub fn on_tick(&self, now: Timestamp) -> Result<(), Violation> {
        for (i, since) in self.up_since.iter().enumerate() {
            let Some(since) = *since else { continue };
            if !self.tracked[i] || now.saturating_since(since) < self.grace {
                continue;
            }
            let at = self.last_reported[i].unwrap_or(0);
            if at + self.commits < self.highest {
                return Err(Violation::new(
                    "restart-catch-up",
                    format!(
                        "validator {i} is at commit {at}, {} behind the highest ({}), {} after it started",
                        self.highest - at,
                        self.highest,
                        now.saturating_since(since)
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeIndex;
    use idlegrid_dag_ledger::consensus::{AuthorityIndex, BlockRef, Transaction};
    use idlegrid_primitives::{Domain, NodeId, Round};

    fn commit(index: u64, tx: &[u8]) -> Arc<CommittedSubDag> {
        let leader = BlockRef {
            round: Round::new(index + 1),
            author: AuthorityIndex::new(0),
            digest: Digest::of(Domain::new("test/block"), &index),
        };
        Arc::new(CommittedSubDag {
            index,
            leader,
            leader_node: NodeId::from_bytes([1; 32]),
            round: leader.round,
            timestamp: Timestamp::from_millis(index),
            blocks: vec![leader],
            transactions: vec![Transaction::new(tx.to_vec())],
            digest: Digest::of(Domain::new("test/commit"), &index),
        })
    }

    fn write(disk: &mut SimDisk, seq: u64, c: &Arc<CommittedSubDag>) {
        disk.write_consensus(PersistRequest {
            seq: PersistSeq::new(seq),
            op: StorageOp::Commit(Arc::clone(c)),
        });
        disk.sync_all();
    }

    fn held(disk: &SimDisk, index: u64) -> Arc<CommittedSubDag> {
        Arc::clone(&disk.store.image().commits[&index])
    }

    #[test]
    fn disks_hold_one_copy_of_equal_commits_and_their_own_of_others() {
        let disks = new_disks(3);
        let mut d: Vec<_> = disks.iter().map(lock).collect();
        let (a, b) = (commit(0, b"tx"), commit(0, b"tx"));
        assert!(!Arc::ptr_eq(&a, &b));
        write(&mut d[0], 1, &a);
        write(&mut d[1], 1, &b);
        assert!(Arc::ptr_eq(&held(&d[0], 0), &held(&d[1], 0)));
        // Same index and digest, other content (a lying validator's own
        // disk): its own copy, and the others' stays theirs.
        let forged = commit(0, b"other");
        write(&mut d[2], 1, &forged);
        assert_eq!(*held(&d[2], 0), *forged);
        assert_eq!(*held(&d[0], 0), *a);
        // A commit no disk holds any more is not kept alive by the table.
        drop((a, b, forged));
        d[0].wipe();
        d[1].wipe();
        d[2].wipe();
        let weak = lock(&d[0].commits).by_key[&(0, commit(0, b"tx").digest)].clone();
        assert_eq!(weak.strong_count(), 0);
    }

    fn replicas() -> Replicas {
        Replicas::new(vec![true, true, false], 5, Duration::from_secs(1))
    }

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn crash(r: &mut Replicas, i: usize, ms: u64) {
        let nodes = vec![NodeIndex::new(i as u32)];
        r.on_fault(at(ms), &Fault::Crash { nodes }, |_, _| false);
    }

    fn restart(r: &mut Replicas, i: usize, ms: u64, lost: bool) -> Vec<(usize, bool)> {
        let nodes = vec![NodeIndex::new(i as u32)];
        r.on_fault(at(ms), &Fault::Restart { nodes }, |_, _| lost)
    }

    #[test]
    fn a_restart_from_an_older_state_is_a_lost_commit() {
        let mut r = replicas();
        for k in 1..=3 {
            r.on_commit(0, k).unwrap();
        }
        crash(&mut r, 0, 10);
        assert_eq!(restart(&mut r, 0, 20, false), vec![(0, false)]);
        let v = r.on_commit(0, 3).unwrap_err();
        assert_eq!(v.invariant, "no-committed-transaction-lost");
        // Resuming after the last reported commit is fine, even with a gap
        // across the crash (commits made while down are fetched later).
        let mut r = replicas();
        r.on_commit(0, 1).unwrap();
        crash(&mut r, 0, 10);
        restart(&mut r, 0, 20, false);
        r.on_commit(0, 4).unwrap();
        assert_eq!(r.on_commit(0, 6).unwrap_err().invariant, "gap-free-commits");
    }

    #[test]
    fn a_lost_store_may_start_over_and_untracked_validators_are_free() {
        let mut r = replicas();
        r.on_commit(1, 7).unwrap();
        crash(&mut r, 1, 10);
        assert_eq!(restart(&mut r, 1, 20, true), vec![(1, true)]);
        r.on_installed(1, 5).unwrap();
        assert_eq!(
            r.on_installed(1, 5).unwrap_err().invariant,
            "state-sync-forward"
        );
        r.on_commit(2, 9).unwrap();
        r.on_commit(2, 3).unwrap();
        assert_eq!(r.highest(), 9);
    }

    #[test]
    fn catch_up_is_checked_after_the_grace() {
        let mut r = replicas();
        r.on_commit(1, 20).unwrap();
        crash(&mut r, 0, 0);
        restart(&mut r, 0, 1_000, false);
        // Validator 1 itself is fine; 0 has 1 s of grace from its restart.
        r.on_tick(at(1_500)).unwrap();
        let v = r.on_tick(at(2_100)).unwrap_err();
        assert_eq!(v.invariant, "restart-catch-up");
        r.on_commit(0, 15).unwrap();
        r.on_tick(at(2_200)).unwrap();
        // A crashed validator is not expected to keep up.
        crash(&mut r, 0, 2_300);
        for k in 21..=40 {
            r.on_commit(1, k).unwrap();
        }
        r.on_tick(at(9_000)).unwrap();
    }
}
