//! A state path that is a regular file (or has one above it) does not stop `tether ps`, `reap`
//! or `doctor`: each still shows or reports the cookie carriers `/proc` shows, kills none of
//! them, names the file in the way once, prints the command that moves it aside, and exits
//! with 1. The fix, run as printed, lets the ledger be created.

use std::fs;
use std::time::Duration;

use crate::harness::Cookie;
use crate::unusable::{
    alive, assert_fails_saying_once, cookie_carrier, json_of, pids_of, run_fix, tether_at, unverified_pids,
};

#[test]
fn a_state_path_that_is_a_file_is_named_once_with_its_fix() {
    let cookie = Cookie::new();
    fs::create_dir_all(cookie.state_dir()).expect("scratch dir");
    let file = cookie.state_dir().join("state");
    fs::write(&file, "a note someone left\n").expect("the file in the way");
    let instance = tether_supervisor::ids::random_id().expect("id");
    let mut carrier = cookie_carrier(&cookie, &instance);
    let pid = carrier.id() as i32;
    let cause = "the state directory is a file, not a directory";

    for args in [&["ps"][..], &["reap"], &["doctor"]] {
        let out = tether_at(&cookie, &file, args);
        assert_fails_saying_once(args[0], &out, cause);
        let text = crate::unusable::seen(&out);
        assert!(
            text.contains(&format!(
                "fix: mv {} {}.not-a-directory-",
                file.display(),
                file.display()
            )),
            "{}: {text}",
            args[0]
        );
        assert!(text.contains("--state-dir DIR"), "{}: {text}", args[0]);
    }
    let (code, listing) = json_of(&tether_at(&cookie, &file, &["ps", "--json"]));
    assert_eq!(code, Some(1));
    assert_eq!(unverified_pids(&listing, &instance), vec![pid], "{listing:#}");
    let (code, report) = json_of(&tether_at(&cookie, &file, &["reap", "--json"]));
    assert_eq!(code, Some(1));
    assert_eq!(pids_of(&report, "actions", &instance), vec![pid], "{report:#}");
    let (code, diag) = json_of(&tether_at(&cookie, &file, &["doctor", "--json"]));
    assert_eq!(code, Some(1));
    assert_eq!(pids_of(&diag, "unknown_cookies", &instance), vec![pid], "{diag:#}");
    assert!(alive(pid), "a process no ledger proves Tether started was killed");

    // A state directory below the file: the file above it is named.
    let below = file.join("tether");
    let out = tether_at(&cookie, &below, &["ps"]);
    assert_fails_saying_once(
        "ps below a file",
        &out,
        &format!("{}, above the state directory, is a file", file.display()),
    );

    run_fix(diag["ledger"]["fix"].as_str().expect("a fix"));
    assert!(file.is_dir() || !file.exists(), "the file is still in the way");
    let ps = tether_at(&cookie, &file, &["ps"]);
    assert!(ps.status.success(), "{}", crate::unusable::seen(&ps));
    assert!(file.is_dir(), "ps did not create the state directory");

    carrier.kill().expect("kill the carrier by pid");
    carrier.wait().expect("reap it");
    cookie.assert_none_survive(Duration::from_secs(1));
}
