//! Detection rates per behaviour against the entrap optimizer's exact
//! (hypergeometric) probabilities.
//!
//! For a settled lot in which a provider corrupted `c` of `slots` subtasks
//! and the client planted `k` traps, the chance that at least one
//! corrupted subtask is a trap is `p = detection_probability(slots, k, c)`
//! — *if* the corrupted subtasks are chosen independently of which are
//! traps. Then the number of detected lots of a behaviour is a sum of
//! independent Bernoulli(p_i) (Poisson-binomial): mean `Σ p_i`, variance
//! `Σ p_i (1 − p_i)`. The tally compares what the protocol did (a
//! conviction: `Admitted` or a guilty verdict) with that distribution: a
//! z-score and, for up to [`MAX_EXACT_LOTS`] lots, the exact two-sided
//! tail probability.

use std::collections::BTreeMap;

use idlegrid_entrap::{Outcome as RoundOutcome, Verdict, detection_probability};
use idlegrid_executor::{Behaviour, Rate};

/// Lots per behaviour whose probabilities are kept for the exact tail
/// probability (the dynamic programme is quadratic); beyond it only the
/// normal approximation is reported.
pub const MAX_EXACT_LOTS: usize = 4_096;

/// True if `outcome` convicts the provider of cheating.
pub fn convicted(outcome: &RoundOutcome) -> bool {
    matches!(
        outcome,
        RoundOutcome::Admitted | RoundOutcome::Judged(Verdict::ProviderCheated)
    )
}

/// Whether the hypergeometric model describes `b`'s choice of corrupted
/// subtasks, and why.
pub fn baseline(b: &Behaviour) -> (bool, String) {
    match b {
        Behaviour::TrapGuessing { accuracy, .. } if *accuracy != Rate::percent(50) => (
            false,
            format!(
                "not uniform: guesses traps right with probability {:.2} and never cheats where it believes one is, so the hypergeometric probability is {} bound",
                f64::from(accuracy.ppm()) / 1e6,
                if accuracy.ppm() > 500_000 {
                    "an upper"
                } else {
                    "a lower"
                }
            ),
        ),
        Behaviour::TrapGuessing { .. } => (
            true,
            "exact: its trap guess is a coin flip (accuracy 0.5), independent of the slot, so corrupted slots are uniform".into(),
        ),
        Behaviour::BaitAndSwitch { .. } => (
            true,
            "exact: the honest prefix is positional and traps sit at uniformly random positions".into(),
        ),
        Behaviour::Colluding { .. } => (
            true,
            "exact: the group's decision hashes the task, independent of trap status; inputs its coalition saw before (reused traps) are answered honestly and left out of the lot (expected_all_traps counts them as traps)".into(),
        ),
        Behaviour::LazyCheater { .. } => (
            true,
            "exact: each subtask is skipped independently at the cheat rate".into(),
        ),
        Behaviour::Honest | Behaviour::Faulty { .. } => {
            (true, "exact (never cheats deliberately)".into())
        }
    }
}

/// One settled lot in which the provider cheated.
#[derive(Debug, Clone, Copy)]
pub struct CheatedLot {
    /// Subtasks in the lot (real + traps).
    pub slots: u32,
    /// Traps planted.
    pub traps: u32,
    /// Slots the provider's coalition had seen before (answered honestly:
    /// reused traps it recognised).
    pub recognised: u32,
    /// Of those, traps.
    pub recognised_traps: u32,
    /// Subtasks it corrupted.
    pub corrupted: u32,
    /// A corrupted subtask was a trap (ground truth).
    pub trap_hit: bool,
    /// The settlement convicted it.
    pub convicted: bool,
    /// The settlement slashed it (a conviction, or a missed deadline).
    pub slashed: bool,
}

#[derive(Debug, Default)]
struct Tally {
    lots: u64,
    detected: u64,
    trap_hits: u64,
    trap_hits_not_convicted: u64,
    convicted_without_trap_hit: u64,
    slashed_not_convicted: u64,
    expected: f64,
    variance: f64,
    /// Recognised reused traps, and the expectation as if every trap
    /// counted (none recognised).
    recognised_traps: u64,
    expected_all_traps: f64,
    variance_all_traps: f64,
    probs: Vec<f64>,
    exact: bool,
    uniform: bool,
    note: String,
}

/// Detection tallies by reported label.
#[derive(Debug, Default)]
pub struct DetectionTallies {
    by: BTreeMap<&'static str, Tally>,
}

impl DetectionTallies {
    /// Records a cheated lot of a provider reported as `label` with
    /// behaviour `behaviour`.
    pub fn record(&mut self, label: &'static str, behaviour: &Behaviour, lot: CheatedLot) {
        let t = self.by.entry(label).or_insert_with(|| {
            let (uniform, note) = baseline(behaviour);
            Tally {
                exact: true,
                uniform,
                note,
                ..Tally::default()
            }
        });
        // Recognised slots are answered honestly: the corrupted ones are
        // uniform over the rest (`idlegrid_entrap::reuse`).
        let p = detection_probability(
            lot.slots.saturating_sub(lot.recognised),
            lot.traps.saturating_sub(lot.recognised_traps),
            lot.corrupted,
        );
        t.lots += 1;
        t.detected += u64::from(lot.convicted);
        t.trap_hits += u64::from(lot.trap_hit);
        t.trap_hits_not_convicted += u64::from(lot.trap_hit && !lot.convicted);
        t.convicted_without_trap_hit += u64::from(lot.convicted && !lot.trap_hit);
        t.slashed_not_convicted += u64::from(lot.slashed && !lot.convicted);
        t.expected += p;
        t.variance += p * (1.0 - p);
        let all = detection_probability(lot.slots, lot.traps, lot.corrupted);
        t.recognised_traps += u64::from(lot.recognised_traps);
        t.expected_all_traps += all;
        t.variance_all_traps += all * (1.0 - all);
        if t.probs.len() < MAX_EXACT_LOTS {
            t.probs.push(p);
        } else {
            t.exact = false;
            t.probs = Vec::new();
        }
    }

    /// `{label: {cheated_lots, detected, expected, z, ...}}` for
    /// `entrap.detection_by_behaviour`.
    pub fn to_json(&self) -> serde_json::Value {
        let m: serde_json::Map<String, serde_json::Value> = self
            .by
            .iter()
            .map(|(k, t)| {
                let z = z_score(t.detected as f64, t.expected, t.variance);
                let p = t.exact.then(|| two_sided_p(&t.probs, t.detected));
                let z_all = z_score(
                    t.detected as f64,
                    t.expected_all_traps,
                    t.variance_all_traps,
                );
                (
                    (*k).to_string(),
                    serde_json::json!({
                        "cheated_lots": t.lots,
                        "detected": t.detected,
                        "expected": t.expected,
                        "sd": t.variance.sqrt(),
                        "z": z,
                        "p_value": p,
                        "recognised_traps": t.recognised_traps,
                        "expected_all_traps": t.expected_all_traps,
                        "z_all_traps": z_all,
                        "trap_hits": t.trap_hits,
                        "trap_hits_not_convicted": t.trap_hits_not_convicted,
                        "convicted_without_trap_hit": t.convicted_without_trap_hit,
                        "slashed_not_convicted": t.slashed_not_convicted,
                        "uniform": t.uniform,
                        "baseline": t.note,
                    }),
                )
            })
            .collect();
        serde_json::Value::Object(m)
    }
}

/// `(observed − expected) / sd`; with no variance, 0 if they agree and
/// `None` if they do not (the tail probability is then 0).
pub fn z_score(observed: f64, expected: f64, variance: f64) -> Option<f64> {
    if variance > 1e-12 {
        Some((observed - expected) / variance.sqrt())
    } else if (observed - expected).abs() < 0.5 {
        Some(0.0)
    } else {
        None
    }
}

/// Exact two-sided tail probability of `observed` successes under the
/// Poisson-binomial with success probabilities `probs`:
/// `min(1, 2 · min(P[X ≤ observed], P[X ≥ observed]))`.
pub fn two_sided_p(probs: &[f64], observed: u64) -> f64 {
    let mut dist = vec![0.0f64; probs.len() + 1];
    dist[0] = 1.0;
    for (i, &p) in probs.iter().enumerate() {
        let p = p.clamp(0.0, 1.0);
        for k in (0..=i + 1).rev() {
            let stay = dist[k] * (1.0 - p);
            let up = if k > 0 { dist[k - 1] * p } else { 0.0 };
            dist[k] = stay + up;
        }
    }
    let obs = (observed as usize).min(probs.len());
    let lower: f64 = dist[..=obs].iter().sum();
    let upper: f64 = dist[obs..].iter().sum();
    (2.0 * lower.min(upper)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_binomial_tails() {
        // Two fair coins: P[X = 0] = 1/4, P[X ≥ 1] = 3/4.
        let p = two_sided_p(&[0.5, 0.5], 0);
        assert!((p - 0.5).abs() < 1e-12, "{p}");
        assert!((two_sided_p(&[0.5, 0.5], 1) - 1.0).abs() < 1e-12);
        // Certain detection observed as a miss is impossible.
        assert_eq!(two_sided_p(&[1.0, 1.0], 1), 0.0);
        assert_eq!(z_score(2.0, 2.0, 0.0), Some(0.0));
        assert_eq!(z_score(1.0, 2.0, 0.0), None);
    }

    #[test]
    fn tallies_sum_probabilities() {
        let mut t = DetectionTallies::default();
        let b = Behaviour::LazyCheater {
            rate: Rate::percent(30),
        };
        for convicted in [true, false] {
            t.record(
                "lazy",
                &b,
                CheatedLot {
                    slots: 4,
                    traps: 2,
                    recognised: 0,
                    recognised_traps: 0,
                    corrupted: 1,
                    trap_hit: convicted,
                    convicted,
                    slashed: convicted,
                },
            );
        }
        let v = t.to_json();
        assert_eq!(v["lazy"]["cheated_lots"], 2);
        assert_eq!(v["lazy"]["detected"], 1);
        assert!((v["lazy"]["expected"].as_f64().unwrap() - 1.0).abs() < 1e-9);
        assert!(v["lazy"]["z"].as_f64().unwrap().abs() < 1e-9);
        assert_eq!(v["lazy"]["uniform"], true);
    }
}
