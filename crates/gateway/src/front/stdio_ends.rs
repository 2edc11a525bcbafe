//! The stdio front door's two ends, stdin and stdout, read and written on the runtime's own
//! thread when they are pipes.
//!
//! Tokio's `stdin()` and `stdout()` hand every read and write to a blocking thread, because a
//! terminal or a file cannot wait in epoll: a round trip through `tether serve --stdio` then
//! cost two thread hand-offs and about ten futex calls on top of the work (measured with
//! `strace -c`: futex was three quarters of the gateway's system time). A client that runs
//! Tether as its server gives it pipes, which can: they are set non-blocking and registered
//! with the runtime, as a server's pipes are. Anything else (a terminal, a file, a socket)
//! keeps tokio's blocking ends, which work everywhere. Non-blocking is a property of the pipe's
//! open description, shared with whoever else holds the same end: a client gives its server
//! ends of its own, so nobody else sees it; a shell that lets several commands write one pipe
//! in turn (`(tether serve --stdio; echo) | …`) sees it after the gateway exits.

use std::os::fd::AsFd;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::unix::pipe;

/// What the client writes to the gateway.
pub type Input = Box<dyn AsyncRead + Unpin + Send>;
/// What the gateway writes to the client.
pub type Output = Box<dyn AsyncWrite + Unpin + Send>;

/// Stdin: the pipe itself when it is one, else tokio's blocking reader.
pub fn input() -> Input {
    let pipe = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Receiver::from_owned_fd);
    match pipe {
        Ok(p) => Box::new(p),
        Err(e) => {
            tracing::debug!("stdin is read on a blocking thread (not a pipe: {e})");
            Box::new(tokio::io::stdin())
        }
    }
}

/// Stdout: the pipe itself when it is one, else tokio's blocking writer.
pub fn output() -> Output {
    let pipe = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Sender::from_owned_fd);
    match pipe {
        Ok(p) => Box::new(p),
        Err(e) => {
            tracing::debug!("stdout is written on a blocking thread (not a pipe: {e})");
            Box::new(tokio::io::stdout())
        }
    }
}
