//! The watchdog: who ends an instance when its shim is SIGKILLed, and who finishes the
//! bookkeeping after a clean end, so the shim can exit without waiting for it.
//!
//! A SIGKILLed shim runs no code, so something else must write `cgroup.kill`. Before opening
//! the ledger and starting the server, the shim forks this small process: it leaves the shim's
//! session (a kill of the client's process group does not reach it), drops every fd but one end
//! of a pipe, and waits. Three endings:
//!
//! - **Dismissed** (`C`): the shim cleaned up everything itself (a failed set-up); exit.
//! - **Handed over** (`H`): the tree is dead and reaped and its cgroup removed, and the shim is
//!   about to exit with the server's status. What is left is bookkeeping that nobody needs to
//!   wait for: with a cgroup in force but no subreaper, the last `/proc` pass for the cookie (a
//!   carrier outside the cgroup could only be one that was moved out of it; with the shim as
//!   subreaper none can be left, see `Tree::leaves_sweep_to_watchdog`), and closing the
//!   ledger row. The
//!   watchdog does both after the shim's exit, so the client sees the exit ~1 ms sooner. It
//!   can: it was forked before the shim opened the ledger, so its copy of the process holds no
//!   SQLite state, and it opens a connection of its own. If it is SIGKILLed before it wrote,
//!   the row stays open with a dead holder, and the next sweep closes it (finding nothing),
//!   as for any dead shim.
//! - **EOF with no byte**: the shim died. The watchdog kills the instance cgroup, sweeps the
//!   cookie, removes the cgroups (the instance cgroups nested in them first), ends an SSH
//!   server's remote side over a connection of its own, and exits. The row stays open for the
//!   sweep, which is what proves nothing is left.
//!
//! It is not in the instance cgroup, so `cgroup.kill` does not reach it.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::ForkResult;

use crate::cgroup;
use crate::process::cookie::Cookie;
use crate::ssh::RemoteSide;

/// The byte a shim sends when it cleaned up by itself.
const ALL_CLEAN: u8 = b'C';
/// The byte that starts a [`Handover`].
const HANDOVER: u8 = b'H';
/// A handover's flags: sweep the cookie, close the row.
const SWEEP: u8 = 1;
const CLOSE_ROW: u8 = 2;
/// The longest end reason sent: the whole message fits one atomic pipe write (`PIPE_BUF`).
const MAX_REASON: usize = 1024;

/// What the watchdog must end if the shim dies.
#[derive(Debug, Clone)]
pub struct Charge {
    /// cgroup directories to kill and remove (v2 first, then a v1 pids one).
    pub cgroups: Vec<PathBuf>,
    /// The instance's cookie, for hosts without a cgroup.
    pub cookie: Option<Cookie>,
    /// An SSH server's remote side, to end over a second connection.
    pub remote: Option<RemoteCharge>,
    /// The instance's ledger row, to close after a handover.
    pub ledger: Option<RowCharge>,
}

/// Where the watchdog closes the instance's row after a [`Handover`].
#[derive(Debug, Clone)]
pub struct RowCharge {
    /// The state directory holding the ledger.
    pub state_dir: PathBuf,
    /// The instance id.
    pub instance: String,
    /// The owner to mark ended with it (a standalone `tether wrap` owns its instance).
    pub owner: Option<String>,
}

/// What a shim that ended its tree leaves to the watchdog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    /// Make the last `/proc` pass for the cookie (the shim skipped it: a cgroup held the tree).
    pub sweep: bool,
    /// Close the row with this reason (`None`: it stays open, e.g. for a cgroup that could not
    /// be removed, which the sweep then reports).
    pub close_row: Option<String>,
}

impl Handover {
    /// One message, short enough for an atomic pipe write.
    fn encode(&self) -> Vec<u8> {
        let flags = if self.sweep { SWEEP } else { 0 } | if self.close_row.is_some() { CLOSE_ROW } else { 0 };
        let mut msg = vec![HANDOVER, flags];
        if let Some(reason) = &self.close_row {
            let mut end = reason.len().min(MAX_REASON);
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            msg.extend_from_slice(&reason.as_bytes()[..end]);
        }
        msg
    }

    fn decode(msg: &[u8]) -> Option<Handover> {
        let (&[kind, flags], reason) = msg.split_first_chunk::<2>()?;
        (kind == HANDOVER).then(|| Handover {
            sweep: flags & SWEEP != 0,
            close_row: (flags & CLOSE_ROW != 0).then(|| String::from_utf8_lossy(reason).into_owned()),
        })
    }
}

/// What the watchdog needs to end an SSH server's remote side. It does not do it itself: it
/// execs `tether settle-remote` (this very binary), a fresh process, because an SQLite
/// connection must not be used, nor a new one opened, in a forked copy of a process that had the
/// ledger open.
#[derive(Debug, Clone)]
pub struct RemoteCharge {
    /// The `tether` binary.
    pub exe: PathBuf,
    /// The ledger's directory: its record holds the remote identity once it arrived.
    pub state_dir: Option<PathBuf>,
    /// The instance id.
    pub instance: String,
    /// The remote side as it was before ssh started (cookie only), if the ledger has none.
    pub remote: RemoteSide,
}

impl RemoteCharge {
    /// Replaces the watchdog with `tether [--state-dir D] settle-remote ID RECORD`.
    fn exec(&self) {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(&self.exe);
        if let Some(d) = &self.state_dir {
            cmd.arg("--state-dir").arg(d);
        }
        cmd.arg("settle-remote")
            .arg(&self.instance)
            .arg(self.remote.to_json().to_string());
        let _ = cmd.exec();
    }
}

/// The shim's handle on its watchdog.
pub(crate) struct Watchdog {
    /// The watchdog's pid (a child of the shim).
    pid: i32,
    /// Write end of the guard pipe; EOF without [`ALL_CLEAN`] means the shim died.
    guard: Option<std::fs::File>,
}

impl Watchdog {
    /// Forks the watchdog (refused unless the process is single-threaded).
    pub(crate) fn start(charge: Charge) -> io::Result<Watchdog> {
        let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        match crate::fork::fork_single_threaded()? {
            ForkResult::Child => {
                drop(write_end);
                watchdog_main(read_end, &charge)
            }
            ForkResult::Parent { child } => {
                drop(read_end);
                Ok(Watchdog {
                    pid: child.as_raw(),
                    guard: Some(std::fs::File::from(write_end)),
                })
            }
        }
    }

    /// The watchdog's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Leaves the rest of a clean end to the watchdog and returns at once: the watchdog is not
    /// waited for (once the shim exits, whoever inherits it reaps it). `false` if the message
    /// could not be sent; the caller then does the work itself (the watchdog, seeing EOF with no
    /// byte, also kills the emptied cgroup and sweeps the cookie, which finds nothing).
    pub fn hand_over_end(mut self, handover: &Handover) -> bool {
        let Some(mut g) = self.guard.take() else {
            return false;
        };
        g.write_all(&handover.encode()).is_ok()
    }

    /// Tells the watchdog all is clean and reaps it.
    pub fn dismiss(mut self) {
        if let Some(mut g) = self.guard.take() {
            let _ = g.write_all(&[ALL_CLEAN]);
        }
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
    }

    /// Lets the watchdog clean up on its own (the shim gave up), without waiting for it.
    pub fn hand_over(mut self) {
        self.guard.take();
    }
}

fn watchdog_main(guard: OwnedFd, charge: &Charge) -> ! {
    detach(&guard);
    let mut msg = [0u8; 2 + MAX_REASON];
    let mut file = std::fs::File::from(guard);
    // One read: a message is one write of at most PIPE_BUF bytes, which a pipe delivers whole.
    let got = loop {
        match file.read(&mut msg) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break 0,
        }
    };
    match msg.get(..got) {
        Some([ALL_CLEAN]) => {}
        Some(m) if !m.is_empty() => match Handover::decode(m) {
            Some(handover) => finish_for_shim(charge, &handover),
            None => clean_up(charge),
        },
        _ => clean_up(charge),
    }
    std::process::exit(0)
}

/// The shim ended its tree and exited (or is exiting): the bookkeeping it left.
fn finish_for_shim(charge: &Charge, handover: &Handover) {
    // Not niced: it takes the ledger's write lock, and a niced holder on a busy host would
    // keep the next shim's intent waiting.
    // A carrier still found by the last pass leaves the row open, for the sweep to finish.
    let clean = !handover.sweep || charge.cookie.as_ref().is_none_or(kill_carriers);
    if let (Some(reason), Some(row), true) = (&handover.close_row, &charge.ledger, clean) {
        // Nobody reads the watchdog's stderr: a row left open is the sweep's to close.
        if let Ok(mut ledger) = crate::ledger::Ledger::open(&row.state_dir) {
            let _ = ledger.tidy_wal();
            let _ = ledger.record_ended(&row.instance, reason, row.owner.as_deref());
        }
    }
}

/// SIGKILLs every process carrying the cookie, in several passes: a carrier may fork while
/// the first pass runs. True when the last pass found none.
fn kill_carriers(cookie: &Cookie) -> bool {
    (0..3).any(|_| cookie.signal_carriers(Signal::SIGKILL, &[]).is_empty())
}

/// Leaves the shim's session and drops every inherited fd but the guard, so the watchdog holds
/// none of the client's pipes open.
fn detach(guard: &OwnedFd) {
    let _ = nix::unistd::setsid();
    let _ = nix::sys::prctl::set_name(c"tether-watchdog");
    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
    let keep = guard.as_raw_fd();
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        let fds: Vec<i32> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        for fd in fds.into_iter().filter(|&fd| fd > 2 && fd != keep) {
            close_raw(fd);
        }
    }
}

#[allow(unsafe_code)]
fn close_raw(fd: i32) {
    // SAFETY: closing an inherited fd in a freshly forked, single-threaded child that owns no
    // Rust object for it (the guard is kept, /dev/null was dropped after dup2).
    unsafe {
        libc::close(fd);
    }
}

/// The shim died without cleaning up: end everything it owned.
fn clean_up(charge: &Charge) {
    for dir in &charge.cgroups {
        let _ = cgroup::kill_dir(dir);
    }
    for dir in &charge.cgroups {
        cgroup::wait_empty(dir, Duration::from_secs(5));
    }
    if let Some(cookie) = &charge.cookie {
        kill_carriers(cookie);
    }
    // Bottom-up: the instance cgroups of shims that ran inside ours (`tether wrap -- tether
    // wrap -- …`) died with them, unremoved, and would keep ours from being removed.
    for dir in &charge.cgroups {
        let _ = cgroup::remove_tree_when_empty(dir, Duration::from_secs(2));
    }
    if let Some(r) = &charge.remote {
        r.exec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handover_survives_the_pipe() {
        for h in [
            Handover {
                sweep: true,
                close_row: Some("client closed stdin; server exited with 0".into()),
            },
            Handover {
                sweep: false,
                close_row: None,
            },
            Handover {
                sweep: false,
                close_row: Some(String::new()),
            },
        ] {
            assert_eq!(Handover::decode(&h.encode()), Some(h));
        }
        assert_eq!(Handover::decode(&[ALL_CLEAN]), None);
    }

    #[test]
    fn a_long_reason_is_cut_on_a_character_boundary() {
        let h = Handover {
            sweep: false,
            close_row: Some("é".repeat(MAX_REASON)),
        };
        let msg = h.encode();
        assert!(msg.len() <= 2 + MAX_REASON);
        let back = Handover::decode(&msg).and_then(|h| h.close_row).unwrap_or_default();
        assert!(back.chars().all(|c| c == 'é') && !back.is_empty(), "{back}");
    }
}
