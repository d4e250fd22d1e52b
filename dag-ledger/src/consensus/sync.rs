//! Block synchronization: blocks waiting for ancestors, and fetching the
//! missing ones.
//!
//! A valid block whose parents are not all accepted waits in
//! [`PendingBlocks`] (a per-author quota bounds it; when an author's quota
//! is full its highest-round pending block is evicted in favour of a lower
//! one, so catching up always makes progress). Each missing ancestor is
//! tracked by [`Synchronizer`]: first requested from the peer that sent the
//! block referencing it — at once, or after a grace (`fetch_grace`) in
//! which it usually arrives by itself, being in flight from its author —
//! then, every `sync_retry`, from the next committee member in turn. An
//! author one of whose blocks did not arrive within the grace (a
//! withholder, or a slow link) has its missing blocks fetched at once for
//! the next [`LATE_FOR_GRACES`] graces: withholding costs the committee a
//! grace once in that span, not every round. Both structures drop
//! everything below the garbage-collection round.

use std::collections::BTreeMap;

use idlegrid_primitives::{Digest, Duration, NodeId, Round, Timestamp};

use super::block::{BlockRef, VerifiedBlock};
use super::committee::{AuthorityIndex, Committee};
use super::error::ConsensusError;

/// Valid blocks waiting for missing ancestors.
#[derive(Debug)]
pub struct PendingBlocks {
    blocks: BTreeMap<BlockRef, (VerifiedBlock, usize)>,
    /// Missing parent → pending children, ordered so that collecting
    /// releases blocks in the same order in every process (a `HashMap`'s
    /// order is seeded per process: two equivocating blocks waiting on
    /// different parents were released, stored and served in either order).
    waiting: BTreeMap<BlockRef, Vec<BlockRef>>,
    per_author: Vec<usize>,
    quota: usize,
}

fn slot_range(round: Round, author: AuthorityIndex) -> (BlockRef, BlockRef) {
    (
        BlockRef {
            round,
            author,
            digest: Digest::from_bytes([0; 32]),
        },
        BlockRef {
            round,
            author,
            digest: Digest::from_bytes([0xff; 32]),
        },
    )
}

impl PendingBlocks {
    /// Empty, with `quota` blocks per author of a committee of `n`.
    pub fn new(n: usize, quota: usize) -> Self {
        Self {
            blocks: BTreeMap::new(),
            waiting: BTreeMap::new(),
            per_author: vec![0; n],
            quota,
        }
    }

    /// Number of pending blocks.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }
    /// True if none.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
    /// True if `r` is pending.
    pub fn contains(&self, r: &BlockRef) -> bool {
        self.blocks.contains_key(r)
    }
    /// Pending blocks of one (round, author) slot.
    pub fn slot(&self, round: Round, author: AuthorityIndex) -> Vec<VerifiedBlock> {
        let (lo, hi) = slot_range(round, author);
        self.blocks
            .range(lo..=hi)
            .map(|(_, (b, _))| b.clone())
            .collect()
    }

    /// Adds a block waiting for `missing` parents (non-empty).
    pub fn insert(
        &mut self,
        block: VerifiedBlock,
        missing: &[BlockRef],
    ) -> Result<(), ConsensusError> {
        assert!(!missing.is_empty());
        let r = block.reference();
        let a = r.author.as_usize();
        if self.per_author[a] >= self.quota {
            // Evict this author's highest pending block if it is higher.
            let victim = self
                .blocks
                .keys()
                .rev()
                .find(|k| k.author == r.author)
                .copied();
            match victim {
                Some(v) if v.round > r.round => self.remove(&v),
                _ => return Err(ConsensusError::PendingFull { author: r.author }),
            }
        }
        for p in missing {
            self.waiting.entry(*p).or_default().push(r);
        }
        self.per_author[a] += 1;
        self.blocks.insert(r, (block, missing.len()));
        Ok(())
    }

    fn remove(&mut self, r: &BlockRef) {
        if let Some((b, _)) = self.blocks.remove(r) {
            self.per_author[r.author.as_usize()] -= 1;
            for p in b.parents() {
                if let Some(v) = self.waiting.get_mut(p) {
                    v.retain(|c| c != r);
                    if v.is_empty() {
                        self.waiting.remove(p);
                    }
                }
            }
        }
    }

    /// `parent` is now accepted (or collected): returns the pending blocks
    /// that no longer miss anything, removed from the pending set.
    pub fn resolve(&mut self, parent: &BlockRef) -> Vec<VerifiedBlock> {
        let mut ready = Vec::new();
        for child in self.waiting.remove(parent).unwrap_or_default() {
            let done = match self.blocks.get_mut(&child) {
                Some((_, missing)) => {
                    *missing -= 1;
                    *missing == 0
                }
                None => false,
            };
            if done && let Some((b, _)) = self.blocks.remove(&child) {
                self.per_author[child.author.as_usize()] -= 1;
                ready.push(b);
            }
        }
        ready
    }

    /// Drops pending blocks below `gc_round` and resolves missing parents
    /// below it; returns blocks that became ready.
    pub fn gc(&mut self, gc_round: Round) -> Vec<VerifiedBlock> {
        let old: Vec<BlockRef> = self
            .blocks
            .keys()
            .take_while(|k| k.round < gc_round)
            .copied()
            .collect();
        for r in &old {
            self.remove(r);
        }
        // Lowest first (round, author, digest): the same order everywhere.
        let parents: Vec<BlockRef> = self
            .waiting
            .keys()
            .take_while(|p| p.round < gc_round)
            .copied()
            .collect();
        let mut ready = Vec::new();
        for p in parents {
            ready.extend(self.resolve(&p));
        }
        ready
    }
}

#[derive(Debug, Clone, Copy)]
struct Missing {
    first_peer: NodeId,
    /// Requests sent so far (the next goes to the `attempts`-th peer after
    /// `first_peer`, skipping this validator).
    attempts: u32,
    deadline: Timestamp,
}

/// How many graces an author stays late (its missing blocks fetched at
/// once) after one of them was not in by the end of its grace.
pub const LATE_FOR_GRACES: u64 = 1024;

/// Missing ancestors and when to ask for them again.
#[derive(Debug)]
pub struct Synchronizer {
    missing: BTreeMap<BlockRef, Missing>,
    max_missing: usize,
    retry: Duration,
    grace: Duration,
    /// Authors one of whose blocks was not in by the end of its grace, and
    /// until when their missing blocks are fetched at once.
    late: BTreeMap<AuthorityIndex, Timestamp>,
}

impl Synchronizer {
    /// Tracks at most `max_missing` refs, retrying every `retry`; a ref is
    /// first asked for at once.
    pub fn new(max_missing: usize, retry: Duration) -> Self {
        Self::with_grace(max_missing, retry, Duration::ZERO)
    }

    /// As [`Self::new`], but a ref is first asked for only if still missing
    /// `grace` after it was added (then from the peer it was added with).
    pub fn with_grace(max_missing: usize, retry: Duration, grace: Duration) -> Self {
        Self {
            missing: BTreeMap::new(),
            max_missing,
            retry,
            grace,
            late: BTreeMap::new(),
        }
    }

    /// Number of tracked refs.
    pub fn len(&self) -> usize {
        self.missing.len()
    }
    /// True if nothing is missing.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty()
    }
    /// True if `r` is tracked.
    pub fn contains(&self, r: &BlockRef) -> bool {
        self.missing.contains_key(r)
    }

    /// Starts tracking `r`, to be fetched from `peer`. Returns true if the
    /// caller should request it from `peer` now (newly tracked, and no
    /// grace applies); else it is asked for when [due](Self::due). The grace
    /// applies to a ref named by a `live` block (one its author broadcast,
    /// whose ancestors are likely in flight too), not one named by a block
    /// that answered a request, and not to a late author's.
    pub fn add(&mut self, r: BlockRef, peer: NodeId, now: Timestamp, live: bool) -> bool {
        if self.missing.contains_key(&r) {
            return false;
        }
        if self.missing.len() >= self.max_missing {
            // Keep the lowest rounds: they unblock the most.
            match self.missing.keys().next_back().copied() {
                Some(hi) if hi > r => {
                    self.missing.remove(&hi);
                }
                _ => return false,
            }
        }
        let at_once = !live
            || self.grace == Duration::ZERO
            || self.late.get(&r.author).is_some_and(|until| now < *until);
        self.missing.insert(
            r,
            Missing {
                first_peer: peer,
                attempts: u32::from(at_once),
                deadline: now + if at_once { self.retry } else { self.grace },
            },
        );
        at_once
    }

    /// `r` arrived.
    pub fn remove(&mut self, r: &BlockRef) {
        self.missing.remove(r);
    }

    /// Forgets refs below `gc_round`.
    pub fn gc(&mut self, gc_round: Round) {
        self.missing = self.missing.split_off(&BlockRef {
            round: gc_round,
            author: AuthorityIndex::new(0),
            digest: Digest::from_bytes([0; 32]),
        });
    }

    /// The earliest retry deadline.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.missing.values().map(|m| m.deadline).min()
    }

    /// Refs whose retry is due, grouped by the peer to ask next (rotating
    /// through the committee, skipping `me`), at most `max_per_peer` each.
    pub fn due(
        &mut self,
        now: Timestamp,
        committee: &Committee,
        me: NodeId,
        max_per_peer: usize,
    ) -> BTreeMap<NodeId, Vec<BlockRef>> {
        let mut out: BTreeMap<NodeId, Vec<BlockRef>> = BTreeMap::new();
        let n = committee.size();
        for (r, m) in self.missing.iter_mut() {
            if m.deadline > now {
                continue;
            }
            let attempt = m.attempts as usize;
            if attempt == 0 {
                let span = self.grace.as_micros().saturating_mul(LATE_FOR_GRACES);
                self.late
                    .insert(r.author, now + Duration::from_micros(span));
            }
            m.attempts = m.attempts.saturating_add(1);
            m.deadline = now + self.retry;
            let start = committee
                .index_of(&m.first_peer)
                .map_or(0, |i| i.as_usize());
            let mut peer = None;
            for k in 0..n {
                let idx = (start + attempt + k) % n;
                let node = committee.authorities()[idx].node;
                if node != me {
                    peer = Some(node);
                    break;
                }
            }
            if let Some(p) = peer {
                let v = out.entry(p).or_default();
                if v.len() < max_per_peer {
                    v.push(*r);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use idlegrid_primitives::{Keypair, Seed};

    use super::*;
    use crate::consensus::block::{Block, Transaction};

    fn missing_parent(byte: u8) -> BlockRef {
        BlockRef {
            round: Round::new(1),
            author: AuthorityIndex::new(1),
            digest: Digest::from_bytes([byte; 32]),
        }
    }

    /// Two blocks of author 0 at round 2 (an equivocation), each waiting on
    /// a different missing round-1 parent.
    fn equivocation() -> [(VerifiedBlock, BlockRef); 2] {
        let key = Keypair::from_seed(&Seed::from_u64(7));
        [(1u8, 0x11u8), (2, 0xee)].map(|(variant, parent)| {
            let p = missing_parent(parent);
            let block = Block::new_signed(
                &key,
                AuthorityIndex::new(0),
                Round::new(2),
                Timestamp::from_micros(u64::from(variant)),
                vec![p],
                vec![Transaction::new(vec![variant])],
            );
            (VerifiedBlock::new_unchecked(block), p)
        })
    }

    /// What a fresh validator's pending set releases when both missing
    /// parents fall below the collection round, in order.
    fn released(feed_reversed: bool) -> Vec<BlockRef> {
        let mut pending = PendingBlocks::new(4, 8);
        let mut blocks = equivocation().to_vec();
        if feed_reversed {
            blocks.reverse();
        }
        for (b, p) in blocks {
            pending.insert(b, &[p]).unwrap();
        }
        pending
            .gc(Round::new(2))
            .iter()
            .map(VerifiedBlock::reference)
            .collect()
    }

    /// The peers asked for `r`, in order, polling every millisecond for
    /// `ms` milliseconds after adding it from `committee`'s member 1.
    fn asked(sync: &mut Synchronizer, committee: &Committee, ms: u64) -> Vec<(u64, usize)> {
        let r = missing_parent(3);
        let me = committee.authorities()[0].node;
        let first = committee.authorities()[1].node;
        let mut out = Vec::new();
        if sync.add(r, first, Timestamp::ZERO, true) {
            out.push((0, 1));
        }
        for t in 1..=ms {
            let now = Timestamp::from_micros(t * 1_000);
            for (peer, refs) in sync.due(now, committee, me, 8) {
                assert_eq!(refs, vec![r]);
                out.push((t, committee.index_of(&peer).unwrap().as_usize()));
            }
        }
        out
    }

    #[test]
    fn a_missing_ancestor_is_asked_of_its_first_peer_at_once_or_after_the_grace() {
        let keys: Vec<Keypair> = (0..4)
            .map(|i| Keypair::from_seed(&Seed::from_u64(i)))
            .collect();
        let committee = Committee::equal(keys.iter().map(Keypair::node_id)).unwrap();
        let retry = Duration::from_millis(300);
        // At once from member 1, then every retry from the next ones,
        // never from member 0 (this validator).
        let mut now = Synchronizer::new(8, retry);
        assert_eq!(
            asked(&mut now, &committee, 700),
            [(0, 1), (300, 2), (600, 3)]
        );
        // With a grace: member 1 when it ends, then the same rotation.
        let mut later = Synchronizer::with_grace(8, retry, Duration::from_millis(60));
        assert_eq!(
            asked(&mut later, &committee, 700),
            [(60, 1), (360, 2), (660, 3)]
        );
        // Its author was late: its missing blocks are asked for at once for
        // the next LATE_FOR_GRACES graces (from 60 ms on), another
        // author's after the grace.
        let at = |ms| Timestamp::from_millis(ms);
        let peer = keys[1].node_id();
        assert!(later.add(missing_parent(4), peer, at(700), true));
        let other = BlockRef {
            author: AuthorityIndex::new(2),
            ..missing_parent(5)
        };
        assert!(!later.add(other, peer, at(700), true));
        let until = 60 + 60 * LATE_FOR_GRACES;
        assert!(later.add(missing_parent(6), peer, at(until - 1), true));
        assert!(!later.add(missing_parent(7), peer, at(until), true));
        // An ancestor that arrives within the grace is never asked for.
        let mut arrived = Synchronizer::with_grace(8, retry, Duration::from_millis(60));
        assert!(!arrived.add(missing_parent(3), peer, Timestamp::ZERO, true));
        arrived.remove(&missing_parent(3));
        assert_eq!(arrived.next_deadline(), None);
        assert!(
            arrived
                .due(at(100), &committee, keys[0].node_id(), 8)
                .is_empty()
        );
        // One named by a block that answered a request is asked for at once.
        assert!(arrived.add(missing_parent(9), peer, at(100), false));
    }

    #[test]
    fn fresh_validators_release_equivocating_blocks_in_the_same_order() {
        // A HashMap is seeded per instance, so 64 fresh pending sets
        // disagreed with near certainty before `waiting` was ordered.
        let first = released(false);
        assert_eq!(first.len(), 2);
        for i in 0..64 {
            assert_eq!(released(i % 2 == 1), first, "fresh pending set {i}");
        }
        // The block waiting on the lowest parent comes first.
        let [(a, pa), (b, pb)] = equivocation();
        let want = if pa < pb {
            a.reference()
        } else {
            b.reference()
        };
        assert_eq!(first[0], want);
    }
}
