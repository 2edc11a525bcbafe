//! The kernel release, and which of the features Tether leans on it is new enough for.
//!
//! The version is only a hint: a container's seccomp profile can refuse a system call the
//! kernel has, and distributions backport. The other checks try the real thing; this one says
//! what to upgrade to when they fail.

use serde::Serialize;

use crate::host::check::{Check, CheckId, Status};

/// A kernel version, from the leading `major.minor[.patch]` of the release string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct KernelVersion {
    /// e.g. 6
    pub major: u32,
    /// e.g. 18
    pub minor: u32,
    /// e.g. 44 (0 when the release has none)
    pub patch: u32,
}

impl KernelVersion {
    /// Parses `6.18.44-fc-v669`, `5.14.0-427.el9.x86_64`, `6.9`; None when it starts otherwise.
    pub fn parse(release: &str) -> Option<KernelVersion> {
        let numeric = release.split(|c: char| !(c.is_ascii_digit() || c == '.')).next()?;
        let mut parts = numeric.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        Some(KernelVersion { major, minor, patch })
    }

    /// True when this version is at least `major.minor`.
    pub fn at_least(self, (major, minor): (u32, u32)) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

/// A feature and the first kernel that has it.
#[derive(Debug, Clone, Serialize)]
pub struct KernelFeature {
    /// The feature, as named in reports.
    pub feature: &'static str,
    /// The first kernel release that has it, `major.minor`.
    pub needs: String,
    /// Whether this kernel is at least that (None when the release could not be parsed).
    pub new_enough: Option<bool>,
}

/// The features whose minimum kernel the doctor reports, with that minimum.
pub const FEATURES: [(&str, (u32, u32)); 3] = [
    ("pidfd_open", (5, 3)),
    ("cgroup.kill", (5, 14)),
    ("pidfs unique inodes", (6, 9)),
];

/// What uname said.
#[derive(Debug, Clone, Serialize)]
pub struct KernelFacts {
    /// `uname -r`.
    pub release: String,
    /// The version parsed from it.
    pub version: Option<KernelVersion>,
    /// Each feature of [`FEATURES`] against this version.
    pub features: Vec<KernelFeature>,
}

impl KernelFacts {
    /// Facts for a release string.
    pub fn from_release(release: &str) -> KernelFacts {
        let version = KernelVersion::parse(release);
        let features = FEATURES
            .iter()
            .map(|&(feature, needs)| KernelFeature {
                feature,
                needs: format!("{}.{}", needs.0, needs.1),
                new_enough: version.map(|v| v.at_least(needs)),
            })
            .collect();
        KernelFacts {
            release: release.to_string(),
            version,
            features,
        }
    }

    /// True when the kernel is known to be at least the minimum for `feature` (one of
    /// [`FEATURES`]); None when unknown.
    pub fn has(&self, feature: &str) -> Option<bool> {
        self.features.iter().find(|f| f.feature == feature)?.new_enough
    }
}

/// Reads the release with uname(2).
pub fn probe() -> Result<KernelFacts, String> {
    let uts = nix::sys::utsname::uname().map_err(|e| format!("uname(2): {e}"))?;
    Ok(KernelFacts::from_release(&uts.release().to_string_lossy()))
}

/// The finding for the kernel.
pub fn check(facts: &Result<KernelFacts, String>) -> Check {
    let facts = match facts {
        Ok(f) => f,
        Err(e) => {
            return Check::not_ok(
                CheckId::Kernel,
                Status::Missing,
                e.clone(),
                "nothing to fix here: the other checks try each feature directly",
            )
        }
    };
    let Some(v) = facts.version else {
        return Check::not_ok(
            CheckId::Kernel,
            Status::Degraded,
            format!(
                "uname(2) release {:?} does not start with a version number",
                facts.release
            ),
            "nothing to fix here: the other checks try each feature directly",
        );
    };
    let list: Vec<String> = facts
        .features
        .iter()
        .map(|f| {
            let verdict = if f.new_enough == Some(true) { "yes" } else { "NO" };
            format!("{} (≥ {}) {verdict}", f.feature, f.needs)
        })
        .collect();
    let detail = format!(
        "uname(2) release {} = {}.{}.{}: {}",
        facts.release,
        v.major,
        v.minor,
        v.patch,
        list.join(", ")
    );
    let lacking: Vec<&KernelFeature> = facts.features.iter().filter(|f| f.new_enough != Some(true)).collect();
    match lacking
        .iter()
        .map(|f| f.needs.as_str())
        .max_by_key(|n| KernelVersion::parse(n))
    {
        None => Check::ok(CheckId::Kernel, detail),
        Some(newest) => Check::not_ok(
            CheckId::Kernel,
            Status::Degraded,
            detail,
            format!(
                "upgrade to Linux ≥ {newest} for {}",
                lacking.iter().map(|f| f.feature).collect::<Vec<_>>().join(", ")
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release_strings() {
        let v = KernelVersion::parse("6.18.44-fc-v669").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (6, 18, 44));
        let rhel = KernelVersion::parse("5.14.0-427.el9.x86_64").unwrap();
        assert_eq!((rhel.major, rhel.minor, rhel.patch), (5, 14, 0));
        assert_eq!(KernelVersion::parse("6.9").map(|v| v.patch), Some(0));
        assert_eq!(KernelVersion::parse("6.9-rc1").map(|v| v.minor), Some(9));
        assert!(KernelVersion::parse("linux").is_none());
    }

    #[test]
    fn compares_feature_minimums() {
        let facts = KernelFacts::from_release("5.15.0-generic");
        assert_eq!(facts.has("pidfd_open"), Some(true));
        assert_eq!(facts.has("cgroup.kill"), Some(true));
        assert_eq!(facts.has("pidfs unique inodes"), Some(false));
        let c = check(&Ok(facts));
        assert_eq!(c.status, Status::Degraded);
        assert_eq!(
            c.advice.as_deref(),
            Some("upgrade to Linux ≥ 6.9 for pidfs unique inodes")
        );
    }

    #[test]
    fn old_kernels_name_the_newest_minimum() {
        let c = check(&Ok(KernelFacts::from_release("4.19.0")));
        assert_eq!(
            c.advice.as_deref(),
            Some("upgrade to Linux ≥ 6.9 for pidfd_open, cgroup.kill, pidfs unique inodes")
        );
        assert!(check(&Ok(KernelFacts::from_release("6.9.0"))).is_ok());
    }
}
