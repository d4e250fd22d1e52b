//! Feedback events: what happened on a job, who says so, and what was at stake.
//!
//! A [`Feedback`] names a reporter, a subject, an [`Outcome`] (which fixes the
//! subject's [`Role`]), the job, the value at stake and the epoch. Peers send
//! it as [`SignedFeedback`]: the reporter's schnorrkel signature over the
//! canonical encoding under the domain [`FEEDBACK_DOMAIN`]. Verdicts that the
//! ledger already verified (a referee committee's "caught cheating", "framed a
//! provider") can be applied unsigned through
//! [`ReputationBook::apply_feedback`](crate::ReputationBook::apply_feedback).

use core::fmt;

use idlegrid_primitives::{
    Amount, Digest, Domain, Epoch, Keypair, NodeId, Signature, decode, encode,
};
use serde::{Deserialize, Serialize};

use crate::error::ReputationError;

/// Domain label of feedback signatures.
pub const FEEDBACK_DOMAIN: Domain = Domain::new("idlegrid/reputation/feedback");

/// Largest accepted encoding of a [`SignedFeedback`] (it is ~190 bytes).
pub const MAX_SIGNED_FEEDBACK_LEN: usize = 512;

/// A job, by the digest of its description. (Primitives has no job id; the
/// composition root maps its own job ids to this digest.)
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub Digest);

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({})", self.0.short())
    }
}

/// The side of a trade an identity is rated for. Each identity has one
/// independent reputation per role.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum Role {
    /// Sells compute: rated for correct, timely results.
    Provider,
    /// Buys compute: rated for paying and for honest traps.
    Client,
}

impl Role {
    /// Both roles.
    pub const ALL: [Role; 2] = [Role::Provider, Role::Client];
}

/// What happened, from the reporter's point of view.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum Outcome {
    /// The provider delivered correct results on time (passed its traps).
    Delivered,
    /// The provider failed the job (error, crash) without evidence of cheating.
    Failed,
    /// The provider missed the deadline.
    TimedOut,
    /// The provider answered a trap wrongly and lost the dispute (or did not dispute).
    CaughtCheating,
    /// The client paid as agreed.
    Paid,
    /// The client did not pay (escrow not funded or released).
    DidNotPay,
    /// The client planted a wrong trap answer to frame a provider (referee verdict).
    FramedProvider,
}

/// How bad a negative outcome is: its evidence is multiplied by the
/// configured severity of its class.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Severity {
    /// Good behaviour: positive evidence.
    Positive,
    /// An ordinary failure (crash, timeout).
    Minor,
    /// Proven dishonesty or non-payment.
    Major,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 7] = [
        Outcome::Delivered,
        Outcome::Failed,
        Outcome::TimedOut,
        Outcome::CaughtCheating,
        Outcome::Paid,
        Outcome::DidNotPay,
        Outcome::FramedProvider,
    ];

    /// The role the subject is rated in.
    pub const fn role(self) -> Role {
        match self {
            Outcome::Delivered | Outcome::Failed | Outcome::TimedOut | Outcome::CaughtCheating => {
                Role::Provider
            }
            Outcome::Paid | Outcome::DidNotPay | Outcome::FramedProvider => Role::Client,
        }
    }

    /// True for good behaviour.
    pub const fn is_positive(self) -> bool {
        matches!(self, Outcome::Delivered | Outcome::Paid)
    }

    /// The severity class.
    pub const fn severity(self) -> Severity {
        match self {
            Outcome::Delivered | Outcome::Paid => Severity::Positive,
            Outcome::Failed | Outcome::TimedOut => Severity::Minor,
            Outcome::CaughtCheating | Outcome::DidNotPay | Outcome::FramedProvider => {
                Severity::Major
            }
        }
    }
}

/// One feedback event (unsigned).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Feedback {
    /// Who reports (a counterparty, or a referee for verdicts).
    pub reporter: NodeId,
    /// Who is rated.
    pub subject: NodeId,
    /// What happened; fixes the subject's role.
    pub outcome: Outcome,
    /// The job this is about; one feedback per (job, reporter, subject).
    pub job: JobId,
    /// The value at stake in the job (payment or escrow), in base units.
    pub value: Amount,
    /// The epoch the job settled in.
    pub epoch: Epoch,
}

impl Feedback {
    /// The bytes that are signed: the canonical encoding.
    pub fn signing_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Signs as the reporter. The keypair should be the reporter's; any
    /// other key produces feedback that fails verification.
    pub fn sign(self, reporter_key: &Keypair) -> SignedFeedback {
        let signature = reporter_key.sign(FEEDBACK_DOMAIN, &self.signing_bytes());
        SignedFeedback {
            feedback: self,
            signature,
        }
    }
}

/// Feedback with the reporter's signature.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SignedFeedback {
    /// The event.
    pub feedback: Feedback,
    /// The reporter's signature over [`Feedback::signing_bytes`] under [`FEEDBACK_DOMAIN`].
    pub signature: Signature,
}

impl SignedFeedback {
    /// Checks the signature against the reporter's key.
    pub fn verify(&self) -> Result<(), ReputationError> {
        let reporter = self.feedback.reporter;
        reporter
            .public_key()
            .verify(
                FEEDBACK_DOMAIN,
                &self.feedback.signing_bytes(),
                &self.signature,
            )
            .map_err(|source| ReputationError::BadSignature { reporter, source })
    }

    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes untrusted bytes (canonical only, at most
    /// [`MAX_SIGNED_FEEDBACK_LEN`]). Does not verify the signature.
    pub fn from_bytes(bytes: &[u8]) -> Result<SignedFeedback, ReputationError> {
        Ok(decode(bytes, MAX_SIGNED_FEEDBACK_LEN)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idlegrid_primitives::Seed;

    fn sample() -> (Keypair, Feedback) {
        let k = Keypair::from_seed(&Seed::from_u64(1));
        let s = Keypair::from_seed(&Seed::from_u64(2));
        let fb = Feedback {
            reporter: k.node_id(),
            subject: s.node_id(),
            outcome: Outcome::Delivered,
            job: JobId(Digest::hash(Domain::new("idlegrid/test/job"), b"j")),
            value: Amount::new(100),
            epoch: Epoch::new(3),
        };
        (k, fb)
    }

    #[test]
    fn sign_verify_round_trip() {
        let (k, fb) = sample();
        let signed = fb.sign(&k);
        signed.verify().unwrap();
        let bytes = signed.to_bytes();
        assert!(bytes.len() <= MAX_SIGNED_FEEDBACK_LEN);
        assert_eq!(SignedFeedback::from_bytes(&bytes).unwrap(), signed);
        let mut tampered = signed;
        tampered.feedback.value = Amount::new(101);
        assert!(matches!(
            tampered.verify(),
            Err(ReputationError::BadSignature { .. })
        ));
        assert!(SignedFeedback::from_bytes(&bytes[..10]).is_err());
    }

    #[test]
    fn roles_and_severity() {
        for o in Outcome::ALL {
            assert_eq!(o.is_positive(), o.severity() == Severity::Positive);
        }
        assert_eq!(Outcome::Paid.role(), Role::Client);
        assert_eq!(Outcome::CaughtCheating.role(), Role::Provider);
    }
}
