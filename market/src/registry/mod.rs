//! The registry of apps and datasets, and who may read a job's data.
//!
//! Apps (programs) and datasets are goods of the market: a bid references
//! them by content digest ([`JobGoods`] on [`Bid`](crate::Bid)), clearing
//! quotes their owners' prices and every [`Match`](crate::Match) carries
//! each party's price — the provider's compute price and one [`OwnerFee`]
//! per good, fixed at match time. A later price change, transfer or
//! deprecation never touches a matched job; settlement ([`Registry::settle`],
//! [`split`]) pays exactly what the match says, once.
//!
//! ## Why here, and how it reaches the ledger
//!
//! The registry's state lives in the market crate because what it decides
//! — may this client use this app, at what price — is part of clearing,
//! and the match must carry every party's price. Protocol crates may not
//! depend on each other, so this module is sans-IO plain data: the
//! composition root wraps [`Registry`] as a ledger `Application`, feeding
//! it committed [`SignedOp`]s in ledger order ([`Registry::apply`]), opening
//! a job per match ([`Registry::open_job`]) and moving the escrowed money as
//! each [`Payout`] says. Nothing here moves money.
//!
//! ## Records
//!
//! Every operation is a [`SignedOp`]: an sr25519 signature under the
//! [`REGISTRY_OP`] domain label over `(signer, nonce, op)`, with a
//! per-signer sequence number so each record applies at most once.
//! Owners register, reprice, change the access policy of, transfer,
//! deprecate, and (for [`AccessPolicy::PerJob`] goods) approve single jobs;
//! access policies are [`AccessPolicy::Public`], an allow-list of client
//! accounts, or per-job approval by the owner.
//!
//! ## Confidential data and grants
//!
//! A job's inputs (and a private app's program) are sealed with
//! `idlegrid_primitives::seal` to the matched provider's certified
//! encryption key only, bound to [`JobItem::seal_context`]. The match is
//! the client's consent for that provider; anyone else — typically a
//! dispute's referees — needs a [`Grant`], a client-signed record kept here
//! so "who could read what" is auditable ([`Registry::readers`],
//! [`Registry::grants`], [`Registry::check_access`]). The client checks the
//! grant is recorded before re-sealing just the disputed trap's input to a
//! referee. Grants by anyone but the job's client are refused.
//!
//! ## Bounds
//!
//! [`RegistryLimits`] bounds listings per owner and overall, allow-list
//! length, approvals per listing, grants per job, open jobs, accounts with
//! sequence numbers and the memory of settled jobs; [`MAX_DATASETS_PER_JOB`]
//! bounds a bid's goods.

mod clear;
mod error;
mod op;
mod settle;
mod state;
mod types;

pub use clear::{GoodsClearing, GoodsPricing, GoodsRejection, NoGoods, clear_with_goods};
pub use error::RegistryError;
pub use op::{MAX_OP_BYTES, REGISTRY_OP, RegistryOp, SignedOp};
pub use settle::{Payout, check_payout, split};
pub use state::{OpenJob, REGISTRY_STATE, Registry, RegistryLimits, RegistryStats};
pub use types::{
    APP_CONTENT, AccessPolicy, DATASET_CONTENT, GoodKind, Grant, JOB_ID, JobGoods, JobId, JobItem,
    Listing, MAX_DATASETS_PER_JOB, OwnerFee, content_digest,
};
