//! The event queue: a bounded min-heap ordered by `(time, sequence)`.
//!
//! Every event gets a sequence number when it is scheduled. Two events at
//! the same virtual time pop in the order they were pushed, so the run does
//! not depend on the heap's internal layout — ties are broken by sequence,
//! never by chance.

use core::cmp::Ordering;
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

/// A heap entry: the ordering key and the slot of its event in the slab.
/// Kept small, so a heap sift moves 24 bytes per level, not the event
/// (a message in flight is hundreds of bytes).
struct Entry {
    at: Timestamp,
    seq: EventSeq,
    slot: u32,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
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
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A bounded priority queue of events keyed by `(time, sequence)`.
pub struct EventQueue<T> {
    heap: BinaryHeap<Entry>,
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
            heap: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
            capacity: capacity.min(u32::MAX as usize),
        }
    }

    /// Schedules `item` at `at`; returns its sequence number.
    pub fn push(&mut self, at: Timestamp, item: T) -> Result<EventSeq, QueueFull> {
        if self.heap.len() >= self.capacity {
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
        self.heap.push(Entry { at, seq, slot });
        Ok(seq)
    }

    /// Removes and returns the earliest event (lowest sequence among ties).
    pub fn pop(&mut self) -> Option<(Timestamp, EventSeq, T)> {
        let e = self.heap.pop()?;
        let item = self.slab[e.slot as usize]
            .take()
            .expect("a queued slot holds its event");
        self.free.push(e.slot);
        Some((e.at, e.seq, item))
    }

    /// The time of the earliest event, if any.
    pub fn peek_time(&self) -> Option<Timestamp> {
        self.heap.peek().map(|e| e.at)
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no event is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The maximum number of pending events.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
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
    }
}
