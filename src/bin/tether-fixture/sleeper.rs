//! The hidden `--sleeper` and `--intermediate` modes.
//!
//! A sleeper is an escapee: it keeps the inherited stdin/stdout/stderr (like a
//! real leaked grandchild holding the client's pipes), reports `<pid> <kind>`
//! on the notify fd once its signal dispositions are final, closes that fd and
//! blocks forever. An intermediate starts one sleeper in a new session and
//! exits at once, so the sleeper is orphaned and re-parented.

use crate::args::SleeperKind;
use crate::signals;
use crate::spawn::{self, Reexec};
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Runs as a sleeper; only returns on a setup error.
pub fn run_sleeper(kind: SleeperKind, notify_fd: Option<RawFd>, tough: bool) -> Result<()> {
    // Explicitly reset when not tough: SIG_IGN is inherited across exec, and
    // a plain sleeper must not become tough just because the server ignores SIGTERM.
    signals::set_ignored(&signals::TOUGH, tough)?;
    if let Some(fd) = notify_fd {
        let mut notify = File::from(adopt_fd(fd)?);
        let line = format!("{} {}\n", std::process::id(), kind.name());
        notify.write_all(line.as_bytes()).context("writing to the notify fd")?;
        // Dropping closes it: no sleeper holds a notify write end afterwards.
    }
    signals::block_forever()
}

/// Runs as an intermediate: starts the `kind` sleeper in a new session, then returns.
pub fn run_intermediate(kind: SleeperKind, notify_fd: Option<RawFd>, tag: Option<&str>, tough: bool) -> Result<()> {
    let clear_env = match kind {
        SleeperKind::DoubleFork => false,
        SleeperKind::EnvI => true,
        other => bail!("--intermediate does not support kind {}", other.name()),
    };
    let notify_fd = notify_fd.context("--intermediate requires --notify-fd")?;
    // Resolved here, while the environment is intact; the grandchild needs no PATH.
    let exe = std::env::current_exe().context("resolving the fixture executable")?;
    let r = Reexec {
        exe: &exe,
        tag,
        notify_fd,
        tough,
    };
    // Not waited for: the grandchild is meant to be orphaned when we exit.
    let _grandchild = spawn::sleeper(&r, kind, true, clear_env)?;
    Ok(())
}

/// Takes ownership of the notify fd inherited from the parent.
#[allow(unsafe_code)]
fn adopt_fd(fd: RawFd) -> Result<OwnedFd> {
    if fd <= 2 {
        bail!("--notify-fd {fd} would be a stdio fd");
    }
    // SAFETY: fcntl(F_GETFD) only queries the descriptor table; any int is acceptable.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("--notify-fd {fd}"));
    }
    // SAFETY: the fd is open (checked above) and was handed to this process by its
    // parent solely for this purpose; nothing else in this process refers to it,
    // so owning (and eventually closing) it cannot disturb other code.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
