//! Protocol revisions at the front door: each client gets the revision it asked for when
//! Tether speaks it (2025-03-26, 2025-06-18, 2025-11-25), else the newest; a 2025-03-26 client
//! may send batches; an unsupported `MCP-Protocol-Version` header is refused.

use serde_json::{json, Value};

use super::support::{fixture_server, Gateway};
use crate::harness::{Cookie, Mode};

fn initialize(gw: &Gateway, version: &str) -> (super::support::Client, Value) {
    let mut c = gw.client(Some("fx"));
    let r = c.post(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}));
    c.session = r.header("mcp-session-id").map(str::to_string);
    let answer = r.messages().into_iter().next().unwrap_or_default();
    (c, answer)
}

#[test]
fn each_client_gets_its_revision_or_the_newest() {
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &fixture_server("fx", &cookie, &[], ""));
    for (asked, got) in [
        ("2025-03-26", "2025-03-26"),
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("2024-11-05", "2025-11-25"),
        ("2031-01-01", "2025-11-25"),
    ] {
        let (_, answer) = initialize(&gw, asked);
        assert_eq!(
            answer.pointer("/result/protocolVersion"),
            Some(&json!(got)),
            "asked {asked}: {answer}"
        );
        assert_eq!(
            answer.pointer("/result/serverInfo/name"),
            Some(&json!("tether-fixture")),
            "{answer}"
        );
    }
    let (c, _) = initialize(&gw, "2025-06-18");
    let r = c.post_raw(
        br#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        &[("MCP-Protocol-Version", "1999-01-01")],
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("1999-01-01"));
    gw.shut_down(&cookie);
}

#[test]
fn a_2025_03_26_client_may_batch_and_a_later_one_may_not() {
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &fixture_server("fx", &cookie, &[], ""));
    let (old, _) = initialize(&gw, "2025-03-26");
    let batch = json!([
        {"jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "one"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": "b", "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "two"}}}
    ]);
    let r = old.post(&batch);
    assert_eq!(r.status, 200, "{}", r.text());
    let answers = r.messages();
    assert_eq!(answers.len(), 2, "{}", r.text());
    for (id, text) in [("a", "one"), ("b", "two")] {
        let a = answers
            .iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("no answer to {id}: {}", r.text()));
        assert_eq!(a.pointer("/result/content/0/text"), Some(&json!(text)));
    }
    let (new, _) = initialize(&gw, "2025-06-18");
    let r = new.post(&batch);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("batches"), "{}", r.text());
    gw.shut_down(&cookie);
}
