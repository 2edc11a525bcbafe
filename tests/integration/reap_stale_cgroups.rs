//! A sweep touches only the instance cgroups its own ledger's rows name. Another state
//! directory's `tether-*` cgroup is left alone, even empty and stale: that Tether's own sweep is
//! the one to end it and say so (a sweep that took it would make the owner's report lie). An
//! empty cgroup that a closed row of this ledger still names is removed once stale, not while
//! fresh; without a usable ledger, no cgroup is touched at all.
//!
//! Every Tether here runs in a cgroup of this test's own, since a sweep looks for `tether-*`
//! cgroups under its own cgroup: there, the cgroups are this test's alone, and the sweeps of
//! other tests (which run in this process's cgroup) do not see them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tether_supervisor::cgroup::mounts::locate_v2;
use tether_supervisor::ids::random_id;
use tether_supervisor::ledger::FILE_NAME;

use crate::harness::{actions, eventually, require, Cookie, Feature, Mode, WrapBuilder, COOKIE_VAR, TETHER};
use crate::unusable::{alive, cookie_carrier, json_of};

/// How long a test waits for anything that should be quick.
const PATIENCE: Duration = Duration::from_secs(20);

/// Removes the cgroups a test made, innermost first, however the test ends.
struct Made(Vec<PathBuf>);

impl Drop for Made {
    fn drop(&mut self) {
        for dir in self.0.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

fn make(made: &mut Made, dir: PathBuf) -> PathBuf {
    fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    made.0.push(dir.clone());
    dir
}

/// A test's cookie and its own cgroup (the home of everything it runs), under this process's;
/// `None` (the test skips) without a writable cgroup.
fn set_up() -> Option<(Cookie, Made, PathBuf)> {
    let cookie = Cookie::new();
    if !require(Feature::Cgroup, "skipping: no instance cgroup can be left here") {
        return None;
    }
    let own = locate_v2().expect("cgroup v2").own_dir;
    let mut made = Made(Vec::new());
    let home = make(&mut made, own.join(format!("tt-{}", cookie.0)));
    Some((cookie, made, home))
}

/// Sets a directory's modification time two minutes back.
fn age(dir: &Path) {
    let then = SystemTime::now() - Duration::from_secs(120);
    fs::File::open(dir)
        .and_then(|f| f.set_modified(then))
        .unwrap_or_else(|e| panic!("ageing {}: {e}", dir.display()));
}

/// `tether --state-dir STATE reap --json`, run inside the cgroup `home`: its exit code and report.
fn reap_in(cookie: &Cookie, home: &Path, state_dir: &Path) -> (Option<i32>, serde_json::Value) {
    let out = Command::new("sh")
        .args([
            "-c",
            r#"echo $$ > "$1/cgroup.procs" && exec "$2" --state-dir "$3" reap --json"#,
            "sh",
        ])
        .arg(home)
        .arg(TETHER)
        .arg(state_dir)
        .env(COOKIE_VAR, &cookie.0)
        .output()
        .expect("running reap");
    json_of(&out)
}

fn home_str(home: &Path) -> &str {
    home.to_str().expect("UTF-8 cgroup path")
}

/// The cgroups a report says it removed.
fn removed(report: &serde_json::Value) -> Vec<&str> {
    actions(report, "cgroup-removed")
        .into_iter()
        .filter_map(|a| a["cgroup"].as_str())
        .collect()
}

/// Starts `tether wrap` (on the test's ledger) in `home`, then SIGKILLs its watchdog and shim:
/// the server dies by its parent-death signal, and the instance's cgroup is left, empty, its
/// row open. Returns the instance id and the cgroup, which `made` removes should the test fail.
fn orphan_in(cookie: &Cookie, home: &Path, made: &mut Made) -> (String, PathBuf) {
    let id = random_id().expect("id");
    let mut w = WrapBuilder::new(cookie, Mode::Cgroup)
        .tether(&["--instance-id", &id])
        .spawn_via(&[
            "sh",
            "-c",
            r#"echo $$ > "$0/cgroup.procs" && exec "$@""#,
            home_str(home),
        ]);
    w.wait_ready();
    let cgroup = home.join(format!("tether-{id}"));
    assert!(cgroup.is_dir(), "no instance cgroup at {}", cgroup.display());
    made.0.push(cgroup.clone());
    let watchdog = crate::ssh_tether::watchdog(&w);
    kill(Pid::from_raw(watchdog), Signal::SIGKILL).expect("kill the watchdog");
    kill(Pid::from_raw(w.pid()), Signal::SIGKILL).expect("kill tether");
    w.wait_exit(PATIENCE);
    cookie.assert_none_survive(PATIENCE);
    let empty = eventually(PATIENCE, || {
        fs::read_to_string(cgroup.join("cgroup.events")).is_ok_and(|e| e.contains("populated 0"))
    });
    assert!(empty, "{} still has members", cgroup.display());
    (id, cgroup)
}

/// Reaps on the test's own ledger in `home`: it must succeed and remove `left`, and only it.
fn own_sweep_removes(cookie: &Cookie, home: &Path, left: &Path) -> serde_json::Value {
    let (code, report) = reap_in(cookie, home, &cookie.state_dir());
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(removed(&report), vec![left.to_str().expect("UTF-8")], "{report:#}");
    assert!(!left.exists(), "its own sweep left {}", left.display());
    report
}

/// Proves that nothing the test started survives, and that its cgroups are gone.
fn all_gone(cookie: &Cookie, made: Made, home: &Path) {
    cookie.assert_none_survive(Duration::from_secs(1));
    drop(made);
    assert!(!home.exists(), "the test's cgroups were not removed");
}

#[test]
fn a_second_state_directory_s_sweep_leaves_the_first_s_cgroups_alone() {
    let Some((cookie, mut made, home)) = set_up() else {
        return;
    };
    let (id, left) = orphan_in(&cookie, &home, &mut made);
    // Empty and old: only its ledger's row says whose it is.
    age(&left);

    // (Other tests' cookie carriers may be reported unknown: only this instance matters.)
    let other = cookie.state_dir().join("other");
    let (code, report) = reap_in(&cookie, &home, &other);
    assert_eq!(code, Some(0), "{report:#}");
    let touched: Vec<_> = report["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| {
            a["instance"] == id.as_str() || a["cgroup"].as_str().is_some_and(|c| c.starts_with(home_str(&home)))
        })
        .collect();
    assert!(touched.is_empty(), "another state directory's sweep acted: {report:#}");
    assert!(
        left.is_dir(),
        "another state directory's sweep removed {}",
        left.display()
    );

    // Its own sweep finds it, removes it and says so.
    let report = own_sweep_removes(&cookie, &home, &left);
    assert_eq!(actions(&report, "reaped").len(), 1, "{report:#}");
    all_gone(&cookie, made, &home);
}

#[test]
fn an_empty_cgroup_a_closed_row_still_names_is_removed_once_stale() {
    let Some((cookie, mut made, home)) = set_up() else {
        return;
    };
    let (id, left) = orphan_in(&cookie, &home, &mut made);
    // Recorded in an earlier boot: the sweep closes the row as lost and does not go by its
    // cgroup, which (the boot id faked) is still here.
    crate::ledger::pretend_an_earlier_boot(&cookie, &id);
    let (code, report) = reap_in(&cookie, &home, &cookie.state_dir());
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(actions(&report, "lost").len(), 1, "{report:#}");
    assert!(removed(&report).is_empty(), "a fresh cgroup was removed: {report:#}");
    assert!(left.is_dir(), "{} was removed while fresh", left.display());

    // Stale now, and still named by the closed row.
    age(&left);
    own_sweep_removes(&cookie, &home, &left);
    all_gone(&cookie, made, &home);
}

#[test]
fn reap_without_a_ledger_touches_no_cgroup() {
    let Some((cookie, mut made, home)) = set_up() else {
        return;
    };
    let stale = make(&mut made, home.join(format!("tether-{}", random_id().expect("id"))));
    let fresh = make(&mut made, home.join(format!("tether-{}", random_id().expect("id"))));
    let busy = make(&mut made, home.join(format!("tether-{}", random_id().expect("id"))));
    let mut member = cookie_carrier(&cookie, &random_id().expect("id"));
    let pid = member.id() as i32;
    if let Err(e) = fs::write(busy.join("cgroup.procs"), pid.to_string()) {
        // `require` promised a writable cgroup: failing to use one is a failure, not a skip.
        member.kill().expect("kill the member");
        member.wait().expect("reap it");
        panic!("cannot move a process into a cgroup here ({e}), though the host has a writable cgroup v2");
    }
    age(&stale);
    age(&busy);

    let dir = cookie.state_dir().join("garbage");
    fs::create_dir_all(&dir).expect("state dir");
    fs::write(dir.join(FILE_NAME), "garbage").expect("garbage ledger");
    let (code, report) = reap_in(&cookie, &home, &dir);
    assert_eq!(code, Some(1), "{report:#}");
    assert!(removed(&report).is_empty(), "{report:#}");
    assert!(
        stale.is_dir() && fresh.is_dir() && busy.is_dir(),
        "a cgroup no ledger proves ours was removed"
    );
    assert!(alive(pid), "the busy cgroup's member was killed");

    member.kill().expect("kill the member by pid");
    member.wait().expect("reap it");
    all_gone(&cookie, made, &home);
}
