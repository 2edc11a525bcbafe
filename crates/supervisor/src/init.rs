//! Tether as PID 1 (a container's entrypoint, a PID namespace's first process): a minimal init
//! in front of the program, so that every orphan is reaped and every signal still counts.
//!
//! PID 1 has two duties no other process has. Every orphan of its namespace is re-parented to
//! it (to the nearest subreaper first, but the gateway is none), and stays a zombie until PID 1
//! waits for it: each instance's shim forks a watchdog that outlives the shim briefly (see
//! [`crate::shim`]), so a gateway as PID 1 that reaps only its own children would gain one
//! zombie per instance it ever ended, until the namespace ran out of pids. And the kernel gives
//! PID 1 no default signal actions: a signal it does not handle is dropped (only SIGKILL and
//! SIGSTOP from an ancestor namespace still act), so a SIGTERM sent before the handlers exist
//! (or a signal nobody handles) would be ignored, not fatal.
//!
//! The gateway cannot simply `waitpid(-1)` for everyone: tokio reaps the children it spawned
//! (the shims) by their own pid (a pidfd, or `waitpid(pid)` on SIGCHLD) and expects their
//! statuses; a wait for any child would take them away, and the gateway would lose how its
//! instances ended. So, as tini and `docker run --init` do, the process splits in two at its
//! very start, before any thread or runtime exists: [`fork_if_pid1`] forks through the one fork
//! helper ([`crate::fork`]), the child goes on to be the program with its signal handling
//! exactly as outside a container, and PID 1 stays behind as a small init that
//!
//! - forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to the program, which acts
//!   on them as it always does (a container runtime's stop is a SIGTERM to PID 1);
//! - reaps every child that exits, with `waitpid(-1)`: the program's own status it keeps, the
//!   others (orphans) it just collects;
//! - when the program exits, waits up to [`DRAIN`] for what is left of its children (shims that
//!   were ending their trees when the program died, watchdogs closing ledger rows) and exits with
//!   the program's status, or 128 + the signal that killed it. Its exit ends the namespace: the
//!   kernel SIGKILLs whatever still runs there.
//!
//! A signal forwarded before the program installed its handlers takes its default action there,
//! as it would outside a container: a SIGTERM during the first milliseconds ends the program
//! (and so the init, with 143) rather than being lost.
//!
//! It signals only the program, its own unreaped child (whose pid cannot be recycled while it
//! is unreaped), and nothing else, ever. The init holds no lifeline and none of the program's
//! pipes: stdin and stdout are /dev/null in it, so a client on the program's stdio sees EOF
//! when the program alone closes them.
//!
//! `tether wrap` needs none of this: its shim reaps its own children on every SIGCHLD (the
//! server's escapees, re-parented to it as subreaper) and, as PID 1, every orphan lands there
//! too; it also handles its signals through a signalfd, which PID 1 receives like any process.

use std::io;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};

use crate::fork::fork_single_threaded;

/// The signals the init hands on to the program.
pub const FORWARDED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// How long the init waits, once the program exited, for its other children to end before it
/// exits itself (and the kernel kills what is left). After a clean shutdown only watchdogs
/// closing ledger rows remain; after the program was killed, its shims end their trees on
/// their lifelines' EOF, within each server's grace. Docker's own stop timeout is 10 s.
pub const DRAIN: Duration = Duration::from_secs(10);

/// Where [`fork_if_pid1`] left the calling process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// This process is not PID 1: nothing was done.
    NotPid1,
    /// This process is the program, forked by an init that is now PID 1.
    UnderInit,
}

/// When this process is PID 1, forks: the parent becomes the namespace's init (see the module)
/// and never returns; the child returns [`Placement::UnderInit`] and carries on as the program.
/// Otherwise it returns [`Placement::NotPid1`] at once. Must be called before any thread exists
/// (the fork helper refuses otherwise); the program's signal mask and dispositions are as they
/// were, except SIGCHLD, which is back to its default (an inherited "ignore" would make the
/// kernel reap the program's children by itself).
pub fn fork_if_pid1() -> io::Result<Placement> {
    if std::process::id() != 1 {
        return Ok(Placement::NotPid1);
    }
    reset_sigchld()?;
    let mut watched = SigSet::empty();
    for s in FORWARDED {
        watched.add(s);
    }
    watched.add(Signal::SIGCHLD);
    // Blocked before the fork, so that a signal arriving before the init reads its signalfd
    // waits for it rather than being dropped (PID 1 has no default actions).
    let mut before = SigSet::empty();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&watched), Some(&mut before))?;
    match fork_single_threaded() {
        Ok(ForkResult::Child) => {
            nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&before), None)?;
            Ok(Placement::UnderInit)
        }
        Ok(ForkResult::Parent { child }) => serve(child, &watched),
        Err(e) => {
            let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&before), None);
            Err(e)
        }
    }
}

/// Makes SIGCHLD's disposition the default again (an ignored SIGCHLD, passed on through exec,
/// has the kernel reap children by itself, and their statuses are lost).
#[allow(unsafe_code)]
fn reset_sigchld() -> io::Result<()> {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: installs the default disposition; no handler code of ours runs.
    unsafe { sigaction(Signal::SIGCHLD, &default) }
        .map(drop)
        .map_err(io::Error::from)
}

/// The init's life: forwards, reaps, and exits with the program's status. Never returns.
fn serve(program: Pid, watched: &SigSet) -> ! {
    let _ = nix::sys::prctl::set_name(c"tether-init");
    release_stdio();
    let mut signals = match SignalFd::with_flags(watched, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) {
        Ok(fd) => Some(fd),
        Err(e) => {
            // Without it the init waits for the blocked signals themselves (sigwait): it still
            // reaps and forwards, but cannot bound its wait for the last children.
            tracing::warn!("init: no signalfd ({e}); waiting for signals without one");
            None
        }
    };
    let mut status = None;
    while status.is_none() {
        status = reap_all(program).0;
        if status.is_some() {
            break;
        }
        let arrived = wait_signals(signals.as_mut(), None).unwrap_or_else(|| wait_blocked(watched));
        for sig in arrived {
            // Unreaped (its status is not in yet), so the pid is still the program's.
            let _ = kill(program, sig);
        }
    }
    let code = status.unwrap_or(0);
    let deadline = Instant::now() + DRAIN;
    loop {
        let (_, children_left) = reap_all(program);
        if !children_left {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            tracing::warn!(
                "init: processes still running {DRAIN:?} after the gateway exited; they end with this namespace"
            );
            break;
        }
        // Without a timed wait the rest is left to the namespace's end, as at the deadline.
        let Some(arrived) = wait_signals(signals.as_mut(), Some(deadline - now)) else {
            break;
        };
        if arrived
            .iter()
            .any(|s| matches!(s, Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT))
        {
            // Asked again to stop: no more waiting.
            break;
        }
    }
    std::process::exit(code)
}

/// Reaps every child that has exited. Returns the program's exit status if it was among them
/// (its code, or 128 + the signal that killed it), and whether any child is left.
fn reap_all(program: Pid) -> (Option<i32>, bool) {
    let mut status = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return (status, true),
            Ok(WaitStatus::Exited(pid, code)) if pid == program => status = Some(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == program => status = Some(128 + sig as i32),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(Errno::ECHILD) => return (status, false),
            Err(e) => {
                tracing::warn!("init: waitpid: {e}");
                return (status, true);
            }
        }
    }
}

/// Waits for signals (up to `timeout`, or until one comes) and returns those to forward; a
/// SIGCHLD just ends the wait. `None` when it cannot wait with a timeout (no signalfd, or
/// poll failed): the caller then waits without one ([`wait_blocked`]) or stops waiting.
fn wait_signals(signals: Option<&mut SignalFd>, timeout: Option<Duration>) -> Option<Vec<Signal>> {
    let fd = signals?;
    let timeout = match timeout {
        None => PollTimeout::NONE,
        Some(t) => PollTimeout::try_from(t.as_millis().saturating_add(1)).unwrap_or(PollTimeout::MAX),
    };
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    match nix::poll::poll(&mut fds, timeout) {
        Ok(_) | Err(Errno::EINTR) => {}
        Err(e) => {
            tracing::warn!("init: poll: {e}");
            return None;
        }
    }
    let mut out = Vec::new();
    while let Ok(Some(info)) = fd.read_signal() {
        match Signal::try_from(info.ssi_signo as i32) {
            Ok(s) if FORWARDED.contains(&s) => out.push(s),
            _ => {}
        }
    }
    Some(out)
}

/// Waits, with no timeout, for the next of the `watched` signals (they are blocked, so they
/// wait to be taken): the signal to forward, if it is one, else none (a child's exit).
fn wait_blocked(watched: &SigSet) -> Vec<Signal> {
    match watched.wait() {
        Ok(sig) if FORWARDED.contains(&sig) => vec![sig],
        _ => Vec::new(),
    }
}

/// Points the init's stdin and stdout at /dev/null: the program's client (a `--stdio` one, or
/// whatever reads a container's output) must see them closed when the program closes them.
fn release_stdio() {
    let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") else {
        return;
    };
    let _ = nix::unistd::dup2_stdin(&null);
    let _ = nix::unistd::dup2_stdout(&null);
}
