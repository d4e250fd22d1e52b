//! Verification over a provider's lifetime: traps allocated across its
//! stream of lots instead of sized lot by lot.
//!
//! Every lot has the same number of slots `N` (what the provider sees). The
//! client draws, with its own seeded RNG, whether a lot carries traps: with
//! probability `q` (the *trap rate*) it carries `k` traps among its `N`
//! slots, otherwise none. A trap-free lot looks exactly like a trap-carrying
//! one, so a provider corrupting `m` slots of a lot is caught in that lot
//! with probability `q · d_k(m)`, `d_k(m) = 1 − C(N − k, m) / C(N, m)`
//! (hypergeometric, exact), and a provider corrupting `m` slots of each of
//! its first `M` lots escapes all of them with probability
//! `Π_j (1 − q_j · d_k(m))` (see [`lifetime_catch_probability`]).
//!
//! **Deterrence, at every lot.** A caught provider forfeits the lot's pay
//! `N p` and its stake `S`; corrupting `m` slots saves `m (c + b)`. The
//! per-lot gain of cheating is `G(m) = m (c + b) − q · d_k(m) · (N p + S)`.
//! Since `d_k` is concave in `m` with `d_k(0) = 0` and `d_k(N) = 1`, `G < 0`
//! for every `m ∈ 1..=N` exactly when `q (N p + S) > N (c + b)`: the
//! **deterrence floor** `q_min` ([`deterrence_floor`]) does not depend on
//! `k`. The client's draws are independent of the provider's history and
//! `q` never drops below `q_min`, so cheating has negative expected profit
//! on the first lot and after any history — a provider that builds a record
//! and then switches to cheating (bait-and-switch) faces the same `q ≥
//! q_min` on every lot.
//!
//! **Assurance.** The target "a persistent cheater at rate `r` is caught
//! within its first `M` lots with probability `≥ 1 − δ`" fixes the rate a
//! new provider gets, `q_new` ([`plan`]). With the credibility discount on,
//! the rate halves after every `h` verified clean lots (trap-carrying lots
//! that passed), never below `q_min`; the lifetime probability accounts for
//! the discount exactly (a cheater that slips past a trap lot earns the
//! discount too).
//!
//! **Bad input.** [`plan`] refuses, before any lot is run, a target it
//! cannot meet: [`LifetimeError::AssuranceUnreachable`] (too few slots or
//! traps for `r` within `M` lots: stake does not buy detection) or
//! [`LifetimeError::DeterrenceUnreachable`] carrying the smallest stake with
//! which the floor fits under the rate cap.
//!
//! As in [`crate::optimizer`], `f64` appears only in advice the client
//! follows when it builds plans; the deterrence floor and the minimum stake
//! are exact integers, and per-lot probabilities have an exact rational
//! form ([`lot_catch_probability_exact`]).

use idlegrid_primitives::{Amount, RngCore};
use serde::{Deserialize, Serialize};

use crate::optimizer::{detection_probability, detection_probability_exact};
use crate::types::{Bps, MAX_SUBTASKS, MAX_TRAPS, TrapCount};

/// One in a million: the unit of [`TrapRate`].
pub const PPM: u32 = 1_000_000;
/// The longest horizon `M` an assurance target may name.
pub const MAX_HORIZON_LOTS: u32 = 10_000;
/// The largest halving period of the credibility discount.
pub const MAX_HALVING_LOTS: u32 = 1_000;

/// The probability that a lot carries traps, in parts per million.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash, Serialize, Deserialize)]
pub struct TrapRate(u32);

impl TrapRate {
    /// Every lot carries traps.
    pub const ALWAYS: TrapRate = TrapRate(PPM);

    /// `ppm` parts per million, if at most [`PPM`].
    pub const fn new(ppm: u32) -> Option<Self> {
        if ppm <= PPM { Some(Self(ppm)) } else { None }
    }

    /// Parts per million.
    pub const fn ppm(self) -> u32 {
        self.0
    }

    /// As a probability.
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / f64::from(PPM)
    }
}

/// Why a lifetime plan was refused.
#[derive(Clone, PartialEq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LifetimeError {
    /// A parameter is out of range.
    #[error("invalid lifetime parameter `{name}`: {reason}")]
    InvalidParameter {
        /// Which.
        name: &'static str,
        /// The range.
        reason: &'static str,
    },
    /// No rate up to the cap and no trap count up to the cap catches a
    /// persistent cheater at rate `r` within `M` lots often enough. Stake
    /// does not help: raise the slots per lot, the trap cap, the rate cap
    /// or the horizon, or lower the confidence.
    #[error(
        "the assurance target cannot be met: at best a cheater is caught within {lots} lots with probability {best:.4} (target {target:.4}); {hint}"
    )]
    AssuranceUnreachable {
        /// The horizon `M`.
        lots: u32,
        /// The best probability reachable within the caps.
        best: f64,
        /// The target `1 − δ`.
        target: f64,
        /// The smallest horizon that would meet it, if one up to
        /// [`MAX_HORIZON_LOTS`] does.
        lots_needed: Option<u32>,
        /// What to change.
        hint: String,
    },
    /// Even at the rate cap a cheater profits on some lot: the stake must
    /// be at least `min_stake`.
    #[error(
        "cheating pays at trap rate {cap_ppm} ppm with stake {stake}: a stake of at least {min_stake} deters it"
    )]
    DeterrenceUnreachable {
        /// The stake given.
        stake: Amount,
        /// The rate cap.
        cap_ppm: u32,
        /// The smallest stake that deters at the cap.
        min_stake: Amount,
    },
    /// An amount overflowed.
    #[error("amounts too large to evaluate exactly")]
    Overflow,
}

/// "A persistent cheater at rate `r` is caught within its first `M` lots
/// with probability `≥ 1 − δ`."
#[derive(Clone, Copy, PartialEq, Debug, Serialize, Deserialize)]
pub struct AssuranceTarget {
    /// The cheating rate `r` to catch (fraction of a lot's slots).
    pub cheat_rate: Bps,
    /// The horizon `M`, in lots.
    pub lots: u32,
    /// `δ`, in `(0, 1)`.
    pub miss_probability: f64,
}

/// The lifetime planner's inputs for one provider.
#[derive(Clone, Copy, PartialEq, Debug, Serialize, Deserialize)]
pub struct LifetimeParams {
    /// Slots per lot, `N` (the same with or without traps).
    pub slots: u32,
    /// The provider's cost per subtask, `c`.
    pub cost_per_subtask: Amount,
    /// Pay per slot, `p` (traps are paid like real subtasks).
    pub pay_per_subtask: Amount,
    /// The provider's stake, lost if caught, `S`.
    pub stake: Amount,
    /// Outside gain per corrupted result, `b`.
    pub gain_per_corruption: Amount,
    /// The assurance target.
    pub target: AssuranceTarget,
    /// At most this many traps in a trap-carrying lot (`1 ≤ k < N`).
    pub max_traps: u32,
    /// At most this trap rate (a cost cap).
    pub max_rate: TrapRate,
    /// Credibility discount: the rate halves after every this many verified
    /// clean lots, never below the deterrence floor; `None` keeps it fixed.
    pub halving_lots: Option<u32>,
}

impl LifetimeParams {
    /// Parameters with these core quantities and defaults: no outside gain;
    /// catch a 10 % cheater within 20 lots with probability 99 %; at most
    /// `N / 4` traps (at least 1); no rate cap; rate halving every 10 clean
    /// lots.
    pub fn new(slots: u32, cost: Amount, pay: Amount, stake: Amount) -> Self {
        Self {
            slots,
            cost_per_subtask: cost,
            pay_per_subtask: pay,
            stake,
            gain_per_corruption: Amount::ZERO,
            target: AssuranceTarget {
                cheat_rate: Bps::new(1_000).expect("constant"),
                lots: 20,
                miss_probability: 0.01,
            },
            max_traps: (slots / 4).max(1),
            max_rate: TrapRate::ALWAYS,
            halving_lots: Some(10),
        }
    }

    fn validate(&self) -> Result<(), LifetimeError> {
        let bad = |name, reason| Err(LifetimeError::InvalidParameter { name, reason });
        if self.slots < 2 || self.slots as usize > MAX_SUBTASKS {
            return bad("slots", "between 2 and MAX_SUBTASKS slots per lot");
        }
        if self.max_traps == 0
            || self.max_traps >= self.slots
            || self.max_traps as usize > MAX_TRAPS
        {
            return bad(
                "max_traps",
                "at least 1, below the slots per lot, at most MAX_TRAPS",
            );
        }
        let t = &self.target;
        if t.cheat_rate == Bps::ZERO {
            return bad("cheat_rate", "must be positive");
        }
        if t.lots == 0 || t.lots > MAX_HORIZON_LOTS {
            return bad("lots", "between 1 and MAX_HORIZON_LOTS lots");
        }
        if !(t.miss_probability > 0.0 && t.miss_probability < 1.0) {
            return bad("miss_probability", "must be in (0, 1)");
        }
        if self.max_rate.ppm() == 0 {
            return bad("max_rate", "must be positive");
        }
        if self
            .halving_lots
            .is_some_and(|h| h == 0 || h > MAX_HALVING_LOTS)
        {
            return bad("halving_lots", "between 1 and MAX_HALVING_LOTS");
        }
        Ok(())
    }

    /// Slots a cheater at rate `r` corrupts per lot: `⌈r N⌉`, at least 1.
    pub fn corrupted(&self) -> u32 {
        let m = (u64::from(self.target.cheat_rate.get()) * u64::from(self.slots)).div_ceil(10_000);
        (m.max(1) as u32).min(self.slots)
    }
}

/// A provider's trap schedule: `k` traps with probability `rate(v)`, where
/// `v` counts the verified clean lots this client saw from it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LifetimePolicy {
    /// Slots per lot, `N`.
    pub slots: u32,
    /// Traps in a trap-carrying lot, `k`.
    pub traps: TrapCount,
    /// The rate of a provider with no record, `q_new`.
    pub new_rate: TrapRate,
    /// The deterrence floor `q_min`: the rate never goes below it.
    pub floor: TrapRate,
    /// The rate halves after every this many clean lots (`None`: fixed).
    pub halving_lots: Option<u32>,
}

impl LifetimePolicy {
    /// The rate after `clean` verified clean lots:
    /// `max(q_min, q_new / 2^⌊clean / h⌋)`.
    pub fn rate(&self, clean: u32) -> TrapRate {
        let halvings = self.halving_lots.map_or(0, |h| clean / h.max(1));
        let q = self.new_rate.ppm().checked_shr(halvings).unwrap_or(0);
        TrapRate(q.max(self.floor.ppm()))
    }

    /// Draws the trap count of the next lot: `k` with probability
    /// `rate(clean)`, else 0 (uniform over millionths of `rng`'s draws).
    pub fn draw(&self, clean: u32, rng: &mut impl RngCore) -> u32 {
        let q = self.rate(clean).ppm();
        // Rejection sampling: uniform in 0..PPM without modulo bias.
        let zone = u32::MAX - u32::MAX % PPM;
        let x = loop {
            let x = rng.next_u32();
            if x < zone {
                break x % PPM;
            }
        };
        if x < q { self.traps.get() } else { 0 }
    }

    /// Expected trap slots per real slot after `clean` clean lots:
    /// `q k / (N − q k)` (traps only; the client's answers double it when
    /// it computes each one).
    pub fn overhead(&self, clean: u32) -> f64 {
        let qk = self.rate(clean).as_f64() * f64::from(self.traps.get());
        qk / (f64::from(self.slots) - qk)
    }
}

/// Per-lot catch probability `q · d_k(m)`.
pub fn lot_catch_probability(slots: u32, traps: u32, rate: TrapRate, corrupted: u32) -> f64 {
    rate.as_f64() * detection_probability(slots, traps, corrupted)
}

/// [`lot_catch_probability`] as an exact fraction, `None` when a binomial
/// overflows `u128`.
pub fn lot_catch_probability_exact(
    slots: u32,
    traps: u32,
    rate: TrapRate,
    corrupted: u32,
) -> Option<(u128, u128)> {
    let (num, den) = detection_probability_exact(slots, traps, corrupted)?;
    Some((
        num.checked_mul(u128::from(rate.ppm()))?,
        den.checked_mul(u128::from(PPM))?,
    ))
}

/// The probability that a provider corrupting `corrupted` slots of each lot
/// is caught within its first `lots` lots under `policy`, the credibility
/// discount included: a dynamic programme over the number of clean
/// trap-carrying lots it has passed (`Π (1 − q_v d)` along every path).
pub fn lifetime_catch_probability(policy: &LifetimePolicy, corrupted: u32, lots: u32) -> f64 {
    let lots = lots.min(MAX_HORIZON_LOTS);
    let d = detection_probability(policy.slots, policy.traps.get(), corrupted);
    // Past this many clean lots the rate is at its floor: merge the states.
    let cap = match policy.halving_lots {
        None => 0,
        Some(h) => (h.max(1).saturating_mul(21)).min(lots) as usize,
    };
    let mut mass = vec![0.0f64; cap + 1];
    mass[0] = 1.0;
    for _ in 0..lots {
        for v in (0..=cap).rev() {
            let here = mass[v];
            if here == 0.0 {
                continue;
            }
            let q = policy.rate(v as u32).as_f64();
            let passed = here * q * (1.0 - d);
            mass[v] = here * (1.0 - q);
            let next = (v + 1).min(cap);
            mass[next] += passed;
        }
    }
    (1.0 - mass.iter().sum::<f64>()).clamp(0.0, 1.0)
}

/// The per-lot expected gain of corrupting `corrupted` of the `N` slots at
/// this rate and trap count: `m (c + b) − q d_k(m) (N p + S)`.
pub fn cheating_gain(params: &LifetimeParams, rate: TrapRate, traps: u32, corrupted: u32) -> f64 {
    let n = params.slots.min(MAX_SUBTASKS as u32);
    let m = corrupted.min(n);
    let f = |a: Amount| a.get() as f64;
    let at_risk = f64::from(n) * f(params.pay_per_subtask) + f(params.stake);
    let gain = f(params.cost_per_subtask) + f(params.gain_per_corruption);
    f64::from(m) * gain - lot_catch_probability(n, traps, rate, m) * at_risk
}

/// Exactly whether `G(m) < 0` for every `m ∈ 1..=N` at this rate and trap
/// count, in integers: `m (c + b) · 10⁶ · C(N, m) < q · (C(N, m) −
/// C(N − k, m)) · (N p + S)`. `None` when a term overflows `u128`.
pub fn deters_exact(params: &LifetimeParams, rate: TrapRate, traps: u32) -> Option<bool> {
    let (_, risk) = stakes(params).ok()?;
    let per = params
        .cost_per_subtask
        .checked_add(params.gain_per_corruption)
        .ok()?
        .get();
    for m in 1..=params.slots {
        let (num, den) = detection_probability_exact(params.slots, traps, m)?;
        let lhs = per
            .checked_mul(u128::from(m))?
            .checked_mul(u128::from(PPM))?
            .checked_mul(den)?;
        let rhs = u128::from(rate.ppm()).checked_mul(num)?.checked_mul(risk)?;
        if lhs >= rhs {
            return Some(false);
        }
    }
    Some(true)
}

/// `(N (c + b), N p + S)`: what corrupting a whole lot gains and risks.
fn stakes(params: &LifetimeParams) -> Result<(u128, u128), LifetimeError> {
    let n = u128::from(params.slots);
    let gain = params
        .cost_per_subtask
        .checked_add(params.gain_per_corruption)
        .and_then(|g| g.checked_mul(n))
        .map_err(|_| LifetimeError::Overflow)?;
    let risk = params
        .pay_per_subtask
        .checked_mul(n)
        .and_then(|p| p.checked_add(params.stake))
        .map_err(|_| LifetimeError::Overflow)?;
    Ok((gain.get(), risk.get()))
}

/// The deterrence floor: the smallest rate `q` (in ppm) with
/// `q (N p + S) > N (c + b)`, exact; `None` when no rate up to 1 deters.
pub fn deterrence_floor(params: &LifetimeParams) -> Result<Option<TrapRate>, LifetimeError> {
    let (gain, risk) = stakes(params)?;
    if gain == 0 {
        return Ok(Some(TrapRate(0)));
    }
    let scaled = gain
        .checked_mul(u128::from(PPM))
        .ok_or(LifetimeError::Overflow)?;
    // q_ppm · risk > scaled  ⇔  q_ppm ≥ ⌊scaled / risk⌋ + 1.
    let q = scaled.checked_div(risk).map_or(u128::MAX, |x| x + 1);
    Ok(u32::try_from(q).ok().and_then(TrapRate::new))
}

/// The smallest stake with which the deterrence floor is at most `cap`:
/// `max(0, ⌊10⁶ N (c + b) / cap⌋ − N p + 1)`, exact.
pub fn min_stake(params: &LifetimeParams, cap: TrapRate) -> Result<Amount, LifetimeError> {
    let (gain, _) = stakes(params)?;
    if gain == 0 {
        return Ok(Amount::ZERO);
    }
    let pay = params
        .pay_per_subtask
        .checked_mul(u128::from(params.slots))
        .map_err(|_| LifetimeError::Overflow)?
        .get();
    let scaled = gain
        .checked_mul(u128::from(PPM))
        .ok_or(LifetimeError::Overflow)?;
    let need = scaled / u128::from(cap.ppm().max(1)) + 1;
    Ok(Amount::new(need.saturating_sub(pay)))
}

/// Plans a provider's lifetime schedule: the deterrence floor, then for
/// each `k ≤ max_traps` the smallest new-provider rate meeting the target
/// (with the discount), keeping the `k` whose new rate costs the fewest
/// traps per lot (`q_new k`; ties to the smaller `k`, which also makes the
/// floor's steady state cheapest).
pub fn plan(params: &LifetimeParams) -> Result<LifetimePolicy, LifetimeError> {
    params.validate()?;
    let cap = params.max_rate;
    let floor = match deterrence_floor(params)? {
        Some(f) if f <= cap => f,
        _ => {
            return Err(LifetimeError::DeterrenceUnreachable {
                stake: params.stake,
                cap_ppm: cap.ppm(),
                min_stake: min_stake(params, cap)?,
            });
        }
    };
    let m = params.corrupted();
    let target = 1.0 - params.target.miss_probability;
    let mut best: Option<(u64, LifetimePolicy)> = None;
    for k in 1..=params.max_traps {
        let policy = |q: TrapRate| LifetimePolicy {
            slots: params.slots,
            traps: TrapCount::new(k),
            new_rate: q,
            floor,
            halving_lots: params.halving_lots,
        };
        let meets = |q: u32| {
            lifetime_catch_probability(&policy(TrapRate(q)), m, params.target.lots) >= target
        };
        if !meets(cap.ppm()) {
            continue;
        }
        // Smallest q in [floor, cap] that meets the target (bisection).
        let (mut lo, mut hi) = (floor.ppm(), cap.ppm());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if meets(mid) { hi = mid } else { lo = mid + 1 }
        }
        let q = if meets(lo) { lo } else { cap.ppm() };
        let cost = u64::from(q) * u64::from(k);
        if best.as_ref().is_none_or(|(c, _)| cost < *c) {
            best = Some((cost, policy(TrapRate(q))));
        }
    }
    best.map(|(_, p)| p)
        .ok_or_else(|| unreachable_assurance(params, floor))
}

/// Whether one trap deters on a job's *tail*: a short lot of `real`
/// real subtasks (fewer than a full lot holds) that the provider recognises
/// by its slot count, so it always carries traps (rate 1) — exact, by
/// [`deters_exact`] on `real + 1` slots. At rate 1 the deterrence condition
/// `S + s p > s (c + b)` does not depend on the trap count, so more traps
/// never help, and a plan [`plan`] accepted (floor `≤ 1` on `N` slots)
/// deters on every tail shorter than `N`. `None` when a term overflows.
pub fn tail_deters(params: &LifetimeParams, real: u32) -> Option<bool> {
    let mut tail = *params;
    tail.slots = real.checked_add(1)?;
    deters_exact(&tail, TrapRate::ALWAYS, 1)
}

/// The error for a target no `k` and rate within the caps meets.
fn unreachable_assurance(params: &LifetimeParams, floor: TrapRate) -> LifetimeError {
    let strongest = LifetimePolicy {
        slots: params.slots,
        traps: TrapCount::new(params.max_traps),
        new_rate: params.max_rate,
        floor,
        halving_lots: None,
    };
    let m = params.corrupted();
    let target = 1.0 - params.target.miss_probability;
    let best = lifetime_catch_probability(&strongest, m, params.target.lots);
    // Without discount the miss is (1 − q d)^M: the horizon that meets δ.
    let per_lot = lot_catch_probability(params.slots, params.max_traps, params.max_rate, m);
    let lots_needed = (per_lot > 0.0)
        .then(|| (params.target.miss_probability.ln() / (1.0 - per_lot).ln()).ceil())
        .filter(|l| l.is_finite() && *l <= f64::from(MAX_HORIZON_LOTS))
        .map(|l| (l as u32).max(1));
    let hint = match lots_needed {
        Some(l) => format!(
            "with {} traps in {} slots at rate {} ppm a horizon of {l} lots would meet it",
            params.max_traps,
            params.slots,
            params.max_rate.ppm()
        ),
        None => "more slots per lot or more traps per lot are needed".to_string(),
    };
    LifetimeError::AssuranceUnreachable {
        lots: params.target.lots,
        best,
        target,
        lots_needed,
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> LifetimeParams {
        LifetimeParams::new(16, Amount::new(8), Amount::new(10), Amount::new(1_000))
    }

    #[test]
    fn floor_is_exact_and_deters_all_corrupted() {
        let p = params();
        // q (16·10 + 1000) > 16·8  ⇔  q > 128 / 1160 = 0.110344…
        let f = deterrence_floor(&p).unwrap().unwrap();
        assert_eq!(f.ppm(), 110_345);
        assert!(cheating_gain(&p, f, 1, 16) < 0.0);
        assert!(cheating_gain(&p, TrapRate(f.ppm() - 1), 1, 16) >= 0.0);
    }

    #[test]
    fn lifetime_without_discount_is_the_product() {
        let pol = LifetimePolicy {
            slots: 16,
            traps: TrapCount::new(2),
            new_rate: TrapRate(300_000),
            floor: TrapRate(100_000),
            halving_lots: None,
        };
        let d = detection_probability(16, 2, 2);
        let want = 1.0 - (1.0 - 0.3 * d).powi(7);
        assert!((lifetime_catch_probability(&pol, 2, 7) - want).abs() < 1e-12);
    }

    #[test]
    fn lifetime_matches_exact_rationals_on_small_cases() {
        // Two lots, rate 1/2 then (after one clean trap lot) 1/4.
        let pol = LifetimePolicy {
            slots: 4,
            traps: TrapCount::new(1),
            new_rate: TrapRate(500_000),
            floor: TrapRate(250_000),
            halving_lots: Some(1),
        };
        // d = 1/4. Lot 1: caught 1/8; trap passed 3/8 (→ q = 1/4); no trap
        // 1/2 (q stays 1/2). Lot 2 miss: 3/8·(1 − 1/16) + 1/2·(1 − 1/8).
        let miss = 3.0 / 8.0 * (15.0 / 16.0) + 0.5 * (7.0 / 8.0);
        let got = lifetime_catch_probability(&pol, 1, 2);
        assert!((got - (1.0 - miss)).abs() < 1e-12, "{got}");
        let (num, den) = lot_catch_probability_exact(4, 1, TrapRate(500_000), 1).unwrap();
        assert_eq!(num * 8, den);
    }

    #[test]
    fn plan_meets_its_target_and_deters() {
        let p = params();
        let pol = plan(&p).unwrap();
        let m = p.corrupted();
        assert!(lifetime_catch_probability(&pol, m, p.target.lots) >= 0.99);
        for v in [0, 5, 50, 500] {
            for m in 1..=p.slots {
                assert!(cheating_gain(&p, pol.rate(v), pol.traps.get(), m) < 0.0);
            }
        }
    }

    #[test]
    fn unreachable_targets_are_typed_errors() {
        let mut p = params();
        p.slots = 4;
        p.max_traps = 1;
        p.target.lots = 5;
        match plan(&p) {
            Err(LifetimeError::AssuranceUnreachable { lots_needed, .. }) => {
                // d = 1/4 per lot at q = 1: (3/4)^M ≤ 0.01 needs M = 17.
                assert_eq!(lots_needed, Some(17));
            }
            other => panic!("{other:?}"),
        }
        let mut p = params();
        p.stake = Amount::ZERO;
        p.pay_per_subtask = Amount::new(4);
        p.max_rate = TrapRate(500_000);
        match plan(&p) {
            Err(LifetimeError::DeterrenceUnreachable { min_stake, .. }) => {
                // 0.5 (64 + S) > 128  ⇔  S > 192.
                assert_eq!(min_stake, Amount::new(193));
            }
            other => panic!("{other:?}"),
        }
        p.target.miss_probability = 0.0;
        assert!(matches!(
            plan(&p),
            Err(LifetimeError::InvalidParameter { .. })
        ));
    }

    #[test]
    fn one_trap_deters_on_every_tail_of_an_accepted_plan() {
        for stake in [0u128, 40, 100, 1_000] {
            for pay in [1u128, 5, 10] {
                let mut p = params();
                p.stake = Amount::new(stake);
                p.pay_per_subtask = Amount::new(pay);
                let accepted = plan(&p).is_ok();
                for real in 1..p.slots {
                    let deters = tail_deters(&p, real).expect("small amounts");
                    assert!(!accepted || deters, "stake {stake} pay {pay} tail {real}");
                }
            }
        }
        // No stake and pay below cost: a tail is not deterred.
        let mut poor = params();
        poor.stake = Amount::ZERO;
        poor.pay_per_subtask = Amount::new(1);
        assert_eq!(tail_deters(&poor, 5), Some(false));
    }

    #[test]
    fn draws_follow_the_rate() {
        let pol = plan(&params()).unwrap();
        let mut rng = idlegrid_primitives::Seed::from_u64(3).rng();
        let n = 20_000;
        let hits = (0..n).filter(|_| pol.draw(0, &mut rng) > 0).count() as f64;
        let q = pol.rate(0).as_f64();
        let sd = (q * (1.0 - q) * f64::from(n)).sqrt();
        assert!((hits - q * f64::from(n)).abs() < 4.0 * sd, "{hits} vs {q}");
    }
}
