//! Helpers for the tests of `tether ps`, `reap` and `doctor` against a ledger they cannot use:
//! running them on a chosen state directory, a cookie carrier that no ledger knows, and
//! checks that a message is said once and that a printed fix works.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use crate::harness::{tether_run, Cookie, FIXTURE};

/// `tether --state-dir DIR ARGS…`, with the test's cookie in its environment.
pub fn tether_at(cookie: &Cookie, dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--state-dir", dir.to_str().expect("UTF-8 test path")];
    all.extend(args);
    tether_run(cookie, &all)
}

/// The JSON a run printed, with its exit code.
pub fn json_of(out: &Output) -> (Option<i32>, serde_json::Value) {
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), json)
}

/// Stdout and stderr of a run, together: what a person at a terminal sees.
pub fn seen(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts that `what` exits with 1 and says `cause` exactly once, stdout and stderr together.
pub fn assert_fails_saying_once(what: &str, out: &Output, cause: &str) {
    let text = seen(out);
    assert_eq!(out.status.code(), Some(1), "{what}:\n{text}");
    assert_eq!(
        text.matches(cause).count(),
        1,
        "{what} must say {cause:?} once:\n{text}"
    );
}

/// A fixture started by the test with a Tether cookie of `instance` in its environment, as a
/// server of some other Tether would carry it; it waits on its stdin.
pub fn cookie_carrier(cookie: &Cookie, instance: &str) -> Child {
    Command::new(FIXTURE)
        .args(["--tag", &cookie.0])
        .env("TETHER_INSTANCE", instance)
        .env("TETHER_OWNER", tether_supervisor::ids::random_id().expect("id"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning a cookie carrier")
}

/// Pids listed under `key` (`actions`, `unknown_cookies`) whose `instance` is `instance`.
pub fn pids_of(json: &serde_json::Value, key: &str, instance: &str) -> Vec<i32> {
    json[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["instance"] == instance)
        .filter_map(|a| a["pid"].as_i64().and_then(|p| i32::try_from(p).ok()))
        .collect()
}

/// Pids `tether ps --json` lists for `instance` when it runs without a ledger.
pub fn unverified_pids(listing: &serde_json::Value, instance: &str) -> Vec<i32> {
    listing["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["id"] == instance)
        .flat_map(|i| i["processes"].as_array().into_iter().flatten())
        .filter_map(|p| p["pid"].as_i64().and_then(|p| i32::try_from(p).ok()))
        .collect()
}

/// Runs a printed fix with `sh -c`, as a person pasting it would; panics when it fails.
pub fn run_fix(fix: &str) {
    let out = Command::new("sh").args(["-c", fix]).output().expect("running the fix");
    assert!(out.status.success(), "{fix}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Whether `pid` is alive (not gone, not a zombie).
pub fn alive(pid: i32) -> bool {
    tether_supervisor::process::procfs::state_of(pid).is_some_and(|s| s != 'Z')
}
