//! The keeper: a living Tether process above the shim, so that what a SIGKILLed shim leaves
//! lands where it can be found, on hosts where no cgroup holds the tree.
//!
//! With a cgroup, the watchdog's `cgroup.kill` ends everything a SIGKILLed shim leaves. Without
//! one, the shim's orphans are re-parented to the nearest subreaper above it, or to init: a
//! process that scrubbed its environment (`env -i`) and left the process group, orphaned between
//! two of the shim's tree walks, was beyond every other layer's reach (measured: 1 in about 30
//! random SIGKILLs of a shim running the escapee zoo). So on such hosts `tether wrap` splits in
//! two at its start, before the watchdog and the server exist:
//!
//! - **the keeper** (the original process: the pid the client or gateway started and knows) is a
//!   subreaper and does nothing but wait. It forwards the stop signals it receives to the shim,
//!   watches its own parent and, when that parent is gone, closes the *link* (a pipe whose EOF
//!   the shim takes for its parent's exit). When the shim exits it SIGKILLs and reaps every
//!   child it has: after a clean end there is none (the tree is dead), after the shim's SIGKILL
//!   these are the shim's orphans, re-parented to the keeper, and their own orphans after them,
//!   round after round until none is left. They are its own unreaped children, so their pids
//!   cannot have been recycled. It then exits the way the shim did.
//! - **the shim** (the forked child) does everything it does without a keeper; it re-enables the
//!   subreaper (not inherited by a fork) and leaves the client's process group, so a client that
//!   kills its whole group ends the keeper (whose link then closes) but not the teardown.
//!
//! The watchdog is spared: after the shim's exit it is the keeper's child too, finishing the
//! bookkeeping of a clean end. The shim sends its pid and start time over a second pipe (the
//! *news*) as soon as it forked it, and the keeper kills every child but that one.
//!
//! The keeper costs one small process per instance (a copy-on-write copy of the shim before it
//! did anything), so it runs only where the cgroup layer is not in force; `--disable keeper`
//! switches it off.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::PollFlags;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};

use super::signals::{Arrived, Signals};
use super::tree::ServerExit;
use super::watch::{Event, Watch};
use crate::process::pidfd::Pidfd;
use crate::process::procfs;

/// The keeper's command name in `ps` ([`crate::shim::KEEPER_NAME`]).
const KEEPER_COMM: &std::ffi::CStr = c"tether-keeper";

/// How long the keeper keeps killing what a dead shim left before it gives up on processes
/// that cannot die (uninterruptible sleep) and leaves them to the sweep.
const PATIENCE: Duration = Duration::from_secs(10);
/// How long the keeper waits for a SIGCHLD between two rounds of kills.
const ROUND: Duration = Duration::from_millis(10);

/// Which side of the split this process is.
pub(super) enum Side {
    /// The original process: it keeps the shim.
    Keeper(Keeper),
    /// The forked child: it goes on as the shim.
    Shim(Link),
}

/// The shim's ends of the two pipes.
pub(super) struct Link {
    /// EOF when the keeper exits or its parent is gone.
    pub(super) hangup: OwnedFd,
    /// Where the watchdog's identity is sent.
    pub(super) news: std::fs::File,
}

impl Link {
    /// Tells the keeper which child is the watchdog, so it spares it. A keeper that does not
    /// hear it kills the watchdog after a SIGKILL of the shim (harmless: it kills what the
    /// watchdog would have), or after a clean end (its row then waits for the next sweep).
    pub(super) fn tell_watchdog(&mut self, pid: i32) {
        let start = procfs::start_time_of(pid).unwrap_or(0);
        if let Err(e) = writeln!(self.news, "{pid} {start}") {
            tracing::debug!("telling the keeper the watchdog's pid: {e}");
        }
    }
}

/// The keeper's state.
pub(super) struct Keeper {
    /// The shim, its child.
    shim: Pid,
    /// The write end of the link, dropped to tell the shim its parent is gone.
    link: Option<OwnedFd>,
    /// The read end of the news; `None` after its EOF.
    news: Option<std::fs::File>,
    /// Bytes of the news not yet a whole line.
    heard: Vec<u8>,
    /// The watchdog's pid and start time, once heard.
    watchdog: Option<(i32, u64)>,
    /// The keeper's parent.
    watch: Watch,
}

/// Forks the shim off. Call it before the watchdog, the ledger and the server exist, from the
/// single-threaded `tether wrap`; `parent` is the watch on the process that started it.
pub(super) fn split(parent: &mut Option<(i32, Option<Pidfd>)>) -> io::Result<Side> {
    let (hangup, link) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (news_in, news_out) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
    // The shim's end blocks: one short line, written once.
    nix::fcntl::fcntl(&news_out, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()))?;
    match crate::fork::fork_single_threaded()? {
        ForkResult::Child => {
            drop((link, news_in, parent.take()));
            nix::sys::prctl::set_child_subreaper(true)?;
            // Out of the client's process group (see the module doc); an error leaves it in,
            // which only loses that cover.
            let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
            Ok(Side::Shim(Link {
                hangup,
                news: std::fs::File::from(news_out),
            }))
        }
        ForkResult::Parent { child } => {
            drop((hangup, news_out));
            let _ = nix::sys::prctl::set_name(KEEPER_COMM);
            // The client's pipes are the server's: a keeper holding stdout would hide the
            // server's closing it from whoever reads it.
            let _ = super::watch::let_go_of_server_stdio();
            Ok(Side::Keeper(Keeper {
                shim: child,
                link: Some(link),
                news: Some(std::fs::File::from(news_in)),
                heard: Vec::new(),
                watchdog: None,
                watch: Watch::parent_only(parent.take()),
            }))
        }
    }
}

impl Keeper {
    /// Keeps the shim until it exits, then ends whatever it left; returns how the shim ended.
    pub(super) fn run(mut self, mut signals: Signals) -> ServerExit {
        let exit = loop {
            match nix::sys::wait::waitpid(self.shim, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => break ServerExit::Code(code),
                Ok(WaitStatus::Signaled(_, sig, _)) => break ServerExit::Signal(sig),
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!("keeper: waiting for the shim (pid {}): {e}", self.shim);
                    break ServerExit::Code(i32::from(crate::TETHER_FAILED));
                }
            }
            self.wait(&mut signals);
        };
        if matches!(exit, ServerExit::Signal(Signal::SIGKILL)) {
            tracing::warn!("the shim (pid {}) was killed; the keeper ends what it left", self.shim);
        }
        self.hear();
        self.collect(&mut signals);
        exit
    }

    /// One wait for a signal, the parent's exit or news; forwards stop signals to the shim.
    fn wait(&mut self, signals: &mut Signals) {
        let extra: Vec<_> = self.news.iter().map(|f| (f.as_fd(), PollFlags::POLLIN)).collect();
        let events = match self.watch.wait(signals, None, &extra) {
            Ok(events) => events,
            Err(e) => {
                // Unwatched, the keeper would miss its parent's exit: hand that to the shim.
                tracing::error!("keeper: {e}; telling the shim its parent is gone");
                drop(extra);
                self.link = None;
                return;
            }
        };
        drop(extra);
        for event in events {
            match event {
                Event::Signal(Arrived::Stop(sig)) => {
                    // Its unreaped child: the pid cannot have been recycled.
                    let _ = nix::sys::signal::kill(self.shim, sig);
                }
                Event::ParentExited => self.link = None,
                Event::Ready => self.hear(),
                Event::Signal(Arrived::Child) | Event::StdinClosed | Event::StdoutClosed | Event::LifelineClosed => {}
            }
        }
    }

    /// Reads what the shim sent so far (the watchdog's identity).
    fn hear(&mut self) {
        let Some(news) = self.news.as_mut() else {
            return;
        };
        let mut buf = [0u8; 64];
        loop {
            match news.read(&mut buf) {
                Ok(0) => {
                    self.news = None;
                    break;
                }
                Ok(n) => self.heard.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.news = None;
                    break;
                }
            }
        }
        if let Some(line) = self
            .heard
            .split(|&b| b == b'\n')
            .next()
            .filter(|_| self.heard.contains(&b'\n'))
        {
            self.watchdog = parse_identity(line);
        }
    }

    /// True when `pid` is the watchdog the shim told of (same pid, same start).
    fn is_watchdog(&self, pid: i32) -> bool {
        self.watchdog
            .is_some_and(|(w, start)| w == pid && procfs::start_time_of(pid).unwrap_or(0) == start)
    }

    /// SIGKILLs and reaps every child but the watchdog, round after round (each round's
    /// victims leave their own children to the keeper), until none is left or [`PATIENCE`]
    /// runs out.
    fn collect(&self, signals: &mut Signals) {
        let deadline = Instant::now() + PATIENCE;
        let mut killed = std::collections::BTreeSet::new();
        loop {
            reap_exited();
            let left: Vec<i32> = procfs::own_children()
                .into_iter()
                .filter(|&p| !self.is_watchdog(p))
                .collect();
            if left.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                tracing::error!(
                    "keeper: processes {left:?} survive SIGKILL after {PATIENCE:?}; leaving them to the sweep"
                );
                break;
            }
            for &pid in &left {
                // Its own unreaped child, re-parented to it: the pid cannot have been recycled.
                if nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
                    killed.insert(pid);
                }
            }
            let mut fds = [nix::poll::PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
            let tick =
                nix::poll::PollTimeout::try_from(ROUND.as_millis() as i32).unwrap_or(nix::poll::PollTimeout::ZERO);
            let _ = nix::poll::poll(&mut fds, tick);
            signals.drain();
        }
        if !killed.is_empty() {
            tracing::warn!(
                "keeper: killed {} processes the shim (pid {}) left",
                killed.len(),
                self.shim
            );
        }
    }
}

/// Reaps every child that has exited, without blocking.
fn reap_exited() {
    while let Ok(status) = nix::sys::wait::waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if matches!(status, WaitStatus::StillAlive) {
            break;
        }
    }
}

/// `PID START` as the shim sends it.
fn parse_identity(line: &[u8]) -> Option<(i32, u64)> {
    let text = std::str::from_utf8(line).ok()?;
    let (pid, start) = text.trim().split_once(' ')?;
    Some((pid.parse().ok()?, start.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::parse_identity;

    #[test]
    fn the_keeper_is_named_as_the_inventory_looks_for_it() {
        assert_eq!(super::KEEPER_COMM.to_str(), Ok(crate::shim::KEEPER_NAME));
    }

    #[test]
    fn the_watchdog_s_identity_reads_back() {
        assert_eq!(parse_identity(b"1234 98765"), Some((1234, 98765)));
        assert_eq!(parse_identity(b"1234"), None);
        assert_eq!(parse_identity(b"x 1"), None);
    }
}
