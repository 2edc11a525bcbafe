//! `--max-procs`: a cap on the processes of one instance's tree (fork bombs, runaway pools),
//! enforced by a cgroup `pids.max` (v2, or the v1 pids hierarchy on hybrid hosts).

use std::time::Duration;

use crate::harness::{require, Cookie, Feature, Mode, WrapBuilder};

const SLACK: Duration = Duration::from_secs(3);

#[test]
fn a_tree_over_the_cap_cannot_fork() {
    if !require(
        Feature::Cgroup,
        "skipping: without_a_cgroup_the_cap_is_reported_as_not_enforced covers this host",
    ) {
        return;
    }
    let cookie = Cookie::new();
    // The server plus 3 sleepers fit in 4; the 4th and 5th fork must fail.
    let mut w = WrapBuilder::new(&cookie, Mode::Cgroup)
        .tether(&["--max-procs", "4"])
        .fixture(&["--children", "5"])
        .spawn();
    let status = w.wait_exit(Duration::from_secs(20));
    let stderr = w.stderr_lines().join("\n");
    assert!(stderr.contains("pids.max=4"), "limit not reported in force: {stderr}");
    assert!(
        !status.success(),
        "the fixture should fail to fork past the cap: {stderr}"
    );
    assert!(
        stderr.contains("Resource temporarily unavailable") || stderr.contains("EAGAIN"),
        "{stderr}"
    );
    cookie.assert_none_survive(SLACK);
}

#[test]
fn a_tree_under_the_cap_runs() {
    let cookie = Cookie::new();
    let mut w = WrapBuilder::new(&cookie, Mode::Cgroup)
        .tether(&["--max-procs", "10"])
        .fixture(&["--children", "3"])
        .spawn();
    assert_eq!(w.wait_ready().sleepers.len(), 3);
    w.stdin.take();
    w.wait_exit(SLACK);
    cookie.assert_none_survive(SLACK);
}

#[test]
fn without_a_cgroup_the_cap_is_reported_as_not_enforced() {
    let cookie = Cookie::new();
    let mut w = WrapBuilder::new(&cookie, Mode::NoCgroup)
        .tether(&["--max-procs", "4"])
        .spawn();
    w.wait_ready();
    let stderr = w.stderr_lines().join("\n");
    assert!(stderr.contains("--max-procs 4 is not enforced"), "{stderr}");
    w.stdin.take();
    w.wait_exit(SLACK);
    cookie.assert_none_survive(SLACK);
}
