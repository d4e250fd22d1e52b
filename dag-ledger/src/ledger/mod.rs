//! Replicated ledger state: accounts, fee-less payments, stake, escrow,
//! slashing, and the application hook.
//!
//! The ledger consumes the totally ordered transactions that consensus
//! commits (opaque bytes) in batches, and applies them deterministically:
//!
//! ```text
//! consensus commit ──bytes──▶ Ledger::apply_batch(ctx, txs, host) ──▶ BatchResult
//!                                                      │                 receipts (typed errors)
//!                       applications, evidence verifier┘                 state digest
//! ```
//!
//! - [`Genesis`] fixes the balances, stakes and [`Params`]; the total supply
//!   never grows, and only slashing burns ([`check_supply`]).
//! - [`SignedTransaction`]s carry a chain id, the sender, its next [`Nonce`]
//!   (replay protection) and a [`TxKind`], signed under [`TX_DOMAIN`].
//!   Signatures of a batch are checked with one batch verification, with a
//!   per-signature fallback to find the bad ones ([`SignatureCheck`]).
//! - Transfers are fee-less; spam is bounded by a per-account, per-epoch
//!   [`quota`] that grows with balance and stake (rule and attack cost in
//!   that module).
//! - [`staking`]: bond, unbond with a delay in epochs, collateral locks.
//! - [`escrow`]: open, release in parts or fully, refund, expiry.
//! - [`slashing`]: opaque evidence checked by an [`EvidenceVerifier`]
//!   supplied by the composition root (the ledger does not depend on the
//!   consensus module).
//! - [`Application`]: extra transaction kinds that touch funds only through
//!   a restricted, transactional [`LedgerHandle`].
//! - [`Ledger::state_digest`] after every batch (an incremental two-level
//!   hash: a batch re-hashes only what it touched); [`Ledger::snapshot`] /
//!   [`Ledger::from_snapshot`] for late joiners.
//!
//! Every rejection is a [`LedgerError`], and a rejected transaction changes
//! nothing. The module is sans-IO: no clock, no threads, no global RNG; the
//! epoch and timestamp of a batch come from consensus.

mod account;
mod app;
mod app_error;
mod apply;
mod commitment;
mod error;
pub mod escrow;
mod genesis;
mod ids;
mod invariants;
#[allow(clippy::module_inception)]
mod ledger;
pub mod quota;
pub mod slashing;
pub mod staking;
mod state;
mod transaction;

#[cfg(feature = "strategies")]
pub mod strategies;

pub use account::{Account, Unbonding};
pub use app::{AppRegistry, Application, ApplicationRegistry, LedgerHandle, ManagedHandle, NoApps};
pub use app_error::{AppError, AppErrorDecode, AppErrorType, MAX_APP_ERROR_BYTES};
pub use apply::{BatchContext, BatchResult, Host, Outcome, Receipt, SignatureCheck};
pub use commitment::STATE_DOMAIN;
pub use error::LedgerError;
pub use escrow::Escrow;
pub use genesis::{Genesis, Params, limits};
pub use ids::{AppId, ChainId, EscrowId, LockId, Nonce};
pub use invariants::{
    InvariantViolation, check_accounting, check_all, check_commitment, check_no_negative,
    check_supply,
};
pub use ledger::{Ledger, SNAPSHOT_VERSION};
pub use slashing::{
    Evidence, EvidenceError, EvidenceKind, EvidenceVerifier, NoEvidence, SlashContext,
    VerifiedOffense,
};
pub use staking::{Lock, SlashOutcome};
pub use transaction::{SignedTransaction, TX_DOMAIN, TX_ID_DOMAIN, Transaction, TxKind};
