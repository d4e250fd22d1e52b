//! The registry's error type.

use idlegrid_primitives::{AccountId, Amount, AmountError, CryptoError, Digest, SealError};
use thiserror::Error;

use super::types::{GoodKind, JobId, JobItem};
use crate::types::OrderId;

/// Everything a registry operation, quote, job or settlement can reject.
/// Nothing in the registry panics on input; a rejected operation changes
/// nothing but the signer's sequence number (see [`super::Registry::apply`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The record's signature does not verify.
    #[error("registry record signature does not verify: {0}")]
    BadSignature(CryptoError),
    /// The record's sequence number is not the signer's next one.
    #[error("sequence number {got} is not the signer's next ({expected}); re-sign with {expected}")]
    BadNonce {
        /// The next valid number.
        expected: u64,
        /// The number given.
        got: u64,
    },
    /// No listing has this digest.
    #[error("no app or dataset is registered under {0}")]
    UnknownDigest(Digest),
    /// A listing with this digest exists already.
    #[error("{0} is already registered; a new release needs new content")]
    AlreadyRegistered(Digest),
    /// The good is of the other kind (an app used as a dataset or back).
    #[error("{digest} is not a {expected:?}")]
    WrongKind {
        /// The good.
        digest: Digest,
        /// The kind the job needs there.
        expected: GoodKind,
    },
    /// Only the owner may change a listing.
    #[error("{signer} does not own {digest}")]
    NotOwner {
        /// The good.
        digest: Digest,
        /// Who tried.
        signer: AccountId,
    },
    /// The good is deprecated and cannot be used by new jobs.
    #[error("{0} is deprecated; pick its successor")]
    Deprecated(Digest),
    /// The client may not use the good under its access policy.
    #[error("client {client} may not use {digest} (policy: {policy})")]
    NotAllowed {
        /// The good.
        digest: Digest,
        /// The client.
        client: AccountId,
        /// The policy's name.
        policy: &'static str,
    },
    /// The owners' fees exceed the bid's cap.
    #[error("owner fees of {fees} per slot exceed the bid's cap of {cap}")]
    FeeCapExceeded {
        /// Quoted fees per slot.
        fees: Amount,
        /// The bid's cap.
        cap: Amount,
    },
    /// A bid's goods are malformed.
    #[error("bid {bid} references goods badly: {what}")]
    BadGoods {
        /// The bid.
        bid: OrderId,
        /// What is wrong.
        what: &'static str,
    },
    /// A field is out of range.
    #[error("invalid registry record: {0}")]
    Invalid(&'static str),
    /// A bounded collection is full.
    #[error("capacity exhausted: at most {max} {what}")]
    Full {
        /// What is full.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// No open job has this id.
    #[error("no open job {0} (never matched, or already settled)")]
    UnknownJob(JobId),
    /// The job was opened before.
    #[error("job {0} is already open")]
    JobExists(JobId),
    /// The job was settled before; it is never paid twice.
    #[error("job {0} was already settled")]
    AlreadySettled(JobId),
    /// Only the job's client may grant access to its data.
    #[error("{signer} is not the client of {job}; only the client grants access")]
    NotClient {
        /// The job.
        job: JobId,
        /// Who tried.
        signer: AccountId,
    },
    /// The same grant was recorded before.
    #[error("{grantee} already has access to {item:?} of {job}")]
    DuplicateGrant {
        /// The job.
        job: JobId,
        /// The grantee.
        grantee: AccountId,
        /// The item.
        item: JobItem,
    },
    /// No grant lets `reader` read `item` of `job`.
    #[error("{reader} has no grant for {item:?} of {job}")]
    NoGrant {
        /// The job.
        job: JobId,
        /// Who wants to read.
        reader: AccountId,
        /// The item.
        item: JobItem,
    },
    /// Sealing to the reader failed (bad certificate, data too large).
    #[error("sealing failed: {0}")]
    Seal(#[from] SealError),
    /// Money arithmetic overflowed.
    #[error("amount arithmetic: {0}")]
    Amount(#[from] AmountError),
}
