//! Newtypes for the ledger's identifiers and counters.

use core::fmt;

use serde::{Deserialize, Serialize};

macro_rules! u64_newtype {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(u64);

        impl $name {
            /// Wraps a raw number.
            pub const fn new(v: u64) -> Self {
                Self(v)
            }
            /// The raw number.
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

u64_newtype!(
    /// A per-account transaction counter: the `n`-th transaction of an
    /// account carries nonce `n` (starting at 0). Each nonce is usable once.
    Nonce,
    "nonce#"
);
u64_newtype!(
    /// An escrow, numbered in creation order by the ledger.
    EscrowId,
    "escrow#"
);
u64_newtype!(
    /// A collateral lock on bonded stake, numbered in creation order.
    LockId,
    "lock#"
);

/// Escrows and locks are numbered in creation order: the ledger keeps
/// them in [`SeqMap`](idlegrid_primitives::SeqMap)s, shared chunk by chunk
/// between copies of the state.
impl idlegrid_primitives::SeqKey for EscrowId {
    fn seq(&self) -> u64 {
        self.0
    }
}

impl idlegrid_primitives::SeqKey for LockId {
    fn seq(&self) -> u64 {
        self.0
    }
}

impl Nonce {
    /// The nonce after this one, or `None` at `u64::MAX` (the account is
    /// then exhausted: it can never transact again).
    pub const fn checked_next(self) -> Option<Self> {
        match self.0.checked_add(1) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }
}

/// An application (extra transaction kind) registered by the composition
/// root, e.g. the market or entrap. Ids are assigned by the integrator and
/// must be the same on every node.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AppId(u32);

impl AppId {
    /// Wraps a raw number.
    pub const fn new(v: u32) -> Self {
        Self(v)
    }
    /// The raw number.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "app#{}", self.0)
    }
}

impl fmt::Debug for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "app#{}", self.0)
    }
}

/// Identifies one ledger network: transactions signed for another chain
/// never apply here.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChainId(u32);

impl ChainId {
    /// Wraps a raw number.
    pub const fn new(v: u32) -> Self {
        Self(v)
    }
    /// The raw number.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "chain#{}", self.0)
    }
}

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "chain#{}", self.0)
    }
}
