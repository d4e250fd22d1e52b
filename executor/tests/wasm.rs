//! WebAssembly executor: real modules, determinism, every limit.

use idlegrid_executor::*;
use proptest::prelude::*;

const ABI: &str = r#"
  (import "env" "input_len" (func $len (result i32)))
  (import "env" "read_input" (func $read (param i32 i32 i32) (result i32)))
  (import "env" "write_output" (func $write (param i32 i32)))
  (memory (export "memory") 1)
"#;

fn module(body: &str) -> Program {
    Program::wasm(format!("(module {ABI} {body})"))
}

/// Reads the input, then writes it reversed followed by an 8-byte
/// little-endian FNV-1a hash of it computed in a loop.
fn compute() -> Program {
    module(
        r#"
  (func (export "run") (local $n i32) (local $i i32) (local $h i64)
    (local.set $n (call $len))
    (drop (call $read (i32.const 0) (i32.const 0) (local.get $n)))
    (local.set $h (i64.const 0xcbf29ce484222325))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      ;; reversed copy at 32768
      (i32.store8 (i32.sub (i32.add (i32.const 32768) (local.get $n)) (i32.add (local.get $i) (i32.const 1)))
                  (i32.load8_u (local.get $i)))
      (local.set $h (i64.mul (i64.xor (local.get $h) (i64.load8_u (local.get $i))) (i64.const 0x100000001b3)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (i64.store (i32.add (i32.const 32768) (local.get $n)) (local.get $h))
    (call $write (i32.const 32768) (i32.add (local.get $n) (i32.const 8))))"#,
    )
}

fn limits() -> Limits {
    Limits {
        fuel: 10_000_000,
        memory_bytes: 4 << 20,
        output_bytes: 1 << 20,
        ..Limits::default()
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

#[tokio::test]
async fn computes_the_right_output() {
    let input = b"idlegrid runs real work".to_vec();
    let task = Task::new(compute(), input.clone());
    let run = WasmExecutor::default()
        .execute(&task, &limits())
        .await
        .unwrap();
    let mut expected: Vec<u8> = input.iter().rev().copied().collect();
    expected.extend_from_slice(&fnv(&input).to_le_bytes());
    assert_eq!(run.output, expected);
    assert_eq!(run.output_digest, output_digest(&expected));
    assert!(run.usage.fuel > 0);
    assert_eq!(run.usage.isolation, Isolation::WASM);
}

#[tokio::test]
async fn same_task_same_output_and_fuel_across_runs_and_executors() {
    let task = Task::new(compute(), vec![7u8; 3000]);
    let shared = WasmExecutor::default();
    let first = shared.execute(&task, &limits()).await.unwrap();
    // Cached module, same executor.
    for _ in 0..3 {
        assert_eq!(shared.execute(&task, &limits()).await.unwrap(), first);
    }
    // Fresh executors (fresh engine, empty cache) and a zero-size cache.
    let fresh = WasmExecutor::default()
        .execute(&task, &limits())
        .await
        .unwrap();
    let uncached = WasmExecutor::new(WasmConfig {
        cache_capacity: 0,
        ..WasmConfig::default()
    })
    .run(&task, &limits())
    .unwrap();
    assert_eq!(fresh, first);
    assert_eq!(uncached, first);
    assert_eq!(shared.cached_modules(), 1);
    // Fuel scales with the work and prices deterministically.
    let small = shared
        .run(&Task::new(compute(), vec![7u8; 30]), &limits())
        .unwrap();
    assert!(small.usage.fuel < first.usage.fuel);
    assert_eq!(
        first.usage.compute_micros,
        shared.fuel_to_micros(first.usage.fuel)
    );
}

#[tokio::test]
async fn exactly_enough_fuel_succeeds_one_less_fails() {
    let task = Task::new(compute(), vec![1u8; 100]);
    let exec = WasmExecutor::default();
    let used = exec.run(&task, &limits()).unwrap().usage.fuel;
    let exact = Limits {
        fuel: used,
        ..limits()
    };
    assert_eq!(exec.run(&task, &exact).unwrap().usage.fuel, used);
    let short = Limits {
        fuel: used - 1,
        ..limits()
    };
    assert_eq!(
        exec.run(&task, &short),
        Err(ExecError::OutOfFuel { limit: used - 1 })
    );
}

#[tokio::test]
async fn infinite_loop_runs_out_of_fuel() {
    let task = Task::new(module(r#"(func (export "run") (loop $l (br $l)))"#), vec![]);
    let r = WasmExecutor::default().execute(&task, &limits()).await;
    assert_eq!(
        r,
        Err(ExecError::OutOfFuel {
            limit: limits().fuel
        })
    );
}

#[tokio::test]
async fn growing_memory_hits_the_memory_limit() {
    let grow = module(
        r#"(func (export "run")
             (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1)))))"#,
    );
    let r = WasmExecutor::default()
        .execute(&Task::new(grow, vec![]), &limits())
        .await;
    assert_eq!(
        r,
        Err(ExecError::MemoryLimit {
            limit_bytes: 4 << 20
        })
    );

    // A module whose initial memory already exceeds the limit.
    let big = Program::wasm(r#"(module (memory (export "memory") 200) (func (export "run")))"#);
    let r = WasmExecutor::default()
        .execute(&Task::new(big, vec![]), &limits())
        .await;
    assert_eq!(
        r,
        Err(ExecError::MemoryLimit {
            limit_bytes: 4 << 20
        })
    );
}

#[tokio::test]
async fn traps_are_typed() {
    let exec = WasmExecutor::default();
    for body in [
        r#"(func (export "run") unreachable)"#,
        r#"(func (export "run") (drop (i32.div_u (i32.const 1) (i32.const 0))))"#,
        r#"(func (export "run") (drop (i32.load (i32.const 70000))))"#,
        // Stack overflow: deterministic thanks to the fixed recursion limit.
        r#"(func $f (export "run") (call $f))"#,
        // Host call with an out-of-bounds pointer.
        r#"(func (export "run") (call $write (i32.const 65530) (i32.const 100)))"#,
    ] {
        let r = exec
            .execute(&Task::new(module(body), vec![1, 2, 3]), &limits())
            .await;
        assert!(matches!(r, Err(ExecError::Trap(_))), "{body}: {r:?}");
    }
}

#[tokio::test]
async fn output_too_large() {
    let task = Task::new(
        module(r#"(func (export "run") (call $write (i32.const 0) (i32.const 65536)))"#),
        vec![],
    );
    let small = Limits {
        output_bytes: 1000,
        ..limits()
    };
    let r = WasmExecutor::default().execute(&task, &small).await;
    assert_eq!(r, Err(ExecError::OutputTooLarge { limit_bytes: 1000 }));
}

#[tokio::test]
async fn non_zero_result_is_an_exit_code() {
    let task = Task::new(
        module(r#"(func (export "run") (result i32) (i32.const 3))"#),
        vec![],
    );
    let r = WasmExecutor::default().execute(&task, &limits()).await;
    assert!(
        matches!(r, Err(ExecError::NonZeroExit { code: 3, .. })),
        "{r:?}"
    );
}

#[tokio::test]
async fn bad_modules_are_bad_programs() {
    let exec = WasmExecutor::default();
    let cases: Vec<Vec<u8>> = vec![
        b"\0asm garbage".to_vec(),
        b"(module (func".to_vec(),
        vec![],
        // Missing `run`.
        br#"(module (memory (export "memory") 1))"#.to_vec(),
        // Missing memory.
        br#"(module (func (export "run")))"#.to_vec(),
        // Ambient authority is not importable.
        br#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
             (memory (export "memory") 1) (func (export "run")))"#
            .to_vec(),
        // Wrong signature for `run`.
        br#"(module (memory (export "memory") 1) (func (export "run") (param i32)))"#.to_vec(),
        // Wrong signature for a host import.
        br#"(module (import "env" "input_len" (func (param i32)))
             (memory (export "memory") 1) (func (export "run")))"#
            .to_vec(),
    ];
    for bytes in cases {
        let task = Task::new(Program::wasm(bytes.clone()), vec![]);
        let r = exec.execute(&task, &limits()).await;
        assert!(
            matches!(r, Err(ExecError::BadProgram(_))),
            "{}: {r:?}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

#[tokio::test]
async fn wrong_kind_files_and_huge_input_are_rejected() {
    let exec = WasmExecutor::default();
    let py = Task::new(Program::python("print(1)"), vec![]);
    assert_eq!(
        exec.execute(&py, &limits()).await,
        Err(ExecError::UnsupportedKind {
            kind: ExecutorKind::Process
        })
    );
    let with_file = Task::new(compute(), vec![]).with_file("x", b"y".to_vec());
    assert!(matches!(
        exec.execute(&with_file, &limits()).await,
        Err(ExecError::BadInput(_))
    ));
    let tight = Limits {
        input_bytes: 10,
        ..limits()
    };
    assert_eq!(
        exec.execute(&Task::new(compute(), vec![0; 11]), &tight)
            .await,
        Err(ExecError::InputTooLarge { len: 11, max: 10 })
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Arbitrary bytes as a module or input never panic.
    #[test]
    fn arbitrary_modules_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512),
                                     input in proptest::collection::vec(any::<u8>(), 0..64)) {
        let exec = WasmExecutor::default();
        let _ = exec.run(&Task::new(Program::wasm(bytes), input.clone()), &limits());
        // And arbitrary input to a real module is fine and deterministic.
        let a = exec.run(&Task::new(compute(), input.clone()), &limits()).unwrap();
        let b = WasmExecutor::default().run(&Task::new(compute(), input), &limits()).unwrap();
        prop_assert_eq!(a, b);
    }
}
