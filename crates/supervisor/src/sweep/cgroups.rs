//! Instance cgroups left by dead shims: kill their members, then remove them.
//!
//! Membership in `tether-<instance>` is proof of ownership (only processes forked into it are
//! members), so a recorded cgroup of a dead holder is killed whole. A `tether-*` directory that
//! no ledger row explains is removed only when empty: it may belong to another user's or
//! another state directory's Tether, still running.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::report::{Action, ActionKind};
use crate::cgroup::{self, mounts, NAME_PREFIX};

/// How long a killed cgroup may take to empty before it is reported as stuck.
const EMPTY_PATIENCE: Duration = Duration::from_secs(5);
/// How long an unexplained, empty instance cgroup must have existed to be removed.
const STALE_CGROUP_AGE: Duration = Duration::from_secs(60);

/// Kills every member of `dir` and removes it. Returns how many members it had, or `None`
/// when the directory no longer exists.
pub fn kill_and_remove(dir: &Path) -> Option<Result<usize, String>> {
    if !dir.is_dir() {
        return None;
    }
    let members = cgroup::members_of(dir).len();
    if members > 0 {
        if let Err(e) = cgroup::kill_dir(dir) {
            return Some(Err(format!("cgroup.kill: {e}")));
        }
        cgroup::wait_empty(dir, EMPTY_PATIENCE);
    }
    Some(
        cgroup::remove_dir_when_empty(dir, Duration::from_secs(2))
            .map(|()| members)
            .map_err(|e| format!("rmdir: {e}")),
    )
}

/// `tether-*` directories under the given parents and under this process's own v2 cgroup.
pub fn instance_dirs(parents: impl IntoIterator<Item = PathBuf>) -> Vec<(String, PathBuf)> {
    let mut parents: HashSet<PathBuf> = parents.into_iter().collect();
    if let Ok(loc) = mounts::locate_v2() {
        parents.insert(loc.own_dir);
    }
    let mut found = Vec::new();
    for parent in parents {
        let Ok(entries) = fs::read_dir(&parent) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_prefix(NAME_PREFIX) {
                if crate::ids::is_valid_id(id) && e.path().is_dir() {
                    found.push((id.to_string(), e.path()));
                }
            }
        }
    }
    found
}

/// Removes the `tether-*` directories under `parents` (and this process's own cgroup) that
/// `explained` does not claim, are empty, and have been for a while: a shim creates its cgroup
/// empty and moves the server in a moment later, so only one that stayed empty is stale. An
/// occupied one is never touched, whoever owns it. With `dry_run`, removes nothing.
pub fn remove_stale(
    parents: impl IntoIterator<Item = PathBuf>,
    explained: impl Fn(&str) -> bool,
    dry_run: bool,
) -> Vec<Action> {
    let mut removed = Vec::new();
    for (id, dir) in instance_dirs(parents) {
        if dry_run || explained(&id) {
            continue;
        }
        let old = fs::metadata(&dir)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STALE_CGROUP_AGE));
        if old && cgroup::members_of(&dir).is_empty() && fs::remove_dir(&dir).is_ok() {
            removed.push(Action {
                instance: id,
                server: String::new(),
                kind: ActionKind::CgroupRemoved,
                pid: None,
                cgroup: Some(dir.display().to_string()),
                reason: "empty instance cgroup left behind".into(),
            });
        }
    }
    removed
}
