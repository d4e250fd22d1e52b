//! How a light node decides a ledger fact is true: validators holding a
//! validity quorum of the stake (f + 1) reported it identically for the
//! same commit.
//!
//! At most f of the stake is Byzantine, so a fact backed by f + 1 comes from
//! at least one honest validator, which reports only what its ledger
//! applied. A forged fact from one validator (a lying gateway) never
//! reaches the threshold; a fact an honest minority has not applied yet
//! waits until enough validators catch up.
//!
//! Memory is bounded: each validator may have at most
//! [`MAX_PENDING_PER_VALIDATOR`] unconfirmed reports in flight (past that,
//! its oldest half are dropped at once, so a flooding validator only evicts
//! its own reports, at a cost amortized over the reports it sent), and
//! accepted facts are remembered for [`ACCEPTED_HORIZON`] commits to drop
//! late duplicates.
//!
//! [`FactQuorum::oldest_pending`] tells when the oldest report still short
//! of f + 1 arrived: a light node that hears a fact from a few of its
//! sources and not the rest for long is listening to too few honest, live
//! validators, and widens its subscriptions (see
//! [`LightSetup::fact_sources`](crate::light::LightSetup::fact_sources)).

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use idlegrid_dag_ledger::consensus::{AuthorityIndex, Committee};
use idlegrid_primitives::{Digest, Domain, NodeId, Timestamp};

use crate::wire::{Fact, FactBatch, MAX_FACTS_PER_BATCH};

const FACT_DOMAIN: Domain = Domain::new("idlegrid/node/fact");
/// Unconfirmed reports one validator may have in flight.
pub const MAX_PENDING_PER_VALIDATOR: usize = 8_192;
/// Commits for which accepted facts are remembered (duplicates from slow
/// validators arrive within it).
pub const ACCEPTED_HORIZON: u64 = 100_000;

/// Fact slices whose keys are remembered (see [`SliceKeys`]).
const SLICES: usize = 4;

/// Why a fact batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FactError {
    /// The sender is not a validator of the committee.
    #[error("facts from {0}, which is not a validator")]
    NotAValidator(NodeId),
    /// More facts than one commit can hold for one subscriber.
    #[error("{0} facts in one batch (at most {MAX_FACTS_PER_BATCH})")]
    TooMany(usize),
    /// The sender forged a certificate before: its certificates are no
    /// longer read.
    #[error("certificate from {0}, which forged one before")]
    Forger(NodeId),
    /// A certificate of global facts that does not hold.
    #[error("certificate refused: {0}")]
    Certificate(#[from] crate::certified::CertError),
}

struct Pending {
    index: u64,
    /// When its first report arrived.
    seen: Timestamp,
    fact: Fact,
    voters: Voters,
    stake: u64,
}

/// Committee indices whose voter bits are kept inline (256 validators).
const INLINE_WORDS: usize = 4;

/// The validators that reported a pending fact, one bit per committee
/// index: those of the first 256 validators inline (every report of a fact
/// sets one, so no pointer is followed for them), the rest on the heap.
#[derive(Default)]
struct Voters {
    low: [u64; INLINE_WORDS],
    high: Vec<u64>,
}

impl Voters {
    fn locate(a: AuthorityIndex) -> (usize, u64) {
        (a.as_usize() / 64, 1u64 << (a.as_usize() % 64))
    }

    fn word(&self, w: usize) -> u64 {
        match w.checked_sub(INLINE_WORDS) {
            None => self.low[w],
            Some(i) => self.high.get(i).copied().unwrap_or(0),
        }
    }

    fn word_mut(&mut self, w: usize) -> &mut u64 {
        match w.checked_sub(INLINE_WORDS) {
            None => &mut self.low[w],
            Some(i) => {
                if self.high.len() <= i {
                    self.high.resize(i + 1, 0);
                }
                &mut self.high[i]
            }
        }
    }

    /// Adds `a`; false if it was there.
    fn insert(&mut self, a: AuthorityIndex) -> bool {
        let (w, bit) = Self::locate(a);
        let word = self.word_mut(w);
        let fresh = *word & bit == 0;
        *word |= bit;
        fresh
    }

    /// Removes `a`; false if it was not there.
    fn remove(&mut self, a: AuthorityIndex) -> bool {
        let (w, bit) = Self::locate(a);
        if self.word(w) & bit == 0 {
            return false;
        }
        *self.word_mut(w) &= !bit;
        true
    }

    #[cfg(test)]
    fn contains(&self, a: AuthorityIndex) -> bool {
        let (w, bit) = Self::locate(a);
        self.word(w) & bit != 0
    }

    fn is_empty(&self) -> bool {
        self.low.iter().chain(&self.high).all(|w| *w == 0)
    }

    fn iter(&self) -> impl Iterator<Item = AuthorityIndex> + '_ {
        self.low
            .iter()
            .chain(&self.high)
            .enumerate()
            .flat_map(|(w, word)| {
                (0..64)
                    .filter(move |b| word & (1u64 << b) != 0)
                    .map(move |b| AuthorityIndex::new((w * 64 + b) as u32))
            })
    }
}

/// Collects validators' fact reports until f + 1 of the stake agrees.
pub struct FactQuorum {
    committee: Committee,
    /// Boxed: a map node holds eleven entries, a light node few at a time.
    pending: BTreeMap<Digest, Box<Pending>>,
    /// The pending facts by the time of their first report.
    by_age: BTreeSet<(Timestamp, Digest)>,
    /// The pending facts by commit index, for dropping stale ones.
    by_index: BTreeSet<(u64, Digest)>,
    /// Per validator (by committee index), the pending facts it reported.
    reports: Vec<u32>,
    /// The accepted facts' keys by commit index (a key names its index, so
    /// a late report is found by both).
    accepted: BTreeSet<(u64, Digest)>,
    highest: u64,
    recent: SliceKeys,
}

impl std::fmt::Debug for FactQuorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FactQuorum")
            .field("pending", &self.pending.len())
            .field("accepted", &self.accepted.len())
            .finish_non_exhaustive()
    }
}

impl FactQuorum {
    /// A quorum over `committee`'s stake.
    pub fn new(committee: Committee) -> Self {
        let size = committee.size();
        Self {
            committee,
            pending: BTreeMap::new(),
            by_age: BTreeSet::new(),
            by_index: BTreeSet::new(),
            reports: vec![0; size],
            accepted: BTreeSet::new(),
            highest: 0,
            recent: SliceKeys::default(),
        }
    }

    /// The committee whose stake backs facts.
    pub fn committee(&self) -> &Committee {
        &self.committee
    }

    /// Records `from`'s report, received at `now`; returns the facts that
    /// reached f + 1 with it, in report order. A validator reporting the
    /// same fact twice counts once. Reports of commits more than
    /// [`ACCEPTED_HORIZON`] below the highest accepted one are stale and
    /// ignored (their accepted facts are no longer remembered, so they
    /// could be accepted twice).
    pub fn observe(
        &mut self,
        now: Timestamp,
        from: NodeId,
        batch: FactBatch,
    ) -> Result<Vec<Fact>, FactError> {
        let who = self
            .committee
            .index_of(&from)
            .ok_or(FactError::NotAValidator(from))?;
        if batch.facts.len() > MAX_FACTS_PER_BATCH {
            return Err(FactError::TooMany(batch.facts.len()));
        }
        let stake = self.committee.stake(who);
        let mut out = Vec::new();
        if batch.index < self.floor() {
            return Ok(out);
        }
        let slice = self.recent.find_or_add(batch.index, &batch.facts);
        for (i, fact) in batch.facts.iter().enumerate() {
            let key = self.recent.key(slice, i);
            // Pending first: most reports are of a fact still pending (a
            // key is never both pending and accepted).
            let p = match self.pending.entry(key) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(_) if self.accepted.contains(&(batch.index, key)) => continue,
                Entry::Vacant(e) => {
                    self.by_age.insert((now, key));
                    self.by_index.insert((batch.index, key));
                    e.insert(Box::new(Pending {
                        index: batch.index,
                        seen: now,
                        fact: fact.clone(),
                        voters: Voters::default(),
                        stake: 0,
                    }))
                }
            };
            if !p.voters.insert(who) {
                continue;
            }
            p.stake += stake;
            self.reports[who.as_usize()] += 1;
            if self.committee.is_validity(p.stake) {
                let p = self.unpend(&key).expect("present");
                self.accept(key, p.index);
                out.push(p.fact);
            } else if self.reports[who.as_usize()] as usize > MAX_PENDING_PER_VALIDATOR {
                self.evict(who);
            }
        }
        Ok(out)
    }

    /// True if every one of `facts` of commit `index` is decided (or the
    /// commit is too old to be remembered).
    pub fn decided(&self, index: u64, facts: &[Fact]) -> bool {
        index < self.floor()
            || facts
                .iter()
                .all(|f| self.accepted.contains(&(index, fact_key(index, f))))
    }

    /// Decides `facts` of commit `index` at once (a certificate backs
    /// them): returns those not decided before, in order.
    pub fn decide(&mut self, index: u64, facts: &[Fact]) -> Vec<Fact> {
        let mut out = Vec::new();
        if index < self.floor() {
            return out;
        }
        for f in facts {
            let key = fact_key(index, f);
            if self.accepted.contains(&(index, key)) {
                continue;
            }
            self.unpend(&key);
            self.accept(key, index);
            out.push(f.clone());
        }
        out
    }

    /// Drops the votes of `who` (over its quota) from its oldest pending
    /// facts, by commit index, until half its quota is left, and the facts
    /// left without a vote.
    fn evict(&mut self, who: AuthorityIndex) {
        let keep = (MAX_PENDING_PER_VALIDATOR / 2) as u32;
        let stake = self.committee.stake(who);
        let mut emptied = Vec::new();
        for (_, key) in &self.by_index {
            if self.reports[who.as_usize()] <= keep {
                break;
            }
            let p = self.pending.get_mut(key).expect("indexed, so pending");
            if p.voters.remove(who) {
                p.stake -= stake;
                self.reports[who.as_usize()] -= 1;
                if p.voters.is_empty() {
                    emptied.push(*key);
                }
            }
        }
        for key in emptied {
            self.unpend(&key);
        }
    }

    fn accept(&mut self, key: Digest, index: u64) {
        self.accepted.insert((index, key));
        self.highest = self.highest.max(index);
        let floor = self.floor();
        while let Some(&(i, _)) = self.accepted.first() {
            if i >= floor {
                break;
            }
            self.accepted.pop_first();
        }
        // Reports of commits long accepted past are stale: a prefix of the
        // pending facts by index, removed at the cost of what goes.
        while let Some(&(i, k)) = self.by_index.first()
            && i < floor
        {
            self.unpend(&k);
        }
    }

    /// The lowest commit index still remembered.
    fn floor(&self) -> u64 {
        self.highest.saturating_sub(ACCEPTED_HORIZON)
    }

    fn unpend(&mut self, key: &Digest) -> Option<Pending> {
        let p = self.pending.remove(key)?;
        self.by_age.remove(&(p.seen, *key));
        self.by_index.remove(&(p.index, *key));
        for v in p.voters.iter() {
            self.reports[v.as_usize()] -= 1;
        }
        debug_assert_eq!(self.pending.len(), self.by_age.len());
        debug_assert_eq!(self.pending.len(), self.by_index.len());
        Some(*p)
    }

    /// When the oldest fact still short of f + 1 was first reported.
    pub fn oldest_pending(&self) -> Option<Timestamp> {
        self.by_age.first().map(|(t, _)| *t)
    }

    /// The lowest commit index of a fact still short of f + 1.
    pub fn oldest_pending_index(&self) -> Option<u64> {
        self.by_index.first().map(|(i, _)| *i)
    }

    /// Unconfirmed facts held.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// The keys of the last few fact slices reported, kept with the slices:
/// every honest validator reports the same slice of a commit to a
/// subscriber, so every report after the first is found by comparing
/// slices — one pointer comparison when they share memory, as in-process
/// copies do, the facts otherwise — instead of hashing each fact again.
///
/// Bounded: [`SLICES`] slices, the oldest replaced by a new one. A
/// validator sending slices nobody else sends only costs the hashing this
/// saves. The key of a fact is the same either way.
#[derive(Default)]
struct SliceKeys {
    slots: [Option<Slice>; SLICES],
    /// The slot the next new slice takes.
    next: usize,
}

struct Slice {
    index: u64,
    facts: Arc<[Fact]>,
    keys: Box<[Digest]>,
}

/// The key a fact reported for commit `index` is pending and accepted
/// under.
fn fact_key(index: u64, fact: &Fact) -> Digest {
    Digest::of(FACT_DOMAIN, &(index, fact))
}

impl SliceKeys {
    /// The slot holding the keys of `facts` reported for commit `index`,
    /// hashed now if they are not there.
    fn find_or_add(&mut self, index: u64, facts: &Arc<[Fact]>) -> usize {
        let same = |s: &Slice| {
            s.index == index && (Arc::ptr_eq(&s.facts, facts) || s.facts[..] == facts[..])
        };
        if let Some(at) = self.slots.iter().position(|s| s.as_ref().is_some_and(same)) {
            return at;
        }
        let at = self.next;
        self.next = (at + 1) % SLICES;
        self.slots[at] = Some(Slice {
            index,
            facts: Arc::clone(facts),
            keys: facts.iter().map(|f| fact_key(index, f)).collect(),
        });
        at
    }

    /// The key of fact `i` of the slice in slot `at`.
    fn key(&self, at: usize, i: usize) -> Digest {
        match &self.slots[at] {
            Some(s) => s.keys[i],
            None => unreachable!("a slot found or filled by find_or_add"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idlegrid_primitives::{AccountId, Keypair, Seed};

    fn committee(n: u64) -> (Committee, Vec<NodeId>) {
        let ids: Vec<NodeId> = (0..n)
            .map(|i| Keypair::from_seed(&Seed::from_u64(i)).node_id())
            .collect();
        (Committee::equal(ids.iter().copied()).unwrap(), ids)
    }

    fn fact(nonce: u64) -> Fact {
        Fact::Applied {
            sender: AccountId::from_bytes([7; 32]),
            tx: Digest::of(Domain::new("test/tx"), &nonce),
        }
    }

    const T0: Timestamp = Timestamp::ZERO;

    fn batch(index: u64, f: Fact) -> FactBatch {
        FactBatch {
            index,
            facts: vec![f].into(),
        }
    }

    #[test]
    fn f_plus_one_distinct_validators_accept_once() {
        let (c, ids) = committee(4); // f = 1: two reports needed
        let mut q = FactQuorum::new(c);
        assert!(q.observe(T0, ids[0], batch(3, fact(0))).unwrap().is_empty());
        // The same validator again does not count twice.
        assert!(q.observe(T0, ids[0], batch(3, fact(0))).unwrap().is_empty());
        assert_eq!(
            q.observe(T0, ids[1], batch(3, fact(0))).unwrap(),
            vec![fact(0)]
        );
        // Late reports of an accepted fact are dropped.
        assert!(q.observe(T0, ids[2], batch(3, fact(0))).unwrap().is_empty());
        assert_eq!(q.pending(), 0);
    }

    #[test]
    fn different_facts_or_commits_do_not_add_up() {
        let (c, ids) = committee(4);
        let mut q = FactQuorum::new(c);
        assert!(q.observe(T0, ids[0], batch(3, fact(0))).unwrap().is_empty());
        assert!(q.observe(T0, ids[1], batch(3, fact(1))).unwrap().is_empty());
        assert!(q.observe(T0, ids[2], batch(4, fact(0))).unwrap().is_empty());
    }

    #[test]
    fn strangers_and_oversize_batches_are_refused() {
        let (c, _) = committee(4);
        let mut q = FactQuorum::new(c);
        let stranger = Keypair::from_seed(&Seed::from_u64(99)).node_id();
        assert_eq!(
            q.observe(T0, stranger, batch(1, fact(0))),
            Err(FactError::NotAValidator(stranger))
        );
        let (_, ids) = committee(4);
        let big = FactBatch {
            index: 1,
            facts: vec![fact(0); MAX_FACTS_PER_BATCH + 1].into(),
        };
        assert!(matches!(
            q.observe(T0, ids[0], big),
            Err(FactError::TooMany(_))
        ));
    }

    #[test]
    fn a_validator_s_count_is_its_unconfirmed_reports() {
        let (c, ids) = committee(4); // f = 1: two reports needed
        let mut q = FactQuorum::new(c);
        for i in 0..1_000 {
            // Validator 0 is first with every fact, validator 1 confirms.
            q.observe(T0, ids[0], batch(1 + i / 50, fact(i))).unwrap();
            assert_eq!(queued(&q, ids[0]), 1, "the unconfirmed report is tracked");
            let got = q.observe(T0, ids[1], batch(1 + i / 50, fact(i))).unwrap();
            assert_eq!(got, vec![fact(i)]);
            assert_eq!(queued(&q, ids[0]), 0, "confirmed reports leave");
            assert!(q.reports.iter().all(|&n| n == 0));
            counts_match(&q);
        }
        // An unconfirmed report stays tracked (and so can be evicted).
        q.observe(T0, ids[0], batch(30, fact(5_000))).unwrap();
        q.observe(T0, ids[0], batch(30, fact(5_001))).unwrap();
        assert_eq!(queued(&q, ids[0]), 2);
        assert_eq!(q.pending(), 2);
        // Confirming the later one leaves the earlier one counted.
        q.observe(T0, ids[2], batch(30, fact(5_001))).unwrap();
        assert_eq!((queued(&q, ids[0]), q.pending()), (1, 1));
        q.observe(T0, ids[2], batch(30, fact(5_000))).unwrap();
        assert_eq!((queued(&q, ids[0]), q.pending()), (0, 0));
    }

    /// Each validator's count is the pending facts with its vote.
    fn counts_match(q: &FactQuorum) {
        for (i, &n) in q.reports.iter().enumerate() {
            let a = AuthorityIndex::new(i as u32);
            let voted = q.pending.values().filter(|p| p.voters.contains(a)).count();
            assert_eq!(n as usize, voted, "validator {i}");
        }
    }

    fn queued(q: &FactQuorum, id: NodeId) -> usize {
        let a = q.committee.index_of(&id).expect("member");
        q.reports[a.as_usize()] as usize
    }

    #[test]
    fn a_flooding_validator_evicts_only_its_own_reports() {
        let (c, ids) = committee(4);
        let mut q = FactQuorum::new(c);
        q.observe(T0, ids[1], batch(1, fact(0))).unwrap();
        for i in 0..(MAX_PENDING_PER_VALIDATOR as u64 + 10) {
            q.observe(T0, ids[0], batch(2, fact(1_000 + i))).unwrap();
        }
        assert!(q.pending() <= MAX_PENDING_PER_VALIDATOR + 1);
        assert!(queued(&q, ids[0]) <= MAX_PENDING_PER_VALIDATOR);
        counts_match(&q);
        // Validator 1's report survived the flood.
        assert_eq!(
            q.observe(T0, ids[2], batch(1, fact(0))).unwrap(),
            vec![fact(0)]
        );
    }

    #[test]
    fn the_oldest_pending_report_is_tracked_until_it_resolves() {
        let (c, ids) = committee(4); // f = 1: two reports needed
        let mut q = FactQuorum::new(c);
        let at = |ms| Timestamp::from_millis(ms);
        assert_eq!(q.oldest_pending(), None);
        q.observe(at(10), ids[0], batch(1, fact(0))).unwrap();
        q.observe(at(20), ids[0], batch(1, fact(1))).unwrap();
        // A second report of the same fact does not make it younger.
        q.observe(at(30), ids[0], batch(1, fact(0))).unwrap();
        assert_eq!(q.oldest_pending(), Some(at(10)));
        q.observe(at(40), ids[1], batch(1, fact(0))).unwrap();
        assert_eq!(q.oldest_pending(), Some(at(20)));
        q.observe(at(50), ids[2], batch(1, fact(1))).unwrap();
        assert_eq!((q.oldest_pending(), q.pending()), (None, 0));
    }

    proptest::proptest! {
        /// The remembered keys are the hashed ones, whatever the order and
        /// spread of indices and slices, shared or equal copies.
        #[test]
        fn slice_keys_are_the_hashed_keys(
            reports in proptest::collection::vec(
                (proptest::prop_oneof![0u64..8, (u64::MAX - 8)..=u64::MAX], proptest::collection::vec(0u64..6, 0..4), proptest::bool::ANY),
                1..300,
            ),
        ) {
            let mut recent = SliceKeys::default();
            let mut last: Option<Arc<[Fact]>> = None;
            for (index, nonces, reuse) in reports {
                let fresh: Arc<[Fact]> = nonces.iter().map(|n| fact(*n)).collect();
                let facts = match (&last, reuse) {
                    (Some(l), true) => Arc::clone(l),
                    _ => fresh,
                };
                let at = recent.find_or_add(index, &facts);
                for (i, f) in facts.iter().enumerate() {
                    proptest::prop_assert_eq!(recent.key(at, i), Digest::of(FACT_DOMAIN, &(index, f)));
                }
                last = Some(facts);
            }
        }
    }

    proptest::proptest! {
        /// Whatever validators report, in any order, each one's count is
        /// the pending facts with its vote, and a fact is accepted once, by
        /// f + 1 distinct validators.
        #[test]
        fn counts_follow_the_pending_votes(
            ops in proptest::collection::vec((0usize..7, 1u64..12, 0u64..10), 0..400),
        ) {
            let (c, ids) = committee(7); // f = 2: three reports needed
            let mut q = FactQuorum::new(c);
            let mut voters: BTreeMap<(u64, u64), BTreeSet<usize>> = BTreeMap::new();
            for (v, index, n) in ops {
                let got = q.observe(T0, ids[v], batch(index, fact(n))).unwrap();
                let seen = voters.entry((index, n)).or_default();
                let fresh = seen.len() < 3 && seen.insert(v);
                let accepted = fresh && seen.len() == 3;
                proptest::prop_assert_eq!(got.len(), usize::from(accepted));
                counts_match(&q);
            }
        }

        /// The bit set of voters is a set of committee indices.
        #[test]
        fn voters_are_a_set(ops in proptest::collection::vec((proptest::bool::ANY, 0u32..400), 0..300)) {
            let (mut v, mut model) = (Voters::default(), BTreeSet::new());
            for (add, i) in ops {
                let a = AuthorityIndex::new(i);
                match add {
                    true => proptest::prop_assert_eq!(v.insert(a), model.insert(a)),
                    false => proptest::prop_assert_eq!(v.remove(a), model.remove(&a)),
                }
                proptest::prop_assert_eq!(v.contains(a), model.contains(&a));
                proptest::prop_assert_eq!(v.is_empty(), model.is_empty());
                proptest::prop_assert!(v.iter().eq(model.iter().copied()));
            }
        }
    }

    #[test]
    fn a_repeated_slice_is_found_without_hashing_again() {
        let mut recent = SliceKeys::default();
        let slice = |n: u64| -> Arc<[Fact]> { Arc::from([fact(n), fact(n + 1)]) };
        let a = slice(1);
        let at = recent.find_or_add(5, &a);
        // The same slice, shared or an equal copy: found, not added again.
        assert_eq!(recent.find_or_add(5, &a), at);
        assert_eq!(recent.find_or_add(5, &slice(1)), at);
        assert_eq!(recent.next, 1);
        // The same facts at another index are other keys, in another slot.
        let other = recent.find_or_add(6, &a);
        assert_ne!(other, at);
        assert_ne!(recent.key(other, 0), recent.key(at, 0));
        // New slices take the oldest slots in turn.
        for n in 0..SLICES as u64 {
            recent.find_or_add(7, &slice(10 + n));
        }
        let oldest = recent.next;
        assert_eq!(recent.find_or_add(5, &a), oldest, "evicted, hashed again");
    }

    #[test]
    fn reports_beyond_the_horizon_are_dropped_and_never_accepted_twice() {
        let (c, ids) = committee(4); // f = 1: two reports needed
        let mut q = FactQuorum::new(c);
        let t = T0;
        // Accepted at commit 1, and a report at commit 2 left short.
        q.observe(t, ids[0], batch(1, fact(0))).unwrap();
        assert_eq!(q.observe(t, ids[1], batch(1, fact(0))).unwrap(), [fact(0)]);
        q.observe(t, ids[0], batch(2, fact(1))).unwrap();
        assert_eq!(q.pending(), 1);
        // A commit past the horizon drops the short report as stale ...
        let far = ACCEPTED_HORIZON + 3;
        q.observe(t, ids[0], batch(far, fact(2))).unwrap();
        q.observe(t, ids[1], batch(far, fact(2))).unwrap();
        assert_eq!((q.pending(), q.oldest_pending()), (0, None));
        // ... and late reports of forgotten commits are ignored, so the
        // fact accepted at commit 1 is not accepted again.
        for &v in &ids {
            assert!(q.observe(t, v, batch(1, fact(0))).unwrap().is_empty());
            assert!(q.observe(t, v, batch(2, fact(1))).unwrap().is_empty());
        }
        assert_eq!(q.pending(), 0);
        // Within the horizon a duplicate is still recognised.
        assert!(
            q.observe(t, ids[2], batch(far, fact(2)))
                .unwrap()
                .is_empty()
        );
        assert_eq!(q.pending(), 0);
    }
}
