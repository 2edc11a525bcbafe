//! Protocol revision 2026-07-28 at the front door, over servers of the session-based
//! revisions: `server/discover`, calls with the `_meta` envelope and the routing headers (and
//! the revision's refusals when they do not match), a server's question during a call turned
//! into an `InputRequiredResult` and its retry, logs at the client's level only, a `session`
//! server reached through a session named by the `Tether-Session` header (and a clear error
//! without it), `subscriptions/listen`, and no GET or DELETE.

use std::net::SocketAddr;

use serde_json::{json, Value};

use super::http::{self, EventStream};
use super::support::{error_message, fixture_server, Gateway, SLACK};
use crate::harness::{Cookie, Mode};

const REVISION: &str = "2026-07-28";

/// What the test clients declare: sampling and form elicitation.
fn default_capabilities() -> Value {
    json!({"sampling": {}, "elicitation": {"form": {}}})
}

/// `params` with the 2026-07-28 envelope added.
fn envelope(mut params: Value, capabilities: &Value, log_level: Option<&str>) -> Value {
    let mut meta = json!({
        "io.modelcontextprotocol/protocolVersion": REVISION,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
        "io.modelcontextprotocol/clientInfo": {"name": "modern-test", "version": "1"},
    });
    if let Some(l) = log_level {
        meta["io.modelcontextprotocol/logLevel"] = json!(l);
    }
    params["_meta"] = meta;
    params
}

/// A 2026-07-28 client: no session, everything in each request.
struct Modern {
    addr: SocketAddr,
    path: String,
    next: u64,
    /// Extra headers on every request (the session header).
    extra: Vec<(String, String)>,
    capabilities: Value,
    log_level: Option<&'static str>,
}

impl Modern {
    fn new(addr: SocketAddr, path: &str) -> Modern {
        Modern {
            addr,
            path: path.to_string(),
            next: 0,
            extra: Vec::new(),
            capabilities: default_capabilities(),
            log_level: None,
        }
    }

    /// The params with the envelope added.
    fn params(&self, params: Value) -> Value {
        envelope(params, &self.capabilities, self.log_level)
    }

    /// POSTs `method` with `params` (envelope added) and the headers the revision wants
    /// (`name`: the Mcp-Name); returns the response.
    fn post(&mut self, method: &str, params: Value, name: Option<&str>) -> http::Response {
        self.next += 1;
        let body = json!({"jsonrpc": "2.0", "id": self.next, "method": method, "params": self.params(params)});
        self.post_raw(&body, method, name)
    }

    fn post_raw(&self, body: &Value, method: &str, name: Option<&str>) -> http::Response {
        let mut headers: Vec<(String, String)> = vec![
            ("Content-Type".into(), "application/json".into()),
            ("Accept".into(), "application/json, text/event-stream".into()),
            ("MCP-Protocol-Version".into(), REVISION.into()),
            ("Mcp-Method".into(), method.into()),
        ];
        if let Some(n) = name {
            headers.push(("Mcp-Name".into(), n.into()));
        }
        headers.extend(self.extra.iter().cloned());
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        http::request(self.addr, "POST", &self.path, &h, body.to_string().as_bytes()).expect("POST")
    }

    /// The answer (the last message) of a POST.
    fn answer(&mut self, method: &str, params: Value, name: Option<&str>) -> Value {
        let r = self.post(method, params, name);
        assert_eq!(r.status, 200, "{method}: {}", r.text());
        r.messages()
            .pop()
            .unwrap_or_else(|| panic!("{method}: no answer: {}", r.text()))
    }
}

#[test]
fn a_2026_client_discovers_and_calls_and_answers_a_question_by_retrying() {
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &fixture_server("fx", &cookie, &[], ""));
    let mut c = Modern::new(gw.addr, "/mcp/fx");
    let found = c.answer("server/discover", json!({}), None);
    assert_eq!(
        found.pointer("/result/supportedVersions/0"),
        Some(&json!(REVISION)),
        "{found}"
    );
    assert_eq!(
        found.pointer("/result/_meta/io.modelcontextprotocol~1serverInfo/name"),
        Some(&json!("tether-fixture")),
        "{found}"
    );
    assert!(found.pointer("/result/capabilities/tools").is_some(), "{found}");
    assert_eq!(found.pointer("/result/cacheScope"), Some(&json!("private")), "{found}");

    let listed = c.answer("tools/list", json!({}), None);
    assert!(listed.pointer("/result/tools/0").is_some(), "{listed}");
    assert_eq!(listed.pointer("/result/ttlMs"), Some(&json!(0)), "{listed}");
    let echoed = c.answer(
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "new era"}}),
        Some("echo"),
    );
    assert_eq!(
        echoed.pointer("/result/content/0/text"),
        Some(&json!("new era")),
        "{echoed}"
    );
    assert_eq!(
        echoed.pointer("/result/resultType"),
        Some(&json!("complete")),
        "{echoed}"
    );

    // A question mid-call: the POST ends with the question; the retry answers it.
    let args = json!({"name": "sample", "arguments": {"prompt": "2+2?"}});
    let asked = c.answer("tools/call", args.clone(), Some("sample"));
    let result = &asked["result"];
    assert_eq!(result["resultType"], "input_required", "{asked}");
    let (key, question) = result["inputRequests"]
        .as_object()
        .and_then(|q| q.iter().next())
        .expect("a question");
    assert_eq!(question["method"], "sampling/createMessage", "{asked}");
    assert_eq!(
        question.pointer("/params/messages/0/content/text"),
        Some(&json!("2+2?")),
        "{asked}"
    );
    let mut retry = args.clone();
    retry["requestState"] = result["requestState"].clone();
    retry["inputResponses"] =
        json!({key.as_str(): {"role": "assistant", "content": {"type": "text", "text": "four"}, "model": "m"}});
    let done = c.answer("tools/call", retry.clone(), Some("sample"));
    assert_eq!(done.pointer("/result/content/0/text"), Some(&json!("four")), "{done}");
    assert_eq!(done["id"], json!(c.next), "the retry's own id: {done}");
    // The state was used: a second retry with it is refused.
    let again = c.post("tools/call", retry, Some("sample"));
    assert_eq!(again.status, 400, "{}", again.text());
    assert!(again.text().contains("invalid_request_state"), "{}", again.text());
    gw.shut_down(&cookie);
}

#[test]
fn the_revision_s_refusals_and_removed_methods() {
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &fixture_server("fx", &cookie, &[], ""));
    let mut c = Modern::new(gw.addr, "/mcp/fx");
    // Mcp-Name that is not the body's name.
    let r = c.post(
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "x"}}),
        Some("other"),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.messages()[0].pointer("/error/code"),
        Some(&json!(-32020)),
        "{}",
        r.text()
    );
    // No envelope.
    let bare = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    let r = c.post_raw(&bare, "tools/list", None);
    assert_eq!(
        (r.status, r.messages()[0].pointer("/error/code").cloned()),
        (400, Some(json!(-32602))),
        "{}",
        r.text()
    );
    // A version nobody speaks.
    let r = http::request(
        gw.addr,
        "POST",
        "/mcp/fx",
        &[("Content-Type", "application/json"), ("Accept", "application/json"), ("MCP-Protocol-Version", "2099-01-01"), ("Mcp-Method", "tools/list")],
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2099-01-01","io.modelcontextprotocol/clientCapabilities":{}}}}"#,
    )
    .expect("POST");
    assert_eq!(r.status, 400, "{}", r.text());
    let e = &r.messages()[0];
    assert_eq!(e.pointer("/error/code"), Some(&json!(-32022)), "{e}");
    assert_eq!(e.pointer("/error/data/supported/0"), Some(&json!(REVISION)), "{e}");
    // Methods the revision removed are unknown, with the request's id.
    for method in ["initialize", "ping", "logging/setLevel", "resources/subscribe"] {
        let r = c.post(method, json!({}), None);
        assert_eq!(r.status, 404, "{method}: {}", r.text());
        let e = &r.messages()[0];
        assert_eq!(e.pointer("/error/code"), Some(&json!(-32601)), "{method}: {e}");
        assert_eq!(e["id"], json!(c.next), "{method}: {e}");
    }
    // No GET stream, no session to DELETE.
    for method in ["GET", "DELETE"] {
        let r = http::request(
            gw.addr,
            method,
            "/mcp/fx",
            &[("MCP-Protocol-Version", REVISION), ("Accept", "text/event-stream")],
            b"",
        )
        .expect("request");
        assert_eq!(r.status, 405, "{method}");
    }
    gw.shut_down(&cookie);
}

#[test]
fn logs_reach_a_2026_client_at_its_level_only() {
    let cookie = Cookie::new();
    let gw = Gateway::start(
        &cookie,
        Mode::Cgroup,
        &fixture_server("fx", &cookie, &[], "lifetime = \"request\""),
    );
    let mut c = Modern::new(gw.addr, "/mcp/fx");
    let logs = |r: &http::Response| -> usize {
        r.messages()
            .iter()
            .filter(|m| m["method"] == "notifications/message")
            .count()
    };
    let quiet = c.post(
        "tools/call",
        json!({"name": "test_tool_with_logging", "arguments": {}}),
        Some("test_tool_with_logging"),
    );
    assert_eq!(logs(&quiet), 0, "no logLevel, no logs: {}", quiet.text());
    c.log_level = Some("debug");
    let loud = c.post(
        "tools/call",
        json!({"name": "test_tool_with_logging", "arguments": {}}),
        Some("test_tool_with_logging"),
    );
    assert!(logs(&loud) >= 1, "{}", loud.text());
    c.log_level = Some("emergency");
    let high = c.post(
        "tools/call",
        json!({"name": "test_tool_with_logging", "arguments": {}}),
        Some("test_tool_with_logging"),
    );
    assert_eq!(logs(&high), 0, "{}", high.text());
    gw.shut_down(&cookie);
}

#[test]
fn a_session_server_needs_the_session_header_and_keeps_one_instance_per_named_session() {
    let cookie = Cookie::new();
    let gw = Gateway::start(
        &cookie,
        Mode::Cgroup,
        &fixture_server("fx", &cookie, &[], "lifetime = \"session\""),
    );
    let mut c = Modern::new(gw.addr, "/mcp/fx");
    let r = c.post("tools/call", json!({"name": "whoami", "arguments": {}}), Some("whoami"));
    let e = r.messages().pop().expect("an answer");
    assert!(
        error_message(&e).contains("Tether-Session") || error_message(&e).contains("tether-session"),
        "{e}"
    );
    let who = |c: &mut Modern| -> String {
        let a = c.answer("tools/call", json!({"name": "whoami", "arguments": {}}), Some("whoami"));
        let text = a
            .pointer("/result/content/0/text")
            .and_then(Value::as_str)
            .unwrap_or_default();
        serde_json::from_str::<Value>(text)
            .map(|v| v["TETHER_INSTANCE"].to_string())
            .unwrap_or_default()
    };
    c.extra.push(("Tether-Session".into(), "alpha".into()));
    let first = who(&mut c);
    assert_eq!(first, who(&mut c), "one instance for the named session");
    let mut other = Modern::new(gw.addr, "/mcp/fx");
    other.extra.push(("Tether-Session".into(), "beta".into()));
    assert_ne!(first, who(&mut other), "another name, another instance");
    gw.shut_down(&cookie);
}

#[test]
fn a_listen_stream_carries_what_was_asked_stamped_with_its_id() {
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &fixture_server("fx", &cookie, &[], ""));
    let c = Modern::new(gw.addr, "/mcp/fx");
    let listen = json!({"jsonrpc": "2.0", "id": "sub-1", "method": "subscriptions/listen", "params": c.params(json!({
        "notifications": {"toolsListChanged": true, "promptsListChanged": false, "resourceSubscriptions": ["test://watched-resource"]}}))});
    let mut stream = EventStream::request(
        gw.addr,
        "POST",
        "/mcp/fx",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("MCP-Protocol-Version", REVISION),
            ("Mcp-Method", "subscriptions/listen"),
        ],
        listen.to_string().as_bytes(),
    )
    .expect("listen");
    assert_eq!(stream.status, 200);
    let ack = stream.next(SLACK).expect("the acknowledgement");
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged", "{ack}");
    assert_eq!(
        ack.pointer("/params/_meta/io.modelcontextprotocol~1subscriptionId"),
        Some(&json!("sub-1")),
        "{ack}"
    );
    assert_eq!(
        ack.pointer("/params/notifications/toolsListChanged"),
        Some(&json!(true)),
        "{ack}"
    );
    assert!(
        ack.pointer("/params/notifications/promptsListChanged").is_none(),
        "{ack}"
    );
    // Another client changes the tools: the listener hears it, stamped.
    let mut other = Modern::new(gw.addr, "/mcp/fx");
    other.answer(
        "tools/call",
        json!({"name": "grow", "arguments": {"name": "heard"}}),
        Some("grow"),
    );
    let told = stream.next(SLACK).expect("the change");
    assert_eq!(told["method"], "notifications/tools/list_changed", "{told}");
    assert_eq!(
        told.pointer("/params/_meta/io.modelcontextprotocol~1subscriptionId"),
        Some(&json!("sub-1")),
        "{told}"
    );
    gw.shut_down(&cookie);
}

/// Asks `sample` and returns (the key of its question, the state).
fn asked(c: &mut Modern, prompt: &str) -> (String, Value) {
    let a = c.answer(
        "tools/call",
        json!({"name": "sample", "arguments": {"prompt": prompt}}),
        Some("sample"),
    );
    assert_eq!(a.pointer("/result/resultType"), Some(&json!("input_required")), "{a}");
    let key = a
        .pointer("/result/inputRequests")
        .and_then(Value::as_object)
        .and_then(|q| q.keys().next().cloned())
        .expect("a key");
    (key, a["result"]["requestState"].clone())
}

/// The retry of `sample` answering `key` with `text`.
fn answered(c: &mut Modern, prompt: &str, key: &str, state: &Value, text: &str) -> http::Response {
    c.post(
        "tools/call",
        json!({"name": "sample", "arguments": {"prompt": prompt}, "requestState": state,
            "inputResponses": {key: {"role": "assistant", "content": {"type": "text", "text": text}, "model": "m"}}}),
        Some("sample"),
    )
}

#[test]
fn parked_calls_of_several_clients_each_get_their_own_questions_and_answers() {
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &fixture_server("fx", &cookie, &[], ""));
    let (mut a, mut b) = (Modern::new(gw.addr, "/mcp/fx"), Modern::new(gw.addr, "/mcp/fx"));
    // A's call waits parked on the shared instance while B's asks: B's question is B's.
    let (a_key, a_state) = asked(&mut a, "from a");
    let (b_key, b_state) = asked(&mut b, "from b");
    // A retry is bound to its call: B's state with another tool is refused.
    let other = b.post(
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "x"}, "requestState": b_state}),
        Some("echo"),
    );
    assert_eq!(other.status, 400, "{}", other.text());
    assert!(
        other.text().contains("request_state_of_another_request"),
        "{}",
        other.text()
    );
    let b_done = answered(&mut b, "from b", &b_key, &b_state, "b's answer");
    assert_eq!(
        b_done
            .messages()
            .pop()
            .and_then(|m| m.pointer("/result/content/0/text").cloned()),
        Some(json!("b's answer")),
        "{}",
        b_done.text()
    );
    let a_done = answered(&mut a, "from a", &a_key, &a_state, "a's answer");
    assert_eq!(
        a_done
            .messages()
            .pop()
            .and_then(|m| m.pointer("/result/content/0/text").cloned()),
        Some(json!("a's answer")),
        "{}",
        a_done.text()
    );
    gw.shut_down(&cookie);
}

#[test]
fn a_parked_call_nobody_comes_back_for_ends_at_its_deadline() {
    let cookie = Cookie::new();
    let gw = Gateway::start(
        &cookie,
        Mode::Cgroup,
        &fixture_server("fx", &cookie, &[], "request_timeout = \"1s\""),
    );
    let mut c = Modern::new(gw.addr, "/mcp/fx");
    let (key, state) = asked(&mut c, "never answered");
    // The reaper drops it at the call's deadline, and the server is told.
    gw.wait_log("tether-fixture: cancelled");
    gw.wait_log("parked call(s) of 2026-07-28 clients ran out of time");
    let late = answered(&mut c, "never answered", &key, &state, "too late");
    assert_eq!(late.status, 400, "{}", late.text());
    assert!(late.text().contains("invalid_request_state"), "{}", late.text());
    gw.shut_down(&cookie);
}

#[test]
fn a_2026_client_over_stdio_is_served_without_initialize() {
    let cookie = Cookie::new();
    let mut gw =
        super::support::StdioGateway::start(&cookie, &fixture_server("fx", &cookie, &[], "lifetime = \"session\""));
    let found = gw.ask(1, "server/discover", envelope(json!({}), &default_capabilities(), None));
    assert_eq!(
        found.pointer("/result/supportedVersions/0"),
        Some(&json!(REVISION)),
        "{found}"
    );
    // A session server: stdio's one client is its one lasting session.
    let caps = default_capabilities();
    let echoed = gw.ask(
        2,
        "tools/call",
        envelope(
            json!({"name": "echo", "arguments": {"text": "over stdio"}}),
            &caps,
            None,
        ),
    );
    assert_eq!(
        echoed.pointer("/result/content/0/text"),
        Some(&json!("over stdio")),
        "{echoed}"
    );
    let asked = gw.ask(
        3,
        "tools/call",
        envelope(json!({"name": "sample", "arguments": {"prompt": "2+2?"}}), &caps, None),
    );
    assert_eq!(
        asked.pointer("/result/resultType"),
        Some(&json!("input_required")),
        "{asked}"
    );
    let key = asked
        .pointer("/result/inputRequests")
        .and_then(Value::as_object)
        .and_then(|q| q.keys().next().cloned())
        .expect("a key");
    let retry = envelope(
        json!({"name": "sample", "arguments": {"prompt": "2+2?"}, "requestState": asked["result"]["requestState"],
            "inputResponses": {key: {"role": "assistant", "content": {"type": "text", "text": "four"}, "model": "m"}}}),
        &caps,
        None,
    );
    let done = gw.ask(4, "tools/call", retry);
    assert_eq!(done.pointer("/result/content/0/text"), Some(&json!("four")), "{done}");
    gw.close();
    cookie.assert_none_survive(SLACK);
}
