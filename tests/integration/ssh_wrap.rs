//! `tether wrap --ssh`: every way an SSH server's session ends leaves no remote process, the
//! stream passes unchanged, and the ledger records the remote side and how it ended.
//!
//! The remote server is the fixture with the escapee zoo where the case allows: it ignores EOF
//! and SIGTERM (and, a Rust program, SIGPIPE), and has same-group children, a `setsid` child
//! and double-forked grandchildren, one with an empty environment.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

use crate::harness::{Cookie, ZOO, ZOO_SLEEPERS};
use crate::ssh_tether::{
    initialize_and_echo, local_ssh, remote_record, row, wait_identity, watchdog, wrap, PATIENCE, REMOTE_DEADLINE,
};
use crate::sshd::Sshd;

#[test]
fn a_session_runs_and_ends_through_ssh_and_the_identity_line_is_not_forwarded() {
    let Some(sshd) = Sshd::start() else { return };
    let cookie = Cookie::new();
    let mut w = wrap(&sshd, &cookie, &["--stderr-lines", "2", "--children", "1"]);
    initialize_and_echo(&mut w, "over ssh");
    let rec = wait_identity(&cookie);
    let ready = w.wait_ready();
    assert_eq!(
        rec.identity.as_ref().map(|i| i.pid),
        Some(ready.pid),
        "recorded pid is the server's"
    );
    drop(w.stdin.take());
    let t0 = Instant::now();
    assert_eq!(w.wait_exit(PATIENCE).code(), Some(0));
    cookie.assert_none_survive(REMOTE_DEADLINE.saturating_sub(t0.elapsed()));
    let lines = w.stderr_lines();
    assert!(lines.iter().any(|l| l == "tether-fixture: stderr line 2"), "{lines:#?}");
    assert!(
        !lines.iter().any(|l| l.contains("TETHER-REMOTE-ID")),
        "identity line forwarded: {lines:#?}"
    );
    let rec = remote_record(&cookie);
    assert!(rec.settled, "{rec:?}");
    let r = row(&cookie);
    assert_eq!(r.intent.command[..2], ["ssh".to_string(), sshd.destination()]);
    assert_eq!(r.state.as_str(), "ended");
}

/// Starts the zoo remotely, ends it with `end`, and proves that nothing survives within the
/// deadline; returns the ledger's outcome of the remote side (`None`: no sshd, the test skips).
fn zoo_ends(end: impl FnOnce(&mut crate::harness::Wrapped)) -> Option<String> {
    let sshd = Sshd::start()?;
    let cookie = Cookie::new();
    let mut w = wrap(&sshd, &cookie, ZOO);
    assert_eq!(w.wait_ready().sleepers.len(), ZOO_SLEEPERS);
    wait_identity(&cookie);
    let t0 = Instant::now();
    end(&mut w);
    cookie.assert_none_survive(REMOTE_DEADLINE.saturating_sub(t0.elapsed()));
    w.wait_exit(PATIENCE);
    let mut rec = remote_record(&cookie);
    // The watchdog's `settle-remote` may still be writing its outcome.
    crate::harness::eventually(PATIENCE, || {
        rec = remote_record(&cookie);
        rec.settled
    });
    assert!(rec.settled, "remote side not settled: {rec:?}");
    Some(rec.outcome.unwrap_or_default())
}

#[test]
fn the_local_ssh_client_sigkilled_leaves_no_remote_survivor() {
    let Some(outcome) = zoo_ends(|w| {
        kill(Pid::from_raw(local_ssh(w)), Signal::SIGKILL).expect("kill ssh");
    }) else {
        return;
    };
    assert!(outcome.contains("remote kill"), "{outcome}");
}

#[test]
fn tether_wrap_sigkilled_leaves_no_remote_survivor() {
    let Some(outcome) = zoo_ends(|w| {
        let wd = watchdog(w);
        assert_ne!(wd, w.pid());
        kill(Pid::from_raw(w.pid()), Signal::SIGKILL).expect("kill tether");
    }) else {
        return;
    };
    assert!(outcome.starts_with("after the shim died"), "{outcome}");
}

#[test]
fn session_end_leaves_no_remote_survivor() {
    let Some(outcome) = zoo_ends(|w| drop(w.stdin.take())) else {
        return;
    };
    assert!(outcome.contains("remote kill"), "{outcome}");
}

#[test]
fn a_signal_to_tether_leaves_no_remote_survivor() {
    let Some(outcome) = zoo_ends(|w| kill(Pid::from_raw(w.pid()), Signal::SIGTERM).expect("term tether")) else {
        return;
    };
    assert!(outcome.contains("remote kill"), "{outcome}");
}

#[test]
fn a_remote_server_exiting_by_itself_takes_its_tree_along() {
    let Some(sshd) = Sshd::start() else { return };
    let cookie = Cookie::new();
    let mut w = wrap(
        &sshd,
        &cookie,
        &[ZOO, &["--exit-after", "1", "--exit-code", "7"]].concat(),
    );
    w.wait_ready();
    wait_identity(&cookie);
    let echo = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "bye"}}});
    let t0 = Instant::now();
    let reply = crate::ssh_tether::call(&mut w, &echo);
    assert_eq!(
        reply.pointer("/result/content/0/text").and_then(Value::as_str),
        Some("bye")
    );
    assert_eq!(
        w.wait_exit(PATIENCE).code(),
        Some(7),
        "the remote server's status is tether's"
    );
    cookie.assert_none_survive(REMOTE_DEADLINE.saturating_sub(t0.elapsed()));
    let rec = remote_record(&cookie);
    assert!(rec.settled, "{rec:?}");
}

#[test]
fn every_byte_and_a_megabyte_json_line_round_trip_over_ssh() {
    let Some(sshd) = Sshd::start() else { return };
    let cookie = Cookie::new();
    // The default grace: the client closes stdin at once, while a megabyte is still in flight
    // both ways, and the server gets half of it to finish by itself.
    let mut w = crate::ssh_tether::wrap_graced(&sshd, &cookie, &["--raw-echo"], Duration::from_secs(2));
    let text: String = (0..1024 * 1024).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let mut sent: Vec<u8> = (0..=255u8).cycle().take(256 * 64).collect();
    sent.push(b'\n');
    let line = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": text}}});
    sent.extend(serde_json::to_vec(&line).expect("json"));
    sent.push(b'\n');
    let mut stdin = w.stdin.take().expect("stdin");
    let payload = sent.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&payload).expect("write"));
    let mut received = Vec::new();
    w.stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut received)
        .expect("read");
    writer.join().expect("writer");
    assert_eq!(received.len(), sent.len());
    assert!(received == sent, "bytes differ");
    assert_eq!(w.wait_exit(PATIENCE).code(), Some(0));
    cookie.assert_none_survive(Duration::from_secs(3));
}
