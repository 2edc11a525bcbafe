//! Scope ends racing starts (found by review): a session that ends while its instance starts, a
//! reload that removes a server while its instance starts, a client that leaves a streamed call,
//! and the stdio client's EOF while instances are still tearing down. Each ends every process
//! at once, not when a handshake or an answer finally comes.

use serde_json::json;

use super::support::{fixture_server, Client, Gateway, StdioGateway, SLACK};
use crate::harness::{Cookie, Mode, ZOO, ZOO_SLEEPERS};

/// A session server that never answers initialize, with the zoo, behind `/mcp` beside `fx`.
fn slow_and_fx(cookie: &Cookie) -> String {
    let mut flags = vec!["--no-initialize"];
    flags.extend_from_slice(ZOO);
    format!(
        "{}\n{}",
        fixture_server(
            "slow",
            cookie,
            &flags,
            "lifetime = \"session\"\nstartup_timeout = \"60s\""
        ),
        fixture_server("fx", cookie, &[], "")
    )
}

/// The gateway and `fx`'s instance (shim, watchdog, server), and `slow`'s: shim, watchdog,
/// server and its zoo.
const BOTH: usize = 1 + 3 + 3 + ZOO_SLEEPERS;

/// A `tools/list` of `c`'s session on a thread of its own (it waits for `slow`, which never
/// starts).
fn list_in_background(c: &Client) -> std::thread::JoinHandle<std::io::Result<super::http::Response>> {
    let lister = c.twin();
    std::thread::spawn(move || {
        lister.try_post(
            json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list"})
                .to_string()
                .as_bytes(),
        )
    })
}

#[test]
fn a_session_that_ends_while_its_instance_starts_ends_the_instance_at_once() {
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &slow_and_fx(&cookie));
    let mut c = gw.client(None);
    c.initialize();
    let listing = list_in_background(&c);
    cookie.wait_for_carriers(BOTH);
    assert_eq!(c.delete(), 200);
    // Not after the 60 s startup timeout: now. Only the gateway and the shared `fx` (shim,
    // watchdog, server) remain.
    let left = || cookie.carriers().len();
    assert!(
        crate::harness::eventually(SLACK, || left() == 1 + 3),
        "left: {}",
        left()
    );
    let _ = listing.join();
    gw.shut_down(&cookie);
}

#[test]
fn a_reload_that_removes_a_starting_server_ends_its_instance() {
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &slow_and_fx(&cookie));
    let mut c = gw.client(None);
    c.initialize();
    let listing = list_in_background(&c);
    cookie.wait_for_carriers(BOTH);
    std::fs::write(&gw.config, fixture_server("fx", &cookie, &[], "")).expect("rewrite");
    gw.signal(nix::sys::signal::Signal::SIGHUP);
    gw.wait_log("reload applied");
    // slow's instance is gone; fx's is untouched.
    let survivors = || cookie.carriers().len();
    assert!(
        crate::harness::eventually(SLACK, || survivors() == 1 + 3),
        "left: {}",
        survivors()
    );
    let listed = listing.join().expect("the listing").expect("its answer");
    assert!(
        !listed.text().contains("slow__"),
        "a removed server lists nothing: {}",
        listed.text()
    );
    gw.shut_down(&cookie);
}

#[test]
fn a_start_waiting_behind_one_a_reload_replaces_is_served_by_the_new_configuration() {
    let cookie = Cookie::new();
    // `s` answers its handshake after 20 s; behind /mcp (two servers), nothing starts at
    // initialize.
    let config = |slow: &str| {
        format!(
            "{}\n{}",
            fixture_server(
                "s",
                &cookie,
                &["--slow", slow],
                "lifetime = \"session\"\nstartup_timeout = \"60s\""
            ),
            fixture_server("fx", &cookie, &[], "")
        )
    };
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config("20000"));
    let mut c = gw.client(None);
    c.initialize();
    // A listing starts the session's `s`; a call to it waits for that start.
    let listing = list_in_background(&c);
    gw.wait_log("instance starting server=s");
    let mut caller = c.twin();
    let call = std::thread::spawn(move || caller.call_tool("s__echo", json!({"text": "served"})));
    gw.wait_log("waiting for the session's other start of the server");
    // The reload replaces `s` while the call waits: it ends the starting instance, and the call
    // is served by the new configuration (a fast handshake), not by the replaced one.
    std::fs::write(&gw.config, config("1")).expect("rewrite");
    gw.signal(nix::sys::signal::Signal::SIGHUP);
    gw.wait_log("reload applied");
    let answer = call.join().expect("the call");
    assert_eq!(
        answer.pointer("/result/content/0/text"),
        Some(&json!("served")),
        "{answer}"
    );
    // Two instances of `s` in all: the listing's (ended by the reload) and the call's, of the
    // new configuration. None started from the replaced one after the reload.
    let starts = gw
        .log()
        .lines()
        .filter(|l| l.contains("instance starting server=s "))
        .count();
    assert_eq!(starts, 2, "{}", gw.log());
    let _ = listing.join();
    gw.shut_down(&cookie);
}

#[test]
fn a_client_that_leaves_a_streamed_call_ends_its_request_instance() {
    let cookie = Cookie::new();
    let gw = Gateway::start(
        &cookie,
        Mode::Cgroup,
        &fixture_server("fx", &cookie, &[], "lifetime = \"request\""),
    );
    let mut c = gw.client(Some("fx"));
    c.initialize();
    let call = c.stream(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "sleep", "arguments": {"ms": 60000}}}));
    // The gateway, and the call's own instance: shim, watchdog, server.
    cookie.wait_for_carriers(4);
    drop(call);
    // Not after the 60 s sleep: now.
    cookie.assert_only_left(&[gw.pid()], SLACK);
    gw.shut_down(&cookie);
}

#[test]
fn the_stdio_client_s_eof_is_followed_by_every_tree_gone_before_the_gateway_exits() {
    let cookie = Cookie::new();
    // A TERM-ignoring zoo: the tree takes the whole grace to die.
    let mut gw = StdioGateway::start(&cookie, &fixture_server("zoo", &cookie, ZOO, "lifetime = \"session\""));
    gw.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}));
    cookie.wait_for_carriers(1 + 3 + ZOO_SLEEPERS);
    gw.close();
    // The gateway waited for every shim: nothing is left the moment it is gone.
    let left = cookie.carriers();
    assert!(left.is_empty(), "alive after the gateway exited: {left:?}");
}
