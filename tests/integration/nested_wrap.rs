//! `tether wrap -- tether wrap -- …`: a shim whose server is another shim.
//!
//! Instance cgroups are made under the shim's own cgroup, so the inner instance's
//! `tether-<id>` lies inside the outer one. When the outer shim is SIGKILLed, its watchdog
//! kills the whole nest (the inner shim and its watchdog with it) and must remove the inner
//! directory before its own, or the outer one stays (EBUSY). When the watchdogs are gone too,
//! `tether reap` alone must do the same in one pass, and must never close a row whose cgroup
//! still exists.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use tether_supervisor::ledger::{InstanceRow, InstanceState, Ledger};
use tether_supervisor::process::pidfd::Pidfd;
use tether_supervisor::process::procfs;

use crate::harness::{
    actions, assert_one_action, eventually, reap, require, Cookie, Feature, Mode, WrapBuilder, Wrapped, FIXTURE, TETHER,
};

/// How long the watchdog, or a reap's kills, may take on a loaded machine (polled, so a pass
/// costs what it takes).
const SLACK: Duration = Duration::from_secs(5);

/// One shim of the nest, as its ledger row says.
#[derive(Debug, Clone)]
struct Shim {
    /// Its instance id.
    id: String,
    /// The shim's pid (the row's holder).
    pid: i32,
    /// Its instance cgroup.
    cgroup: PathBuf,
}

/// A running `tether wrap -- tether wrap -- tether-fixture --zoo`, the whole tree built.
struct Nest<'a> {
    /// The test's cookie, to kill what is left by PID when the test fails.
    cookie: &'a Cookie,
    /// The outer `tether wrap`, the test's child.
    wrapped: Wrapped,
    /// The outer shim.
    outer: Shim,
    /// The inner shim, the outer one's server.
    inner: Shim,
}

impl<'a> Nest<'a> {
    /// Starts the nest and waits for the fixture's zoo and for both instance cgroups, the inner
    /// one inside the outer one. `None` on a host without a writable cgroup v2: there is no
    /// nesting to test.
    fn start(cookie: &'a Cookie) -> Option<Nest<'a>> {
        if !require(Feature::Cgroup, "skipping: no nested cgroups to test") {
            return None;
        }
        let inner_wrap = [
            TETHER, "wrap", "--grace", "300ms", "--", FIXTURE, "--tag", &cookie.0, "--zoo",
        ];
        let wrapped = WrapBuilder::new(cookie, Mode::Cgroup).command(&inner_wrap).spawn();
        assert_eq!(wrapped.wait_ready().sleepers.len(), 5);
        wrapped.assert_layers(Mode::Cgroup);
        let mut rows = Vec::new();
        let built = eventually(SLACK, || {
            rows = instances(cookie);
            rows.len() == 2
                && rows
                    .iter()
                    .all(|r| r.intent.cgroup.as_deref().is_some_and(Path::is_dir))
        });
        assert!(built, "expected two instances with their cgroups, found {rows:#?}");
        let shim = |r: &InstanceRow| Shim {
            id: r.intent.id.clone(),
            pid: r.intent.holder.pid,
            cgroup: r.intent.cgroup.clone().expect("checked above"),
        };
        let (outer, inner): (Vec<_>, Vec<_>) = rows.iter().partition(|r| r.intent.holder.pid == wrapped.pid());
        let (outer, inner) = (shim(outer[0]), shim(inner[0]));
        assert_eq!(
            inner.cgroup.parent(),
            Some(outer.cgroup.as_path()),
            "the inner instance's cgroup is not inside the outer one"
        );
        Some(Nest {
            cookie,
            wrapped,
            outer,
            inner,
        })
    }

    /// Both instance cgroups that still exist, inner first.
    fn cgroups_left(&self) -> Vec<PathBuf> {
        [&self.inner.cgroup, &self.outer.cgroup]
            .into_iter()
            .filter(|d| d.exists())
            .cloned()
            .collect()
    }

    /// Waits until neither instance cgroup exists, failing with what is left.
    fn assert_no_cgroup_left(&self, within: Duration, after: &str) {
        let mut left = Vec::new();
        let gone = eventually(within, || {
            left = self.cgroups_left();
            left.is_empty()
        });
        let populated: Vec<_> = left
            .iter()
            .map(|d| (d, tether_supervisor::cgroup::populated(d)))
            .collect();
        assert!(
            gone,
            "{after}: instance cgroups left after {within:?} (dir, populated): {populated:?}"
        );
    }
}

impl Drop for Nest<'_> {
    fn drop(&mut self) {
        // A failed test leaves neither processes (killed by PID) nor the cgroups behind.
        self.cookie.kill_all();
        for dir in [&self.inner.cgroup, &self.outer.cgroup] {
            eventually(Duration::from_secs(2), || {
                std::fs::remove_dir(dir).is_ok() || !dir.exists()
            });
        }
    }
}

/// Every instance row of the test's ledger.
fn instances(cookie: &Cookie) -> Vec<InstanceRow> {
    Ledger::open(&cookie.state_dir())
        .and_then(|l| l.all_instances())
        .unwrap_or_default()
}

/// The watchdog the shim forked (named `tether-watchdog`).
fn watchdog_of(shim: i32) -> i32 {
    let mut found = None;
    let seen = eventually(SLACK, || {
        found = procfs::children_of(shim)
            .into_iter()
            .find(|&p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "tether-watchdog"));
        found.is_some()
    });
    assert!(
        seen,
        "shim {shim} has no watchdog among {:?}",
        procfs::children_of(shim)
    );
    found.expect("checked above")
}

fn gone(pid: i32) -> bool {
    procfs::state_of(pid).is_none_or(|s| s == 'Z')
}

/// SIGKILLs a process through a pidfd opened while it was known to be ours.
fn sigkill(fd: &Pidfd, what: &str) {
    fd.signal(Signal::SIGKILL)
        .unwrap_or_else(|e| panic!("SIGKILL {what} (pid {}): {e}", fd.pid()));
}

fn open_pidfd(pid: i32, what: &str) -> Pidfd {
    Pidfd::open(pid).unwrap_or_else(|e| panic!("pidfd of {what} (pid {pid}): {e}"))
}

/// Runs `tether reap` and proves it removed every cgroup it met and closed both rows, with
/// no open row left whose cgroup exists. Returns the report.
fn assert_reap_closes_the_nest(nest: &Nest) -> serde_json::Value {
    let report = reap(nest.cookie, &[]);
    for a in report["actions"].as_array().into_iter().flatten() {
        let kind = a["kind"].as_str().unwrap_or_default();
        let reason = a["reason"].as_str().unwrap_or_default();
        assert!(
            !matches!(kind, "cgroup-failed" | "left-open") && !reason.contains("rmdir"),
            "reap failed on a cgroup: {a:#}\nreport: {report:#}"
        );
    }
    let rows = instances(nest.cookie);
    for r in &rows {
        let cgroup_exists = r.intent.cgroup.as_deref().is_some_and(Path::exists);
        assert!(
            !(r.state.is_open() && cgroup_exists),
            "open row whose cgroup exists: {r:#?}"
        );
    }
    for shim in [&nest.outer, &nest.inner] {
        let row = rows.iter().find(|r| r.intent.id == shim.id).expect("row of each shim");
        assert_eq!(
            row.state,
            InstanceState::Reaped,
            "{shim:?}: {row:#?}\nreport: {report:#}"
        );
    }
    report
}

#[test]
fn sigkilled_outer_shim_leaves_no_nested_cgroup() {
    let cookie = Cookie::new();
    let Some(mut nest) = Nest::start(&cookie) else { return };
    let outer = open_pidfd(nest.outer.pid, "the outer shim");
    sigkill(&outer, "the outer shim");
    nest.wrapped.wait_exit(SLACK);
    // The outer watchdog kills the nest (the inner shim and watchdog included) and exits.
    cookie.assert_none_survive(SLACK);
    nest.assert_no_cgroup_left(SLACK, "the outer watchdog's clean-up");
    assert_reap_closes_the_nest(&nest);
    cookie.assert_none_survive(Duration::from_secs(1));
}

#[test]
fn with_the_watchdogs_gone_one_reap_removes_the_nest() {
    let cookie = Cookie::new();
    let Some(mut nest) = Nest::start(&cookie) else { return };
    // Both watchdogs first: the inner one would otherwise clean the inner instance up as soon
    // as its shim dies, and the reap would find no nest to remove.
    let watchdogs = [
        open_pidfd(watchdog_of(nest.inner.pid), "the inner watchdog"),
        open_pidfd(watchdog_of(nest.outer.pid), "the outer watchdog"),
    ];
    for w in &watchdogs {
        sigkill(w, "a watchdog");
    }
    assert!(
        eventually(SLACK, || watchdogs.iter().all(|w| gone(w.pid()))),
        "the watchdogs survived SIGKILL"
    );
    // Then the outer shim, before the inner one: a live outer shim would see its server die
    // and end the nest itself. Its death SIGKILLs the inner shim (its parent-death signal);
    // the explicit kill only makes sure, through a pidfd that cannot hit a stranger.
    let (outer, inner) = (
        open_pidfd(nest.outer.pid, "the outer shim"),
        open_pidfd(nest.inner.pid, "the inner shim"),
    );
    sigkill(&outer, "the outer shim");
    let _ = inner.signal(Signal::SIGKILL);
    nest.wrapped.wait_exit(SLACK);
    assert!(
        eventually(SLACK, || gone(inner.pid())),
        "the inner shim survived SIGKILL"
    );
    // What the reap must end: the zoo, alive in the inner cgroup inside the outer one.
    assert_eq!(
        nest.cgroups_left(),
        vec![nest.inner.cgroup.clone(), nest.outer.cgroup.clone()]
    );
    assert!(
        tether_supervisor::cgroup::populated(&nest.inner.cgroup),
        "the zoo died without a reap: this test would prove nothing"
    );
    assert!(!cookie.carriers().is_empty());

    let report = assert_reap_closes_the_nest(&nest);
    let killed_cgroups = actions(&report, "cgroup-killed").len();
    assert!(killed_cgroups > 0, "the reap killed no cgroup: {report:#}");
    // One reap, no waiting for anything else: nothing of the nest is left.
    assert!(
        nest.cgroups_left().is_empty(),
        "{:?}\nreport: {report:#}",
        nest.cgroups_left()
    );
    cookie.assert_none_survive(Duration::from_secs(1));
}

#[test]
fn a_row_whose_cgroup_cannot_be_removed_stays_open_until_it_can() {
    // Plain directories stand in for an orphan's cgroup (mkdir, readdir and rmdir are the
    // same calls): a nested instance cgroup, which the reap removes, and a directory that is
    // not Tether's (a cgroup the server made, say), which it must leave, and so the row.
    let cookie = Cookie::new();
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("nest-{}", cookie.0));
    let id = tether_supervisor::ids::random_id().expect("id");
    let outer = scratch.join(format!("tether-{id}"));
    let nested = outer.join(format!("tether-{}", tether_supervisor::ids::random_id().expect("id")));
    let foreign = outer.join("server.slice");
    for d in [&nested, &foreign] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let intent = tether_supervisor::ledger::Intent {
        id: id.clone(),
        cgroup: Some(outer.clone()),
        ..crate::ledger::orphan_intent(&cookie, crate::ledger::dead_identity(&cookie))
    };
    Ledger::open(&cookie.state_dir())
        .and_then(|mut l| l.record_intent(&intent))
        .expect("recording the orphan");
    let state = || {
        let ledger = Ledger::open(&cookie.state_dir()).expect("ledger");
        ledger.instance(&id).expect("read").expect("row").state
    };

    for attempt in ["first", "second"] {
        let report = reap(&cookie, &[]);
        let left_open = actions(&report, "left-open");
        assert_eq!(left_open.len(), 1, "{attempt} reap: {report:#}");
        let why = left_open[0]["reason"].as_str().unwrap_or_default();
        assert!(why.contains("server.slice"), "{attempt} reap, reason {why:?}");
        assert!(state().is_open(), "{attempt} reap closed a row whose cgroup exists");
        assert!(
            !nested.exists(),
            "{attempt} reap: the nested instance cgroup was not removed"
        );
        assert!(
            foreign.exists(),
            "{attempt} reap removed a directory that is not Tether's"
        );
    }
    std::fs::remove_dir(&foreign).expect("rmdir the foreign directory");
    let report = reap(&cookie, &[]);
    assert!(actions(&report, "left-open").is_empty(), "{report:#}");
    assert_eq!(state(), InstanceState::Reaped, "{report:#}");
    assert!(!outer.exists(), "{report:#}");
    let _ = std::fs::remove_dir_all(&scratch);
    cookie.assert_none_survive(Duration::from_secs(1));
}

#[test]
fn a_shim_whose_server_made_a_cgroup_of_its_own_leaves_the_row_to_the_reap() {
    if !require(Feature::Cgroup, "skipping: no instance cgroup here") {
        return;
    }
    let cookie = Cookie::new();
    // The server makes a sub-cgroup of its own naming in its instance cgroup (`own`), then
    // runs the fixture. The shim kills everything at the end, but the emptied `own` is not
    // Tether's to remove, and so neither is the instance cgroup: its row must stay open.
    let mount = tether_supervisor::cgroup::mounts::locate_v2()
        .expect("cgroup v2")
        .mount
        .mount_point;
    let script = format!(
        "d=\"{}$(sed -n 's/^0:://p' /proc/self/cgroup)/own\" && mkdir \"$d\" && exec {FIXTURE} --tag {}",
        mount.display(),
        cookie.0
    );
    let mut w = WrapBuilder::new(&cookie, Mode::Cgroup)
        .command(&["sh", "-c", &script])
        .spawn();
    w.wait_ready();
    let id = {
        let ledger = Ledger::open(&cookie.state_dir()).expect("ledger");
        let rows = ledger.open_instances().expect("rows");
        rows.into_iter().next().expect("the instance's row").intent.id
    };
    drop(w.stdin.take());
    w.wait_exit(SLACK);
    cookie.assert_none_survive(SLACK);
    let row = || {
        Ledger::open(&cookie.state_dir())
            .expect("ledger")
            .instance(&id)
            .expect("read")
            .expect("row")
    };
    assert!(
        row().state.is_open(),
        "the shim closed a row whose cgroup is still there: {:?}\n{}",
        row(),
        w.stderr_lines().join("\n")
    );
    assert!(
        w.stderr_lines()
            .iter()
            .any(|l| l.contains("stays open for `tether reap`")),
        "{}",
        w.stderr_lines().join("\n")
    );
    // The reap finds it, names what holds it, and keeps it open; removed by hand, the next
    // reap closes it.
    let report = reap(&cookie, &[]);
    assert_one_action(&report, "left-open", "own");
    let cgroup = row().intent.cgroup.expect("its cgroup");
    std::fs::remove_dir(cgroup.join("own")).expect("rmdir own");
    reap(&cookie, &[]);
    assert!(!row().state.is_open(), "closed once its cgroup could go");
    assert!(!cgroup.exists());
}

/// A nest that ends cleanly (the client closes stdin) closes both rows as ended, with their
/// reasons, and both owners. (The inner shim carries the outer instance's cookie, so it closes
/// its row itself rather than hand it to its watchdog, which the outer shim may kill with the
/// rest of its cgroup once its server, the inner shim, exits; this test shows the outcome, not
/// that race, which the timing here seldom loses.) The outer grace is the longer, so the inner
/// shim ends its own tree (its server ignores EOF and SIGTERM: SIGKILL after 300 ms) before the
/// outer one would kill it.
#[test]
fn a_nest_that_ends_cleanly_closes_both_rows_and_owners() {
    if !require(Feature::Cgroup, "skipping: no nested cgroups to test") {
        return;
    }
    let cookie = Cookie::new();
    let inner_wrap = [
        TETHER, "wrap", "--grace", "300ms", "--", FIXTURE, "--tag", &cookie.0, "--zoo",
    ];
    let mut wrapped = WrapBuilder::new(&cookie, Mode::Cgroup)
        .grace(Duration::from_secs(3))
        .command(&inner_wrap)
        .spawn();
    assert_eq!(wrapped.wait_ready().sleepers.len(), 5);
    wrapped.stdin.take();
    wrapped.wait_exit(SLACK);
    cookie.assert_none_survive(SLACK);
    let mut rows = Vec::new();
    let closed = eventually(SLACK, || {
        rows = instances(&cookie);
        rows.len() == 2 && rows.iter().all(|r| r.state == InstanceState::Ended)
    });
    assert!(closed, "both rows should be ended by their shims: {rows:#?}");
    for row in &rows {
        let reason = row.end_reason.as_deref().unwrap_or_default();
        assert!(reason.contains("server"), "{reason:?} says how the server ended");
    }
    let owners = Ledger::open(&cookie.state_dir())
        .and_then(|l| l.owners())
        .expect("owners");
    assert!(
        owners.iter().all(|o| o.ended_ms.is_some()),
        "every owner should be ended: {owners:#?}"
    );
}
