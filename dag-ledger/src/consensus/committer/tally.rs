//! Incremental vote, blame and certificate counts for the
//! [`Committer`](super::Committer).
//!
//! The commit rule asks three questions of the local DAG, all about a
//! leader slot `(r, a)`:
//!
//! - which round `r+1` blocks **blame** it (reference no round-`r` block of
//!   `a`), by distinct author;
//! - for a round `r+2` block `C` and a round-`r` block `L` of `a`: does the
//!   stake of `C`'s round `r+1` parents that **vote** for `L` (reference it)
//!   reach a quorum, i.e. is `C` a **certificate** for `L`;
//! - which distinct authors hold certificates for `L`.
//!
//! Blocks are immutable, so each answer only grows as blocks arrive: the
//! tally reads every block once, when it first sees it in the store, and
//! adds it to the counts of the (few) leader slots two rounds below it.
//! Deciding a slot is then a lookup. Per block the work is `O(n · k log n)`
//! for a committee of `n` and `k` leaders per round (its parents' votes),
//! done once, where the scan it replaces recounted `O(n)` candidate
//! certificates per slot each time the validator tried to decide.
//!
//! The tally follows one [`DagStore`] through its arrival log (it catches up
//! on every call, so it never misses a block however the store was filled)
//! and forgets everything when handed another store. A block's round `r+1`
//! parent that is not in the store yet (possible in hand-built DAGs; the
//! validator inserts blocks only after their parents) is remembered as an
//! *orphan* vote and counted when it arrives, so the counts are always those
//! of the blocks present, as a scan would find them.
//!
//! When it counts a block, the tally also notes which leader blocks one
//! round below it votes for, in a table per round (the last
//! [`VOTE_WINDOW`] rounds, one entry per author keyed by the block's full
//! reference). A certificate's parents, a committee's worth, are then read
//! from that array instead of each being fetched from the store with its
//! own list of parents: three pointer chases a parent, for every block
//! every validator receives. A parent not in the table (an equivocator's
//! second block, an older round) is looked up in the store as before.
//!
//! Garbage collection: when the store's gc round passes `g`, the tally drops
//! the counts of slots whose voters are gone (round `< g - 1`) and of
//! leaders below `g`, exactly the ones a scan could no longer see; its size
//! is bounded by the live rounds times (`k` slots + the blocks of a round).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Weak};

use idlegrid_primitives::{CacheCell, Digest, Round};

use crate::consensus::block::{BlockRef, VerifiedBlock};
use crate::consensus::committee::{AuthorityIndex, Committee, StakeAggregator};
use crate::consensus::dag::{DagStore, find_in};
use crate::consensus::leader_schedule::LeaderSchedule;

/// The stake of one candidate certificate's voters for one leader block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Support {
    leader: BlockRef,
    stake: u64,
}

/// A block's support as a certificate, remembered in the block: counted by
/// the first tally of the process that meets the block, read by every other.
///
/// The support of a round `r+2` block is a pure function of its round `r+1`
/// parents (its digest fixes them, and theirs the leader blocks they
/// reference), of the committee's stakes and of round `r`'s leaders: the
/// block's digest, the committee's digest and the leaders are the key, and
/// a tally with another committee or schedule counts for itself (without
/// overwriting). Blocks travel as `Arc<Block>`, so the simulator's
/// validators hold one copy of each and count a block's parents once
/// instead of once each (a committee's worth of parents, for every block
/// every validator receives); a real process runs one tally and gains
/// nothing, nor pays more than a comparison. Only a complete support (no
/// parent missing) is remembered, and read only by a tally whose store holds
/// every parent it counts. Debug builds count again on every hit and
/// compare. Like the block's hash memo it is never serialized, starts empty
/// in a clone and is ignored by `==`.
#[derive(Default, Clone, PartialEq, Eq, Debug)]
pub(in crate::consensus) struct SupportMemo(CacheCell<Box<RememberedSupport>>);

/// What a [`SupportMemo`] holds: its key and the support, sorted by leader
/// block.
struct RememberedSupport {
    block: Digest,
    committee: Digest,
    leaders: Arc<[AuthorityIndex]>,
    support: Box<[Support]>,
}

impl SupportMemo {
    /// The remembered support, if it is for this block, committee and
    /// leaders.
    fn get(
        &self,
        block: &Digest,
        committee: &Digest,
        leaders: &[AuthorityIndex],
    ) -> Option<&[Support]> {
        let r = self.0.get()?;
        let same = r.block == *block && r.committee == *committee && *r.leaders == *leaders;
        same.then_some(&*r.support)
    }

    /// Remembers `support` unless something is remembered already.
    fn remember(
        &self,
        block: Digest,
        committee: Digest,
        leaders: Arc<[AuthorityIndex]>,
        support: Vec<Support>,
    ) {
        self.0.get_or_init(|| {
            Box::new(RememberedSupport {
                block,
                committee,
                leaders,
                support: support.into(),
            })
        });
    }
}

/// Counts of the commit rule over the blocks of one store; see the module
/// docs.
pub(super) struct Tally {
    committee: Arc<Committee>,
    schedule: Arc<dyn LeaderSchedule>,
    leaders_per_round: u32,
    /// The store the counts describe (`None` before the first sync).
    store: Option<Weak<()>>,
    /// `store.insertions()` when last synchronized.
    inserted: u64,
    /// The store's gc round when last synchronized.
    gc_round: Round,
    /// Leader authorities of each live round, in offset order.
    leaders: BTreeMap<Round, Arc<[AuthorityIndex]>>,
    /// The last leaders looked up for a round of each residue modulo
    /// [`RECENT_ROUNDS`]: counting a block asks for the two rounds below
    /// it, block after block, and blocks of two or three neighbouring
    /// rounds arrive interleaved (with only an even and an odd slot, a
    /// round-`r` block and a round-`r+1` block evicted each other's
    /// `r-2` and `r`).
    recent_leaders: [Option<(Round, Arc<[AuthorityIndex]>)>; RECENT_ROUNDS],
    /// Distinct authors of round `r+1` blocks blaming slot `(r, a)`.
    blame: BTreeMap<(Round, AuthorityIndex), StakeAggregator>,
    /// Per round `r+2` block with votes still to come (orphan parents),
    /// its voters' stake per round-`r` leader block.
    partial: BTreeMap<BlockRef, Vec<Support>>,
    /// Per leader block with certificates: the stake of their distinct
    /// authors, and the certificates, sorted. A block's support is final
    /// once its parents are counted, and only whether it reached a quorum
    /// is asked again: one entry of a leader's list per certificate, not a
    /// map entry per candidate.
    certified: BTreeMap<BlockRef, Certified>,
    /// Round `r+1` parents not in the store yet -> blocks referencing them.
    orphans: BTreeMap<BlockRef, Vec<BlockRef>>,
    /// Per recent round, each author's first counted block and the leader
    /// blocks one round below it votes for: a certificate's parents are
    /// read here, in one table per round, instead of each parent and its
    /// parents list being fetched from the store (see [`RoundVotes`]).
    votes: BTreeMap<Round, RoundVotes>,
}

/// Rounds whose leaders [`Tally`] keeps at hand (one per residue).
const RECENT_ROUNDS: usize = 4;

/// Rounds of [`RoundVotes`] kept below the highest counted block: a
/// certificate (a block two rounds above a leader) whose voters' round is
/// older is counted from the store instead, with the same result.
pub(super) const VOTE_WINDOW: u64 = 8;

/// The votes of one round's blocks for the leader blocks one round below,
/// as the tally counted them: a cache of what the store answers, keyed by
/// the voter's full reference.
#[derive(Clone, Debug, Default)]
struct RoundVotes {
    /// The leader blocks voted for (several for one slot only if its
    /// author equivocated), at most [`Self::MAX_LEADER_BLOCKS`].
    leader_blocks: Vec<BlockRef>,
    /// By author: the digest of its first block counted this round and the
    /// set of `leader_blocks` it references (bit `i`: `leader_blocks[i]`).
    /// Its further blocks (an equivocator's) are not here.
    by_author: Vec<Option<(Digest, u64)>>,
}

impl RoundVotes {
    const MAX_LEADER_BLOCKS: usize = 64;

    /// Records `voter`'s votes for `leaders` (one round below it) if it is
    /// the first block of its author here and every leader block it votes
    /// for fits the table; a voter not recorded is counted from the store.
    fn record(&mut self, voter: &VerifiedBlock, leaders: &[AuthorityIndex], n: usize) {
        if self.by_author.is_empty() {
            self.by_author = vec![None; n];
        }
        let Some(entry @ None) = self.by_author.get_mut(voter.author().as_usize()) else {
            return;
        };
        let slot_round = voter.round().prev();
        let mut mask = 0u64;
        for &a in leaders {
            let Some(l) = voter.parent_by(a).filter(|l| Some(l.round) == slot_round) else {
                continue;
            };
            let i = match self.leader_blocks.iter().position(|b| b == l) {
                Some(i) => i,
                None if self.leader_blocks.len() < Self::MAX_LEADER_BLOCKS => {
                    self.leader_blocks.push(*l);
                    self.leader_blocks.len() - 1
                }
                None => return,
            };
            mask |= 1 << i;
        }
        *entry = Some((voter.reference().digest, mask));
    }

    /// The leader blocks `p` votes for, if `p` is a recorded voter.
    fn votes_of(&self, p: &BlockRef) -> Option<u64> {
        match self.by_author.get(p.author.as_usize()) {
            Some(Some((digest, mask))) if *digest == p.digest => Some(*mask),
            _ => None,
        }
    }
}

impl fmt::Debug for Tally {
    /// Sizes only: the counts themselves are many and uninteresting.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tally")
            .field("gc_round", &self.gc_round)
            .field("inserted", &self.inserted)
            .field("blame", &self.blame.len())
            .field("partial", &self.partial.len())
            .field("certified", &self.certified.len())
            .field("orphans", &self.orphans.len())
            .field("vote_rounds", &self.votes.len())
            .finish()
    }
}

impl Tally {
    /// An empty tally for this committee and schedule.
    pub fn new(
        committee: Arc<Committee>,
        schedule: Arc<dyn LeaderSchedule>,
        leaders_per_round: u32,
    ) -> Self {
        Self {
            committee,
            schedule,
            leaders_per_round,
            store: None,
            inserted: 0,
            gc_round: Round::ZERO,
            leaders: BTreeMap::new(),
            recent_leaders: Default::default(),
            blame: BTreeMap::new(),
            partial: BTreeMap::new(),
            certified: BTreeMap::new(),
            orphans: BTreeMap::new(),
            votes: BTreeMap::new(),
        }
    }

    /// The leader authorities of `round` in offset order (none for round 0).
    /// Cached for live rounds.
    pub fn leaders(&mut self, round: Round) -> Arc<[AuthorityIndex]> {
        self.with_leaders(round, |_, l| l.clone())
    }

    /// Runs `f` with the leaders of `round` lent from the cache of recent
    /// rounds, not cloned: an `Arc`'s count is shared between
    /// threads, two atomic operations a clone, for every block every
    /// validator counts.
    fn with_leaders<R>(
        &mut self,
        round: Round,
        f: impl FnOnce(&mut Self, &Arc<[AuthorityIndex]>) -> R,
    ) -> R {
        let slot = (round.get() % RECENT_ROUNDS as u64) as usize;
        let lent = match self.recent_leaders[slot].take() {
            Some((r, l)) if r == round => l,
            other => {
                self.recent_leaders[slot] = other;
                self.schedule_leaders(round)
            }
        };
        let out = f(self, &lent);
        self.recent_leaders[slot] = Some((round, lent));
        out
    }

    /// [`Self::leaders`] from the per-round cache or the schedule.
    fn schedule_leaders(&mut self, round: Round) -> Arc<[AuthorityIndex]> {
        if let Some(l) = self.leaders.get(&round) {
            return l.clone();
        }
        let l: Arc<[AuthorityIndex]> = if round == Round::ZERO {
            Arc::new([])
        } else {
            (0..self.leaders_per_round)
                .map(|o| self.schedule.leader(&self.committee, round, o))
                .collect()
        };
        if round.get().saturating_add(2) >= self.gc_round.get() {
            self.leaders.insert(round, l.clone());
        }
        l
    }

    /// Brings the counts up to date with `store`.
    pub fn sync(&mut self, store: &DagStore) {
        if !self.store.as_ref().is_some_and(|s| store.is(s)) {
            let fresh = Self::new(
                self.committee.clone(),
                self.schedule.clone(),
                self.leaders_per_round,
            );
            *self = Self {
                store: Some(store.identity()),
                ..fresh
            };
        }
        if store.gc_round() > self.gc_round {
            self.collect(store.gc_round());
        }
        if store.insertions() == self.inserted {
            return;
        }
        for b in store.inserted_since(self.inserted) {
            self.count(b, store);
        }
        self.inserted = store.insertions();
    }

    /// Drops what concerns rounds the store no longer holds (see the
    /// module docs).
    fn collect(&mut self, gc: Round) {
        self.gc_round = gc;
        let g = gc.get();
        // Every key orders by round first: what goes is a prefix.
        drop_prefix(&mut self.leaders, |r| r.get().saturating_add(2) < g);
        drop_prefix(&mut self.blame, |(r, _)| r.get().saturating_add(1) < g);
        drop_prefix(&mut self.partial, |c| c.round.get() < g.saturating_add(2));
        drop_prefix(&mut self.certified, |l| l.round < gc);
        drop_prefix(&mut self.orphans, |v| v.round.get() < g.saturating_add(1));
        // The store no longer holds these voters: neither may the table.
        drop_prefix(&mut self.votes, |r| *r < gc);
    }

    /// Counts one block, new to the tally, as a blamer for the slots one
    /// round below, as the voter some earlier-counted blocks were waiting
    /// for, and as a candidate certificate for the slots two rounds below.
    ///
    /// Order does not matter: a parent inserted before the sync that counts
    /// `b` is in the store and counted here; one inserted later is an
    /// orphan, counted when it is.
    fn count(&mut self, b: &VerifiedBlock, store: &DagStore) {
        let Some(vote_round) = b.round().prev() else {
            return;
        };
        self.with_leaders(vote_round, |t, leaders| {
            t.count_vote(b, vote_round, leaders)
        });
        let Some(slot_round) = vote_round.prev() else {
            return;
        };
        self.with_leaders(slot_round, |t, leaders| {
            t.count_certificate(b, vote_round, leaders, store)
        });
    }

    /// [`Self::count`]: `b` as a blamer or voter for the slots of
    /// `leaders`, one round below it.
    fn count_vote(&mut self, b: &VerifiedBlock, vote_round: Round, leaders: &[AuthorityIndex]) {
        for &a in leaders {
            if b.parent_by(a).is_none_or(|p| p.round != vote_round) {
                self.blame
                    .entry((vote_round, a))
                    .or_insert_with(|| StakeAggregator::new(&self.committee))
                    .add(b.author(), &self.committee);
            }
        }
        self.record_votes(b, leaders);
        if !self.orphans.is_empty()
            && let Some(waiting) = self.orphans.remove(&b.reference())
        {
            for cert in waiting {
                // It may wait for further orphans: its support stays
                // partial (a hand-built DAG's case, not a validator's).
                let mut support = self.partial.remove(&cert).unwrap_or_default();
                self.add_votes(&mut support, b, leaders);
                self.settle(cert, &support);
                self.keep_partial(cert, support);
            }
        }
    }

    /// [`Self::count`]: `b` as a candidate certificate for the slots of
    /// `leaders`, two rounds below it.
    fn count_certificate(
        &mut self,
        b: &VerifiedBlock,
        vote_round: Round,
        leaders: &Arc<[AuthorityIndex]>,
        store: &DagStore,
    ) {
        if leaders.is_empty() {
            return;
        }
        let cert = b.reference();
        let memo = b.block().support_memo();
        let committee = self.committee.digest();
        if let Some(support) = memo.get(&cert.digest, &committee, leaders)
            && self.parents_present(b, vote_round, store)
        {
            debug_assert_eq!(
                self.support_of(b, vote_round, leaders, store),
                (support.to_vec(), Vec::new()),
                "a remembered support is the one counted"
            );
            self.settle(cert, support);
            return;
        }
        let (support, missing) = self.support_of(b, vote_round, leaders, store);
        self.settle(cert, &support);
        if missing.is_empty() {
            memo.remember(cert.digest, committee, leaders.clone(), support);
            return;
        }
        for p in missing {
            self.orphans.entry(p).or_default().push(cert);
        }
        self.keep_partial(cert, support);
    }

    /// True if every `vote_round` parent of `b` is in `store`: the
    /// remembered support counts them all, and counts are those of the
    /// blocks present (a validator inserts a block after its parents, but a
    /// hand-built DAG, or one restored above a snapshot, may not). Asked of
    /// the round's vote table first, one array, then of the store.
    fn parents_present(&self, b: &VerifiedBlock, vote_round: Round, store: &DagStore) -> bool {
        let table = self.votes.get(&vote_round);
        let voters = store.round_by_author(vote_round);
        b.parents()
            .iter()
            .filter(|p| p.round == vote_round)
            .all(|p| table.is_some_and(|t| t.votes_of(p).is_some()) || find_in(voters, p).is_some())
    }

    /// The support of `b` as a certificate for the leader blocks of
    /// `leaders` (two rounds below it), sorted by leader block, counted
    /// from its `vote_round` parents present in `store`; and the parents
    /// missing from it.
    fn support_of(
        &self,
        b: &VerifiedBlock,
        vote_round: Round,
        leaders: &[AuthorityIndex],
        store: &DagStore,
    ) -> (Vec<Support>, Vec<BlockRef>) {
        let mut support = Vec::new();
        let voters = store.round_by_author(vote_round);
        let table = self.votes.get(&vote_round);
        let mut missing = Vec::new();
        for p in b.parents().iter().filter(|p| p.round == vote_round) {
            if let Some(t) = table
                && let Some(mask) = t.votes_of(p)
            {
                let stake = self.committee.stake(p.author);
                for_each_bit(mask, |i| credit(&mut support, &t.leader_blocks[i], stake));
                continue;
            }
            match find_in(voters, p) {
                Some(voter) => self.add_votes(&mut support, voter, leaders),
                None => missing.push(*p),
            }
        }
        support.sort_unstable_by_key(|s| s.leader);
        (support, missing)
    }

    /// Keeps `b`'s votes for `leaders` (one round below it) in the table of
    /// its round, unless that round is older than the window.
    fn record_votes(&mut self, b: &VerifiedBlock, leaders: &[AuthorityIndex]) {
        let round = b.round().get();
        if self
            .votes
            .last_key_value()
            .is_some_and(|(r, _)| round.saturating_add(VOTE_WINDOW) < r.get())
        {
            return;
        }
        let n = self.committee.size();
        self.votes
            .entry(b.round())
            .or_default()
            .record(b, leaders, n);
        drop_prefix(&mut self.votes, |r| {
            r.get().saturating_add(VOTE_WINDOW) < round
        });
    }

    /// Adds `voter`'s stake to `support` for each leader block (of
    /// `leaders`, one round below the voter) it references. A certificate's
    /// parents are one per author, so each voter is added once.
    fn add_votes(
        &self,
        support: &mut Vec<Support>,
        voter: &VerifiedBlock,
        leaders: &[AuthorityIndex],
    ) {
        let stake = self.committee.stake(voter.author());
        let slot_round = voter.round().prev();
        for &a in leaders {
            let Some(leader) = voter.parent_by(a).filter(|l| Some(l.round) == slot_round) else {
                continue;
            };
            credit(support, leader, stake);
        }
    }

    /// Records `cert`'s support: `cert` becomes a certificate for the
    /// leaders whose support now reaches a quorum (once: certificates are
    /// counted by distinct author). The caller keeps the stakes only while
    /// votes may still come (`partial`).
    fn settle(&mut self, cert: BlockRef, support: &[Support]) {
        for s in support {
            if self.committee.is_quorum(s.stake) {
                self.certified
                    .entry(s.leader)
                    .or_insert_with(|| Certified::new(&self.committee))
                    .add(cert, &self.committee);
            }
        }
    }

    /// Keeps the support of `cert`, which waits for votes still to come.
    fn keep_partial(&mut self, cert: BlockRef, support: Vec<Support>) {
        if !support.is_empty() {
            self.partial.insert(cert, support);
        }
    }

    /// True if `a` is a leader of `round` (so the tally counts its slot).
    pub fn tracks(&mut self, round: Round, a: AuthorityIndex) -> bool {
        self.with_leaders(round, |_, l| l.contains(&a))
    }

    /// The stake of distinct authors holding certificates for `leader`.
    pub fn certified_stake(&self, leader: &BlockRef) -> u64 {
        self.certified.get(leader).map_or(0, |c| c.authors.stake())
    }

    /// The stake of distinct authors of blocks blaming slot `(round, a)`.
    pub fn blame_stake(&self, round: Round, a: AuthorityIndex) -> u64 {
        self.blame
            .get(&(round, a))
            .map_or(0, StakeAggregator::stake)
    }

    /// True if `cert` is a certificate for `leader`.
    pub fn is_certificate(&self, cert: &BlockRef, leader: &BlockRef) -> bool {
        self.certified.get(leader).is_some_and(|c| c.contains(cert))
    }

    #[cfg(test)]
    /// Number of entries held (slots blamed, certificates and candidates still counting,
    /// certified leaders, orphan voters).
    pub fn len(&self) -> usize {
        // A block certifying several leaders counts once, as its
        // support entry did.
        let certs: std::collections::BTreeSet<(Round, &(AuthorityIndex, Digest))> = self
            .certified
            .iter()
            .flat_map(|(l, c)| c.certs.iter().map(move |k| (l.round, k)))
            .collect();
        let certs = certs.len();
        self.blame.len() + self.partial.len() + certs + self.certified.len() + self.orphans.len()
    }

    #[cfg(test)]
    /// The lowest round any count refers to (a slot's or a block's).
    pub fn lowest_round(&self) -> Option<Round> {
        let slots = self.blame.keys().map(|(r, _)| *r);
        let refs = self
            .partial
            .keys()
            .chain(self.certified.keys())
            .chain(self.orphans.keys())
            .map(|r| r.round);
        slots.chain(refs).chain(self.votes.keys().copied()).min()
    }

    #[cfg(test)]
    /// Rounds of the vote table (at most `VOTE_WINDOW + 1`).
    pub fn vote_rounds(&self) -> usize {
        self.votes.len()
    }
}

/// The certificates of one leader block.
#[derive(Clone, Debug)]
struct Certified {
    /// Their distinct authors.
    authors: StakeAggregator,
    /// `(author, digest)` of each, in the order counted (one per author
    /// but for equivocators').
    certs: Vec<(AuthorityIndex, Digest)>,
}

impl Certified {
    fn new(committee: &Committee) -> Self {
        Self {
            authors: StakeAggregator::new(committee),
            certs: Vec::new(),
        }
    }

    /// Adds certificate `cert` (once).
    fn add(&mut self, cert: BlockRef, committee: &Committee) {
        if !self.contains(&cert) {
            self.certs.push((cert.author, cert.digest));
            self.authors.add(cert.author, committee);
        }
    }

    /// True if `cert` was added: its author's certificates are searched
    /// only if it has any.
    fn contains(&self, cert: &BlockRef) -> bool {
        self.authors.contains(cert.author) && self.certs.contains(&(cert.author, cert.digest))
    }
}

/// Adds `stake` to `leader`'s entry of `support`.
fn credit(support: &mut Vec<Support>, leader: &BlockRef, stake: u64) {
    match support.iter_mut().find(|s| s.leader == *leader) {
        Some(s) => s.stake = s.stake.saturating_add(stake),
        None => support.push(Support {
            leader: *leader,
            stake,
        }),
    }
}

/// Calls `f` with the index of each set bit of `mask`, lowest first.
fn for_each_bit(mut mask: u64, mut f: impl FnMut(usize)) {
    while mask != 0 {
        f(mask.trailing_zeros() as usize);
        mask &= mask - 1;
    }
}

/// Removes the first entries of `m` while `gone` holds for their key: a
/// prefix, for a `gone` that holds for a prefix of the key order (here:
/// rounds below a bound, on keys that order by round first). Costs what it
/// removes, not the map's size.
fn drop_prefix<K: Ord, V>(m: &mut BTreeMap<K, V>, gone: impl Fn(&K) -> bool) {
    while m.first_key_value().is_some_and(|(k, _)| gone(k)) {
        m.pop_first();
    }
}
