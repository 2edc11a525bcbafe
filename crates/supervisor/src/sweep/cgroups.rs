//! Instance cgroups left by dead shims: kill their members, then remove them.
//!
//! Membership in `tether-<instance>` is proof of ownership (only processes forked into it are
//! members), so a recorded cgroup of a dead holder is killed whole, with the instance cgroups
//! nested in it. A sweep acts only on the cgroups its own ledger's rows name: a `tether-*`
//! directory no row of that ledger names belongs to another user's or another state directory's
//! Tether, maybe still running, and is left alone even when empty (its own sweep is the one to
//! find it, and to report it).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::report::{Action, ActionKind};
use crate::cgroup::{self, mounts};

/// How long a killed cgroup may take to empty before it is reported as stuck.
const EMPTY_PATIENCE: Duration = Duration::from_secs(5);
/// How long an unexplained, empty instance cgroup must have existed to be removed.
const STALE_CGROUP_AGE: Duration = Duration::from_secs(60);

/// Kills every member of `dir` and of the instance cgroups nested in it (those of shims that
/// ran inside the instance and died with it), then removes them all, deepest first. Returns how
/// many members there were, or `None` when the directory no longer exists.
pub fn kill_and_remove(dir: &Path) -> Option<Result<usize, String>> {
    if !dir.is_dir() {
        return None;
    }
    let members = members_in_tree(dir);
    // `populated` also sees members of cgroups below that are not Tether's, which
    // `cgroup.kill` reaches as well.
    if members > 0 || cgroup::populated(dir) {
        if let Err(e) = cgroup::kill_dir(dir) {
            return Some(Err(format!("writing {}/cgroup.kill: {e}", dir.display())));
        }
        cgroup::wait_empty(dir, EMPTY_PATIENCE);
    }
    Some(
        cgroup::remove_tree_when_empty(dir, Duration::from_secs(2))
            .map(|()| members)
            .map_err(|e| e.to_string()),
    )
}

/// How many processes are in `dir` and in the instance cgroups nested in it (`cgroup.procs`
/// lists only a cgroup's own members).
pub fn members_in_tree(dir: &Path) -> usize {
    let nested = cgroup::nested_instance_dirs(dir);
    nested
        .iter()
        .map(PathBuf::as_path)
        .chain([dir])
        .map(|d| cgroup::members_of(d).len())
        .sum()
}

/// Removes an instance cgroup of a row that no longer runs, with the instance cgroups nested in
/// it, when nothing at all is in it. True when it was removed.
pub fn remove_if_unpopulated(dir: &Path) -> bool {
    // Populated counts the members of every cgroup below: a live shim inside makes it so.
    !cgroup::populated(dir) && cgroup::remove_tree_when_empty(dir, Duration::ZERO).is_ok()
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
            if let Some(id) = cgroup::instance_id_of(&e.file_name()) {
                if e.path().is_dir() {
                    found.push((id.to_string(), e.path()));
                }
            }
        }
    }
    found
}

/// Removes the instance cgroups in `named` (each named by a row of the sweep's ledger that no
/// longer runs) that are empty, and have been for a while: a shim creates its cgroup empty and
/// moves the server in a moment later, so only one that stayed empty is stale. An occupied one
/// is never touched. With `dry_run`, removes nothing.
pub fn remove_stale(named: impl IntoIterator<Item = (String, PathBuf)>, dry_run: bool) -> Vec<Action> {
    let mut removed = Vec::new();
    for (id, dir) in named {
        if dry_run {
            continue;
        }
        let old = fs::metadata(&dir)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STALE_CGROUP_AGE));
        if old && remove_if_unpopulated(&dir) {
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
