//! Starting a shim from a supervising process: the spawn primitive the gateway builds on.
//!
//! A [`Launch`] describes one instance in types (server, scope, layers, grace, stderr); it
//! becomes the command line `tether [--state-dir D] wrap --lifeline-fd 3 … -- CMD…` with piped
//! stdin and stdout and a lifeline pipe: the shim holds the read end as fd 3, the supervisor
//! the write end ([`Lifeline`], close-on-exec so no other child inherits it). Dropping the
//! lifeline, on purpose or because the supervisor died, makes the shim end the whole tree. The
//! server's stdin and stdout are the caller's to speak MCP over; the shim never touches them.
//! An SSH server's environment is the one thing the caller writes there first (the header,
//! [`Prepared::stdin_first`]): its values must stay out of every command line, and the stdin
//! pipe reaches the remote wrapper without any process in between.
//!
//! Two ways to start it: [`Launch::spawn`] with `std::process` (blocking callers: `tether
//! demo`, tests), or [`Launch::prepare`], which hands the ready [`std::process::Command`] to
//! an async runtime's process API (the gateway's tokio). Either way the child execs at once:
//! between fork and exec it only moves the lifeline to fd 3, which is safe in a process with
//! many threads, unlike the shim's own forks.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Write as _};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::str::FromStr;
use std::time::Duration;

use crate::layers::Disabled;
use crate::ssh::SshServer;

/// The fd number the lifeline has inside the shim.
pub const LIFELINE_FD: i32 = 3;

/// What the instance runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerCommand {
    /// A local program and its arguments (looked up in `PATH`, never through a shell).
    Local(Vec<OsString>),
    /// A program on an SSH host, under the remote wrapper.
    Ssh(Box<SshServer>),
}

/// The scope an instance lives in, as the ledger records it (`tether ps` shows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A `tether wrap` started by a client: the client's life is the scope.
    Wrap,
    /// A gateway's shared instance: the gateway's life, or an idle timeout.
    Shared,
    /// One client session of a gateway. The key is the gateway's own label for the session,
    /// never the session id a client presents (which is a credential).
    Session(String),
    /// One request (a `tools/call`).
    Request,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Wrap => f.write_str("wrap"),
            Scope::Shared => f.write_str("shared"),
            Scope::Session(key) => write!(f, "session:{key}"),
            Scope::Request => f.write_str("request"),
        }
    }
}

/// A scope that is not `wrap`, `shared`, `request` or `session:KEY`.
#[derive(Debug, thiserror::Error)]
#[error("scope {0:?}: expected wrap, shared, request or session:KEY (KEY: letters, digits, '-', '_')")]
pub struct BadScope(String);

impl FromStr for Scope {
    type Err = BadScope;
    fn from_str(s: &str) -> Result<Scope, BadScope> {
        match s {
            "wrap" => Ok(Scope::Wrap),
            "shared" => Ok(Scope::Shared),
            "request" => Ok(Scope::Request),
            _ => match s.strip_prefix("session:") {
                Some(key)
                    if !key.is_empty()
                        && key.len() <= 64
                        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
                {
                    Ok(Scope::Session(key.to_string()))
                }
                _ => Err(BadScope(s.to_string())),
            },
        }
    }
}

/// Where the server's (and the shim's) stderr goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StderrMode {
    /// The supervisor's own stderr.
    Inherit,
    /// `/dev/null`.
    Null,
    /// A pipe the supervisor reads (to put server logs into its own).
    Piped,
}

/// Which ledger the shim writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerChoice {
    /// The default state directory (`TETHER_STATE_DIR`, XDG, `~/.local/state/tether`).
    Default,
    /// This state directory.
    At(PathBuf),
    /// None: the instance is unrecorded (a sweep cannot find what a crash leaves).
    Off,
}

impl LedgerChoice {
    /// The state directory this choice names: `None` for [`LedgerChoice::Off`], an error in
    /// words when the default one cannot be found.
    pub fn dir(&self) -> Option<Result<PathBuf, String>> {
        match self {
            LedgerChoice::Off => None,
            LedgerChoice::At(dir) => Some(Ok(dir.clone())),
            LedgerChoice::Default => Some(crate::ledger::location::state_dir(None)),
        }
    }
}

/// How to start one instance under a shim.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The `tether` executable that runs the shim.
    pub tether: PathBuf,
    /// What the instance runs.
    pub server: ServerCommand,
    /// The server's name, for the ledger and `tether ps`.
    pub name: String,
    /// The scope the instance lives in.
    pub scope: Scope,
    /// The owner id (the supervising process's; `TETHER_OWNER`).
    pub owner: String,
    /// The instance id (also the cookie, `TETHER_INSTANCE`).
    pub instance: String,
    /// Time between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// `pids.max` for the instance.
    pub max_procs: Option<u32>,
    /// Containment layers switched off.
    pub disabled: Disabled,
    /// Where stderr goes.
    pub stderr: StderrMode,
    /// Which ledger the shim writes.
    pub ledger: LedgerChoice,
    /// Environment variables added for the server (the rest is the supervisor's own).
    pub env: Vec<(OsString, OsString)>,
    /// The server's working directory (the supervisor's own when `None`).
    pub cwd: Option<PathBuf>,
}

impl Launch {
    /// A launch of `server` with the defaults: a fresh shared-scope instance id is the
    /// caller's to set, grace 2 s, every layer on, stderr inherited, the default ledger.
    pub fn new(tether: PathBuf, server: ServerCommand, owner: String, instance: String) -> Launch {
        let name = match &server {
            ServerCommand::Local(argv) => default_name(argv),
            ServerCommand::Ssh(ssh) => default_name(&ssh.command),
        };
        Launch {
            tether,
            server,
            name,
            scope: Scope::Shared,
            owner,
            instance,
            grace: Duration::from_secs(2),
            max_procs: None,
            disabled: Disabled::NONE,
            stderr: StderrMode::Inherit,
            ledger: LedgerChoice::Default,
            env: Vec::new(),
            cwd: None,
        }
    }

    /// The shim's command line, after the program name.
    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        if let LedgerChoice::At(dir) = &self.ledger {
            args.extend(["--state-dir".into(), dir.clone().into_os_string()]);
        }
        args.extend(
            [
                "wrap".to_string(),
                "--lifeline-fd".into(),
                LIFELINE_FD.to_string(),
                "--grace".into(),
                format!("{}ms", self.grace.as_millis()),
                "--instance-id".into(),
                self.instance.clone(),
                "--owner-id".into(),
                self.owner.clone(),
                "--scope".into(),
                self.scope.to_string(),
                "--name".into(),
                self.name.clone(),
            ]
            .map(OsString::from),
        );
        if self.ledger == LedgerChoice::Off {
            args.push("--no-ledger".into());
        }
        if let Some(max) = self.max_procs {
            args.extend(["--max-procs".into(), max.to_string().into()]);
        }
        for layer in self.disabled.layers() {
            args.extend(["--disable".into(), layer.name().into()]);
        }
        let command = match &self.server {
            ServerCommand::Local(argv) => argv,
            ServerCommand::Ssh(ssh) => {
                args.extend(["--ssh".into(), ssh.target.destination().into()]);
                for option in &ssh.target.options {
                    args.extend(["--ssh-option".into(), option.into()]);
                }
                if let Some(file) = &ssh.target.config_file {
                    args.extend(["--ssh-config".into(), file.clone().into_os_string()]);
                }
                if let Some(file) = &ssh.target.identity_file {
                    args.extend(["--ssh-identity".into(), file.clone().into_os_string()]);
                }
                // Names only: the values go in the header, on stdin (see `prepare`).
                let names = ssh.env.iter().map(|(k, _)| k).chain(&ssh.env_from_stdin);
                for name in names {
                    args.extend(["--remote-env-from-stdin".into(), name.into()]);
                }
                &ssh.command
            }
        };
        args.push("--".into());
        args.extend(command.iter().cloned());
        args
    }

    /// The ready command and the lifeline's write end, for a process API of the caller's
    /// choosing (an async runtime's): spawn the command, then keep the [`Lifeline`] for as
    /// long as the instance may live. The command holds the lifeline's read end until it is
    /// dropped; drop it once spawned.
    pub fn prepare(&self) -> io::Result<Prepared> {
        let stdin_first = match &self.server {
            // One header, one writer: the values this Launch holds, or names whose values the
            // caller writes itself, not both.
            ServerCommand::Ssh(ssh) if !ssh.env.is_empty() && !ssh.env_from_stdin.is_empty() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "an SSH server's env and env_from_stdin cannot both be set: the header is written by one side",
                ));
            }
            ServerCommand::Ssh(ssh) if !ssh.env.is_empty() => {
                crate::ssh::env_header::encode(&ssh.env).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
            }
            _ => Vec::new(),
        };
        let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let mut command = Command::new(&self.tether);
        command.args(self.args()).stdin(Stdio::piped()).stdout(Stdio::piped());
        command.stderr(match self.stderr {
            StderrMode::Inherit => Stdio::inherit(),
            StderrMode::Null => Stdio::null(),
            StderrMode::Piped => Stdio::piped(),
        });
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        install_lifeline(&mut command, read_end);
        Ok(Prepared {
            command,
            lifeline: Lifeline { _write_end: write_end },
            stdin_first,
        })
    }

    /// Starts the shim with `std::process`, and writes [`Prepared::stdin_first`] (a write that
    /// blocks until ssh has read it, should it be larger than the pipe).
    pub fn spawn(&self) -> io::Result<Launched> {
        let Prepared {
            mut command,
            lifeline,
            stdin_first,
        } = self.prepare()?;
        #[allow(clippy::disallowed_methods)] // The supervisor is the one place allowed to spawn.
        let mut child = command.spawn()?;
        if let (Some(stdin), false) = (child.stdin.as_mut(), stdin_first.is_empty()) {
            if let Err(e) = stdin.write_all(&stdin_first) {
                // The shim ends its tree on the lifeline's EOF.
                drop(lifeline);
                let _ = child.wait();
                return Err(io::Error::new(e.kind(), format!("writing the environment header: {e}")));
            }
        }
        Ok(Launched {
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
            child,
            lifeline: Some(lifeline),
        })
    }
}

/// A command ready to spawn, and the lifeline that will tie the instance to its spawner.
pub struct Prepared {
    /// `tether wrap …` with piped stdin and stdout; its child inherits the lifeline as fd 3.
    pub command: Command,
    /// The lifeline's write end.
    pub lifeline: Lifeline,
    /// What the caller writes on the shim's stdin before anything else: an SSH server's
    /// environment header ([`crate::ssh::env_header`]), empty for any other server. It holds
    /// the environment's values: never log it.
    pub stdin_first: Vec<u8>,
}

/// The write end of an instance's lifeline: dropping it ends the instance.
#[derive(Debug)]
pub struct Lifeline {
    /// Held only to be closed: its EOF is the shim's signal.
    _write_end: OwnedFd,
}

impl Lifeline {
    /// Ends the instance: the shim sees EOF and tears the tree down.
    pub fn cut(self) {
        drop(self);
    }
}

/// A running shim and the pipes to its server.
pub struct Launched {
    /// The shim process.
    pub child: Child,
    /// The server's stdin.
    pub stdin: Option<ChildStdin>,
    /// The server's stdout.
    pub stdout: Option<ChildStdout>,
    /// The server's and the shim's stderr, with [`StderrMode::Piped`].
    pub stderr: Option<ChildStderr>,
    /// The lifeline's write end, until cut.
    lifeline: Option<Lifeline>,
}

impl Launched {
    /// Closes the server's stdin and the lifeline and returns at once: the shim ends the tree
    /// and exits; [`Launched::wait`] or [`Launched::try_wait`] collect its status.
    pub fn end(&mut self) {
        self.stdin.take();
        self.cut_lifeline();
    }

    /// Closes the lifeline only: the shim ends the tree now.
    pub fn cut_lifeline(&mut self) {
        if let Some(l) = self.lifeline.take() {
            l.cut();
        }
    }

    /// The shim's status (the server's own), if it exited.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// Waits for the shim's exit and returns the server's status.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        self.child.wait()
    }
}

/// The command's file name: `npx` for `/usr/bin/npx -y pkg`.
pub fn default_name(argv: &[OsString]) -> String {
    argv.first()
        .map(std::path::Path::new)
        .and_then(std::path::Path::file_name)
        .map_or_else(|| "server".into(), |n| n.to_string_lossy().into_owned())
}

fn install_lifeline(cmd: &mut Command, read_end: OwnedFd) {
    let raw = read_end.as_raw_fd();
    #[allow(unsafe_code)]
    // SAFETY: between fork and exec only dup2/fcntl are called, which are async-signal-safe;
    // dup2 clears close-on-exec on the new fd, so the shim inherits exactly fd 3. `read_end` is
    // moved into the closure so it stays open until the Command is dropped, after the spawn.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Layer;

    #[test]
    fn scopes_round_trip_and_bad_ones_are_refused() {
        for s in ["wrap", "shared", "request", "session:ab-12_x"] {
            assert_eq!(s.parse::<Scope>().unwrap().to_string(), s);
        }
        for bad in ["", "session:", "session:a b", "session:../x", "global"] {
            assert!(bad.parse::<Scope>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_command_line_carries_every_typed_field() {
        let mut l = Launch::new(
            "/bin/tether".into(),
            ServerCommand::Local(vec!["/usr/bin/npx".into(), "-y".into(), "pkg".into()]),
            "0123456789abcdef".into(),
            "fedcba9876543210".into(),
        );
        l.scope = Scope::Session("s1".into());
        l.max_procs = Some(7);
        l.disabled.insert(Layer::Cgroup);
        l.ledger = LedgerChoice::At("/tmp/state".into());
        let args: Vec<String> = l.args().iter().map(|a| a.to_string_lossy().into_owned()).collect();
        let joined = args.join(" ");
        assert!(joined.starts_with("--state-dir /tmp/state wrap --lifeline-fd 3 --grace 2000ms"));
        for part in [
            "--scope session:s1",
            "--name npx",
            "--max-procs 7",
            "--disable cgroup",
            "-- /usr/bin/npx -y pkg",
        ] {
            assert!(joined.contains(part), "{part:?} missing from {joined}");
        }
    }

    #[test]
    fn an_ssh_servers_env_values_go_on_stdin_and_only_names_in_argv() {
        let ssh = crate::ssh::SshServer {
            target: crate::ssh::SshTarget::parse("u@h").unwrap(),
            command: vec!["node".into()],
            env: vec![("API_KEY".into(), "s3cret value".into())],
            env_from_stdin: Vec::new(),
        };
        let l = Launch::new(
            "/bin/tether".into(),
            ServerCommand::Ssh(Box::new(ssh)),
            "0123456789abcdef".into(),
            "fedcba9876543210".into(),
        );
        let joined = l
            .args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(joined.contains("--remote-env-from-stdin API_KEY -- node"), "{joined}");
        assert!(!joined.contains("s3cret"), "{joined}");
        assert!(!format!("{l:?}").contains("s3cret"), "Debug shows no value");
        let prepared = l.prepare().unwrap();
        assert_eq!(prepared.stdin_first, b"API_KEY=s3cret value\nTETHER-ENV-END\n");
        // Names whose values the caller writes itself pass on; with values too, refused.
        let mut l = l;
        if let ServerCommand::Ssh(ssh) = &mut l.server {
            ssh.env.clear();
            ssh.env_from_stdin = vec!["OWN".into()];
        }
        assert!(l.prepare().unwrap().stdin_first.is_empty());
        assert!(l.args().contains(&"OWN".into()));
        if let ServerCommand::Ssh(ssh) = &mut l.server {
            ssh.env = vec![("A".into(), "1".into())];
        }
        assert_eq!(l.prepare().err().map(|e| e.kind()), Some(io::ErrorKind::InvalidInput));
    }
}
