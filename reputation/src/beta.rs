//! Beta reputation with exponential forgetting and a pessimistic prior.
//!
//! ## The model
//!
//! For one identity in one role the book keeps decayed evidence: `α`
//! (weighted good outcomes) and `β` (weighted bad outcomes), both
//! [`Evidence`] in micro-events. Following Jøsang's beta reputation system,
//! the reputation is the mean of a Beta posterior,
//!
//! ```text
//! score = α / (α + β + b₀)
//! ```
//!
//! i.e. the prior is the improper `Beta(0, b₀)` with `b₀ =`
//! [`BetaParams::prior_failures`] pseudo-failures.
//!
//! **Why a prior mean of zero (anti-whitewashing).** Identities are free. If
//! a fresh identity started at a prior mean `m₀ > 0`, any identity whose
//! record fell below `m₀` would gain by discarding it and re-joining
//! (whitewashing). With a prior mean of zero a fresh identity scores `0`,
//! the minimum, so it never starts above anyone, and dropping an identity
//! never raises a score. Newcomers "pay their dues" (Friedman–Resnick): with
//! `b₀ = 2`, eight unit-weight successes give `8/10 = 0.8`, Golem's default
//! minimum, and BOINC's "ten valid results" gives `0.83`.
//!
//! **Forgetting.** Once per epoch all evidence is multiplied by the
//! forgetting factor `λ ∈ [0, 1]`. Decay is lazy: each state stores the epoch
//! it was last brought up to date, and a read or write at epoch `e` applies
//! `λ^(e - updated)` once (`O(log k)` integer multiplies for a gap of `k`
//! epochs, `O(1)` in the common case), so advancing an epoch costs nothing
//! per identity. As `α, β → 0` the score moves to the prior mean `0`.
//!
//! **Rounding.** `α' = floor(λᵏ·α)`, `β' = floor(λᵏ·β)`. Because flooring
//! can shrink `β` by up to one unit more than `α`, decay could otherwise nudge
//! a score *up*; [`BetaParams::validate`] therefore requires
//! `(1 - λ)·b₀ >= 1` micro-event (or `λ = 1`), which makes "decay never
//! raises a score" hold exactly.
//!
//! ## Credibility (Sarmenta)
//!
//! For the entrap optimizer, [`BetaState::credibility`] estimates the
//! probability that the provider's next result is correct. Sarmenta's
//! spot-checking with blacklisting bounds the error rate of a worker that
//! survived `k` spot checks, in a population with faulty fraction `f`, by
//! `f / ((1 - f)·k)`. Taking `k = α` (decayed successful, trap-checked
//! deliveries) and discounting by the clean fraction `α / (α + β)`:
//!
//! ```text
//! credibility = max(1 - f,  max(0, 1 - f / ((1 - f)·α)) · α / (α + β))
//! ```
//!
//! A fresh identity gets `1 - f` (a random member of the population), the
//! minimum, so whitewashing never raises credibility either. Both terms are
//! monotone: more good evidence never lowers it, more bad never raises it.

use core::fmt;

use idlegrid_primitives::Epoch;
use serde::{Deserialize, Serialize};

use crate::error::ReputationError;
use crate::score::Score;

/// Weighted evidence in micro-events: one unit-weight outcome is
/// [`Evidence::EVENT`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Evidence(u64);

impl Evidence {
    /// No evidence.
    pub const ZERO: Evidence = Evidence(0);
    /// One unit-weight event (10^6 micro-events).
    pub const EVENT: Evidence = Evidence(1_000_000);

    /// From micro-events.
    pub const fn from_micros(m: u64) -> Self {
        Self(m)
    }
    /// Whole events, checked.
    pub fn from_events(events: u64) -> Option<Self> {
        events.checked_mul(Self::EVENT.0).map(Self)
    }
    /// Micro-events.
    pub const fn micros(self) -> u64 {
        self.0
    }
    /// `self + rhs`, or [`ReputationError::EvidenceOverflow`].
    pub fn checked_add(self, rhs: Evidence) -> Result<Evidence, ReputationError> {
        self.0
            .checked_add(rhs.0)
            .map(Evidence)
            .ok_or(ReputationError::EvidenceOverflow)
    }
    /// `floor(self · factor)`.
    pub const fn scale(self, factor: Score) -> Evidence {
        Evidence(factor.mul_u64(self.0))
    }
}

impl fmt::Debug for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}ev", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

/// Parameters of the beta model. Validate with [`BetaParams::validate`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct BetaParams {
    /// Forgetting factor `λ` applied once per epoch.
    pub forgetting: Score,
    /// Prior pseudo-failures `b₀ > 0`.
    pub prior_failures: Evidence,
    /// Assumed fraction `f < 1` of faulty providers (Sarmenta's `f`).
    pub assumed_faulty: Score,
}

impl Default for BetaParams {
    /// `λ = 0.98` per epoch (half-life ≈ 34 epochs), `b₀ = 2` events, `f = 0.2`.
    fn default() -> Self {
        Self {
            forgetting: Score::from_ppm(980_000).expect("constant in range"),
            prior_failures: Evidence::from_micros(2 * Evidence::EVENT.micros()),
            assumed_faulty: Score::from_ppm(200_000).expect("constant in range"),
        }
    }
}

impl BetaParams {
    /// From floats given by people (scenario files, CLIs): `forgetting` and
    /// `assumed_faulty` in `[0, 1]`, `prior_failures` in events, in
    /// `(0, 10^6]`. NaN, infinities and out-of-range values are
    /// [`ReputationError::InvalidFloat`]; the result is validated.
    pub fn from_f64(
        forgetting: f64,
        prior_failures: f64,
        assumed_faulty: f64,
    ) -> Result<Self, ReputationError> {
        if !prior_failures.is_finite() || prior_failures <= 0.0 || prior_failures > 1e6 {
            return Err(ReputationError::InvalidFloat {
                value: prior_failures,
            });
        }
        let params = Self {
            forgetting: Score::try_from_f64(forgetting)?,
            // <= 10^12 micro-events: exact enough, and `as` truncates.
            prior_failures: Evidence::from_micros((prior_failures * 1e6) as u64),
            assumed_faulty: Score::try_from_f64(assumed_faulty)?,
        };
        params.validate()?;
        Ok(params)
    }

    /// Checks `b₀ > 0`, `f < 1`, and `λ = 1` or `(1 - λ)·b₀ >= 1` micro-event
    /// (see the module docs on rounding).
    pub fn validate(&self) -> Result<(), ReputationError> {
        if self.prior_failures == Evidence::ZERO {
            return Err(ReputationError::InvalidParams(
                "prior_failures must be positive",
            ));
        }
        if self.assumed_faulty >= Score::ONE {
            return Err(ReputationError::InvalidParams(
                "assumed_faulty must be below one",
            ));
        }
        if self.forgetting != Score::ONE
            && self
                .forgetting
                .complement()
                .mul_u64(self.prior_failures.micros())
                == 0
        {
            return Err(ReputationError::InvalidParams(
                "(1 - forgetting) * prior_failures must be at least one micro-event",
            ));
        }
        Ok(())
    }
}

/// Decayed evidence about one identity in one role.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct BetaState {
    /// Good outcomes `α`, decayed to `updated`.
    pub positive: Evidence,
    /// Bad outcomes `β`, decayed to `updated`.
    pub negative: Evidence,
    /// The epoch the evidence was last decayed to.
    pub updated: Epoch,
}

impl BetaState {
    /// A fresh state at `epoch`: no evidence.
    pub const fn fresh(epoch: Epoch) -> Self {
        Self {
            positive: Evidence::ZERO,
            negative: Evidence::ZERO,
            updated: epoch,
        }
    }

    /// The state decayed to `epoch` (unchanged if `epoch <= updated`).
    pub fn decayed_to(self, epoch: Epoch, forgetting: Score) -> Self {
        if epoch <= self.updated {
            return self;
        }
        let factor = forgetting.pow(epoch.get() - self.updated.get());
        Self {
            positive: self.positive.scale(factor),
            negative: self.negative.scale(factor),
            updated: epoch,
        }
    }

    /// Adds evidence (positive or negative) without decaying.
    pub fn add(self, positive: bool, weight: Evidence) -> Result<Self, ReputationError> {
        let mut s = self;
        if positive {
            s.positive = s.positive.checked_add(weight)?;
        } else {
            s.negative = s.negative.checked_add(weight)?;
        }
        Ok(s)
    }

    /// `α / (α + β + b₀)`.
    pub fn score(&self, params: &BetaParams) -> Score {
        let a = u128::from(self.positive.micros());
        let den =
            a + u128::from(self.negative.micros()) + u128::from(params.prior_failures.micros());
        Score::ratio(a, den).expect("num <= den and den >= b0 > 0")
    }

    /// Sarmenta-style credibility; see the module docs.
    pub fn credibility(&self, params: &BetaParams) -> Score {
        let f = params.assumed_faulty;
        let floor = f.complement();
        let a = u128::from(self.positive.micros());
        let b = u128::from(self.negative.micros());
        if a == 0 {
            return floor;
        }
        // err = f / ((1 - f) k), k = a / EVENT  =>  err = f·EVENT / ((1 - f)·a).
        let err = Score::ratio_saturating(
            u128::from(f.raw()) * u128::from(Evidence::EVENT.micros()),
            u128::from(floor.raw()) * a,
        );
        let clean = Score::ratio(a, a + b).expect("a <= a + b, a > 0");
        floor.max(err.complement().mul(clean))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(n: u64) -> Evidence {
        Evidence::from_events(n).unwrap()
    }

    #[test]
    fn fresh_is_zero_and_dues_are_paid() {
        let p = BetaParams::default();
        let s = BetaState::fresh(Epoch::ZERO);
        assert_eq!(s.score(&p), Score::ZERO);
        assert_eq!(s.credibility(&p).to_ppm(), 800_000);
        let s8 = s.add(true, ev(8)).unwrap();
        assert_eq!(s8.score(&p).to_ppm(), 800_000); // 8/10
        let s20 = s.add(true, ev(20)).unwrap();
        assert!(s20.credibility(&p).to_ppm() >= 987_000); // 1 - 0.2/(0.8·20)
    }

    #[test]
    fn decay_moves_toward_prior() {
        let p = BetaParams::default();
        let s = BetaState::fresh(Epoch::ZERO)
            .add(true, ev(50))
            .unwrap()
            .add(false, ev(3))
            .unwrap();
        let later = s.decayed_to(Epoch::new(10), p.forgetting);
        assert!(later.score(&p) < s.score(&p));
        let much_later = s.decayed_to(Epoch::new(100_000), p.forgetting);
        assert_eq!(much_later.score(&p), Score::ZERO);
        assert_eq!(s.decayed_to(Epoch::ZERO, p.forgetting), s);
    }

    #[test]
    fn params_validation() {
        let d = BetaParams::default();
        assert!(d.validate().is_ok());
        let no_prior = BetaParams {
            prior_failures: Evidence::ZERO,
            ..d
        };
        assert!(no_prior.validate().is_err());
        let all_faulty = BetaParams {
            assumed_faulty: Score::ONE,
            ..d
        };
        assert!(all_faulty.validate().is_err());
        let rounding_unsafe = BetaParams {
            forgetting: Score::from_raw(Score::ONE.raw() - 1).unwrap(),
            prior_failures: Evidence::from_micros(1),
            ..d
        };
        assert!(rounding_unsafe.validate().is_err());
        let no_decay = BetaParams {
            forgetting: Score::ONE,
            ..rounding_unsafe
        };
        assert!(no_decay.validate().is_ok());
        assert!(BetaParams::from_f64(0.98, 2.0, 0.2).is_ok());
        for bad in [f64::NAN, f64::INFINITY, -1.0, 0.0] {
            assert!(BetaParams::from_f64(0.98, bad, 0.2).is_err());
            assert!(BetaParams::from_f64(bad, 2.0, 0.2).is_err() || bad == 0.0);
            assert!(BetaParams::from_f64(0.98, 2.0, bad).is_err() || bad == 0.0);
        }
    }
}
