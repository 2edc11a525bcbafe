//! Re-executing the fixture as one of its own hidden-mode processes.
//!
//! Every process the fixture starts is the fixture binary again, with `--tag`
//! in its argv so tests can find it through /proc/*/cmdline even when its
//! environment is empty. The notify pipe's write end is close-on-exec in the
//! parent; it is made inheritable only inside the child being started.

use crate::args::SleeperKind;
use anyhow::{bail, Context, Result};
use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};

/// What every re-executed child is told, whatever its role.
#[derive(Debug, Clone, Copy)]
pub struct Reexec<'a> {
    /// The fixture binary, resolved before any environment is cleared.
    pub exe: &'a Path,
    /// Passed on as `--tag` when set.
    pub tag: Option<&'a str>,
    /// Write end of the notify pipe, as numbered in this process.
    pub notify_fd: RawFd,
    /// Whether the sleeper ignores SIGTERM/SIGINT/SIGHUP.
    pub tough: bool,
}

/// Starts a sleeper of `kind`, in a new session if `new_session`, with an
/// empty environment if `clear_env`. It keeps this process's stdio.
pub fn sleeper(r: &Reexec, kind: SleeperKind, new_session: bool, clear_env: bool) -> Result<Child> {
    let mut cmd = command(r, "--sleeper", kind);
    if clear_env {
        cmd.env_clear();
    }
    prepare(&mut cmd, r.notify_fd, new_session);
    cmd.spawn()
        .with_context(|| format!("spawning {} sleeper from {}", kind.name(), r.exe.display()))
}

/// Starts the intermediate that spawns a `kind` grandchild and exits at once.
pub fn intermediate(r: &Reexec, kind: SleeperKind) -> Result<Child> {
    if !matches!(kind, SleeperKind::DoubleFork | SleeperKind::EnvI) {
        bail!("no intermediate is needed for a {} sleeper", kind.name());
    }
    let mut cmd = command(r, "--intermediate", kind);
    prepare(&mut cmd, r.notify_fd, false);
    cmd.spawn()
        .with_context(|| format!("spawning {} intermediate from {}", kind.name(), r.exe.display()))
}

fn command(r: &Reexec, mode: &str, kind: SleeperKind) -> Command {
    let mut cmd = Command::new(r.exe);
    cmd.arg(mode)
        .arg(kind.name())
        .arg("--notify-fd")
        .arg(r.notify_fd.to_string());
    if r.tough {
        cmd.arg("--tough");
    }
    if let Some(tag) = r.tag {
        cmd.arg("--tag").arg(tag);
    }
    cmd
}

/// Makes `notify_fd` survive exec in the child only, and optionally calls setsid().
#[allow(unsafe_code)]
fn prepare(cmd: &mut Command, notify_fd: RawFd, new_session: bool) {
    // SAFETY: the closure runs in the forked child before exec. It only calls
    // fcntl(2) and setsid(2), which are async-signal-safe, and it neither
    // allocates nor takes locks (io::Error::last_os_error does not allocate).
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(notify_fd, libc::F_SETFD, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            if new_session && libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
