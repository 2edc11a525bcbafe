//! Which cgroup layout the host runs, from the mounts in `/proc/self/mountinfo`.
//!
//! Pure v2, hybrid (systemd's "unified" v2 mount beside v1 controller hierarchies), v1 only,
//! or none. The layout decides where a `pids` limit can live and which fix to advise, so it is
//! read from the mounts this process actually sees, never assumed from `/sys/fs/cgroup`.

use serde::Serialize;

use crate::cgroup::mounts::CgroupMount;

/// The cgroup layout of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Only cgroup2 is mounted.
    PureV2,
    /// cgroup2 and v1 hierarchies side by side.
    Hybrid,
    /// Only v1 hierarchies.
    V1Only,
    /// No cgroup filesystem at all.
    None,
}

impl Layout {
    /// Classifies a list of cgroup mounts.
    pub fn of(mounts: &[CgroupMount]) -> Layout {
        let v2 = mounts.iter().any(|m| m.fstype == "cgroup2");
        let v1 = mounts.iter().any(|m| m.fstype == "cgroup");
        match (v2, v1) {
            (true, false) => Layout::PureV2,
            (true, true) => Layout::Hybrid,
            (false, true) => Layout::V1Only,
            (false, false) => Layout::None,
        }
    }

    /// How reports name it.
    pub fn describe(self) -> &'static str {
        match self {
            Layout::PureV2 => "pure v2",
            Layout::Hybrid => "hybrid (v2 beside v1 hierarchies)",
            Layout::V1Only => "v1 only",
            Layout::None => "no cgroup filesystem",
        }
    }
}

/// The v1 hierarchies, each named by its controllers (`pids`, `cpu,cpuacct`, `name=systemd`).
pub fn v1_hierarchies(mounts: &[CgroupMount]) -> Vec<String> {
    mounts
        .iter()
        .filter(|m| m.fstype == "cgroup")
        .map(|m| {
            let controllers: Vec<&str> = m
                .super_options
                .iter()
                .map(String::as_str)
                .filter(|o| !is_mount_flag(o))
                .collect();
            controllers.join(",")
        })
        .collect()
}

/// Super options of a v1 mount that are not controllers.
fn is_mount_flag(option: &str) -> bool {
    matches!(
        option,
        "rw" | "ro" | "xattr" | "noprefix" | "clone_children" | "cpuset_v2_mode" | "favordynmods"
    ) || option.starts_with("release_agent=")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::mounts::parse_mountinfo;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn classifies_layouts() {
        let hybrid = parse_mountinfo(HYBRID);
        assert_eq!(Layout::of(&hybrid), Layout::Hybrid);
        assert_eq!(Layout::of(&hybrid[2..]), Layout::PureV2);
        assert_eq!(Layout::of(&hybrid[..2]), Layout::V1Only);
        assert_eq!(Layout::of(&[]), Layout::None);
        assert_eq!(serde_json::to_value(Layout::PureV2).unwrap(), "pure_v2");
    }

    #[test]
    fn names_v1_hierarchies_by_controller() {
        let names = v1_hierarchies(&parse_mountinfo(HYBRID));
        assert_eq!(names, ["pids", "name=systemd"]);
    }
}
