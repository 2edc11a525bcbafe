//! Pidfds on this host: can Tether hold a process by a handle a recycled pid cannot alias, and
//! are pidfd inodes unique identities for the ledger (pidfs, Linux ≥ 6.9)?
//!
//! Both are tried for real through [`crate::process::pidfd`]: a seccomp profile can refuse
//! `pidfd_open` on a kernel that has it.

use crate::process::pidfd::{self, Pidfd};

use super::kernel::KernelFacts;
use crate::host::check::{Check, CheckId, Status};

/// Whether `pidfd_open` works, tried on this process.
pub fn check_pidfd(kernel: Option<&KernelFacts>) -> Check {
    let me = std::process::id() as i32;
    match Pidfd::open(me) {
        Ok(_) => Check::ok(CheckId::Pidfd, format!("pidfd_open({me}) returned a pidfd")),
        Err(e) => {
            let detail = format!("pidfd_open({me}): {e}");
            let advice = match (e.raw_os_error(), kernel.and_then(|k| k.has("pidfd_open"))) {
                (Some(libc::ENOSYS), Some(false)) => "upgrade to Linux ≥ 5.3".to_string(),
                _ => "allow pidfd_open and pidfd_send_signal in the seccomp profile of the sandbox or container, \
                      or run Tether outside it"
                    .to_string(),
            };
            Check::not_ok(CheckId::Pidfd, Status::Missing, detail, advice)
        }
    }
}

/// Whether pidfd inodes are unique, by [`pidfd::pidfs_inodes_are_unique`], with the inodes it
/// compared for the report.
pub fn check_pidfs() -> Check {
    let me = std::process::id() as i32;
    let inode = |pid: i32| {
        Pidfd::open(pid)
            .and_then(|p| p.inode())
            .map_or_else(|e| format!("error: {e}"), |i| i.to_string())
    };
    let compared = format!(
        "fstat of pidfds: pid {me} has inode {}, pid 1 has inode {}",
        inode(me),
        inode(1)
    );
    if pidfd::pidfs_inodes_are_unique() {
        return Check::ok(
            CheckId::PidfsInodes,
            format!("{compared}: distinct, so pidfs is in use"),
        );
    }
    let why = if me == 1 {
        "cannot tell: this process is pid 1, so both pidfds are of the same process"
    } else {
        "not distinct (or not available): every pidfd shares one anonymous inode"
    };
    Check::not_ok(
        CheckId::PidfsInodes,
        Status::Degraded,
        format!("{compared}: {why}"),
        "upgrade to Linux ≥ 6.9 (pidfs); until then identities are (boot id, pid, start time), which collide when \
         a pid is reused within one clock tick",
    )
}
