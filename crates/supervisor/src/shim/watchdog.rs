//! The watchdog: who ends an instance when its shim is SIGKILLed.
//!
//! A SIGKILLed shim runs no code, so something else must write `cgroup.kill`. Before starting
//! the server, the shim forks this small process: it leaves the shim's session (a kill of the
//! client's process group does not reach it), drops every fd but one end of a pipe, and waits.
//! When the shim tears down normally it writes one byte, `C`, and the watchdog exits at once.
//! When the pipe reaches EOF with no byte, the shim died: the watchdog kills the instance
//! cgroup, sweeps the cookie, removes the cgroups (the instance cgroups nested in them first),
//! ends an SSH server's remote side over a connection of its own, and exits. It is not in the
//! instance cgroup, so `cgroup.kill` does not reach it.

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

/// What the watchdog must end if the shim dies.
#[derive(Debug, Clone)]
pub struct Charge {
    /// cgroup directories to kill and remove (v2 first, then a v1 pids one).
    pub cgroups: Vec<PathBuf>,
    /// The instance's cookie, for hosts without a cgroup.
    pub cookie: Option<Cookie>,
    /// An SSH server's remote side, to end over a second connection.
    pub remote: Option<RemoteCharge>,
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
    let mut byte = [0u8; 1];
    let mut file = std::fs::File::from(guard);
    let clean = loop {
        match file.read(&mut byte) {
            Ok(1) => break byte[0] == ALL_CLEAN,
            Ok(_) => break false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break false,
        }
    };
    if !clean {
        clean_up(charge);
    }
    std::process::exit(0)
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
        // Several passes: a carrier may fork while the first pass runs.
        for _ in 0..3 {
            if cookie.signal_carriers(Signal::SIGKILL, &[]).is_empty() {
                break;
            }
        }
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
