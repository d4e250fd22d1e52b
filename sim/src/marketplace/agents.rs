//! What the simulator knows about its providers: the simulated tasks and
//! their correct outputs, behaviours, machine identities and presence.

use idlegrid_executor::{Behaviour, CostModel, Program, Task, output_digest, reference_output};
use idlegrid_primitives::{Digest, Timestamp};

/// Bytes of every subtask input (traps have the same size).
pub const SUBTASK_INPUT_BYTES: usize = 4_096;

/// The program every simulated job runs (its bytes only count for cost).
pub fn program() -> Program {
    Program::wasm(vec![0u8; 256])
}

/// The subtask whose input digest is `d`.
pub fn task_for(d: &Digest) -> Task {
    let mut input = Vec::with_capacity(SUBTASK_INPUT_BYTES);
    while input.len() < SUBTASK_INPUT_BYTES {
        input.extend_from_slice(d.as_bytes());
    }
    input.truncate(SUBTASK_INPUT_BYTES);
    Task::new(program(), input)
}

/// The correct output digest of the subtask with input digest `d` (what a
/// deterministic referee re-execution yields).
pub fn truth(d: &Digest) -> Digest {
    output_digest(&reference_output(&task_for(d)))
}

/// A provider behaviour label used in reports.
pub fn behaviour_name(b: &Behaviour) -> &'static str {
    match b {
        Behaviour::Honest => "honest",
        Behaviour::LazyCheater { .. } => "lazy",
        Behaviour::Faulty { .. } => "faulty",
        Behaviour::TrapGuessing { .. } => "trap_guessing",
        Behaviour::Colluding { .. } => "colluding",
        Behaviour::BaitAndSwitch { .. } => "bait_and_switch",
    }
}

/// True for deliberate cheating behaviours.
pub fn is_cheater(b: &Behaviour) -> bool {
    !matches!(b, Behaviour::Honest | Behaviour::Faulty { .. })
}

/// The machine behind one or more provider identities (a whitewasher
/// burns through several keys; everyone else has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MachineId(pub u32);

/// How a provider identity entered the market.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// Offers at genesis and keeps its key.
    Genesis,
    /// An honest provider that offers first at `join_at` (the control
    /// group for whitewashers).
    Newcomer {
        /// When it submits its `Offer`.
        join_at: Timestamp,
    },
    /// Key number `generation` of a whitewashing machine (0 is its genesis
    /// key; later ones were created after a slash).
    Whitewash {
        /// 0 for the genesis key.
        generation: u32,
    },
}

/// Entry, work and exit times of one identity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Presence {
    /// When its `Offer` was submitted.
    pub joined_at: Option<Timestamp>,
    /// When it abandoned the identity.
    pub left_at: Option<Timestamp>,
    /// Its first match.
    pub first_match_at: Option<Timestamp>,
    /// Lots matched while present and clients were posting jobs.
    pub matches_present: u64,
    /// Traps in its first matched lot (fresh-identity credibility).
    pub first_lot_traps: u64,
    /// Real subtasks in its first matched lot.
    pub first_lot_real: u64,
    /// Traps in its matched lots.
    pub traps_faced: u64,
    /// Real subtasks in its matched lots.
    pub real_faced: u64,
    /// Lots settled.
    pub lots_settled: u64,
    /// Its first execution of a lot with a cheated slot.
    pub first_cheat_at: Option<Timestamp>,
    /// First settlement that convicted it of cheating.
    pub convicted_at: Option<Timestamp>,
    /// Lots settled up to and including that conviction.
    pub lots_to_conviction: u64,
}

/// Cost models by machine speed.
pub fn cost_model(speed_units_per_second: u64) -> CostModel {
    CostModel {
        startup: idlegrid_primitives::Duration::from_millis(5),
        work_per_byte: 10_000,
        units_per_second: speed_units_per_second.max(1),
    }
}
