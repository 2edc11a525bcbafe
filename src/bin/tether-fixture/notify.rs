//! Collecting sleeper readiness notices from the notify pipe.
//!
//! Each sleeper writes one `<pid> <kind>\n` line. The fixture waits for all of
//! them, with a deadline, so tests never start teardown before the whole zoo exists.

use crate::args::SleeperKind;
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

/// One sleeper's confirmation that it has started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Notice {
    pub kind: SleeperKind,
    pub pid: i32,
}

impl Notice {
    /// Parses a `<pid> <kind>` line (without its newline).
    pub fn parse(line: &[u8]) -> Result<Self> {
        let text = std::str::from_utf8(line).context("notify line is not UTF-8")?;
        let (pid, kind) = text
            .split_once(' ')
            .with_context(|| format!("malformed notify line {text:?}"))?;
        let pid: i32 = pid
            .parse()
            .with_context(|| format!("bad pid in notify line {text:?}"))?;
        if pid <= 0 {
            bail!("bad pid in notify line {text:?}");
        }
        let kind = SleeperKind::from_name(kind).with_context(|| format!("unknown kind in notify line {text:?}"))?;
        Ok(Notice { kind, pid })
    }
}

/// Reads notices from `read` into `out` until `expected` have arrived.
///
/// Fails on timeout, on EOF first (a sleeper died, or every writer is gone),
/// or on a malformed line. `out` keeps whatever arrived, for cleanup.
pub fn collect(read: &OwnedFd, expected: usize, timeout: Duration, out: &mut Vec<Notice>) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < expected {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!(
                "timed out after {timeout:?}: {} of {expected} sleepers reported ready",
                out.len()
            );
        }
        let wait = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(read.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, wait) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(e).context("polling the notify pipe"),
        }
        let n = match nix::unistd::read(read, &mut buf) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("reading the notify pipe"),
        };
        if n == 0 {
            bail!(
                "notify pipe closed: only {} of {expected} sleepers reported ready",
                out.len()
            );
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            out.push(Notice::parse(&line[..end])?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_notice_lines() {
        let n = Notice::parse(b"123 env-i").unwrap();
        assert_eq!(
            n,
            Notice {
                kind: SleeperKind::EnvI,
                pid: 123
            }
        );
        assert!(Notice::parse(b"123").is_err());
        assert!(Notice::parse(b"x group").is_err());
        assert!(Notice::parse(b"0 group").is_err());
        assert!(Notice::parse(b"5 nope").is_err());
    }

    #[test]
    fn collects_split_writes_and_times_out() {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        nix::unistd::write(&w, b"10 group\n20 set").unwrap();
        nix::unistd::write(&w, b"sid\n").unwrap();
        let mut out = Vec::new();
        collect(&r, 2, Duration::from_secs(5), &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[1],
            Notice {
                kind: SleeperKind::Setsid,
                pid: 20
            }
        );

        let mut more = Vec::new();
        let err = collect(&r, 1, Duration::from_millis(50), &mut more).unwrap_err();
        assert!(err.to_string().contains("timed out"), "{err}");
        drop(w);
        let err = collect(&r, 1, Duration::from_secs(5), &mut more).unwrap_err();
        assert!(err.to_string().contains("closed"), "{err}");
    }
}
