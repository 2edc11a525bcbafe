//! The shim's side of a server on an SSH host.
//!
//! Locally the server is the `ssh` client, contained like any server (its group, cgroup and
//! cookie). What this adds: the client's stderr comes through a pipe of the shim's, so that the
//! wrapper's identity line can be taken out and recorded in the ledger; everything else on it is
//! passed on to the shim's own stderr as it comes (stdin and stdout, the JSON-RPC stream, stay
//! the client's, untouched). Reading stops while the client's stderr is full, so a client that
//! does not read stderr stalls the server as it would without Tether.
//!
//! At teardown, the remote side is ended over a second connection by identity (or by cookie only,
//! if the identity never arrived), and the shim waits for the answer before it exits; the ledger
//! records the outcome. A remote side known to be over needs no kill: the wrapper exited after
//! its own clean-up (ssh reported its status), or ssh never logged in.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};

use super::ledger_writer::LedgerWriter;
use super::tree::ServerExit;
use crate::ssh::failure::{SshFailure, SSH_FAILED};
use crate::ssh::remote_kill::RemoteKill;
use crate::ssh::stderr_filter::{Found, IdentityFilter};
use crate::ssh::{RemoteSide, SshServer};

/// Most bytes held for the client's stderr before reading from ssh pauses.
const PENDING_CAP: usize = 64 * 1024;
/// Largest write: at most PIPE_BUF, so a write after POLLOUT cannot block on a pipe.
const WRITE_CHUNK: usize = 4096;
/// How long the last of ssh's stderr may take to reach the client's at the end.
const FLUSH_PATIENCE: Duration = Duration::from_secs(1);

/// One SSH instance's remote side.
pub struct SshClient {
    /// What runs where.
    server: SshServer,
    /// What the ledger knows of it.
    remote: RemoteSide,
    /// Read end of ssh's stderr (non-blocking).
    stderr: Option<OwnedFd>,
    /// Read from ssh, not yet written to the client's stderr.
    pending: Vec<u8>,
    /// Takes the identity line out.
    filter: IdentityFilter,
    /// The remote kill, once started.
    kill: Option<RemoteKill>,
    /// The shim's own stderr (the client's), where ssh's stderr goes on to.
    client_stderr: io::Stderr,
}

impl SshClient {
    /// Prepares the stderr pipe; returns the write end for the ssh client's fd 2.
    pub fn new(server: &SshServer, cookie: &str, grace: Duration) -> io::Result<(SshClient, OwnedFd)> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
        // Only our end is non-blocking; ssh gets an ordinary blocking stderr.
        let flags = nix::fcntl::fcntl(&write, nix::fcntl::FcntlArg::F_GETFL)?;
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) & !nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&write, nix::fcntl::FcntlArg::F_SETFL(flags))?;
        let side = SshClient {
            server: server.clone(),
            remote: RemoteSide::new(server.target.clone(), cookie, grace),
            stderr: Some(read),
            pending: Vec::new(),
            filter: IdentityFilter::default(),
            kill: None,
            client_stderr: io::stderr(),
        };
        Ok((side, write))
    }

    /// The ledger's view, for the intent.
    pub fn remote(&self) -> &RemoteSide {
        &self.remote
    }

    /// The remote kill's ssh client, which is not part of the tree.
    pub fn helper_pid(&self) -> Option<i32> {
        self.kill.as_ref().map(RemoteKill::pid)
    }

    /// What to wait on: ssh's stderr (when there is room), the client's stderr (when bytes wait),
    /// the remote kill's exit.
    pub fn poll_fds(&self) -> Vec<(BorrowedFd<'_>, PollFlags)> {
        let mut fds = Vec::new();
        if let Some(fd) = &self.stderr {
            if self.pending.len() < PENDING_CAP {
                fds.push((fd.as_fd(), PollFlags::POLLIN));
            }
        }
        if !self.pending.is_empty() {
            fds.push((self.client_stderr.as_fd(), PollFlags::POLLOUT));
        }
        if let Some(fd) = self.kill.as_ref().and_then(RemoteKill::exit_fd) {
            fds.push((fd, PollFlags::POLLIN));
        }
        fds
    }

    /// Moves what it can: from ssh's stderr (recording the identity when it passes) to the
    /// client's, without blocking; and collects the remote kill's outcome.
    pub fn pump(&mut self, ledger: &mut LedgerWriter) {
        let mut buf = [0u8; 16 * 1024];
        while self.pending.len() < PENDING_CAP {
            let Some(fd) = &self.stderr else { break };
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => {
                    self.filter.finish(&mut self.pending);
                    self.stderr = None;
                }
                Ok(n) => {
                    let found = self.filter.feed(&buf[..n], &mut self.pending);
                    self.found(found, ledger);
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => break, // EAGAIN: nothing more for now.
            }
        }
        self.flush(Duration::ZERO);
        if let Some(outcome) = self.kill.as_mut().and_then(RemoteKill::try_finish) {
            self.kill = None;
            self.settle(outcome.settles(), outcome.describe(), ledger);
            if outcome.settles() {
                tracing::info!("{}: {}", self.server.describe(), outcome.describe());
            } else {
                tracing::warn!(
                    "{}: {}; `tether reap` will try again",
                    self.server.describe(),
                    outcome.describe()
                );
            }
        }
    }

    fn found(&mut self, found: Option<Found>, ledger: &mut LedgerWriter) {
        match found {
            Some(Found::Identity(id)) => {
                tracing::debug!(
                    "{}: remote pid {} pgid {} boot {}",
                    self.server.describe(),
                    id.pid,
                    id.pgid,
                    id.boot_id
                );
                self.remote.identity = Some(id);
                ledger.remote(&self.remote);
            }
            Some(Found::Malformed(e)) => tracing::warn!("{}: {e}", self.server.describe()),
            None => {}
        }
    }

    /// Starts the remote kill, unless the remote side is over or a kill already runs.
    pub fn start_kill(&mut self) {
        if self.remote.settled || self.kill.is_some() || self.remote.outcome.is_some() {
            return;
        }
        match RemoteKill::start(&self.remote) {
            Ok(k) => self.kill = Some(k),
            Err(e) => {
                self.remote.outcome = Some(format!("remote kill could not start: {e}"));
                tracing::warn!("{}: remote kill could not start: {e}", self.server.describe());
            }
        }
    }

    /// Whether the wrapper reported the server's identity: the server runs (or ran).
    pub fn started(&self) -> bool {
        self.filter.seen()
    }

    /// The ssh client exited (`by_us`: after the shim signalled it): decides whether the remote
    /// side is over without a kill.
    pub fn server_exited(&mut self, exit: ServerExit, by_us: bool, ledger: &mut LedgerWriter) {
        let failure = if by_us { None } else { self.failure(exit) };
        match (exit, &failure) {
            // ssh relays the remote command's status: the wrapper (which exits only after its
            // clean-up) or, if it never ran, the login shell. Either way nothing is left there.
            (ServerExit::Code(c), _) if c != SSH_FAILED => {
                let who = if self.filter.seen() {
                    "the remote wrapper exited after its clean-up"
                } else {
                    "the remote login ended without starting the server"
                };
                self.settle(true, format!("{who} (status {c})"), ledger);
            }
            (_, Some(f)) if !f.may_have_started() => {
                self.settle(true, "ssh never logged in".into(), ledger);
            }
            _ => {}
        }
    }

    /// The ssh client never ran (the spawn or the watchdog fork failed).
    pub fn never_started(&mut self, ledger: &mut LedgerWriter) {
        self.settle(true, "ssh never ran".into(), ledger);
    }

    /// True while the remote kill runs.
    pub fn busy(&self) -> bool {
        self.kill.is_some()
    }

    /// When the running remote kill is given up.
    pub fn deadline(&self) -> Option<Instant> {
        self.kill.as_ref().map(RemoteKill::deadline)
    }

    /// At the end: passes on the last of ssh's stderr and says, naming the host, why the server
    /// did not run, if it did not (unless the shim ended it, `by_us`).
    pub fn finish(mut self, exit: ServerExit, by_us: bool, ledger: &mut LedgerWriter) {
        if let Some(kill) = self.kill.take() {
            let outcome = kill.wait();
            self.settle(outcome.settles(), outcome.describe(), ledger);
        }
        let deadline = Instant::now() + FLUSH_PATIENCE;
        while self.stderr.is_some() && Instant::now() < deadline {
            self.pump(ledger);
            if let Some(fd) = &self.stderr {
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                let _ = nix::poll::poll(&mut fds, PollTimeout::from(100u8));
            }
        }
        self.flush(FLUSH_PATIENCE);
        if let Some(f) = self.failure(exit).filter(|_| !by_us) {
            tracing::error!("{}", f.describe(&self.server.target.destination()));
        }
    }

    fn failure(&self, exit: ServerExit) -> Option<SshFailure> {
        let status = match exit {
            ServerExit::Code(c) => Some(c),
            ServerExit::Signal(_) => None,
        };
        SshFailure::classify(status, &self.filter.tail(), self.filter.seen(), &self.server.program())
    }

    fn settle(&mut self, settled: bool, outcome: String, ledger: &mut LedgerWriter) {
        self.remote.note(settled, outcome);
        ledger.remote(&self.remote);
    }

    /// Writes pending bytes to the client's stderr while it takes them, for up to `patience`.
    fn flush(&mut self, patience: Duration) {
        let deadline = Instant::now() + patience;
        let stderr = io::stderr();
        while !self.pending.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(stderr.as_fd(), PollFlags::POLLOUT)];
            match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
                Ok(n) if n > 0 => {}
                _ => return,
            }
            if fds[0]
                .revents()
                .is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL))
            {
                // Nobody reads the client's stderr any more: drop what cannot be delivered.
                self.pending.clear();
                return;
            }
            let n = self.pending.len().min(WRITE_CHUNK);
            match nix::unistd::write(&stderr, &self.pending[..n]) {
                Ok(w) => drop(self.pending.drain(..w)),
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(_) => {
                    self.pending.clear();
                    return;
                }
            }
        }
    }
}
