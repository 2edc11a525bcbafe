//! Running a remote kill: a second ssh connection that runs `scripts/kill.sh` against a recorded
//! identity (or, when the identity was never learnt, only the cookie sweep), and its outcome.
//!
//! The ssh client is a plain child process with its stdout and stderr on pipes; the caller polls
//! its pidfd (the shim, in its one `poll`) or blocks with a deadline (the watchdog, the sweep).
//! Its output is a line or two, which the pipes hold until it exits.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::failure::SshFailure;
use super::identity_line::RemoteIdentity;
use super::remote_side::RemoteSide;
use super::replies::{KillReport, Leader};
use super::scripts;
use crate::process::pidfd::Pidfd;

/// Time for ssh to connect and log in, on top of the grace the kill itself may take.
const CONNECT_PATIENCE: Duration = Duration::from_secs(15);

/// How a remote kill ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillOutcome {
    /// The script ran and reported.
    Report(KillReport),
    /// It could not run, or its reply made no sense: the remote side is still unsettled.
    Failed(String),
}

impl KillOutcome {
    /// Whether the remote side is now known to be over (killed, gone, or not ours any more).
    pub fn settles(&self) -> bool {
        matches!(self, KillOutcome::Report(_))
    }

    /// Words for reports and the ledger.
    pub fn describe(&self) -> String {
        match self {
            KillOutcome::Report(KillReport::Killed { leader, swept }) => {
                let leader = match leader {
                    Leader::Term => "the server exited on SIGTERM",
                    Leader::Kill => "the server needed SIGKILL",
                    Leader::Gone => "the server had already exited",
                    Leader::Unknown => "identity never learnt, cookie swept",
                };
                format!("remote kill: {leader}; {swept} cookie carrier(s) swept")
            }
            KillOutcome::Report(KillReport::Refused(r)) => {
                format!("remote kill refused, nothing signalled: {}", r.describe())
            }
            KillOutcome::Failed(why) => format!("remote kill failed: {why}"),
        }
    }
}

/// A remote kill in flight.
pub struct RemoteKill {
    child: Child,
    pidfd: Option<Pidfd>,
    destination: String,
    patience: Duration,
    deadline: Instant,
}

impl RemoteKill {
    /// Starts the kill of `record`'s server (by identity when known, else by cookie only).
    pub fn start(record: &RemoteSide) -> io::Result<RemoteKill> {
        let unknown = RemoteIdentity {
            pid: 0,
            pgid: 0,
            start_ticks: 0,
            boot_id: "unknown".into(),
        };
        let id = record.identity.as_ref().unwrap_or(&unknown);
        let line = scripts::kill_command(&record.target.shell, id, &record.cookie, record.grace())
            .map_err(io::Error::other)?;
        let argv = record.target.command(&line);
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| io::Error::other("empty ssh command"))?;
        #[allow(clippy::disallowed_methods)] // The supervisor is the one place allowed to spawn.
        let child = Command::new(program)
            .args(args)
            // A group of its own: a second Ctrl-C to the client's group must not cut the kill.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("running {}: {e}", program.to_string_lossy())))?;
        let pidfd = Pidfd::open(child.id() as i32).ok();
        let patience = CONNECT_PATIENCE + record.grace();
        Ok(RemoteKill {
            child,
            pidfd,
            destination: record.target.destination(),
            patience,
            deadline: Instant::now() + patience,
        })
    }

    /// The ssh client's pid.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Readable once the ssh client exited, for `poll`.
    pub fn exit_fd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(AsFd::as_fd)
    }

    /// When it is given up.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The outcome, if the client exited; after the deadline, kills it and reports a failure.
    pub fn try_finish(&mut self) -> Option<KillOutcome> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(self.outcome(status.code())),
            Ok(None) if Instant::now() >= self.deadline => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                Some(KillOutcome::Failed(format!(
                    "no answer from {} within {:?}",
                    self.destination, self.patience
                )))
            }
            Ok(None) => None,
            Err(e) => Some(KillOutcome::Failed(format!("waiting for ssh: {e}"))),
        }
    }

    /// Blocks until the outcome (or the deadline).
    pub fn wait(mut self) -> KillOutcome {
        loop {
            if let Some(outcome) = self.try_finish() {
                return outcome;
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            match &self.pidfd {
                Some(fd) => {
                    use nix::poll::{PollFd, PollFlags, PollTimeout};
                    let ms = i32::try_from(left.as_millis().clamp(1, 60_000)).unwrap_or(60_000);
                    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                    let _ = nix::poll::poll(&mut fds, PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX));
                }
                None => std::thread::sleep(left.min(Duration::from_millis(20))),
            }
        }
    }

    fn outcome(&mut self, status: Option<i32>) -> KillOutcome {
        // Without blocking: a descendant of ssh (a ProxyCommand's) may still hold the pipes.
        let stdout = self.child.stdout.as_ref().map(|p| drain(p.as_fd())).unwrap_or_default();
        let stderr = self.child.stderr.as_ref().map(|p| drain(p.as_fd())).unwrap_or_default();
        match KillReport::parse(&stdout, status) {
            Ok(report) => KillOutcome::Report(report),
            Err(e) => {
                let why = match SshFailure::classify(status, &stderr, false, "") {
                    Some(f @ (SshFailure::Unreachable(_) | SshFailure::AuthFailed(_) | SshFailure::HostKey(_))) => {
                        f.describe(&self.destination)
                    }
                    _ if !stderr.trim().is_empty() => format!("{e}; stderr: {}", stderr.trim()),
                    _ => e.to_string(),
                };
                KillOutcome::Failed(why)
            }
        }
    }
}

/// Whatever a pipe holds now, up to EOF or the first wait.
fn drain(fd: BorrowedFd<'_>) -> String {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
        let _ = fcntl(
            fd,
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        );
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = nix::unistd::read(fd, &mut buf) {
        if n == 0 || out.len() > 1 << 20 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}
