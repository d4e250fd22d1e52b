//! Invariants as plain functions, for tests, the simulator and auditors.
//!
//! Each returns `Ok(())` or [`ReputationError::InvariantViolated`] with a
//! message naming the identity and the broken bound.

use crate::book::ReputationBook;
use crate::eigentrust::TrustVector;
use crate::error::ReputationError;
use crate::feedback::Role;
use crate::score::Score;

fn violated(msg: String) -> Result<(), ReputationError> {
    Err(ReputationError::InvariantViolated(msg))
}

/// Every score and credibility in the book is in `[0, 1]` (the [`Score`]
/// type guarantees `<= 1`; this also checks the evidence is not ahead of the
/// book's epoch), and every bound holds.
pub fn check_scores_bounded(book: &ReputationBook) -> Result<(), ReputationError> {
    let p = book.params();
    if book.identity_count() > p.max_identities {
        return violated(format!(
            "{} identities above the limit",
            book.identity_count()
        ));
    }
    if book.edge_count() > p.max_edges {
        return violated(format!("{} edges above the limit", book.edge_count()));
    }
    for (id, rec) in book.identities() {
        for role in Role::ALL {
            let state = match role {
                Role::Provider => rec.provider,
                Role::Client => rec.client,
            };
            if state.updated > book.epoch() {
                return violated(format!("{id:?} {role:?} evidence is ahead of the book"));
            }
            if book.score(id, role) > Score::ONE {
                return violated(format!("{id:?} {role:?} score above one"));
            }
        }
        if book.credibility(id) > Score::ONE {
            return violated(format!("{id:?} credibility above one"));
        }
    }
    Ok(())
}

/// Anti-whitewashing: no registered identity scores below a fresh identity
/// in any role, nor has lower credibility. Equivalently, a fresh identity
/// never starts above one with a record, and dropping an identity for a new
/// one never raises a score.
pub fn check_fresh_not_above_proven(book: &ReputationBook) -> Result<(), ReputationError> {
    let fresh = book.fresh_score();
    let fresh_cr = book.fresh_credibility();
    for (id, _) in book.identities() {
        for role in Role::ALL {
            let s = book.score(id, role);
            if s < fresh {
                return violated(format!("{id:?} {role:?} score {s} below fresh {fresh}"));
            }
        }
        let cr = book.credibility(id);
        if cr < fresh_cr {
            return violated(format!("{id:?} credibility {cr} below fresh {fresh_cr}"));
        }
    }
    Ok(())
}

/// A trust vector sums to one within `tolerance` (rounding loses at most a
/// few units of `2^-60` per node per iteration).
pub fn check_trust_vector(tv: &TrustVector, tolerance: Score) -> Result<(), ReputationError> {
    let one = u128::from(Score::ONE.raw());
    let sum = tv.raw_sum();
    if sum.abs_diff(one) > u128::from(tolerance.raw()) {
        return violated(format!(
            "trust vector sums to {} (raw {sum}), not one within {tolerance}",
            sum as f64 / one as f64
        ));
    }
    Ok(())
}

/// Runs every book invariant.
pub fn check_book(book: &ReputationBook) -> Result<(), ReputationError> {
    check_scores_bounded(book)?;
    check_fresh_not_above_proven(book)
}
