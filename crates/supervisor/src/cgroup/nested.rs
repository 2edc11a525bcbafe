//! Instance cgroups inside instance cgroups, and removing such a tree bottom-up.
//!
//! Instance cgroups are made under the shim's own cgroup, so a shim whose server is another
//! shim (`tether wrap -- tether wrap -- …`) gets the inner instance's `tether-<id>` inside the
//! outer one. When the outer tree is killed, the inner shim dies with it and nobody removes
//! the inner directory, and a cgroup with a child directory cannot be removed (EBUSY). So
//! whoever removes an instance cgroup removes the instance cgroups below it first, deepest
//! first.
//!
//! Only directories named `tether-<valid id>` are ever touched, and only once no process is
//! left in them; a cgroup the server made for itself is left alone (and so is its parent, with
//! an error that names it). This is safe because of where a nested instance cgroup comes from:
//! a shim living in the enclosing cgroup made it, so once that cgroup holds no process, no
//! living shim owns anything below it.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{remove_dir_when_empty, wait_empty, CgroupError, NAME_PREFIX};

/// How deep the walk goes. Each level is one more `tether wrap` in the chain, so real trees are
/// two or three deep; the cap only keeps a pathological tree from exhausting the stack.
const MAX_DEPTH: usize = 32;

/// The instance id in a directory name `tether-<id>`, when it is one.
pub fn instance_id_of(name: &OsStr) -> Option<&str> {
    name.to_str()?
        .strip_prefix(NAME_PREFIX)
        .filter(|id| crate::ids::is_valid_id(id))
}

/// Instance cgroups nested below `dir` (not `dir` itself), each listed before its parent, so
/// that removing them in this order never meets a directory that still has a child. Nothing
/// below a directory that is not an instance cgroup is listed.
pub fn nested_instance_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    collect(dir, 0, true, &mut found);
    found
}

/// Every cgroup below `dir`, whatever its name, deepest first: what a kill must reach. Anything
/// under an instance cgroup is the instance's own (its server may make sub-cgroups of any name
/// and move processes into them), so killing goes by position, not by name; removal keeps to
/// [`nested_instance_dirs`].
pub fn descendant_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    collect(dir, 0, false, &mut found);
    found
}

fn collect(dir: &Path, depth: usize, instances_only: bool, found: &mut Vec<PathBuf>) {
    if depth >= MAX_DEPTH {
        return;
    }
    // A directory that went away meanwhile (its shim removed it) simply has no children.
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        // `file_type` does not follow symlinks; cgroupfs has none, a stand-in tree might.
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && (!instances_only || instance_id_of(&entry.file_name()).is_some()) {
            let child = entry.path();
            collect(&child, depth + 1, instances_only, found);
            found.push(child);
        }
    }
}

/// Removes the instance cgroup at `dir` and every instance cgroup nested in it, deepest first,
/// each only once no process is left in it; `patience` bounds the whole call. A directory
/// already gone is fine. On failure the others are still tried, and the first failure is
/// returned, naming the directory and why.
pub fn remove_tree_when_empty(dir: &Path, patience: Duration) -> Result<(), CgroupError> {
    let deadline = Instant::now() + patience;
    let mut dirs = nested_instance_dirs(dir);
    dirs.push(dir.to_path_buf());
    let mut first_error = None;
    for d in &dirs {
        if let Err(e) = remove_one(d, deadline) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn remove_one(dir: &Path, deadline: Instant) -> Result<(), CgroupError> {
    // The kernel refuses to remove a cgroup that has members anyway; waiting first turns a
    // stuck process into an error that says so rather than a bare EBUSY.
    if !wait_empty(dir, deadline.saturating_duration_since(Instant::now())) {
        return Err(CgroupError::Held {
            path: dir.to_path_buf(),
            why: "processes are still in it".into(),
        });
    }
    // Nothing will remove a directory that is not Tether's: retrying the rmdir would only burn
    // the patience.
    if let Some(name) = foreign_child(dir) {
        return Err(CgroupError::Held {
            path: dir.to_path_buf(),
            why: format!("it holds {name:?}, which is not an instance cgroup and is left alone"),
        });
    }
    remove_dir_when_empty(dir, deadline.saturating_duration_since(Instant::now())).map_err(|source| CgroupError::Io {
        action: "rmdir",
        path: dir.to_path_buf(),
        source,
    })
}

/// A child directory of `dir` that is not an instance cgroup (one the server made, say): the
/// usual reason an emptied instance cgroup cannot be removed.
fn foreign_child(dir: &Path) -> Option<String> {
    fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        (is_dir && instance_id_of(&e.file_name()).is_none()).then(|| e.file_name().to_string_lossy().into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain directory tree stands in for cgroups: mkdir, readdir and rmdir are the same
    /// calls, and a plain directory has no members.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tether-nested-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn instance_name() -> String {
        format!("{NAME_PREFIX}{}", crate::ids::random_id().unwrap())
    }

    #[test]
    fn lists_nested_instance_dirs_children_first_and_nothing_else() {
        let root = scratch("list");
        let outer = root.join(instance_name());
        let inner = outer.join(instance_name());
        let innermost = inner.join(instance_name());
        fs::create_dir_all(&innermost).unwrap();
        // Not instance cgroups: a bad id, a doctor probe, the server's own cgroup, and an
        // instance-named directory below the server's own cgroup.
        let others = [
            outer.join("tether-../x"),
            outer.join("tether-doctor-0123456789abcdef"),
            outer.join("server.slice").join(instance_name()),
        ];
        for d in &others {
            fs::create_dir_all(d).unwrap();
        }
        assert_eq!(nested_instance_dirs(&outer), vec![innermost.clone(), inner.clone()]);
        assert_eq!(
            instance_id_of(OsStr::new("tether-0123456789abcdef")),
            Some("0123456789abcdef")
        );
        assert_eq!(instance_id_of(OsStr::new("tether-doctor-0123456789abcdef")), None);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn removes_the_tree_bottom_up_but_never_a_foreign_directory() {
        let root = scratch("remove");
        let outer = root.join(instance_name());
        let inner = outer.join(instance_name());
        fs::create_dir_all(inner.join(instance_name())).unwrap();
        remove_tree_when_empty(&outer, Duration::from_millis(200)).unwrap();
        assert!(!outer.exists());
        // Already gone is fine.
        remove_tree_when_empty(&outer, Duration::from_millis(200)).unwrap();

        let foreign = inner.join("server.slice");
        fs::create_dir_all(&foreign).unwrap();
        let err = remove_tree_when_empty(&outer, Duration::from_millis(50)).unwrap_err();
        assert!(err.to_string().contains(&*inner.to_string_lossy()), "{err}");
        assert!(err.to_string().contains("server.slice"), "{err}");
        assert!(
            foreign.exists(),
            "a directory that is not an instance cgroup was removed"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // The test starts the member it kills.
    fn a_nested_cgroup_with_a_process_is_not_removed_until_it_is_killed() {
        let Ok((outer, _)) = super::super::InstanceCgroup::create(&crate::ids::random_id().unwrap(), None) else {
            eprintln!("no writable cgroup v2 here: the plain-directory tests cover the walk");
            return;
        };
        let inner = outer.dir().join(instance_name());
        fs::create_dir(&inner).unwrap();
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        fs::write(inner.join("cgroup.procs"), child.id().to_string()).unwrap();
        let err = remove_tree_when_empty(outer.dir(), Duration::from_millis(50)).unwrap_err();
        assert!(err.to_string().contains("processes are still in it"), "{err}");
        assert!(inner.exists());
        // The outer cgroup's kill reaches the nested one's members too.
        outer.kill().unwrap();
        let _ = child.wait();
        let dir = outer.dir().to_path_buf();
        outer.remove().unwrap();
        assert!(!dir.exists());
    }
}
