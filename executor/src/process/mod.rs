//! [`ProcessExecutor`]: a native process (typically `python3 script.py`) in
//! a sandbox built from plain Linux mechanisms, no container runtime needed.
//!
//! Each task gets:
//! - a fresh temporary working directory holding only the script, the input
//!   (as the file `input`, also piped to standard input) and the task's
//!   files; it is removed afterwards;
//! - a cleared environment: only `PATH=/usr/local/bin:/usr/bin:/bin`,
//!   `HOME` and `TMPDIR` (the working directory) and `LANG=C.UTF-8`;
//! - a new session and process group, killed as a whole at the wall-clock
//!   limit and again when the task ends (no stragglers);
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
//! Not provided: a seccomp filter or a private mount/PID namespace. Without
//! Landlock, a program can read every world-readable file on the host; check
//! `Usage::isolation` and run providers accordingly. As root without sandbox
//! uids, `RLIMIT_NPROC` does not bind (the kernel exempts root).

mod sandbox;

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use async_trait::async_trait;
use idlegrid_primitives::Duration;
use landlock::RulesetCreated;
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};
use sandbox::{
    LEASED_UIDS, SandboxPlan, UidLease, install_sandbox, kill_uid, landlock_ruleset, lock_uid,
    uids_with_processes,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::task::{Applied, ExecutorKind, Isolation, Program};
use crate::{ExecError, Execution, Executor, Limits, Task, Usage};

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
        }
    }
}

const NETNS_UNKNOWN: u8 = 0;
const NETNS_WORKS: u8 = 1;
const NETNS_UNAVAILABLE: u8 = 2;

/// Runs script tasks as sandboxed native processes (see the module docs).
///
/// Cloning is cheap. Sandbox uids are leased from a host-wide pool (a lock
/// file per uid), so any number of executors can share a range.
#[derive(Debug, Clone)]
pub struct ProcessExecutor {
    config: Arc<ProcessConfig>,
    netns: Arc<AtomicU8>,
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
        let drop_privileges = rustix::process::geteuid().is_root() && config.sandbox_uids > 0;
        ProcessExecutor {
            config: Arc::new(config),
            netns: Arc::new(AtomicU8::new(NETNS_UNKNOWN)),
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
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Spawns with a new network namespace if possible, falling back
    /// according to the policy. Returns the child and whether the namespace
    /// was applied.
    fn spawn(
        &self,
        limits: &Limits,
        make: impl Fn() -> tokio::process::Command,
        ruleset: impl Fn() -> Option<RulesetCreated>,
        uid: Option<u32>,
    ) -> Result<(tokio::process::Child, bool), ExecError> {
        let spawn_err = |e: io::Error| ExecError::Host(format!("spawning the process: {e}"));
        if self.netns.load(Ordering::Relaxed) != NETNS_UNAVAILABLE {
            let mut cmd = make();
            install_sandbox(&mut cmd, SandboxPlan::new(limits, true, uid), ruleset());
            match cmd.spawn() {
                Ok(child) => {
                    self.netns.store(NETNS_WORKS, Ordering::Relaxed);
                    return Ok((child, true));
                }
                // unshare(CLONE_NEWNET) fails with EPERM (no privilege, or
                // forbidden by a seccomp policy), EINVAL (no kernel support)
                // or ENOSPC/EUSERS (namespace quota). Anything else, or any
                // error once the namespace is known to work, is fatal.
                Err(e)
                    if self.netns.load(Ordering::Relaxed) == NETNS_WORKS
                        || !matches!(
                            e.raw_os_error(),
                            Some(libc::EPERM | libc::EINVAL | libc::ENOSPC | libc::EUSERS)
                        ) =>
                {
                    return Err(spawn_err(e));
                }
                Err(_) => {} // Probe without the namespace below.
            }
        }
        if self.config.network == NetworkPolicy::Require {
            return Err(ExecError::IsolationUnavailable(
                "cannot create a network namespace (unshare(CLONE_NEWNET) failed)".into(),
            ));
        }
        let mut cmd = make();
        install_sandbox(&mut cmd, SandboxPlan::new(limits, false, uid), ruleset());
        let child = cmd.spawn().map_err(spawn_err)?;
        // The spawn without the namespace succeeded, so the namespace was
        // what failed.
        self.netns.store(NETNS_UNAVAILABLE, Ordering::Relaxed);
        Ok((child, false))
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
        let (mut child, netns) = self.spawn(
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
        let out_limit = limits.output_bytes;
        let out_reader = tokio::spawn(async move {
            let r = read_bounded(stdout, out_limit, true).await;
            if r.1 {
                // Too much output: stop the task now.
                let _ = rustix::process::kill_process_group(pid, Signal::KILL);
            }
            r
        });
        let err_reader = tokio::spawn(read_bounded(stderr, limits.stderr_bytes, false));

        // Wait for the leader to exit without reaping it, so its pid and
        // process group stay reserved while we kill the group and read its
        // final CPU times.
        let mut waiter = tokio::task::spawn_blocking(move || {
            rustix::process::waitid(
                WaitId::Pid(pid),
                WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
            )
        });
        let wall: std::time::Duration = limits.wall_time.into();
        let (status, timed_out) = match tokio::time::timeout(wall, &mut waiter).await {
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
        let cpu_time = zombie_cpu_time(pid);
        let wall_time = Duration::from(started.elapsed());
        // Stragglers in the group die with the task.
        let _ = rustix::process::kill_process_group(pid, Signal::KILL);
        if let Some(uid) = uid {
            // Also those that left the group (setsid), so no one keeps the
            // output pipes open.
            let _ = tokio::task::spawn_blocking(move || kill_uid(uid)).await;
        }
        let _ = child.wait().await; // reap
        writer.abort();
        let grace = std::time::Duration::from_secs(5);
        let (stdout, overflow) = join_reader(out_reader, grace).await;
        let (stderr, _) = join_reader(err_reader, grace).await;

        let stderr_text = String::from_utf8_lossy(&stderr).into_owned();
        if timed_out {
            return Err(ExecError::Timeout {
                limit: limits.wall_time,
            });
        }
        if overflow {
            return Err(ExecError::OutputTooLarge {
                limit_bytes: limits.output_bytes,
            });
        }
        let outcome = Outcome {
            exit_code: status.exit_status(),
            signal: status.terminating_signal(),
            cpu_time,
        };
        classify(outcome, stderr_text, limits)?;
        let usage = Usage {
            fuel: 0,
            cpu_time,
            wall_time,
            compute_micros: cpu_time.as_micros(),
            isolation: Isolation {
                network: if netns { Applied::Yes } else { Applied::No },
                unprivileged_user: if uid.is_some() {
                    Applied::Yes
                } else {
                    Applied::No
                },
                resource_limits: Applied::Yes,
                filesystem: if filesystem {
                    Applied::Yes
                } else {
                    Applied::No
                },
            },
        };
        Ok(Execution::new(stdout, usage))
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

/// Reads up to `limit` bytes. Returns the bytes and whether more were
/// available. With `stop_at_limit` it stops reading there; otherwise it keeps
/// draining (and dropping) so the writer never blocks.
async fn read_bounded(
    mut r: impl AsyncRead + Unpin,
    limit: u64,
    stop_at_limit: bool,
) -> (Vec<u8>, bool) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut kept = Vec::new();
    let mut more = false;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let room = limit.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
        if n > room {
            more = true;
            if stop_at_limit {
                break;
            }
        }
    }
    assert!(kept.len() <= limit);
    (kept, more)
}

async fn join_reader(
    mut h: tokio::task::JoinHandle<(Vec<u8>, bool)>,
    grace: std::time::Duration,
) -> (Vec<u8>, bool) {
    match tokio::time::timeout(grace, &mut h).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => (Vec::new(), false),
        Err(_) => {
            // A process outside the group still holds the pipe.
            h.abort();
            (Vec::new(), false)
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
