//! Reload (SIGHUP, or the configuration file changing): exactly the instances of removed or
//! changed servers end; the other servers' instances and sessions go on undisturbed; a file
//! that does not validate, or is empty, changes nothing.

use nix::sys::signal::Signal;
use serde_json::Value;

use super::support::{error_message, fixture_server, instances, Gateway, SLACK};
use crate::harness::{eventually, Cookie, Mode};

fn ids(cookie: &Cookie, server: &str) -> Vec<Value> {
    instances(cookie, server).into_iter().map(|i| i["id"].clone()).collect()
}

fn config(cookie: &Cookie, b_flags: &[&str]) -> String {
    format!(
        "{}\n{}\n{}",
        fixture_server("a", cookie, &["--children", "1"], "lifetime = \"session\""),
        fixture_server("b", cookie, b_flags, "lifetime = \"session\""),
        fixture_server("c", cookie, &[], "")
    )
}

/// Starts a gateway with servers a, b (session) and c (shared), each with a live session.
fn start(cookie: &Cookie) -> (Gateway, Vec<super::support::Client>) {
    let gw = Gateway::start(cookie, Mode::Cgroup, &config(cookie, &["--children", "1"]));
    let clients = ["a", "b", "c"]
        .iter()
        .map(|s| {
            let mut c = gw.client(Some(s));
            c.initialize();
            c.echo(s);
            c
        })
        .collect();
    (gw, clients)
}

fn check_reloaded(
    cookie: &Cookie,
    gw: &Gateway,
    clients: &mut [super::support::Client],
    a_before: &[Value],
    b_before: &[Value],
    c_before: &[Value],
) {
    assert!(
        eventually(SLACK, || ids(cookie, "b").is_empty()),
        "the changed server's instance did not end; log:\n{}",
        gw.log()
    );
    assert_eq!(
        ids(cookie, "a"),
        a_before,
        "an unchanged server's instance is untouched"
    );
    assert_eq!(ids(cookie, "c"), c_before, "an unchanged shared instance is untouched");
    clients[0].echo("a goes on");
    clients[2].echo("c goes on");
    // b's session gets a fresh instance, started from the new configuration.
    clients[1].echo("b again");
    let b_after = ids(cookie, "b");
    assert_eq!(b_after.len(), 1);
    assert_ne!(b_after, b_before);
    gw.wait_log("reload applied");
}

#[test]
fn sighup_ends_exactly_the_changed_server_s_instances() {
    let cookie = Cookie::new();
    let (gw, mut clients) = start(&cookie);
    let (a, b, c) = (ids(&cookie, "a"), ids(&cookie, "b"), ids(&cookie, "c"));
    std::fs::write(&gw.config, config(&cookie, &["--children", "2"])).expect("rewriting the configuration");
    gw.signal(Signal::SIGHUP);
    check_reloaded(&cookie, &gw, &mut clients, &a, &b, &c);
    gw.shut_down(&cookie);
}

#[test]
fn a_changed_file_is_reloaded_without_a_signal() {
    let cookie = Cookie::new();
    let (gw, mut clients) = start(&cookie);
    let (a, b, c) = (ids(&cookie, "a"), ids(&cookie, "b"), ids(&cookie, "c"));
    std::fs::write(&gw.config, config(&cookie, &["--children", "2", "--stderr-lines", "1"]))
        .expect("rewriting the configuration");
    check_reloaded(&cookie, &gw, &mut clients, &a, &b, &c);
    gw.shut_down(&cookie);
}

#[test]
fn a_removed_server_s_sessions_get_a_clean_error_and_a_bad_file_changes_nothing() {
    let cookie = Cookie::new();
    let (gw, mut clients) = start(&cookie);
    let (a, c) = (ids(&cookie, "a"), ids(&cookie, "c"));
    // A typo: refused whole, nothing changes.
    std::fs::write(&gw.config, format!("{}\nlifetme = 1\n", config(&cookie, &[]))).expect("rewrite");
    gw.signal(Signal::SIGHUP);
    gw.wait_log("reload refused");
    assert!(
        gw.log().contains("gateway.toml:"),
        "the error names the file: {}",
        gw.log()
    );
    assert_eq!(ids(&cookie, "b").len(), 1, "nothing was applied");
    // An empty file (a writer that truncated it and has not written yet) is not a
    // configuration without servers: refused, nothing changes.
    std::fs::write(&gw.config, "").expect("truncate");
    gw.signal(Signal::SIGHUP);
    gw.wait_log("is empty (being written?)");
    assert_eq!(ids(&cookie, "a"), a, "nothing was applied");
    // Now b goes away.
    let without_b = format!(
        "{}\n{}",
        fixture_server("a", &cookie, &["--children", "1"], "lifetime = \"session\""),
        fixture_server("c", &cookie, &[], "")
    );
    std::fs::write(&gw.config, without_b).expect("rewrite");
    gw.signal(Signal::SIGHUP);
    assert!(
        eventually(SLACK, || ids(&cookie, "b").is_empty()),
        "the removed server's instance ended"
    );
    let r = clients[1].post(&serde_json::json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "anyone?"}}}));
    assert_eq!(r.status, 404, "{}", r.text());
    let answer = r.messages().into_iter().next().unwrap_or_default();
    let message = error_message(&answer);
    assert!(
        message.contains("no server named \"b\""),
        "a clean error naming the server: {answer}"
    );
    assert_eq!(ids(&cookie, "a"), a);
    assert_eq!(ids(&cookie, "c"), c);
    clients[0].echo("a is fine");
    gw.shut_down(&cookie);
}

#[test]
fn a_reload_cannot_drop_the_token_of_a_gateway_other_hosts_reach() {
    let cookie = Cookie::new();
    let token = "0123456789abcdef-token";
    let path = cookie.state_dir().join("exposed.toml");
    std::fs::create_dir_all(cookie.state_dir()).expect("dir");
    std::fs::write(
        &path,
        format!(
            "[gateway]\ntoken = \"{token}\"\n\n{}",
            fixture_server("fx", &cookie, &[], "")
        ),
    )
    .expect("config");
    let gw = Gateway::start_with(&cookie, Mode::Cgroup, path.clone(), &["--listen", "0.0.0.0:0"]);
    let anonymous = gw.client(Some("fx"));
    let initialize = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    assert_eq!(anonymous.post(&initialize).status, 401);
    // The file moves to loopback and drops the token; the gateway still listens on 0.0.0.0.
    std::fs::write(
        &path,
        format!(
            "[gateway]\nlisten = \"127.0.0.1:7300\"\n\n{}",
            fixture_server("fx", &cookie, &[], "")
        ),
    )
    .expect("rewrite");
    gw.signal(nix::sys::signal::Signal::SIGHUP);
    gw.wait_log("reload refused");
    assert_eq!(anonymous.post(&initialize).status, 401, "the token still stands");
    gw.shut_down(&cookie);
}
