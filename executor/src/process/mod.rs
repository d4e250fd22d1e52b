//! [`ProcessExecutor`]: a native process (typically `python3 script.py`) in
//! a sandbox built from plain Linux mechanisms, no container runtime needed.
//!
//! Each task gets:
//! - a fresh temporary working directory holding only the script, the input
//!   (as the file `input`, also piped to standard input) and the task's
//!   files; it is removed afterwards;
//! - a cleared environment: only `PATH=/usr/local/bin:/usr/bin:/bin`,
//!   `HOME` and `TMPDIR` (the working directory) and `LANG=C.UTF-8`;
//! - containment: every process the task creates dies with it, reported in
//!   [`Isolation::containment`](crate::Isolation::containment), strongest
//!   the host allows first:
//!   - [`Containment::PidNamespace`]: a PID namespace per task under a
//!     small init (`process/pidns.rs`); when the task's main process ends, or
//!     the wall limit kills its process group, the kernel kills every
//!     process left in the namespace in one step, `setsid` daemons and
//!     fork-hoppers included, and none can leave it. As root the namespace
//!     is created directly; as any other user inside a new user namespace
//!     (where the host allows unprivileged user namespaces);
//!   - [`Containment::UidSweep`] (root without PID namespaces): after the
//!     main process ends, `kill(-1, SIGKILL)` from a helper running as the
//!     task's sandbox uid (one kernel pass: a racing fork fails), then
//!     repeated until a scan of `/proc` finds nothing alive — never a scan
//!     first, which a fork-hopping task slips past; a uid whose processes
//!     are still alive 2 s after the kill is an error and is never reused;
//!   - [`Containment::ProcessGroup`] (non-root without user namespaces):
//!     the process group only; a daemon that calls `setsid` survives, and
//!     if it holds the output open the execution fails with
//!     [`ExecError::StreamNotClosed`] (never an `Ok` with lost output);
//! - rlimits: CPU time, address space, file size, processes, open files,
//!   no core dumps;
//! - a fresh, empty network namespace where the host allows it
//!   ([`NetworkPolicy`]); [`Usage::isolation`] says whether it was applied;
//! - when the executor runs as root, a dedicated unprivileged user id leased
//!   from a pool for the duration of the task: `RLIMIT_NPROC` then bounds the
//!   task's processes (root ignores it), the program can only read
//!   world-readable files, and every process left under that uid is killed
//!   before the uid is reused;
//! - where the kernel has Landlock, a filesystem confinement: read and
//!   execute beneath `/usr`, `/lib*`, `/bin`, `/sbin`, `/etc` and the
//!   interpreter's directory, read/write on a few devices (`/dev/null`,
//!   `/dev/zero`, `/dev/urandom`, `/dev/random`), full access beneath the
//!   working directory, nothing else; reported in `Usage::isolation.filesystem`;
//! - bounded capture: standard output past `Limits::output_bytes` kills the
//!   task ([`ExecError::OutputTooLarge`]); standard error past
//!   `Limits::stderr_bytes` is dropped.
//!
//! Not provided: a seccomp filter, a private mount namespace, cgroups
//! (memory and process counts are per-process and per-uid rlimits). Without
//! Landlock, a program can read every world-readable file on the host; check
//! `Usage::isolation` (and [`Isolation::missing`](crate::Isolation::missing)
//! for what each missing layer allows) and run providers accordingly. As
//! root without sandbox uids, `RLIMIT_NPROC` does not bind (the kernel
//! exempts root).

mod pidns;
mod sandbox;

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use idlegrid_primitives::Duration;
use landlock::RulesetCreated;
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};
use sandbox::{
    LEASED_UIDS, Namespaces, SandboxPlan, UidLease, install_sandbox, kill_uid, landlock_ruleset,
    lock_uid, uids_with_processes,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::task::{Applied, Containment, ExecutorKind, Isolation, Program};
use crate::{ExecError, Execution, Executor, Limits, OutputStream, Task, Usage};

/// What to do when the host cannot create a network namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkPolicy {
    /// Refuse to run ([`ExecError::IsolationUnavailable`]).
    Require,
    /// Run with the host's network and report `network: Applied::No`.
    BestEffort,
}

/// Configuration of a [`ProcessExecutor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessConfig {
    /// Directories searched, in order, for a bare interpreter name. The
    /// caller's `PATH` is never used.
    pub search_path: Vec<PathBuf>,
    /// Network isolation policy.
    pub network: NetworkPolicy,
    /// First uid of the sandbox user pool (used only when running as root).
    pub first_sandbox_uid: u32,
    /// Number of sandbox uids, i.e. tasks that may run at once as root.
    pub sandbox_uids: u32,
    /// Where task directories are created (default: the system temp dir).
    pub temp_root: Option<PathBuf>,
    /// Run each task in its own PID namespace where the host allows it
    /// (default `true`). `false` only to test or measure the weaker
    /// containment modes ([`Containment`]).
    pub pid_namespace: bool,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        ProcessConfig {
            search_path: ["/usr/local/bin", "/usr/bin", "/bin"]
                .into_iter()
                .map(PathBuf::from)
                .collect(),
            network: NetworkPolicy::BestEffort,
            first_sandbox_uid: 61_000,
            sandbox_uids: 256,
            temp_root: None,
            pid_namespace: true,
        }
    }
}

/// Namespace sets to try, strongest first; the first that works on this
/// host is remembered. As root: PID + network, PID, network, none (the
/// sandbox uid then carries containment). As any other user: the same
/// inside a new user namespace, which is what lets an unprivileged process
/// create the others, then none.
///
/// The list is filtered by the configuration (a required network, or no
/// PID namespace), so the remembered index is into the filtered list.
const ROOT_NAMESPACES: [Namespaces; 4] = [
    Namespaces::PID.with(Namespaces::NET),
    Namespaces::PID,
    Namespaces::NET,
    Namespaces::NONE,
];
const USER_NAMESPACES: [Namespaces; 4] = [
    Namespaces::USER.with(Namespaces::PID).with(Namespaces::NET),
    Namespaces::USER.with(Namespaces::PID),
    Namespaces::USER.with(Namespaces::NET),
    Namespaces::NONE,
];

/// Runs script tasks as sandboxed native processes (see the module docs).
///
/// Cloning is cheap. Sandbox uids are leased from a host-wide pool (a lock
/// file per uid), so any number of executors can share a range.
#[derive(Debug, Clone)]
pub struct ProcessExecutor {
    config: Arc<ProcessConfig>,
    /// 1 + index into `namespace_candidates()` of the set that works on this
    /// host; 0 until the first spawn found it.
    namespaces: Arc<AtomicU8>,
    root: bool,
    drop_privileges: bool,
}

impl Default for ProcessExecutor {
    fn default() -> Self {
        Self::new(ProcessConfig::default())
    }
}

/// Reads the wall clock: the one place this crate does.
#[allow(clippy::disallowed_methods)]
fn wall_clock() -> std::time::Instant {
    std::time::Instant::now()
}

impl ProcessExecutor {
    /// An executor with `config`.
    pub fn new(config: ProcessConfig) -> Self {
        let root = rustix::process::geteuid().is_root();
        let drop_privileges = root && config.sandbox_uids > 0;
        ProcessExecutor {
            config: Arc::new(config),
            namespaces: Arc::new(AtomicU8::new(0)),
            root,
            drop_privileges,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ProcessConfig {
        &self.config
    }

    /// True if tasks run under a dedicated unprivileged uid (the executor
    /// runs as root).
    pub fn drops_privileges(&self) -> bool {
        self.drop_privileges
    }

    fn lease_uid(&self) -> Result<Option<UidLease>, ExecError> {
        if !self.drop_privileges {
            return Ok(None);
        }
        // Always the system temp dir, shared by every executor on the host.
        let lock_dir = std::env::temp_dir();
        let busy_on_host = uids_with_processes();
        let mut leased = LEASED_UIDS.lock().unwrap_or_else(|e| e.into_inner());
        let first = self.config.first_sandbox_uid;
        for uid in (0..self.config.sandbox_uids).filter_map(|i| first.checked_add(i)) {
            if leased.contains(&uid) || busy_on_host.contains(&uid) {
                continue;
            }
            // Other OS processes (more executors on this host) lease from the
            // same range: an exclusive lock file per uid, released by the
            // kernel if we die.
            let Ok(lock) = lock_uid(&lock_dir, uid) else {
                continue;
            };
            leased.insert(uid);
            return Ok(Some(UidLease { uid, _lock: lock }));
        }
        Err(ExecError::Host(
            "all sandbox uids are busy; raise ProcessConfig::sandbox_uids".into(),
        ))
    }

    /// Resolves the interpreter to an absolute path.
    fn resolve(&self, interpreter: &str) -> Result<PathBuf, ExecError> {
        if interpreter.is_empty() || interpreter.contains('\0') {
            return Err(ExecError::BadProgram("empty interpreter name".into()));
        }
        let candidates: Vec<PathBuf> = if interpreter.starts_with('/') {
            vec![PathBuf::from(interpreter)]
        } else if interpreter.contains('/') {
            return Err(ExecError::BadProgram(format!(
                "interpreter `{interpreter}` must be a bare name or an absolute path"
            )));
        } else {
            self.config
                .search_path
                .iter()
                .map(|d| d.join(interpreter))
                .collect()
        };
        candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
            ExecError::BadProgram(format!(
                "interpreter `{interpreter}` not found in {:?}",
                self.config.search_path
            ))
        })
    }

    async fn run(&self, task: &Task, limits: &Limits) -> Result<Execution, ExecError> {
        let Program::Script {
            interpreter,
            args,
            file_name,
            source,
        } = &task.program
        else {
            return Err(ExecError::UnsupportedKind { kind: task.kind() });
        };
        limits.check_input(task)?;
        if source.iter().all(u8::is_ascii_whitespace) {
            return Err(ExecError::BadProgram("the script is empty".into()));
        }
        check_file_name(file_name)?;
        let mut names = HashSet::from([file_name.as_str(), "input"]);
        for f in &task.files {
            check_file_name(&f.name)?;
            if !names.insert(f.name.as_str()) {
                return Err(ExecError::BadInput(format!(
                    "file name `{}` is used twice (`input` and the script name are reserved)",
                    f.name
                )));
            }
        }
        if args.iter().any(|a| a.contains('\0')) {
            return Err(ExecError::BadProgram(
                "an argument contains a NUL byte".into(),
            ));
        }
        let interpreter = self.resolve(interpreter)?;
        let lease = self.lease_uid()?;
        let uid = lease.as_ref().map(|l| l.uid);

        let dir = self.make_workdir(task, file_name, uid)?;
        let result = self
            .spawn_and_wait(task, limits, &interpreter, args, file_name, dir.path(), uid)
            .await;
        // Kill whatever still runs under the uid before removing the
        // directory and returning the uid.
        drop(lease);
        dir.close()
            .map_err(|e| ExecError::Host(format!("removing the task directory: {e}")))?;
        result
    }

    fn make_workdir(
        &self,
        task: &Task,
        file_name: &str,
        uid: Option<u32>,
    ) -> Result<tempfile::TempDir, ExecError> {
        let host = |what: &str, e: io::Error| ExecError::Host(format!("{what}: {e}"));
        let mut builder = tempfile::Builder::new();
        builder.prefix("idlegrid-task-");
        let dir = match &self.config.temp_root {
            Some(root) => builder.tempdir_in(root),
            None => builder.tempdir(),
        }
        .map_err(|e| host("creating the task directory", e))?;
        let write = |name: &str, bytes: &[u8]| -> Result<(), ExecError> {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).map_err(|e| host("writing an input file", e))?;
            if let Some(uid) = uid {
                std::os::unix::fs::chown(&path, Some(uid), Some(uid))
                    .map_err(|e| host("chown of an input file", e))?;
            }
            Ok(())
        };
        write(
            file_name,
            match &task.program {
                Program::Script { source, .. } => source,
                Program::Wasm { module } => module,
            },
        )?;
        write("input", &task.input)?;
        for f in &task.files {
            write(&f.name, &f.contents)?;
        }
        if let Some(uid) = uid {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(uid))
                .map_err(|e| host("chown of the task directory", e))?;
        }
        Ok(dir)
    }

    fn command(
        interpreter: &Path,
        args: &[String],
        file_name: &str,
        dir: &Path,
    ) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(interpreter);
        cmd.args(args)
            .arg(file_name)
            .current_dir(dir)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", dir)
            .env("TMPDIR", dir)
            .env("LANG", "C.UTF-8")
            // Hash randomisation would make honest outputs differ run to run
            // (set iteration order), and traps would then slash honest
            // providers.
            .env("PYTHONHASHSEED", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// The namespace sets this executor may use, strongest first.
    fn namespace_candidates(&self) -> impl Iterator<Item = Namespaces> + '_ {
        let all: &[Namespaces] = if self.root {
            &ROOT_NAMESPACES
        } else {
            &USER_NAMESPACES
        };
        all.iter().copied().filter(|ns| {
            (self.config.network == NetworkPolicy::BestEffort || ns.contains(Namespaces::NET))
                && (self.config.pid_namespace || !ns.contains(Namespaces::PID))
        })
    }

    /// Spawns in the strongest namespace set the host allows, probing on
    /// the first call. Returns the child and the namespaces it runs in.
    fn spawn(
        &self,
        limits: &Limits,
        make: impl Fn() -> tokio::process::Command,
        ruleset: impl Fn() -> Option<RulesetCreated>,
        uid: Option<u32>,
    ) -> Result<(tokio::process::Child, Namespaces), ExecError> {
        let spawn_err = |e: io::Error| ExecError::Host(format!("spawning the process: {e}"));
        let spawn_in = |ns: Namespaces| {
            let mut cmd = make();
            install_sandbox(&mut cmd, SandboxPlan::new(limits, ns, uid), ruleset());
            cmd.spawn()
        };
        let known = usize::from(self.namespaces.load(Ordering::Relaxed));
        if let Some(ns) = known
            .checked_sub(1)
            .and_then(|i| self.namespace_candidates().nth(i))
        {
            return spawn_in(ns).map(|c| (c, ns)).map_err(spawn_err);
        }
        let mut last = None;
        for (i, ns) in self.namespace_candidates().enumerate() {
            match spawn_in(ns) {
                Ok(child) => {
                    let index = u8::try_from(i + 1).expect("a handful of candidates");
                    self.namespaces.store(index, Ordering::Relaxed);
                    return Ok((child, ns));
                }
                // unshare fails with EPERM (no privilege, or forbidden by a
                // seccomp policy), EINVAL (no kernel support) or
                // ENOSPC/EUSERS (namespace quota): try a weaker set.
                // Anything else is fatal.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EPERM | libc::EINVAL | libc::ENOSPC | libc::EUSERS)
                    ) =>
                {
                    last = Some(e);
                }
                Err(e) => return Err(spawn_err(e)),
            }
        }
        match (self.config.network, last) {
            (NetworkPolicy::Require, e) => Err(ExecError::IsolationUnavailable(format!(
                "cannot create a network namespace (unshare failed: {e:?})"
            ))),
            (NetworkPolicy::BestEffort, Some(e)) => Err(spawn_err(e)),
            (NetworkPolicy::BestEffort, None) => Err(ExecError::Host("nothing to spawn".into())),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn spawn_and_wait(
        &self,
        task: &Task,
        limits: &Limits,
        interpreter: &Path,
        args: &[String],
        file_name: &str,
        dir: &Path,
        uid: Option<u32>,
    ) -> Result<Execution, ExecError> {
        let started = wall_clock();
        let filesystem = landlock_ruleset(dir, interpreter).is_some();
        let (mut child, namespaces) = self.spawn(
            limits,
            || Self::command(interpreter, args, file_name, dir),
            || {
                filesystem
                    .then(|| landlock_ruleset(dir, interpreter))
                    .flatten()
            },
            uid,
        )?;
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(Pid::from_raw)
            .ok_or_else(|| ExecError::Host("spawned process has no pid".into()))?;
        let io = |what: &str| ExecError::Host(format!("missing {what} pipe"));
        let mut stdin = child.stdin.take().ok_or_else(|| io("stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| io("stdout"))?;
        let stderr = child.stderr.take().ok_or_else(|| io("stderr"))?;

        let input = task.input.clone();
        let writer = tokio::spawn(async move {
            // A script that does not read its input closes the pipe: fine.
            let _ = stdin.write_all(&input).await;
        });
        // Too much output stops the task at once.
        let out = Capture::start(stdout, limits.output_bytes, Some(pid));
        let err = Capture::start(stderr, limits.stderr_bytes, None);

        let waited = wait_leader(pid, limits.wall_time).await;
        let contained = end_stragglers(pid, uid).await;
        let _ = child.wait().await; // reap
        writer.abort();
        let (status, timed_out) = waited?;
        if !contained {
            // Survivors hold the output open: waiting for it would only add
            // the grace period to the same error.
            out.abort();
            err.abort();
            return Err(ExecError::Host(format!(
                "processes of sandbox uid {uid:?} were still alive {:?} after kill(-1, SIGKILL)",
                sandbox::KILL_WAIT
            )));
        }
        let cpu_time = status.1;
        let wall_time = Duration::from(started.elapsed());
        // Every process of the task is dead by now (unless it ran under
        // process-group containment), so its pipes are closed: the grace
        // only covers a stream held by a process outside the sandbox's reach.
        let grace = std::time::Duration::from_secs(5);
        let stdout = out.finish(grace, OutputStream::Stdout).await?;
        let stderr = err.finish(grace, OutputStream::Stderr).await?;
        if timed_out {
            return Err(ExecError::Timeout {
                limit: limits.wall_time,
            });
        }
        if stdout.overflow {
            return Err(ExecError::OutputTooLarge {
                limit_bytes: limits.output_bytes,
            });
        }
        let outcome = Outcome {
            exit_code: status.0.exit_status(),
            signal: status.0.terminating_signal(),
            cpu_time,
        };
        classify(
            outcome,
            String::from_utf8_lossy(&stderr.bytes).into_owned(),
            limits,
        )?;
        let usage = Usage {
            fuel: 0,
            cpu_time,
            wall_time,
            compute_micros: cpu_time.as_micros(),
            isolation: isolation(namespaces, uid, filesystem),
        };
        Ok(Execution::new(stdout.bytes, usage))
    }
}

/// What was applied, from what was asked of the kernel (the spawn fails if
/// any of it fails).
fn isolation(namespaces: Namespaces, uid: Option<u32>, filesystem: bool) -> Isolation {
    let applied = |yes: bool| if yes { Applied::Yes } else { Applied::No };
    let containment = if namespaces.contains(Namespaces::PID) {
        Containment::PidNamespace
    } else if uid.is_some() {
        Containment::UidSweep
    } else {
        Containment::ProcessGroup
    };
    Isolation {
        network: applied(namespaces.contains(Namespaces::NET)),
        unprivileged_user: applied(uid.is_some()),
        resource_limits: Applied::Yes,
        filesystem: applied(filesystem),
        containment,
    }
}

/// Waits until the spawned process exits or the wall limit passes (then
/// kills its process group, which in a PID namespace includes the init and
/// so everything). Does not reap it, so its pid and process group stay
/// reserved while stragglers are killed and its final CPU time is read.
/// Returns its status and CPU time, and whether the wall limit hit.
async fn wait_leader(
    pid: Pid,
    wall: Duration,
) -> Result<((rustix::process::WaitIdStatus, Duration), bool), ExecError> {
    let mut waiter = tokio::task::spawn_blocking(move || {
        rustix::process::waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        )
    });
    let (status, timed_out) = match tokio::time::timeout(wall.into(), &mut waiter).await {
        Ok(joined) => (joined, false),
        Err(_) => {
            let _ = rustix::process::kill_process_group(pid, Signal::KILL);
            (waiter.await, true)
        }
    };
    let status = status
        .map_err(|e| ExecError::Host(format!("waiter failed: {e}")))?
        .map_err(|e| ExecError::Host(format!("waitid: {e}")))?
        .ok_or_else(|| ExecError::Host("waitid returned no status".into()))?;
    Ok(((status, zombie_cpu_time(pid)), timed_out))
}

/// Kills what may be left of a task whose main process has exited: its
/// process group, and every process of its sandbox uid (those that left the
/// group with `setsid`). In a PID namespace nothing is left by now; the
/// sweep then costs one helper, whose kill finds nothing. False if
/// processes of the uid survived.
async fn end_stragglers(pid: Pid, uid: Option<u32>) -> bool {
    let _ = rustix::process::kill_process_group(pid, Signal::KILL);
    match uid {
        Some(uid) => tokio::task::spawn_blocking(move || kill_uid(uid))
            .await
            .unwrap_or(false),
        None => true,
    }
}

/// How a process ended.
struct Outcome {
    exit_code: Option<i32>,
    signal: Option<i32>,
    cpu_time: Duration,
}

/// Maps an ended process to success or a typed error.
///
/// Signals are authoritative. For a non-zero exit, Python's own reports of
/// hitting a limit (`MemoryError` under `RLIMIT_AS`; `EFBIG` "File too
/// large", since Python ignores `SIGXFSZ`) are recognized in the standard
/// error's last lines.
fn classify(o: Outcome, stderr: String, limits: &Limits) -> Result<(), ExecError> {
    if let Some(signal) = o.signal {
        return Err(match signal {
            libc::SIGXCPU => ExecError::CpuTimeLimit {
                limit: limits.cpu_time,
            },
            libc::SIGKILL if o.cpu_time >= limits.cpu_time => ExecError::CpuTimeLimit {
                limit: limits.cpu_time,
            },
            libc::SIGXFSZ => ExecError::FileSizeLimit {
                limit_bytes: limits.file_bytes,
            },
            _ => ExecError::Signaled { signal, stderr },
        });
    }
    match o.exit_code {
        Some(0) => Ok(()),
        code => {
            let tail: String = stderr.lines().rev().take(3).collect::<Vec<_>>().join("\n");
            if tail.contains("MemoryError") {
                Err(ExecError::MemoryLimit {
                    limit_bytes: limits.memory_bytes,
                })
            } else if tail.contains("[Errno 27] File too large") {
                Err(ExecError::FileSizeLimit {
                    limit_bytes: limits.file_bytes,
                })
            } else {
                Err(ExecError::NonZeroExit {
                    code: code.unwrap_or(-1),
                    stderr,
                })
            }
        }
    }
}

/// A plain file name inside the working directory.
fn check_file_name(name: &str) -> Result<(), ExecError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.contains(['/', '\0']);
    if ok {
        Ok(())
    } else {
        Err(ExecError::BadInput(format!(
            "`{name}` is not a plain file name (no `/`, not `.` or `..`, 1..=255 bytes)"
        )))
    }
}

/// What a reader captured from one stream.
#[derive(Debug, Default)]
struct Captured {
    /// The bytes kept (at most the limit).
    bytes: Vec<u8>,
    /// True if the stream had more than the limit.
    overflow: bool,
}

/// A stream being read in the background into a shared buffer, so that
/// what was read survives the reader being given up on.
struct Capture {
    handle: tokio::task::JoinHandle<io::Result<()>>,
    state: Arc<Mutex<Captured>>,
}

impl Capture {
    /// Starts reading `r`, keeping up to `limit` bytes. With `stop_group`,
    /// reading stops at the limit and that process group is killed;
    /// without, the rest is drained and dropped so the writer never blocks.
    fn start(
        r: impl AsyncRead + Unpin + Send + 'static,
        limit: u64,
        stop_group: Option<Pid>,
    ) -> Self {
        let state = Arc::new(Mutex::new(Captured::default()));
        let shared = Arc::clone(&state);
        let handle = tokio::spawn(async move {
            let result = read_bounded(r, limit, stop_group.is_some(), &shared).await;
            if let Some(pid) = stop_group.filter(|_| lock(&shared).overflow) {
                let _ = rustix::process::kill_process_group(pid, Signal::KILL);
            }
            result
        });
        Capture { handle, state }
    }

    /// Stops reading (the task's processes could not all be ended).
    fn abort(self) {
        self.handle.abort();
    }

    /// Waits up to `grace` for the stream to close. A stream still open
    /// then is a typed error carrying what was read, never a short `Ok`.
    async fn finish(
        self,
        grace: std::time::Duration,
        stream: OutputStream,
    ) -> Result<Captured, ExecError> {
        let Capture { mut handle, state } = self;
        let ended = tokio::time::timeout(grace, &mut handle).await;
        if ended.is_err() {
            handle.abort();
        }
        let captured = std::mem::take(&mut *lock(&state));
        let failed = |reason: String| ExecError::StreamFailed { stream, reason };
        match ended {
            Ok(Ok(Ok(()))) => Ok(captured),
            Ok(Ok(Err(e))) => Err(failed(e.to_string())),
            Ok(Err(e)) => Err(failed(e.to_string())),
            Err(_) => Err(ExecError::StreamNotClosed {
                stream,
                grace: grace.into(),
                partial: captured.bytes,
            }),
        }
    }
}

fn lock(state: &Mutex<Captured>) -> std::sync::MutexGuard<'_, Captured> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads `r` to its end into `state`, keeping up to `limit` bytes; with
/// `stop_at_limit` it stops reading there.
async fn read_bounded(
    mut r: impl AsyncRead + Unpin,
    limit: u64,
    stop_at_limit: bool,
    state: &Mutex<Captured>,
) -> io::Result<()> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let mut s = lock(state);
        let room = limit.saturating_sub(s.bytes.len());
        s.bytes.extend_from_slice(&buf[..n.min(room)]);
        assert!(s.bytes.len() <= limit);
        if n > room {
            s.overflow = true;
            if stop_at_limit {
                return Ok(());
            }
        }
    }
}

/// CPU time (user + system, own and reaped children) of an exited but not
/// yet reaped process, from `/proc/<pid>/stat`.
fn zombie_cpu_time(pid: Pid) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero())) else {
        return Duration::ZERO;
    };
    parse_cpu_ticks(&stat)
        .map(|ticks| {
            let hz = rustix::param::clock_ticks_per_second().max(1);
            Duration::from_micros(ticks.saturating_mul(1_000_000) / hz)
        })
        .unwrap_or(Duration::ZERO)
}

/// Sum of utime, stime, cutime, cstime (fields 14–17) of a stat line.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may contain spaces; fields resume after
    // the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so field k is at index k - 3.
    let sum = (14..=17)
        .map(|k| fields.get(k - 3)?.parse::<u64>().ok())
        .try_fold(0u64, |acc, v| Some(acc.saturating_add(v?)))?;
    Some(sum)
}

#[async_trait]
impl Executor for ProcessExecutor {
    fn supports(&self, kind: ExecutorKind) -> bool {
        kind == ExecutorKind::Process
    }

    async fn execute(&self, task: &Task, limits: &Limits) -> Result<Execution, ExecError> {
        self.run(task, limits).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_handles_spaces_in_names() {
        let line = "42 (my (odd) name) Z 1 42 42 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0";
        assert_eq!(parse_cpu_ticks(line), Some(13));
        assert_eq!(parse_cpu_ticks("garbage"), None);
        assert_eq!(parse_cpu_ticks("1 (x) Z 1"), None);
    }

    #[test]
    fn file_names_are_checked() {
        for bad in ["", ".", "..", "a/b", "/etc/passwd", "nul\0"] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_file_name("data.csv").is_ok());
    }
}
