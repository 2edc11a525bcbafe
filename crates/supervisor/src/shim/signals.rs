//! Signals as file descriptor events.
//!
//! The shim blocks the signals it cares about and reads them from a signalfd, so that a signal
//! is just one more fd in its single `poll`: no handlers, no async-signal-safety puzzles, no
//! lost wake-ups. The server must not inherit the blocked mask; `server.rs` clears it.

use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// Signals that end the instance when the shim receives them: every signal whose default
/// action would kill the shim without a teardown, except SIGKILL (which nothing can catch: the
/// watchdog covers it) and the synchronous faults (SEGV, BUS, ILL, FPE, TRAP, SYS), which mean a
/// bug of the shim's own.
pub const STOP_SIGNALS: [Signal; 13] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGVTALRM,
    Signal::SIGPROF,
    Signal::SIGXCPU,
    Signal::SIGXFSZ,
    Signal::SIGPWR,
    Signal::SIGSTKFLT,
];

/// Signals forwarded to the server as they are; any other stop signal is sent on as SIGTERM
/// (forwarding SIGUSR1 would, for one, open Node's debugger).
pub const FORWARDED_AS_IS: [Signal; 4] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGQUIT];

/// Makes SIGCHLD's disposition the default again. A parent that ignored SIGCHLD (or set
/// SA_NOCLDWAIT) passes that on through exec, and then the kernel reaps our children by itself:
/// the server's pid would no longer be pinned, and its exit status would be lost.
#[allow(unsafe_code)]
pub fn reset_sigchld() -> nix::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler};
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: installs the default disposition; no handler code of ours runs.
    unsafe { sigaction(Signal::SIGCHLD, &default) }.map(drop)
}

/// The blocked signals and the fd they arrive on.
pub struct Signals {
    /// Readable when a blocked signal is pending.
    fd: SignalFd,
}

/// What arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrived {
    /// One of [`STOP_SIGNALS`].
    Stop(Signal),
    /// A child changed state.
    Child,
}

impl Signals {
    /// Blocks the stop signals and SIGCHLD for this (single-threaded) process and opens a
    /// signalfd for them.
    pub fn block() -> nix::Result<Signals> {
        let mut mask = SigSet::empty();
        for s in STOP_SIGNALS {
            mask.add(s);
        }
        mask.add(Signal::SIGCHLD);
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)?;
        let fd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
        Ok(Signals { fd })
    }

    /// Drains every pending signal.
    pub fn drain(&mut self) -> Vec<Arrived> {
        let mut out = Vec::new();
        while let Ok(Some(info)) = self.fd.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => out.push(Arrived::Child),
                Ok(s) if STOP_SIGNALS.contains(&s) => out.push(Arrived::Stop(s)),
                _ => {}
            }
        }
        out
    }
}

impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
