//! Starting the server: the one place a shim forks and execs.
//!
//! Everything that must hold from the server's first instruction is done between fork and exec:
//! join the instance cgroup (so nothing it starts is ever outside), lead a new process group,
//! die with the shim (`PR_SET_PDEATHSIG`, safe here because the shim is single-threaded, so the
//! thread that forked is the one that lives as long as the shim), and unblock the signals the
//! shim reads from its signalfd. The server inherits stdin, stdout and stderr untouched: Tether
//! is not on the data path.

use std::ffi::OsString;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::supervisor::cookie::Cookie;

/// What the spawn needs to know.
pub struct ServerSpec<'a> {
    /// Program and arguments; the program is looked up in PATH like a shell would.
    pub argv: &'a [OsString],
    /// Lead a new process group.
    pub group: bool,
    /// Set `PR_SET_PDEATHSIG(SIGKILL)`.
    pub pdeathsig: bool,
    /// Fds to write `"0"` to, joining cgroups.
    pub join_fds: Vec<RawFd>,
    /// Environment cookie to add.
    pub cookie: Option<&'a Cookie>,
}

/// Why the server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// No command was given.
    #[error("no command to run")]
    Empty,
    /// The program does not exist (exit status 127, like a shell).
    #[error("{program}: command not found")]
    NotFound { program: String },
    /// The program exists but cannot be executed (exit status 126).
    #[error("{program}: permission denied")]
    NotExecutable { program: String },
    /// Anything else, including a failure to join the cgroup before exec.
    #[error("{program}: {source}")]
    Other {
        program: String,
        #[source]
        source: io::Error,
    },
}

impl SpawnError {
    /// The exit status a shell would give for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            SpawnError::NotFound { .. } => 127,
            SpawnError::NotExecutable { .. } => 126,
            SpawnError::Empty | SpawnError::Other { .. } => 125,
        }
    }
}

/// Forks and execs the server; returns its pid.
pub fn spawn(spec: ServerSpec<'_>) -> Result<i32, SpawnError> {
    let (program, args) = spec.argv.split_first().ok_or(SpawnError::Empty)?;
    let name = program.to_string_lossy().into_owned();
    let mut cmd = Command::new(program);
    cmd.args(args);
    if spec.group {
        cmd.process_group(0);
    }
    if let Some(cookie) = spec.cookie {
        cmd.envs(cookie.env());
    }
    let shim = nix::unistd::getpid();
    let join_fds = spec.join_fds;
    let pdeathsig = spec.pdeathsig;
    pre_exec(&mut cmd, move || {
        for &fd in &join_fds {
            write_zero(fd)?;
        }
        if pdeathsig {
            set_pdeathsig()?;
            // The shim may have died between fork and prctl: then nothing will ever fire.
            if nix::unistd::getppid() != shim {
                return Err(io::Error::other("tether shim exited during spawn"));
            }
        }
        unblock_all_signals()
    });
    #[allow(clippy::disallowed_methods)] // The supervisor is the one place allowed to spawn.
    let child = cmd.spawn().map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => SpawnError::NotFound { program: name.clone() },
        io::ErrorKind::PermissionDenied => SpawnError::NotExecutable { program: name.clone() },
        _ => SpawnError::Other {
            program: name.clone(),
            source,
        },
    })?;
    // The Child handle is dropped without waiting: the tree code reaps it (std does not reap
    // or kill on drop).
    Ok(child.id() as i32)
}

#[allow(unsafe_code)]
fn pre_exec<F>(cmd: &mut Command, f: F)
where
    F: FnMut() -> io::Result<()> + Send + Sync + 'static,
{
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe system
    // calls (write, prctl, getppid, sigprocmask); it allocates nothing (join_fds was allocated
    // before the fork and is only iterated).
    unsafe {
        cmd.pre_exec(f);
    }
}

#[allow(unsafe_code)]
fn write_zero(fd: RawFd) -> io::Result<()> {
    // SAFETY: writes one byte from a static buffer to an fd the parent opened for this purpose.
    let n = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
    if n == 1 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[allow(unsafe_code)]
fn set_pdeathsig() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn unblock_all_signals() -> io::Result<()> {
    let empty = nix::sys::signal::SigSet::empty();
    nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&empty), None)
        .map_err(io::Error::from)
}
