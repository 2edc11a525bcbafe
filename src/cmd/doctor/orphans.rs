//! The doctor's verdict on what a sweep would do: a dry-run [`Report`] turned into orphans, each
//! with the exact `tether reap` command that ends it, and the cookie carriers no ledger row
//! explains.
//!
//! One verdict for one instance: an open row whose shim is dead needs reaping even when its
//! processes are all gone (a watchdog ended them, but only a sweep closes the row), so such an
//! instance is an orphan of its own when no process or cgroup of it is listed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use tether_supervisor::sweep::{self, Action, ActionKind, Report};

use super::Orphan;
use crate::cmd::shell::quote;

/// (orphans, unknown cookie carriers) from a dry-run sweep of the ledger in `state_dir`.
pub fn from_dry_run(report: Report, state_dir: &Path) -> (Vec<Orphan>, Vec<Orphan>) {
    let reap = reap_command(state_dir);
    let (mut orphans, mut unknown) = (Vec::new(), Vec::new());
    let mut closing = Vec::new();
    for a in report.actions {
        match a.kind {
            ActionKind::WouldKill | ActionKind::WouldKillCgroup | ActionKind::WouldKillRemote => {
                orphans.push(orphan(a, reap.clone()));
            }
            ActionKind::WouldReap | ActionKind::WouldCloseLost => closing.push(a),
            ActionKind::SkippedUnknown => unknown.push(unknown_carrier(a)),
            _ => {}
        }
    }
    let listed: HashSet<String> = orphans.iter().map(|o| o.instance.clone()).collect();
    for mut a in closing.into_iter().filter(|a| !listed.contains(&a.instance)) {
        a.reason = match a.kind {
            ActionKind::WouldCloseLost => {
                "recorded in an earlier boot; nothing of it runs now; `tether reap` closes its row".into()
            }
            _ => "shim died; nothing left running; `tether reap` closes its row".into(),
        };
        orphans.push(orphan(a, reap.clone()));
    }
    (orphans, unknown)
}

/// Every cookie carrier, for when the ledger cannot be read: all are unknown.
pub fn carriers_without_ledger() -> Vec<Orphan> {
    sweep::sweep_without_ledger(true)
        .actions
        .into_iter()
        .filter(|a| a.kind == ActionKind::SkippedUnknown)
        .map(unknown_carrier)
        .collect()
}

fn orphan(a: Action, fix: String) -> Orphan {
    Orphan {
        pid: a.pid,
        cgroup: a.cgroup,
        instance: a.instance,
        server: a.server,
        reason: a.reason,
        fix,
    }
}

fn unknown_carrier(a: Action) -> Orphan {
    // No pid, no command: `kill 0` would signal the reader's own process group.
    let fix = match a.pid.filter(|p| *p > 0) {
        Some(pid) => format!(
            "none needed if another Tether owns it (`tether --state-dir <its dir> ps`); else, once `tether ps` confirms it is still that process, kill -s KILL {pid}"
        ),
        None => "none needed if another Tether owns it (`tether --state-dir <its dir> ps`)".into(),
    };
    orphan(a, fix)
}

/// `tether --state-dir DIR reap`, naming this very binary and ledger, so it works as printed.
fn reap_command(dir: &Path) -> String {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("tether"));
    format!("{} --state-dir {} reap", quote(&exe), quote(dir))
}
