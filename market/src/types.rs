//! Small vocabulary types: order ids, slot counts, regions, executor kinds,
//! resource vectors, reputation scores.

use core::fmt;

use idlegrid_primitives::AccountId;
use serde::{Deserialize, Serialize};

/// An order identifier, unique across both sides of a batch or a book.
///
/// The composition root assigns it (for example from the ledger position of
/// the order's transaction); the market only checks uniqueness.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(u64);

impl OrderId {
    /// Wraps a raw id.
    pub const fn new(v: u64) -> Self {
        Self(v)
    }
    /// The raw id.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "o{}", self.0)
    }
}

impl fmt::Debug for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "o{}", self.0)
    }
}

/// A number of parallel execution slots (one slot = one unit of the ask's
/// per-slot resource vector).
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Slots(u32);

impl Slots {
    /// One slot.
    pub const ONE: Slots = Slots(1);
    /// Wraps a raw count.
    pub const fn new(v: u32) -> Self {
        Self(v)
    }
    /// The raw count.
    pub const fn get(self) -> u32 {
        self.0
    }
}

/// The number of distinct regions a [`RegionSet`] can hold.
pub const MAX_REGIONS: u8 = 64;

/// A geographic region, `0..MAX_REGIONS`.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Region(u8);

impl Region {
    /// Wraps a region number; orders carrying a number `>= MAX_REGIONS`
    /// are rejected by validation.
    pub const fn new(v: u8) -> Self {
        Self(v)
    }
    /// The raw number.
    pub const fn get(self) -> u8 {
        self.0
    }
    /// True if the number is below [`MAX_REGIONS`].
    pub const fn is_valid(self) -> bool {
        self.0 < MAX_REGIONS
    }
}

/// A set of regions (bitmask over [`MAX_REGIONS`]).
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct RegionSet(u64);

impl RegionSet {
    /// No region.
    pub const EMPTY: RegionSet = RegionSet(0);
    /// Every region.
    pub const ALL: RegionSet = RegionSet(u64::MAX);

    /// The set holding one region (empty if the region is invalid).
    pub const fn single(r: Region) -> Self {
        Self::EMPTY.with(r)
    }
    /// The set from a raw bitmask (bit `i` = region `i`).
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }
    /// The raw bitmask.
    pub const fn bits(self) -> u64 {
        self.0
    }
    /// This set plus `r` (unchanged if `r` is invalid).
    pub const fn with(self, r: Region) -> Self {
        if r.is_valid() {
            Self(self.0 | (1u64 << r.0))
        } else {
            self
        }
    }
    /// True if `r` is in the set.
    pub const fn contains(self, r: Region) -> bool {
        r.is_valid() && (self.0 >> r.0) & 1 == 1
    }
    /// True if the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The regions in the set, ascending.
    pub fn iter(self) -> impl Iterator<Item = Region> {
        (0..MAX_REGIONS)
            .filter(move |i| (self.0 >> i) & 1 == 1)
            .map(Region)
    }
}

/// How a provider runs work (mirrors the executor crate's implementations).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ExecutorKind {
    /// Deterministic WebAssembly (wasmi, fuel-metered).
    Wasm,
    /// Sandboxed native process (e.g. Python scripts).
    Process,
    /// The simulator's cost-model executor.
    Simulated,
}

impl ExecutorKind {
    /// Every kind, in order.
    pub const ALL: [ExecutorKind; 3] = [
        ExecutorKind::Wasm,
        ExecutorKind::Process,
        ExecutorKind::Simulated,
    ];
    /// Dense index of the kind, `0..ALL.len()`.
    pub const fn index(self) -> usize {
        match self {
            ExecutorKind::Wasm => 0,
            ExecutorKind::Process => 1,
            ExecutorKind::Simulated => 2,
        }
    }
}

/// A set of executor kinds a provider supports (bitmask).
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct ExecutorSet(u8);

impl ExecutorSet {
    /// No kind.
    pub const EMPTY: ExecutorSet = ExecutorSet(0);
    /// Every kind.
    pub const ALL: ExecutorSet = ExecutorSet(0b111);

    /// The set holding one kind.
    pub const fn single(k: ExecutorKind) -> Self {
        Self(1 << k.index())
    }
    /// This set plus `k`.
    pub const fn with(self, k: ExecutorKind) -> Self {
        Self(self.0 | (1 << k.index()))
    }
    /// The set from a raw bitmask; bits outside [`ExecutorSet::ALL`] make
    /// an order invalid.
    pub const fn from_bits(bits: u8) -> Self {
        Self(bits)
    }
    /// The raw bitmask.
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// True if `k` is in the set.
    pub const fn contains(self, k: ExecutorKind) -> bool {
        (self.0 >> k.index()) & 1 == 1
    }
    /// True if the set is empty or has unknown bits.
    pub const fn is_valid(self) -> bool {
        self.0 != 0 && self.0 & !Self::ALL.0 == 0
    }
    /// The kinds in the set.
    pub fn iter(self) -> impl Iterator<Item = ExecutorKind> {
        ExecutorKind::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }
}

/// A resource vector for one slot.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
pub struct Resources {
    /// CPU in thousandths of a core.
    pub cpu_millicores: u32,
    /// Memory in MiB.
    pub memory_mib: u32,
    /// Whole GPU units.
    pub gpu_units: u16,
    /// Scratch disk in MiB.
    pub disk_mib: u32,
}

impl Resources {
    /// A vector from its components.
    pub const fn new(cpu_millicores: u32, memory_mib: u32, gpu_units: u16, disk_mib: u32) -> Self {
        Self {
            cpu_millicores,
            memory_mib,
            gpu_units,
            disk_mib,
        }
    }
    /// True if a slot offering `self` can host a slot demanding `demand`
    /// (component-wise `>=`).
    pub const fn fits(&self, demand: &Resources) -> bool {
        self.cpu_millicores >= demand.cpu_millicores
            && self.memory_mib >= demand.memory_mib
            && self.gpu_units >= demand.gpu_units
            && self.disk_mib >= demand.disk_mib
    }
}

/// A provider reputation score in basis points, `0..=10_000`.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Reputation(u16);

impl Reputation {
    /// The lowest score.
    pub const ZERO: Reputation = Reputation(0);
    /// The highest score.
    pub const MAX: Reputation = Reputation(10_000);
    /// Wraps a score; values above 10 000 make an order invalid.
    pub const fn from_bps(bps: u16) -> Self {
        Self(bps)
    }
    /// The score in basis points.
    pub const fn bps(self) -> u16 {
        self.0
    }
}

/// Where the market reads provider reputation (the reputation crate lives
/// elsewhere; the composition root passes a view of it).
///
/// Closures `Fn(&AccountId) -> Reputation` implement it.
pub trait ReputationLookup {
    /// The current reputation of `provider`.
    fn reputation(&self, provider: &AccountId) -> Reputation;
}

impl<F: Fn(&AccountId) -> Reputation> ReputationLookup for F {
    fn reputation(&self, provider: &AccountId) -> Reputation {
        self(provider)
    }
}

/// A lookup that gives every provider the same score.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlatReputation(pub Reputation);

impl ReputationLookup for FlatReputation {
    fn reputation(&self, _provider: &AccountId) -> Reputation {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets() {
        let s = RegionSet::single(Region::new(3)).with(Region::new(63));
        assert!(s.contains(Region::new(3)) && s.contains(Region::new(63)));
        assert!(!s.contains(Region::new(4)) && !s.contains(Region::new(200)));
        assert_eq!(RegionSet::single(Region::new(64)), RegionSet::EMPTY);
        assert_eq!(s.iter().count(), 2);
        let e = ExecutorSet::single(ExecutorKind::Wasm).with(ExecutorKind::Simulated);
        assert!(e.is_valid() && e.contains(ExecutorKind::Simulated));
        assert!(!e.contains(ExecutorKind::Process));
        assert!(!ExecutorSet::from_bits(0b1000).is_valid());
        assert!(!ExecutorSet::EMPTY.is_valid());
    }

    #[test]
    fn fits_is_componentwise() {
        let big = Resources::new(4000, 8192, 1, 10_000);
        assert!(big.fits(&Resources::new(4000, 1, 0, 0)));
        assert!(!big.fits(&Resources::new(1, 1, 2, 0)));
    }
}
