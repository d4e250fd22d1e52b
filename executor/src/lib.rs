//! # idlegrid-executor
//!
//! Executors run the actual work of the idlegrid compute market. Each runs a
//! [`Task`] (a [`Program`] and its input) under [`Limits`] and returns an
//! [`Execution`] — the output bytes, their digest (what providers commit
//! to) and metered [`Usage`] — or a typed [`ExecError`]. Bad programs and bad
//! input never panic.
//!
//! - [`WasmExecutor`]: WebAssembly on wasmi, fuel-metered, memory-capped,
//!   with no ambient authority and a three-function host ABI (see [`wasm`]).
//!   Deterministic: the same task gives the same output and the same fuel on
//!   every machine, so it is the referee's executor. Fuel converts into
//!   [`Usage::compute_micros`], the figure the market prices.
//! - [`ProcessExecutor`]: a native process such as `python3 script.py` in a
//!   fresh directory, with rlimits, a wall-clock kill of the process group, a
//!   cleared environment, no network and a Landlock filesystem confinement
//!   where the host allows them, and an
//!   unprivileged sandbox user when run as root (see [`process`]). What was
//!   actually applied is reported in [`Usage::isolation`].
//! - [`SimulatedExecutor`]: a cost model and cheating behaviours for the
//!   simulator, all seeded (see [`simulated`]).
//! - Job splitting: [`split_lines`], [`map_tasks`], [`run_split`] and
//!   [`merge`] spread one program over many inputs and merge the outputs in
//!   order, without changing the program.
//!
//! ## Example
//!
//! ```
//! use idlegrid_executor::*;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // A WebAssembly module (text format accepted) that echoes its input.
//! let echo = r#"(module
//!   (import "env" "input_len" (func $len (result i32)))
//!   (import "env" "read_input" (func $read (param i32 i32 i32) (result i32)))
//!   (import "env" "write_output" (func $write (param i32 i32)))
//!   (memory (export "memory") 1)
//!   (func (export "run")
//!     (drop (call $read (i32.const 0) (i32.const 0) (call $len)))
//!     (call $write (i32.const 0) (call $len))))"#;
//! let wasm = WasmExecutor::default();
//! let task = Task::new(Program::wasm(echo), b"hello".to_vec());
//! let limits = Limits { fuel: 10_000, ..Limits::default() };
//! let run = wasm.execute(&task, &limits).await.unwrap();
//! assert_eq!(run.output, b"hello");
//! assert_eq!(run.output_digest, output_digest(b"hello"));
//! // Determinism: a fresh executor burns exactly the same fuel.
//! let again = WasmExecutor::default().execute(&task, &limits).await.unwrap();
//! assert_eq!(again, run);
//!
//! // Too little fuel is a typed error, not a hang or a panic.
//! let starved = Limits { fuel: 5, ..limits };
//! assert!(matches!(
//!     wasm.execute(&task, &starved).await,
//!     Err(ExecError::OutOfFuel { .. })
//! ));
//!
//! // In simulation, the correct output is defined by the task and a lazy
//! // cheater returns a wrong one at the configured (seeded) rate.
//! let cheater = SimulatedExecutor::new(
//!     Behaviour::LazyCheater { rate: Rate::ALWAYS },
//!     CostModel::default(),
//!     idlegrid_primitives::Seed::from_u64(7),
//! );
//! let out = cheater.execute(&task, &limits).await.unwrap();
//! assert_ne!(out.output, reference_output(&task));
//! # }
//! ```
//!
//! ## Time and determinism
//!
//! [`WasmExecutor`] and [`SimulatedExecutor`] are deterministic: their
//! outputs and usage depend only on the task, the limits, the configuration
//! and (simulated) the seed; neither reads a clock. [`ProcessExecutor`]
//! touches the OS: it measures wall time (the one place this crate reads the
//! clock) and its output is only as deterministic as the program.
//!
//! ## For auditors
//!
//! With the `strategies` feature, the `strategies` module exports proptest strategies
//! for the public types.
#![deny(missing_docs)]

mod error;
pub mod process;
pub mod simulated;
mod split;
mod task;
pub mod wasm;

#[cfg(feature = "strategies")]
pub mod strategies;

pub use error::{ExecError, OutputStream};
pub use process::{NetworkPolicy, ProcessConfig, ProcessExecutor};
pub use simulated::{
    Behaviour, CostModel, Rate, SimContext, SimOutcome, SimulatedExecutor, reference_output,
};
pub use split::{SplitError, SplitExecution, map_tasks, merge, run_split, split_lines};
pub use task::{
    Applied, Containment, Execution, Executor, ExecutorKind, InputFile, Isolation, Limits,
    OUTPUT_DOMAIN, PROGRAM_DOMAIN, Program, TASK_DOMAIN, Task, Usage, check_execution,
    output_digest,
};
pub use wasm::{WasmConfig, WasmExecutor};
