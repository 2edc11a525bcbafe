//! Bad input gets an error naming the cause, other sessions are unaffected, nothing leaks:
//! malformed JSON-RPC and invalid UTF-8 from a client, garbage from a server, oversized
//! messages, unknown servers, ended or missing sessions, a configuration with a typo.

use serde_json::{json, Value};

use super::http;
use super::support::{error_message, fixture_server, Gateway, SLACK};
use crate::harness::{Cookie, Mode, TETHER};

fn error_of(r: &http::Response) -> (i64, String) {
    let m = r.messages().into_iter().next().unwrap_or(Value::Null);
    (
        m.pointer("/error/code").and_then(Value::as_i64).unwrap_or(0),
        m.pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    )
}

#[test]
fn bad_messages_from_a_client_are_named_and_hurt_no_one() {
    let cookie = Cookie::new();
    let config = format!(
        "[gateway]\nmax_message_size = \"4KiB\"\n\n{}",
        fixture_server("fx", &cookie, &[], "")
    );
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    let mut bystander = gw.client(Some("fx"));
    bystander.initialize();
    let mut c = gw.client(Some("fx"));
    c.initialize();

    let r = c.post_raw(b"{\"jsonrpc\":\"2.0\",\"id\":1,", &[]);
    assert_eq!((r.status, error_of(&r).0), (400, -32700), "{}", r.text());
    let r = c.post_raw(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\xff\"}", &[]);
    assert_eq!(r.status, 400);
    assert!(error_of(&r).1.contains("not UTF-8"), "{}", r.text());
    let r = c.post(&json!({"id": 1, "method": "tools/list"}));
    assert_eq!((r.status, error_of(&r).0), (400, -32600), "{}", r.text());
    assert!(error_of(&r).1.contains("\"jsonrpc\""), "{}", r.text());
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x".repeat(5000)}}});
    let r = c.post(&big);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(error_of(&r).1.contains("max_message_size (4096 bytes)"), "{}", r.text());
    let r = c.post_raw(b"[]", &[]);
    assert_eq!(r.status, 400, "{}", r.text());
    let sid = c.session.clone().expect("session");
    let r = http::request(
        gw.addr,
        "POST",
        "/mcp/fx",
        &[("Content-Type", "text/plain"), ("Mcp-Session-Id", &sid)],
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
    )
    .expect("POST");
    assert_eq!(r.status, 415, "{}", r.text());

    // Sessions: unknown, missing, ended.
    let mut ghost = gw.client(Some("fx"));
    ghost.session = Some("0123456789abcdef0123456789abcdef".into());
    let r = ghost.post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
    assert_eq!(r.status, 404, "{}", r.text());
    let none = gw.client(Some("fx"));
    let r = none.post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(error_of(&r).1.contains("Mcp-Session-Id"), "{}", r.text());
    assert_eq!(c.delete(), 200);
    let r = c.post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
    assert_eq!(r.status, 404, "an ended session: {}", r.text());

    // Unknown server.
    let r = http::request(
        gw.addr,
        "POST",
        "/mcp/nope",
        &[("Content-Type", "application/json")],
        b"{}",
    )
    .expect("POST");
    assert_eq!(r.status, 404);
    assert!(error_of(&r).1.contains("no server named \"nope\""), "{}", r.text());
    let r = http::request(gw.addr, "GET", "/elsewhere", &[], b"").expect("GET");
    assert_eq!(r.status, 404);

    bystander.echo("unaffected");
    gw.shut_down(&cookie);
}

#[test]
fn a_request_the_server_cannot_read_gets_the_server_s_error_at_once() {
    let cookie = Cookie::new();
    // A request timeout longer than the test client waits: only the server's own error, routed
    // to the request, answers in time.
    let gw = Gateway::start(
        &cookie,
        Mode::Cgroup,
        &fixture_server("fx", &cookie, &[], "request_timeout = \"5m\""),
    );
    let mut c = gw.client(Some("fx"));
    c.initialize();
    // A lone surrogate: valid JSON to the gateway, which forwards bytes, but a string the
    // fixture's parser refuses; it answers a parse error with a null id.
    let r = c.post_raw(
        br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"text":"\ud800"}}}"#,
        &[],
    );
    let answer = r.messages().pop().expect("an answer");
    assert_eq!(answer["id"], 5, "the client's id put back: {answer}");
    assert_eq!(answer.pointer("/error/code"), Some(&json!(-32700)), "{answer}");
    c.echo("the instance goes on");
    gw.shut_down(&cookie);
}

#[test]
fn garbage_and_oversized_answers_from_a_server_are_named() {
    let cookie = Cookie::new();
    let config = format!(
        "[gateway]\nmax_message_size = \"64KiB\"\n\n{}\n{}",
        fixture_server("noisy", &cookie, &["--garbage"], ""),
        fixture_server("fx", &cookie, &[], "")
    );
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    // A server that writes an invalid line before each answer: the line is dropped and
    // reported, the answers still arrive.
    let mut c = gw.client(Some("noisy"));
    c.initialize();
    c.echo("through the noise");
    gw.wait_log("dropped a malformed message from the server");
    // An answer larger than max_message_size: the call gets an error naming the limit.
    let mut big = gw.client(Some("fx"));
    big.initialize();
    let answer = big.call_tool("big", json!({"bytes": 60_000}));
    assert!(answer.get("result").is_some(), "under the limit: {}", short(&answer));
    let answer = big.call_tool("big", json!({"bytes": 70_000}));
    let message = error_message(&answer);
    assert!(
        message.contains("max_message_size") && message.contains("\"fx\""),
        "{}",
        short(&answer)
    );
    big.echo("the instance goes on");

    gw.shut_down(&cookie);
}

/// A message, cut for an assertion's text.
fn short(v: &Value) -> String {
    v.to_string().chars().take(300).collect()
}

#[test]
fn malformed_answers_fail_their_call_naming_the_server_and_the_cause() {
    let cookie = Cookie::new();
    let config = format!(
        "{}\n{}",
        fixture_server("utf8", &cookie, &["--bad-utf8-reply"], ""),
        fixture_server("json", &cookie, &["--bad-json-reply"], "")
    );
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    for (server, cause) in [("utf8", "not UTF-8"), ("json", "not a JSON-RPC message")] {
        let mut c = gw.client(Some(server));
        c.initialize();
        let answer = c.call_tool("echo", json!({"text": "x"}));
        let message = error_message(&answer);
        assert!(
            message.contains(&format!("server \"{server}\" sent a malformed answer")) && message.contains(cause),
            "{answer}"
        );
        // The instance serves on: its next answer is malformed too, and named again.
        let again = c.call_tool("echo", json!({"text": "y"}));
        assert!(again.get("error").is_some(), "{again}");
    }
    gw.shut_down(&cookie);
}

#[test]
fn a_configuration_with_a_typo_is_refused_with_its_position() {
    let cookie = Cookie::new();
    let dir = cookie.state_dir();
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("typo.toml");
    std::fs::write(&path, "[servers.fx]\ncommand = \"x\"\nlifetime = \"sesion\"\n").expect("write");
    let mut cmd = std::process::Command::new(TETHER);
    cookie.set_env(&mut cmd);
    let out = cmd
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .expect("tether serve");
    assert_eq!(out.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:3:1: server \"fx\": lifetime \"sesion\"", path.display())),
        "{stderr}"
    );
    // And one that would be reachable from other hosts without a token.
    std::fs::write(&path, "[gateway]\nlisten = \"0.0.0.0:0\"\n").expect("write");
    let out = cmd.output().expect("tether serve");
    assert_eq!(out.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("set a token"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cookie.assert_none_survive(SLACK);
}
