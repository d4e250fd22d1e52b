//! The one mapping from an entrapment verdict to reputation feedback.
//!
//! Every settled verification round emits [`Effect::Reputation`]s; the
//! marketplace application, the simulator's observers and the examples all
//! turn them into [`idlegrid_reputation::Feedback`] through
//! [`reputation_feedback`], so the same verdict can never count differently
//! in two places.
//!
//! | entrap verdict | reputation outcome | reporter |
//! |---|---|---|
//! | `Delivered` | `Delivered` | client |
//! | `CaughtCheating` | `CaughtCheating` | client |
//! | `NoShow` (never bonded) | `TimedOut` | client |
//! | `Defaulted` (bonded, then silent) | `TimedOut` | client |
//! | `HonestTraps` | `Paid` | provider |
//! | `Framed` | `FramedProvider` | provider |
//! | `Unresponsive` (client silent) | `DidNotPay` | provider |
//!
//! `Defaulted` is a missed deadline, not a failed execution: the provider
//! went silent after bonding, which is exactly what `TimedOut` records
//! (`Failed` is for an error the provider reported).

use idlegrid_entrap::{Effect, Feedback as Verdict, JobId, Role};
use idlegrid_primitives::{AccountId, Amount, Digest, Domain, Epoch};
use idlegrid_reputation::{Feedback, JobId as RepJobId, Outcome};

const REP_JOB_DOMAIN: Domain = Domain::new("idlegrid/node/reputation-job");

/// The reputation outcome of an entrapment verdict (see the module table).
pub fn reputation_outcome(verdict: Verdict) -> Outcome {
    match verdict {
        Verdict::Delivered => Outcome::Delivered,
        Verdict::CaughtCheating => Outcome::CaughtCheating,
        Verdict::NoShow | Verdict::Defaulted => Outcome::TimedOut,
        Verdict::HonestTraps => Outcome::Paid,
        Verdict::Framed => Outcome::FramedProvider,
        Verdict::Unresponsive => Outcome::DidNotPay,
    }
}

/// The reputation job id of round `job` with `provider`: one id per
/// (round, provider), so two lots never share a feedback slot.
pub fn reputation_job(job: JobId, provider: &AccountId) -> RepJobId {
    RepJobId(Digest::of(REP_JOB_DOMAIN, &(job, provider)))
}

/// The feedback a settled round's `effect` gives, or `None` if `effect` is
/// not a reputation effect. The round's counterparty reports: the client
/// for the provider's conduct, the provider for the client's. `value` (the
/// round's escrow) weighs the feedback; it is at least 1.
pub fn reputation_feedback(
    effect: &Effect,
    client: AccountId,
    provider: AccountId,
    value: Amount,
    epoch: Epoch,
) -> Option<Feedback> {
    let Effect::Reputation {
        job,
        subject,
        role,
        feedback,
    } = *effect
    else {
        return None;
    };
    let reporter = match role {
        Role::Provider => client,
        Role::Client => provider,
    };
    Some(Feedback {
        reporter: reporter.node(),
        subject: subject.node(),
        outcome: reputation_outcome(feedback),
        job: reputation_job(job, &provider),
        value: value.max(Amount::new(1)),
        epoch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use idlegrid_primitives::Keypair;

    fn acct(i: u8) -> AccountId {
        Keypair::from_seed(&idlegrid_primitives::Seed::from_u64(u64::from(i))).account_id()
    }

    #[test]
    fn counterparty_reports() {
        let (c, p) = (acct(1), acct(2));
        let e = Effect::Reputation {
            job: JobId::new(7),
            subject: p,
            role: Role::Provider,
            feedback: Verdict::CaughtCheating,
        };
        let f = reputation_feedback(&e, c, p, Amount::ZERO, Epoch::new(3)).unwrap();
        assert_eq!(f.reporter, c.node());
        assert_eq!(f.subject, p.node());
        assert_eq!(f.outcome, Outcome::CaughtCheating);
        assert_eq!(f.value, Amount::new(1));
        let e = Effect::Reputation {
            job: JobId::new(7),
            subject: c,
            role: Role::Client,
            feedback: Verdict::Framed,
        };
        let f = reputation_feedback(&e, c, p, Amount::new(9), Epoch::new(3)).unwrap();
        assert_eq!(f.reporter, p.node());
        assert_eq!(f.outcome, Outcome::FramedProvider);
    }

    #[test]
    fn silence_after_bonding_is_a_timeout() {
        assert_eq!(reputation_outcome(Verdict::Defaulted), Outcome::TimedOut);
        assert_eq!(reputation_outcome(Verdict::NoShow), Outcome::TimedOut);
    }

    #[test]
    fn other_effects_give_no_feedback() {
        let e = Effect::ReturnStake {
            job: JobId::new(1),
            provider: acct(2),
            amount: Amount::new(5),
        };
        assert!(reputation_feedback(&e, acct(1), acct(2), Amount::new(1), Epoch::ZERO).is_none());
    }
}
