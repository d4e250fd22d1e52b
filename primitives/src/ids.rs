//! Identifiers and counters: node and account ids, rounds, epochs.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::bytes32::bytes32_newtype;
use crate::crypto::PublicKey;

bytes32_newtype!(
    /// A network participant, identified by its public key (sr25519).
    NodeId
);

bytes32_newtype!(
    /// A ledger account, identified by its public key (sr25519). The same
    /// key may act as a node and an account; the types keep the roles apart.
    AccountId
);

impl NodeId {
    /// The node's public key.
    pub const fn public_key(&self) -> PublicKey {
        PublicKey::from_bytes(self.to_bytes())
    }
    /// The account controlled by the same key.
    pub const fn account(&self) -> AccountId {
        AccountId::from_bytes(self.to_bytes())
    }
}

impl AccountId {
    /// The account's public key.
    pub const fn public_key(&self) -> PublicKey {
        PublicKey::from_bytes(self.to_bytes())
    }
    /// The node identity with the same key.
    pub const fn node(&self) -> NodeId {
        NodeId::from_bytes(self.to_bytes())
    }
}

impl From<PublicKey> for NodeId {
    fn from(pk: PublicKey) -> Self {
        NodeId::from_bytes(pk.to_bytes())
    }
}

impl From<PublicKey> for AccountId {
    fn from(pk: PublicKey) -> Self {
        AccountId::from_bytes(pk.to_bytes())
    }
}

macro_rules! counter_newtype {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(u64);

        impl $name {
            /// The first value.
            pub const ZERO: $name = $name(0);
            /// Wraps a raw number.
            pub const fn new(v: u64) -> Self {
                Self(v)
            }
            /// The raw number.
            pub const fn get(self) -> u64 {
                self.0
            }
            /// The next value (saturating).
            pub const fn next(self) -> Self {
                Self(self.0.saturating_add(1))
            }
            /// The previous value, or `None` at zero.
            pub const fn prev(self) -> Option<Self> {
                match self.0.checked_sub(1) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }
            /// `self + k` (saturating).
            pub const fn plus(self, k: u64) -> Self {
                Self(self.0.saturating_add(k))
            }
            /// `self - k`, saturating at zero.
            pub const fn saturating_minus(self, k: u64) -> Self {
                Self(self.0.saturating_sub(k))
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

counter_newtype!(
    /// A consensus round of the DAG.
    Round,
    "r"
);
counter_newtype!(
    /// A ledger or market epoch (a batch period).
    Epoch,
    "e"
);
