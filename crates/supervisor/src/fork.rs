//! The one place Tether calls `fork(2)`, and the rule that makes it safe.
//!
//! A forked child is a copy of one thread of its parent. If the parent had other threads, any
//! lock they held (the allocator's, stdio's, a runtime's) stays locked forever in the child, and
//! `PR_SET_PDEATHSIG` fires when the forking *thread* exits rather than the process. The shim and
//! its watchdog are therefore forked only from a process with exactly one thread: this helper
//! counts the threads (in `/proc/self/task`) and refuses otherwise. A count of one cannot
//! change between the check and the fork, since only this very thread could start another.
//!
//! [`fork_into_cgroup`] is the same fork done by `clone3(CLONE_INTO_CGROUP)`: the child is born
//! in a cgroup instead of moving there by a write to `cgroup.procs`. A move takes the kernel's
//! cgroup-wide write lock, which waits out an RCU grace period whenever no other move happened
//! in the last few milliseconds: 6 ms on this VM for a `tether wrap` started on its own (and up
//! to 20 ms under load), against 0.03 ms when moves come back to back, as in a benchmark loop.
//! Being born there takes only the read side. A kernel or sandbox that refuses `clone3` with
//! an error (`ENOSYS` before 5.3, or from a seccomp filter, as Docker's default profile does)
//! gets the fork and the write instead; one whose filter kills the process on a system call it
//! does not list would kill the shim here, so run Tether under such a filter with `clone3`
//! allowed.
//!
//! Everywhere else `fork` is banned by clippy's `disallowed-methods` (see `clippy.toml`), so a
//! gateway thread cannot fork by accident: the gateway starts shims through
//! [`crate::launch`], whose `exec` runs at once in the child.

use std::io;
use std::os::fd::RawFd;

use nix::unistd::ForkResult;

use crate::process::procfs;

/// Forks, after proving this process has a single thread.
#[allow(clippy::disallowed_methods)] // The one allowed call of fork.
pub(crate) fn fork_single_threaded() -> io::Result<ForkResult> {
    ensure_single_threaded("fork")?;
    #[allow(unsafe_code)]
    // SAFETY: the process has exactly one thread (checked above, and only this thread could add
    // one), so the child is a faithful copy with no lock held by a vanished thread. Callers make
    // only async-signal-safe calls in the child before exec or exit, or run single-threaded
    // code of their own (the watchdog).
    let forked = unsafe { nix::unistd::fork() };
    forked.map_err(io::Error::from)
}

/// `struct clone_args` of `clone3(2)` up to its `cgroup` field (the kernel's
/// `CLONE_ARGS_SIZE_VER2`, 88 bytes), the same on every architecture.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Forks like [`fork_single_threaded`], the child born in the cgroup whose directory `cgroup`
/// is open on (Linux ≥ 5.7). The error is the kernel's when it refuses (`ENOSYS` before 5.7, or
/// a cgroup it will not put a process in): the caller then forks and joins by a write.
#[allow(unsafe_code)]
pub(crate) fn fork_into_cgroup(cgroup: RawFd) -> io::Result<ForkResult> {
    ensure_single_threaded("fork")?;
    let args = CloneArgs {
        flags: 0x2_0000_0000, // CLONE_INTO_CGROUP
        exit_signal: libc::SIGCHLD as u64,
        cgroup: u64::try_from(cgroup).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?,
        ..CloneArgs::default()
    };
    // SAFETY: as for `fork_single_threaded`: one thread, so the child is a faithful copy (no
    // stack given, so it runs on a copy of this one, like fork). glibc's fork handlers do not
    // run, so the child must make raw system calls only until it execs or exits, which the one
    // caller (the server's spawn) does.
    let ret = unsafe { libc::syscall(libc::SYS_clone3, &raw const args, std::mem::size_of::<CloneArgs>()) };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(ForkResult::Child),
        pid => {
            let pid = i32::try_from(pid).map_err(|_| io::Error::other("clone3 returned an impossible pid"))?;
            Ok(ForkResult::Parent {
                child: nix::unistd::Pid::from_raw(pid),
            })
        }
    }
}

/// Fails unless this process has exactly one thread; `what` names the operation refused.
pub(crate) fn ensure_single_threaded(what: &str) -> io::Result<()> {
    match procfs::own_thread_count() {
        Some(1) => Ok(()),
        Some(n) => Err(io::Error::other(format!(
            "refusing to {what}: this process has {n} threads, and a fork copies only one of them \
             (locks held by the others stay locked in the child); start a shim through \
             tether_supervisor::launch instead"
        ))),
        None => Err(io::Error::other(format!(
            "refusing to {what}: cannot count this process's threads in /proc/self/task"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_with_threads_is_refused() {
        // The test harness runs tests on threads of its own, so this process has several.
        let parked = std::thread::spawn(std::thread::park);
        let err = fork_single_threaded().expect_err("fork must be refused with threads running");
        assert!(err.to_string().contains("threads"), "{err}");
        parked.thread().unpark();
        parked.join().expect("thread");
    }
}
