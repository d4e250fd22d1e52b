//! The sandbox layers applied between fork and exec, and the sandbox-uid
//! pool: namespaces (PID, network, user), session, rlimits, unprivileged
//! uid, Landlock, and the init that makes a PID namespace die with its task.

use std::collections::{BTreeSet, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use landlock::RulesetCreated;

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

/// One process of the host, as `/proc/<pid>/status` describes it.
#[derive(Debug, Clone, Copy)]
pub(super) struct HostProcess {
    /// Real uid.
    pub(super) uid: u32,
    /// True while it can still run or hold files: not a zombie, or a
    /// zombie thread-group leader whose other threads still run (`Z` with
    /// `Threads:` above 1).
    pub(super) alive: bool,
}

/// Every process on the host. A snapshot that is not atomic: `/proc` is
/// listed once, then each status is read, so a process that forks after
/// the listing and exits before its status is read is seen as a zombie,
/// and its child not at all. Never conclude from one scan that a
/// fork-hopping uid has no process left; see [`kill_uid`].
pub(super) fn host_processes() -> Vec<HostProcess> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            entry.file_name().to_str()?.parse::<u32>().ok()?;
            let status = std::fs::read_to_string(entry.path().join("status")).ok()?;
            parse_status(&status)
        })
        .collect()
}

/// Reads the real uid and liveness from a `/proc/<pid>/status` text.
fn parse_status(status: &str) -> Option<HostProcess> {
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name));
    let uid = field("Uid:")?
        .split_whitespace()
        .next()?
        .parse::<u32>()
        .ok()?;
    let zombie = field("State:").is_some_and(|l| l.trim_start().starts_with('Z'));
    let threads = field("Threads:")
        .and_then(|l| l.trim().parse::<u32>().ok())
        .unwrap_or(1);
    Some(HostProcess {
        uid,
        alive: !zombie || threads > 1,
    })
}

/// Uids that currently own a process.
pub(super) fn uids_with_processes() -> HashSet<u32> {
    host_processes().into_iter().map(|p| p.uid).collect()
}

/// True if a scan finds a live process of real uid `uid`.
fn alive_under(uid: u32) -> bool {
    host_processes()
        .into_iter()
        .any(|p| p.uid == uid && p.alive)
}

/// How long [`kill_uid`] waits for the processes it killed to finish
/// dying (to release their memory and close their files, the task's output
/// pipes among them). They die in milliseconds; the margin is for a host
/// under heavy load.
pub(super) const KILL_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Kills every process whose real uid is `uid` (a sandbox uid leaving use)
/// and waits until none is left alive. Returns false if some still are
/// after [`KILL_WAIT`], or if the kill could not be sent.
///
/// The kill comes first, always: a helper running as `uid` calls
/// `kill(-1, SIGKILL)`, which the kernel delivers to every process that uid
/// may signal in one pass under the task-list lock; a fork racing with it
/// fails, so from then on the uid's processes can only die. Only after a
/// kill does a scan of `/proc` mean anything: before, a fork-hopping task
/// slips past a scan (listed, then forked and exited before its status was
/// read: a zombie, and its child unlisted), which would end the sweep
/// before it killed anything. The kill is repeated with each scan that
/// still finds a live process.
pub(super) fn kill_uid(uid: u32) -> bool {
    let deadline = super::wall_clock() + KILL_WAIT;
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        match kill_all_as(uid) {
            // Not even a zombie of the uid is left.
            Ok(Signaled::None) => return true,
            Ok(Signaled::Some) if !alive_under(uid) => return true,
            // Still dying, or the helper could not run (then nothing may be
            // concluded from a scan): try again until the deadline.
            Ok(Signaled::Some) | Err(_) => {}
        }
        if super::wall_clock() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(20));
    }
}

/// What a `kill(-1, SIGKILL)` reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signaled {
    /// At least one process (possibly only zombies).
    Some,
    /// No process at all (`ESRCH`).
    None,
}

/// The helper's exit code when its `kill(-1, SIGKILL)` reached no process.
const HELPER_FOUND_NONE: i32 = 3;

/// Forks a helper that switches to `uid`, sends `kill(-1, SIGKILL)` and
/// exits without exec, telling by its exit code whether the kill reached
/// any process; waits for it.
#[allow(unsafe_code)]
fn kill_all_as(uid: u32) -> io::Result<Signaled> {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new("/bin/true");
    // std switches to the uid (and drops supplementary groups) before the
    // closure runs.
    cmd.uid(uid)
        .gid(uid)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: the closure runs in the forked child and calls only `kill`,
    // `__errno_location` (through `last_os_error`, a thread-local read) and
    // `_exit` (async-signal-safe); it never returns, so nothing is exec'd.
    // `kill(-1)` spares the caller itself.
    unsafe {
        cmd.pre_exec(|| {
            let code = if libc::kill(-1, libc::SIGKILL) == 0 {
                0
            } else if io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
                HELPER_FOUND_NONE
            } else {
                1
            };
            libc::_exit(code)
        });
    }
    let status = cmd.spawn()?.wait()?;
    match status.code() {
        Some(0) => Ok(Signaled::Some),
        Some(HELPER_FOUND_NONE) => Ok(Signaled::None),
        _ => Err(io::Error::other(format!(
            "the kill helper of uid {uid} failed: {status}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_liveness() {
        let status = |state: &str, threads: u32| {
            format!(
                "Name:\tpython3\nState:\t{state}\nTgid:\t7\nUid:\t61000\t61000\t61000\t61000\n\
                 Threads:\t{threads}\n"
            )
        };
        let p = parse_status(&status("S (sleeping)", 1)).unwrap();
        assert_eq!(p.uid, 61000);
        assert!(p.alive);
        assert!(!parse_status(&status("Z (zombie)", 1)).unwrap().alive);
        // A leader that exited while its other threads run.
        assert!(parse_status(&status("Z (zombie)", 3)).unwrap().alive);
        assert!(parse_status("State:\tR (running)\n").is_none());
    }
}
