//! A process that moves itself out of its instance cgroup (root may) still ends with the
//! instance. The shim is the subreaper of the whole tree, so the escapee stays its descendant
//! and, once the processes between them are dead, its unreaped child, which the teardown kills
//! and waits for: that is why a tree that ended with its cgroup empty and no child left needs
//! no `/proc` pass for the cookie. With the subreaper layer off, the watchdog's last pass for
//! the cookie ends the escapee instead.

#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use crate::harness::{eventually, require, Cookie, Feature, Mode, WrapBuilder, FIXTURE};

const SLACK: Duration = Duration::from_secs(3);

/// Each escapee leaves the server's session and process group (so only the subreaper or the
/// cookie can reach it), writes its own pid to the test's own cgroup, then becomes a `sleep`.
/// One is orphaned at once (its subshell exits); the other stays the server's child until the
/// end.
const SCRIPT: &str = r#"( setsid sh -c "$0" & ) ; setsid sh -c "$0" & exec "$1" --tag "$2""#;

fn escapees_end_with_the_instance(disable_subreaper: bool) {
    if !require(
        Feature::Cgroup,
        "skipping: without a cgroup nothing can be moved out of one",
    ) {
        return;
    }
    let own = tether_supervisor::cgroup::mounts::locate_v2()
        .expect("the test's own cgroup v2")
        .own_dir;
    let procs = own.join("cgroup.procs");
    let escape = format!("echo $$ > '{}' && exec sleep 1000", procs.display());
    let cookie = Cookie::new();
    let mut wrap = WrapBuilder::new(&cookie, Mode::Cgroup).command(&["sh", "-c", SCRIPT, &escape, FIXTURE, &cookie.0]);
    if disable_subreaper {
        wrap = wrap.tether(&["--disable", "subreaper"]);
    }
    let mut w = wrap.spawn();
    w.assert_layers(Mode::Cgroup);
    // Both escapees are sleeps in the test's own cgroup, out of the instance's.
    let own_line = std::fs::read_to_string("/proc/self/cgroup").expect("own cgroup");
    let mut escaped = Vec::new();
    let out = eventually(Duration::from_secs(20), || {
        escaped = cookie
            .carriers()
            .into_iter()
            .filter(|&p| crate::harness::is_named(p, "sleep"))
            .filter(|p| std::fs::read_to_string(format!("/proc/{p}/cgroup")).is_ok_and(|c| c == own_line))
            .collect();
        escaped.len() == 2
    });
    assert!(
        out,
        "expected two sleeps moved out of the instance cgroup, found {escaped:?}; stderr:\n{}",
        w.stderr_lines().join("\n")
    );
    w.stdin.take();
    w.wait_exit(SLACK);
    cookie.assert_none_survive(SLACK);
}

#[test]
fn escapees_from_the_cgroup_die_with_the_instance_through_the_subreaper() {
    escapees_end_with_the_instance(false);
}

#[test]
fn escapees_from_the_cgroup_die_with_the_instance_through_the_watchdog_without_a_subreaper() {
    escapees_end_with_the_instance(true);
}
