//! Proptest strategies for every public type (feature `strategies`).
//!
//! Auditors reuse these in their own property tests:
//!
//! ```
//! use idlegrid_primitives::strategies;
//! use proptest::prelude::*;
//!
//! proptest!(|(a in strategies::amount(), b in strategies::amount())| {
//!     // Addition either succeeds and is commutative, or overflows both ways.
//!     prop_assert_eq!(a.checked_add(b), b.checked_add(a));
//! });
//! ```

use proptest::prelude::*;

use crate::{
    AccountId, Amount, Commitment, Digest, Duration, Epoch, Keypair, NodeId, PublicKey, Round,
    Salt, Seed, Signature, Timestamp,
};

/// Any amount, biased towards small values and the overflow boundary.
pub fn amount() -> impl Strategy<Value = Amount> {
    prop_oneof![
        4 => (0u128..1_000_000).prop_map(Amount::new),
        2 => any::<u64>().prop_map(Amount::from),
        1 => any::<u128>().prop_map(Amount::new),
        1 => (0u128..1000).prop_map(|d| Amount::new(u128::MAX - d)),
    ]
}

/// Any timestamp.
pub fn timestamp() -> impl Strategy<Value = Timestamp> {
    any::<u64>().prop_map(Timestamp::from_micros)
}

/// Any duration.
pub fn duration() -> impl Strategy<Value = Duration> {
    any::<u64>().prop_map(Duration::from_micros)
}

/// Any round.
pub fn round() -> impl Strategy<Value = Round> {
    any::<u64>().prop_map(Round::new)
}

/// Any epoch.
pub fn epoch() -> impl Strategy<Value = Epoch> {
    any::<u64>().prop_map(Epoch::new)
}

/// Any 32 bytes.
pub fn bytes32() -> impl Strategy<Value = [u8; 32]> {
    any::<[u8; 32]>()
}

/// Any digest.
pub fn digest() -> impl Strategy<Value = Digest> {
    bytes32().prop_map(Digest::from_bytes)
}

/// Any seed.
pub fn seed() -> impl Strategy<Value = Seed> {
    bytes32().prop_map(Seed::from_bytes)
}

/// Any salt.
pub fn salt() -> impl Strategy<Value = Salt> {
    bytes32().prop_map(Salt::from_bytes)
}

/// Any commitment.
pub fn commitment() -> impl Strategy<Value = Commitment> {
    digest().prop_map(Commitment::from_digest)
}

/// A real keypair derived from an arbitrary seed.
pub fn keypair() -> impl Strategy<Value = Keypair> {
    seed().prop_map(|s| Keypair::from_seed(&s))
}

/// A valid public key (of a real keypair).
pub fn public_key() -> impl Strategy<Value = PublicKey> {
    keypair().prop_map(|k| k.public())
}

/// A node id of a real keypair.
pub fn node_id() -> impl Strategy<Value = NodeId> {
    keypair().prop_map(|k| k.node_id())
}

/// An account id of a real keypair.
pub fn account_id() -> impl Strategy<Value = AccountId> {
    keypair().prop_map(|k| k.account_id())
}

/// Arbitrary 64 bytes as a signature (usually invalid: for decoders and
/// negative tests).
pub fn signature_bytes() -> impl Strategy<Value = Signature> {
    proptest::collection::vec(any::<u8>(), 64)
        .prop_map(|v| Signature::from_slice(&v).expect("64 bytes"))
}
