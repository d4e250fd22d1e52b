//! Cheaper trap answers: reusing answers the client already holds as later
//! traps, bounded by a reuse rule against colluding providers.
//!
//! A trap costs the client one subtask of compute to know its answer. An
//! answer it already holds — a trap of an earlier lot whose answer it
//! computed and that the provider then answered the same way (the lot
//! settled clean) — can be planted again at no compute cost
//! ([`crate::TrapSource::Reused`]). Only trap answers are banked, never the
//! *real* outputs of a lot that passed its traps: passing traps does not
//! verify each real output (a lot is caught with probability `q d_k(m)`,
//! not 1), and a wrong banked answer would accuse an honest provider —
//! the referees would dismiss it and the client would lose its bond.
//!
//! ## The collusion model
//!
//! A reused trap is only as good as the chance that its provider cannot
//! recognise it. Every provider that was handed the input before saw it:
//! the one that computed it as a fresh trap and every earlier reuse's
//! provider. A coalition holding a fraction `c` of the provider capacity
//! that pools every input its members have seen recognises an input seen
//! `u` times before with probability `ρ(c, u) ≈ 1 − (1 − c)^u`
//! ([`recognition_probability`]) when the market assigns lots
//! independently of membership. A member then answers a recognised input
//! honestly and cheats only on the rest, so a lot of `N` slots with `k`
//! traps, `j` of them recognised, catches a member corrupting `m` of the
//! other slots with probability `d_{k−j}(m)` over `N − j` slots
//! ([`detection_with_recognised`]), exactly as
//! [`crate::detection_probability`] counts.
//!
//! **Only fresh traps count.** Since `C(a − t, m) / C(a, m)` grows with
//! `a`, removing the `j` recognised slots from the lot never lowers the
//! chance of hitting one of the `k − j` others:
//! `d_{k−j}(m) over N − j slots ≥ d_{k−j}(m) over N slots ≥ d_{k−r}(m)`
//! over `N` slots for `j ≤ r` reused traps. So a lot with `f = k − r`
//! fresh traps catches *any* coalition — even one holding every provider
//! (`c = 1`) — with at least the probability the crate states for `f`
//! traps. The [`ReuseRule`] keeps what the crate states true this way:
//!
//! - **Deterrence** holds for every `k ≥ 1` once the trap rate is at or
//!   above the floor ([`crate::lifetime::deterrence_floor`] does not depend
//!   on `k`), so a guarded rule always leaves at least one fresh trap in a
//!   trap-carrying lot: every lot deters every coalition.
//! - **Assurance** ("a persistent cheater at rate `r` is caught within its
//!   first `M` lots") is computed with `k` traps per trap lot; a guarded
//!   rule reuses nothing in a provider's first `M` lots (the client reuses
//!   only for a provider with at least `M` verified clean trap lots, hence
//!   past its first `M` lots), so the stated assurance is exactly what it
//!   was.
//! - Past the horizon, a reused trap is counted at its discounted power:
//!   for non-members (`c = 0`) it is a full trap; for members it is worth
//!   at worst nothing, and the lot still catches them with `d_f(m)`.
//!   [`expected_detection`] gives the exact figure under the model for a
//!   coalition share `c`.
//! - **Exposure** is bounded: an answer is never reused to a provider that
//!   has seen its input, at most `max_uses` times, and not after
//!   `max_age`; `ρ(c, u)` stays at most `1 − (1 − c)^(max_uses + 1)`.
//!
//! An unguarded rule ([`ReuseRule::guarded`] false) reuses any fraction of
//! the traps from a provider's first lot on; it exists to measure what the
//! guards prevent and voids these bounds for colluders.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use idlegrid_primitives::{AccountId, Digest, Duration, Timestamp};

use crate::error::EntrapError;
use crate::optimizer::detection_probability;
use crate::plan::{TrapSource, TrapSpec};
use crate::types::{Bps, JobId};

/// The most times one answer may be reused.
pub const MAX_REUSES: u32 = 1_000;
/// Answers a bank holds at most (the oldest go first).
pub const MAX_BANK_ANSWERS: usize = 65_536;
/// Providers per answer a bank remembers as having seen it; an answer
/// seen by more is dropped (it is no longer a good trap).
pub const MAX_SEEN_BY: usize = 64;

/// How a client may reuse answers it holds as traps.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct ReuseRule {
    /// At most this fraction of a trap-carrying lot's traps are reused
    /// answers (rounded down).
    pub fraction: Bps,
    /// An answer is reused at most this many times.
    pub max_uses: u32,
    /// An answer older than this (since it was banked) is not reused.
    pub max_age: Duration,
    /// The guards: at least one fresh trap per trap-carrying lot and no
    /// reuse inside a provider's assurance horizon. Off only to measure
    /// what they prevent.
    pub guarded: bool,
}

impl ReuseRule {
    /// Checks the rule's ranges, naming the field.
    pub fn validate(&self) -> Result<(), EntrapError> {
        let bad = |name, reason| Err(EntrapError::InvalidParameter { name, reason });
        if self.max_uses == 0 || self.max_uses > MAX_REUSES {
            return bad("reuse_max_uses", "between 1 and 1000");
        }
        if self.max_age == Duration::ZERO {
            return bad("reuse_max_age", "must be positive");
        }
        Ok(())
    }

    /// How many of a trap-carrying lot's `traps` may be reused answers,
    /// for a provider past its assurance horizon (`past_horizon`) or not.
    /// Guarded: none inside the horizon, and at least one trap fresh.
    pub fn reusable(&self, traps: u32, past_horizon: bool) -> u32 {
        let share = (u64::from(traps) * u64::from(self.fraction.get()) / 10_000) as u32;
        if !self.guarded {
            return share.min(traps);
        }
        if !past_horizon {
            return 0;
        }
        share.min(traps.saturating_sub(1))
    }
}

/// `ρ(c, u) = 1 − (1 − c)^u`: the chance that a coalition holding a
/// fraction `c` of the provider capacity has seen an input handed out `u`
/// times before (the model above; `c` clamped to `[0, 1]`).
pub fn recognition_probability(coalition_share: f64, exposures: u32) -> f64 {
    let c = coalition_share.clamp(0.0, 1.0);
    let e = i32::try_from(exposures).unwrap_or(i32::MAX);
    (1.0 - (1.0 - c).powi(e)).clamp(0.0, 1.0)
}

/// The chance that a provider corrupting `corrupted` of the slots it does
/// not recognise is caught, when `recognised` of the lot's `traps` are
/// reused traps it recognised (and answers honestly): `d_{k−j}(m)` over
/// `N − j` slots. At least `detection_probability(slots, traps −
/// recognised, corrupted)` (see the module docs).
pub fn detection_with_recognised(slots: u32, traps: u32, recognised: u32, corrupted: u32) -> f64 {
    let j = recognised.min(traps);
    detection_probability(slots.saturating_sub(j), traps - j, corrupted)
}

/// The exact chance, under the collusion model, that a coalition member
/// corrupting `corrupted` slots it does not recognise is caught in a lot of
/// `slots` slots with `fresh` fresh traps and `reused` reused ones, each
/// recognised independently with probability `rho`
/// ([`recognition_probability`]): `Σ_j B(reused, rho)(j) ·
/// detection_with_recognised(slots, fresh + reused, j, corrupted)`.
pub fn expected_detection(slots: u32, fresh: u32, reused: u32, rho: f64, corrupted: u32) -> f64 {
    let rho = rho.clamp(0.0, 1.0);
    let mut total = 0.0;
    let mut choose = 1.0f64;
    for j in 0..=reused {
        if j > 0 {
            choose = choose * f64::from(reused - j + 1) / f64::from(j);
        }
        let w = choose
            * rho.powi(i32::try_from(j).unwrap_or(i32::MAX))
            * (1.0 - rho).powi(i32::try_from(reused - j).unwrap_or(i32::MAX));
        let m = corrupted.min(slots.saturating_sub(j));
        total += w * detection_with_recognised(slots, fresh + reused, j, m);
    }
    total.clamp(0.0, 1.0)
}

/// One banked answer.
#[derive(Clone, Debug)]
struct Banked {
    expected: Digest,
    from_job: JobId,
    banked_at: Timestamp,
    uses: u32,
    /// Providers that were handed the input (first: the one that computed
    /// it as a fresh trap).
    seen_by: Vec<AccountId>,
}

/// A client's bank of trap answers it may reuse, deterministic and bounded
/// ([`MAX_BANK_ANSWERS`] answers, [`MAX_SEEN_BY`] providers each).
#[derive(Clone, Debug, Default)]
pub struct AnswerBank {
    answers: BTreeMap<Digest, Banked>,
    /// Inputs in the order they were banked (oldest first).
    order: VecDeque<Digest>,
}

impl AnswerBank {
    /// Answers held.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    /// True if it holds none.
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// Banks the answer `expected` of trap `input`, planted in `from_job`
    /// and answered correctly by `provider` (its lot settled clean). An
    /// input already banked only records the provider.
    pub fn deposit(
        &mut self,
        now: Timestamp,
        input: Digest,
        expected: Digest,
        from_job: JobId,
        provider: AccountId,
    ) {
        if let Some(b) = self.answers.get_mut(&input) {
            if !b.seen_by.contains(&provider) && b.seen_by.len() < MAX_SEEN_BY {
                b.seen_by.push(provider);
            }
            return;
        }
        if self.answers.len() >= MAX_BANK_ANSWERS
            && let Some(old) = self.order.pop_front()
        {
            self.answers.remove(&old);
        }
        let banked = Banked {
            expected,
            from_job,
            banked_at: now,
            uses: 0,
            seen_by: vec![provider],
        };
        self.answers.insert(input, banked);
        self.order.push_back(input);
    }

    /// Up to `count` reused traps for `provider` under `rule`, oldest
    /// answers first, skipping inputs in `exclude` (the lot's other
    /// inputs). Guarded, an answer goes only to a provider that has not
    /// seen its input. Expired and used-up answers leave the bank.
    pub fn take(
        &mut self,
        now: Timestamp,
        rule: &ReuseRule,
        provider: AccountId,
        count: u32,
        exclude: &BTreeSet<Digest>,
    ) -> Vec<TrapSpec> {
        self.expire(now, rule.max_age);
        let mut out = Vec::new();
        let mut spent = Vec::new();
        for input in &self.order {
            if out.len() >= count as usize {
                break;
            }
            let Some(b) = self.answers.get_mut(input) else {
                continue;
            };
            let seen = b.seen_by.contains(&provider);
            if (rule.guarded && seen) || exclude.contains(input) {
                continue;
            }
            b.uses += 1;
            if !seen {
                b.seen_by.push(provider);
            }
            if b.uses >= rule.max_uses || b.seen_by.len() >= MAX_SEEN_BY {
                spent.push(*input);
            }
            out.push(TrapSpec {
                input: *input,
                source: TrapSource::Reused {
                    from_job: b.from_job,
                    expected: b.expected,
                },
            });
        }
        for input in spent {
            self.answers.remove(&input);
        }
        self.order.retain(|d| self.answers.contains_key(d));
        out
    }

    /// Drops answers banked more than `max_age` before `now`.
    fn expire(&mut self, now: Timestamp, max_age: Duration) {
        while let Some(d) = self.order.front() {
            let old = self
                .answers
                .get(d)
                .is_none_or(|b| now.saturating_since(b.banked_at) > max_age);
            if !old {
                break;
            }
            self.answers.remove(d);
            self.order.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idlegrid_primitives::Domain;

    const D: Domain = Domain::new("idlegrid/entrap/test-reuse");

    fn rule(fraction: u16, guarded: bool) -> ReuseRule {
        ReuseRule {
            fraction: Bps::new(fraction).unwrap(),
            max_uses: 2,
            max_age: Duration::from_secs(60),
            guarded,
        }
    }

    fn acct(i: u8) -> AccountId {
        AccountId::from_bytes([i; 32])
    }

    #[test]
    fn guarded_rule_keeps_a_fresh_trap_and_the_horizon() {
        let r = rule(10_000, true);
        assert_eq!(r.reusable(4, false), 0);
        assert_eq!(r.reusable(4, true), 3);
        assert_eq!(r.reusable(1, true), 0);
        assert_eq!(rule(5_000, true).reusable(4, true), 2);
        assert_eq!(rule(10_000, false).reusable(4, false), 4);
        let mut bad = r;
        bad.max_uses = 0;
        assert!(matches!(
            bad.validate(),
            Err(EntrapError::InvalidParameter {
                name: "reuse_max_uses",
                ..
            })
        ));
    }

    #[test]
    fn bank_never_reuses_to_a_provider_that_saw_the_input_and_bounds_uses_and_age() {
        let mut bank = AnswerBank::default();
        let t = Timestamp::from_millis;
        let x = Digest::of(D, &1u8);
        bank.deposit(t(0), x, Digest::of(D, &2u8), JobId::new(1), acct(1));
        let r = rule(10_000, true);
        let none = BTreeSet::new();
        assert!(bank.take(t(1), &r, acct(1), 1, &none).is_empty());
        let got = bank.take(t(1), &r, acct(2), 1, &none);
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].source.committed_expected(),
            Some(Digest::of(D, &2u8))
        );
        assert!(bank.take(t(2), &r, acct(2), 1, &none).is_empty());
        // The second use spends it (max_uses = 2).
        assert_eq!(bank.take(t(2), &r, acct(3), 1, &none).len(), 1);
        assert!(bank.is_empty());
        bank.deposit(t(0), x, Digest::of(D, &2u8), JobId::new(1), acct(1));
        assert!(bank.take(t(60_001), &r, acct(4), 1, &none).is_empty());
        assert!(bank.is_empty());
        // Unguarded: the computing provider gets its own answer back.
        bank.deposit(t(0), x, Digest::of(D, &2u8), JobId::new(1), acct(1));
        assert_eq!(
            bank.take(t(1), &rule(10_000, false), acct(1), 1, &none)
                .len(),
            1
        );
    }

    #[test]
    fn recognised_traps_never_lower_detection_below_the_fresh_ones() {
        for slots in 2..=24u32 {
            for traps in 1..slots.min(8) {
                for reused in 0..traps {
                    let fresh = traps - reused;
                    for m in 1..=(slots - reused) {
                        let floor = detection_probability(slots, fresh, m);
                        for j in 0..=reused {
                            let p = detection_with_recognised(slots, traps, j, m);
                            assert!(p + 1e-12 >= floor, "{slots} {traps} {j} {m}");
                        }
                        for rho in [0.0, 0.3, 1.0] {
                            let e = expected_detection(slots, fresh, reused, rho, m);
                            assert!(e + 1e-12 >= floor);
                        }
                        let all = expected_detection(slots, fresh, reused, 0.0, m);
                        assert!((all - detection_probability(slots, traps, m)).abs() < 1e-12);
                    }
                }
            }
        }
        assert!((recognition_probability(0.25, 2) - 0.4375).abs() < 1e-12);
    }
}
