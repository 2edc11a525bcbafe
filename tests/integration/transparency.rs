//! The client talks to the server exactly as if it had started it: same bytes both ways, the
//! server's stderr passed through, the server's exit status as `tether wrap`'s own.

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{Cookie, Mode, WrapBuilder};

const SLACK: Duration = Duration::from_secs(3);

#[test]
fn every_byte_value_round_trips_unchanged() {
    let cookie = Cookie::new();
    let mut w = WrapBuilder::new(&cookie, Mode::Cgroup).fixture(&["--raw-echo"]).spawn();
    // 256 KiB cycling through all 256 byte values, more than a pipe buffer holds.
    let sent: Vec<u8> = (0..256 * 1024).map(|i| (i % 256) as u8).collect();
    let mut stdin = w.stdin.take().expect("stdin");
    let mut stdout = w.stdout.take().expect("stdout");
    let payload = sent.clone();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&payload).expect("write");
        // Dropping stdin closes it: the raw echo sees EOF and exits by itself.
    });
    let mut received = Vec::new();
    stdout.read_to_end(&mut received).expect("read");
    writer.join().expect("writer");
    assert_eq!(received.len(), sent.len());
    assert!(received == sent, "bytes differ");
    assert_eq!(w.wait_exit(SLACK).code(), Some(0));
    cookie.assert_none_survive(SLACK);
}

#[test]
fn a_one_megabyte_json_line_round_trips_unchanged() {
    let cookie = Cookie::new();
    let mut w = WrapBuilder::new(&cookie, Mode::Cgroup).spawn();
    w.wait_ready();
    let text: String = (0..1024 * 1024).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": text}}});
    let mut line = serde_json::to_vec(&request).expect("json");
    assert!(line.len() > 1024 * 1024);
    line.push(b'\n');
    let mut stdin = w.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        stdin.write_all(&line).expect("write");
        stdin
    });
    let mut reply = String::new();
    use std::io::BufRead;
    w.stdout.as_mut().expect("stdout").read_line(&mut reply).expect("read");
    drop(writer.join().expect("writer"));
    let reply: Value = serde_json::from_str(&reply).expect("reply is JSON");
    assert_eq!(
        reply.pointer("/result/content/0/text").and_then(Value::as_str),
        Some(text.as_str())
    );
    assert_eq!(w.wait_exit(SLACK).code(), Some(0));
    cookie.assert_none_survive(SLACK);
}

#[test]
fn the_servers_exit_code_is_tethers() {
    for code in ["0", "3", "42"] {
        let cookie = Cookie::new();
        let mut w = WrapBuilder::new(&cookie, Mode::Cgroup)
            .fixture(&["--exit-code", code])
            .spawn();
        w.wait_ready();
        w.stdin.take();
        assert_eq!(w.wait_exit(SLACK).code(), code.parse().ok());
        cookie.assert_none_survive(SLACK);
    }
}

#[test]
fn a_server_killed_by_a_signal_makes_tether_die_by_it_too() {
    let cookie = Cookie::new();
    let mut w = WrapBuilder::new(&cookie, Mode::Cgroup).spawn();
    let ready = w.wait_ready();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(ready.pid), nix::sys::signal::Signal::SIGABRT).expect("kill");
    let status = w.wait_exit(SLACK);
    assert_eq!(status.signal(), Some(libc::SIGABRT), "{status:?}");
    assert!(!status.core_dumped(), "the shim must not dump core for its server");
    cookie.assert_none_survive(SLACK);
}

#[test]
fn stderr_is_passed_through() {
    let cookie = Cookie::new();
    let mut w = WrapBuilder::new(&cookie, Mode::Cgroup)
        .fixture(&["--stderr-lines", "3"])
        .spawn();
    w.wait_ready();
    for i in 1..=3 {
        let want = format!("tether-fixture: stderr line {i}");
        assert!(
            w.stderr_lines().contains(&want),
            "missing {want:?} in {:?}",
            w.stderr_lines()
        );
    }
    w.stdin.take();
    w.wait_exit(SLACK);
    cookie.assert_none_survive(SLACK);
}

#[test]
fn garbage_from_the_server_reaches_the_client_untouched() {
    // Tether does not parse the stream, so a server's garbage is the client's to judge.
    let cookie = Cookie::new();
    let mut w = WrapBuilder::new(&cookie, Mode::Cgroup).fixture(&["--garbage"]).spawn();
    w.wait_ready();
    writeln!(
        w.stdin.as_mut().expect("stdin"),
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping"}}"#
    )
    .expect("write");
    let mut garbage = Vec::new();
    use std::io::BufRead;
    w.stdout
        .as_mut()
        .expect("stdout")
        .read_until(b'\n', &mut garbage)
        .expect("read");
    assert!(garbage.starts_with(&[0xff, 0xfe]), "{garbage:?}");
    let mut reply = String::new();
    w.stdout.as_mut().expect("stdout").read_line(&mut reply).expect("read");
    assert!(reply.contains(r#""id":1"#), "{reply}");
    w.stdin.take();
    w.wait_exit(SLACK);
    cookie.assert_none_survive(SLACK);
}

#[test]
fn a_missing_command_fails_like_a_shell_and_leaves_nothing() {
    let cookie = Cookie::new();
    // Nothing is left either (no watchdog, no cgroup): run_to_exit proves it.
    let (code, stderr) = WrapBuilder::new(&cookie, Mode::Cgroup)
        .command(&["/nonexistent/mcp-server", "--flag"])
        .run_to_exit(SLACK);
    assert_eq!(code, Some(127), "{stderr}");
    assert!(
        stderr.contains("/nonexistent/mcp-server: command not found"),
        "{stderr}"
    );
}

#[test]
fn bad_arguments_are_named() {
    let cookie = Cookie::new();
    let (code, stderr) = WrapBuilder::new(&cookie, Mode::Cgroup)
        .tether(&["--disable", "cgroups"])
        .run_to_exit(SLACK);
    assert_eq!(code, Some(125), "{stderr}");
    assert!(stderr.contains("unknown containment layer \"cgroups\""), "{stderr}");
}

#[test]
fn a_closed_stderr_does_not_stop_tether_from_ending_the_tree() {
    // The client may close the stderr pipe; Tether's own log lines must then be dropped, not
    // abort the shim (a panicking eprintln! once did, with panic=abort).
    use std::process::Stdio;
    let cookie = Cookie::new();
    // A server that never writes to stderr (the fixture would die of the closed pipe itself).
    let builder = WrapBuilder::new(&cookie, Mode::NoCgroup).command(&["sh", "-c", "sleep 1000 & exec sleep 1001"]);
    let mut cmd = builder.command_for_tether();
    cmd.env("TETHER_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn tether");
    drop(child.stderr.take());
    // tether, its watchdog and the two sleeps carry the cookie.
    cookie.wait_for_carriers(4);
    drop(child.stdin.take());
    let status = child.wait().expect("wait");
    assert_ne!(status.signal(), Some(libc::SIGABRT), "tether aborted: {status:?}");
    cookie.assert_none_survive(SLACK);
}
