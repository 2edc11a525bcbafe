//! Who a process is, in a form that outlives the process and can be checked later.
//!
//! A pid alone means nothing once its process is gone: the kernel hands it to the next fork.
//! The ledger therefore records, for every process Tether started, the pid together with
//! something a recycled pid cannot share: the pidfs inode (Linux ≥ 6.9, never reused within a
//! boot) where the kernel has it, and the start time in clock ticks since boot everywhere.
//! The boot id (kept per ledger row) rules out the previous boots. [`ProcessIdentity::check`]
//! re-opens the process through a pidfd and compares, so whatever it returns as ours can then
//! be signalled through that very pidfd with no window for reuse.

use std::sync::OnceLock;

use super::pidfd::{self, Pidfd};
use super::procfs;

/// The identity of one process, as recorded at spawn or adoption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessIdentity {
    /// The pid.
    pub pid: i32,
    /// Start time in clock ticks since boot (`/proc/PID/stat` field 22).
    pub start_ticks: u64,
    /// The pidfs inode, where inodes are unique process identities.
    pub pidfs_inode: Option<u64>,
}

/// What a recorded identity turned out to be, now.
#[derive(Debug)]
pub enum Check {
    /// The same process, alive; signal it through this pidfd.
    Same(Pidfd),
    /// No live process has this pid (or only a zombie of ours that cannot be signalled).
    Gone,
    /// The pid is alive but belongs to another process: never signal it.
    Stranger {
        /// What did not match, for reports.
        why: String,
    },
}

/// True when this kernel gives every process its own pidfs inode (probed once).
pub fn inodes_are_unique() -> bool {
    static UNIQUE: OnceLock<bool> = OnceLock::new();
    *UNIQUE.get_or_init(pidfd::pidfs_inodes_are_unique)
}

impl ProcessIdentity {
    /// Reads the identity of a live process. `None` when it is gone (or gone mid-read: the
    /// facts are only returned if the process was still alive after they were read).
    pub fn of(pid: i32) -> Option<ProcessIdentity> {
        match Pidfd::open(pid) {
            Ok(fd) => Self::through(&fd),
            // No pidfds on this kernel: the start time is the identity.
            Err(_) if !pidfd::supported() => Some(ProcessIdentity {
                pid,
                start_ticks: procfs::start_time_of(pid)?,
                pidfs_inode: None,
            }),
            Err(_) => None,
        }
    }

    /// Reads the identity of the process held by `fd`.
    pub fn through(fd: &Pidfd) -> Option<ProcessIdentity> {
        let start_ticks = procfs::start_time_of(fd.pid())?;
        let pidfs_inode = if inodes_are_unique() { fd.inode().ok() } else { None };
        // Alive after the read: the stat read was of this very process, not a successor.
        fd.is_alive().then_some(ProcessIdentity {
            pid: fd.pid(),
            start_ticks,
            pidfs_inode,
        })
    }

    /// This process's own identity.
    pub fn of_self() -> Option<ProcessIdentity> {
        Self::of(std::process::id() as i32)
    }

    /// Re-opens the process and compares it with this recorded identity.
    pub fn check(&self) -> Check {
        let fd = match Pidfd::open(self.pid) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Check::Gone,
            Err(e) if pidfd::supported() => {
                return Check::Stranger {
                    why: format!("pid {} cannot be opened: {e}", self.pid),
                }
            }
            Err(_) => {
                return Check::Stranger {
                    why: "this kernel has no pidfds, so the process cannot be signalled safely".into(),
                }
            }
        };
        if !fd.is_alive() {
            return Check::Gone;
        }
        let Some(now) = Self::through(&fd) else {
            return Check::Gone;
        };
        match (self.pidfs_inode, now.pidfs_inode) {
            (Some(was), Some(is)) if was != is => Check::Stranger {
                why: format!("pid {} now has pidfs inode {is}, recorded {was}", self.pid),
            },
            _ if now.start_ticks != self.start_ticks => Check::Stranger {
                why: format!(
                    "pid {} now started at tick {}, recorded {}",
                    self.pid, now.start_ticks, self.start_ticks
                ),
            },
            _ => Check::Same(fd),
        }
    }

    /// True when the process is alive and is the one recorded.
    pub fn is_alive(&self) -> bool {
        matches!(self.check(), Check::Same(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{require, Feature};

    #[test]
    fn own_identity_checks_out() {
        let me = ProcessIdentity::of_self().expect("own identity");
        assert!(matches!(me.check(), Check::Same(_)));
    }

    #[test]
    fn another_start_time_is_a_stranger() {
        let mut me = ProcessIdentity::of_self().expect("own identity");
        me.start_ticks += 1;
        me.pidfs_inode = None;
        assert!(matches!(me.check(), Check::Stranger { .. }));
    }

    #[test]
    fn another_inode_is_a_stranger() {
        if !require(
            Feature::Pidfs,
            "skipping: another_start_time_is_a_stranger covers this kernel",
        ) {
            return;
        }
        let mut me = ProcessIdentity::of_self().expect("own identity");
        let inode = me.pidfs_inode.expect("pidfs gives every process its inode");
        me.pidfs_inode = Some(inode + 1);
        assert!(matches!(me.check(), Check::Stranger { .. }));
    }

    #[test]
    fn missing_pid_is_gone() {
        let ghost = ProcessIdentity {
            pid: i32::MAX - 1,
            start_ticks: 1,
            pidfs_inode: None,
        };
        assert!(matches!(ghost.check(), Check::Gone));
    }
}
