//! Job splitting: a split job over several executors merges to the output of
//! one run, with no change to the program.

use idlegrid_executor::*;
use idlegrid_primitives::Seed;
use proptest::prelude::*;

const SCRIPT: &str = "import sys\nfor line in sys.stdin:\n    n = int(line)\n    print(n, n * n)";

fn records(n: u32) -> Vec<u8> {
    (1..=n)
        .map(|i| format!("{i}\n"))
        .collect::<String>()
        .into_bytes()
}

#[tokio::test]
async fn python_job_split_over_three_executors_equals_one_run() {
    if !std::path::Path::new("/usr/bin/python3").exists() {
        eprintln!("SKIPPED: no /usr/bin/python3");
        return;
    }
    let input = records(20);
    let limits = Limits::default();
    let one = ProcessExecutor::default();
    let whole = one
        .execute(&Task::new(Program::python(SCRIPT), input.clone()), &limits)
        .await
        .unwrap();

    let (a, b, c) = (
        ProcessExecutor::default(),
        ProcessExecutor::default(),
        ProcessExecutor::default(),
    );
    let executors: [&dyn Executor; 3] = [&a, &b, &c];
    let tasks = map_tasks(&Program::python(SCRIPT), split_lines(&input, 5));
    assert_eq!(tasks.len(), 5);
    let split = run_split(&executors, &tasks, &limits).await.unwrap();
    assert_eq!(split.merged.output, whole.output);
    assert_eq!(split.merged.output_digest, whole.output_digest);
    assert_eq!(split.part_digests.len(), 5);
}

#[tokio::test]
async fn wasm_job_split_equals_one_run_and_fuel_adds_up() {
    // Uppercases its input (a per-byte map, so splitting cannot change it).
    let upper = Program::wasm(
        r#"(module
  (import "env" "input_len" (func $len (result i32)))
  (import "env" "read_input" (func $read (param i32 i32 i32) (result i32)))
  (import "env" "write_output" (func $write (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "run") (local $n i32) (local $i i32) (local $c i32)
    (local.set $n (call $read (i32.const 0) (i32.const 0) (call $len)))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $c (i32.load8_u (local.get $i)))
      (if (i32.and (i32.ge_u (local.get $c) (i32.const 97)) (i32.le_u (local.get $c) (i32.const 122)))
        (then (i32.store8 (local.get $i) (i32.sub (local.get $c) (i32.const 32)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (call $write (i32.const 0) (local.get $n))))"#,
    );
    let input = b"alpha\nbravo\ncharlie\ndelta\necho\n".to_vec();
    let limits = Limits {
        fuel: 1_000_000,
        ..Limits::default()
    };
    let wasm = WasmExecutor::default();
    let whole = wasm
        .execute(&Task::new(upper.clone(), input.clone()), &limits)
        .await
        .unwrap();
    assert_eq!(whole.output, b"ALPHA\nBRAVO\nCHARLIE\nDELTA\nECHO\n");
    let other = WasmExecutor::default();
    let executors: [&dyn Executor; 2] = [&wasm, &other];
    let split = run_split(
        &executors,
        &map_tasks(&upper, split_lines(&input, 3)),
        &limits,
    )
    .await
    .unwrap();
    assert_eq!(split.merged.output, whole.output);
    assert!(split.merged.usage.fuel > 0);
}

#[tokio::test]
async fn failures_name_the_subtask_and_kinds_are_routed() {
    let wasm = WasmExecutor::default();
    let sim = SimulatedExecutor::honest(Seed::from_u64(1));
    // Python tasks skip the wasm executor and go to the simulated one.
    let executors: [&dyn Executor; 2] = [&wasm, &sim];
    let tasks = map_tasks(&Program::python("print(1)"), split_lines(&records(4), 4));
    let split = run_split(&executors, &tasks, &Limits::default())
        .await
        .unwrap();
    let expected: Vec<u8> = tasks.iter().flat_map(reference_output).collect();
    assert_eq!(split.merged.output, expected);
    assert_eq!(sim.executed(), 4);

    // No executor for the kind.
    let only_wasm: [&dyn Executor; 1] = [&wasm];
    let err = run_split(&only_wasm, &tasks, &Limits::default())
        .await
        .unwrap_err();
    assert_eq!(err.index, 0);
    assert_eq!(
        err.error,
        ExecError::UnsupportedKind {
            kind: ExecutorKind::Process
        }
    );

    // The third subtask has too much input.
    let mut tasks = tasks;
    tasks[2].input = vec![0; 100];
    let l = Limits {
        input_bytes: 50,
        ..Limits::default()
    };
    let err = run_split(&executors, &tasks, &l).await.unwrap_err();
    assert_eq!(err.index, 2);
}

proptest! {
    #[test]
    fn split_then_concat_is_identity(input in proptest::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..300), n in 0usize..12) {
        let chunks = split_lines(&input, n);
        prop_assert_eq!(chunks.concat(), input.clone());
        prop_assert!(chunks.len() <= n.max(1));
        prop_assert!(chunks.iter().all(|c| !c.is_empty()));
    }

    #[test]
    fn merged_digest_matches_output(parts in proptest::collection::vec(idlegrid_executor::strategies::execution(), 0..5)) {
        let m = merge(&parts);
        prop_assert_eq!(m.output_digest, output_digest(&m.output));
        prop_assert_eq!(m.usage.fuel, parts.iter().map(|p| p.usage.fuel).fold(0u64, u64::saturating_add));
    }
}
