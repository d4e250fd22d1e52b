//! Slashing with verifiable evidence.
//!
//! The ledger does not know what an offense looks like: consensus
//! equivocation evidence is defined by the consensus module, which this
//! module must not depend on. Instead a [`TxKind::Slash`] carries an opaque,
//! bounded [`Evidence`] (a kind tag, the accused account and bytes), and the
//! composition root passes an [`EvidenceVerifier`] to
//! [`Ledger::apply_batch`] that decodes and checks it — for consensus, "two
//! validly signed blocks by the same author in the same round" — and answers
//! with a [`VerifiedOffense`]: who, a unique offense id, and the penalty.
//!
//! The ledger then takes `penalty_bps` of the offender's slashable stake
//! (free bonded stake, then pending unbondings; never stake locked by an
//! application), pays `Params::slash_reporter_bps` of it to the reporter
//! (the transaction's sender, unless it is the offender) and burns the rest.
//! Each offense id is punished at most once.
//!
//! The verifier must be deterministic and identical on every node (it runs
//! inside the replicated state machine). Entrap verdicts do not use this
//! path: they slash collateral locks through the application handle.
//!
//! [`TxKind::Slash`]: super::TxKind::Slash
//! [`Ledger::apply_batch`]: super::Ledger::apply_batch

use idlegrid_primitives::{AccountId, CryptoError, DecodeError, Digest, Epoch};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::error::LedgerError;
use super::genesis::limits::MAX_EVIDENCE_BYTES;
use super::staking::{SlashOutcome, slashable};
use super::state::StateTx;

/// A tag saying how to interpret [`Evidence::bytes`] (e.g. 1 = consensus
/// equivocation); assigned by the composition root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EvidenceKind(pub u16);

/// Opaque evidence of an offense, checked by an [`EvidenceVerifier`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// How to read `bytes`.
    pub kind: EvidenceKind,
    /// The accused account.
    pub offender: AccountId,
    /// The proof itself (at most [`MAX_EVIDENCE_BYTES`]).
    pub bytes: Vec<u8>,
}

/// What a verifier established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedOffense {
    /// Who offended (must equal [`Evidence::offender`]).
    pub offender: AccountId,
    /// A unique id for the offense (e.g. the digest of author and round), so
    /// two encodings of the same equivocation are punished once.
    pub offense_id: Digest,
    /// Share of the slashable stake to take, in basis points (≤ 10 000).
    pub penalty_bps: u16,
}

/// Context given to the verifier.
#[derive(Debug, Clone, Copy)]
pub struct SlashContext {
    /// The current epoch.
    pub epoch: Epoch,
}

/// Why evidence was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// The verifier does not know this kind of evidence.
    #[error("this node verifies no evidence of kind {0:?}; check the kind tag")]
    UnknownKind(EvidenceKind),
    /// The evidence bytes do not decode as their kind.
    #[error("evidence bytes do not decode: {0}")]
    Malformed(DecodeError),
    /// A signature in the evidence does not verify for the offender.
    #[error("a signature in the evidence does not verify: {0}")]
    BadSignature(CryptoError),
    /// Well formed and signed, but not an offense (e.g. two blocks of
    /// different rounds).
    #[error("the evidence proves no offense: {0}")]
    NotAnOffense(&'static str),
    /// The verifier named another offender than the evidence.
    #[error("the verifier named a different offender than the evidence")]
    OffenderMismatch,
    /// The verifier's penalty is not in 1..=10 000 bps.
    #[error("penalty of {0} bps is outside 1..=10000")]
    PenaltyOutOfRange(u16),
}

/// Checks evidence. Implementations must be deterministic and the same on
/// every node; they must reject (never panic on) malformed bytes.
pub trait EvidenceVerifier {
    /// Verifies `evidence`, or says why it is not valid.
    fn verify(
        &self,
        evidence: &Evidence,
        ctx: SlashContext,
    ) -> Result<VerifiedOffense, EvidenceError>;
}

/// A verifier that accepts nothing: slashing by evidence is disabled.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvidence;

impl EvidenceVerifier for NoEvidence {
    fn verify(&self, e: &Evidence, _: SlashContext) -> Result<VerifiedOffense, EvidenceError> {
        Err(EvidenceError::UnknownKind(e.kind))
    }
}

impl StateTx<'_> {
    /// Verifies `evidence` and slashes the offender; `reporter` is rewarded.
    pub(crate) fn slash_with_evidence(
        &mut self,
        reporter: &AccountId,
        evidence: &Evidence,
        verifier: &dyn EvidenceVerifier,
    ) -> Result<SlashOutcome, LedgerError> {
        if evidence.bytes.len() > MAX_EVIDENCE_BYTES {
            return Err(LedgerError::PayloadTooLarge {
                len: evidence.bytes.len(),
                max: MAX_EVIDENCE_BYTES,
            });
        }
        let ctx = SlashContext {
            epoch: self.epoch(),
        };
        let off = verifier
            .verify(evidence, ctx)
            .map_err(LedgerError::InvalidEvidence)?;
        if off.offender != evidence.offender {
            return Err(LedgerError::InvalidEvidence(
                EvidenceError::OffenderMismatch,
            ));
        }
        if off.penalty_bps == 0 || off.penalty_bps > 10_000 {
            return Err(LedgerError::InvalidEvidence(
                EvidenceError::PenaltyOutOfRange(off.penalty_bps),
            ));
        }
        let acc = self.existing(&off.offender)?;
        let base = slashable(acc)?;
        let amount = base.mul_ratio(u128::from(off.penalty_bps), 10_000)?;
        if amount.is_zero() {
            return Err(LedgerError::NothingToSlash(off.offender));
        }
        self.mark_slashed(off.offense_id)?;
        let bps = self.params().slash_reporter_bps;
        self.slash_stake(&off.offender, amount, Some(reporter), bps)
    }
}
