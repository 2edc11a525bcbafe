//! The shim's end of the lifeline: an fd inherited from a supervising process (the gateway,
//! through [`crate::launch`]) whose EOF means "end the instance now".
//!
//! The supervisor keeps the write end, close-on-exec, so only the death of the supervisor or
//! its decision closes it. The fd number arrives on the command line (`--lifeline-fd`); it is
//! taken over here exactly once, as an [`OwnedFd`], and borrowed safely from then on.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};

use super::ShimError;

/// Set once an inherited fd was taken over: a second [`OwnedFd`] for the same fd would close it
/// twice.
static ADOPTED: AtomicBool = AtomicBool::new(false);

/// Takes ownership of the inherited lifeline `fd` and makes it close-on-exec (the server must
/// not hold it: its EOF must mean the supervisor is gone). May be called once per process.
pub fn adopt_inherited(fd: RawFd) -> Result<OwnedFd, ShimError> {
    let bad = |why: &str| ShimError::BadLifeline {
        fd,
        why: why.to_string(),
    };
    if fd <= 2 {
        return Err(bad("must be above 2 (0-2 are the server's stdio)"));
    }
    #[allow(unsafe_code)]
    // SAFETY: F_GETFD only reads the flags of an fd number; it touches no memory of ours.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(bad("not an open file descriptor"));
    }
    if ADOPTED.swap(true, Ordering::SeqCst) {
        return Err(bad("a lifeline was already taken over in this process"));
    }
    #[allow(unsafe_code)]
    // SAFETY: the fd is open (checked above) and was handed to this process by its parent for
    // the shim's sole use; nothing else in the process owns it, and the flag above makes this
    // the only `OwnedFd` ever made from an inherited fd here.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let cloexec = FdFlag::from_bits_truncate(flags) | FdFlag::FD_CLOEXEC;
    fcntl(&owned, FcntlArg::F_SETFD(cloexec)).map_err(|e| bad(&format!("setting close-on-exec: {e}")))?;
    Ok(owned)
}
