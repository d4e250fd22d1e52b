//! DAG BFT consensus in the style of Mysticeti-C (uncertified DAG, commit in
//! three message delays).
//!
//! # Protocol
//!
//! A committee of validators with stake ([`Committee`]) builds a DAG of
//! signed [`Block`]s. A block of round `r` carries transactions (opaque
//! bytes) and references round `r-1` blocks holding a quorum (2f+1) of
//! stake, always including its author's previous block. A validator
//! proposes round `r+1` as soon as it holds a quorum of round `r`, after a
//! short wait for the round's leader blocks ([`ConsensusConfig::leader_timeout`]).
//!
//! Each round has one or more leaders, elected by a deterministic,
//! stake-weighted [`LeaderSchedule`]. The [`Committer`] decides each leader
//! slot from the DAG alone: *direct commit* when a quorum of round `r+2`
//! blocks each reference a quorum of round `r+1` blocks that reference the
//! leader; *direct skip* when a quorum of round `r+1` blocks do not
//! reference it; otherwise *indirectly* from the next committed anchor.
//! Committed leaders are turned by the [`Linearizer`] into
//! [`CommittedSubDag`]s: the leader's not-yet-ordered causal history,
//! sorted deterministically, with a running digest.
//!
//! Missing ancestors are fetched from peers ([`sync`]); a second signed
//! block by the same author for the same round yields self-contained
//! [`Evidence`] and its author is no longer referenced; rounds more than
//! [`ConsensusConfig::gc_depth`] below the last commit are dropped.
//!
//! Every received block's signature is verified (batched when several
//! arrive together), through the
//! [`SignatureVerifier`](idlegrid_primitives::SignatureVerifier) the driver
//! gives the validator ([`Validator::with_signature_verifier`]): plain by
//! default; a simulator running many validators in one process gives them
//! one memo of signatures that verified, so each block is verified once.
//!
//! # Driving a validator
//!
//! [`Validator`] implements [`idlegrid_primitives::Machine`]: feed it
//! messages and timeouts with the current time, then drain
//! `poll_transmit` and `poll_event` until both are `None`; sleep until
//! `poll_timeout`. The first timeout (at time zero) starts it.
//!
//! ```
//! use idlegrid_dag_ledger::consensus::*;
//! use idlegrid_primitives::{Keypair, Machine, Seed, Timestamp};
//!
//! let root = Seed::from_u64(7);
//! let keys: Vec<Keypair> = (0..4).map(|i| Keypair::from_seed(&root.derive_indexed("k", i))).collect();
//! let committee = Committee::equal(keys.iter().map(Keypair::node_id)).unwrap();
//! let mut v = Validator::new(keys[0].clone(), committee, ConsensusConfig::default(), root.derive("v0")).unwrap();
//! v.submit_transaction(b"pay alice 5".to_vec()).unwrap();
//! assert_eq!(v.poll_timeout(), Some(Timestamp::ZERO));
//! v.handle_timeout(Timestamp::ZERO); // proposes round 1
//! let out = v.poll_transmit().unwrap();
//! assert!(matches!(out.msg, ConsensusMessage::Block(_)));
//! ```
//!
//! An in-crate multi-node [`harness`] runs whole committees over a seeded
//! simulated network; tests and benches use it. Byzantine validators are
//! the honest [`Validator`] inside the adversary wrappers of [`byzantine`]
//! (test and simulation code: the honest validator has no Byzantine
//! switch).
//!
//! # Determinism
//!
//! Nothing here reads a clock, spawns a thread or draws from a global RNG.
//! Signing is deterministic; the only randomness (batch verification) comes
//! from the seed given to [`Validator::new`].

mod block;
mod block_hashes;
pub mod byzantine;
mod committed_set;
mod committee;
mod committer;
mod config;
pub mod dag;
mod error;
mod evidence;
pub mod harness;
mod history_memo;
mod invariants;
mod leader_schedule;
mod leader_wait;
mod linearizer;
mod message;
pub mod persist;
pub mod sync;
mod validator;

#[cfg(feature = "strategies")]
pub mod strategies;

pub use block::{
    BLOCK_DOMAIN, BLOCK_SIGNATURE_DOMAIN, Block, BlockHeader, BlockRef, SignedHeader,
    TRANSACTIONS_DOMAIN, Transaction, VerifiedBlock,
};
pub use committed_set::CommittedSet;
pub use committee::{
    Authority, AuthorityIndex, Committee, MAX_COMMITTEE_SIZE, Stake, StakeAggregator,
};
pub use committer::{Committer, DecisionKind, LeaderSlot, LeaderStatus};
pub use config::ConsensusConfig;
pub use dag::{DagBuilder, DagStore};
pub use error::ConsensusError;
pub use evidence::Evidence;
pub use history_memo::HistoryMemo;
pub use invariants::{
    InvariantViolation, check_causal_order, check_commit_sequence, check_prefix_consistency,
};
pub use leader_schedule::{LeaderSchedule, RoundRobinSchedule, StakeWeightedSchedule};
pub use leader_wait::LeaderWait;
pub use linearizer::{
    COMMIT_DOMAIN, CommittedSubDag, Linearizer, collect_history, commit_time, weighted_median,
};
pub use message::{ConsensusMessage, FetchRequest};
pub use persist::{PersistRequest, PersistSeq, Recovered, StorageOp};
pub use validator::{ConsensusEvent, Validator, ValidatorStats};
