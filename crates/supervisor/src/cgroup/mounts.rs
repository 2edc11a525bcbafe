//! Finding the cgroup hierarchies this process lives in, from `/proc/self/mountinfo` and
//! `/proc/self/cgroup`.
//!
//! Never assume `/sys/fs/cgroup` is a v2 mount: hosts run pure v2, hybrid (v2 at
//! `/sys/fs/cgroup/unified` beside v1 controllers) or v1 only, and containers see a namespaced
//! root. The path of a process's cgroup is relative to the mount's root, so both are read.

use std::fs;
use std::path::{Path, PathBuf};

/// One mount of a cgroup filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// Where it is mounted, e.g. `/sys/fs/cgroup/unified`.
    pub mount_point: PathBuf,
    /// The cgroup at the root of that mount (`/` unless bind-mounted from deeper).
    pub root: String,
    /// `cgroup2` or `cgroup`.
    pub fstype: String,
    /// Super options; for v1 they name the controllers (`rw,pids`).
    pub super_options: Vec<String>,
    /// True when mounted read-only.
    pub read_only: bool,
}

/// Parses the cgroup mounts out of mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<CgroupMount> {
    let (left, right) = line.split_once(" - ")?;
    let mut right = right.split_whitespace();
    let fstype = right.next()?;
    if fstype != "cgroup2" && fstype != "cgroup" {
        return None;
    }
    let _source = right.next();
    let super_options = right.next().unwrap_or("").split(',').map(str::to_string).collect();
    let fields: Vec<&str> = left.split_whitespace().collect();
    // id parent major:minor root mount_point options [optional…]
    let root = unescape(fields.get(3)?);
    let mount_point = PathBuf::from(unescape(fields.get(4)?));
    let read_only = fields.get(5)?.split(',').any(|o| o == "ro");
    Some(CgroupMount {
        mount_point,
        root,
        fstype: fstype.to_string(),
        super_options,
        read_only,
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let octal = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok());
            if let Some(b) = octal {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// This process's cgroup path in the v2 hierarchy (`0::/path`), and in the v1 hierarchy that
/// carries `controller`.
pub fn parse_proc_cgroup(text: &str, v1_controller: Option<&str>) -> Option<String> {
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let wanted = match v1_controller {
            None => controllers.is_empty(),
            Some(c) => controllers.split(',').any(|x| x == c),
        };
        wanted.then(|| path.to_string())
    })
}

/// The directory of a process's cgroup under a mount, or None when the path is outside it.
pub fn cgroup_dir(mount: &CgroupMount, path: &str) -> Option<PathBuf> {
    let rel = if mount.root == "/" {
        path
    } else {
        path.strip_prefix(mount.root.as_str())
            .filter(|r| r.is_empty() || r.starts_with('/'))?
    };
    Some(mount.mount_point.join(rel.trim_start_matches('/')))
}

/// Where this process sits in the cgroup v2 hierarchy, if there is one.
#[derive(Debug, Clone)]
pub struct V2Location {
    /// The v2 mount.
    pub mount: CgroupMount,
    /// This process's own cgroup directory under it.
    pub own_dir: PathBuf,
}

/// Finds this process's v2 cgroup, or says why there is none.
pub fn locate_v2() -> Result<V2Location, String> {
    let mountinfo =
        fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    let proc_cgroup = fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("reading /proc/self/cgroup: {e}"))?;
    let path =
        parse_proc_cgroup(&proc_cgroup, None).ok_or("this process has no cgroup v2 entry in /proc/self/cgroup")?;
    let mounts = parse_mountinfo(&mountinfo);
    let mount = mounts
        .iter()
        .filter(|m| m.fstype == "cgroup2")
        .find(|m| cgroup_dir(m, &path).is_some())
        .ok_or("no cgroup2 filesystem is mounted (see /proc/self/mountinfo)")?
        .clone();
    let own_dir = cgroup_dir(&mount, &path).ok_or("own cgroup is outside the cgroup2 mount")?;
    Ok(V2Location { mount, own_dir })
}

/// Finds this process's cgroup in the v1 hierarchy of `controller` (e.g. `pids`).
pub fn locate_v1(controller: &str) -> Result<(CgroupMount, PathBuf), String> {
    let mountinfo =
        fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    let proc_cgroup = fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("reading /proc/self/cgroup: {e}"))?;
    let path = parse_proc_cgroup(&proc_cgroup, Some(controller))
        .ok_or(format!("no v1 {controller} hierarchy in /proc/self/cgroup"))?;
    let mount = parse_mountinfo(&mountinfo)
        .into_iter()
        .find(|m| m.fstype == "cgroup" && m.super_options.iter().any(|o| o == controller))
        .ok_or(format!("no v1 {controller} hierarchy is mounted"))?;
    let dir = cgroup_dir(&mount, &path).ok_or(format!("own {controller} cgroup is outside its mount"))?;
    Ok((mount, dir))
}

/// True when `dir` exists and this process may create cgroups in it and move processes into it.
pub fn writable(dir: &Path) -> Result<(), String> {
    use nix::unistd::{access, AccessFlags};
    access(dir, AccessFlags::W_OK).map_err(|e| format!("{} is not writable: {e}", dir.display()))?;
    let procs = dir.join("cgroup.procs");
    access(&procs, AccessFlags::W_OK).map_err(|e| format!("{} is not writable: {e}", procs.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn finds_hybrid_mounts() {
        let m = parse_mountinfo(HYBRID);
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].fstype, "cgroup2");
        assert_eq!(m[1].mount_point, PathBuf::from("/sys/fs/cgroup/unified"));
        assert!(m[0].super_options.contains(&"pids".to_string()));
        assert!(!m[1].read_only);
    }

    #[test]
    fn read_only_and_escaped_mounts() {
        let m = parse_mountinfo("1 2 0:3 /a\\040b /sys/fs/cgroup ro,nosuid shared:1 - cgroup2 cgroup2 rw\n");
        assert!(m[0].read_only);
        assert_eq!(m[0].root, "/a b");
    }

    #[test]
    fn maps_paths_through_mount_root() {
        let mount = CgroupMount {
            mount_point: "/sys/fs/cgroup".into(),
            root: "/user.slice".into(),
            fstype: "cgroup2".into(),
            super_options: vec![],
            read_only: false,
        };
        assert_eq!(
            cgroup_dir(&mount, "/user.slice/app"),
            Some(PathBuf::from("/sys/fs/cgroup/app"))
        );
        assert_eq!(cgroup_dir(&mount, "/user.slicer"), None);
        assert_eq!(cgroup_dir(&mount, "/other"), None);
    }

    #[test]
    fn reads_proc_cgroup_lines() {
        let text = "8:pids:/\n4:memory:/x\n0::/user.slice/app\n";
        assert_eq!(parse_proc_cgroup(text, None).as_deref(), Some("/user.slice/app"));
        assert_eq!(parse_proc_cgroup(text, Some("pids")).as_deref(), Some("/"));
        assert_eq!(parse_proc_cgroup(text, Some("cpu")), None);
    }
}
