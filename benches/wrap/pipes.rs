//! Non-blocking, deadline-bound I/O on a child's pipes.
//!
//! A server that stops answering must fail the bench within [`IO_TIMEOUT`], not hang it, so
//! every read and write polls with a deadline; [`LineBuf`] reuses one buffer so that reading
//! a reply costs the same whatever its size.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// Longest wait for one reply, one write, or the ready line.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

pub fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).context("F_GETFL")?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).context("F_SETFL O_NONBLOCK")?;
    Ok(())
}

/// Waits until `fd` is ready for `events`, or fails at `deadline`.
fn wait_ready(fd: BorrowedFd<'_>, events: PollFlags, deadline: Instant) -> Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    ensure!(!left.is_zero(), "timed out after {IO_TIMEOUT:?}");
    let timeout = PollTimeout::try_from(left.max(Duration::from_millis(1))).unwrap_or(PollTimeout::MAX);
    let mut fds = [PollFd::new(fd, events)];
    match poll(&mut fds, timeout) {
        Ok(_) | Err(Errno::EINTR) => Ok(()),
        Err(e) => Err(e).context("poll"),
    }
}

/// Writes all of `data` to a non-blocking fd, polling when the pipe is full.
pub fn write_all(fd: BorrowedFd<'_>, mut data: &[u8], deadline: Instant) -> Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EAGAIN) => wait_ready(fd, PollFlags::POLLOUT, deadline)?,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e).context("write"),
        }
    }
    Ok(())
}

/// A line reader over a non-blocking fd that reuses one buffer.
pub struct LineBuf {
    buf: Vec<u8>,
    /// Start of the unconsumed bytes.
    pos: usize,
    /// End of the bytes read.
    filled: usize,
    /// Bytes before this index (from `pos`) hold no newline.
    scanned: usize,
}

impl LineBuf {
    pub fn new(capacity: usize) -> LineBuf {
        LineBuf {
            buf: vec![0; capacity],
            pos: 0,
            filled: 0,
            scanned: 0,
        }
    }

    /// The next line, newline included.
    pub fn read_line(&mut self, fd: BorrowedFd<'_>, deadline: Instant) -> Result<&[u8]> {
        loop {
            if let Some(i) = self.buf[self.scanned..self.filled].iter().position(|&b| b == b'\n') {
                let (start, end) = (self.pos, self.scanned + i + 1);
                self.pos = end;
                self.scanned = end;
                return Ok(&self.buf[start..end]);
            }
            self.scanned = self.filled;
            if self.pos == self.filled {
                (self.pos, self.filled, self.scanned) = (0, 0, 0);
            } else if self.filled == self.buf.len() && self.pos > 0 {
                self.buf.copy_within(self.pos..self.filled, 0);
                (self.filled, self.scanned) = (self.filled - self.pos, self.scanned - self.pos);
                self.pos = 0;
            }
            if self.filled == self.buf.len() {
                let len = self.buf.len() * 2;
                self.buf.resize(len, 0);
            }
            match nix::unistd::read(fd, &mut self.buf[self.filled..]) {
                Ok(0) => bail!("unexpected end of file"),
                Ok(n) => self.filled += n,
                Err(Errno::EAGAIN) => wait_ready(fd, PollFlags::POLLIN, deadline)?,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e).context("read"),
            }
        }
    }
}
