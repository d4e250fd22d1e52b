//! All-in verification accounting: every unit of compute spent on
//! verification, over the useful compute, from the nodes' events only.
//!
//! One unit is one subtask's execution. Sources:
//! - `provider_traps` — trap subtasks providers executed (precomputed or
//!   reused answers);
//! - `trap_answers` — answers the client had to compute itself to know what
//!   a trap should return (a reused, earlier verified output costs nothing);
//! - `referee_reexecutions` — traps re-executed by referees in disputes;
//! - `replicas` — cross-check traps (a real subtask run a second time).
//!
//! The useful compute is the real subtasks of matched lots. Units are kept
//! per virtual second (one bucket per second of the run, so bounded by its
//! length), which gives both the whole-run figure and the steady-state one
//! over the last two thirds of the run.

use std::collections::BTreeMap;

use idlegrid_primitives::Timestamp;

/// Compute units, by where they went.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Units {
    /// Real subtasks in matched lots (the useful compute).
    pub real: u64,
    /// Trap subtasks executed by providers.
    pub provider_traps: u64,
    /// Trap answers the client computed itself.
    pub trap_answers: u64,
    /// Traps re-executed by referees.
    pub referee_reexecutions: u64,
    /// Real subtasks executed twice (cross-checks).
    pub replicas: u64,
}

impl Units {
    fn add(&mut self, o: &Units) {
        self.real += o.real;
        self.provider_traps += o.provider_traps;
        self.trap_answers += o.trap_answers;
        self.referee_reexecutions += o.referee_reexecutions;
        self.replicas += o.replicas;
    }

    /// Every verification unit.
    pub fn verification(&self) -> u64 {
        self.provider_traps + self.trap_answers + self.referee_reexecutions + self.replicas
    }

    /// `x` over the useful compute (0 when there was none).
    fn per_real(&self, x: u64) -> f64 {
        if self.real == 0 {
            0.0
        } else {
            x as f64 / self.real as f64
        }
    }

    /// All-in overhead: verification units per useful unit.
    pub fn overhead(&self) -> f64 {
        self.per_real(self.verification())
    }
}

/// Verification units per virtual second.
#[derive(Debug, Default)]
pub struct VerificationCost {
    by_second: BTreeMap<u64, Units>,
}

impl VerificationCost {
    /// Adds `u` at `now`.
    pub fn record(&mut self, now: Timestamp, u: Units) {
        let second = now.as_micros() / 1_000_000;
        self.by_second.entry(second).or_default().add(&u);
    }

    /// Units recorded at or after `from`.
    pub fn since(&self, from: Timestamp) -> Units {
        let first = from.as_micros().div_ceil(1_000_000);
        let mut total = Units::default();
        for u in self.by_second.range(first..).map(|(_, u)| u) {
            total.add(u);
        }
        total
    }

    /// The summary's figures for a run that ended at `end`: the all-in
    /// overhead over the whole run, over its last two thirds (whole seconds
    /// from `⌈end / 3⌉` on), and the whole run's breakdown by source.
    pub fn to_json(&self, end: Timestamp) -> serde_json::Value {
        let all = self.since(Timestamp::ZERO);
        let steady = self.since(Timestamp::from_micros(end.as_micros() / 3));
        serde_json::json!({
            "verification_overhead": all.overhead(),
            "verification_overhead_steady": steady.overhead(),
            "verification_overhead_by_source": {
                "provider_traps": all.per_real(all.provider_traps),
                "trap_answers": all.per_real(all.trap_answers),
                "referee_reexecutions": all.per_real(all.referee_reexecutions),
                "replicas": all.per_real(all.replicas),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> Timestamp {
        Timestamp::from_micros(s * 1_000_000)
    }

    #[test]
    fn whole_run_and_steady_state_split_at_a_third() {
        let mut v = VerificationCost::default();
        let lot = |traps| Units {
            real: 10,
            provider_traps: traps,
            trap_answers: traps,
            ..Units::default()
        };
        v.record(at(0), lot(10)); // warm-up: 200 % overhead
        v.record(at(50), lot(1)); // steady: 20 %
        v.record(
            at(80),
            Units {
                referee_reexecutions: 2,
                ..Units::default()
            },
        );
        let j = v.to_json(at(90));
        let f = |k: &str| j[k].as_f64().unwrap();
        assert!((f("verification_overhead") - 24.0 / 20.0).abs() < 1e-12);
        assert!((f("verification_overhead_steady") - 4.0 / 10.0).abs() < 1e-12);
        let by = &j["verification_overhead_by_source"];
        assert!((by["provider_traps"].as_f64().unwrap() - 11.0 / 20.0).abs() < 1e-12);
        assert!((by["trap_answers"].as_f64().unwrap() - 11.0 / 20.0).abs() < 1e-12);
        assert!((by["referee_reexecutions"].as_f64().unwrap() - 0.1).abs() < 1e-12);
        assert_eq!(by["replicas"].as_f64(), Some(0.0));
    }

    #[test]
    fn no_useful_compute_is_zero_not_nan() {
        let v = VerificationCost::default();
        assert_eq!(
            v.to_json(at(10))["verification_overhead"].as_f64(),
            Some(0.0)
        );
    }
}
