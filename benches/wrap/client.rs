//! The bench's JSON-RPC client: a started server (direct or wrapped) and its pipes.
//!
//! [`Server`] is also the guard that keeps the bench from leaking: dropping one that was not
//! [finished](Server::finish) SIGKILLs and reaps it, whatever error got us there.

use std::os::fd::AsFd;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag};
use nix::unistd::Pid;

use crate::context::{Ctx, Mode};
use crate::messages::{check_initialize, initialize_request, Echoes};
use crate::pipes::{set_nonblocking, write_all, LineBuf, IO_TIMEOUT};
use crate::progress;

/// Longest wait for a process to exit once its stdin is closed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// A started server. Dropping it without [`Server::finish`] SIGKILLs it (for a wrapped server,
/// the shim, whose watchdog then ends the tree) and reaps it.
pub struct Server {
    child: Child,
    pid: Pid,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    out: LineBuf,
    err: LineBuf,
    reaped: bool,
}

impl Server {
    // The bench starts the processes it measures (the fixture, directly and under
    // `tether wrap`), so it must call Command::spawn itself.
    #[allow(clippy::disallowed_methods)]
    pub fn start(ctx: &Ctx, mode: Mode, capture_stderr: bool, log_info: bool) -> Result<Server> {
        let mut cmd = ctx.command(mode);
        if log_info {
            cmd.env("TETHER_LOG", "info");
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if capture_stderr { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd.spawn().with_context(|| format!("starting {mode:?} server"))?;
        let pid = Pid::from_raw(i32::try_from(child.id()).context("pid out of range")?);
        // Build the guard first, so that any error below still kills and reaps the child.
        let server = Server {
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
            child,
            pid,
            out: LineBuf::new(1 << 16),
            err: LineBuf::new(1 << 12),
            reaped: false,
        };
        let stdin = server.stdin.as_ref().context("no stdin pipe")?;
        set_nonblocking(stdin.as_fd()).context("stdin pipe")?;
        let stdout = server.stdout.as_ref().context("no stdout pipe")?;
        set_nonblocking(stdout.as_fd()).context("stdout pipe")?;
        if let Some(e) = &server.stderr {
            set_nonblocking(e.as_fd()).context("stderr pipe")?;
        }
        Ok(server)
    }

    /// A server in `mode` that has answered `initialize`, ready for calls.
    pub fn initialized(ctx: &Ctx, mode: Mode) -> Result<Server> {
        let mut server = Server::start(ctx, mode, false, false)?;
        let reply = server.call(&initialize_request())?;
        check_initialize(reply)?;
        Ok(server)
    }

    /// The pid of the process started: the fixture, or for a wrapped server the shim.
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Writes one request line and returns the next line the server writes back.
    pub fn call(&mut self, request: &[u8]) -> Result<&[u8]> {
        let deadline = Instant::now() + IO_TIMEOUT;
        let stdin = self.stdin.as_ref().context("stdin already closed")?;
        let stdout = self.stdout.as_ref().context("no stdout pipe")?;
        write_all(stdin.as_fd(), request, deadline).context("writing a request")?;
        self.out.read_line(stdout.as_fd(), deadline).context("reading a reply")
    }

    /// Makes every call of `echoes` in turn, checking each reply, and returns how long each
    /// round trip took after the first `untimed` (warm-up) ones.
    pub fn time_echoes(&mut self, echoes: &Echoes, untimed: usize) -> Result<Vec<Duration>> {
        let mut times = Vec::with_capacity(echoes.requests.len().saturating_sub(untimed));
        for (i, request) in echoes.requests.iter().enumerate() {
            let t0 = Instant::now();
            let reply = self.call(request)?;
            let dt = t0.elapsed();
            echoes.check(reply, i as u64 + 1)?;
            if i >= untimed {
                times.push(dt);
            }
        }
        Ok(times)
    }

    /// Reads stderr lines until the fixture's ready line; returns it and the lines before it.
    pub fn ready_line(&mut self) -> Result<(String, Vec<String>)> {
        let deadline = Instant::now() + IO_TIMEOUT;
        let stderr = self.stderr.as_ref().context("stderr is not captured")?;
        let mut before = Vec::new();
        loop {
            let line = self.err.read_line(stderr.as_fd(), deadline).context("reading stderr")?;
            let line = String::from_utf8_lossy(line).trim_end().to_owned();
            if line.starts_with("tether-fixture: ready ") {
                return Ok((line, before));
            }
            before.push(line);
        }
    }

    /// Closes stdin (the fixture exits on EOF; the shim ends the tree) and waits for the exit.
    /// Returns the exit status and the time from closing stdin to the exit.
    pub fn finish(&mut self) -> Result<(ExitStatus, Duration)> {
        let pid = self.pid;
        let (tx, rx) = mpsc::channel();
        // Waits without reaping (WNOWAIT), so the pid stays ours to kill until `wait` below.
        std::thread::Builder::new()
            .name("exit-waiter".into())
            .spawn(move || {
                let r = loop {
                    match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
                        Err(Errno::EINTR) => continue,
                        r => break r,
                    }
                };
                let _ = tx.send((r.map(drop), Instant::now()));
            })
            .context("starting the exit-waiter thread")?;
        let t0 = Instant::now();
        drop(self.stdin.take());
        let (waited, t1) = rx
            .recv_timeout(EXIT_TIMEOUT)
            .with_context(|| format!("pid {pid} did not exit within {EXIT_TIMEOUT:?} of stdin closing"))?;
        waited.with_context(|| format!("waitid for pid {pid}"))?;
        let status = self.child.wait().with_context(|| format!("reaping pid {pid}"))?;
        self.reaped = true;
        Ok((status, t1.saturating_duration_since(t0)))
    }

    /// [`Server::finish`], requiring a successful exit; returns the teardown time.
    pub fn finish_ok(mut self, mode: Mode) -> Result<Duration> {
        let (status, teardown) = self.finish()?;
        ensure!(status.success(), "{mode:?} server exited with {status}");
        Ok(teardown)
    }

    /// Stderr lines written after the ready line (the process has exited, so this hits EOF).
    pub fn rest_of_stderr(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(stderr) = &self.stderr {
            let deadline = Instant::now() + Duration::from_millis(200);
            while let Ok(line) = self.err.read_line(stderr.as_fd(), deadline) {
                lines.push(String::from_utf8_lossy(line).trim_end().to_owned());
            }
        }
        lines
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        drop(self.stdin.take());
        // The child is not reaped yet, so its pid cannot have been reused.
        let _ = kill(self.pid, Signal::SIGKILL);
        if let Err(e) = self.child.wait() {
            progress(format_args!("warning: reaping pid {} after SIGKILL: {e}", self.pid));
        }
    }
}
