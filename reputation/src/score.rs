//! [`Score`]: an unsigned binary fixed-point number in `[0, 1]`.
//!
//! Everything that can feed replicated state (reputation scores, credibility,
//! forgetting factors, EigenTrust vectors) is computed in integers so that
//! every node gets the same bits. A score is `raw / 2^60` with
//! `0 <= raw <= 2^60`; the binary scale makes a product a 128-bit multiply
//! and a shift.
//!
//! **Rounding.** Every operation rounds toward zero (floor): `a·b` is
//! `floor(a_raw·b_raw / 2^60)`, `num/den` is `floor(num·2^60 / den)`. Floors
//! are monotone, so every law that holds for the real-valued formula and is
//! monotone in its inputs also holds for the fixed-point one.
//!
//! Floats appear only at the edges: [`Score::try_from_f64`] validates
//! caller-supplied parameters (rejecting NaN, infinities and out-of-range
//! values) and [`Score::to_f64`] is for reports.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ReputationError;

/// Number of fractional bits of a [`Score`].
pub const SCORE_BITS: u32 = 60;
const ONE_RAW: u64 = 1 << SCORE_BITS;

/// A number in `[0, 1]` as fixed point `raw / 2^60`; see the module docs
/// for the rounding rule.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct Score(u64);

/// Decoding checks the range, so no `Score` above one can exist.
impl TryFrom<u64> for Score {
    type Error = ReputationError;
    fn try_from(raw: u64) -> Result<Score, ReputationError> {
        Score::from_raw(raw).ok_or(ReputationError::InvalidParams("score above one"))
    }
}

impl From<Score> for u64 {
    fn from(s: Score) -> u64 {
        s.0
    }
}

impl Score {
    /// Zero.
    pub const ZERO: Score = Score(0);
    /// One.
    pub const ONE: Score = Score(ONE_RAW);
    /// One half.
    pub const HALF: Score = Score(ONE_RAW / 2);

    /// From the raw fixed-point value, or `None` above [`Score::ONE`].
    pub const fn from_raw(raw: u64) -> Option<Score> {
        if raw <= ONE_RAW {
            Some(Score(raw))
        } else {
            None
        }
    }

    /// The raw fixed-point value (`self = raw / 2^60`).
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// From parts per million, or `None` above one million.
    pub const fn from_ppm(ppm: u32) -> Option<Score> {
        if ppm > 1_000_000 {
            return None;
        }
        Some(Score(((ppm as u128 * ONE_RAW as u128) / 1_000_000) as u64))
    }

    /// Parts per million, rounded to nearest (for reports and thresholds
    /// given by people; `from_ppm(x).to_ppm() == x`).
    pub const fn to_ppm(self) -> u32 {
        ((self.0 as u128 * 1_000_000 + (ONE_RAW as u128 / 2)) >> SCORE_BITS) as u32
    }

    /// `floor(num / den)` for `num <= den`, `den > 0`; `None` otherwise.
    ///
    /// Exact for `num < 2^67`; larger operands are first shifted right by
    /// the same amount (deterministic, error below `2^-66`).
    pub fn ratio(num: u128, den: u128) -> Option<Score> {
        if den == 0 || num > den {
            return None;
        }
        let bits = 128 - num.leading_zeros();
        let (num, den) = if bits > 67 {
            let s = bits - 67;
            (num >> s, den >> s)
        } else {
            (num, den)
        };
        // num < 2^67 so num << 60 < 2^127; den >= num > 0 unless num == 0.
        if num == 0 {
            return Some(Score::ZERO);
        }
        let q = (num << SCORE_BITS) / den;
        Some(Score(q as u64))
    }

    /// Like [`Score::ratio`] but saturating at one for `num > den` and
    /// giving one for `den == 0`.
    pub fn ratio_saturating(num: u128, den: u128) -> Score {
        if num >= den {
            return Score::ONE;
        }
        Score::ratio(num, den).unwrap_or(Score::ONE)
    }

    /// `floor(self · other)`.
    pub const fn mul(self, other: Score) -> Score {
        Score(((self.0 as u128 * other.0 as u128) >> SCORE_BITS) as u64)
    }

    /// `floor(x · self)` for an integer `x`.
    pub const fn mul_u64(self, x: u64) -> u64 {
        ((x as u128 * self.0 as u128) >> SCORE_BITS) as u64
    }

    /// `1 - self`.
    pub const fn complement(self) -> Score {
        Score(ONE_RAW - self.0)
    }

    /// `self - other`, saturating at zero.
    pub const fn saturating_sub(self, other: Score) -> Score {
        Score(self.0.saturating_sub(other.0))
    }

    /// `self + other`, saturating at one.
    pub const fn saturating_add(self, other: Score) -> Score {
        let s = self.0 + other.0; // both <= 2^60: no u64 overflow
        if s > ONE_RAW { Score::ONE } else { Score(s) }
    }

    /// `self^k` by repeated squaring, flooring after every multiply.
    /// `self^0 = 1`.
    pub fn pow(self, mut k: u64) -> Score {
        let mut acc = Score::ONE;
        let mut base = self;
        while k > 0 {
            if k & 1 == 1 {
                acc = acc.mul(base);
                if acc == Score::ZERO {
                    break;
                }
            }
            k >>= 1;
            if k > 0 {
                base = base.mul(base);
            }
        }
        acc
    }

    /// From a float in `[0, 1]`, for parameters given by people. NaN,
    /// infinities and values outside `[0, 1]` are
    /// [`ReputationError::InvalidFloat`]. Rounds down.
    pub fn try_from_f64(x: f64) -> Result<Score, ReputationError> {
        if !x.is_finite() || !(0.0..=1.0).contains(&x) {
            return Err(ReputationError::InvalidFloat { value: x });
        }
        // x * 2^60 is exact in binary floating point; `as` truncates.
        let raw = (x * ONE_RAW as f64) as u64;
        Ok(Score(raw.min(ONE_RAW)))
    }

    /// As a float, for reports only (never feed this back into state).
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / ONE_RAW as f64
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ppm = self.to_ppm();
        write!(f, "{}.{:06}", ppm / 1_000_000, ppm % 1_000_000)
    }
}

impl fmt::Debug for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Score({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_and_ppm() {
        assert_eq!(Score::from_ppm(1_000_000), Some(Score::ONE));
        assert_eq!(Score::from_ppm(1_000_001), None);
        assert_eq!(Score::ONE.to_ppm(), 1_000_000);
        assert_eq!(Score::HALF.to_ppm(), 500_000);
        assert_eq!(Score::from_raw(ONE_RAW + 1), None);
        assert_eq!(Score::HALF.to_string(), "0.500000");
    }

    #[test]
    fn ppm_round_trips() {
        for ppm in (0..=1_000_000).step_by(997).chain([1, 999_999, 1_000_000]) {
            assert_eq!(Score::from_ppm(ppm).unwrap().to_ppm(), ppm);
        }
    }

    #[test]
    fn ratio_floors_and_rejects() {
        assert_eq!(Score::ratio(1, 2), Some(Score::HALF));
        assert_eq!(Score::ratio(3, 2), None);
        assert_eq!(Score::ratio(0, 0), None);
        assert_eq!(Score::ratio(u128::MAX, u128::MAX), Some(Score::ONE));
        assert_eq!(
            Score::ratio(u128::MAX / 2, u128::MAX),
            Some(Score::HALF.saturating_sub(Score(1)))
        );
        assert_eq!(Score::ratio_saturating(5, 0), Score::ONE);
    }

    #[test]
    fn pow_is_floor_and_monotone() {
        let l = Score::from_ppm(900_000).unwrap();
        assert_eq!(l.pow(0), Score::ONE);
        assert_eq!(l.pow(1), l);
        assert!(l.pow(2) <= l.mul(l));
        assert_eq!(l.pow(u64::MAX), Score::ZERO);
        assert_eq!(Score::ONE.pow(u64::MAX), Score::ONE);
        let mut prev = Score::ONE;
        for k in 0..200 {
            let p = l.pow(k);
            assert!(p <= prev);
            prev = p;
        }
    }

    #[test]
    fn floats_are_validated() {
        assert!(Score::try_from_f64(f64::NAN).is_err());
        assert!(Score::try_from_f64(f64::INFINITY).is_err());
        assert!(Score::try_from_f64(-0.1).is_err());
        assert!(Score::try_from_f64(1.5).is_err());
        assert_eq!(Score::try_from_f64(0.5).unwrap(), Score::HALF);
        assert_eq!(Score::try_from_f64(1.0).unwrap(), Score::ONE);
    }
}
