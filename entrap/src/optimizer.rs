//! The trap-count optimizer: how many traps one provider's lot needs.
//!
//! See the crate docs ("The optimizer") for the model and formulas. This is
//! the one place that uses `f64`: the optimizer is advice the client follows
//! when it *builds* a plan. Its result never enters consensus state — the
//! round verifies commitments, not the number of traps — so floating point
//! cannot make two nodes disagree. Probabilities are evaluated as products
//! of ratios `≤ 1` (relative error about `m · 2^-53`); the unit tests check
//! them against exact rational values on small cases.

use idlegrid_primitives::Amount;
use serde::{Deserialize, Serialize};

use crate::error::EntrapError;
use crate::types::{Bps, MAX_SUBTASKS, MAX_TRAPS, TrapCount};

/// The optimizer's inputs for one provider's lot.
#[derive(Clone, Copy, PartialEq, Debug, Serialize, Deserialize)]
pub struct Params {
    /// Real subtasks given to this provider (`n ≥ 1`).
    pub n: u32,
    /// The provider's cost to compute one subtask honestly (`c`).
    pub cost_per_subtask: Amount,
    /// Pay per subtask, traps included (`p`).
    pub pay_per_subtask: Amount,
    /// The provider's stake bond, lost if caught (`S`).
    pub stake: Amount,
    /// Future income the provider loses with its reputation if caught (`R`);
    /// grows with reputation.
    pub reputation_value: Amount,
    /// Outside value the provider gets per wrong result it delivers (`b`),
    /// e.g. a bribe to corrupt results; zero for a merely lazy provider.
    pub gain_per_corruption: Amount,
    /// Prior probability that the provider is reliable (from reputation),
    /// in `[0, 1]`. Used by the assurance objective.
    pub credibility: f64,
    /// Assurance: the smallest corrupted fraction that must be caught.
    pub min_corrupt_fraction: Bps,
    /// Assurance: the acceptable probability `δ` that a provider which is
    /// faulty (prior `1 − credibility`) corrupts at least
    /// `min_corrupt_fraction` and is not caught, in `(0, 1)`.
    pub miss_probability: f64,
    /// Probability that a trap catches a corrupted answer (`h`): 1 for
    /// precomputed traps, the partner's honesty for cross-check traps.
    pub trap_reliability: f64,
    /// Search limit for `k`.
    pub max_traps: u32,
}

impl Params {
    /// Parameters with the given core quantities and neutral defaults: no
    /// reputation value, no outside gain, credibility 0, catch 10 % corruption
    /// with 99 % probability, precomputed traps, up to [`MAX_TRAPS`] traps.
    pub fn new(n: u32, cost_per_subtask: Amount, pay_per_subtask: Amount, stake: Amount) -> Self {
        Self {
            n,
            cost_per_subtask,
            pay_per_subtask,
            stake,
            reputation_value: Amount::ZERO,
            gain_per_corruption: Amount::ZERO,
            credibility: 0.0,
            min_corrupt_fraction: Bps::new(1_000).expect("constant"),
            miss_probability: 0.01,
            trap_reliability: 1.0,
            max_traps: MAX_TRAPS as u32,
        }
    }

    fn validate(&self) -> Result<(), EntrapError> {
        let bad = |name, reason| Err(EntrapError::InvalidParameter { name, reason });
        if self.n == 0 || self.n as usize > MAX_SUBTASKS {
            return bad("n", "between 1 and MAX_SUBTASKS real subtasks");
        }
        if self.max_traps as usize > MAX_TRAPS
            || (self.n as usize + self.max_traps as usize) > MAX_SUBTASKS
        {
            return bad(
                "max_traps",
                "at most MAX_TRAPS and n + max_traps <= MAX_SUBTASKS",
            );
        }
        if !(0.0..=1.0).contains(&self.credibility) {
            return bad("credibility", "must be in [0, 1]");
        }
        if !(self.miss_probability > 0.0 && self.miss_probability < 1.0) {
            return bad("miss_probability", "must be in (0, 1)");
        }
        if !(self.trap_reliability > 0.0 && self.trap_reliability <= 1.0) {
            return bad("trap_reliability", "must be in (0, 1]");
        }
        if self.min_corrupt_fraction == Bps::ZERO {
            return bad("min_corrupt_fraction", "must be positive");
        }
        Ok(())
    }
}

/// The optimizer's answer: both objectives side by side.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TrapAdvice {
    /// Fewest traps making cheating unprofitable at every corrupted count,
    /// or `None` if no `k ≤ max_traps` does.
    pub deterrence: Option<TrapCount>,
    /// Fewest traps catching a faulty provider with probability `≥ 1 − δ`,
    /// or `None` if no `k ≤ max_traps` does.
    pub assurance: Option<TrapCount>,
    /// The larger of the two reachable objectives (`max_traps` if neither is).
    pub recommended: TrapCount,
    /// The smallest stake with which one reliable trap deters at the
    /// recommended lot size `N = n + recommended`:
    /// `max(0, N (c + b − p) − R + 1)`, exact; `None` on overflow.
    pub deterrent_stake: Option<Amount>,
}

impl TrapAdvice {
    /// Overhead: recommended traps per real subtask.
    pub fn overhead(&self, n: u32) -> f64 {
        f64::from(self.recommended.get()) / f64::from(n.max(1))
    }
}

/// Runs both objectives.
pub fn optimize_traps(params: &Params) -> Result<TrapAdvice, EntrapError> {
    params.validate()?;
    let deterrence = deterrence_traps(params)?;
    let assurance = assurance_traps(params)?;
    let recommended = match (deterrence, assurance) {
        (Some(d), Some(a)) => d.max(a),
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => TrapCount::new(params.max_traps),
    };
    Ok(TrapAdvice {
        deterrence,
        assurance,
        recommended,
        deterrent_stake: deterrent_stake(params, recommended.get().max(1)),
    })
}

/// `max(0, N (c + b) − N p − R + 1)` for `N = n + traps`: the smallest stake
/// for which one reliable trap deters every corrupted count (see the crate
/// docs: with `P_k` concave, the all-corrupted case binds). Exact integers.
pub fn deterrent_stake(params: &Params, traps: u32) -> Option<Amount> {
    let slots = u128::from(params.n) + u128::from(traps);
    let gain = params
        .cost_per_subtask
        .checked_add(params.gain_per_corruption)
        .ok()?
        .checked_mul(slots)
        .ok()?;
    let safe = params
        .pay_per_subtask
        .checked_mul(slots)
        .ok()?
        .checked_add(params.reputation_value)
        .ok()?;
    gain.saturating_sub(safe).checked_add(Amount::new(1)).ok()
}

/// Exact hypergeometric detection probability: `slots` subtasks of which
/// `traps` are traps, `corrupted` chosen uniformly (traps look like real
/// subtasks); the chance that at least one corrupted subtask is a trap,
/// `1 − C(slots − traps, corrupted) / C(slots, corrupted)`.
pub fn detection_probability(slots: u32, traps: u32, corrupted: u32) -> f64 {
    detection_with_reliability(slots, traps, corrupted, 1.0)
}

/// As [`detection_probability`], but each corrupted trap catches the
/// provider only with probability `reliability` (cross-check traps):
/// `1 − E[(1 − h)^X]`, `X` hypergeometric.
///
/// Arguments are clamped to the crate's limits (`slots ≤ MAX_SUBTASKS`,
/// `traps, corrupted ≤ slots`, `reliability` into `[0, 1]`), so any input
/// returns promptly and never panics.
pub fn detection_with_reliability(slots: u32, traps: u32, corrupted: u32, reliability: f64) -> f64 {
    let slots = slots.min(MAX_SUBTASKS as u32);
    let reliability = if reliability.is_nan() {
        0.0
    } else {
        reliability.clamp(0.0, 1.0)
    };
    let mut last = 0.0;
    sweep(
        slots,
        traps.min(slots),
        reliability,
        corrupted.min(slots),
        |_, p| {
            last = p;
            true
        },
    );
    last
}

/// Detection probability as an exact fraction `(num, den)` for small
/// arguments (`None` if an intermediate binomial exceeds `u128`).
pub fn detection_probability_exact(slots: u32, traps: u32, corrupted: u32) -> Option<(u128, u128)> {
    if traps > slots || corrupted > slots {
        return None;
    }
    let den = choose(slots, corrupted)?;
    let miss = choose(slots - traps, corrupted)?;
    Some((den - miss, den))
}

fn choose(n: u32, k: u32) -> Option<u128> {
    if k > n {
        return Some(0);
    }
    let k = k.min(n - k);
    let mut acc: u128 = 1;
    for i in 0..k {
        // acc * (n - i) / (i + 1) is exact at every step.
        acc = acc.checked_mul(u128::from(n - i))? / u128::from(i + 1);
    }
    Some(acc)
}

/// Calls `f(m, P(m))` for `m = 1..=max_m` in order, stopping early when `f`
/// returns false. `P(m)` is the detection probability with `traps` of
/// `slots` and reliability `h`.
fn sweep(slots: u32, traps: u32, h: f64, max_m: u32, mut f: impl FnMut(u32, f64) -> bool) {
    let (n_slots, k) = (f64::from(slots), traps as usize);
    if h >= 1.0 {
        // Q(m) = Π_{i<m} (slots − traps − i) / (slots − i): the miss probability.
        let mut q = 1.0;
        for m in 1..=max_m {
            let i = f64::from(m - 1);
            q *= (f64::from(slots - traps) - i).max(0.0) / (n_slots - i);
            if !f(m, 1.0 - q) {
                return;
            }
        }
        return;
    }
    // dist[x]: probability that x of the first m picks are traps.
    let mut dist = vec![0.0; k + 1];
    dist[0] = 1.0;
    let miss_one = 1.0 - h;
    for m in 1..=max_m {
        let left = n_slots - f64::from(m - 1);
        for x in (0..=k.min(m as usize - 1)).rev() {
            let p_trap = (k - x) as f64 / left;
            let moved = dist[x] * p_trap;
            dist[x] -= moved;
            if x < k {
                dist[x + 1] += moved;
            }
        }
        let mut escape = 0.0;
        let mut pow = 1.0;
        for d in &dist {
            escape += d * pow;
            pow *= miss_one;
        }
        if !f(m, (1.0 - escape).clamp(0.0, 1.0)) {
            return;
        }
    }
}

/// `(n, traps)` clamped to the crate's limits, so the helpers below never
/// overflow or run unboundedly on unvalidated parameters.
fn clamp(params: &Params, traps: u32) -> (u32, u32) {
    (
        params.n.min(MAX_SUBTASKS as u32),
        traps.min(MAX_TRAPS as u32),
    )
}

fn f(a: Amount) -> f64 {
    a.get() as f64
}

/// The expected gain of corrupting `m` of the `n + k` subtasks over doing
/// them all honestly: `m (c + b) − P(m) · ((n + k) p + S + R)`. Cheating is
/// deterred at `m` when this is negative.
pub fn cheating_gain(params: &Params, traps: u32, corrupted: u32) -> f64 {
    let (n, traps) = clamp(params, traps);
    let slots = n + traps;
    let p = detection_with_reliability(slots, traps, corrupted, params.trap_reliability);
    gain(params, slots, corrupted, p)
}

fn gain(params: &Params, slots: u32, m: u32, p_detect: f64) -> f64 {
    let at_risk =
        f64::from(slots) * f(params.pay_per_subtask) + f(params.stake) + f(params.reputation_value);
    f64::from(m) * (f(params.cost_per_subtask) + f(params.gain_per_corruption)) - p_detect * at_risk
}

/// True if `traps` traps make corrupting any `m ∈ 1..=n + traps` a loss.
pub fn deters(params: &Params, traps: u32) -> bool {
    let (n, traps) = clamp(params, traps);
    let slots = n + traps;
    let mut ok = true;
    sweep(slots, traps, params.trap_reliability, slots, |m, p| {
        ok = gain(params, slots, m, p) < 0.0;
        ok
    });
    ok
}

/// Deterrence objective: the smallest `k` with [`deters`], scanning upward.
pub fn deterrence_traps(params: &Params) -> Result<Option<TrapCount>, EntrapError> {
    params.validate()?;
    if params.cost_per_subtask.is_zero() && params.gain_per_corruption.is_zero() {
        return Ok(Some(TrapCount::ZERO)); // nothing to gain by cheating
    }
    let per_subtask_gain = f(params.cost_per_subtask) + f(params.gain_per_corruption);
    for k in 1..=params.max_traps {
        if deters(params, k) {
            return Ok(Some(TrapCount::new(k)));
        }
        // Corrupting everything is caught surely; if even that pays, and
        // each extra slot adds more gain than pay, no larger k helps either.
        let slots = params.n + k;
        if per_subtask_gain >= f(params.pay_per_subtask) && gain(params, slots, slots, 1.0) >= 0.0 {
            return Ok(None);
        }
    }
    Ok(None)
}

/// The corrupted count the assurance objective must catch among `slots`:
/// `⌈min_corrupt_fraction · slots⌉`, at least 1 (exact integer arithmetic).
pub fn assurance_corrupted(params: &Params, slots: u32) -> u32 {
    let bps = u64::from(params.min_corrupt_fraction.get());
    let m = (bps * u64::from(slots)).div_ceil(10_000);
    (m.max(1) as u32).min(slots)
}

/// The miss probability a lot may have: `δ / (1 − credibility)`, since only a
/// faulty provider (prior `1 − credibility`) needs catching.
pub fn allowed_miss(params: &Params) -> f64 {
    let faulty = 1.0 - params.credibility;
    if faulty <= 0.0 {
        1.0
    } else {
        (params.miss_probability / faulty).min(1.0)
    }
}

/// True if `traps` traps catch `assurance_corrupted` corrupted subtasks with
/// probability `≥ 1 − allowed_miss`.
pub fn assures(params: &Params, traps: u32) -> bool {
    let (n, traps) = clamp(params, traps);
    let slots = n + traps;
    let m = assurance_corrupted(params, slots);
    let p = detection_with_reliability(slots, traps, m, params.trap_reliability);
    1.0 - p <= allowed_miss(params)
}

/// Assurance objective: the smallest `k` with [`assures`].
pub fn assurance_traps(params: &Params) -> Result<Option<TrapCount>, EntrapError> {
    params.validate()?;
    Ok((0..=params.max_traps)
        .find(|&k| assures(params, k))
        .map(TrapCount::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_matches_exact_rational() {
        for slots in 1..=40u32 {
            for traps in 0..=slots {
                for m in 0..=slots {
                    let (num, den) = detection_probability_exact(slots, traps, m).unwrap();
                    let exact = num as f64 / den as f64;
                    let got = detection_probability(slots, traps, m);
                    assert!(
                        (exact - got).abs() < 1e-12,
                        "{slots} {traps} {m}: {exact} vs {got}"
                    );
                }
            }
        }
    }

    #[test]
    fn reliability_one_is_plain_hypergeometric_and_dp_agrees() {
        for (s, k, m) in [(10, 2, 3), (50, 5, 10), (7, 7, 1), (30, 0, 5)] {
            let plain = detection_probability(s, k, m);
            let dp = detection_with_reliability(s, k, m, 1.0 - 1e-15);
            assert!((plain - dp).abs() < 1e-9, "{s} {k} {m}");
        }
        // Half-reliable traps catch less, but something.
        let half = detection_with_reliability(50, 5, 10, 0.5);
        assert!(half > 0.0 && half < detection_probability(50, 5, 10));
    }

    #[test]
    fn hand_built_cases() {
        // One trap among 10, one corrupted: caught with probability 1/10.
        assert!((detection_probability(10, 1, 1) - 0.1).abs() < 1e-15);
        // Corrupting every subtask is always caught when there is a trap.
        assert_eq!(detection_probability(10, 1, 10), 1.0);
        assert_eq!(detection_probability(10, 0, 10), 0.0);
        // Lazy provider (b = 0) paid above cost: one trap suffices, since a
        // caught cheater forfeits the whole lot's pay.
        let p = Params::new(100, Amount::new(8), Amount::new(10), Amount::ZERO);
        assert_eq!(deterrence_traps(&p).unwrap(), Some(TrapCount::new(1)));
        // Nothing to gain: no traps needed to deter.
        let z = Params::new(100, Amount::ZERO, Amount::new(10), Amount::ZERO);
        assert_eq!(deterrence_traps(&z).unwrap(), Some(TrapCount::ZERO));
    }

    #[test]
    fn bad_params_are_errors() {
        let mut p = Params::new(0, Amount::new(1), Amount::new(1), Amount::ZERO);
        assert!(optimize_traps(&p).is_err());
        p.n = 10;
        p.credibility = f64::NAN;
        assert!(optimize_traps(&p).is_err());
        p.credibility = 0.5;
        p.miss_probability = 0.0;
        assert!(optimize_traps(&p).is_err());
        p.miss_probability = 0.01;
        p.trap_reliability = 0.0;
        assert!(optimize_traps(&p).is_err());
        p.trap_reliability = 1.0;
        p.max_traps = u32::MAX;
        assert!(optimize_traps(&p).is_err());
    }
}
