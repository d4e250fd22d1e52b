//! Executor benchmarks, named `executor::op/param=value`.
//!
//! Run: `cargo bench -p idlegrid-executor --bench executor`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_main};
use idlegrid_executor::*;

const ECHO: &str = r#"(module
  (import "env" "input_len" (func $len (result i32)))
  (import "env" "read_input" (func $read (param i32 i32 i32) (result i32)))
  (import "env" "write_output" (func $write (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "run")
    (drop (call $read (i32.const 0) (i32.const 0) (call $len)))
    (call $write (i32.const 0) (call $len))))"#;

/// `acc = acc * 6364136223846793005 + i` for i in 0..n, written as 8 bytes.
fn lcg_module(n: u64) -> String {
    format!(
        r#"(module
  (import "env" "write_output" (func $write (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "run") (local $i i64) (local $acc i64)
    (loop $l
      (local.set $acc (i64.add (i64.mul (local.get $acc) (i64.const 6364136223846793005)) (local.get $i)))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (i64.const {n}))))
    (i64.store (i32.const 0) (local.get $acc))
    (call $write (i32.const 0) (i32.const 8))))"#
    )
}

fn native_lcg(n: u64) -> u64 {
    let mut acc = 0u64;
    let mut i = 0u64;
    loop {
        acc = acc
            .wrapping_mul(6364136223846793005)
            .wrapping_add(black_box(i));
        i += 1;
        if i >= n {
            return acc;
        }
    }
}

fn wasm(c: &mut Criterion) {
    let limits = Limits {
        fuel: u64::MAX / 2,
        ..Limits::default()
    };
    let exec = WasmExecutor::default();
    let echo = Task::new(Program::wasm(ECHO), vec![7u8; 1024]);
    c.bench_function("executor::wasm_instantiate_run/module=echo_1KiB", |b| {
        b.iter(|| exec.run(black_box(&echo), &limits).unwrap())
    });
    let uncached = WasmExecutor::new(WasmConfig {
        cache_capacity: 0,
        ..WasmConfig::default()
    });
    c.bench_function(
        "executor::wasm_compile_instantiate_run/module=echo_1KiB",
        |b| b.iter(|| uncached.run(black_box(&echo), &limits).unwrap()),
    );

    let n = 1_000_000u64;
    let task = Task::new(Program::wasm(lcg_module(n)), vec![]);
    let fuel = exec.run(&task, &limits).unwrap().usage.fuel;
    let mut g = c.benchmark_group("executor::loop");
    g.sample_size(20);
    // Elements are fuel units: the report's elem/s is fuel per second.
    g.throughput(Throughput::Elements(fuel));
    g.bench_function(format!("wasm/iters={n}"), |b| {
        b.iter(|| exec.run(black_box(&task), &limits).unwrap())
    });
    g.bench_function(format!("native/iters={n}"), |b| {
        b.iter(|| native_lcg(black_box(n)))
    });
    g.finish();
    // Both compute the same value.
    let out = exec.run(&task, &limits).unwrap().output;
    assert_eq!(out, native_lcg(n).to_le_bytes());
}

fn process(c: &mut Criterion) {
    if !std::path::Path::new("/usr/bin/python3").exists() {
        eprintln!("skipping executor::process_spawn: no /usr/bin/python3");
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let exec = ProcessExecutor::default();
    let task = Task::new(Program::python("pass"), vec![]);
    let limits = Limits::default();
    let mut g = c.benchmark_group("executor::process_spawn");
    g.sample_size(10);
    g.bench_function("script=python_pass", |b| {
        b.iter(|| rt.block_on(exec.execute(&task, &limits)).unwrap())
    });
    g.finish();
}

mod group {
    use super::{process, wasm};
    criterion::criterion_group!(benches, wasm, process);
}
criterion_main!(group::benches);
