//! Process file descriptors: a handle to one process that a recycled pid can never alias.
//!
//! Once opened, a pidfd refers to that process for as long as the fd lives: signals sent through
//! it reach that process or fail with ESRCH, never a stranger that took the pid over. The inode
//! of a pidfd (Linux ≥ 6.9, pidfs) is a unique, never reused process identity for the ledger.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::sys::signal::Signal;

/// An open pidfd.
#[derive(Debug)]
pub struct Pidfd {
    /// The fd returned by `pidfd_open`; closed on drop.
    fd: OwnedFd,
    /// The pid it was opened for, for messages.
    pid: i32,
}

impl Pidfd {
    /// Opens a pidfd for `pid`. Who the process is must be checked *after* this call (the pid
    /// may have been recycled before it): see [`Pidfd::is_alive`].
    #[allow(unsafe_code)]
    pub fn open(pid: i32) -> io::Result<Pidfd> {
        // SAFETY: pidfd_open takes two integers and returns a new fd or -1; no memory is shared.
        let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        let raw = i32::try_from(ret).map_err(|_| io::Error::other("pidfd_open returned a bad fd"))?;
        // SAFETY: the kernel just returned `raw` as a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(Pidfd { fd, pid })
    }

    /// The pid this pidfd was opened for.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `signal` to exactly this process. `Ok(false)` when it has already been reaped.
    pub fn signal(&self, signal: Signal) -> io::Result<bool> {
        self.raw_signal(signal as i32)
    }

    /// True while the process has not exited. A zombie counts as exited: a pidfd becomes
    /// readable at exit, before the reap (signal 0 would still succeed on a zombie).
    pub fn is_alive(&self) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout};
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, PollTimeout::ZERO) {
            Ok(0) => true,
            Ok(_) => false,
            // Cannot tell: err on the side of "alive", so nothing is declared dead too early.
            Err(_) => true,
        }
    }

    /// The pidfs inode: a process identity that is never reused on this boot (Linux ≥ 6.9; on
    /// older kernels it is not unique, see [`pidfs_inodes_are_unique`]).
    pub fn inode(&self) -> io::Result<u64> {
        Ok(nix::sys::stat::fstat(self.fd.as_fd())?.st_ino)
    }

    #[allow(unsafe_code)]
    fn raw_signal(&self, signal: i32) -> io::Result<bool> {
        // SAFETY: pidfd_send_signal with a null siginfo and no flags reads no memory of ours.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if ret == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ESRCH) => Ok(false),
            _ => Err(err),
        }
    }
}

impl AsFd for Pidfd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Waits until every process in `fds` has exited, or `patience` runs out; true when all did.
/// Sleeps in `poll` on the pidfds themselves (readable at exit), so it wakes at each death.
pub fn wait_all_exited(fds: &[Pidfd], patience: std::time::Duration) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout};
    let deadline = std::time::Instant::now() + patience;
    loop {
        let mut alive: Vec<PollFd<'_>> = fds
            .iter()
            .filter(|f| f.is_alive())
            .map(|f| PollFd::new(f.as_fd(), PollFlags::POLLIN))
            .collect();
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if alive.is_empty() {
            return true;
        }
        if left.is_zero() {
            return false;
        }
        let ms = PollTimeout::try_from(left.as_millis().max(1)).unwrap_or(PollTimeout::MAX);
        // An error (EINTR) just goes round again; the deadline bounds the loop.
        let _ = nix::poll::poll(&mut alive, ms);
    }
}

/// True when this kernel has pidfds at all.
pub fn supported() -> bool {
    Pidfd::open(std::process::id() as i32).is_ok()
}

/// True when pidfd inodes are unique process identities (pidfs, Linux ≥ 6.9): on older kernels
/// every pidfd shares one anonymous inode.
pub fn pidfs_inodes_are_unique() -> bool {
    let own = Pidfd::open(std::process::id() as i32).and_then(|p| p.inode());
    let init = Pidfd::open(1).and_then(|p| p.inode());
    matches!((own, init), (Ok(a), Ok(b)) if a != b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_pidfd_is_alive_and_has_an_inode() {
        let me = Pidfd::open(std::process::id() as i32).unwrap();
        assert!(me.is_alive());
        assert!(me.inode().unwrap() > 0);
    }

    #[test]
    fn unknown_pid_is_an_error() {
        // pid_max is at most 2^22, so this pid cannot exist.
        assert!(Pidfd::open(i32::MAX - 1).is_err());
    }
}
