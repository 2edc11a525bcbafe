//! What the host must provide for a test, and what a test does when it does not: the one place
//! where the unit tests and the integration suite decide between failing and falling back.
//!
//! A test that needs something of the host calls [`require`] first. Where the host has it, that
//! is all. Where it lacks it, the test fails if the feature is named in `TETHER_TEST_REQUIRE`
//! (a comma list, `cgroup,ssh,pidfs,pid-reuse,haproxy,pidns,browser` in CI), and otherwise prints which test falls
//! back or skips, and why, and goes on without it. So a host that loses a feature (a read-only
//! cgroup mount, a missing sshd) cannot turn a CI run into a quiet run of the fallbacks.
//!
//! `TETHER_TEST_PRETEND_MISSING` (same names) makes the tests see a feature as missing on a host
//! that has it, to prove that requiring it fails and to run the fallbacks here; the integration
//! harness also turns the cgroup layer off in the `tether` it starts, so both agree.
//!
//! Not part of Tether: built for this crate's unit tests and, through the `testing` feature,
//! for the integration suite only.

use std::fmt;
use std::io::Write;

/// The variable naming the features the host must provide.
pub const REQUIRE_VAR: &str = "TETHER_TEST_REQUIRE";
/// The variable naming the features the tests must treat as missing.
pub const PRETEND_VAR: &str = "TETHER_TEST_PRETEND_MISSING";

/// Where the OpenSSH server is installed (it must be run by absolute path).
pub const SSHD_CANDIDATES: [&str; 3] = ["/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"];

/// Where HAProxy is installed when it is not on PATH (Debian puts it in /usr/sbin, which a
/// non-root PATH may lack).
pub const HAPROXY_CANDIDATES: [&str; 2] = ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy"];

/// A host feature some test depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// `cgroup`: a writable cgroup v2 hierarchy where this process sits.
    Cgroup,
    /// `ssh`: an OpenSSH server (sshd) and client (ssh, ssh-keygen), and `/run/sshd`.
    Ssh,
    /// `pidfs`: pidfd inodes that tell processes apart (pidfs, Linux ≥ 6.9).
    Pidfs,
    /// `pid-reuse`: a writable `/proc/sys/kernel/ns_last_pid`, to hand a chosen pid to a
    /// stranger.
    PidReuse,
    /// `haproxy`: HAProxy, the load balancer in front of several gateway replicas.
    Haproxy,
    /// `pidns`: `unshare --pid --fork --mount-proc` (util-linux) runs a program as PID 1 of a
    /// new PID namespace (as root, or with unprivileged user namespaces).
    PidNs,
    /// `browser`: Debian's chromium at [`CHROMIUM`], node, and playwright-core under
    /// [`browser_modules`] (`scripts/install-test-deps`), for the dashboard's browser test.
    Browser,
}

/// The browser the dashboard's test drives (Debian's `chromium` package).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Where `scripts/install-test-deps` puts playwright-core: `target/test-deps/browser/node_modules`
/// of the workspace.
pub fn browser_modules() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-deps/browser/node_modules")
}

impl Feature {
    /// Every feature, in the order the documentation lists them.
    pub const ALL: [Feature; 7] = [
        Feature::Cgroup,
        Feature::Ssh,
        Feature::Pidfs,
        Feature::PidReuse,
        Feature::Haproxy,
        Feature::PidNs,
        Feature::Browser,
    ];

    /// The name used in `TETHER_TEST_REQUIRE`.
    pub fn name(self) -> &'static str {
        match self {
            Feature::Cgroup => "cgroup",
            Feature::Ssh => "ssh",
            Feature::Pidfs => "pidfs",
            Feature::PidReuse => "pid-reuse",
            Feature::Haproxy => "haproxy",
            Feature::PidNs => "pidns",
            Feature::Browser => "browser",
        }
    }

    /// What it is, for messages.
    fn what(self) -> &'static str {
        match self {
            Feature::Cgroup => "a writable cgroup v2",
            Feature::Ssh => "an OpenSSH server and client",
            Feature::Pidfs => "pidfs inodes",
            Feature::PidReuse => "a writable ns_last_pid",
            Feature::Haproxy => "HAProxy",
            Feature::PidNs => "PID namespaces through unshare",
            Feature::Browser => "a browser to test the dashboard in",
        }
    }

    /// Whether the host has it; if not, why.
    pub fn probe(self) -> Result<(), String> {
        if self.pretended_missing() {
            return Err(format!("{PRETEND_VAR} pretends it is missing"));
        }
        match self {
            Feature::Cgroup => probe_cgroup(),
            Feature::Ssh => probe_ssh(),
            Feature::Pidfs => crate::process::identity::inodes_are_unique()
                .then_some(())
                .ok_or_else(|| "pidfd inodes are not unique on this kernel (Linux < 6.9)".to_string()),
            Feature::PidReuse => probe_pid_reuse(),
            Feature::Haproxy => haproxy_binary()
                .map(|_| ())
                .ok_or_else(|| format!("no haproxy on PATH or at {}", HAPROXY_CANDIDATES.join(" or "))),
            Feature::PidNs => probe_pid_ns(),
            Feature::Browser => probe_browser(),
        }
    }

    /// True when `TETHER_TEST_PRETEND_MISSING` names it.
    pub fn pretended_missing(self) -> bool {
        listed(PRETEND_VAR).contains(&self)
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// True when the host has `feature`. When it does not: panics if `TETHER_TEST_REQUIRE` names
/// it, else prints that the calling test does `instead` (skips, or runs a fallback) and why,
/// and returns false.
pub fn require(feature: Feature, instead: &str) -> bool {
    // Read first, so that a misspelt name fails on a host that has everything too.
    let required = listed(REQUIRE_VAR).contains(&feature);
    let Err(why) = feature.probe() else {
        return true;
    };
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    if required {
        panic!(
            "{test}: this host lacks {} ({why}), which {REQUIRE_VAR} requires",
            feature.what()
        );
    }
    let line = format!(
        "{test}: this host lacks {} ({why}): {instead}. \
         {REQUIRE_VAR}={feature} would make this a failure.\n",
        feature.what()
    );
    // Straight to stderr in one write, not with eprintln!: the test runner captures that and
    // shows it only for failing tests, and a skip must be seen in every run, whole.
    let _ = std::io::stderr().write_all(line.as_bytes());
    false
}

/// The features a variable names; panics on a name it does not know, so that a typo cannot
/// require nothing.
fn listed(var: &str) -> Vec<Feature> {
    let value = std::env::var(var).unwrap_or_default();
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            Feature::ALL.into_iter().find(|f| f.name() == name).unwrap_or_else(|| {
                let known: Vec<&str> = Feature::ALL.iter().map(|f| f.name()).collect();
                panic!("{var} names {name:?}; the features are {}", known.join(", "))
            })
        })
        .collect()
}

/// What [`crate::cgroup::InstanceCgroup::create`] needs: the v2 mount read-write, and our own
/// cgroup writable.
fn probe_cgroup() -> Result<(), String> {
    let loc = crate::cgroup::mounts::locate_v2()?;
    if loc.mount.read_only {
        return Err(format!("{} is mounted read-only", loc.mount.mount_point.display()));
    }
    crate::cgroup::mounts::writable(&loc.own_dir)
}

fn probe_ssh() -> Result<(), String> {
    sshd_binary().ok_or_else(|| format!("no sshd at {}", SSHD_CANDIDATES.join(" or ")))?;
    for tool in ["ssh", "ssh-keygen"] {
        on_path(tool).ok_or_else(|| format!("no {tool} on PATH"))?;
    }
    // sshd refuses to start without its privilege-separation directory; only root can make it.
    if !std::path::Path::new("/run/sshd").is_dir() && !nix::unistd::geteuid().is_root() {
        return Err("/run/sshd is missing and only root can create it".into());
    }
    Ok(())
}

fn probe_browser() -> Result<(), String> {
    if !std::path::Path::new(CHROMIUM).is_file() {
        return Err(format!("no {CHROMIUM} (apt-get install chromium)"));
    }
    on_path("node").ok_or("no node on PATH")?;
    let playwright = browser_modules().join("playwright-core/package.json");
    if !playwright.is_file() {
        return Err(format!(
            "no {} (scripts/install-test-deps installs it)",
            playwright.display()
        ));
    }
    Ok(())
}

/// The sshd binary, by absolute path.
pub fn sshd_binary() -> Option<&'static str> {
    SSHD_CANDIDATES.into_iter().find(|p| std::path::Path::new(p).is_file())
}

/// The HAProxy binary: on PATH, else where Debian installs it.
pub fn haproxy_binary() -> Option<std::path::PathBuf> {
    on_path("haproxy").or_else(|| {
        HAPROXY_CANDIDATES
            .into_iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.is_file())
    })
}

/// `tool`'s path in one of PATH's directories.
pub fn on_path(tool: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Writes back the value it reads: whether the write is allowed is the question (a root
/// without CAP_SYS_ADMIN over the pid namespace passes `access` and still gets EPERM). Moving
/// the last pid back a little only makes the next forks skip pids in use.
fn probe_pid_reuse() -> Result<(), String> {
    const FILE: &str = "/proc/sys/kernel/ns_last_pid";
    let last = std::fs::read_to_string(FILE).map_err(|e| format!("reading {FILE}: {e}"))?;
    std::fs::write(FILE, last.trim()).map_err(|e| format!("writing {FILE}: {e}"))
}

/// Runs `true` as PID 1 of a new PID namespace, as the tests run Tether there.
#[allow(clippy::disallowed_methods)] // A probe of the tests' own, never part of Tether.
fn probe_pid_ns() -> Result<(), String> {
    let unshare = on_path("unshare").ok_or("no unshare on PATH (util-linux)")?;
    let out = std::process::Command::new(&unshare)
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", unshare.display()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "unshare --pid --fork --mount-proc true: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}
