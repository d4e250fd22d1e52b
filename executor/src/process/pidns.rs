//! The init of a task's PID namespace: what makes every process of a task
//! die with it, in one kernel step.
//!
//! After `unshare(CLONE_NEWPID)` the forked child (the *waiter*, still in
//! the host's PID namespace, the process the executor spawned and waits for)
//! forks the namespace's PID 1 (the *init*), which forks the *task* that
//! goes on to exec the interpreter:
//!
//! ```text
//! executor ── waiter (host pid ns) ── init (pid 1) ── task (exec) ── …
//! ```
//!
//! - The init reaps every orphan of the namespace and, when the task ends,
//!   sends its raw wait status to the waiter through a pipe and exits. The
//!   kernel then kills every process left in the namespace and reaps them
//!   before the init's exit completes; no process can leave a PID namespace.
//! - The waiter reaps the init and ends the way the task ended (same exit
//!   code, or the same signal), so the executor's exit status, signal and
//!   CPU-time accounting (children's times accumulate up the chain) are
//!   those of the task.
//! - Both helpers close every descriptor they inherited (the output pipes
//!   included), so the pipes close exactly when the namespace is empty.
//! - Killing the waiter's process group on the wall limit kills the init
//!   (it is in that group, and has `PR_SET_PDEATHSIG` on the waiter), and
//!   with it the whole namespace, even processes that called `setsid`.
//!
//! The init is not the task's interpreter on purpose: the kernel ignores
//! signals without a handler sent to a PID 1, which would change how the
//! program reacts to `SIGXCPU` or its own `kill`.

use std::io;

/// Forks the namespace's init and task (see the module docs). Returns
/// `Ok(())` only in the task, which then execs; the waiter and the init
/// never return. An `Err` is returned only before anything was forked, or
/// by the init if it cannot fork the task (the executor's spawn then fails).
///
/// # Safety
///
/// Call only in a freshly forked child, before exec, right after
/// `unshare(CLONE_NEWPID)`. Everything below is async-signal-safe: raw
/// system calls on stack values (pipe2, fork, sigaction, prctl, waitpid,
/// read, write, close_range/close, kill, _exit), no allocation, no locks.
#[allow(unsafe_code)]
pub(super) unsafe fn fork_into_pid_namespace() -> io::Result<()> {
    // SAFETY: async-signal-safe calls only, see the function docs.
    unsafe {
        let mut fds = [0 as libc::c_int; 2];
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(io::Error::last_os_error());
        }
        let [status_r, status_w] = fds;
        // The executor's SIGCHLD handler (inherited across fork, never
        // reset since we do not exec) must not run in the helpers.
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        let init = libc::fork();
        if init < 0 {
            return Err(io::Error::last_os_error());
        }
        if init > 0 {
            close_all_except(status_r);
            be_waiter(init, status_r)
        }
        libc::close(status_r);
        // The init dies with the waiter (killed with its process group, or
        // by the executor's `kill_on_drop`); its death empties the namespace.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        let task = libc::fork();
        if task < 0 {
            return Err(io::Error::last_os_error());
        }
        if task == 0 {
            libc::close(status_w);
            return Ok(());
        }
        close_all_except(status_w);
        be_init(task, status_w)
    }
}

/// The init: reaps every child until the task ends, reports the task's
/// status and exits, which kills the rest of the namespace.
#[allow(unsafe_code)]
unsafe fn be_init(task: libc::pid_t, status_w: libc::c_int) -> ! {
    // SAFETY: async-signal-safe calls on stack values.
    unsafe {
        let status = reap_until(task, -1);
        let bytes = status.to_ne_bytes();
        libc::write(status_w, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(0)
    }
}

/// The waiter: reaps the init, then ends as the task ended (or as the init
/// did, if the init was killed before it could report).
#[allow(unsafe_code)]
unsafe fn be_waiter(init: libc::pid_t, status_r: libc::c_int) -> ! {
    // SAFETY: async-signal-safe calls on stack values.
    unsafe {
        let mut bytes = [0u8; 4];
        let mut got = 0usize;
        while got < bytes.len() {
            let n = libc::read(
                status_r,
                bytes[got..].as_mut_ptr().cast(),
                bytes.len() - got,
            );
            if n > 0 {
                got += n as usize;
            } else if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                break;
            }
        }
        let init_status = reap_until(init, init);
        let status = if got == bytes.len() {
            libc::c_int::from_ne_bytes(bytes)
        } else {
            init_status
        };
        end_like(status)
    }
}

/// Waits (for any child if `which` is -1, else for `which`), reaping, until
/// `target` has ended; returns its raw wait status.
#[allow(unsafe_code)]
unsafe fn reap_until(target: libc::pid_t, which: libc::pid_t) -> libc::c_int {
    // SAFETY: waitpid on a stack value.
    unsafe {
        loop {
            let mut status: libc::c_int = 0;
            let r = libc::waitpid(which, &mut status, 0);
            if r == target {
                return status;
            }
            if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                // No such child left: report a plain failure.
                return 127 << 8;
            }
        }
    }
}

/// Exits with the same code, or dies of the same signal, as a raw wait
/// status says.
#[allow(unsafe_code)]
unsafe fn end_like(status: libc::c_int) -> ! {
    // SAFETY: signal, kill and _exit on plain integers.
    unsafe {
        if libc::WIFEXITED(status) {
            libc::_exit(libc::WEXITSTATUS(status));
        }
        if libc::WIFSIGNALED(status) {
            let signal = libc::WTERMSIG(status);
            libc::signal(signal, libc::SIG_DFL);
            libc::kill(libc::getpid(), signal);
            // Only signals whose default is to ignore or stop get here.
            libc::_exit(128 + signal);
        }
        libc::_exit(127)
    }
}

/// Closes every descriptor except `keep`.
#[allow(unsafe_code)]
unsafe fn close_all_except(keep: libc::c_int) {
    // SAFETY: close_range/close on integers; closing an fd we do not own is
    // harmless in this process, which never execs.
    unsafe {
        let ok = |r: libc::c_long| r == 0;
        let max = libc::c_uint::MAX;
        let keep_u = keep as libc::c_uint;
        let low = keep_u == 0 || ok(libc::syscall(libc::SYS_close_range, 0, keep_u - 1, 0));
        let high = ok(libc::syscall(libc::SYS_close_range, keep_u + 1, max, 0));
        if !(low && high) {
            // Kernels before 5.9: close one by one, up to the fd limit we set.
            for fd in 0..4096 {
                if fd != keep {
                    libc::close(fd);
                }
            }
        }
    }
}
