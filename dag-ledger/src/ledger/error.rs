//! The ledger's one error type: every rejection says why and what to do.

use idlegrid_primitives::{AccountId, Amount, AmountError, DecodeError, Digest, Epoch};
use thiserror::Error;

use super::app_error::AppError;
use super::ids::{AppId, ChainId, EscrowId, LockId, Nonce};
use super::slashing::EvidenceError;

/// Why a transaction, a batch, a genesis or a snapshot was rejected.
///
/// A rejected transaction changes nothing: not the balances, not the nonce,
/// not the quota.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LedgerError {
    // ---- envelope ----
    /// The transaction bytes do not decode.
    #[error("malformed transaction: {0}; encode it with SignedTransaction::to_bytes")]
    Malformed(DecodeError),
    /// The transaction was signed for another network.
    #[error("transaction is for {got}, this ledger is {expected}; re-sign it for this chain")]
    WrongChain {
        /// This ledger's chain.
        expected: ChainId,
        /// The transaction's chain.
        got: ChainId,
    },
    /// The signature does not verify for the sender's key.
    #[error("bad signature for sender {0:?}; sign the transaction with the sender's key")]
    BadSignature(AccountId),
    /// The sender (or another named account that must exist) has no account.
    #[error("unknown account {0:?}; fund it with a transfer first")]
    UnknownAccount(AccountId),
    /// The nonce is not the sender's next nonce (a replay or a gap).
    #[error("bad nonce {got}: the next nonce of this account is {expected}")]
    BadNonce {
        /// The account's next nonce.
        expected: Nonce,
        /// The transaction's nonce.
        got: Nonce,
    },
    /// The account has used its transaction quota for this epoch.
    #[error(
        "quota of {quota} transactions in {epoch} exhausted; wait for the next epoch or hold more balance or stake"
    )]
    QuotaExceeded {
        /// The account's quota this epoch.
        quota: u64,
        /// The current epoch.
        epoch: Epoch,
    },
    /// The account used its last nonce.
    #[error("account nonce space exhausted; move funds to a new account")]
    NonceExhausted,

    // ---- amounts ----
    /// An amount of zero where a positive amount is required.
    #[error("amount must be positive")]
    ZeroAmount,
    /// Sender and recipient (or payer and payee) are the same account.
    #[error("sender and recipient are the same account; nothing to do")]
    SelfTransfer,
    /// Not enough free balance.
    #[error("insufficient balance: have {have}, need {need}")]
    InsufficientBalance {
        /// Free balance.
        have: Amount,
        /// Required amount.
        need: Amount,
    },
    /// Not enough bonded stake that is neither locked nor unbonding.
    #[error("insufficient free stake: have {have}, need {need}; unlock or bond more first")]
    InsufficientStake {
        /// Bonded stake not locked as collateral.
        have: Amount,
        /// Required amount.
        need: Amount,
    },
    /// The result of an operation would not fit in an amount.
    #[error("amount arithmetic: {0}; use smaller amounts")]
    Arithmetic(AmountError),
    /// A transfer creating a new account must carry at least the minimum.
    #[error("a new account needs at least {min}, got {got}; send more")]
    NewAccountTooSmall {
        /// The minimum (`Params::min_new_account`).
        min: Amount,
        /// The amount sent.
        got: Amount,
    },
    /// The recipient is not a valid public key, so nobody could ever spend
    /// from it.
    #[error("recipient {0:?} is not a valid public key; funds sent there would be lost")]
    InvalidRecipient(AccountId),

    // ---- bounds ----
    /// The payer has too many open escrows.
    #[error("too many open escrows (max {max}); release or refund one first")]
    TooManyEscrows {
        /// The limit.
        max: u32,
    },
    /// The account has too many pending unbonding entries.
    #[error("too many pending unbondings (max {max}); withdraw matured ones or wait")]
    TooManyUnbondings {
        /// The limit.
        max: u32,
    },
    /// The account has too many collateral locks.
    #[error("too many collateral locks (max {max}); finish a verification round first")]
    TooManyLocks {
        /// The limit.
        max: u32,
    },
    /// An application payload is larger than allowed.
    #[error("payload of {len} bytes exceeds the limit of {max} bytes")]
    PayloadTooLarge {
        /// Payload length.
        len: usize,
        /// The limit.
        max: usize,
    },

    // ---- staking ----
    /// No matured unbonding to withdraw.
    #[error("nothing to withdraw: no unbonding has matured yet")]
    NothingToWithdraw,

    // ---- escrow ----
    /// No escrow with this id (never opened, or already fully released or
    /// refunded).
    #[error("unknown escrow {0}: never opened, or already settled")]
    UnknownEscrow(EscrowId),
    /// Only the payer may release an escrow.
    #[error("only the payer of {0} may release it")]
    NotPayer(EscrowId),
    /// Neither the payee, nor the payer after the deadline.
    #[error("{0}: only the payee, or the payer after the deadline, may refund it")]
    NotRefundable(EscrowId),
    /// The escrow is managed by an application; use that application.
    #[error("{escrow} is managed by {app}; settle it through that application")]
    AppManaged {
        /// The escrow.
        escrow: EscrowId,
        /// Its managing application.
        app: AppId,
    },
    /// The escrow's deadline has passed: it can only be refunded.
    #[error("{escrow} expired at {deadline}; the payer can refund it")]
    EscrowExpired {
        /// The escrow.
        escrow: EscrowId,
        /// Its deadline.
        deadline: Epoch,
    },
    /// Release more than what remains in the escrow.
    #[error("{escrow} holds {remaining}, cannot release {need}")]
    InsufficientEscrow {
        /// The escrow.
        escrow: EscrowId,
        /// Remaining amount.
        remaining: Amount,
        /// Requested amount.
        need: Amount,
    },
    /// The deadline is not in the future.
    #[error("deadline {deadline} is not after the current {now}; pick a later epoch")]
    DeadlineInPast {
        /// Requested deadline.
        deadline: Epoch,
        /// Current epoch.
        now: Epoch,
    },

    // ---- locks ----
    /// No lock with this id.
    #[error("unknown lock {0}")]
    UnknownLock(LockId),
    /// The lock belongs to another application.
    #[error("{0} belongs to another application")]
    NotLockOwner(LockId),
    /// Release more than what remains in the lock.
    #[error("{lock} holds {remaining}, cannot take {need}")]
    InsufficientLock {
        /// The lock.
        lock: LockId,
        /// Remaining amount.
        remaining: Amount,
        /// Requested amount.
        need: Amount,
    },

    // ---- slashing ----
    /// The evidence did not verify.
    #[error("invalid evidence: {0}")]
    InvalidEvidence(EvidenceError),
    /// This offense was already punished.
    #[error("offense {0} was already slashed")]
    AlreadySlashed(Digest),
    /// The offender has no slashable stake.
    #[error("offender {0:?} has no slashable stake")]
    NothingToSlash(AccountId),

    // ---- applications ----
    /// No application registered under this id.
    #[error("unknown application {0}; the node does not run it")]
    UnknownApp(AppId),
    /// The application rejected the transaction with its own typed error
    /// (decode `error` with that application's error type).
    #[error(
        "{app} rejected the transaction with its {error}; decode it with the application's error type"
    )]
    App {
        /// The application.
        app: AppId,
        /// Its error: a stable code and the canonically encoded fields.
        error: AppError,
    },

    // ---- batches, genesis, snapshots ----
    /// The ledger has issued 2^64 escrow or lock ids.
    #[error("escrow or lock ids exhausted; this ledger cannot open more")]
    IdsExhausted,
    /// Batches must come in non-decreasing epochs.
    #[error("batch epoch {got} is before the last applied epoch {last}")]
    EpochRegressed {
        /// The last applied epoch.
        last: Epoch,
        /// The batch's epoch.
        got: Epoch,
    },
    /// The genesis is invalid.
    #[error("invalid genesis: {0}")]
    InvalidGenesis(String),
    /// The snapshot bytes are malformed or violate an invariant.
    #[error("invalid snapshot: {0}; fetch it again from another node")]
    InvalidSnapshot(String),
}

impl From<AmountError> for LedgerError {
    fn from(e: AmountError) -> Self {
        LedgerError::Arithmetic(e)
    }
}
