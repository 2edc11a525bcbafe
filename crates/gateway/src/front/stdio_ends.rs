//! The stdio front door's two ends, stdin and stdout, read and written on the runtime's own
//! thread when they are pipes or sockets.
//!
//! Tokio's `stdin()` and `stdout()` hand every read and write to a blocking thread, because a
//! terminal or a file cannot wait in epoll: a round trip through `tether serve --stdio` then
//! cost two thread hand-offs and about ten futex calls on top of the work (measured with
//! `strace -c`: futex was three quarters of the gateway's system time). A client that runs
//! Tether as its server gives it pipes, or (Node's `child_process`, hence Electron apps) a
//! socketpair, which can: they are set non-blocking and registered with the runtime, as a
//! server's pipes are. Anything else (a terminal, a file) keeps tokio's blocking ends, which
//! work everywhere. Non-blocking is a property of the pipe's or socket's open description,
//! shared with whoever else holds the same end: a client gives its server ends of its own, so
//! nobody else sees it; a shell that lets several commands write one pipe in turn (`(tether
//! serve --stdio; echo) | …`) sees it after the gateway exits.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::unix::pipe;

/// What the client writes to the gateway.
pub type Input = Box<dyn AsyncRead + Unpin + Send>;
/// What the gateway writes to the client.
pub type Output = Box<dyn AsyncWrite + Unpin + Send>;

/// What one of the stdio fds is, as far as the runtime can wait on it.
enum End {
    Pipe(OwnedFd),
    Socket(tokio::net::UnixStream),
}

/// A copy of `fd` the runtime can wait on, or why not.
fn end(fd: BorrowedFd<'_>) -> std::io::Result<End> {
    let file = std::fs::File::from(fd.try_clone_to_owned()?);
    let kind = file.metadata()?.file_type();
    if kind.is_fifo() {
        Ok(End::Pipe(file.into()))
    } else if kind.is_socket() {
        let socket = std::os::unix::net::UnixStream::from(OwnedFd::from(file));
        socket.set_nonblocking(true)?;
        Ok(End::Socket(tokio::net::UnixStream::from_std(socket)?))
    } else {
        Err(std::io::Error::other("neither a pipe nor a socket"))
    }
}

/// Stdin: the pipe or socket itself when it is one, else tokio's blocking reader.
pub fn input() -> Input {
    let end = end(std::io::stdin().as_fd()).and_then(|e| match e {
        End::Pipe(fd) => Ok(Box::new(pipe::Receiver::from_owned_fd(fd)?) as Input),
        End::Socket(s) => Ok(Box::new(s) as Input),
    });
    end.unwrap_or_else(|e| {
        tracing::debug!("stdin is read on a blocking thread ({e})");
        Box::new(tokio::io::stdin())
    })
}

/// Stdout: the pipe or socket itself when it is one, else tokio's blocking writer.
pub fn output() -> Output {
    let end = end(std::io::stdout().as_fd()).and_then(|e| match e {
        End::Pipe(fd) => Ok(Box::new(pipe::Sender::from_owned_fd(fd)?) as Output),
        End::Socket(s) => Ok(Box::new(s) as Output),
    });
    end.unwrap_or_else(|e| {
        tracing::debug!("stdout is written on a blocking thread ({e})");
        Box::new(tokio::io::stdout())
    })
}
