//! How a client verifies the lots it buys: its [`VerificationMode`], the
//! adaptive-replication rule ([`AdaptiveRecord`]) and the cross-check of a
//! replicated pair ([`cross_check`]). The client ([`crate::client`]) holds
//! one mode for all its jobs; the simulator only passes the setting.
//!
//! - [`VerificationMode::Entrap`] — traps sized by the entrapment optimizer
//!   (or the lifetime planner): the client's default.
//! - [`VerificationMode::Replication`] — every lot is executed twice: when
//!   a lot is matched the client posts a one-lot *replica job* with the same
//!   inputs and holds the lot until the replica is matched; both lots are
//!   then planned with every subtask a cross-check trap
//!   ([`idlegrid_entrap::TrapSource::CrossCheck`]) whose partner is the
//!   other provider. When both are delivered the client reveals, in each
//!   round, the partner's outputs and accuses every disagreeing slot; an
//!   honest provider disputes, the referee committee re-executes the slot,
//!   and the verdict convicts the party whose output the majority does not
//!   share (a cross-check is never held against the client, so an honest
//!   provider whose partner lied is dismissed, not slashed). No traps.
//! - [`VerificationMode::AdaptiveReplication`] — BOINC's adaptive
//!   replication: a lot is replicated as above when
//!   [`AdaptiveRecord::replicate`] says so, else planned as plain work.
//! - [`VerificationMode::None`] — plain work: no traps, no replicas;
//!   cheated outputs are accepted and paid.
//!
//! Jobs posted with [`crate::client::JobData`] (real programs) are always
//! verified by entrapment: replicas need the bytes re-sealed to a second
//! provider, which this client does not do yet.
//!
//! ## The adaptive rule
//!
//! BOINC's adaptive replication, as its wiki states it
//! (<https://boinc.berkeley.edu/trac/wiki/AdaptiveReplication>): with
//! `CV(H)` the consecutive valid results of host `H`, "if CV(H) < 10, don't
//! trust the host; otherwise, trust the host randomly with probability
//! 1 − 1/CV(H)"; `CV` is "incremented when a replicated job computed with
//! H is validated, and is zeroed when such a job is found to be invalid".
//! Here: a provider with `v <` [`TRUST_STREAK`] `= 10` consecutive valid
//! results gets every lot replicated; otherwise a lot is replicated with
//! probability exactly `1 / v`. A fault resets `v` to 0. (BOINC's stated
//! goal is 5–10 % of CPU time on validation, against ≥ 50 % for plain
//! replication.)
//!
//! What the client knows and from where: only its **own record**, built
//! from ledger facts it saw for its own replicated lots — a replicated lot
//! that settles with nothing slashed is one more valid result, one with a
//! slash (admitted or judged) is a fault. Lots it did not replicate teach
//! it nothing and do not count (the cautious choice: a provider cannot
//! build trust on unchecked work). A provider it has no record of (or
//! beyond [`MAX_TRACKED_PROVIDERS`])
//! is untrusted. The draw uses the client's seeded RNG, so runs are
//! deterministic.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use idlegrid_entrap::{JobPlan, SubtaskIndex};
use idlegrid_primitives::{AccountId, Digest, RngCore};

use crate::client::MAX_TRACKED_PROVIDERS;

/// Consecutive valid results after which a provider is trusted.
pub const TRUST_STREAK: u32 = 10;

/// Job ids at or above this are the client's replica jobs; a driver's job
/// ids must stay below it.
pub const REPLICA_JOB_BASE: u64 = 1 << 63;

/// How a client verifies its lots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerificationMode {
    /// Traps (the default).
    #[default]
    Entrap,
    /// Every lot executed by two providers, disagreements to the referees.
    Replication,
    /// BOINC's adaptive replication ([`AdaptiveRecord`]).
    AdaptiveReplication,
    /// No verification at all.
    None,
}

impl VerificationMode {
    /// Every mode, in the order of the docs.
    pub const ALL: [VerificationMode; 4] = [
        VerificationMode::Entrap,
        VerificationMode::Replication,
        VerificationMode::AdaptiveReplication,
        VerificationMode::None,
    ];

    /// The mode's name in scenarios and reports.
    pub const fn name(self) -> &'static str {
        match self {
            VerificationMode::Entrap => "entrap",
            VerificationMode::Replication => "replication",
            VerificationMode::AdaptiveReplication => "adaptive_replication",
            VerificationMode::None => "none",
        }
    }

    /// True for the modes that replicate lots.
    pub const fn replicates(self) -> bool {
        matches!(
            self,
            VerificationMode::Replication | VerificationMode::AdaptiveReplication
        )
    }
}

impl fmt::Display for VerificationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A verification mode name that is not one of [`VerificationMode::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown verification mode {0:?}: expected \"entrap\", \"replication\", \"adaptive_replication\" or \"none\""
)]
pub struct UnknownMode(pub String);

impl FromStr for VerificationMode {
    type Err = UnknownMode;
    fn from_str(s: &str) -> Result<Self, UnknownMode> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| UnknownMode(s.to_string()))
    }
}

/// The probability that a lot of a provider with `streak` consecutive
/// valid results is replicated: 1 below [`TRUST_STREAK`], else `1/streak`.
pub fn replication_probability(streak: u32) -> f64 {
    if streak < TRUST_STREAK {
        1.0
    } else {
        1.0 / f64::from(streak)
    }
}

/// A client's own record of consecutive valid replicated results per
/// provider (bounded by [`MAX_TRACKED_PROVIDERS`]).
#[derive(Debug, Default, Clone)]
pub struct AdaptiveRecord {
    streaks: BTreeMap<AccountId, u32>,
}

impl AdaptiveRecord {
    /// Consecutive valid results of `provider` (0 when unknown).
    pub fn streak(&self, provider: &AccountId) -> u32 {
        self.streaks.get(provider).copied().unwrap_or(0)
    }

    /// Whether a lot of `provider` is replicated: always while untrusted,
    /// else with probability exactly `1 / streak` (a uniform draw below
    /// `streak` from `rng` equals 0).
    pub fn replicate(&self, provider: &AccountId, rng: &mut impl RngCore) -> bool {
        let v = self.streak(provider);
        if v < TRUST_STREAK {
            return true;
        }
        // Rejection sampling: exactly uniform over 0..v.
        let v = u64::from(v);
        let zone = u64::MAX - u64::MAX % v;
        loop {
            let x = rng.next_u64();
            if x < zone {
                return x % v == 0;
            }
        }
    }

    /// One more valid result (a new provider past the bound stays
    /// untrusted, the cautious side).
    pub fn valid(&mut self, provider: AccountId) {
        if let Some(v) = self.streaks.get_mut(&provider) {
            *v = v.saturating_add(1);
        } else if self.streaks.len() < MAX_TRACKED_PROVIDERS {
            self.streaks.insert(provider, 1);
        }
    }

    /// A fault: the streak starts over.
    pub fn fault(&mut self, provider: AccountId) {
        self.streaks.remove(&provider);
    }
}

/// One side of a replicated pair, checked against the other: the slots of
/// `plan` (every one a cross-check trap) whose output differs from the
/// partner's output for the same input, and the partner's outputs in trap
/// position order (what [`JobPlan::trap_reveal`] needs). `None` when the
/// lengths do not fit or an input is missing on the partner's side.
pub fn cross_check(
    plan: &JobPlan,
    outputs: &[Digest],
    partner_inputs: &[Digest],
    partner_outputs: &[Digest],
) -> Option<(Vec<SubtaskIndex>, Vec<Digest>)> {
    let inputs = &plan.public().slot_inputs;
    if outputs.len() != inputs.len() || partner_outputs.len() != partner_inputs.len() {
        return None;
    }
    let theirs: BTreeMap<&Digest, &Digest> = partner_inputs.iter().zip(partner_outputs).collect();
    let mut accuse = Vec::new();
    let mut expected = Vec::with_capacity(inputs.len());
    // Traps are revealed in position order; here every slot is a trap.
    for (i, (x, mine)) in inputs.iter().zip(outputs).enumerate() {
        let other = **theirs.get(x)?;
        if other != *mine {
            accuse.push(SubtaskIndex::new(i as u32));
        }
        expected.push(other);
    }
    Some((accuse, expected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use idlegrid_entrap::{TrapSource, TrapSpec};
    use idlegrid_primitives::{Domain, Seed};

    fn acct(i: u8) -> AccountId {
        AccountId::from_bytes([i; 32])
    }

    #[test]
    fn modes_parse_by_name_and_refuse_others() {
        for m in VerificationMode::ALL {
            assert_eq!(m.name().parse::<VerificationMode>(), Ok(m));
        }
        assert_eq!(VerificationMode::default(), VerificationMode::Entrap);
        let e = "replicate".parse::<VerificationMode>().unwrap_err();
        assert!(e.to_string().contains("adaptive_replication"), "{e}");
    }

    #[test]
    fn adaptive_stops_after_a_clean_streak_and_resumes_after_a_fault() {
        let mut r = AdaptiveRecord::default();
        let mut rng = Seed::from_u64(3).rng();
        let p = acct(1);
        for _ in 0..TRUST_STREAK - 1 {
            assert!(r.replicate(&p, &mut rng));
            r.valid(p);
        }
        assert!(
            r.replicate(&p, &mut rng),
            "9 valid results: still untrusted"
        );
        r.valid(p);
        // Trusted at 10: replicated with probability 1/10.
        let n = 20_000;
        let hits = (0..n).filter(|_| r.replicate(&p, &mut rng)).count() as f64;
        let (q, sd) = (0.1, (0.1f64 * 0.9 / n as f64).sqrt());
        assert!((hits / n as f64 - q).abs() < 4.0 * sd, "{hits}");
        r.fault(p);
        assert_eq!(r.streak(&p), 0);
        assert!((0..100).all(|_| r.replicate(&p, &mut rng)));
        assert_eq!(replication_probability(40), 1.0 / 40.0);
        assert_eq!(replication_probability(9), 1.0);
    }

    #[test]
    fn cross_check_accuses_exactly_the_disagreeing_slots() {
        const D: Domain = Domain::new("idlegrid/node/test/cross");
        let x: Vec<Digest> = (0..6u64).map(|i| Digest::of(D, &i)).collect();
        let run = |d: &Digest| Digest::of(D, &("out", d));
        let traps = |partner| {
            x.iter()
                .map(|&input| TrapSpec {
                    input,
                    source: TrapSource::CrossCheck { partner },
                })
                .collect::<Vec<_>>()
        };
        let plan = |seed, partner| {
            JobPlan::builder(idlegrid_entrap::JobId::new(9))
                .traps(traps(partner))
                .seed(Seed::from_u64(seed))
                .build()
                .unwrap()
        };
        let (a, b) = (plan(1, acct(2)), plan(2, acct(1)));
        let out = |p: &JobPlan| p.public().slot_inputs.iter().map(run).collect::<Vec<_>>();
        let (oa, mut ob) = (out(&a), out(&b));
        // B corrupts the slot holding input 4.
        let pos = b
            .public()
            .slot_inputs
            .iter()
            .position(|d| *d == x[4])
            .unwrap();
        ob[pos] = Digest::of(D, &"wrong");
        let bi = &b.public().slot_inputs;
        let (accuse_a, exp_a) = cross_check(&a, &oa, bi, &ob).unwrap();
        let pa = a
            .public()
            .slot_inputs
            .iter()
            .position(|d| *d == x[4])
            .unwrap();
        assert_eq!(accuse_a, vec![SubtaskIndex::new(pa as u32)]);
        assert_eq!(exp_a[pa], ob[pos]);
        let (accuse_b, _) = cross_check(&b, &ob, &a.public().slot_inputs, &oa).unwrap();
        assert_eq!(accuse_b, vec![SubtaskIndex::new(pos as u32)]);
        // The reveals open against the plans.
        a.trap_reveal(exp_a).open(a.public()).unwrap();
        assert!(cross_check(&a, &oa[1..], bi, &ob).is_none());
    }
}
