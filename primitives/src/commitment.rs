//! Hiding and binding commitments: `Commitment::to(domain, value, salt)`.
//!
//! A commitment is the blake3 digest, under a domain label, of the salt and
//! the value's canonical encoding. With a fresh 32-byte random salt it hides
//! the value; blake3's collision resistance binds it.

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::bytes32::bytes32_newtype;
use crate::digest::{Digest, Domain};
use crate::encoding::encode;

bytes32_newtype!(
    /// A 32-byte random salt that makes a commitment hiding. Draw it from a
    /// cryptographic RNG and never reuse it.
    Salt
);

impl Salt {
    /// Draws a fresh salt.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        Salt::from_bytes(b)
    }
}

/// Why a commitment did not open.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CommitmentError {
    /// The value and salt do not hash to the commitment.
    #[error("the revealed value and salt do not match the commitment")]
    Mismatch,
}

/// A commitment to a value (32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Commitment(Digest);

impl Commitment {
    /// Commits to `value` with `salt` under `domain`.
    pub fn to<T: Serialize + ?Sized>(domain: Domain, value: &T, salt: &Salt) -> Self {
        Self(Digest::hash_parts(
            domain,
            &[salt.as_bytes(), &encode(value)],
        ))
    }

    /// Checks that `value` and `salt` open this commitment.
    pub fn open<T: Serialize + ?Sized>(
        &self,
        domain: Domain,
        value: &T,
        salt: &Salt,
    ) -> Result<(), CommitmentError> {
        if Self::to(domain, value, salt) == *self {
            Ok(())
        } else {
            Err(CommitmentError::Mismatch)
        }
    }

    /// The commitment as a digest.
    pub const fn digest(&self) -> Digest {
        self.0
    }

    /// Wraps a digest received from elsewhere.
    pub const fn from_digest(d: Digest) -> Self {
        Self(d)
    }
}

impl core::fmt::Display for Commitment {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(&self.0, f)
    }
}
