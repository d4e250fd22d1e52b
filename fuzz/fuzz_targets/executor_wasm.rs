//! Untrusted WebAssembly (binary or text) through `WasmExecutor::compile`
//! and `run` under small fuel, memory and output limits: never panics, a
//! successful run passes `check_execution` and stays within the limits, and
//! running the same task again gives the identical result (determinism).
//! The serde wire types (`Task`, `Limits`, `Execution`) decode canonically.
#![no_main]

use std::sync::OnceLock;

use idlegrid_executor::{Execution, Limits, Program, Task, WasmExecutor, check_execution};
use idlegrid_primitives::{decode, encode};
use libfuzzer_sys::fuzz_target;

const ECHO: &str = r#"(module
  (import "env" "input_len" (func $len (result i32)))
  (import "env" "read_input" (func $read (param i32 i32 i32) (result i32)))
  (import "env" "write_output" (func $write (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "run")
    (drop (call $read (i32.const 0) (i32.const 0) (call $len)))
    (call $write (i32.const 0) (call $len))))"#;

const SPIN: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "run") (loop $l (br $l))))"#;

const GROW: &str = r#"(module
  (import "env" "write_output" (func $write (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "run")
    (drop (memory.grow (i32.const 100)))
    (call $write (i32.const 0) (i32.const 100000))))"#;

fn executor() -> &'static WasmExecutor {
    static E: OnceLock<WasmExecutor> = OnceLock::new();
    E.get_or_init(WasmExecutor::default)
}

fn check<T: serde::Serialize + serde::de::DeserializeOwned>(data: &[u8]) {
    if let Ok(v) = decode::<T>(data, 1 << 16) {
        assert_eq!(encode(&v), data, "accepted a non-canonical encoding");
    }
}

fuzz_target!(
    init: idlegrid_fuzz::write_seeds(
        [ECHO, SPIN, GROW].iter().map(|m| [&[0u8][..], m.as_bytes()].concat())
    ),
    |data: &[u8]| {
        check::<Task>(data);
        check::<Limits>(data);
        check::<Execution>(data);
        let Some((&sel, module)) = data.split_first() else { return };
        let limits = Limits {
            fuel: [10_000, 200_000, 1][usize::from(sel % 3)],
            memory_bytes: [1 << 20, 64 << 10, 0][usize::from(sel / 3 % 3)],
            output_bytes: [4096, 0, 16][usize::from(sel / 9 % 3)],
            input_bytes: 64,
            ..Limits::default()
        };
        let task = Task::new(Program::wasm(module.to_vec()), b"hello\nworld".to_vec());
        let first = executor().run(&task, &limits);
        if let Ok(run) = &first {
            check_execution(run).expect("a successful run is self-consistent");
            assert!(run.output.len() as u64 <= limits.output_bytes);
            assert!(run.usage.fuel <= limits.fuel);
        }
        assert_eq!(executor().run(&task, &limits), first, "the same task ran differently");
    }
);
