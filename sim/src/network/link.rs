//! Per-link state: a small seeded RNG, FIFO ordering and the in-flight bound.

use idlegrid_primitives::{Seed, Timestamp};
use rand_core::{RngCore, impls};

/// A SplitMix64 generator for per-link network randomness (loss, jitter).
///
/// Not cryptographic, and does not need to be: it only decides network
/// weather. It is 8 bytes, so a dense `n × n` link table stays small, and
/// each link is seeded from its own child of the root [`Seed`] so one link's
/// draws never shift another's.
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

/// The state of one directed link `from → to`.
#[derive(Debug, Clone)]
pub(crate) struct LinkState {
    /// Lazily seeded on first use.
    pub rng: Option<LinkRng>,
    /// Arrival time of the last message scheduled on this link (FIFO).
    pub last_arrival: Timestamp,
    /// Messages scheduled and not yet arrived.
    pub in_flight: u32,
    /// Cut by a partition.
    pub blocked: bool,
}

impl LinkState {
    pub const fn new() -> Self {
        Self {
            rng: None,
            last_arrival: Timestamp::ZERO,
            in_flight: 0,
            blocked: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
