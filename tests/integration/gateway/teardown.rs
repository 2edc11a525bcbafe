//! Every scope end ends every process: session DELETE, session idle timeout, a shared
//! instance's idle timeout, an instance still starting when its scope ends, a server dying
//! mid-call (and the restart), SIGTERM, and a SIGKILLed gateway. Each with the fixture's escapee
//! zoo (children that ignore SIGTERM, setsid, double forks, an `env -i` double fork), with the
//! cgroup layer on and forced off.

use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::json;

use super::support::{error_message, fixture_server, in_both_modes, instances, Gateway, SLACK};
use crate::harness::{eventually, Cookie, Mode, ZOO, ZOO_SLEEPERS};

/// The gateway, then per instance its shim, its watchdog, the server and the zoo's sleepers.
const ZOO_TREE: usize = 3 + ZOO_SLEEPERS;

fn zoo_server(cookie: &Cookie, extra: &str) -> String {
    fixture_server("zoo", cookie, ZOO, extra)
}

#[test]
fn session_delete_ends_the_session_s_tree() {
    in_both_modes(|mode| {
        let cookie = Cookie::new();
        let gw = Gateway::start(&cookie, mode, &zoo_server(&cookie, "lifetime = \"session\""));
        let mut c = gw.client(Some("zoo"));
        c.initialize();
        c.echo("hi");
        cookie.wait_for_carriers(1 + ZOO_TREE);
        assert_eq!(c.delete(), 200);
        cookie.assert_only_left(&[gw.pid()], SLACK);
        // The gateway goes on serving other sessions.
        let mut other = gw.client(Some("zoo"));
        other.initialize();
        other.echo("the gateway still serves");
        gw.shut_down(&cookie);
    });
}

#[test]
fn an_abandoned_session_ends_at_its_idle_timeout() {
    in_both_modes(|mode| {
        let cookie = Cookie::new();
        let config = format!(
            "[gateway]\nsession_idle_timeout = \"1s\"\n\n{}",
            zoo_server(&cookie, "lifetime = \"session\"")
        );
        let gw = Gateway::start(&cookie, mode, &config);
        let mut c = gw.client(Some("zoo"));
        c.initialize();
        c.echo("and then silence");
        cookie.wait_for_carriers(1 + ZOO_TREE);
        cookie.assert_only_left(&[gw.pid()], Duration::from_secs(1) + SLACK);
        gw.wait_log("session_idle_timeout");
        // The session is gone: its id is refused.
        let r = c.post(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}));
        assert_eq!(r.status, 404, "{}", r.text());
        gw.shut_down(&cookie);
    });
}

#[test]
fn a_shared_instance_ends_at_its_idle_timeout_and_comes_back() {
    in_both_modes(|mode| {
        let cookie = Cookie::new();
        let gw = Gateway::start(&cookie, mode, &zoo_server(&cookie, "idle_timeout = \"1s\""));
        let mut c = gw.client(Some("zoo"));
        c.initialize();
        c.echo("once");
        cookie.wait_for_carriers(1 + ZOO_TREE);
        cookie.assert_only_left(&[gw.pid()], Duration::from_secs(1) + SLACK);
        gw.wait_log("idle_timeout");
        // The session lives on; the next call starts a fresh instance.
        c.echo("again");
        gw.shut_down(&cookie);
    });
}

#[test]
fn an_instance_still_starting_dies_with_its_scope() {
    in_both_modes(|mode| {
        let cookie = Cookie::new();
        // A server that never answers initialize (and forks a child that ignores SIGTERM).
        let config = format!(
            "[servers.mute]\ncommand = \"sh\"\nargs = [\"-c\", \"trap '' TERM; sleep 1000 & sleep 1000; : {}\"]\ngrace = \"300ms\"\nstartup_timeout = \"60s\"\n",
            cookie.0
        );
        let gw = Gateway::start(&cookie, mode, &config);
        let c = gw.client(Some("mute"));
        let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
        let waiter = std::thread::spawn(move || c.try_post(initialize.to_string().as_bytes()));
        // The gateway, the shim, its watchdog, sh and its sleep.
        cookie.wait_for_carriers(5);
        gw.shut_down(&cookie);
        // The client is answered with an error, or its connection closes with the gateway.
        if let Ok(r) = waiter.join().expect("the client thread") {
            assert!(r.messages().iter().all(|m| m.get("error").is_some()), "{}", r.text());
        }
    });
}

#[test]
fn a_server_that_never_answers_initialize_is_ended_at_its_startup_timeout() {
    let cookie = Cookie::new();
    let config = format!(
        "[servers.mute]\ncommand = \"sh\"\nargs = [\"-c\", \"sleep 1000; : {}\"]\ngrace = \"300ms\"\nstartup_timeout = \"1s\"\n\n{}",
        cookie.0,
        fixture_server("fx", &cookie, &[], "")
    );
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    let mut c = gw.client(Some("mute"));
    let (status, answer) = c.try_initialize();
    assert_eq!(status, 200);
    let message = error_message(&answer);
    assert!(
        message.contains("\"mute\"") && message.contains("did not answer initialize within 1s"),
        "{answer}"
    );
    assert!(c.session.is_none(), "no session is made when its server cannot start");
    cookie.assert_only_left(&[gw.pid()], SLACK);
    // Other servers are unaffected.
    let mut other = gw.client(Some("fx"));
    other.initialize();
    other.echo("fine");
    gw.shut_down(&cookie);
}

#[test]
fn a_server_dying_mid_call_fails_that_call_and_is_restarted_on_next_use() {
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &fixture_server("fx", &cookie, &[], ""));
    let mut c = gw.client(Some("fx"));
    c.initialize();
    let first = instances(&cookie, "fx");
    assert_eq!(first.len(), 1);
    // The fixture's `crash` tool exits the server without answering.
    let answer = c.call_tool("crash", json!({}));
    let message = error_message(&answer);
    assert!(
        message.contains("\"fx\"") && message.contains("exited"),
        "the call in flight gets an error naming the server: {answer}"
    );
    assert!(
        eventually(SLACK, || instances(&cookie, "fx").is_empty()),
        "the dead instance is recorded as ended"
    );
    // The next call starts a new instance.
    c.echo("after the crash");
    let second = instances(&cookie, "fx");
    assert_eq!(second.len(), 1);
    assert_ne!(second[0]["id"], first[0]["id"], "a fresh instance");
    gw.shut_down(&cookie);
}

#[test]
fn a_server_that_stops_reading_its_input_is_ended_not_kept() {
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &zoo_server(&cookie, "lifetime = \"session\""));
    let mut c = gw.client(Some("zoo"));
    c.initialize();
    // The fixture reads nothing while it sleeps: its stdin pipe fills, then the gateway's queue.
    let mut asleep = c.stream(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "sleep", "arguments": {"ms": 120_000}}}));
    let padding = "x".repeat(4096);
    let note = json!({"jsonrpc": "2.0", "method": "notifications/roots/list_changed", "params": {"_meta": {"padding": padding}}});
    let ended = eventually(Duration::from_secs(60), || {
        c.post(&note);
        gw.log().contains("stopped reading its input")
    });
    assert!(ended, "the instance was never ended; log:\n{}", gw.log());
    // The call in flight is answered with the reason, and the whole tree is gone.
    let answer = asleep.next(SLACK).expect("the sleeping call's answer");
    assert!(error_message(&answer).contains("stopped reading its input"), "{answer}");
    cookie.assert_only_left(&[gw.pid()], SLACK);
    gw.shut_down(&cookie);
}

#[test]
fn sigterm_ends_every_instance_of_every_lifetime() {
    in_both_modes(|mode| {
        let cookie = Cookie::new();
        let config = format!(
            "{}\n{}\n{}",
            fixture_server("shared", &cookie, ZOO, ""),
            fixture_server("own", &cookie, ZOO, "lifetime = \"session\""),
            fixture_server("req", &cookie, ZOO, "lifetime = \"request\"")
        );
        let gw = Gateway::start(&cookie, mode, &config);
        for server in ["shared", "own", "own"] {
            let mut c = gw.client(Some(server));
            c.initialize();
            c.echo(server);
        }
        // A request instance with its call in flight, longer than the drain.
        let mut r = gw.client(Some("req"));
        r.initialize();
        let _in_flight = r.stream(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "sleep", "arguments": {"ms": 60_000}}}));
        cookie.wait_for_carriers(1 + 4 * ZOO_TREE);
        gw.shut_down(&cookie);
    });
}

#[test]
fn a_call_in_flight_at_sigterm_gets_its_answer_within_the_drain() {
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &fixture_server("fx", &cookie, &[], ""));
    let mut c = gw.client(Some("fx"));
    c.initialize();
    // Streamed (the default): the handler has returned; the call goes on in its own task.
    let mut call = c.stream(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "sleep", "arguments": {"ms": 300}}}));
    let mut gw = gw;
    gw.signal(Signal::SIGTERM);
    let answer = call.next(SLACK).expect("the call's answer");
    assert_eq!(
        answer.pointer("/result/content/0/text"),
        Some(&json!("slept 300 ms")),
        "the server's own answer, not the shutdown's error: {answer}"
    );
    let status = gw.wait_exit(SLACK);
    assert!(status.success(), "{status}; log:\n{}", gw.log());
    cookie.assert_none_survive(SLACK);
}

#[test]
fn a_sigkilled_gateway_leaves_nothing_for_the_next_start_to_sweep() {
    in_both_modes(|mode| {
        let cookie = Cookie::new();
        let config = zoo_server(&cookie, "lifetime = \"session\"");
        let mut gw = Gateway::start(&cookie, mode, &config);
        let mut c = gw.client(Some("zoo"));
        c.initialize();
        c.echo("before the crash");
        cookie.wait_for_carriers(1 + ZOO_TREE);
        gw.signal(Signal::SIGKILL);
        gw.wait_exit(SLACK);
        // Every shim saw its lifeline close.
        cookie.assert_none_survive(Duration::from_millis(300) + SLACK);
        let next = Gateway::start_file(&cookie, mode, gw.config.clone(), &[]);
        // The shims ended their trees and closed their rows: the sweep has nothing to do.
        next.wait_log("start-up sweep: nothing left by a dead Tether");
        let mut c = next.client(Some("zoo"));
        c.initialize();
        c.echo("after the restart");
        next.shut_down(&cookie);
    });
}

#[test]
fn the_embedded_default_serves_the_fixture() {
    let cookie = Cookie::new();
    let home = cookie.state_dir().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let mut cmd = std::process::Command::new(crate::harness::TETHER);
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"));
    cookie.set_env(&mut cmd);
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tether serve");
    let log = crate::harness::StderrLog::collect(&mut child);
    let mut addr = None;
    assert!(
        eventually(SLACK, || {
            addr = log.lines().iter().find_map(|l| {
                l.split(" at http://")
                    .nth(1)
                    .and_then(|r| r.split('/').next())
                    .and_then(|a| a.parse().ok())
            });
            addr.is_some()
        }),
        "{}",
        log.lines().join("\n")
    );
    assert!(log.lines().iter().any(|l| l.contains("from the embedded default")));
    let mut c = super::support::Client::new(addr.expect("addr"), None);
    c.initialize();
    c.echo("the main job");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    assert!(log.wait_exit(&mut child, SLACK).success());
    cookie.assert_none_survive(SLACK);
}
