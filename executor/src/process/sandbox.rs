//! The sandbox layers applied between fork and exec, and the sandbox-uid
//! pool: namespaces (PID, network, user), session, rlimits, unprivileged
//! uid, Landlock, and the init that makes a PID namespace die with its task.

use std::collections::{BTreeSet, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use landlock::RulesetCreated;
use rustix::process::Pid;

use crate::Limits;

/// A sandbox uid leased for one task; returned to the pool on drop, after
/// every process still running under it has been killed.
pub(super) struct UidLease {
    pub(super) uid: u32,
    pub(super) _lock: std::fs::File,
}

/// Opens and exclusively locks (without blocking) the lock file of `uid`.
pub(super) fn lock_uid(dir: &Path, uid: u32) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(dir.join(format!("idlegrid-sandbox-uid-{uid}.lock")))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)?;
    Ok(file)
}

/// Sandbox uids leased by any executor in this OS process. Uids that have
/// running processes on the host (another program's, or another OS
/// process's executor) are skipped too.
pub(super) static LEASED_UIDS: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

impl Drop for UidLease {
    fn drop(&mut self) {
        // A uid with survivors is not reused: `lease_uid` skips uids that
        // own processes.
        kill_uid(self.uid);
        LEASED_UIDS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.uid);
    }
}

/// What the child does between fork and exec. Plain data (`Copy`), so the
/// closure allocates nothing.
#[derive(Debug, Clone, Copy)]
pub(super) struct SandboxPlan {
    namespaces: Namespaces,
    uid: Option<u32>,
    rlimits: [(RlimitResource, u64, u64); 6],
}

/// A set of namespaces to create with one `unshare` (`CLONE_NEW*` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Namespaces(libc::c_int);

impl Namespaces {
    /// No new namespace.
    pub(super) const NONE: Namespaces = Namespaces(0);
    /// A network namespace (empty: loopback only, down).
    pub(super) const NET: Namespaces = Namespaces(libc::CLONE_NEWNET);
    /// A PID namespace, whose init is [`fork_into_pid_namespace`]'s.
    pub(super) const PID: Namespaces = Namespaces(libc::CLONE_NEWPID);
    /// A user namespace, which lets an unprivileged caller create the others.
    pub(super) const USER: Namespaces = Namespaces(libc::CLONE_NEWUSER);

    /// Both sets.
    pub(super) const fn with(self, other: Namespaces) -> Namespaces {
        Namespaces(self.0 | other.0)
    }

    /// True if every namespace of `other` is in `self`.
    pub(super) const fn contains(self, other: Namespaces) -> bool {
        self.0 & other.0 == other.0
    }
}

#[cfg(target_env = "gnu")]
type RlimitResource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type RlimitResource = libc::c_int;

impl SandboxPlan {
    pub(super) fn new(limits: &Limits, namespaces: Namespaces, uid: Option<u32>) -> Self {
        let cpu_secs = limits.cpu_time.as_micros().div_ceil(1_000_000).max(1);
        let files = limits.open_files.max(8);
        // The PID namespace's two helpers (outer waiter and init) count
        // against RLIMIT_NPROC too.
        let helpers = if namespaces.contains(Namespaces::PID) {
            2
        } else {
            0
        };
        let processes = limits.processes.saturating_add(helpers);
        SandboxPlan {
            namespaces,
            uid,
            rlimits: [
                // SIGXCPU at the soft limit, SIGKILL one second later.
                (libc::RLIMIT_CPU, cpu_secs, cpu_secs.saturating_add(1)),
                (libc::RLIMIT_AS, limits.memory_bytes, limits.memory_bytes),
                (libc::RLIMIT_FSIZE, limits.file_bytes, limits.file_bytes),
                (libc::RLIMIT_NPROC, processes, processes),
                (libc::RLIMIT_NOFILE, files, files),
                (libc::RLIMIT_CORE, 0, 0),
            ],
        }
    }
}

/// Builds, in the parent, a Landlock ruleset allowing read and execute
/// beneath the system directories and the interpreter's directory, and full
/// access beneath the task directory only. `None` if the kernel lacks
/// Landlock (then the program sees every file its uid may read).
pub(super) fn landlock_ruleset(workdir: &Path, interpreter: &Path) -> Option<RulesetCreated> {
    use landlock::{
        ABI, Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreatedAttr,
        path_beneath_rules,
    };
    let abi = ABI::V1;
    let mut read_only: Vec<PathBuf> = ["/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc"]
        .into_iter()
        .map(PathBuf::from)
        .collect();
    if let Some(dir) = interpreter
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        read_only.push(dir);
    }
    if let Some(dir) = interpreter.parent() {
        read_only.push(dir.to_path_buf());
    }
    let devices = ["/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"];
    Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(abi))
        .ok()?
        .create()
        .ok()?
        .add_rules(path_beneath_rules(&read_only, AccessFs::from_read(abi)))
        .ok()?
        .add_rules(path_beneath_rules(devices, AccessFs::from_file(abi)))
        .ok()?
        .add_rules(path_beneath_rules([workdir], AccessFs::from_all(abi)))
        .ok()
}

/// Installs the sandbox into `cmd`: the one audited `unsafe` of the crate.
#[allow(unsafe_code)]
pub(super) fn install_sandbox(
    cmd: &mut tokio::process::Command,
    plan: SandboxPlan,
    ruleset: Option<RulesetCreated>,
) {
    let mut ruleset = ruleset;
    let child = move || -> io::Result<()> {
        // SAFETY (whole closure): it runs in the forked child before exec,
        // where only async-signal-safe functions may be called. It calls only
        // raw system-call wrappers (unshare, setsid, getrlimit, setrlimit,
        // setgroups, setgid, setuid, prctl, landlock_restrict_self, close,
        // and those of `fork_into_pid_namespace`), allocates nothing, takes
        // no locks, and reads only `plan`, a `Copy` value, and `ruleset`, an
        // fd prepared by the parent, both captured by move. Pointers passed
        // are to stack locals that outlive each call.
        unsafe {
            // First, so the parent can tell its failure apart and retry
            // without it (a different error would recur on the retry).
            if plan.namespaces != Namespaces::NONE && libc::unshare(plan.namespaces.0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            for (resource, soft, hard) in plan.rlimits {
                let mut cur = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                if libc::getrlimit(resource, &mut cur) != 0 {
                    return Err(io::Error::last_os_error());
                }
                let new = libc::rlimit {
                    rlim_cur: soft.min(cur.rlim_max),
                    rlim_max: hard.min(cur.rlim_max),
                };
                if libc::setrlimit(resource, &new) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if let Some(uid) = plan.uid {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(uid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(io::Error::last_os_error());
                }
            }
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(rs) = ruleset.take() {
            // Hard requirement: the ruleset exists only if the kernel
            // enforces it, so a failure here is an error, never a silent
            // downgrade.
            rs.restrict_self()
                .map_err(|_| io::Error::from_raw_os_error(libc::EACCES))?;
        }
        if plan.namespaces.contains(Namespaces::PID) {
            // SAFETY: see the function; we are in the forked child, after
            // `unshare(CLONE_NEWPID)`.
            unsafe { super::pidns::fork_into_pid_namespace() }
        } else {
            Ok(())
        }
    };
    // SAFETY: `child` is async-signal-safe, see above.
    unsafe {
        cmd.pre_exec(child);
    }
}

/// `(pid, real uid, is zombie)` of every process on the host.
pub(super) fn host_processes() -> Vec<(Pid, u32, bool)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
                .and_then(Pid::from_raw)?;
            let status = std::fs::read_to_string(entry.path().join("status")).ok()?;
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|s| s.parse::<u32>().ok())?;
            let zombie = status
                .lines()
                .find_map(|l| l.strip_prefix("State:"))
                .is_some_and(|l| l.trim_start().starts_with('Z'));
            Some((pid, uid, zombie))
        })
        .collect()
}

/// Uids that currently own a process.
pub(super) fn uids_with_processes() -> HashSet<u32> {
    host_processes()
        .into_iter()
        .map(|(_, uid, _)| uid)
        .collect()
}

/// True if a process (not a zombie) of real uid `uid` is alive.
fn alive_under(uid: u32) -> bool {
    host_processes()
        .into_iter()
        .any(|(_, u, zombie)| u == uid && !zombie)
}

/// Kills every process whose real uid is `uid` (a sandbox uid leaving use):
/// a helper running as `uid` calls `kill(-1, SIGKILL)`, which the kernel
/// delivers to every process that uid may signal in one pass under the
/// task-list lock, so a process that keeps forking cannot slip past it.
/// Repeated until a scan of `/proc` finds none alive (at most 50 rounds).
/// Returns false if some still are.
pub(super) fn kill_uid(uid: u32) -> bool {
    for _ in 0..50 {
        if !alive_under(uid) {
            return true;
        }
        kill_all_as(uid);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    !alive_under(uid)
}

/// Forks a helper that switches to `uid`, sends `kill(-1, SIGKILL)` and
/// exits without exec, and waits for it.
#[allow(unsafe_code)]
fn kill_all_as(uid: u32) {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new("/bin/true");
    // std switches to the uid (and drops supplementary groups) before the
    // closure runs.
    cmd.uid(uid)
        .gid(uid)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: the closure runs in the forked child and calls only `kill`
    // and `_exit` (async-signal-safe); it never returns, so nothing is
    // exec'd. `kill(-1)` spares the caller itself.
    unsafe {
        cmd.pre_exec(|| {
            libc::kill(-1, libc::SIGKILL);
            libc::_exit(0)
        });
    }
    if let Ok(mut child) = cmd.spawn() {
        let _ = child.wait();
    }
}
