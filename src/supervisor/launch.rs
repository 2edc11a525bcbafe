//! Starting a shim from a supervising process: the spawn primitive the gateway builds on.
//!
//! The supervisor re-executes `tether wrap --lifeline-fd 3 -- CMD…` with piped stdio and a
//! lifeline pipe: the shim holds the read end as fd 3, the supervisor the write end (close-on-
//! exec, so no other child inherits it). Closing the write end, on purpose or because the
//! supervisor died, makes the shim end the whole tree. The server's stdin and stdout are handed
//! back to the caller to speak MCP over; the shim never touches them.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::time::Duration;

/// The fd number the lifeline has inside the shim.
pub const LIFELINE_FD: i32 = 3;

/// How to start one instance under a shim.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The `tether` executable that will run the shim.
    pub tether: PathBuf,
    /// The server command.
    pub argv: Vec<OsString>,
    /// Grace period between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Instance id (also the cookie).
    pub instance: String,
    /// Owner id.
    pub owner: String,
    /// Extra `tether wrap` flags (e.g. `--disable cgroup`).
    pub extra_flags: Vec<OsString>,
}

/// A running shim and the pipes to its server.
pub struct Launched {
    /// The shim process.
    pub child: Child,
    /// The server's stdin.
    pub stdin: Option<ChildStdin>,
    /// The server's stdout.
    pub stdout: Option<ChildStdout>,
    /// Write end of the lifeline; dropping it ends the instance.
    lifeline: Option<File>,
}

impl Launched {
    /// Closes the lifeline: the shim ends the tree now.
    pub fn cut_lifeline(&mut self) {
        self.lifeline.take();
    }

    /// Closes stdin and the lifeline and waits for the shim, which returns the server's status.
    pub fn end(mut self) -> io::Result<ExitStatus> {
        self.stdin.take();
        self.cut_lifeline();
        self.child.wait()
    }
}

impl Launch {
    /// Starts the shim.
    pub fn spawn(&self) -> io::Result<Launched> {
        let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let mut cmd = Command::new(&self.tether);
        cmd.arg("wrap")
            .arg("--lifeline-fd")
            .arg(LIFELINE_FD.to_string())
            .arg("--grace")
            .arg(format!("{}ms", self.grace.as_millis()))
            .arg("--instance-id")
            .arg(&self.instance)
            .arg("--owner-id")
            .arg(&self.owner)
            .args(&self.extra_flags)
            .arg("--")
            .args(&self.argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        install_lifeline(&mut cmd, read_end);
        #[allow(clippy::disallowed_methods)] // The supervisor is the one place allowed to spawn.
        let mut child = cmd.spawn()?;
        Ok(Launched {
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            child,
            lifeline: Some(File::from(write_end)),
        })
    }
}

#[allow(unsafe_code)]
fn install_lifeline(cmd: &mut Command, read_end: OwnedFd) {
    let raw = read_end.as_raw_fd();
    // SAFETY: between fork and exec only dup2/fcntl are called, which are async-signal-safe; dup2 clears
    // close-on-exec on the new fd, so the shim inherits exactly fd 3. `read_end` is moved into
    // the closure so it stays open until the Command is dropped, after the spawn.
    unsafe {
        cmd.pre_exec(move || {
            let _keep = &read_end;
            let ok = if raw == LIFELINE_FD {
                // dup2 onto itself is a no-op that would leave close-on-exec set.
                libc::fcntl(raw, libc::F_SETFD, 0) >= 0
            } else {
                libc::dup2(raw, LIFELINE_FD) >= 0
            };
            if ok {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
    }
}
