//! # idlegrid-primitives
//!
//! The shared vocabulary of the idlegrid workspace: every other crate speaks
//! in these types.
//!
//! - identities and counters: [`NodeId`], [`AccountId`] (sr25519 public
//!   keys), [`Round`], [`Epoch`];
//! - quantities: [`Amount`] (u128 base units, checked arithmetic, no floats),
//!   virtual [`Timestamp`] and [`Duration`] in microseconds;
//! - hashing: [`Digest`] (blake3) under a [`Domain`] label;
//! - keys and signatures on schnorrkel: [`Keypair`], [`PublicKey`],
//!   [`Signature`], [`verify_batch`], VRF ([`Keypair::vrf_sign`],
//!   [`PublicKey::vrf_verify`]); a [`SignatureVerifier`] a driver gives
//!   its nodes, plain or through a bounded [`SignatureMemo`] of signatures
//!   that verified (one shared by all the simulator's validators);
//! - [`Commitment`]s with [`Salt`]s for commit–reveal protocols;
//! - a binary [`MerkleTree`] with inclusion proofs ([`MerkleProof`]);
//! - canonical encoding: [`encode`] / [`decode`] (postcard; decode rejects
//!   oversized, trailing and non-canonical input);
//! - deterministic randomness: [`Seed`] with labelled child derivation;
//! - confidential data: [`seal`] bytes to a node's certified X25519 key
//!   ([`EncryptionKeyCert`]), padded to length buckets (`crypto_box` sealed boxes);
//! - the [`Machine`] driving contract shared by the simulator and real nodes.
//!
//! ## Time and determinism
//!
//! Nothing here reads a clock or a global RNG. Time is a [`Timestamp`]
//! passed in by the driver; randomness comes from a [`Seed`] or a
//! caller-supplied RNG. Signing is deterministic, so a seeded run produces
//! byte-identical messages.
//!
//! ## Example
//!
//! ```
//! use idlegrid_primitives::*;
//!
//! const VOTE: Domain = Domain::new("idlegrid/example/vote");
//!
//! // Keys from a seed derived from a run's root seed.
//! let root = Seed::from_u64(2026);
//! let alice = Keypair::from_seed(&root.derive_indexed("node", 0));
//!
//! // A message, canonically encoded, signed under its domain label.
//! let msg = (Round::new(3), Amount::new(250));
//! let bytes = encode(&msg);
//! let sig = alice.sign(VOTE, &bytes);
//! alice.public().verify(VOTE, &bytes, &sig).unwrap();
//!
//! // Untrusted bytes decode with a size limit; the result round-trips.
//! let back: (Round, Amount) = decode(&bytes, 64).unwrap();
//! assert_eq!(back, msg);
//!
//! // Commit now, reveal later.
//! let salt = Salt::random(&mut root.derive("salt").rng());
//! let c = Commitment::to(VOTE, &msg, &salt);
//! assert!(c.open(VOTE, &msg, &salt).is_ok());
//! assert!(c.open(VOTE, &(Round::new(3), Amount::new(251)), &salt).is_err());
//!
//! // Checked money.
//! assert!(Amount::MAX.checked_add(Amount::new(1)).is_err());
//! ```
//!
//! ## For auditors
//!
//! With the `strategies` feature, the `strategies` module exports proptest strategies
//! for every public type.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Determinism: a `HashMap`/`HashSet` iterates in a per-process order, so
// protocol crates use none (`.ci/run` greps for them) and this lint catches
// a `for` loop over one should it come back. Use `BTreeMap`/`BTreeSet`.
#![warn(clippy::iter_over_hash_type)]

mod amount;
mod bytes32;
mod cache_cell;
mod commitment;
mod cow_map;
mod crypto;
mod digest;
mod encoding;
mod ids;
mod key_cache;
mod machine;
mod memo;
mod merkle;
mod sealed;
mod seed;
mod seq_map;
mod time;
mod verifier;

#[cfg(feature = "strategies")]
pub mod strategies;

pub use amount::{Amount, AmountError};
pub use bytes32::ParseHexError;
pub use cache_cell::CacheCell;
pub use commitment::{Commitment, CommitmentError, Salt};
pub use cow_map::{CowMap, CowSet, SHARDS as COW_MAP_SHARDS, ShardKey};
pub use crypto::{
    BatchItem, CryptoError, Keypair, PublicKey, Signature, VrfOutput, VrfProof, verify_batch,
    verify_batch_deterministic,
};
pub use digest::{Digest, DigestHasher, Domain};
pub use encoding::{DEFAULT_MAX_DECODE_LEN, DecodeError, decode, encode, encoded_len};
pub use ids::{AccountId, Epoch, NodeId, Round};
pub use machine::{Destination, Machine, Transmit};
pub use merkle::{
    MAX_SIBLINGS, MerkleProof, MerkleTree, NODE_DOMAIN as MERKLE_NODE_DOMAIN,
    empty_root as merkle_empty_root,
};
pub use sealed::{
    ENCRYPTION_KEY_CERT, EncryptionKeyCert, EncryptionPublicKey, EncryptionSecret, MAX_BUCKET,
    MAX_SEALED_PLAINTEXT, MIN_BUCKET, SEAL_CONTEXT, SEAL_HEADER, SEAL_OVERHEAD, SealError,
    SealedBytes, bucket_for, seal, seal_padded,
};
pub use seed::Seed;
pub use seq_map::{SeqKey, SeqMap};
pub use time::{Duration, Timestamp};
pub use verifier::{MemoStats, SignatureMemo, SignatureVerifier};

/// Re-exported so that dependents use the same RNG types as primitives.
pub use rand_chacha::ChaCha20Rng;
/// Re-exported RNG traits (rand_core 0.6, shared with schnorrkel).
pub use rand_core::{CryptoRng, RngCore, SeedableRng};
