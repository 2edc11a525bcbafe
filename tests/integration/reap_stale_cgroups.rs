//! `tether reap` without a usable ledger still removes the instance cgroups nothing can be
//! using (empty, and for over a minute), and no other: not a fresh one a shim may be about to
//! fill, not one with a member.
//!
//! The reap runs in a cgroup of this test's own, since it looks for `tether-*` cgroups under
//! its own cgroup: there, the cgroups are this test's alone, and the reaps of other tests
//! (which run in this process's cgroup) do not see them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use tether_supervisor::cgroup::mounts::locate_v2;
use tether_supervisor::ids::random_id;

use crate::harness::{require, Cookie, Feature, COOKIE_VAR, TETHER};
use crate::unusable::{alive, cookie_carrier, json_of};

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

/// Sets a directory's modification time two minutes back.
fn age(dir: &Path) {
    let then = SystemTime::now() - Duration::from_secs(120);
    fs::File::open(dir)
        .and_then(|f| f.set_modified(then))
        .unwrap_or_else(|e| panic!("ageing {}: {e}", dir.display()));
}

#[test]
fn reap_without_a_ledger_removes_only_empty_stale_cgroups() {
    let cookie = Cookie::new();
    if !require(Feature::Cgroup, "skipping: no instance cgroup can be left here") {
        return;
    }
    let own = locate_v2().expect("cgroup v2").own_dir;
    let mut made = Made(Vec::new());
    let home = make(&mut made, own.join(format!("tt-{}", cookie.0)));
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
    fs::write(dir.join(tether_supervisor::ledger::FILE_NAME), "garbage").expect("garbage ledger");
    let out = Command::new("sh")
        .args([
            "-c",
            r#"echo $$ > "$1/cgroup.procs" && exec "$2" --state-dir "$3" reap --json"#,
            "sh",
        ])
        .arg(&home)
        .arg(TETHER)
        .arg(&dir)
        .env(COOKIE_VAR, &cookie.0)
        .output()
        .expect("running reap");
    let (code, report) = json_of(&out);
    assert_eq!(code, Some(1), "{report:#}");
    let removed: Vec<&str> = report["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["kind"] == "cgroup-removed")
        .filter_map(|a| a["cgroup"].as_str())
        .collect();
    assert_eq!(removed, vec![stale.to_str().expect("UTF-8")], "{report:#}");
    assert!(!stale.exists(), "the stale cgroup is still there");
    assert!(fresh.is_dir() && busy.is_dir(), "a cgroup in use or fresh was removed");
    assert!(alive(pid), "the busy cgroup's member was killed");

    member.kill().expect("kill the member by pid");
    member.wait().expect("reap it");
    cookie.assert_none_survive(Duration::from_secs(1));
    drop(made);
    assert!(!home.exists(), "the test's cgroups were not removed");
}
