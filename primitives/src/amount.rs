//! Token amounts: integers with checked arithmetic.

use core::fmt;
use core::iter::Sum;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// An arithmetic error on [`Amount`]s. Overflow and underflow are errors,
/// never wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AmountError {
    /// The result would exceed `u128::MAX`.
    #[error("amount overflow")]
    Overflow,
    /// The result would be negative.
    #[error("amount underflow: {have} is less than {need}")]
    Underflow {
        /// The left operand.
        have: Amount,
        /// The amount that was to be subtracted.
        need: Amount,
    },
    /// Division or ratio by zero.
    #[error("division by zero")]
    DivisionByZero,
}

/// A quantity of the native token, in its smallest unit. No floats, ever.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Amount(u128);

impl Amount {
    /// Zero tokens.
    pub const ZERO: Amount = Amount(0);
    /// The largest representable amount.
    pub const MAX: Amount = Amount(u128::MAX);

    /// Wraps a raw number of base units.
    pub const fn new(units: u128) -> Self {
        Self(units)
    }
    /// The raw number of base units.
    pub const fn get(self) -> u128 {
        self.0
    }
    /// True if zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self + rhs`, or [`AmountError::Overflow`].
    pub fn checked_add(self, rhs: Amount) -> Result<Amount, AmountError> {
        self.0
            .checked_add(rhs.0)
            .map(Amount)
            .ok_or(AmountError::Overflow)
    }

    /// `self - rhs`, or [`AmountError::Underflow`].
    pub fn checked_sub(self, rhs: Amount) -> Result<Amount, AmountError> {
        self.0
            .checked_sub(rhs.0)
            .map(Amount)
            .ok_or(AmountError::Underflow {
                have: self,
                need: rhs,
            })
    }

    /// `self * factor`, or [`AmountError::Overflow`].
    pub fn checked_mul(self, factor: u128) -> Result<Amount, AmountError> {
        self.0
            .checked_mul(factor)
            .map(Amount)
            .ok_or(AmountError::Overflow)
    }

    /// `self / divisor`, rounded down.
    pub fn checked_div(self, divisor: u128) -> Result<Amount, AmountError> {
        self.0
            .checked_div(divisor)
            .map(Amount)
            .ok_or(AmountError::DivisionByZero)
    }

    /// `floor(self * num / den)` without intermediate overflow for
    /// `num <= den` (the common case of taking a share), and an
    /// [`AmountError::Overflow`] only when the true result does not fit.
    pub fn mul_ratio(self, num: u128, den: u128) -> Result<Amount, AmountError> {
        if den == 0 {
            return Err(AmountError::DivisionByZero);
        }
        // self = q*den + r  =>  self*num/den = q*num + r*num/den  (r < den).
        let q = self.0 / den;
        let r = self.0 % den;
        let whole = q.checked_mul(num).ok_or(AmountError::Overflow)?;
        let frac = mul_div_small(r, num, den).ok_or(AmountError::Overflow)?;
        whole
            .checked_add(frac)
            .map(Amount)
            .ok_or(AmountError::Overflow)
    }

    /// A share in basis points (1/10_000), rounded down.
    pub fn bps(self, basis_points: u16) -> Amount {
        // basis_points <= 65_535 and the ratio path never overflows for num
        // <= den; for num > den the result is at most 6.5536 * self, which can
        // only overflow near u128::MAX, so saturate there.
        self.mul_ratio(u128::from(basis_points), 10_000)
            .unwrap_or(Amount::MAX)
    }

    /// `self + rhs`, saturating at [`Amount::MAX`] (for metrics, never for balances).
    pub fn saturating_add(self, rhs: Amount) -> Amount {
        Amount(self.0.saturating_add(rhs.0))
    }

    /// `self - rhs`, saturating at zero (for metrics, never for balances).
    pub fn saturating_sub(self, rhs: Amount) -> Amount {
        Amount(self.0.saturating_sub(rhs.0))
    }

    /// Sums amounts, failing on overflow.
    pub fn checked_sum<I: IntoIterator<Item = Amount>>(iter: I) -> Result<Amount, AmountError> {
        iter.into_iter().try_fold(Amount::ZERO, Amount::checked_add)
    }
}

/// `r * num / den` for `r < den`, exact, via 256-bit-free long multiplication:
/// returns `None` only if the result does not fit in a u128.
fn mul_div_small(r: u128, num: u128, den: u128) -> Option<u128> {
    debug_assert!(r < den);
    if let Some(p) = r.checked_mul(num) {
        return Some(p / den);
    }
    // Binary long multiplication keeping (acc / den, acc % den) so nothing
    // exceeds 2*den. Each step doubles the remainder and conditionally adds r.
    let (mut quot, mut rem) = (0u128, 0u128);
    for bit in (0..128).rev() {
        // (quot, rem) *= 2
        quot = quot.checked_mul(2)?;
        let (r2, carry) = rem.overflowing_add(rem);
        if carry || r2 >= den {
            quot = quot.checked_add(1)?;
            rem = r2.wrapping_sub(den);
        } else {
            rem = r2;
        }
        if (num >> bit) & 1 == 1 {
            // (quot, rem) += r, with r < den
            let (r2, carry) = rem.overflowing_add(r);
            if carry || r2 >= den {
                quot = quot.checked_add(1)?;
                rem = r2.wrapping_sub(den);
            } else {
                rem = r2;
            }
        }
    }
    Some(quot)
}

impl From<u64> for Amount {
    fn from(v: u64) -> Self {
        Amount(u128::from(v))
    }
}

/// Honours width, fill and alignment (`{:>12}`), so amounts line up in tables.
impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({})", self.0)
    }
}

/// Summing with `Iterator::sum` saturates; use [`Amount::checked_sum`] for balances.
impl Sum for Amount {
    fn sum<I: Iterator<Item = Amount>>(iter: I) -> Self {
        iter.fold(Amount::ZERO, Amount::saturating_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_honours_width() {
        assert_eq!(format!("{:>6}", Amount::new(42)), "    42");
    }

    #[test]
    fn overflow_and_underflow_are_errors() {
        assert_eq!(
            Amount::MAX.checked_add(Amount::new(1)),
            Err(AmountError::Overflow)
        );
        assert!(matches!(
            Amount::ZERO.checked_sub(Amount::new(1)),
            Err(AmountError::Underflow { .. })
        ));
        assert_eq!(Amount::MAX.checked_mul(2), Err(AmountError::Overflow));
        assert_eq!(
            Amount::new(5).checked_div(0),
            Err(AmountError::DivisionByZero)
        );
    }

    #[test]
    fn mul_ratio_exact_on_large_values() {
        let big = Amount::MAX;
        assert_eq!(big.mul_ratio(1, 1), Ok(big));
        assert_eq!(big.mul_ratio(1, 2), Ok(Amount::new(u128::MAX / 2)));
        assert_eq!(big.mul_ratio(3, 3), Ok(big));
        assert_eq!(big.mul_ratio(2, 1), Err(AmountError::Overflow));
        // u128::MAX - 12345 = q*10 + r with r = 0 (u128::MAX ends in ...455).
        let v = u128::MAX - 12345;
        assert_eq!(v % 10, 0);
        assert_eq!(Amount::new(v).mul_ratio(7, 10).unwrap().get(), v / 10 * 7);
        // r * num overflows u128 here, exercising the long-multiplication path;
        // the expected value was computed with arbitrary-precision integers.
        let (x, num, den) = (u128::MAX - 3, u128::MAX - 2, u128::MAX - 1);
        assert_eq!(
            Amount::new(x).mul_ratio(num, den).unwrap().get(),
            340282366920938463463374607431768211451
        );
        assert_eq!(Amount::new(1000).bps(2_500), Amount::new(250));
    }
}
