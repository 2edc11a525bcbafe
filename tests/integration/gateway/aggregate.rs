//! Every server behind one endpoint: `/mcp` and `tether serve --stdio` with several servers.
//! Tools and prompts are named `server__name`, calls reach the named server, resources are routed
//! by the server that listed them, a server that cannot start is left out of listings (and
//! logged) without failing them, and the stdio client's EOF ends every instance.

use serde_json::{json, Value};

use super::support::{error_message, fixture_server, names, Gateway, StdioGateway, SLACK};
use crate::harness::{Cookie, Mode};

fn config(cookie: &Cookie) -> String {
    format!(
        "{}\n{}\n[servers.broken]\ncommand = \"/nonexistent/server\"\n",
        fixture_server("a", cookie, &[], ""),
        fixture_server(
            "b",
            cookie,
            &[],
            "lifetime = \"session\"\ntools = { exclude = [\"test_*\"] }"
        ),
    )
}

#[test]
fn mcp_serves_every_server_with_prefixed_names() {
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config(&cookie));
    let mut c = gw.client(None);
    let init = c.initialize();
    assert_eq!(init["serverInfo"]["name"], "tether");
    let tools = names(&c.request("tools/list", json!({})), "tools");
    for expected in ["a__echo", "a__test_simple_text", "b__echo"] {
        assert!(
            tools.contains(&expected.to_string()),
            "{expected} missing from {tools:?}"
        );
    }
    assert!(
        !tools.iter().any(|t| t.starts_with("b__test_")),
        "b's filter applies: {tools:?}"
    );
    assert!(!tools.iter().any(|t| t.starts_with("broken__")));
    gw.wait_log("left out of tools/list");
    for server in ["a", "b"] {
        let a = c.call_tool(&format!("{server}__echo"), json!({"text": server}));
        assert_eq!(a.pointer("/result/content/0/text"), Some(&json!(server)), "{a}");
    }
    let who = c.call_tool("a__whoami", json!({}));
    assert!(who.to_string().contains(&cookie.0), "{who}");
    let refused = c.call_tool("b__test_simple_text", json!({}));
    assert!(error_message(&refused).contains("not offered"), "{refused}");
    let nowhere = c.call_tool("nowhere__echo", json!({"text": "x"}));
    assert!(error_message(&nowhere).contains("names no tool"), "{nowhere}");
    let prompts = names(&c.request("prompts/list", json!({})), "prompts");
    assert!(prompts.contains(&"a__test_simple_prompt".to_string()), "{prompts:?}");
    let got = c.request("prompts/get", json!({"name": "a__test_simple_prompt"}));
    assert!(got.pointer("/result/messages/0").is_some(), "{got}");
    let resources = c.request("resources/list", json!({}));
    assert!(resources.to_string().contains("test://static-text"), "{resources}");
    let templates = c.request("resources/templates/list", json!({}));
    assert!(
        templates.to_string().contains("test://template/{id}/data"),
        "{templates}"
    );
    let read = c.request("resources/read", json!({"uri": "test://template/42/data"}));
    let text = read
        .pointer("/result/contents/0/text")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(text.contains("Data for id 42"), "{read}");
    gw.shut_down(&cookie);
}

#[test]
fn an_aggregated_call_reaches_the_server_as_written_but_for_its_name() {
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config(&cookie));
    let mut c = gw.client(None);
    c.initialize();
    // An id past 2^64 and an argument with escapes: a gateway that rebuilt the request through
    // f64 numbers or re-encoded strings would answer with another id.
    let body = br#"{"jsonrpc":"2.0","id":1180591620717411303424,"method":"tools/call","params":{"arguments":{"text":"\u00e9\n"},"name":"b__echo"}}"#;
    let r = c.post_raw(body, &[]);
    assert_eq!(r.status, 200);
    let raw = r.text();
    assert!(raw.contains(r#""id":1180591620717411303424"#), "{raw}");
    let answer = r.messages().pop().expect("an answer");
    assert_eq!(
        answer.pointer("/result/content/0/text"),
        Some(&json!("é\n")),
        "{answer}"
    );
    // Params that are not an object are named, not read as "no server".
    let r = c.post_raw(br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":[1]}"#, &[]);
    let answer = r.messages().pop().expect("an answer");
    assert!(error_message(&answer).contains("tools/call: params"), "{answer}");
    gw.shut_down(&cookie);
}

#[test]
fn serve_stdio_gives_its_client_every_server_and_its_eof_ends_them() {
    serve_stdio_over(StdioGateway::start);
}

/// The same when the client gives the gateway a socketpair, as Node's `child_process` does
/// (the gateway reads and writes it on its runtime's thread, as it does pipes).
#[test]
fn serve_stdio_over_a_socketpair_gives_its_client_every_server_and_its_eof_ends_them() {
    serve_stdio_over(StdioGateway::start_over_socket);
}

fn serve_stdio_over(start: fn(&Cookie, &str) -> StdioGateway) {
    let cookie = Cookie::new();
    let mut gw = start(&cookie, &config(&cookie));
    let mut ask = |id, method, params| gw.ask(id, method, params);
    ask(
        1,
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    );
    let tools = names(&ask(2, "tools/list", json!({})), "tools");
    assert!(
        tools.contains(&"a__echo".to_string()) && tools.contains(&"b__echo".to_string()),
        "{tools:?}"
    );
    let a = ask(
        3,
        "tools/call",
        json!({"name": "b__echo", "arguments": {"text": "over stdio"}}),
    );
    assert_eq!(a.pointer("/result/content/0/text"), Some(&json!("over stdio")), "{a}");
    gw.close();
    cookie.assert_none_survive(SLACK);
}

#[test]
fn a_session_keeps_its_names_across_a_reload_and_is_told_to_list_again() {
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &fixture_server("a", &cookie, &[], ""));
    // One server: /mcp serves it as it is.
    let mut single = gw.client(None);
    single.initialize();
    single.echo("plain names");
    // Two servers now: the old session keeps plain names; a new one is aggregated.
    std::fs::write(
        &gw.config,
        format!(
            "{}\n{}",
            fixture_server("a", &cookie, &[], ""),
            fixture_server("b", &cookie, &[], "")
        ),
    )
    .expect("rewrite");
    gw.signal(nix::sys::signal::Signal::SIGHUP);
    gw.wait_log("reload applied");
    single.echo("still plain names");
    let mut all = gw.client(None);
    all.initialize();
    let a = all.call_tool("b__echo", json!({"text": "prefixed"}));
    assert_eq!(a.pointer("/result/content/0/text"), Some(&json!("prefixed")), "{a}");
    // Back to one server: the aggregated session keeps its prefixes, and hears to list again.
    let sid = all.session.clone().expect("session");
    let mut listening = super::http::EventStream::open(
        gw.addr,
        "/mcp",
        &[("Accept", "text/event-stream"), ("Mcp-Session-Id", &sid)],
    )
    .expect("GET");
    std::fs::write(&gw.config, fixture_server("a", &cookie, &[], "")).expect("rewrite");
    gw.signal(nix::sys::signal::Signal::SIGHUP);
    let told = listening.next(SLACK).expect("a list change");
    assert!(
        told["method"].as_str().is_some_and(|m| m.ends_with("/list_changed")),
        "{told}"
    );
    let a = all.call_tool("a__echo", json!({"text": "still prefixed"}));
    assert_eq!(
        a.pointer("/result/content/0/text"),
        Some(&json!("still prefixed")),
        "{a}"
    );
    gw.shut_down(&cookie);
}

#[test]
fn a_server_s_list_change_reaches_an_aggregated_client_only_when_its_view_changed() {
    let cookie = Cookie::new();
    let config = format!(
        "{}\n{}",
        fixture_server("a", &cookie, &[], ""),
        fixture_server("b", &cookie, &[], "tools = { exclude = [\"hidden_*\"] }")
    );
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    let mut c = gw.client(None);
    c.initialize();
    let before = names(&c.request("tools/list", json!({})), "tools");
    let sid = c.session.clone().expect("session");
    let mut listening = super::http::EventStream::open(
        gw.addr,
        "/mcp",
        &[("Accept", "text/event-stream"), ("Mcp-Session-Id", &sid)],
    )
    .expect("GET");
    // A client of one server hears that server's announcements as they are.
    let mut single = gw.client(Some("b"));
    single.initialize();
    let single_sid = single.session.clone().expect("session");
    let mut single_listening = super::http::EventStream::open(
        gw.addr,
        "/mcp/b",
        &[("Accept", "text/event-stream"), ("Mcp-Session-Id", &single_sid)],
    )
    .expect("GET");
    // A client that uses b but never listed has no view to change.
    let mut quiet = gw.client(None);
    quiet.initialize();
    quiet.call_tool("b__echo", json!({"text": "unlisted"}));

    // An announcement that changes nothing the client sees: b's new tool is filtered out.
    c.call_tool("b__grow", json!({"name": "hidden_tool"}));
    gw.wait_log("Tools changed upstream: this session's view did not, not told");
    gw.wait_log("Tools changed upstream: the session never listed them, not told");
    let raw = single_listening.next(SLACK).expect("b's own announcement");
    assert_eq!(raw["method"], "notifications/tools/list_changed", "{raw}");

    // A change it sees: told, and listing again gives the new tool.
    c.call_tool("a__grow", json!({"name": "fresh"}));
    let told = listening.next(SLACK).expect("a list change");
    assert_eq!(told["method"], "notifications/tools/list_changed", "{told}");
    let after = names(&c.request("tools/list", json!({})), "tools");
    assert_eq!(after.len(), before.len() + 1, "{after:?}");
    let fresh = c.call_tool("a__fresh", json!({}));
    assert_eq!(
        fresh.pointer("/result/content/0/text"),
        Some(&json!("fresh")),
        "{fresh}"
    );
    gw.shut_down(&cookie);
}
