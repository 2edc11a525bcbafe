//! `tether wrap --ssh` against a real sshd, for the SSH tests: a wrapped fixture on the "remote"
//! host (127.0.0.1), the local ssh client it runs, and the ledger's record of its remote side.
//!
//! The remote processes are found by the test's cookie like local ones: the fixture and every
//! sleeper carry it as `--tag` in their argv (even the `env -i` escapee), and so do the remote
//! wrapper's shells (it is among their positional parameters).

use std::io::{BufRead, Write};
use std::time::Duration;

use serde_json::{json, Value};
use tether_supervisor::ledger::{InstanceRow, Ledger};
use tether_supervisor::process::procfs;
use tether_supervisor::ssh::RemoteSide;

use crate::harness::{eventually, is_named, Cookie, Mode, WrapBuilder, Wrapped};
use crate::sshd::Sshd;

/// What the issue allows for a remote server to be gone, from the moment its end was caused.
pub const REMOTE_DEADLINE: Duration = Duration::from_secs(3);
/// Grace between SIGTERM and SIGKILL in these tests.
pub const GRACE: Duration = Duration::from_millis(300);
/// How long a test waits for anything that should be quick.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// `tether wrap --ssh … -- tether-fixture --tag COOKIE flags…`, with a fixed instance id.
pub fn wrap(sshd: &Sshd, cookie: &Cookie, flags: &[&str]) -> Wrapped {
    wrap_graced(sshd, cookie, flags, GRACE)
}

/// [`wrap`] with another grace.
pub fn wrap_graced(sshd: &Sshd, cookie: &Cookie, flags: &[&str], grace: Duration) -> Wrapped {
    wrap_with(sshd, cookie, &[], flags, grace)
}

/// [`wrap_graced`] with more flags for `tether` itself.
pub fn wrap_with(sshd: &Sshd, cookie: &Cookie, tether_flags: &[&str], flags: &[&str], grace: Duration) -> Wrapped {
    let mut tether = sshd.tether_flags();
    tether.extend(["--instance-id".to_string(), instance_id(cookie)]);
    tether.extend(tether_flags.iter().map(|f| f.to_string()));
    let tether: Vec<&str> = tether.iter().map(String::as_str).collect();
    WrapBuilder::new(cookie, Mode::Cgroup)
        .grace(grace)
        .tether(&tether)
        .fixture(flags)
        .spawn()
}

/// The instance id (and so the remote cookie) of this test's wrap: derived from its cookie.
pub fn instance_id(cookie: &Cookie) -> String {
    cookie.0.trim_start_matches("tt").to_string()
}

/// The local ssh client: the wrapped server, a child of `tether`.
pub fn local_ssh(w: &Wrapped) -> i32 {
    let mut found = None;
    eventually(PATIENCE, || {
        found = child_named(w.pid(), "ssh");
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("no ssh child of tether {}", w.pid()))
}

/// The watchdog: the other child of `tether`, named `tether-watchdog`.
pub fn watchdog(w: &Wrapped) -> i32 {
    child_named(w.pid(), "tether-watchdog").unwrap_or_else(|| panic!("no watchdog child of tether {}", w.pid()))
}

/// A child of `parent` whose command name is `name`.
fn child_named(parent: i32, name: &str) -> Option<i32> {
    procfs::children_of(parent).into_iter().find(|&p| is_named(p, name))
}

/// The ledger's row for this test's instance.
pub fn row(cookie: &Cookie) -> InstanceRow {
    let ledger = Ledger::open(&cookie.state_dir()).expect("open the test's ledger");
    ledger
        .instance(&instance_id(cookie))
        .expect("read the instance")
        .expect("the instance is recorded")
}

/// The ledger's record of the remote side.
pub fn remote_record(cookie: &Cookie) -> RemoteSide {
    let row = row(cookie);
    let json = row.intent.remote.expect("an SSH instance has a remote record");
    RemoteSide::from_json(&json).unwrap_or_else(|| panic!("not a remote record: {json}"))
}

/// Waits until the ledger holds the remote identity (the wrapper reported it).
pub fn wait_identity(cookie: &Cookie) -> RemoteSide {
    let mut rec = None;
    let ok = eventually(PATIENCE, || {
        rec = Some(remote_record(cookie));
        rec.as_ref().is_some_and(|r| r.identity.is_some())
    });
    assert!(ok, "no remote identity recorded: {rec:?}");
    rec.expect("record")
}

/// Sends one JSON-RPC request and reads one line back.
pub fn call(w: &mut Wrapped, request: &Value) -> Value {
    let stdin = w.stdin.as_mut().expect("stdin");
    writeln!(stdin, "{request}").expect("write request");
    stdin.flush().expect("flush");
    let mut line = String::new();
    w.stdout
        .as_mut()
        .expect("stdout")
        .read_line(&mut line)
        .expect("read reply");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("reply {line:?}: {e}"))
}

/// `initialize`, then a `tools/call` of echo; asserts the echo.
pub fn initialize_and_echo(w: &mut Wrapped, text: &str) {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let reply = call(w, &init);
    assert_eq!(reply["result"]["serverInfo"]["name"], "tether-fixture", "{reply}");
    let echo = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": text}}});
    let reply = call(w, &echo);
    assert_eq!(
        reply.pointer("/result/content/0/text").and_then(Value::as_str),
        Some(text),
        "{reply}"
    );
}
