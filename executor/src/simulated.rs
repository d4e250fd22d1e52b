//! [`SimulatedExecutor`]: a cost model and provider behaviours for the
//! simulator.
//!
//! In simulation a task's correct output is defined, not computed: it is
//! [`reference_output`], a digest of the task. So the correct answer costs
//! nothing to produce, traps can be planted with known answers, and
//! referees can check answers, all deterministically. The *virtual* time the
//! work would take comes from a [`CostModel`]; an honest provider reports
//! it, a lazy cheater skips the work and reports only the start-up cost.
//!
//! Every random choice (whether to cheat, whether a fault strikes) is drawn
//! from the executor's [`Seed`], the task's digest and the number of tasks
//! run so far, so a seeded run is reproducible.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use idlegrid_primitives::{Digest, Domain, Duration, RngCore, Seed};
use serde::{Deserialize, Serialize};

use crate::task::{ExecutorKind, Isolation};
use crate::{ExecError, Execution, Executor, Limits, Task, Usage};

const REFERENCE: Domain = Domain::new("idlegrid/executor/sim-reference");
const WRONG: Domain = Domain::new("idlegrid/executor/sim-wrong");
const COLLUDE: Domain = Domain::new("idlegrid/executor/sim-collude");
const DECIDE: Domain = Domain::new("idlegrid/executor/sim-decide");

/// The correct output of `task` in simulation (32 bytes).
pub fn reference_output(task: &Task) -> Vec<u8> {
    reference_output_of(&task.digest())
}

/// [`reference_output`] of the task whose [`Task::digest`] is `digest`.
fn reference_output_of(digest: &Digest) -> Vec<u8> {
    Digest::hash(REFERENCE, digest.as_bytes())
        .as_bytes()
        .to_vec()
}

/// A probability in parts per million (no floats in decisions).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Rate(u32);

impl Rate {
    /// Never.
    pub const NEVER: Rate = Rate(0);
    /// Always.
    pub const ALWAYS: Rate = Rate(1_000_000);

    /// From parts per million, capped at one million.
    pub const fn from_ppm(ppm: u32) -> Self {
        Rate(if ppm > 1_000_000 { 1_000_000 } else { ppm })
    }
    /// From a percentage, capped at 100.
    pub const fn percent(p: u32) -> Self {
        Rate::from_ppm(p.saturating_mul(10_000))
    }
    /// Parts per million.
    pub const fn ppm(self) -> u32 {
        self.0
    }
    /// True with probability `self`, using `draw` (uniform in `u32`).
    fn hit(self, draw: u32) -> bool {
        u64::from(draw) * 1_000_000 < u64::from(self.0) << 32
    }
}

/// How a simulated provider behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Behaviour {
    /// Always does the work and returns the correct output.
    Honest,
    /// Skips the work on a fraction `rate` of tasks and returns a plausible
    /// wrong output (right length, wrong bytes) at start-up cost.
    LazyCheater {
        /// Fraction of tasks cheated on.
        rate: Rate,
    },
    /// Honest, but a fraction `rate` of results are corrupted by a fault
    /// (after doing the work).
    Faulty {
        /// Fraction of tasks hit by a fault.
        rate: Rate,
    },
    /// Cheats at `rate` on tasks it believes are real, never on tasks it
    /// believes are traps; its belief is right with probability `accuracy`
    /// (50 % is a coin flip: traps indistinguishable from real tasks).
    TrapGuessing {
        /// Fraction of believed-real tasks cheated on.
        rate: Rate,
        /// Probability of telling a trap from a real task correctly.
        accuracy: Rate,
    },
    /// A member of colluding `group`: cheats at `rate`, and every member
    /// returns the same wrong output for the same task (defeating
    /// replication checks between members). Members share the group id and
    /// the seed used for the decision (`group` derives it).
    Colluding {
        /// The group id.
        group: u64,
        /// Fraction of tasks cheated on (decided identically by all members).
        rate: Rate,
    },
    /// Honest for the first `honest_tasks` tasks (building reputation), then
    /// a lazy cheater at `rate`.
    BaitAndSwitch {
        /// Tasks run honestly first.
        honest_tasks: u64,
        /// Cheating rate afterwards.
        rate: Rate,
    },
}

/// Virtual duration of a task: `startup + work_units / speed`, where work
/// units are the task's input bytes times `work_per_byte` plus the program
/// size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CostModel {
    /// Fixed cost of starting any task.
    pub startup: Duration,
    /// Work units per input byte.
    pub work_per_byte: u64,
    /// Machine speed in work units per second (must be positive).
    pub units_per_second: u64,
}

impl Default for CostModel {
    /// 5 ms start-up, 1 000 units per byte, 10⁹ units per second (1 µs per
    /// input byte).
    fn default() -> Self {
        CostModel {
            startup: Duration::from_millis(5),
            work_per_byte: 1_000,
            units_per_second: 1_000_000_000,
        }
    }
}

impl CostModel {
    /// The virtual duration of doing `task`'s work honestly.
    pub fn duration(&self, task: &Task) -> Duration {
        let units = u128::from(task.input_bytes()) * u128::from(self.work_per_byte)
            + u128::from(task.program.size_bytes());
        let us = (units * 1_000_000).div_ceil(u128::from(self.units_per_second.max(1)));
        self.startup
            .saturating_add(Duration::from_micros(u64::try_from(us).unwrap_or(u64::MAX)))
    }
}

/// What the simulator knows that the provider does not: whether the task
/// is a trap. Only [`Behaviour::TrapGuessing`] looks at it, through its
/// noisy guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SimContext {
    /// Ground truth: the task is a trap.
    pub is_trap: bool,
}

/// A simulated execution with the ground truth the simulator needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOutcome {
    /// What the provider returns.
    pub execution: Execution,
    /// True if the output is the correct one.
    pub correct: bool,
    /// True if the provider deliberately skipped the work (a fault is not
    /// cheating).
    pub cheated: bool,
}

/// A simulated provider: cost model, behaviour and seed. See the module docs.
#[derive(Debug)]
pub struct SimulatedExecutor {
    cost: CostModel,
    behaviour: Behaviour,
    seed: Seed,
    executed: AtomicU64,
}

impl SimulatedExecutor {
    /// A provider with `behaviour`, `cost` model and decision `seed`.
    pub fn new(behaviour: Behaviour, cost: CostModel, seed: Seed) -> Self {
        SimulatedExecutor {
            cost,
            behaviour,
            seed,
            executed: AtomicU64::new(0),
        }
    }

    /// An honest provider with the default cost model.
    pub fn honest(seed: Seed) -> Self {
        Self::new(Behaviour::Honest, CostModel::default(), seed)
    }

    /// The behaviour.
    pub fn behaviour(&self) -> Behaviour {
        self.behaviour
    }

    /// The cost model.
    pub fn cost_model(&self) -> &CostModel {
        &self.cost
    }

    /// Tasks run so far.
    pub fn executed(&self) -> u64 {
        self.executed.load(Ordering::Relaxed)
    }

    /// A deterministic uniform `u32` for decision `label` on this task.
    fn draw(&self, seed: &Seed, label: &str, task: &Digest, index: u64) -> u32 {
        let d = Digest::hash_parts(
            DECIDE,
            &[
                seed.as_bytes(),
                label.as_bytes(),
                task.as_bytes(),
                &index.to_le_bytes(),
            ],
        );
        Seed::from_bytes(d.to_bytes()).rng().next_u32()
    }

    /// Runs `task` knowing whether it is a trap (only a trap-guessing
    /// provider uses that, through its noisy guess).
    ///
    /// # Errors
    /// [`ExecError::InputTooLarge`] over the input limit.
    pub fn run(
        &self,
        task: &Task,
        limits: &Limits,
        ctx: SimContext,
    ) -> Result<SimOutcome, ExecError> {
        limits.check_input(task)?;
        let index = self.executed.fetch_add(1, Ordering::Relaxed);
        let digest = task.digest();
        let draw = |label: &str| self.draw(&self.seed, label, &digest, index);
        let (cheat, fault, wrong) = match self.behaviour {
            Behaviour::Honest => (false, false, None),
            Behaviour::LazyCheater { rate } => (rate.hit(draw("cheat")), false, None),
            Behaviour::Faulty { rate } => (false, rate.hit(draw("fault")), None),
            Behaviour::TrapGuessing { rate, accuracy } => {
                let guessed_right = accuracy.hit(draw("guess"));
                let believes_trap = ctx.is_trap == guessed_right;
                (!believes_trap && rate.hit(draw("cheat")), false, None)
            }
            Behaviour::Colluding { group, rate } => {
                // Group members share the decision: derive it from the group,
                // not from the member's own seed or task count.
                let group_seed = Seed::from_u64(group).derive("idlegrid/executor/collude");
                let cheat = rate.hit(self.draw(&group_seed, "cheat", &digest, 0));
                let wrong = Digest::hash_parts(COLLUDE, &[&group.to_le_bytes(), digest.as_bytes()]);
                (cheat, false, Some(wrong.as_bytes().to_vec()))
            }
            Behaviour::BaitAndSwitch { honest_tasks, rate } => (
                index >= honest_tasks && rate.hit(draw("cheat")),
                false,
                None,
            ),
        };
        let correct_output = reference_output_of(&digest);
        let output = if cheat {
            wrong.unwrap_or_else(|| {
                Digest::hash_parts(WRONG, &[self.seed.as_bytes(), digest.as_bytes()])
                    .as_bytes()
                    .to_vec()
            })
        } else if fault {
            let mut o = correct_output.clone();
            let bit = draw("fault-bit") as usize % (o.len() * 8);
            o[bit / 8] ^= 1 << (bit % 8);
            o
        } else {
            correct_output.clone()
        };
        let duration = if cheat {
            self.cost.startup
        } else {
            self.cost.duration(task)
        };
        let correct = output == correct_output;
        assert!(correct != (cheat || fault));
        let usage = Usage {
            fuel: 0,
            cpu_time: duration,
            wall_time: duration,
            compute_micros: duration.as_micros(),
            isolation: Isolation::SIMULATED,
        };
        Ok(SimOutcome {
            execution: Execution::new(output, usage),
            correct,
            cheated: cheat,
        })
    }
}

#[async_trait]
impl Executor for SimulatedExecutor {
    /// A simulated provider claims every kind.
    fn supports(&self, _kind: ExecutorKind) -> bool {
        true
    }

    /// Runs as if the task were real (the provider cannot know otherwise).
    async fn execute(&self, task: &Task, limits: &Limits) -> Result<Execution, ExecError> {
        self.run(task, limits, SimContext::default())
            .map(|o| o.execution)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_bounds() {
        assert!(!Rate::NEVER.hit(0));
        assert!(Rate::ALWAYS.hit(u32::MAX));
        assert_eq!(Rate::percent(250), Rate::ALWAYS);
        assert!(Rate::percent(50).hit(u32::MAX / 2 - 1));
        assert!(!Rate::percent(50).hit(u32::MAX / 2 + 1));
    }

    #[test]
    fn cost_model_scales_with_input() {
        let m = CostModel::default();
        let small = Task::new(crate::Program::python("x"), vec![0; 10]);
        let big = Task::new(crate::Program::python("x"), vec![0; 10_000]);
        assert!(m.duration(&big) > m.duration(&small));
        assert!(m.duration(&small) >= m.startup);
    }
}
