//! Pieces shared by the examples: the WebAssembly task, input digests and
//! the route from settlement verdicts to the reputation book.

use idlegrid_executor::{Execution, Limits, Program, Task, WasmExecutor};
use idlegrid_node::feedback::reputation_feedback;
use idlegrid_primitives::{Digest, Domain};
use idlegrid_reputation::{ReputationBook, ReputationError};

use crate::jobs_app::ReputationNote;

/// Domain of the digests that name subtask inputs in entrap plans.
pub const INPUT_DOMAIN: Domain = Domain::new("idlegrid/examples/input");

/// The examples' WebAssembly task: 32-bit FNV-1a over the input, iterated
/// `rounds` times over the running hash so that a subtask burns a little
/// fuel; the output is the 4-byte little-endian hash. Deterministic, so a
/// client can precompute trap answers and referees can re-execute.
pub const FNV_WAT: &str = r#"(module
  (import "env" "input_len" (func $len (result i32)))
  (import "env" "read_input" (func $read (param i32 i32 i32) (result i32)))
  (import "env" "write_output" (func $write (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "run")
    (local $n i32) (local $i i32) (local $h i32) (local $round i32)
    ;; input at offset 16, at most 60 000 bytes
    (local.set $n (call $read (i32.const 16) (i32.const 0)
      (select (call $len) (i32.const 60000) (i32.lt_u (call $len) (i32.const 60000)))))
    (local.set $h (i32.const 0x811c9dc5))
    (block $rounds_done
      (loop $rounds
        (br_if $rounds_done (i32.ge_u (local.get $round) (i32.const 64)))
        (local.set $i (i32.const 0))
        (block $done
          (loop $next
            (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
            (local.set $h (i32.mul
              (i32.xor (local.get $h) (i32.load8_u offset=16 (local.get $i)))
              (i32.const 16777619)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $next)))
        (local.set $round (i32.add (local.get $round) (i32.const 1)))
        (br $rounds)))
    (i32.store (i32.const 0) (local.get $h))
    (call $write (i32.const 0) (i32.const 4))))"#;

/// The program running [`FNV_WAT`].
pub fn fnv_program() -> Program {
    Program::wasm(FNV_WAT)
}

/// Limits for the examples' WebAssembly subtasks.
pub fn wasm_limits() -> Limits {
    Limits {
        fuel: 50_000_000,
        ..Limits::default()
    }
}

/// Runs the FNV task over `input` on `exec` (deterministic).
pub fn run_fnv(
    exec: &WasmExecutor,
    input: &[u8],
) -> Result<Execution, idlegrid_executor::ExecError> {
    exec.run(&Task::new(fnv_program(), input.to_vec()), &wasm_limits())
}

/// The digest naming a subtask input in a plan.
pub fn input_digest(input: &[u8]) -> Digest {
    Digest::hash(INPUT_DOMAIN, input)
}

/// Feeds settled verdicts into the reputation book: the counterparty of the
/// round is the reporter, the round's escrow the value at stake. Verdicts
/// come from the ledger, so they are applied without a reporter signature
/// ([`ReputationBook::apply_feedback`]). Returns how many were applied.
pub fn feed_reputation(
    book: &mut ReputationBook,
    notes: &[ReputationNote],
) -> Result<usize, ReputationError> {
    let mut n = 0;
    for note in notes {
        // The node's one verdict → feedback mapping, as the marketplace uses.
        let epoch = book.epoch();
        let Some(fb) =
            reputation_feedback(&note.effect, note.client, note.provider, note.value, epoch)
        else {
            continue;
        };
        book.apply_feedback(&fb)?;
        n += 1;
    }
    Ok(n)
}

/// Formats a digest's first bytes for printing.
pub fn short(d: &Digest) -> String {
    d.as_bytes()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
