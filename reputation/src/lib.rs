//! # idlegrid-reputation
//!
//! Two-sided reputation for the idlegrid compute market: providers are rated
//! for delivering correct results on time, clients for paying and for planting
//! honest traps. Three views of the same feedback:
//!
//! - **beta reputation** per identity and role ([`ReputationBook::score`]):
//!   Jøsang's Beta posterior mean with exponential forgetting per epoch
//!   (lazy, `O(1)` per update) and a pessimistic prior, so a fresh identity
//!   scores the minimum and whitewashing never pays ([`beta`] has the math);
//! - **credibility** ([`ReputationBook::credibility`]): Sarmenta's estimate of
//!   the probability that a provider's next result is correct, for the entrap
//!   optimizer's trap rate;
//! - **global trust** ([`EigenTrust::compute`], [`ReputationBook::global_trust`]):
//!   EigenTrust power iteration over the reporter → subject graph, anchored on
//!   pre-trusted peers and stake, so Sybil rings without stake or trusted
//!   in-edges get exactly zero ([`eigentrust`] has the math).
//!
//! Feedback ([`Feedback`]) is signed by its reporter ([`SignedFeedback`]) and
//! weighted by the value at stake (logarithmically, capped) and by severity.
//! Bad input — bad signatures, unknown identities, self-feedback, duplicate
//! feedback for a job, out-of-range values, stale or future epochs, quota
//! overruns, NaN parameters — is a typed [`ReputationError`] and changes
//! nothing.
//!
//! ## Determinism
//!
//! The crate is sans-IO: no clock, no RNG, no threads. Every quantity that can
//! feed replicated state is an integer or a [`Score`] (binary fixed point,
//! `raw / 2^60`, rounding down), so the same inputs in the same order give the
//! same bits on every node; [`ReputationBook::state_digest`] proves it.
//! Floats appear only in [`Score::try_from_f64`] (validated parameters) and
//! [`Score::to_f64`] (reports).
//!
//! ## Example
//!
//! ```
//! use idlegrid_primitives::{Amount, Digest, Domain, Epoch, Keypair, Seed};
//! use idlegrid_reputation::*;
//!
//! let root = Seed::from_u64(7);
//! let key = |i| Keypair::from_seed(&root.derive_indexed("node", i));
//! let (validator, client, provider) = (key(0), key(1), key(2));
//!
//! let mut book = ReputationBook::new(BookParams::default(), Epoch::ZERO)?;
//! book.register(validator.node_id(), Amount::new(1_000))?;
//! book.register(client.node_id(), Amount::ZERO)?;
//! book.register(provider.node_id(), Amount::ZERO)?;
//!
//! // A fresh provider starts at the bottom: no whitewashing gains.
//! assert_eq!(book.score(&provider.node_id(), Role::Provider), Score::ZERO);
//!
//! // The client reports ten delivered jobs, signed.
//! for j in 0..10u8 {
//!     let fb = Feedback {
//!         reporter: client.node_id(),
//!         subject: provider.node_id(),
//!         outcome: Outcome::Delivered,
//!         job: JobId(Digest::hash(Domain::new("idlegrid/example/job"), &[j])),
//!         value: Amount::new(1),
//!         epoch: book.epoch(),
//!     };
//!     book.record(&fb.sign(&client))?;
//! }
//! let s = book.score(&provider.node_id(), Role::Provider);
//! assert!(s >= Score::from_ppm(800_000).unwrap()); // Golem's default minimum
//! assert!(book.meets_minimum(&provider.node_id(), Role::Provider, s));
//! assert!(book.credibility(&provider.node_id()) > book.fresh_credibility());
//!
//! // Forgetting: idle epochs move the score back toward the prior (zero).
//! book.advance_epoch();
//! assert!(book.score(&provider.node_id(), Role::Provider) < s);
//!
//! // Global trust, anchored on the validator; the client vouches for the provider.
//! book.register(client.node_id(), Amount::ZERO)?;
//! let fb = Feedback {
//!     reporter: validator.node_id(),
//!     subject: client.node_id(),
//!     outcome: Outcome::Paid,
//!     job: JobId(Digest::hash(Domain::new("idlegrid/example/job"), b"v")),
//!     value: Amount::new(5),
//!     epoch: book.epoch(),
//! };
//! book.record(&fb.sign(&validator))?;
//! let trust = book.global_trust(&[validator.node_id()], &TrustParams::default())?;
//! check_trust_vector(&trust, Score::from_raw(1 << 20).unwrap())?;
//! assert!(trust.get(&provider.node_id()) > Score::ZERO);
//! check_book(&book)?;
//! # Ok::<(), ReputationError>(())
//! ```
//!
//! ## For auditors
//!
//! Invariants are plain functions: [`check_book`], [`check_scores_bounded`],
//! [`check_fresh_not_above_proven`], [`check_trust_vector`]. With the
//! `strategies` feature, the `strategies` module exports proptest strategies.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Determinism: a `HashMap`/`HashSet` iterates in a per-process order, so
// protocol crates use none (`.ci/run` greps for them) and this lint catches
// a `for` loop over one should it come back. Use `BTreeMap`/`BTreeSet`.
#![warn(clippy::iter_over_hash_type)]

pub mod beta;
mod book;
mod check;
pub mod eigentrust;
mod error;
mod feedback;
mod score;

#[cfg(feature = "strategies")]
pub mod strategies;

pub use beta::{BetaParams, BetaState, Evidence};
pub use book::{BookParams, IdentityRecord, ReputationBook, STATE_DIGEST_DOMAIN};
pub use check::{
    check_book, check_fresh_not_above_proven, check_scores_bounded, check_trust_vector,
};
pub use eigentrust::{EigenTrust, TrustGraph, TrustParams, TrustVector};
pub use error::ReputationError;
pub use feedback::{
    FEEDBACK_DOMAIN, Feedback, JobId, MAX_SIGNED_FEEDBACK_LEN, Outcome, Role, Severity,
    SignedFeedback,
};
pub use score::{SCORE_BITS, Score};
