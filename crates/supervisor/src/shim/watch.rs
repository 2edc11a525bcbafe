//! What the shim watches, and the one `poll` that waits on all of it.
//!
//! The shim never reads or writes the client's pipes: the server inherited them. It still sees
//! the client go: `poll` with no requested events reports POLLHUP on stdin's read end once every
//! writer is gone, and POLLERR on stdout's write end once every reader is gone, with data still
//! buffered or not. The parent is watched through a pidfd (not `PR_SET_PDEATHSIG`, which fires
//! when the spawning *thread* exits); a gateway instead hands over a lifeline fd whose EOF means
//! "end it now", and the shim then holds no copy of the server's stdin and stdout at all
//! ([`let_go_of_server_stdio`]).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::stat::{fstat, SFlag};

use crate::process::pidfd::Pidfd;
use crate::shim::signals::{Arrived, Signals};

/// Something that happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A signal reached the shim.
    Signal(Arrived),
    /// Every writer of stdin is gone.
    StdinClosed,
    /// Every reader of stdout is gone.
    StdoutClosed,
    /// The process that started the shim exited.
    ParentExited,
    /// The lifeline's write end was closed.
    LifelineClosed,
    /// One of the caller's extra fds is ready.
    Ready,
}

/// How often the parent is re-checked when no pidfd can watch it.
const PARENT_POLL: Duration = Duration::from_millis(200);

/// Which client-side ends to watch.
pub struct Watch {
    /// Watch fd 0 for hang-up (off when a lifeline replaces it, or stdin is not a pipe/socket/tty).
    stdin: Option<PollFlags>,
    /// Watch fd 1 for a vanished reader.
    stdout: bool,
    /// The lifeline's read end, if any.
    lifeline: Option<OwnedFd>,
    /// The parent: its pid at start and, where supported, a pidfd on it.
    parent: Option<(i32, Option<Pidfd>)>,
    /// Under a keeper: the link's read end, whose EOF stands for the parent's exit (see
    /// `super::keeper`).
    keeper: Option<OwnedFd>,
}

/// How an fd may report a hang-up.
fn hangup_events(fd: BorrowedFd<'_>, is_input: bool) -> Option<PollFlags> {
    let st = fstat(fd).ok()?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if kind == SFlag::S_IFIFO || (kind == SFlag::S_IFCHR && is_input) {
        // Pipes report POLLHUP/POLLERR unasked; ttys POLLHUP on hang-up; other character
        // devices (/dev/null) report nothing, harmlessly.
        Some(PollFlags::empty())
    } else if kind == SFlag::S_IFSOCK {
        // A socket's peer closing its write side is POLLRDHUP, which must be asked for.
        Some(if is_input {
            PollFlags::from_bits_retain(libc::POLLRDHUP)
        } else {
            PollFlags::empty()
        })
    } else {
        None
    }
}

impl Watch {
    /// Sets up the watches. With a lifeline, stdin and stdout are left to the gateway that owns
    /// them; without one, they are the client's and are watched.
    pub fn new(lifeline: Option<OwnedFd>, parent: Option<(i32, Option<Pidfd>)>) -> Watch {
        let (stdin, stdout) = if lifeline.is_some() {
            (None, false)
        } else {
            let stdin = hangup_events(io::stdin().as_fd(), true);
            let stdout = hangup_events(io::stdout().as_fd(), false).is_some();
            (stdin, stdout)
        };
        Watch {
            stdin,
            stdout,
            lifeline,
            parent,
            keeper: None,
        }
    }

    /// The keeper's watch: its parent alone (the client's pipes are the shim's to watch).
    pub fn parent_only(parent: Option<(i32, Option<Pidfd>)>) -> Watch {
        Watch {
            stdin: None,
            stdout: false,
            lifeline: None,
            parent,
            keeper: None,
        }
    }

    /// Watches the keeper's link instead of a parent: the keeper is the shim's parent, and it
    /// closes the link when its own parent is gone, or dies.
    pub fn under_keeper(mut self, link: OwnedFd) -> Watch {
        self.parent = None;
        self.keeper = Some(link);
        self
    }

    /// True when the parent was already gone when the watch started.
    pub fn parent_already_gone(&self) -> bool {
        matches!(&self.parent, Some((ppid, _)) if nix::unistd::getppid().as_raw() != *ppid)
    }

    /// Waits up to `timeout` (forever when None), or until one of `extra` is ready, and returns
    /// what happened. A watch that fired is removed, so level-triggered hang-ups are reported
    /// once; `extra` is the caller's to re-arm.
    pub fn wait(
        &mut self,
        signals: &mut Signals,
        timeout: Option<Duration>,
        extra: &[(BorrowedFd<'_>, PollFlags)],
    ) -> io::Result<Vec<Event>> {
        let timeout = match (&self.parent, timeout) {
            (Some((_, None)), t) => Some(t.map_or(PARENT_POLL, |t| t.min(PARENT_POLL))),
            (_, t) => t,
        };
        let stdin = io::stdin();
        let stdout = io::stdout();

        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        let mut kinds = vec![None];
        if let Some(ev) = self.stdin {
            fds.push(PollFd::new(stdin.as_fd(), ev));
            kinds.push(Some(Event::StdinClosed));
        }
        if self.stdout {
            fds.push(PollFd::new(stdout.as_fd(), PollFlags::empty()));
            kinds.push(Some(Event::StdoutClosed));
        }
        if let Some(fd) = &self.lifeline {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::empty()));
            kinds.push(Some(Event::LifelineClosed));
        }
        if let Some((_, Some(pidfd))) = &self.parent {
            fds.push(PollFd::new(pidfd.as_fd(), PollFlags::POLLIN));
            kinds.push(Some(Event::ParentExited));
        }
        if let Some(fd) = &self.keeper {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::empty()));
            kinds.push(Some(Event::ParentExited));
        }
        for (fd, ev) in extra {
            fds.push(PollFd::new(*fd, *ev));
            kinds.push(Some(Event::Ready));
        }

        let poll_timeout = match timeout {
            None => PollTimeout::NONE,
            // Rounded up: rounding down would wake up early and spin until the deadline.
            Some(t) => {
                PollTimeout::try_from(t.as_micros().div_ceil(1000).min(60_000) as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        match nix::poll::poll(&mut fds, poll_timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return Ok(Vec::new()),
            Err(e) => return Err(io::Error::other(format!("poll: {e}"))),
        }

        let mut events = Vec::new();
        let mut signals_ready = false;
        for (pfd, kind) in fds.iter().zip(&kinds) {
            let fired = pfd.revents().is_some_and(|r| !r.is_empty());
            match kind {
                None if fired => signals_ready = true,
                Some(ev) if fired && !events.contains(ev) => events.push(*ev),
                _ => {}
            }
        }
        drop(fds);
        if signals_ready {
            events.extend(signals.drain().into_iter().map(Event::Signal));
        }
        if self.parent_already_gone() && !events.contains(&Event::ParentExited) {
            events.push(Event::ParentExited);
        }
        for ev in &events {
            match ev {
                Event::StdinClosed => self.stdin = None,
                Event::StdoutClosed => self.stdout = false,
                Event::LifelineClosed => self.lifeline = None,
                Event::ParentExited => {
                    self.parent = None;
                    self.keeper = None;
                }
                Event::Signal(_) | Event::Ready => {}
            }
        }
        Ok(events)
    }
}

/// Lets go of fds 0 and 1 once the server holds them, for a shim with a lifeline (the
/// gateway's: it watches neither, see [`Watch::new`]), and for a keeper (which never does). They are the gateway's pipes to the
/// server; a copy held here would keep them open past the server's own close, so a server
/// that closes its stdout and lives on would never show the gateway an end of file (nor one
/// that stops reading stdin a closed pipe). /dev/null takes their place, so fds 0 and 1 are
/// never reused for something else.
pub fn let_go_of_server_stdio() -> io::Result<()> {
    let null = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&null)?;
    Ok(())
}

/// Captures the parent, as the very first thing the shim does (a client that dies while the shim
/// sets up must still be noticed): a pidfd opened *before* re-checking `getppid` (see
/// [`Watch::parent_already_gone`]), so that a parent that died, and whose pid was recycled, in
/// between is noticed rather than confused with a stranger.
pub fn watch_parent(use_pidfd: bool) -> Option<(i32, Option<Pidfd>)> {
    let ppid = nix::unistd::getppid().as_raw();
    if ppid <= 1 {
        // Started by init or across a pid namespace: no parent to outlive.
        return None;
    }
    let fd = if use_pidfd { Pidfd::open(ppid).ok() } else { None };
    Some((ppid, fd))
}
