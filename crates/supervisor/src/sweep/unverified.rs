//! What a sweep can still do when the ledger cannot be read (damaged, or no state directory).
//!
//! Only the ledger proves that a process was started by this Tether: a cookie in an
//! environment does not (another state directory's Tether, still running, may own it, and any
//! process can set the variable). So without the ledger nothing is killed. The `/proc` cookie
//! pass becomes a report of who carries a cookie. No cgroup is touched either, not even an
//! empty one: only a ledger's row proves a `tether-*` cgroup this Tether's, and the sweep of the
//! state directory that owns it is the one to remove it and say so.

use super::cookies;
use super::report::{Action, ActionKind, Report};
use crate::process::procfs;

/// Reports every cookie carrier; kills nothing, removes nothing.
pub fn sweep_without_ledger(dry_run: bool) -> Report {
    let mut report = Report {
        // Only for the record: without the ledger's rows, nothing here depends on the boot.
        boot_id: procfs::boot_id().unwrap_or_default(),
        dry_run,
        ..Report::default()
    };
    let mut carriers: Vec<(String, Vec<i32>)> = cookies::carriers_by_instance().into_iter().collect();
    carriers.sort();
    for (id, mut pids) in carriers {
        pids.sort_unstable();
        for pid in pids {
            report.push(Action {
                instance: id.clone(),
                server: String::new(),
                kind: ActionKind::SkippedUnknown,
                pid: Some(pid),
                cgroup: None,
                reason:
                    "carries a Tether cookie, but without the ledger nothing proves this Tether started it; left alone"
                        .into(),
            });
        }
    }
    report
}
