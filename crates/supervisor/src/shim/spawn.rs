//! Starting the server: where a shim forks and execs it, in two steps.
//!
//! [`spawn`] forks (born in the instance cgroup when the kernel can, see
//! `crate::fork::fork_into_cgroup`); the child does everything that must hold from the server's first
//! instruction (join the instance cgroup, lead a new process group, die with the shim through
//! `PR_SET_PDEATHSIG`, safe because the shim is single-threaded) and then *waits at a gate*.
//! The shim records the child's identity in the ledger and only then [`Gate::open`]s it, so no
//! server code ever runs before the ledger can find it; if the shim dies first, the gate reads
//! EOF and the child exits without exec. `std::process::Command` cannot do this (its `spawn`
//! returns only after the exec), hence the hand-written fork/exec: everything is allocated
//! before the fork, and the child makes only async-signal-safe calls.
//!
//! The server inherits stdin, stdout and stderr untouched: Tether is not on the data path.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::unistd::{ForkResult, Pid};

use crate::process::cookie::{Cookie, INSTANCE_VAR, OWNER_VAR};

/// What the spawn needs to know.
pub struct ServerSpec<'a> {
    /// Program and arguments; the program is looked up in PATH like a shell would.
    pub argv: &'a [OsString],
    /// Lead a new process group.
    pub group: bool,
    /// Set `PR_SET_PDEATHSIG(SIGKILL)`.
    pub pdeathsig: bool,
    /// Fds to write `"0"` to, joining cgroups, when the child is forked outside them.
    pub join_fds: Vec<RawFd>,
    /// A v2 cgroup to be born in instead (its directory's fd), with the fds the child must
    /// still write to then (a v1 pids cgroup). Falls back to `join_fds` if the kernel refuses.
    pub born_in: Option<(RawFd, Vec<RawFd>)>,
    /// Environment cookie to add.
    pub cookie: Option<&'a Cookie>,
    /// An fd to become the server's stderr instead of the shim's (an SSH server's, so the
    /// remote identity line can be taken out).
    pub stderr: Option<RawFd>,
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
    #[error("{program}: {what}: {source}")]
    Other {
        program: String,
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

impl SpawnError {
    /// The exit status a shell would give for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            SpawnError::NotFound { .. } => 127,
            SpawnError::NotExecutable { .. } => 126,
            SpawnError::Empty | SpawnError::Other { .. } => crate::TETHER_FAILED,
        }
    }
}

/// The steps of the child before exec; a failed one is reported with the errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Stage {
    /// `setpgid(0, 0)`.
    Group,
    /// `dup2` of the given stderr.
    Stderr,
    /// Writing to the cgroups' `cgroup.procs`.
    Cgroup,
    /// `PR_SET_PDEATHSIG`.
    Pdeathsig,
    /// The shim was gone right after `PR_SET_PDEATHSIG`, so it would never fire.
    ShimGone,
    /// `execve`.
    Exec,
}

impl Stage {
    const ALL: [Stage; 6] = [
        Stage::Group,
        Stage::Stderr,
        Stage::Cgroup,
        Stage::Pdeathsig,
        Stage::ShimGone,
        Stage::Exec,
    ];

    fn from_byte(b: u8) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| *s as u8 == b)
    }

    fn describe(self) -> &'static str {
        match self {
            Stage::Group => "joining the process group",
            Stage::Stderr => "redirecting stderr",
            Stage::Cgroup => "joining the instance cgroup",
            Stage::Pdeathsig => "setting the parent-death signal",
            Stage::ShimGone => "the shim exited during spawn",
            Stage::Exec => "exec",
        }
    }
}

/// A forked server waiting to exec.
pub struct Gate {
    /// The child's pid.
    pid: i32,
    /// Writing one byte here lets the child exec; closing it unwritten makes the child exit.
    go: Option<OwnedFd>,
    /// Close-on-exec pipe: EOF means the exec happened; 5 bytes are a failed stage and errno.
    report: OwnedFd,
    /// The program, for messages.
    program: String,
}

/// Forks the server, stopped at the gate; returns its pid in the [`Gate`].
pub fn spawn(spec: ServerSpec<'_>) -> Result<Gate, SpawnError> {
    let (program, _) = spec.argv.split_first().ok_or(SpawnError::Empty)?;
    let name = program.to_string_lossy().into_owned();
    let other = |what| {
        let name = name.clone();
        move |source| SpawnError::Other {
            program: name,
            what,
            source,
        }
    };
    let path = resolve(program).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => SpawnError::NotFound { program: name.clone() },
        io::ErrorKind::PermissionDenied => SpawnError::NotExecutable { program: name.clone() },
        _ => other("resolving")(e),
    })?;
    let image = Image::new(&path, spec.argv, spec.cookie).map_err(other("preparing"))?;
    let cloexec = nix::fcntl::OFlag::O_CLOEXEC;
    let (gate_r, gate_w) = nix::unistd::pipe2(cloexec).map_err(|e| other("pipe")(e.into()))?;
    let (report_r, report_w) = nix::unistd::pipe2(cloexec).map_err(|e| other("pipe")(e.into()))?;
    let mut child = Child {
        image: &image,
        group: spec.group,
        pdeathsig: spec.pdeathsig,
        join_fds: &spec.join_fds,
        stderr: spec.stderr,
        shim: nix::unistd::getpid(),
        gate: gate_r.as_raw_fd(),
        gate_w: gate_w.as_raw_fd(),
        report: report_w.as_raw_fd(),
        report_r: report_r.as_raw_fd(),
    };
    let forked = match &spec.born_in {
        Some((dir, rest)) => match crate::fork::fork_into_cgroup(*dir) {
            Ok(forked) => {
                // In both processes; no allocation, so also safe in the child.
                child.join_fds = rest;
                Ok(forked)
            }
            Err(e) => {
                tracing::debug!("clone3 into the instance cgroup: {e}; forking and joining instead");
                crate::fork::fork_single_threaded()
            }
        },
        None => crate::fork::fork_single_threaded(),
    };
    // The error is built in its own arm: `other` clones a String, and the child of a raw
    // clone3 makes no allocation before it execs.
    let forked = match forked {
        Ok(f) => f,
        Err(e) => return Err(other("fork")(e)),
    };
    match forked {
        ForkResult::Child => child.run(),
        ForkResult::Parent { child: pid } => {
            if spec.group {
                // Also from this side, so the group exists before any killpg of ours.
                let _ = nix::unistd::setpgid(pid, pid);
            }
            drop((gate_r, report_w));
            Ok(Gate {
                pid: pid.as_raw(),
                go: Some(gate_w),
                report: report_r,
                program: name,
            })
        }
    }
}

impl Gate {
    /// The waiting child's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Lets the child exec and waits for the outcome: `Ok` once the exec happened.
    pub fn open(mut self) -> Result<i32, SpawnError> {
        if let Some(go) = self.go.take() {
            let _ = nix::unistd::write(&go, b"G");
        }
        let mut buf = [0u8; 5];
        let mut got = 0;
        while got < buf.len() {
            match nix::unistd::read(&self.report, &mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
        if got == 0 {
            return Ok(self.pid);
        }
        // The child failed before or at exec and is exiting: reap it.
        let _ = nix::sys::wait::waitpid(Pid::from_raw(self.pid), None);
        let errno = i32::from_ne_bytes([buf[1], buf[2], buf[3], buf[4]]);
        let stage = Stage::from_byte(buf[0]);
        let source = io::Error::from_raw_os_error(errno);
        Err(match (stage, source.kind()) {
            (Some(Stage::Exec), io::ErrorKind::NotFound) => SpawnError::NotFound { program: self.program },
            (Some(Stage::Exec), io::ErrorKind::PermissionDenied) => SpawnError::NotExecutable { program: self.program },
            _ => SpawnError::Other {
                program: self.program,
                what: stage.map_or("spawn", Stage::describe),
                source,
            },
        })
    }
}

/// Finds `program` like `execvp` would: as given when it holds a `/`, else in `$PATH`.
fn resolve(program: &OsStr) -> io::Result<PathBuf> {
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut denied = false;
    for dir in std::env::split_paths(&path) {
        let candidate = if dir.as_os_str().is_empty() {
            Path::new(".").join(program)
        } else {
            dir.join(program)
        };
        if candidate.is_file() {
            if nix::unistd::access(&candidate, nix::unistd::AccessFlags::X_OK).is_ok() {
                return Ok(candidate);
            }
            denied = true;
        }
    }
    Err(if denied {
        io::ErrorKind::PermissionDenied.into()
    } else {
        io::ErrorKind::NotFound.into()
    })
}

/// The exec's arguments, built before the fork (the child must not allocate).
struct Image {
    /// Keeps the C strings alive for the pointer arrays.
    _strings: Vec<CString>,
    /// The program's path.
    path: CString,
    /// argv, NULL-terminated.
    argv: Vec<*const libc::c_char>,
    /// envp, NULL-terminated: this process's environment plus the cookie.
    envp: Vec<*const libc::c_char>,
}

impl Image {
    fn new(path: &Path, argv: &[OsString], cookie: Option<&Cookie>) -> io::Result<Image> {
        let c = |bytes: &[u8]| CString::new(bytes).map_err(|_| io::Error::other("argument holds a NUL byte"));
        let path = c(path.as_os_str().as_bytes())?;
        let args: Vec<CString> = argv.iter().map(|a| c(a.as_bytes())).collect::<io::Result<_>>()?;
        let mut env: Vec<CString> = Vec::new();
        for (k, v) in std::env::vars_os() {
            let replaced = cookie.is_some() && (k == INSTANCE_VAR || k == OWNER_VAR);
            if !replaced {
                let mut entry = k.into_vec();
                entry.push(b'=');
                entry.extend(v.as_bytes());
                env.push(c(&entry)?);
            }
        }
        for (k, v) in cookie.map(Cookie::env).into_iter().flatten() {
            env.push(c(format!("{k}={v}").as_bytes())?);
        }
        let ptrs = |v: &[CString]| {
            v.iter()
                .map(|s| s.as_ptr())
                .chain([std::ptr::null()])
                .collect::<Vec<_>>()
        };
        let argv = ptrs(&args);
        let envp = ptrs(&env);
        let mut strings = args;
        strings.extend(env);
        Ok(Image {
            _strings: strings,
            path,
            argv,
            envp,
        })
    }
}

/// What the forked child needs; everything is borrowed from memory allocated before the fork.
struct Child<'a> {
    image: &'a Image,
    group: bool,
    pdeathsig: bool,
    join_fds: &'a [RawFd],
    stderr: Option<RawFd>,
    shim: Pid,
    gate: RawFd,
    gate_w: RawFd,
    report: RawFd,
    report_r: RawFd,
}

impl Child<'_> {
    /// The child's side: set up, wait at the gate, exec. Never returns.
    #[allow(unsafe_code)]
    fn run(&self) -> ! {
        // SAFETY (whole function): between fork and exec in a single-threaded process, using
        // only async-signal-safe system calls on fds and memory prepared before the fork.
        unsafe {
            libc::close(self.gate_w);
            libc::close(self.report_r);
            if self.group && libc::setpgid(0, 0) != 0 {
                self.fail(Stage::Group);
            }
            if let Some(fd) = self.stderr {
                if libc::dup2(fd, 2) != 2 {
                    self.fail(Stage::Stderr);
                }
            }
            for &fd in self.join_fds {
                if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    self.fail(Stage::Cgroup);
                }
            }
            if self.pdeathsig {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                    self.fail(Stage::Pdeathsig);
                }
                // The shim may have died between fork and prctl: then nothing would ever fire.
                if libc::getppid() != self.shim.as_raw() {
                    self.fail(Stage::ShimGone);
                }
            }
            let mut byte = 0u8;
            loop {
                let n = libc::read(self.gate, (&raw mut byte).cast(), 1);
                if n == 1 {
                    break;
                }
                if n < 0 && *libc::__errno_location() == libc::EINTR {
                    continue;
                }
                // EOF: the shim died or gave up before recording us; never run.
                libc::_exit(125);
            }
            libc::close(self.gate);
            // Rust ignores SIGPIPE; a server gets the default, as from a shell.
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            libc::execve(
                self.image.path.as_ptr(),
                self.image.argv.as_ptr(),
                self.image.envp.as_ptr(),
            );
            self.fail(Stage::Exec)
        }
    }

    /// Reports the failed stage and errno to the shim, then exits.
    #[allow(unsafe_code)]
    fn fail(&self, stage: Stage) -> ! {
        // SAFETY: as in `run`: async-signal-safe calls on a stack buffer.
        unsafe {
            let errno = *libc::__errno_location();
            let e = errno.to_ne_bytes();
            let msg = [stage as u8, e[0], e[1], e[2], e[3]];
            libc::write(self.report, msg.as_ptr().cast(), msg.len());
            libc::_exit(127)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_execvp() {
        assert!(resolve(OsStr::new("sh")).is_ok());
        assert_eq!(
            resolve(OsStr::new("surely-no-such-command-here")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            resolve(OsStr::new("/etc/hostname")).map(|p| p.is_file()).ok(),
            Some(true),
            "a path is taken as given; exec reports what is wrong with it"
        );
    }

    #[test]
    fn nul_bytes_are_refused_before_the_fork() {
        let argv = [OsString::from("sh"), OsString::from("a\0b")];
        assert!(Image::new(Path::new("/bin/sh"), &argv, None).is_err());
    }
}
