//! Pieces shared by the examples: the WebAssembly task, and the real
//! executors that answer the reference node's effects with it — a
//! provider running its lot, a referee re-running disputed traps, a client
//! computing its trap answers.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use idlegrid_entrap::{DisputedTrap, SubtaskIndex, TrapSpec};
use idlegrid_executor::{Execution, Limits, Program, Task, WasmConfig, WasmExecutor};
use idlegrid_market::{ExecutorKind, ExecutorSet, Features};
use idlegrid_node::client::TrapSource;
use idlegrid_node::local::{Executor, Referee};
use idlegrid_node::market::Environment;
use idlegrid_node::provider::ExecReport;
use idlegrid_node::wire::{LotData, input_digest as lot_input_digest, output_digest};
use idlegrid_primitives::{AccountId, Digest, Domain};

/// Domain of the digests that name subtask inputs in entrap plans built
/// by hand (`python_job`).
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

/// The examples' pricing convention: fuel per compute-second (every node
/// of a network must use the same rate). A slow reference machine — the
/// executor's default is 10⁹ — so that the tiny FNV task, 20 000 to
/// 45 000 fuel, bills 20 to 45 compute-ms and earns visible pay at prices
/// of some 10 000 per compute-second.
pub const FUEL_PER_COMPUTE_SECOND: u64 = 1_000_000;

/// An executor with the examples' pricing convention.
pub fn wasm_executor() -> WasmExecutor {
    WasmExecutor::new(WasmConfig {
        fuel_per_cpu_second: FUEL_PER_COMPUTE_SECOND,
        ..WasmConfig::default()
    })
}

/// What a provider of the examples runs: WebAssembly, no extra features.
pub fn wasm_environment() -> Environment {
    Environment {
        executors: ExecutorSet::single(ExecutorKind::Wasm),
        features: Features::NONE,
    }
}

/// The program running [`FNV_WAT`].
pub fn fnv_program() -> Program {
    Program::wasm(FNV_WAT)
}

/// The bytes of the FNV program, as a job carries them.
pub fn fnv_bytes() -> Vec<u8> {
    FNV_WAT.as_bytes().to_vec()
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

/// Runs `program` over `input`: its output bytes and usage, or the error's
/// text as output (the same bytes on every honest machine).
fn run_program(exec: &WasmExecutor, program: &[u8], input: &[u8]) -> (Vec<u8>, u64, u64) {
    let task = Task::new(Program::wasm(program.to_vec()), input.to_vec());
    match exec.run(&task, &wasm_limits()) {
        Ok(x) => (x.output, x.usage.compute_micros, x.usage.fuel),
        Err(e) => (format!("failed: {e}").into_bytes(), 0, 0),
    }
}

/// The output digest a node puts on the ledger for FNV of `input`.
pub fn fnv_output(exec: &WasmExecutor, input: &[u8]) -> Digest {
    output_digest(&run_program(exec, FNV_WAT.as_bytes(), input).0)
}

/// A provider's answer to a slot: run it, or hand in a made-up output.
pub type Guess = Box<dyn FnMut(usize, &[u8]) -> Option<Vec<u8>>>;

/// A provider's executor on [`WasmExecutor`]: runs every slot of the lot's
/// bytes, except those `guess` makes up (a cheater). `admits` says whether
/// the provider knows it guessed (it then accepts an accusation; otherwise
/// it disputes). Guessed slots go to `log` under the lot's provider.
pub fn wasm_provider(
    provider: AccountId,
    mut guess: Guess,
    admits: bool,
    log: Rc<RefCell<BTreeMap<AccountId, usize>>>,
) -> Executor {
    let exec = wasm_executor();
    Box::new(move |_, inputs, data| {
        let Some(data) = data else {
            // Content addresses alone: nothing to run.
            return failed(inputs.len());
        };
        let (mut outputs, mut cheated, mut micros) = (Vec::new(), Vec::new(), 0);
        for (i, input) in data.inputs.iter().enumerate() {
            if let Some(made_up) = guess(i, input) {
                *log.borrow_mut().entry(provider).or_default() += 1;
                outputs.push(made_up);
                cheated.push(admits);
                continue;
            }
            let (out, us, _) = run_program(&exec, &data.program, input);
            micros += us;
            outputs.push(out);
            cheated.push(false);
        }
        ExecReport {
            outputs: outputs.iter().map(|o| output_digest(o)).collect(),
            usage_micros: micros.max(1),
            cheated,
            data: Some(outputs),
        }
    })
}

fn failed(n: usize) -> ExecReport {
    let out = b"failed: no bytes".to_vec();
    ExecReport {
        outputs: vec![output_digest(&out); n],
        usage_micros: 1,
        cheated: vec![false; n],
        data: Some(vec![out; n]),
    }
}

/// One re-execution by a referee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefereeRun {
    /// The referee (validator index).
    pub referee: usize,
    /// The disputed slot.
    pub trap: SubtaskIndex,
    /// What the client committed to.
    pub expected: Digest,
    /// What the provider delivered.
    pub provider_output: Digest,
    /// What the referee's own run gave.
    pub output: Digest,
    /// Fuel it burned.
    pub fuel: u64,
}

/// Validator `referee`'s answer to its referee duties: it re-runs each
/// disputed trap on its own [`WasmExecutor`] once the disputing provider's
/// bytes arrived, and logs every run.
pub fn wasm_referee(referee: usize, log: Rc<RefCell<Vec<RefereeRun>>>) -> Referee {
    let exec = wasm_executor();
    Box::new(move |disputed: &[DisputedTrap], data: Option<&LotData>| {
        let data = data?;
        let mut outputs = Vec::with_capacity(disputed.len());
        for (d, input) in disputed.iter().zip(&data.inputs) {
            let (out, _, fuel) = run_program(&exec, &data.program, input);
            let output = output_digest(&out);
            log.borrow_mut().push(RefereeRun {
                referee,
                trap: d.trap.index,
                expected: d.trap.expected,
                provider_output: d.provider_output,
                output,
                fuel,
            });
            outputs.push(output);
        }
        Some(outputs)
    })
}

/// Trap inputs of a job: `(job, lot, i)` → the bytes of trap `i` of `lot`.
pub type TrapInput = fn(u64, u32, u64) -> Vec<u8>;

/// A client's traps for FNV jobs: inputs shaped like the real ones, their
/// answers computed on the client's own [`WasmExecutor`]. `wrong` plants a
/// wrong answer for trap `i` of every lot (a framing client).
pub struct FnvTraps {
    exec: WasmExecutor,
    input: TrapInput,
    wrong: Option<u64>,
    payloads: BTreeMap<Digest, Vec<u8>>,
}

impl std::fmt::Debug for FnvTraps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnvTraps")
            .field("wrong", &self.wrong)
            .finish_non_exhaustive()
    }
}

impl FnvTraps {
    /// Honest traps with inputs from `input`.
    pub fn new(input: TrapInput) -> Self {
        Self {
            exec: wasm_executor(),
            input,
            wrong: None,
            payloads: BTreeMap::new(),
        }
    }

    /// Traps whose `i`-th answer in every lot is wrong.
    pub fn framing(input: TrapInput, i: u64) -> Self {
        Self {
            wrong: Some(i),
            ..Self::new(input)
        }
    }
}

impl TrapSource for FnvTraps {
    fn trap(&mut self, job: u64, lot: u32, i: u64) -> TrapSpec {
        let bytes = (self.input)(job, lot, i);
        let expected = if self.wrong == Some(i) {
            output_digest(b"not what the program outputs")
        } else {
            fnv_output(&self.exec, &bytes)
        };
        let digest = lot_input_digest(FNV_WAT.as_bytes(), &bytes);
        self.payloads.insert(digest, bytes);
        TrapSpec::precomputed(digest, expected)
    }

    fn payload(&mut self, input: &Digest) -> Option<Vec<u8>> {
        self.payloads.get(input).cloned()
    }
}

/// The digest naming a subtask input in a plan built by hand.
pub fn input_digest(input: &[u8]) -> Digest {
    Digest::hash(INPUT_DOMAIN, input)
}

/// Formats a digest's first bytes for printing.
pub fn short(d: &Digest) -> String {
    d.as_bytes()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Short printable form of an account.
pub fn short_acc(a: &AccountId) -> String {
    short(&Digest::from_bytes(*a.as_bytes()))
}
