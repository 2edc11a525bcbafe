//! `tether doctor` after a `tether wrap` shim was SIGKILLed and its watchdog ended every process:
//! nothing is left running, but the instance's row is still open, so a sweep has work. The
//! doctor gives one verdict, in text and JSON alike: the instance is an orphan ("shim died;
//! nothing left running"), with the exact `tether reap` command, and the exit status is 1.
//! That command, run as printed, closes the row; then the doctor is satisfied.

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tether_supervisor::ledger::Ledger;

use crate::harness::{tether_run, Cookie, Mode, WrapBuilder};
use crate::unusable::{json_of, run_fix};

#[test]
fn a_dead_shim_s_open_row_is_an_orphan_until_reaped() {
    let cookie = Cookie::new();
    let mut w = WrapBuilder::new(&cookie, Mode::Cgroup)
        .fixture(&["--children", "2"])
        .spawn();
    w.wait_ready();
    let instance = Ledger::open(&cookie.state_dir())
        .expect("ledger")
        .open_instances()
        .expect("read")
        .pop()
        .expect("the instance")
        .intent
        .id;
    kill(Pid::from_raw(w.pid()), Signal::SIGKILL).expect("kill the shim");
    w.wait_exit(Duration::from_secs(5));
    // The watchdog ends the tree (by its cgroup, or by the cookie without one), then itself.
    cookie.assert_none_survive(Duration::from_secs(5));

    let text = tether_run(&cookie, &["doctor"]);
    let (code, diag) = json_of(&tether_run(&cookie, &["doctor", "--json"]));
    assert_eq!(text.status.code(), Some(1), "{}", String::from_utf8_lossy(&text.stdout));
    assert_eq!(code, Some(1), "{diag:#}");
    let orphans = diag["orphans"].as_array().expect("orphans");
    assert_eq!(orphans.len(), 1, "{diag:#}");
    let orphan = &orphans[0];
    assert_eq!(orphan["instance"], instance.as_str(), "{diag:#}");
    assert!(orphan["pid"].is_null() && orphan["cgroup"].is_null(), "{diag:#}");
    let reason = orphan["reason"].as_str().expect("reason");
    assert!(reason.contains("shim died; nothing left running"), "{reason}");
    let fix = orphan["fix"].as_str().expect("fix");
    assert!(fix.ends_with(" reap"), "{fix}");

    let text = String::from_utf8_lossy(&text.stdout);
    assert!(!text.contains("orphans: none"), "{text}");
    assert!(text.contains("orphans: 1 instance(s) need `tether reap`"), "{text}");
    assert!(
        text.contains(&format!("instance {} [tether-fixture]: {reason}", &instance[..8])),
        "{text}"
    );
    assert!(text.contains(&format!("fix: {fix}")), "{text}");

    // The dry run says the same: the row would be closed.
    let dry = tether_run(&cookie, &["reap", "--dry-run", "--json"]);
    let (_, dry) = json_of(&dry);
    assert!(
        dry["actions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["kind"] == "would-reap" && a["instance"] == instance.as_str()),
        "{dry:#}"
    );

    run_fix(fix);
    let state = Ledger::open(&cookie.state_dir())
        .expect("ledger")
        .instance(&instance)
        .expect("read")
        .expect("the row")
        .state;
    assert_eq!(state.as_str(), "reaped");
    let after = tether_run(&cookie, &["doctor"]);
    let after_text = String::from_utf8_lossy(&after.stdout);
    assert!(
        after.status.success() && after_text.contains("orphans: none"),
        "{after_text}"
    );
    cookie.assert_none_survive(Duration::from_secs(1));
}
