//! Per-link state (a small seeded RNG, FIFO ordering and the in-flight
//! bound), kept only for links that have carried a message.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use idlegrid_primitives::{Seed, Timestamp};
use rand_core::{RngCore, impls};

/// A SplitMix64 generator for per-link network randomness (loss, jitter).
///
/// Not cryptographic, and does not need to be: it only decides network
/// weather. It is 8 bytes, so a link's state stays small, and each link is
/// seeded from its own child of the root [`Seed`] so one link's draws never
/// shift another's.
#[derive(Debug, Clone)]
pub struct LinkRng(u64);

impl LinkRng {
    /// Seeds from the first 8 bytes of `seed`.
    pub fn from_seed(seed: &Seed) -> Self {
        let b = seed.as_bytes();
        Self(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }

    /// A uniform float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

impl RngCore for LinkRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        impls::fill_bytes_via_next(self, dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// The state of one directed link `from → to` that has carried a message.
#[derive(Debug, Clone)]
pub(crate) struct LinkState {
    /// Seeded when the link is first used, from the link's own child of
    /// the root seed (so creation order never shifts a draw).
    pub rng: LinkRng,
    /// Arrival time of the last message scheduled on this link (FIFO).
    pub last_arrival: Timestamp,
    /// Messages scheduled and not yet arrived.
    pub in_flight: u32,
}

/// A link's slot in a [`LinkTable`]; stable for the table's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkSlot(u32);

/// The state of every directed link that has carried a message, and only
/// of those: a run of `n` nodes where each talks to a few peers keeps
/// `O(links used)` state, not `n²`.
///
/// Links are numbered `from · n + to` (the number their RNG seed is
/// derived from, as with the dense table this replaces) and found through
/// a map from that number to a slot in one vector. The map is only ever
/// looked up by key, never iterated, so its order cannot reach a run.
///
/// *Hubs*: the first `hubs` nodes (a marketplace's validators, which every
/// light node talks to) have their links found by index instead: a row of
/// `n` slots per hub for its outgoing links and a row of `hubs` slots per
/// other node for its links to the hubs, 4 bytes each, `2 · hubs · n` in
/// all, allocated once. A link to or from a hub is one array read, where
/// the map costs a hash and two cache misses (and about 20 bytes a link).
/// Which way a link is found changes neither its number nor its seed.
#[derive(Debug)]
pub(crate) struct LinkTable {
    n: u64,
    seed: Seed,
    slots: Vec<LinkState>,
    hubs: usize,
    /// `from · n + to` for `from < hubs`; [`NO_SLOT`] until first used.
    from_hub: Vec<u32>,
    /// `(from − hubs) · hubs + to` for `from >= hubs`, `to < hubs`.
    to_hub: Vec<u32>,
    index: HashMap<u64, LinkSlot, BuildHasherDefault<PairHasher>>,
}

/// A hub row's entry for a link that has carried nothing yet.
const NO_SLOT: u32 = u32::MAX;

/// A table of no nodes (allocates nothing): what the engine leaves in
/// its place while a parallel window's groups read the table.
impl Default for LinkTable {
    fn default() -> Self {
        Self::new(0, 0, Seed::from_bytes([0; 32]))
    }
}

impl LinkTable {
    /// An empty table for `n` nodes whose links seed from `seed`, the first
    /// `hubs` of them (at most `n`) indexed densely (see the type docs).
    pub fn new(n: usize, hubs: usize, seed: Seed) -> Self {
        let hubs = hubs.min(n);
        Self {
            n: n as u64,
            seed,
            slots: Vec::new(),
            hubs,
            from_hub: vec![NO_SLOT; hubs * n],
            to_hub: vec![NO_SLOT; (n - hubs) * hubs],
            index: HashMap::default(),
        }
    }

    /// The slot of `from → to`, created (and its RNG seeded) on first use.
    pub fn slot(&mut self, from: usize, to: usize) -> LinkSlot {
        let number = from as u64 * self.n + to as u64;
        let dense = if from < self.hubs {
            self.from_hub.get_mut(number as usize)
        } else if to < self.hubs {
            self.to_hub.get_mut((from - self.hubs) * self.hubs + to)
        } else {
            None
        };
        let (slots, seed) = (&mut self.slots, &self.seed);
        let mut fresh = || {
            let slot = LinkSlot(u32::try_from(slots.len()).expect("at most 2^32 links"));
            assert!(slot.0 != NO_SLOT, "fewer than 2^32 - 1 links");
            slots.push(fresh_link(seed, number));
            slot
        };
        match dense {
            Some(entry) => {
                if *entry == NO_SLOT {
                    *entry = fresh().0;
                }
                LinkSlot(*entry)
            }
            None => *self.index.entry(number).or_insert_with(fresh),
        }
    }

    /// The state behind a slot this table handed out.
    pub fn get(&mut self, slot: LinkSlot) -> &mut LinkState {
        &mut self.slots[slot.0 as usize]
    }

    /// A copy of the state of `from → to` as [`Self::slot`] would find it
    /// (a fresh link's if it has carried nothing), without creating it: a
    /// parallel window's group works on its own copies (see
    /// `engine/parallel.rs`).
    pub fn state(&self, from: usize, to: usize) -> LinkState {
        let number = from as u64 * self.n + to as u64;
        let dense = if from < self.hubs {
            self.from_hub.get(number as usize).copied()
        } else if to < self.hubs {
            self.to_hub
                .get((from - self.hubs) * self.hubs + to)
                .copied()
        } else {
            self.index.get(&number).map(|s| s.0)
        };
        match dense.filter(|s| *s != NO_SLOT) {
            Some(s) => self.slots[s as usize].clone(),
            None => fresh_link(&self.seed, number),
        }
    }
}

/// The state of link number `number` before its first message.
fn fresh_link(seed: &Seed, number: u64) -> LinkState {
    LinkState {
        rng: LinkRng::from_seed(&seed.derive_indexed("link", number)),
        last_arrival: Timestamp::ZERO,
        in_flight: 0,
    }
}

/// A multiplicative hasher for link numbers: one multiply by an odd
/// constant (Fibonacci hashing) and a fold of the high half into the low
/// one, which the map's bucket choice reads. Keys are the simulator's own
/// node pairs, not attacker-chosen, so no keyed hashing is needed.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PairHasher(u64);

impl Hasher for PairHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, x: u64) {
        let h = (self.0 ^ x).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hub rows and the map hand out the same slots, in first-use order,
    /// and seed each link from its own number whichever way it is found.
    #[test]
    fn hubs_change_how_links_are_found_not_what_they_are() {
        let pairs = [
            (0, 5),
            (5, 0),
            (1, 2),
            (6, 7),
            (0, 5),
            (7, 1),
            (2, 2),
            (6, 7),
            (9, 0),
        ];
        let mut plain = LinkTable::new(10, 0, Seed::from_u64(4));
        for hubs in [1, 3, 10, 12] {
            let mut dense = LinkTable::new(10, hubs, Seed::from_u64(4));
            for &(from, to) in &pairs {
                let (a, b) = (plain.slot(from, to), dense.slot(from, to));
                assert_eq!(a, b, "{from} -> {to} with {hubs} hubs");
                let (ra, rb) = (plain.get(a).rng.next_u64(), dense.get(b).rng.next_u64());
                assert_eq!(ra, rb);
            }
            assert_eq!(dense.slots.len(), 7);
            assert!(dense.index.len() <= 7);
            plain = LinkTable::new(10, 0, Seed::from_u64(4));
        }
        let hubs = LinkTable::new(10, 3, Seed::from_u64(4));
        assert_eq!((hubs.from_hub.len(), hubs.to_hub.len()), (30, 21));
    }

    /// `state` reads what `slot` and `get` would give, without creating
    /// the link: a used link's state as it is, an unused one's fresh.
    #[test]
    fn state_is_a_copy_of_what_slot_finds() {
        for hubs in [0, 3] {
            let used = |t: &mut LinkTable| {
                for (from, to) in [(0, 5), (5, 0), (6, 7)] {
                    let s = t.slot(from, to);
                    let link = t.get(s);
                    link.rng.next_u64();
                    link.in_flight = 3;
                    link.last_arrival = Timestamp::from_millis(9);
                }
            };
            let (mut t, mut reference) = (
                LinkTable::new(10, hubs, Seed::from_u64(5)),
                LinkTable::new(10, hubs, Seed::from_u64(5)),
            );
            used(&mut t);
            used(&mut reference);
            for (from, to) in [(0, 5), (5, 0), (6, 7), (1, 2), (7, 6), (9, 0)] {
                let mut copy = t.state(from, to);
                assert_eq!(t.slots.len(), 3, "nothing created");
                let s = reference.slot(from, to);
                let found = reference.get(s);
                assert_eq!(
                    (copy.in_flight, copy.last_arrival),
                    (found.in_flight, found.last_arrival)
                );
                assert_eq!(copy.rng.next_u64(), found.rng.next_u64());
            }
        }
    }

    #[test]
    fn unit_is_in_range_and_seeded() {
        let s = Seed::from_u64(3);
        let mut a = LinkRng::from_seed(&s);
        let mut b = LinkRng::from_seed(&s);
        for _ in 0..1000 {
            let x = a.unit();
            assert!((0.0..1.0).contains(&x));
            assert_eq!(x, b.unit());
        }
    }
}
