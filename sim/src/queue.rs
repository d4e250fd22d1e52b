//! The event queue: a bounded min-priority queue ordered by `(time, sequence)`.
//!
//! Every event gets a sequence number when it is scheduled. Two events at
//! the same virtual time pop in the order they were pushed, so the run does
//! not depend on the queue's internal layout — ties are broken by sequence,
//! never by chance.
//!
//! # Layout
//!
//! An event's key is the 128-bit number `time << 64 | sequence`, so keys are
//! unique and ordered exactly as `(time, sequence)`. The queue is a
//! *monotone radix heap*: `base` is the key popped last, and every key above
//! it sits in bucket `b`, the position of the highest bit in which it differs
//! from `base`. Every key of bucket `b` is below every key of bucket `b + 1`,
//! so the minimum is the minimum of the lowest non-empty bucket; each bucket
//! keeps its minimum and a bit mask records the non-empty ones, so
//! [`EventQueue::peek_time`] is O(1). Popping from a bucket of several
//! entries makes its minimum the new `base` and moves the others to lower
//! buckets; an entry only ever moves down, at most 128 times (about seven
//! times per event in a 40-validator marketplace run). Those moves read a
//! bucket front to back and append to a few bucket tails, where a binary
//! heap's sift jumps across the whole array at every level: with a million
//! pending events a pop and a push cost less than half as much.
//!
//! The engine never schedules before the current time, so its keys never
//! fall below `base` (a new key at the current time has a larger sequence).
//! For any other caller, a key below `base` goes to a small side
//! [`BinaryHeap`] that `pop` and `peek_time` compare against the radix heap,
//! so the contract — pop order by `(time, sequence)` whatever the push
//! order — holds for every sequence of calls.

use core::cmp::Ordering;
use core::mem;
use std::collections::BinaryHeap;

use idlegrid_primitives::Timestamp;
use thiserror::Error;

/// The sequence number an event received when it was scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventSeq(u64);

impl EventSeq {
    /// The raw number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// The queue already holds its maximum number of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("event queue is full ({capacity} pending events); raise `max_queue_len` or lower the load")]
pub struct QueueFull {
    /// The configured capacity.
    pub capacity: usize,
}

/// One bucket per bit of a key.
const BUCKETS: usize = 128;

/// Entries per chunk of a bucket (3 KiB).
const CHUNK: usize = 128;

/// Chunks the pool may keep however few are in use.
const SPARE_MIN: usize = 16;

/// Capacity an empty bucket's list of chunks, or the side heap, may keep
/// for reuse.
const KEEP: usize = 16;

/// A queue entry: the ordering key and the slot of its event in the slab.
/// Kept small (24 bytes), so moving entries between buckets never moves the
/// event (a message in flight is hundreds of bytes).
#[derive(Clone, Copy)]
struct Entry {
    at: Timestamp,
    seq: EventSeq,
    slot: u32,
}

impl Entry {
    /// `(at, seq)` as one number with the same order.
    fn key(&self) -> u128 {
        (u128::from(self.at.as_micros()) << 64) | u128::from(self.seq.get())
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest entry.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key().cmp(&self.key())
    }
}

/// The bucket of `key` (`key >= base`): the highest bit in which the two
/// differ. Bucket 0 also takes `base` itself, which only the first key of an
/// empty heap can equal.
fn bucket_of(key: u128, base: u128) -> usize {
    debug_assert!(key >= base, "a radix key is never below the base");
    (u128::BITS - 1 - ((key ^ base) | 1).leading_zeros()) as usize
}

/// The monotone radix heap of the entries whose key is at least `base`.
///
/// A bucket's entries live in chunks of [`CHUNK`] entries: full ones, then a
/// partly full tail. Chunks come from and return to a pool (`spare`), so
/// buckets that fill and drain all the time reuse a few equal-sized
/// allocations instead of growing and freeing vectors of every size, and a
/// redistribution returns each chunk it has read before its receivers need
/// more.
///
/// Capacity bound: the chunks in use are at most `len / CHUNK + 128` (one
/// partly full tail per non-empty bucket) and the pool keeps at most as
/// many spare chunks as are in use (or [`SPARE_MIN`]), so the entries'
/// capacity is at most `2 × len + (2 × 128 + SPARE_MIN) × CHUNK`. A new
/// chunk is allocated only when the pool is empty, so the chunks alive never
/// outnumber the most ever in use at once (about `peak / CHUNK`). A
/// bucket's list of full chunks holds at most `max(KEEP, 2 × its full
/// chunks)` headers.
struct RadixHeap {
    buckets: Box<[Bucket; BUCKETS]>,
    /// Bit `b` is set when bucket `b` is not empty.
    occupied: u128,
    /// The key popped last (0 while the heap has been empty since).
    base: u128,
    len: usize,
    /// Empty chunks of capacity `CHUNK`, for reuse.
    spare: Vec<Vec<Entry>>,
    /// Chunks held by buckets.
    in_use: usize,
}

/// One bucket: its smallest key and its entries, `full ++ tail`.
#[derive(Default)]
struct Bucket {
    /// The smallest key; `u128::MAX` when empty.
    min: u128,
    /// Chunks of exactly `CHUNK` entries.
    full: Vec<Vec<Entry>>,
    /// The last chunk: not empty, capacity `CHUNK`; or, when the bucket is
    /// empty, no allocation at all.
    tail: Vec<Entry>,
}

impl RadixHeap {
    fn new() -> Self {
        Self {
            buckets: Box::new(core::array::from_fn(|_| Bucket {
                min: u128::MAX,
                ..Bucket::default()
            })),
            occupied: 0,
            base: 0,
            len: 0,
            spare: Vec::new(),
            in_use: 0,
        }
    }

    /// Whether `key` may enter (is not below the last popped key).
    fn admits(&self, key: u128) -> bool {
        key >= self.base
    }

    fn push(&mut self, e: Entry) {
        let key = e.key();
        self.put(bucket_of(key, self.base), key, e);
        self.len += 1;
    }

    fn put(&mut self, b: usize, key: u128, e: Entry) {
        let bucket = &mut self.buckets[b];
        if bucket.tail.len() == bucket.tail.capacity() {
            // Full, or no tail yet.
            let fresh = self
                .spare
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(CHUNK));
            let full = mem::replace(&mut bucket.tail, fresh);
            if full.capacity() > 0 {
                bucket.full.push(full);
            }
            self.in_use += 1;
        }
        bucket.tail.push(e);
        bucket.min = bucket.min.min(key);
        self.occupied |= 1 << b;
    }

    /// Returns an emptied chunk to the pool, or to the allocator when the
    /// pool already holds as many as are in use.
    fn release(&mut self, mut chunk: Vec<Entry>) {
        debug_assert_eq!(chunk.capacity(), CHUNK);
        chunk.clear();
        self.in_use -= 1;
        if self.spare.len() < self.in_use.max(SPARE_MIN) {
            self.spare.push(chunk);
        }
    }

    /// The smallest key, if any.
    fn min_key(&self) -> Option<u128> {
        (self.occupied != 0).then(|| self.buckets[self.occupied.trailing_zeros() as usize].min)
    }

    fn pop(&mut self) -> Option<Entry> {
        let min = self.min_key()?;
        let i = self.occupied.trailing_zeros() as usize;
        self.buckets[i].min = u128::MAX;
        self.occupied &= !(1 << i);
        self.base = min;
        self.len -= 1;
        let bucket = &self.buckets[i];
        let e = if i == 0 || (bucket.full.is_empty() && bucket.tail.len() == 1) {
            self.take_from(i, min)
        } else {
            self.redistribute(i, min)
        };
        debug_assert!(e.key() == min, "popped the bucket's minimum");
        if self.len == 0 {
            // Empty: any later key may enter.
            self.base = 0;
        }
        Some(e)
    }

    /// Removes `min` from bucket `i` and keeps the rest there: a single
    /// entry, or bucket 0 (at most two keys), whose keys agree with any new
    /// base above bit 0.
    fn take_from(&mut self, i: usize, min: u128) -> Entry {
        let bucket = &mut self.buckets[i];
        debug_assert!(bucket.full.is_empty() && bucket.tail.len() <= 2);
        let at = bucket
            .tail
            .iter()
            .position(|e| e.key() == min)
            .expect("a bucket holds its minimum");
        let e = bucket.tail.swap_remove(at);
        if let Some(rest) = bucket.tail.first() {
            bucket.min = rest.key();
            self.occupied |= 1 << i;
        } else {
            let tail = mem::take(&mut bucket.tail);
            self.release(tail);
        }
        e
    }

    /// Empties bucket `i` (≥ 1, the lowest non-empty one, of at least two
    /// entries) whose minimum `min` is the new base: returns `min`'s entry
    /// and moves every other entry to the bucket of its key relative to
    /// `min`, which is below `i`.
    fn redistribute(&mut self, i: usize, min: u128) -> Entry {
        let bucket = &mut self.buckets[i];
        let mut full = mem::take(&mut bucket.full);
        let tail = mem::take(&mut bucket.tail);
        let mut popped = None;
        for chunk in full.drain(..).chain([tail]) {
            for &e in &chunk {
                let key = e.key();
                if key == min {
                    popped = Some(e);
                } else {
                    let b = bucket_of(key, min);
                    debug_assert!(b < i, "a redistributed entry moves down");
                    self.put(b, key, e);
                }
            }
            self.release(chunk);
        }
        if full.capacity() <= KEEP {
            self.buckets[i].full = full;
        }
        popped.expect("a bucket holds its minimum")
    }

    /// Entries of capacity held by the buckets and the pool.
    #[cfg(test)]
    fn retained(&self) -> usize {
        let chunks: usize = self
            .buckets
            .iter()
            .map(|b| b.tail.capacity() + b.full.iter().map(Vec::capacity).sum::<usize>())
            .sum();
        chunks + self.spare.iter().map(Vec::capacity).sum::<usize>()
    }

    /// Panics unless every entry sits in its bucket, the minima, mask and
    /// counts are exact, and the chunks keep their shape and bound.
    #[cfg(test)]
    fn check(&self) {
        let (mut len, mut in_use) = (0, 0);
        for (b, bucket) in self.buckets.iter().enumerate() {
            let entries = || bucket.full.iter().chain([&bucket.tail]).flatten();
            for e in entries() {
                assert_eq!(bucket_of(e.key(), self.base), b);
            }
            let min = entries().map(Entry::key).min().unwrap_or(u128::MAX);
            assert_eq!(bucket.min, min, "minimum of bucket {b}");
            let empty = bucket.tail.is_empty();
            assert_eq!((self.occupied >> b) & 1 == 0, empty);
            assert_eq!(bucket.tail.capacity(), if empty { 0 } else { CHUNK });
            assert!(!empty || bucket.full.is_empty());
            for chunk in &bucket.full {
                assert_eq!((chunk.len(), chunk.capacity()), (CHUNK, CHUNK));
            }
            assert!(bucket.full.capacity() <= KEEP.max(2 * bucket.full.len()));
            len += entries().count();
            in_use += bucket.full.len() + usize::from(!empty);
        }
        assert_eq!(len, self.len);
        assert_eq!(in_use, self.in_use);
        assert!(self.spare.len() <= self.in_use.max(SPARE_MIN));
        assert!(
            self.spare
                .iter()
                .all(|c| c.is_empty() && c.capacity() == CHUNK)
        );
        assert!(self.in_use <= self.len.div_ceil(CHUNK) + BUCKETS);
    }
}

/// A bounded priority queue of events keyed by `(time, sequence)`.
///
/// Memory: the events live in a slab of slots (a popped event's slot is
/// reused), which never shrinks below its peak. The ordering entries (24
/// bytes each) take at most `2 × len() + 34,816` entries of capacity
/// (816 KiB of slack; see the module docs), in practice about `len()` plus a
/// partly full chunk per busy bucket, plus, for pushes before the last
/// popped time (never in the engine), a side heap of at most
/// `max(16, 4 × its length)`. The retained capacity follows the pending
/// count, not the peak, and no entry sits in a buffer larger than a chunk
/// (3 KiB), so a growing queue never reallocates or frees a large one.
pub struct EventQueue<T> {
    radix: RadixHeap,
    /// Entries pushed below the radix heap's base.
    early: BinaryHeap<Entry>,
    /// The events, by slot; a popped event's slot is reused.
    slab: Vec<Option<T>>,
    free: Vec<u32>,
    next_seq: u64,
    capacity: usize,
}

impl<T> EventQueue<T> {
    /// An empty queue holding at most `capacity` events (at most
    /// `u32::MAX`).
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "event queue capacity must be positive");
        Self {
            radix: RadixHeap::new(),
            early: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
            capacity: capacity.min(u32::MAX as usize),
        }
    }

    /// The sequence number the next scheduled event will get (higher than
    /// every one given so far).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Schedules `item` at `at`; returns its sequence number.
    pub fn push(&mut self, at: Timestamp, item: T) -> Result<EventSeq, QueueFull> {
        if self.len() >= self.capacity {
            return Err(QueueFull {
                capacity: self.capacity,
            });
        }
        let seq = EventSeq(self.next_seq);
        self.next_seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                debug_assert!(self.slab[slot as usize].is_none());
                self.slab[slot as usize] = Some(item);
                slot
            }
            None => {
                // Fewer slots than `capacity` ≤ u32::MAX are ever in use.
                self.slab.push(Some(item));
                (self.slab.len() - 1) as u32
            }
        };
        let e = Entry { at, seq, slot };
        if self.radix.admits(e.key()) {
            self.radix.push(e);
        } else {
            self.early.push(e);
        }
        Ok(seq)
    }

    /// Removes and returns the earliest event (lowest sequence among ties).
    pub fn pop(&mut self) -> Option<(Timestamp, EventSeq, T)> {
        let early_first = match (self.early.peek(), self.radix.min_key()) {
            (Some(early), Some(radix)) => early.key() < radix,
            (early, _) => early.is_some(),
        };
        let e = if early_first {
            let e = self.early.pop().expect("peeked");
            if self.early.capacity() > KEEP && 4 * self.early.len() < self.early.capacity() {
                self.early.shrink_to(2 * self.early.len());
            }
            e
        } else {
            self.radix.pop()?
        };
        let item = self.slab[e.slot as usize]
            .take()
            .expect("a queued slot holds its event");
        self.free.push(e.slot);
        Some((e.at, e.seq, item))
    }

    /// The time of the earliest event, if any.
    pub fn peek_time(&self) -> Option<Timestamp> {
        let early = self.early.peek().map(|e| e.at);
        let radix = self
            .radix
            .min_key()
            .map(|key| Timestamp::from_micros((key >> 64) as u64));
        match (early, radix) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The `(time, sequence)` of the earliest event, if any: the order in
    /// which [`Self::pop`] returns events.
    pub fn peek_key(&self) -> Option<(Timestamp, EventSeq)> {
        let key = match (self.early.peek().map(Entry::key), self.radix.min_key()) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some((
            Timestamp::from_micros((key >> 64) as u64),
            EventSeq(key as u64),
        ))
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.radix.len + self.early.len()
    }

    /// Whether no event is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The maximum number of pending events.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ties_pop_in_push_order() {
        let mut q = EventQueue::new(16);
        let t = Timestamp::from_millis(5);
        q.push(t, "b").unwrap();
        q.push(Timestamp::from_millis(1), "first").unwrap();
        q.push(t, "c").unwrap();
        q.push(t, "d").unwrap();
        let order: Vec<_> = core::iter::from_fn(|| q.pop().map(|(_, _, x)| x)).collect();
        assert_eq!(order, ["first", "b", "c", "d"]);
    }

    #[test]
    fn bounded() {
        let mut q = EventQueue::new(2);
        q.push(Timestamp::ZERO, 1).unwrap();
        q.push(Timestamp::ZERO, 2).unwrap();
        assert_eq!(q.push(Timestamp::ZERO, 3), Err(QueueFull { capacity: 2 }));
        q.pop();
        assert!(q.push(Timestamp::ZERO, 3).is_ok());
    }

    #[test]
    fn a_push_before_the_last_pop_comes_out_first() {
        let mut q = EventQueue::new(16);
        q.push(Timestamp::from_micros(10), "ten").unwrap();
        q.push(Timestamp::from_micros(30), "thirty").unwrap();
        assert_eq!(q.pop().map(|(_, _, x)| x), Some("ten"));
        q.push(Timestamp::from_micros(5), "five").unwrap();
        q.push(Timestamp::from_micros(10), "ten again").unwrap();
        assert_eq!(q.len(), 3);
        assert_eq!(q.peek_time(), Some(Timestamp::from_micros(5)));
        let order: Vec<_> = core::iter::from_fn(|| q.pop().map(|(_, _, x)| x)).collect();
        assert_eq!(order, ["five", "ten again", "thirty"]);
        assert!(q.is_empty());
        assert_eq!(q.peek_time(), None);
    }

    /// `splitmix64`: a fixed stream of test numbers.
    fn mix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A time to push relative to the last popped one, from a kind and a
    /// raw draw: equal, just after, later, earlier, anywhere, or an end.
    fn push_time(kind: u8, raw: u64, last: u64) -> Timestamp {
        Timestamp::from_micros(match kind % 6 {
            0 => last,
            1 => last.saturating_add(raw % 4),
            2 => last.saturating_add(raw % 1_000_000),
            3 => last.saturating_sub(raw % 1_000),
            4 => raw,
            _ => [0, u64::MAX][(raw % 2) as usize],
        })
    }

    /// The queue beside a `BTreeMap` that holds the same events.
    struct Differential {
        q: EventQueue<u64>,
        reference: BTreeMap<(Timestamp, u64), u64>,
        next_seq: u64,
        last_popped: u64,
        ops: u64,
    }

    impl Differential {
        fn new(capacity: usize) -> Self {
            Self {
                q: EventQueue::new(capacity),
                reference: BTreeMap::new(),
                next_seq: 0,
                last_popped: 0,
                ops: 0,
            }
        }

        fn push(&mut self, kind: u8, raw: u64) {
            let at = push_time(kind, raw, self.last_popped);
            let item = raw ^ 0x5555;
            match self.q.push(at, item) {
                Ok(seq) => {
                    assert!(self.reference.len() < self.q.capacity());
                    assert_eq!(seq.get(), self.next_seq);
                    self.reference.insert((at, self.next_seq), item);
                    self.next_seq += 1;
                }
                Err(full) => {
                    assert_eq!(self.reference.len(), self.q.capacity());
                    assert_eq!(full.capacity, self.q.capacity());
                }
            }
            self.check();
        }

        fn pop(&mut self) {
            let got = self.q.pop();
            let want = self.reference.pop_first();
            assert_eq!(
                got.map(|(at, seq, item)| ((at, seq.get()), item)),
                want,
                "pop"
            );
            if let Some(((at, _), _)) = want {
                self.last_popped = at.as_micros();
            }
            self.check();
        }

        fn check(&mut self) {
            self.ops += 1;
            assert_eq!(self.q.len(), self.reference.len());
            assert_eq!(self.q.is_empty(), self.reference.is_empty());
            let first = self.reference.keys().next().copied();
            assert_eq!(self.q.peek_time(), first.map(|(at, _)| at));
            let key = self.q.peek_key().map(|(at, seq)| (at, seq.get()));
            assert_eq!(key, first);
            // The full walk every op while small, now and then when large.
            if self.reference.len() < 1_000 || self.ops % 256 == 0 {
                self.q.radix.check();
            }
            let early = self.q.early.capacity();
            assert!(
                early <= KEEP.max(4 * self.q.early.len()),
                "side heap {early}"
            );
            assert!(self.q.radix.retained() <= radix_bound(self.q.radix.len));
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(u8, u64),
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (any::<u8>(), any::<u64>()).prop_map(|(k, r)| Op::Push(k, r)),
            // Mostly monotone, as in the engine.
            3 => (0u8..3, any::<u64>()).prop_map(|(k, r)| Op::Push(k, r)),
            4 => Just(Op::Pop),
        ]
    }

    proptest! {
        #[test]
        fn pops_sorted_by_time_then_seq(times in proptest::collection::vec(0u64..20, 0..200)) {
            let mut q = EventQueue::new(1024);
            for (i, t) in times.iter().enumerate() {
                q.push(Timestamp::from_micros(*t), i).unwrap();
            }
            let mut last: Option<(Timestamp, EventSeq)> = None;
            while let Some((at, seq, i)) = q.pop() {
                prop_assert_eq!(seq.get() as usize, i);
                if let Some(prev) = last {
                    prop_assert!(prev < (at, seq));
                }
                last = Some((at, seq));
            }
        }

        /// Every pop, `len`, `peek_time` and bound matches a `BTreeMap`
        /// under any interleaving, with pushes before the last popped time.
        #[test]
        fn matches_a_reference_map(
            capacity in prop_oneof![1usize..8, Just(1 << 20)],
            ops in proptest::collection::vec(op(), 0..600),
        ) {
            let mut d = Differential::new(capacity);
            for op in ops {
                match op {
                    Op::Push(kind, raw) => d.push(kind, raw),
                    Op::Pop => d.pop(),
                }
            }
            while !d.reference.is_empty() {
                d.pop();
            }
            d.pop();
        }
    }

    /// Large buckets (the counting path of a redistribution) against the
    /// reference, with the engine's pattern (bursts of future events) and
    /// out-of-order pushes.
    #[test]
    fn matches_a_reference_map_at_scale() {
        let mut rng = 7;
        let mut d = Differential::new(1 << 20);
        for round in 0..40u64 {
            let pushes = mix(&mut rng) % 3_000;
            for _ in 0..pushes {
                let r = mix(&mut rng);
                let kind = if round % 4 == 3 {
                    r as u8
                } else {
                    (r % 3) as u8
                };
                d.push(kind, mix(&mut rng));
            }
            let pops = mix(&mut rng) % 3_000;
            for _ in 0..pops {
                d.pop();
            }
        }
        while !d.reference.is_empty() {
            d.pop();
        }
    }

    /// The documented bound on the radix heap's retained entries.
    fn radix_bound(len: usize) -> usize {
        2 * len + (2 * BUCKETS + SPARE_MIN) * CHUNK
    }

    /// The ordering entries' capacity stays near the pending count while it
    /// grows, and follows it back down after a peak.
    #[test]
    fn retained_capacity_follows_the_pending_count() {
        let mut q = EventQueue::new(1 << 20);
        let mut rng = 11;
        for _ in 0..200_000 {
            let at = Timestamp::from_micros(mix(&mut rng) % 10_000_000);
            q.push(at, ()).unwrap();
        }
        // Nothing popped yet: only whole chunks and one tail per bucket.
        let peak = q.radix.retained();
        assert!(peak <= 200_000 + BUCKETS * CHUNK, "{peak}");
        // Drain nine tenths, pushing a little ahead of the clock as the
        // engine does.
        for i in 0..180_000u64 {
            let (at, _, ()) = q.pop().unwrap();
            if i % 2 == 0 {
                let later = idlegrid_primitives::Duration::from_micros(i % 50);
                q.push(at.saturating_add(later), ()).unwrap();
            }
        }
        q.radix.check();
        let retained = q.radix.retained();
        assert!(retained <= radix_bound(q.radix.len), "{retained}");
        // Out-of-order pushes fill the side heap; then everything drains.
        for t in 0..5_000 {
            q.push(Timestamp::from_micros(t), ()).unwrap();
        }
        assert_eq!(q.early.len(), 5_000);
        while q.pop().is_some() {}
        q.radix.check();
        let retained = q.radix.retained();
        assert!(retained <= SPARE_MIN * CHUNK, "{retained}");
        assert!(q.early.capacity() <= KEEP, "{}", q.early.capacity());
    }
}
