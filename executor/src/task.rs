//! What an executor runs ([`Task`]), under which [`Limits`], and what it
//! returns ([`Execution`], [`Usage`]).

use async_trait::async_trait;
use idlegrid_primitives::{Digest, Domain, Duration};
use serde::{Deserialize, Serialize};

use crate::ExecError;

/// Domain of [`Execution::output_digest`].
pub const OUTPUT_DOMAIN: Domain = Domain::new("idlegrid/executor/output");
/// Domain of [`Program::digest`] (also the WebAssembly module cache key).
pub const PROGRAM_DOMAIN: Domain = Domain::new("idlegrid/executor/program");
/// Domain of [`Task::digest`].
pub const TASK_DOMAIN: Domain = Domain::new("idlegrid/executor/task");

/// The kind of executor a task declares it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExecutorKind {
    /// Deterministic WebAssembly ([`WasmExecutor`](crate::WasmExecutor)).
    Wasm,
    /// A sandboxed native process ([`ProcessExecutor`](crate::ProcessExecutor)).
    Process,
}

/// The program of a task.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Program {
    /// A WebAssembly module, binary or text (WAT), speaking the host ABI
    /// documented in [`crate::wasm`].
    Wasm {
        /// The module bytes.
        #[serde(with = "serde_bytes")]
        module: Vec<u8>,
    },
    /// A script run as `interpreter args... file_name` in a fresh working
    /// directory, e.g. `python3 script.py`.
    Script {
        /// The interpreter: an absolute path, or a bare name looked up in
        /// the executor's fixed search path (never the caller's `PATH`).
        interpreter: String,
        /// Arguments placed before the script file name (e.g. `-I`).
        args: Vec<String>,
        /// The script's file name inside the working directory.
        file_name: String,
        /// The script source.
        #[serde(with = "serde_bytes")]
        source: Vec<u8>,
    },
}

impl Program {
    /// A Python 3 script run as `python3 -I -S script.py` (isolated mode:
    /// no user site-packages, no environment variables honoured).
    pub fn python(source: impl Into<Vec<u8>>) -> Self {
        Program::Script {
            interpreter: "python3".into(),
            args: vec!["-I".into()],
            file_name: "script.py".into(),
            source: source.into(),
        }
    }

    /// A WebAssembly module (binary or WAT text).
    pub fn wasm(module: impl Into<Vec<u8>>) -> Self {
        Program::Wasm {
            module: module.into(),
        }
    }

    /// The kind of executor this program needs.
    pub fn kind(&self) -> ExecutorKind {
        match self {
            Program::Wasm { .. } => ExecutorKind::Wasm,
            Program::Script { .. } => ExecutorKind::Process,
        }
    }

    /// The program's content digest (apps are registered under it).
    pub fn digest(&self) -> Digest {
        Digest::of(PROGRAM_DOMAIN, self)
    }

    /// Size of the program in bytes.
    pub fn size_bytes(&self) -> u64 {
        match self {
            Program::Wasm { module } => module.len() as u64,
            Program::Script { source, .. } => source.len() as u64,
        }
    }
}

/// An extra file placed in a process task's working directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InputFile {
    /// A plain file name (no `/`, not `.` or `..`).
    pub name: String,
    /// The file's contents.
    #[serde(with = "serde_bytes")]
    pub contents: Vec<u8>,
}

/// One unit of work: a program and its input.
///
/// A process task sees `input` on standard input and as the file `input` in
/// its working directory, next to `files`. A WebAssembly task reads `input`
/// through the host ABI; `files` must be empty for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Task {
    /// The program.
    pub program: Program,
    /// The input bytes.
    #[serde(with = "serde_bytes")]
    pub input: Vec<u8>,
    /// Extra input files (process tasks only).
    pub files: Vec<InputFile>,
}

impl Task {
    /// A task with `program` over `input` and no extra files.
    pub fn new(program: Program, input: impl Into<Vec<u8>>) -> Self {
        Task {
            program,
            input: input.into(),
            files: Vec::new(),
        }
    }

    /// Adds an input file (builder style).
    pub fn with_file(mut self, name: impl Into<String>, contents: impl Into<Vec<u8>>) -> Self {
        self.files.push(InputFile {
            name: name.into(),
            contents: contents.into(),
        });
        self
    }

    /// The declared executor kind.
    pub fn kind(&self) -> ExecutorKind {
        self.program.kind()
    }

    /// The task's content digest (program, input and files).
    pub fn digest(&self) -> Digest {
        Digest::of(TASK_DOMAIN, self)
    }

    /// Total input size in bytes: `input` plus every file.
    pub fn input_bytes(&self) -> u64 {
        let files: u64 = self.files.iter().map(|f| f.contents.len() as u64).sum();
        (self.input.len() as u64).saturating_add(files)
    }
}

/// Resource limits for one execution. Each executor enforces the ones that
/// apply to it (see the field docs); exceeding any is a typed [`ExecError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Limits {
    /// WebAssembly fuel (≈ one unit per instruction). Wasm only.
    pub fuel: u64,
    /// CPU time per process (`RLIMIT_CPU`, whole seconds, rounded up).
    /// Process only.
    pub cpu_time: Duration,
    /// Wall-clock time after which the whole process group is killed.
    /// Process only: WebAssembly is bounded by fuel, deterministically.
    pub wall_time: Duration,
    /// Memory: WebAssembly linear memory, or a process's address space
    /// (`RLIMIT_AS`).
    pub memory_bytes: u64,
    /// Maximum output (WebAssembly output, process standard output).
    pub output_bytes: u64,
    /// Captured standard error beyond this is dropped. Process only.
    pub stderr_bytes: u64,
    /// Maximum input (`Task::input_bytes`).
    pub input_bytes: u64,
    /// Largest file a process may write (`RLIMIT_FSIZE`). Process only.
    pub file_bytes: u64,
    /// Processes and threads (`RLIMIT_NPROC`, counted per sandbox user).
    /// Process only. The kernel ignores it for root, so it binds only when
    /// the executor drops to a sandbox uid or runs unprivileged (then it
    /// counts all of that user's processes).
    pub processes: u64,
    /// Open file descriptors (`RLIMIT_NOFILE`). Process only.
    pub open_files: u64,
}

impl Default for Limits {
    /// Generous defaults: 10⁹ fuel, 10 s CPU, 30 s wall, 512 MiB memory,
    /// 16 MiB output, 64 KiB stderr, 64 MiB input, 64 MiB files,
    /// 64 processes, 64 open files.
    fn default() -> Self {
        Limits {
            fuel: 1_000_000_000,
            cpu_time: Duration::from_secs(10),
            wall_time: Duration::from_secs(30),
            memory_bytes: 512 << 20,
            output_bytes: 16 << 20,
            stderr_bytes: 64 << 10,
            input_bytes: 64 << 20,
            file_bytes: 64 << 20,
            processes: 64,
            open_files: 64,
        }
    }
}

impl Limits {
    /// Checks a task's input size against [`Limits::input_bytes`].
    pub fn check_input(&self, task: &Task) -> Result<(), ExecError> {
        let len = task.input_bytes();
        if len > self.input_bytes {
            return Err(ExecError::InputTooLarge {
                len,
                max: self.input_bytes,
            });
        }
        Ok(())
    }
}

/// Whether a sandbox layer was actually applied. Executors never claim a
/// layer they did not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Applied {
    /// The layer was applied.
    Yes,
    /// The host could not apply it; the program was run without it.
    No,
    /// Not needed: the program has no such capability at all (WebAssembly
    /// without imports for it) or it is simulated.
    NotNeeded,
}

/// What isolation an execution ran under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Isolation {
    /// No network: a fresh, empty network namespace.
    pub network: Applied,
    /// A dedicated unprivileged user id, so the program can only read files
    /// readable by everyone and cannot signal other users' processes.
    pub unprivileged_user: Applied,
    /// Resource limits (rlimits, fuel, memory caps).
    pub resource_limits: Applied,
    /// Filesystem confinement (Landlock): read-only system directories,
    /// full access to the working directory, nothing else.
    pub filesystem: Applied,
    /// How the executor made sure no process of the task outlives it.
    pub containment: Containment,
}

/// How an executor ends every process a task created, weakest first (the
/// derived order is by strength, so the weakest of several is their `min`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Containment {
    /// Only the task's process group is killed. A process that calls
    /// `setsid` (a double-forked daemon) survives the task; if it keeps the
    /// output open the execution fails with
    /// [`ExecError::StreamNotClosed`](crate::ExecError::StreamNotClosed).
    ProcessGroup,
    /// Every process of the task's dedicated sandbox uid is killed with one
    /// `kill(-1, SIGKILL)` from a helper running as that uid (atomic with
    /// respect to `fork`), repeated until a scan of `/proc` finds none.
    /// Needs root (for the uid); used where PID namespaces are unavailable.
    UidSweep,
    /// The task runs in its own PID namespace under a small init: when the
    /// task's main process ends, the init exits and the kernel kills every
    /// process left in the namespace in one step, and none can leave it.
    /// As non-root, the namespace is created inside a new user namespace.
    PidNamespace,
    /// The program cannot create processes at all (WebAssembly, simulated).
    NotNeeded,
}

impl Isolation {
    /// One sentence per layer that was not applied, saying what the program
    /// could do because of it. Empty when every layer was applied or not
    /// needed.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.network == Applied::No {
            out.push("no network namespace: the program can use the host's network");
        }
        if self.unprivileged_user == Applied::No {
            out.push(
                "no dedicated uid: the program runs as the provider's user, can read what it \
                 reads (beyond Landlock) and RLIMIT_NPROC counts all of that user's processes",
            );
        }
        if self.resource_limits == Applied::No {
            out.push("no resource limits: CPU, memory and processes are unbounded");
        }
        if self.filesystem == Applied::No {
            out.push("no Landlock: the program can read every file its uid may read");
        }
        match self.containment {
            Containment::ProcessGroup => out.push(
                "process-group containment only: a process that calls setsid can outlive \
                 the task (no PID namespace, no sandbox uid)",
            ),
            Containment::UidSweep => out.push(
                "no PID namespace: leftover processes are killed by uid, after the task ends",
            ),
            Containment::PidNamespace | Containment::NotNeeded => {}
        }
        out
    }

    /// The isolation of a WebAssembly program: it has no capabilities
    /// besides the host ABI.
    pub const WASM: Isolation = Isolation {
        network: Applied::NotNeeded,
        unprivileged_user: Applied::NotNeeded,
        resource_limits: Applied::Yes,
        filesystem: Applied::NotNeeded,
        containment: Containment::NotNeeded,
    };
    /// Simulated execution touches nothing.
    pub const SIMULATED: Isolation = Isolation {
        network: Applied::NotNeeded,
        unprivileged_user: Applied::NotNeeded,
        resource_limits: Applied::NotNeeded,
        filesystem: Applied::NotNeeded,
        containment: Containment::NotNeeded,
    };
}

/// Metered resource usage of one execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Usage {
    /// WebAssembly fuel consumed (0 for processes). Deterministic.
    pub fuel: u64,
    /// CPU time of the process and its reaped children (zero for
    /// WebAssembly, whose cost is `fuel`).
    pub cpu_time: Duration,
    /// Wall-clock (or, simulated, virtual) duration; zero for WebAssembly,
    /// whose usage is deterministic by design.
    pub wall_time: Duration,
    /// The figure the market prices, in reference CPU microseconds
    /// ("compute-unit microseconds"): fuel converted at the executor's
    /// configured rate for WebAssembly, CPU time for processes, the cost
    /// model's duration in simulation.
    pub compute_micros: u64,
    /// Isolation that was applied.
    pub isolation: Isolation,
}

/// A successful execution.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Execution {
    /// The output bytes (standard output for processes), not necessarily
    /// UTF-8.
    #[serde(with = "serde_bytes")]
    pub output: Vec<u8>,
    /// `Digest::hash(OUTPUT_DOMAIN, output)`: what providers commit to.
    pub output_digest: Digest,
    /// What it cost.
    pub usage: Usage,
}

impl Execution {
    /// An execution of `output` with `usage`, digesting the output.
    pub fn new(output: Vec<u8>, usage: Usage) -> Self {
        let output_digest = output_digest(&output);
        Execution {
            output,
            output_digest,
            usage,
        }
    }
}

/// Checks an execution's invariant: its digest is the digest of its output
/// (for referees and auditors receiving one from a peer).
///
/// # Errors
/// A description of the mismatch.
pub fn check_execution(execution: &Execution) -> Result<(), String> {
    let expected = output_digest(&execution.output);
    if execution.output_digest != expected {
        return Err(format!(
            "output digest {} does not match the output's digest {expected}",
            execution.output_digest
        ));
    }
    Ok(())
}

/// The digest providers commit to for an output.
pub fn output_digest(output: &[u8]) -> Digest {
    Digest::hash(OUTPUT_DOMAIN, output)
}

/// Runs tasks. Implementations are cheap to share (`Send + Sync`) and may run
/// several tasks concurrently.
#[async_trait]
pub trait Executor: Send + Sync {
    /// True if this executor runs tasks of `kind`.
    fn supports(&self, kind: ExecutorKind) -> bool;

    /// Runs `task` under `limits`.
    ///
    /// # Errors
    /// A typed [`ExecError`] for every failure: unsupported kind, bad program
    /// or input, any limit exceeded, a non-zero exit, a host failure.
    async fn execute(&self, task: &Task, limits: &Limits) -> Result<Execution, ExecError>;
}
