//! Proptest strategies for the public types (feature `strategies`).
//!
//! ```
//! use idlegrid_executor::{split_lines, strategies};
//! use proptest::prelude::*;
//!
//! proptest!(|(input in proptest::collection::vec(any::<u8>(), 0..256), n in 0usize..8)| {
//!     // Splitting never loses or reorders bytes.
//!     prop_assert_eq!(split_lines(&input, n).concat(), input);
//! });
//! # let _ = strategies::limits();
//! ```

use idlegrid_primitives::strategies as prim;
use proptest::prelude::*;

use crate::{
    Applied, Behaviour, Containment, CostModel, Execution, ExecutorKind, InputFile, Isolation,
    Limits, Program, Rate, Task, Usage,
};

/// Any executor kind.
pub fn executor_kind() -> impl Strategy<Value = ExecutorKind> {
    prop_oneof![Just(ExecutorKind::Wasm), Just(ExecutorKind::Process)]
}

/// Small arbitrary bytes.
fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

/// Any program (arbitrary bytes: mostly invalid, for negative tests).
pub fn program() -> impl Strategy<Value = Program> {
    prop_oneof![
        bytes(256).prop_map(Program::wasm),
        (
            "[a-z0-9]{1,12}",
            proptest::collection::vec("[ -~]{0,8}", 0..3),
            "[a-z]{1,8}\\.py",
            bytes(256)
        )
            .prop_map(|(interpreter, args, file_name, source)| Program::Script {
                interpreter,
                args,
                file_name,
                source,
            }),
    ]
}

/// Any input file (names include invalid ones).
pub fn input_file() -> impl Strategy<Value = InputFile> {
    ("[a-z./]{0,10}", bytes(64)).prop_map(|(name, contents)| InputFile { name, contents })
}

/// Any task.
pub fn task() -> impl Strategy<Value = Task> {
    (
        program(),
        bytes(512),
        proptest::collection::vec(input_file(), 0..3),
    )
        .prop_map(|(program, input, files)| Task {
            program,
            input,
            files,
        })
}

/// Limits from tiny to generous.
pub fn limits() -> impl Strategy<Value = Limits> {
    (
        0u64..10_000_000,
        1u64..5,
        1u64..10,
        (0u64..64).prop_map(|m| m << 20),
        0u64..1 << 20,
        0u64..1 << 16,
        0u64..1 << 20,
    )
        .prop_map(
            |(fuel, cpu, wall, memory_bytes, output_bytes, stderr_bytes, input_bytes)| Limits {
                fuel,
                cpu_time: idlegrid_primitives::Duration::from_secs(cpu),
                wall_time: idlegrid_primitives::Duration::from_secs(wall),
                memory_bytes,
                output_bytes,
                stderr_bytes,
                input_bytes,
                ..Limits::default()
            },
        )
}

/// Any applied flag.
pub fn applied() -> impl Strategy<Value = Applied> {
    prop_oneof![
        Just(Applied::Yes),
        Just(Applied::No),
        Just(Applied::NotNeeded)
    ]
}

/// Any isolation report.
pub fn isolation() -> impl Strategy<Value = Isolation> {
    let containment = prop_oneof![
        Just(Containment::ProcessGroup),
        Just(Containment::UidSweep),
        Just(Containment::PidNamespace),
        Just(Containment::NotNeeded),
    ];
    (applied(), applied(), applied(), applied(), containment).prop_map(
        |(network, unprivileged_user, resource_limits, filesystem, containment)| Isolation {
            network,
            unprivileged_user,
            resource_limits,
            filesystem,
            containment,
        },
    )
}

/// Any usage.
pub fn usage() -> impl Strategy<Value = Usage> {
    (
        any::<u64>(),
        prim::duration(),
        prim::duration(),
        any::<u64>(),
        isolation(),
    )
        .prop_map(
            |(fuel, cpu_time, wall_time, compute_micros, isolation)| Usage {
                fuel,
                cpu_time,
                wall_time,
                compute_micros,
                isolation,
            },
        )
}

/// Any execution (its digest is consistent with its output).
pub fn execution() -> impl Strategy<Value = Execution> {
    (bytes(256), usage()).prop_map(|(output, usage)| Execution::new(output, usage))
}

/// Any rate.
pub fn rate() -> impl Strategy<Value = Rate> {
    (0u32..=1_000_000).prop_map(Rate::from_ppm)
}

/// Any behaviour.
pub fn behaviour() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        Just(Behaviour::Honest),
        rate().prop_map(|rate| Behaviour::LazyCheater { rate }),
        rate().prop_map(|rate| Behaviour::Faulty { rate }),
        (rate(), rate()).prop_map(|(rate, accuracy)| Behaviour::TrapGuessing { rate, accuracy }),
        (any::<u64>(), rate()).prop_map(|(group, rate)| Behaviour::Colluding { group, rate }),
        (0u64..100, rate())
            .prop_map(|(honest_tasks, rate)| Behaviour::BaitAndSwitch { honest_tasks, rate }),
    ]
}

/// A cost model with positive speed.
pub fn cost_model() -> impl Strategy<Value = CostModel> {
    (prim::duration(), 0u64..100_000, 1u64..u64::MAX).prop_map(
        |(startup, work_per_byte, units_per_second)| CostModel {
            startup,
            work_per_byte,
            units_per_second,
        },
    )
}
