//! The executor error type.

use idlegrid_primitives::Duration;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::task::ExecutorKind;

/// Why a task produced no [`Execution`](crate::Execution).
///
/// Every way a user's program or input can go wrong is one of these; no
/// executor panics on bad input.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ExecError {
    /// The executor cannot run tasks of this kind; send it to one that can.
    #[error("this executor does not run {kind:?} tasks")]
    UnsupportedKind {
        /// The task's declared kind.
        kind: ExecutorKind,
    },
    /// The program is unusable: invalid WebAssembly, a missing export, an
    /// empty script, a missing interpreter. Fix the program.
    #[error("bad program: {0}")]
    BadProgram(String),
    /// The task's inputs are malformed (for example an input file name that
    /// escapes the working directory).
    #[error("bad input: {0}")]
    BadInput(String),
    /// The task's input exceeds [`Limits::input_bytes`](crate::Limits::input_bytes).
    #[error("input of {len} bytes exceeds the limit of {max} bytes; split the job")]
    InputTooLarge {
        /// Input size.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The WebAssembly program used all its fuel; raise `Limits::fuel`.
    #[error("out of fuel after {limit} units; raise the fuel limit")]
    OutOfFuel {
        /// The fuel limit.
        limit: u64,
    },
    /// The program tried to use more memory than allowed.
    #[error("memory limit of {limit_bytes} bytes exceeded")]
    MemoryLimit {
        /// The memory limit.
        limit_bytes: u64,
    },
    /// The program ran past the wall-clock limit and was killed.
    #[error("wall-clock limit of {limit} exceeded; the process group was killed")]
    Timeout {
        /// The wall-clock limit.
        limit: Duration,
    },
    /// The program used more CPU time than allowed.
    #[error("CPU-time limit of {limit} exceeded")]
    CpuTimeLimit {
        /// The CPU-time limit.
        limit: Duration,
    },
    /// The program tried to write a file larger than allowed.
    #[error("file-size limit of {limit_bytes} bytes exceeded")]
    FileSizeLimit {
        /// The file-size limit.
        limit_bytes: u64,
    },
    /// The program produced more output than allowed.
    #[error("output exceeds the limit of {limit_bytes} bytes")]
    OutputTooLarge {
        /// The output limit.
        limit_bytes: u64,
    },
    /// The WebAssembly program trapped (unreachable, division by zero, out of
    /// bounds access, stack overflow, …).
    #[error("the program trapped: {0}")]
    Trap(String),
    /// The program exited with a non-zero status.
    #[error("exited with status {code}: {stderr}")]
    NonZeroExit {
        /// The exit status.
        code: i32,
        /// The (bounded, lossily decoded) standard error.
        stderr: String,
    },
    /// The process was killed by a signal it did not ask for (a crash).
    #[error("killed by signal {signal}: {stderr}")]
    Signaled {
        /// The signal number.
        signal: i32,
        /// The (bounded, lossily decoded) standard error.
        stderr: String,
    },
    /// The task's main process ended, but its standard output or error did
    /// not close within the grace period: a process the sandbox failed to
    /// end still holds it (see [`Containment`](crate::Containment)). The
    /// bytes read so far are in `partial`; they are not a result (the task
    /// may have more to say), so never submit them. The host's fault.
    #[error(
        "the task ended but its {stream} stayed open for {grace} (a process outside the \
         sandbox's reach holds it; {} bytes were read); run the provider where PID \
         namespaces or sandbox uids are available",
        partial.len()
    )]
    StreamNotClosed {
        /// Which stream stayed open.
        stream: OutputStream,
        /// How long the executor waited after the task ended.
        grace: Duration,
        /// What was read from that stream before giving up.
        partial: Vec<u8>,
    },
    /// Reading the task's standard output or error failed.
    #[error("reading the task's {stream} failed: {reason}")]
    StreamFailed {
        /// Which stream failed.
        stream: OutputStream,
        /// The I/O error.
        reason: String,
    },
    /// The configuration requires an isolation the host cannot provide.
    #[error("required isolation unavailable on this host: {0}")]
    IsolationUnavailable(String),
    /// The host failed (temporary directory, spawning, I/O); not the
    /// program's fault.
    #[error("host error: {0}")]
    Host(String),
}

impl ExecError {
    /// True if the error is the program's or the input's fault (and so would
    /// recur on any honest machine), false if the host failed.
    pub fn is_task_fault(&self) -> bool {
        !matches!(
            self,
            ExecError::Host(_)
                | ExecError::StreamNotClosed { .. }
                | ExecError::StreamFailed { .. }
                | ExecError::IsolationUnavailable(_)
                | ExecError::UnsupportedKind { .. }
        )
    }
}

/// One of a process's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OutputStream {
    /// Standard output: the result.
    Stdout,
    /// Standard error: diagnostics.
    Stderr,
}

impl std::fmt::Display for OutputStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OutputStream::Stdout => "standard output",
            OutputStream::Stderr => "standard error",
        })
    }
}
