//! Newtypes, limits and the stages of a round.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::error::EntrapError;

/// Most subtasks (real + traps) one provider gets in one round.
pub const MAX_SUBTASKS: usize = 1 << 16;
/// Most traps in one round (traps in flight per provider).
pub const MAX_TRAPS: usize = 4_096;
/// Most accusations in one round: one proven trap is enough to slash, so a
/// client never needs more.
pub const MAX_ACCUSATIONS: usize = 64;
/// Largest referee committee.
pub const MAX_REFEREES: usize = 15;
/// Most referee candidates considered by [`crate::select_referees`].
pub const MAX_REFEREE_CANDIDATES: usize = 4_096;

/// A job, as named by the market match that created it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(u64);

impl JobId {
    /// Wraps a raw id.
    pub const fn new(v: u64) -> Self {
        Self(v)
    }
    /// The raw id.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job{}", self.0)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The position of a subtask (real or trap) in the shuffled list one
/// provider receives.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubtaskIndex(u32);

impl SubtaskIndex {
    /// Wraps a raw index.
    pub const fn new(v: u32) -> Self {
        Self(v)
    }
    /// The raw index.
    pub const fn get(self) -> u32 {
        self.0
    }
    /// The index as a `usize`, for slicing.
    pub const fn as_usize(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for SubtaskIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl fmt::Display for SubtaskIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A number of trap subtasks.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct TrapCount(u32);

impl TrapCount {
    /// No traps.
    pub const ZERO: TrapCount = TrapCount(0);
    /// Wraps a raw count.
    pub const fn new(v: u32) -> Self {
        Self(v)
    }
    /// The raw count.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for TrapCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A share in basis points (1/10 000), at most 10 000.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
#[serde(try_from = "u16", into = "u16")]
pub struct Bps(u16);

impl TryFrom<u16> for Bps {
    type Error = EntrapError;
    fn try_from(v: u16) -> Result<Self, EntrapError> {
        Bps::new(v)
    }
}

impl From<Bps> for u16 {
    fn from(b: Bps) -> u16 {
        b.0
    }
}

impl Bps {
    /// 0 %.
    pub const ZERO: Bps = Bps(0);
    /// 100 %.
    pub const FULL: Bps = Bps(10_000);

    /// A share, or an error above 100 %.
    pub fn new(bps: u16) -> Result<Self, EntrapError> {
        if bps > 10_000 {
            return Err(EntrapError::InvalidParameter {
                name: "bps",
                reason: "a share is at most 10000 basis points",
            });
        }
        Ok(Self(bps))
    }
    /// The raw basis points.
    pub const fn get(self) -> u16 {
        self.0
    }
}

/// The stages of a [`crate::VerificationRound`], in protocol order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum Stage {
    /// Plan committed, client escrow and bond locked; waiting for the
    /// provider's stake bond.
    AwaitingStake,
    /// Stake bonded; waiting for the provider's output commitment.
    AwaitingOutputCommitment,
    /// Outputs committed; waiting for the provider's output reveal.
    AwaitingOutputReveal,
    /// Outputs revealed; waiting for the client's trap reveal.
    AwaitingTrapReveal,
    /// Traps revealed; waiting for the client's accusations (possibly none).
    AwaitingAccusations,
    /// Accused; the provider's accept-or-dispute window.
    AwaitingResponse,
    /// Disputed; waiting for the referee committee's votes.
    AwaitingVotes,
    /// Settled; effects emitted. Terminal.
    Settled,
}
