//! Remote kills expire: an SSH instance whose shim died while ssh was still connecting to a
//! host that then stays down owes a remote kill that can never run. Each sweep tries it and
//! reports the failure, until the expiry (counted from the first failure) passes: then the
//! sweep gives it up, says so with the command that checks the host by hand, and no later sweep
//! tries again.

use std::net::TcpListener;
use std::process::{Command, Stdio};

use crate::harness::{actions, require, Cookie, Feature, Mode, WrapBuilder, TETHER};
use crate::ssh_tether::{instance_id, local_ssh, remote_record, PATIENCE};

/// `tether reap --json` with the remote kills' expiry set to `expiry`.
fn reap_with_expiry(cookie: &Cookie, expiry: &str) -> serde_json::Value {
    let out = cookie
        .set_env(&mut Command::new(TETHER))
        .args(["reap", "--json"])
        .env("TETHER_REMOTE_KILL_EXPIRY", expiry)
        .stdin(Stdio::null())
        .output()
        .expect("running tether reap");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the reap's JSON")
}

#[test]
fn a_remote_kill_to_a_host_that_stays_down_expires_with_a_clear_report() {
    if !require(Feature::Ssh, "skipping: no ssh client") {
        return;
    }
    let cookie = Cookie::new();
    // A host that accepts the connection and never speaks: ssh waits in its banner exchange.
    let silent = TcpListener::bind("127.0.0.1:0").expect("a silent port");
    let dest = format!("root@{}", silent.local_addr().expect("its address"));
    let flags = [
        "--ssh",
        dest.as_str(),
        "--ssh-config",
        "/dev/null",
        "--instance-id",
        &instance_id(&cookie),
    ];
    let w = WrapBuilder::new(&cookie, Mode::Cgroup).tether(&flags).spawn();
    local_ssh(&w);
    let before = remote_record(&cookie);
    assert!(!before.settled && before.identity.is_none(), "{before:?}");
    // The shim, its watchdog and ssh die at once, mid-connection; then the host goes down.
    cookie.kill_all();
    drop(silent);

    let first = reap_with_expiry(&cookie, "1h");
    let failed = actions(&first, "remote-failed");
    assert_eq!(failed.len(), 1, "{first:#}");
    let rec = remote_record(&cookie);
    assert!(!rec.settled && rec.failures == 1, "{rec:?}");

    let second = reap_with_expiry(&cookie, "0s");
    let expired = actions(&second, "remote-expired");
    assert_eq!(expired.len(), 1, "{second:#}");
    let reason = expired[0]["reason"].as_str().expect("a reason");
    assert!(reason.contains("gave up after 2 failed remote kill(s)"), "{reason}");
    assert!(reason.contains(&dest), "{reason}");
    assert!(
        reason.contains(&format!("pgrep -af TETHER_REMOTE_COOKIE={}", rec.cookie)),
        "{reason}"
    );
    let rec = remote_record(&cookie);
    assert!(rec.settled, "{rec:?}");

    let third = reap_with_expiry(&cookie, "0s");
    assert!(
        actions(&third, "remote-failed").is_empty() && actions(&third, "remote-expired").is_empty(),
        "a given-up remote kill is not tried again: {third:#}"
    );
    cookie.assert_none_survive(PATIENCE);
}
