//! The one place Tether calls `fork(2)`, and the rule that makes it safe.
//!
//! A forked child is a copy of one thread of its parent. If the parent had other threads, any
//! lock they held (the allocator's, stdio's, a runtime's) stays locked forever in the child, and
//! `PR_SET_PDEATHSIG` fires when the forking *thread* exits rather than the process. The shim and
//! its watchdog are therefore forked only from a process with exactly one thread: this helper
//! counts the threads (in `/proc/self/task`) and refuses otherwise. A count of one cannot
//! change between the check and the fork, since only this very thread could start another.
//!
//! Everywhere else `fork` is banned by clippy's `disallowed-methods` (see `clippy.toml`), so a
//! gateway thread cannot fork by accident: the gateway starts shims through
//! [`crate::launch`], whose `exec` runs at once in the child.

use std::io;

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
