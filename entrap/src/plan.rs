//! The client's plan: real subtasks and traps shuffled into one list, and
//! the commitments that bind the client to where the traps are and what
//! their answers are.
//!
//! The provider sees only [`PublicPlan`]: one input digest per subtask and a
//! single hiding commitment to the trap set, so neither the positions nor
//! even the number of traps are visible before the client reveals them.

use idlegrid_primitives::{AccountId, Commitment, Digest, Domain, RngCore, Salt, Seed};
use serde::{Deserialize, Serialize};

use crate::error::EntrapError;
use crate::types::{JobId, MAX_SUBTASKS, MAX_TRAPS, SubtaskIndex, TrapCount};

/// Domain of the commitment to a plan's trap set.
pub const TRAP_SET_DOMAIN: Domain = Domain::new("idlegrid/entrap/trap-set");
/// Domain of the digest of a plan's subtask inputs.
pub const SLOT_INPUTS_DOMAIN: Domain = Domain::new("idlegrid/entrap/slot-inputs");

/// Where a trap's known answer comes from.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum TrapSource {
    /// The client computed the answer beforehand.
    Precomputed {
        /// Digest of the expected output.
        expected: Digest,
    },
    /// A subtask verified in an earlier job, reused with its known answer.
    /// Only indistinguishable to providers that did not see it then.
    Reused {
        /// The job that verified it.
        from_job: JobId,
        /// Digest of the verified output.
        expected: Digest,
    },
    /// A cross-check: a real subtask also given to `partner`; its answer is
    /// the partner's revealed output, supplied at trap reveal. A mismatch
    /// triggers a dispute; the client cannot be blamed for framing here.
    CrossCheck {
        /// The other provider that got the same subtask.
        partner: AccountId,
    },
}

impl TrapSource {
    /// The answer committed at plan time, if there is one.
    pub const fn committed_expected(&self) -> Option<Digest> {
        match *self {
            TrapSource::Precomputed { expected } | TrapSource::Reused { expected, .. } => {
                Some(expected)
            }
            TrapSource::CrossCheck { .. } => None,
        }
    }
}

/// One trap: its input digest and the source of its answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TrapSpec {
    /// Digest of the trap's input (same format and size as real inputs).
    pub input: Digest,
    /// Where the expected answer comes from.
    pub source: TrapSource,
}

impl TrapSpec {
    /// A client-precomputed trap.
    pub const fn precomputed(input: Digest, expected: Digest) -> Self {
        Self {
            input,
            source: TrapSource::Precomputed { expected },
        }
    }
}

/// What the client commits to: the job, the sorted trap positions and the
/// trap specs in position order.
#[derive(Serialize)]
struct TrapSetRef<'a> {
    job: JobId,
    positions: &'a [SubtaskIndex],
    traps: &'a [TrapSpec],
}

/// The public part of a plan, posted on the ledger and sent to the provider.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PublicPlan {
    /// The job.
    pub job: JobId,
    /// Input digest of every subtask, in the shuffled order the provider
    /// executes them.
    pub slot_inputs: Vec<Digest>,
    /// Hiding commitment to the trap positions and specs.
    pub trap_commitment: Commitment,
}

impl PublicPlan {
    /// Number of subtasks (real + traps).
    pub fn slots(&self) -> usize {
        self.slot_inputs.len()
    }
    /// One digest naming all inputs, for ledger records.
    pub fn inputs_digest(&self) -> Digest {
        Digest::of(SLOT_INPUTS_DOMAIN, &(self.job, &self.slot_inputs))
    }
}

/// The client's trap reveal: opens [`PublicPlan::trap_commitment`].
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TrapReveal {
    /// Trap positions, strictly increasing.
    pub positions: Vec<SubtaskIndex>,
    /// The trap specs, in position order.
    pub traps: Vec<TrapSpec>,
    /// The commitment's salt.
    pub salt: Salt,
    /// For each cross-check trap, in position order, the partner's revealed
    /// output digest (the composition root checks it against the partner's
    /// round).
    pub partner_outputs: Vec<Digest>,
}

impl TrapReveal {
    /// Checks the reveal against the public plan and returns, per trap
    /// position, its input and expected answer.
    pub fn open(&self, plan: &PublicPlan) -> Result<Vec<OpenedTrap>, EntrapError> {
        let slots = plan.slots();
        if self.positions.len() != self.traps.len() {
            return Err(EntrapError::CommitmentMismatch { what: "trap set" });
        }
        if self.positions.len() > MAX_TRAPS {
            return Err(EntrapError::LimitExceeded {
                what: "traps",
                got: self.positions.len(),
                max: MAX_TRAPS,
            });
        }
        let set = TrapSetRef {
            job: plan.job,
            positions: &self.positions,
            traps: &self.traps,
        };
        plan.trap_commitment
            .open(TRAP_SET_DOMAIN, &set, &self.salt)
            .map_err(|_| EntrapError::CommitmentMismatch { what: "trap set" })?;
        // The commitment opened, so the client bound itself to these values;
        // still validate them, since a client may have committed garbage.
        let mut out = Vec::with_capacity(self.positions.len());
        let mut partner = self.partner_outputs.iter();
        let mut prev: Option<SubtaskIndex> = None;
        for (&pos, spec) in self.positions.iter().zip(&self.traps) {
            if pos.as_usize() >= slots {
                return Err(EntrapError::OutOfRange { index: pos, slots });
            }
            if prev.is_some_and(|p| p >= pos) {
                return Err(EntrapError::Duplicate(pos));
            }
            prev = Some(pos);
            if plan.slot_inputs[pos.as_usize()] != spec.input {
                return Err(EntrapError::CommitmentMismatch { what: "trap input" });
            }
            let (expected, framable) = match spec.source.committed_expected() {
                Some(e) => (e, true),
                None => match partner.next() {
                    Some(&e) => (e, false),
                    None => {
                        return Err(EntrapError::InvalidParameter {
                            name: "partner_outputs",
                            reason: "one partner output is needed per cross-check trap",
                        });
                    }
                },
            };
            out.push(OpenedTrap {
                index: pos,
                input: spec.input,
                expected,
                framable,
            });
        }
        if partner.next().is_some() {
            return Err(EntrapError::InvalidParameter {
                name: "partner_outputs",
                reason: "more partner outputs than cross-check traps",
            });
        }
        Ok(out)
    }
}

/// A trap after a valid reveal.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct OpenedTrap {
    /// Its position.
    pub index: SubtaskIndex,
    /// Its input digest.
    pub input: Digest,
    /// The answer the client expects.
    pub expected: Digest,
    /// True when the client itself vouched for the answer (precomputed or
    /// reused), so a wrong answer is the client's fault; false for
    /// cross-checks.
    pub framable: bool,
}

/// What sits in one slot of the shuffled list.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Slot {
    /// The real subtask with this index in the client's original order.
    Real(u32),
    /// The trap with this index in [`JobPlan::traps`] (position order).
    Trap(u32),
}

/// A client's full plan for one provider: public part plus the secrets it
/// reveals later. Build it with [`JobPlan::builder`].
#[derive(Clone, Debug)]
pub struct JobPlan {
    public: PublicPlan,
    slots: Vec<Slot>,
    positions: Vec<SubtaskIndex>,
    traps: Vec<TrapSpec>,
    salt: Salt,
}

/// Builder for a [`JobPlan`] from real inputs, traps and a seed.
#[derive(Clone, Debug)]
pub struct JobPlanBuilder {
    job: JobId,
    real: Vec<Digest>,
    traps: Vec<TrapSpec>,
    seed: Seed,
}

impl JobPlanBuilder {
    /// The real subtasks' input digests, in the client's order.
    pub fn real_inputs(mut self, inputs: Vec<Digest>) -> Self {
        self.real = inputs;
        self
    }
    /// The traps (any order; the builder shuffles).
    pub fn traps(mut self, traps: Vec<TrapSpec>) -> Self {
        self.traps = traps;
        self
    }
    /// The client's secret seed for this plan; the shuffle and the salt are
    /// derived from it (and the job id), so the same seed gives the same plan.
    pub fn seed(mut self, seed: Seed) -> Self {
        self.seed = seed;
        self
    }
    /// Shuffles and commits.
    pub fn build(self) -> Result<JobPlan, EntrapError> {
        JobPlan::build(self.job, self.real, self.traps, &self.seed)
    }
}

impl JobPlan {
    /// Starts a plan for `job`.
    pub fn builder(job: JobId) -> JobPlanBuilder {
        JobPlanBuilder {
            job,
            real: Vec::new(),
            traps: Vec::new(),
            seed: Seed::default(),
        }
    }

    fn build(
        job: JobId,
        real: Vec<Digest>,
        traps: Vec<TrapSpec>,
        seed: &Seed,
    ) -> Result<Self, EntrapError> {
        let total = real.len().saturating_add(traps.len());
        if total == 0 {
            return Err(EntrapError::InvalidParameter {
                name: "subtasks",
                reason: "a plan needs at least one subtask",
            });
        }
        if total > MAX_SUBTASKS {
            return Err(EntrapError::LimitExceeded {
                what: "subtasks",
                got: total,
                max: MAX_SUBTASKS,
            });
        }
        if traps.len() > MAX_TRAPS {
            return Err(EntrapError::LimitExceeded {
                what: "traps",
                got: traps.len(),
                max: MAX_TRAPS,
            });
        }
        // Repeated inputs would let a provider spot traps by comparison.
        let mut all: Vec<Digest> = real
            .iter()
            .copied()
            .chain(traps.iter().map(|t| t.input))
            .collect();
        all.sort_unstable();
        if all.windows(2).any(|w| w[0] == w[1]) {
            return Err(EntrapError::InvalidParameter {
                name: "inputs",
                reason: "two subtasks share an input digest, which would reveal traps",
            });
        }

        let mut rng = seed.derive_indexed("idlegrid/entrap/plan", job.get()).rng();
        // `total <= MAX_SUBTASKS < u32::MAX`, so the casts are exact.
        let mut kinds: Vec<Slot> = (0..real.len() as u32)
            .map(Slot::Real)
            .chain((0..traps.len() as u32).map(Slot::Trap))
            .collect();
        shuffle(&mut kinds, &mut rng);
        let salt = Salt::random(&mut rng);

        // Renumber traps in position order.
        let mut positions = Vec::with_capacity(traps.len());
        let mut ordered = Vec::with_capacity(traps.len());
        let mut slot_inputs = Vec::with_capacity(total);
        for (i, kind) in kinds.iter_mut().enumerate() {
            match *kind {
                Slot::Real(r) => slot_inputs.push(real[r as usize]),
                Slot::Trap(t) => {
                    let spec = traps[t as usize];
                    slot_inputs.push(spec.input);
                    *kind = Slot::Trap(ordered.len() as u32);
                    positions.push(SubtaskIndex::new(i as u32));
                    ordered.push(spec);
                }
            }
        }
        let set = TrapSetRef {
            job,
            positions: &positions,
            traps: &ordered,
        };
        let trap_commitment = Commitment::to(TRAP_SET_DOMAIN, &set, &salt);
        Ok(Self {
            public: PublicPlan {
                job,
                slot_inputs,
                trap_commitment,
            },
            slots: kinds,
            positions,
            traps: ordered,
            salt,
        })
    }

    /// The public part.
    pub fn public(&self) -> &PublicPlan {
        &self.public
    }
    /// What sits in each slot.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }
    /// Trap positions, increasing.
    pub fn trap_positions(&self) -> &[SubtaskIndex] {
        &self.positions
    }
    /// Trap specs in position order.
    pub fn traps(&self) -> &[TrapSpec] {
        &self.traps
    }
    /// Number of traps.
    pub fn trap_count(&self) -> TrapCount {
        TrapCount::new(self.traps.len() as u32)
    }
    /// True if `index` is a trap.
    pub fn is_trap(&self, index: SubtaskIndex) -> bool {
        matches!(self.slots.get(index.as_usize()), Some(Slot::Trap(_)))
    }

    /// The trap reveal, with partner outputs for cross-check traps (in
    /// position order).
    pub fn trap_reveal(&self, partner_outputs: Vec<Digest>) -> TrapReveal {
        TrapReveal {
            positions: self.positions.clone(),
            traps: self.traps.clone(),
            salt: self.salt,
            partner_outputs,
        }
    }

    /// Traps whose revealed output differs from the committed expected
    /// answer: the accusations an honest client makes (cross-check traps
    /// are left to the caller, who knows the partner's output).
    pub fn wrong_traps(&self, outputs: &[Digest]) -> Result<Vec<SubtaskIndex>, EntrapError> {
        self.check_len(outputs)?;
        Ok(self
            .positions
            .iter()
            .zip(&self.traps)
            .filter(|(p, t)| {
                t.source
                    .committed_expected()
                    .is_some_and(|e| e != outputs[p.as_usize()])
            })
            .map(|(p, _)| *p)
            .collect())
    }

    /// The real subtasks' outputs in the client's original order.
    pub fn real_outputs(&self, outputs: &[Digest]) -> Result<Vec<Digest>, EntrapError> {
        self.check_len(outputs)?;
        let n = self.slots.len() - self.traps.len();
        let mut out = vec![Digest::default(); n];
        for (slot, o) in self.slots.iter().zip(outputs) {
            if let Slot::Real(r) = slot {
                out[*r as usize] = *o;
            }
        }
        Ok(out)
    }

    fn check_len(&self, outputs: &[Digest]) -> Result<(), EntrapError> {
        if outputs.len() != self.slots.len() {
            return Err(EntrapError::WrongResultCount {
                expected: self.slots.len(),
                got: outputs.len(),
            });
        }
        Ok(())
    }
}

/// Splits one job over several providers: `real_inputs` are dealt in
/// contiguous chunks (as even as possible) to `traps_per_lot.len()` lots, and
/// lot `i` gets the traps `traps_per_lot[i]` and a shuffle seeded by
/// `seed.derive_indexed("idlegrid/entrap/lot", i)`. Concatenating the lots'
/// [`JobPlan::real_outputs`] restores the job's order.
///
/// No input digest may appear in two lots: colluding providers comparing
/// notes would otherwise spot the shared subtask as a trap. (Cross-check
/// traps deliberately duplicate a real subtask of a partner; build those
/// lots with [`JobPlan::builder`] instead.) Each lot becomes its own
/// [`crate::VerificationRound`]; all lots carry `job`, so the composition
/// root keys rounds by (job, provider).
pub fn split_into_lots(
    job: JobId,
    real_inputs: &[Digest],
    traps_per_lot: Vec<Vec<TrapSpec>>,
    seed: &Seed,
) -> Result<Vec<JobPlan>, EntrapError> {
    let lots = traps_per_lot.len();
    if lots == 0 || lots > real_inputs.len() {
        return Err(EntrapError::InvalidParameter {
            name: "lots",
            reason: "between 1 and one lot per real subtask",
        });
    }
    let total: usize = real_inputs.len() + traps_per_lot.iter().map(Vec::len).sum::<usize>();
    if total > MAX_SUBTASKS.saturating_mul(lots) {
        return Err(EntrapError::LimitExceeded {
            what: "subtasks",
            got: total,
            max: MAX_SUBTASKS * lots,
        });
    }
    let mut all: Vec<Digest> = real_inputs
        .iter()
        .copied()
        .chain(traps_per_lot.iter().flatten().map(|t| t.input))
        .collect();
    all.sort_unstable();
    if all.windows(2).any(|w| w[0] == w[1]) {
        return Err(EntrapError::InvalidParameter {
            name: "inputs",
            reason: "an input digest appears twice across lots, which would reveal traps",
        });
    }
    let (base, extra) = (real_inputs.len() / lots, real_inputs.len() % lots);
    let mut start = 0;
    let mut plans = Vec::with_capacity(lots);
    for (i, traps) in traps_per_lot.into_iter().enumerate() {
        let len = base + usize::from(i < extra);
        plans.push(
            JobPlan::builder(job)
                .real_inputs(real_inputs[start..start + len].to_vec())
                .traps(traps)
                .seed(seed.derive_indexed("idlegrid/entrap/lot", i as u64))
                .build()?,
        );
        start += len;
    }
    Ok(plans)
}

/// A uniform integer in `0..bound` (`bound > 0`) by rejection sampling, so
/// the shuffle is exactly uniform and stable across library versions.
pub(crate) fn uniform_below<R: RngCore>(rng: &mut R, bound: u64) -> u64 {
    assert!(bound > 0, "uniform_below needs a positive bound");
    let zone = u64::MAX - (u64::MAX - bound + 1) % bound;
    loop {
        let v = rng.next_u64();
        if v <= zone {
            return v % bound;
        }
    }
}

/// Fisher–Yates with [`uniform_below`].
pub(crate) fn shuffle<T, R: RngCore>(items: &mut [T], rng: &mut R) {
    for i in (1..items.len()).rev() {
        let j = uniform_below(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(i: u64) -> Digest {
        Digest::of(Domain::new("idlegrid/entrap/test"), &i)
    }

    fn plan(n: u64, k: u64, seed: u64) -> JobPlan {
        JobPlan::builder(JobId::new(7))
            .real_inputs((0..n).map(d).collect())
            .traps(
                (0..k)
                    .map(|i| TrapSpec::precomputed(d(1_000_000 + i), d(i)))
                    .collect(),
            )
            .seed(Seed::from_u64(seed))
            .build()
            .unwrap()
    }

    #[test]
    fn reveal_opens_and_merge_restores_order() {
        let p = plan(20, 3, 1);
        let opened = p.trap_reveal(vec![]).open(p.public()).unwrap();
        assert_eq!(opened.len(), 3);
        let outputs: Vec<Digest> = p.public().slot_inputs.clone();
        let real = p.real_outputs(&outputs).unwrap();
        assert_eq!(real, (0..20).map(d).collect::<Vec<_>>());
        assert_eq!(p.trap_count(), TrapCount::new(3));
    }

    #[test]
    fn tampered_reveal_is_rejected() {
        let p = plan(10, 2, 2);
        let mut r = p.trap_reveal(vec![]);
        r.positions[0] = SubtaskIndex::new((r.positions[0].get() + 1) % 12);
        assert!(r.open(p.public()).is_err());
        let mut r = p.trap_reveal(vec![]);
        r.traps[1].source = TrapSource::Precomputed { expected: d(99) };
        assert_eq!(
            r.open(p.public()),
            Err(EntrapError::CommitmentMismatch { what: "trap set" })
        );
        assert!(p.trap_reveal(vec![d(1)]).open(p.public()).is_err());
    }

    #[test]
    fn bad_plans_are_errors() {
        let b = JobPlan::builder(JobId::new(1));
        assert!(b.clone().build().is_err());
        assert!(b.clone().real_inputs(vec![d(1), d(1)]).build().is_err());
        assert!(b.real_inputs(vec![d(0); MAX_SUBTASKS + 1]).build().is_err());
    }

    #[test]
    fn lots_partition_the_job_and_never_share_inputs() {
        let real: Vec<Digest> = (0..10).map(d).collect();
        let traps = |base: u64| vec![TrapSpec::precomputed(d(base), d(base + 1))];
        let lots = split_into_lots(
            JobId::new(3),
            &real,
            vec![traps(100), traps(200), traps(300)],
            &Seed::from_u64(1),
        )
        .unwrap();
        assert_eq!(lots.len(), 3);
        let merged: Vec<Digest> = lots
            .iter()
            .flat_map(|p| p.real_outputs(&p.public().slot_inputs).unwrap())
            .collect();
        assert_eq!(merged, real);
        assert!(
            split_into_lots(
                JobId::new(3),
                &real,
                vec![traps(100), traps(100)],
                &Seed::from_u64(1)
            )
            .is_err()
        );
        assert!(split_into_lots(JobId::new(3), &real, vec![], &Seed::from_u64(1)).is_err());
    }

    #[test]
    fn same_seed_same_plan() {
        assert_eq!(
            plan(50, 5, 3).trap_positions(),
            plan(50, 5, 3).trap_positions()
        );
        assert_ne!(
            plan(50, 5, 3).trap_positions(),
            plan(50, 5, 4).trap_positions()
        );
    }
}
