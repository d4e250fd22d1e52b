//! Client valuations: each client's own limit price per compute-second,
//! drawn once per client from a distribution and the run's seed.
//!
//! The simulator only configures each client node with its limit; the
//! client node seals it in its bids and decides on its own.
//!
//! ```
//! use idlegrid_sim::marketplace::valuation::Valuation;
//! use rand::SeedableRng;
//! let v = Valuation::Uniform { min: 6_000, max: 14_000 };
//! v.check().unwrap();
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
//! let limits = v.draw_all(4, &mut rng);
//! assert!(limits.iter().all(|p| (6_000..=14_000).contains(p)));
//! assert_eq!(v.upper(), 14_000);
//! assert!(Valuation::Uniform { min: 9, max: 3 }.check().is_err());
//! ```

use rand::Rng;

/// Largest limit price a valuation may produce (per compute-second).
pub const MAX_LIMIT: u128 = 1 << 50;

/// Largest `sigma` of a log-normal valuation.
pub const MAX_SIGMA: f64 = 4.0;

/// How clients' limit prices are distributed. Every continuous
/// distribution is clamped to `min..=max` and rounded to whole units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Valuation {
    /// Every client has the same limit (no demand elasticity).
    Fixed(u128),
    /// Uniform in `min..=max`.
    Uniform {
        /// Lowest limit.
        min: u128,
        /// Highest limit.
        max: u128,
    },
    /// Normal with `mean` and `std_dev`, clamped to `min..=max`.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation (positive).
        std_dev: f64,
        /// Clamp below.
        min: u128,
        /// Clamp above.
        max: u128,
    },
    /// Log-normal with `median` (`e^mu`) and `sigma` (of the log),
    /// clamped to `min..=max`.
    LogNormal {
        /// Median.
        median: f64,
        /// Standard deviation of the logarithm, in `(0, MAX_SIGMA]`.
        sigma: f64,
        /// Clamp below.
        min: u128,
        /// Clamp above.
        max: u128,
    },
}

impl Valuation {
    /// The limit range `(min, max)` every drawn value lies in.
    pub fn bounds(&self) -> (u128, u128) {
        match *self {
            Valuation::Fixed(p) => (p, p),
            Valuation::Uniform { min, max }
            | Valuation::Normal { min, max, .. }
            | Valuation::LogNormal { min, max, .. } => (min, max),
        }
    }

    /// The highest limit any client can have.
    pub fn upper(&self) -> u128 {
        self.bounds().1
    }

    /// Checks the parameters: `Err((field, reason))` names the field
    /// (relative to the valuation) and the valid range.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let (min, max) = self.bounds();
        if min == 0 || min > MAX_LIMIT {
            return Err(("min", format!("must be in 1..={MAX_LIMIT}, got {min}")));
        }
        if max < min || max > MAX_LIMIT {
            return Err(("max", format!("must be in {min}..={MAX_LIMIT}, got {max}")));
        }
        let inside = |v: f64| v.is_finite() && v >= min as f64 && v <= max as f64;
        match *self {
            Valuation::Fixed(_) | Valuation::Uniform { .. } => Ok(()),
            Valuation::Normal { mean, std_dev, .. } => {
                if !inside(mean) {
                    return Err(("mean", format!("must be in {min}..={max}, got {mean}")));
                }
                if !(std_dev.is_finite() && std_dev > 0.0 && std_dev <= max as f64) {
                    return Err((
                        "std_dev",
                        format!("must be in (0, {max}] (at most `max`), got {std_dev}"),
                    ));
                }
                Ok(())
            }
            Valuation::LogNormal { median, sigma, .. } => {
                if !inside(median) {
                    return Err(("median", format!("must be in {min}..={max}, got {median}")));
                }
                if !(sigma.is_finite() && sigma > 0.0 && sigma <= MAX_SIGMA) {
                    return Err(("sigma", format!("must be in (0, {MAX_SIGMA}], got {sigma}")));
                }
                Ok(())
            }
        }
    }

    /// One client's limit. [`Valuation::Fixed`] draws nothing from `rng`.
    pub fn draw(&self, rng: &mut impl Rng) -> u128 {
        let (min, max) = self.bounds();
        let clamp = |x: f64| (x.round().max(min as f64).min(max as f64) as u128).clamp(min, max);
        match *self {
            Valuation::Fixed(p) => p,
            Valuation::Uniform { min, max } => rng.gen_range(min..=max),
            Valuation::Normal { mean, std_dev, .. } => clamp(mean + std_dev * std_normal(rng)),
            Valuation::LogNormal { median, sigma, .. } => {
                clamp(median * (sigma * std_normal(rng)).exp())
            }
        }
    }

    /// The limits of `clients` clients, in client order.
    pub fn draw_all(&self, clients: u32, rng: &mut impl Rng) -> Vec<u128> {
        (0..clients).map(|_| self.draw(rng)).collect()
    }
}

/// A standard normal sample (Box–Muller; deterministic given `rng`).
fn std_normal(rng: &mut impl Rng) -> f64 {
    let u1 = 1.0 - rng.r#gen::<f64>(); // (0, 1]
    let u2 = rng.r#gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn draws(v: Valuation, seed: u64) -> Vec<u128> {
        v.draw_all(2_000, &mut ChaCha20Rng::seed_from_u64(seed))
    }

    #[test]
    fn same_seed_same_limits_other_seed_other_limits() {
        let v = Valuation::LogNormal {
            median: 9_000.0,
            sigma: 0.3,
            min: 1_000,
            max: 40_000,
        };
        assert_eq!(draws(v, 1), draws(v, 1));
        assert_ne!(draws(v, 1), draws(v, 2));
    }

    #[test]
    fn draws_follow_the_distribution_and_stay_in_bounds() {
        let v = Valuation::Normal {
            mean: 10_000.0,
            std_dev: 1_000.0,
            min: 1,
            max: 20_000,
        };
        let d = draws(v, 3);
        let mean = d.iter().sum::<u128>() as f64 / d.len() as f64;
        assert!((mean - 10_000.0).abs() < 100.0, "mean {mean}");
        let within = d.iter().filter(|p| p.abs_diff(10_000) <= 1_000).count();
        assert!((1_250..1_480).contains(&within), "{within} within 1 sd");
        let c = Valuation::Normal {
            mean: 10_000.0,
            std_dev: 5_000.0,
            min: 9_000,
            max: 11_000,
        };
        let d = draws(c, 4);
        assert!(d.iter().all(|p| (9_000..=11_000).contains(p)));
        assert!(
            d.contains(&9_000) && d.contains(&11_000),
            "clamped at both ends"
        );
        let l = Valuation::LogNormal {
            median: 8_000.0,
            sigma: 0.5,
            min: 1,
            max: MAX_LIMIT,
        };
        let mut d = draws(l, 5);
        d.sort_unstable();
        let med = d[d.len() / 2] as f64;
        assert!((med - 8_000.0).abs() < 400.0, "median {med}");
    }

    #[test]
    fn fixed_draws_nothing() {
        let mut a = ChaCha20Rng::seed_from_u64(9);
        let b = a.clone();
        assert_eq!(Valuation::Fixed(5).draw_all(10, &mut a), vec![5; 10]);
        assert_eq!(a, b);
    }

    #[test]
    fn bad_parameters_name_the_field() {
        let bad = [
            (Valuation::Fixed(0), "min"),
            (Valuation::Uniform { min: 5, max: 4 }, "max"),
            (
                Valuation::Normal {
                    mean: 3.0,
                    std_dev: 1.0,
                    min: 5,
                    max: 9,
                },
                "mean",
            ),
            (
                Valuation::Normal {
                    mean: 6.0,
                    std_dev: 0.0,
                    min: 5,
                    max: 9,
                },
                "std_dev",
            ),
            (
                Valuation::LogNormal {
                    median: 6.0,
                    sigma: f64::NAN,
                    min: 5,
                    max: 9,
                },
                "sigma",
            ),
        ];
        for (v, field) in bad {
            assert_eq!(v.check().unwrap_err().0, field, "{v:?}");
        }
    }
}
