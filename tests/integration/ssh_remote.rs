//! Driving a server under the remote wrapper, over a real `ssh -T`, for the SSH tests.
//!
//! A [`Case`] is one test's world: its own sshd, a tag for the fixture's argv (found in
//! /proc/*/cmdline even after `env -i`) and the remote cookie (found in environments, and in the
//! argv of the wrapper and of the local ssh client). [`Case::assert_clean`] proves neither
//! survives; both kill whatever still carries them, by PID, when dropped. A [`Remote`] is one
//! running connection with its pipes; its stdout is read by a thread, so every read has a
//! deadline.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tether_supervisor::ssh::replies::KillReport;
use tether_supervisor::ssh::scripts::{self, Shell};
use tether_supervisor::ssh::{identity_line, RemoteIdentity};

use crate::harness::{eventually, Cookie, StderrLog, FIXTURE};
use crate::sshd::Sshd;

/// Grace between SIGTERM and SIGKILL in these tests.
pub const GRACE: Duration = Duration::from_millis(300);
/// How long a test waits for anything that should be quick.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// dash, as Debian's /bin/sh.
pub fn dash() -> Shell {
    Shell {
        program: "dash".into(),
        flags: Vec::new(),
    }
}

/// bash in POSIX mode.
pub fn bash() -> Shell {
    Shell {
        program: "bash".into(),
        flags: vec!["--posix".into()],
    }
}

/// Runs each scenario once with dash and once with bash --posix as the shell of the scripts
/// (the invoking module has `dash` and `bash` in scope).
macro_rules! with_both_shells {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn dash() {
                super::$scenario(&super::dash());
            }
            #[test]
            fn bash() {
                super::$scenario(&super::bash());
            }
        }
    )*};
}
pub(crate) use with_both_shells;

/// One test's sshd, tag and cookie.
pub struct Case {
    /// The fixture's `--tag`.
    pub tag: Cookie,
    /// The wrapper's cookie (a bare id: the scripts accept nothing else).
    pub cookie: Cookie,
    /// The server the wrapper runs behind.
    pub sshd: Sshd,
}

impl Case {
    /// A fresh sshd, tag and cookie; `None` (the test skips) where [`Sshd::start`] says so.
    pub fn new() -> Option<Case> {
        Some(Case {
            sshd: Sshd::start()?,
            tag: Cookie::new(),
            cookie: Cookie(tether_supervisor::ids::random_id().expect("random id")),
        })
    }

    /// The fixture's argv with our tag and `flags`.
    pub fn fixture(&self, flags: &[&str]) -> Vec<OsString> {
        let mut argv: Vec<OsString> = vec![FIXTURE.into(), "--tag".into(), self.tag.0.clone().into()];
        argv.extend(flags.iter().map(OsString::from));
        argv
    }

    /// `ssh -T … <wrapper> fixture --tag TAG flags…`, with piped stdio.
    pub fn start(&self, shell: &Shell, flags: &[&str]) -> Remote {
        self.start_server(shell, &self.fixture(flags))
    }

    /// `ssh -T … <wrapper> server…`, with piped stdio.
    pub fn start_server(&self, shell: &Shell, server: &[OsString]) -> Remote {
        self.start_with_env(shell, &[], server)
    }

    /// [`Case::start_server`], the wrapper reading `env_names` from the header first.
    pub fn start_with_env(&self, shell: &Shell, env_names: &[String], server: &[OsString]) -> Remote {
        let command =
            scripts::wrapper_command(shell, &self.cookie.0, GRACE, env_names, server).expect("wrapper command");
        Remote::spawn(self.sshd.ssh(command))
    }

    /// Runs the remote kill script over a second connection and reads its reply.
    pub fn remote_kill(&self, shell: &Shell, id: &RemoteIdentity) -> KillReport {
        let command = scripts::kill_command(shell, id, &self.cookie.0, GRACE).expect("kill command");
        let out = self.sshd.run(command, PATIENCE);
        let stdout = String::from_utf8_lossy(&out.stdout);
        KillReport::parse(&stdout, out.status.code())
            .unwrap_or_else(|e| panic!("{e}; stderr: {}", String::from_utf8_lossy(&out.stderr)))
    }

    /// Waits up to `within` until nothing carries the tag or the cookie; panics with the
    /// survivors (after killing them) otherwise.
    pub fn assert_clean(&self, within: Duration) {
        let t0 = Instant::now();
        self.tag.assert_none_survive(within);
        self.cookie.assert_none_survive(within.saturating_sub(t0.elapsed()));
    }
}

/// A running wrapper (over ssh, or run directly) with its pipes.
pub struct Remote {
    /// The local process: `ssh`, or the shell running the wrapper.
    pub child: Child,
    /// The server's stdin.
    pub stdin: Option<ChildStdin>,
    /// Chunks of the server's stdout, from a reader thread.
    stdout: Receiver<Vec<u8>>,
    /// Read from `stdout` but not consumed yet.
    pending: Vec<u8>,
    /// Every stderr line.
    stderr: StderrLog,
}

impl Remote {
    /// Spawns `cmd` with piped stdio.
    pub fn spawn(mut cmd: Command) -> Remote {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning the remote");
        let (tx, stdout) = mpsc::channel();
        let mut out = child.stdout.take().expect("stdout pipe");
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            while let Ok(n @ 1..) = out.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let stderr = StderrLog::collect(&mut child);
        Remote {
            stdin: child.stdin.take(),
            child,
            stdout,
            pending: Vec::new(),
            stderr,
        }
    }

    /// Every stderr line so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lines()
    }

    /// Waits for the wrapper's identity line and parses it. Only the remote login's own noise
    /// may come before it: nothing from the server, nothing from the wrapper.
    pub fn identity(&self) -> RemoteIdentity {
        let mut lines = Vec::new();
        let mut at = None;
        eventually(PATIENCE, || {
            lines = self.stderr_lines();
            at = lines.iter().position(|l| identity_line::is_identity_line(l));
            at.is_some()
        });
        let at = at.unwrap_or_else(|| panic!("no identity line within {PATIENCE:?}; stderr: {lines:#?}"));
        let before = &lines[..at];
        assert!(
            !before
                .iter()
                .any(|l| l.starts_with("tether-fixture:") || l.starts_with("tether-remote:")),
            "the server or the wrapper wrote before the identity line: {before:#?}"
        );
        if !before.is_empty() {
            eprintln!("remote login noise before the identity line: {before:?}");
        }
        RemoteIdentity::parse(&lines[at]).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The stderr lines after the identity line.
    pub fn stderr_after_identity(&self) -> Vec<String> {
        let lines = self.stderr_lines();
        let at = lines
            .iter()
            .position(|l| identity_line::is_identity_line(l))
            .expect("an identity line");
        lines[at + 1..].to_vec()
    }

    /// Waits for the fixture's `ready` line (its whole zoo exists then).
    pub fn wait_ready(&self) {
        let ready = eventually(PATIENCE, || {
            self.stderr_lines()
                .iter()
                .any(|l| l.starts_with("tether-fixture: ready "))
        });
        assert!(
            ready,
            "fixture never became ready; stderr:\n{}",
            self.stderr_lines().join("\n")
        );
    }

    /// Writes `bytes` to the server's stdin.
    pub fn send(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(bytes).expect("writing to the remote");
        stdin.flush().expect("flushing to the remote");
    }

    /// Reads exactly `n` bytes of the server's stdout within `within`.
    pub fn read_exact(&mut self, n: usize, within: Duration) -> Vec<u8> {
        let deadline = Instant::now() + within;
        while self.pending.len() < n {
            match self
                .stdout
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(chunk) => self.pending.extend_from_slice(&chunk),
                Err(RecvTimeoutError::Timeout) => panic!("got {} of {n} bytes within {within:?}", self.pending.len()),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("stdout closed after {} of {n} bytes", self.pending.len())
                }
            }
        }
        self.pending.drain(..n).collect()
    }

    /// Reads one line of the server's stdout (without its newline) within `within`.
    pub fn read_line(&mut self, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=i).collect();
                return String::from_utf8_lossy(&line[..i]).into_owned();
            }
            match self
                .stdout
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(chunk) => self.pending.extend_from_slice(&chunk),
                Err(e) => panic!(
                    "no stdout line within {within:?} ({e}); stderr:\n{}",
                    self.stderr_lines().join("\n")
                ),
            }
        }
    }

    /// Waits for the local process to exit, then (bounded) for stderr to reach EOF.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        self.stderr.wait_exit(&mut self.child, within)
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
