//! The `prefix` policies at `/mcp`: `on_conflict` prefixes only the names several servers
//! list, `never` gives a shared name to the first server, every collision is reported once (at
//! start-up for shared servers), and a call by a name the client never listed finds its server all the same.

use serde_json::{json, Value};

use super::support::{error_message, fixture_server, instances, Gateway};
use crate::harness::{Cookie, Mode};

/// Servers `a` and `b` (`b` offering only `echo` and `whoami`), both listing `echo`.
fn config(cookie: &Cookie, prefix: &str) -> String {
    format!(
        "[gateway]\nprefix = \"{prefix}\"\n{}\n{}",
        fixture_server("a", cookie, &[], ""),
        fixture_server("b", cookie, &[], "tools = { include = [\"echo\", \"whoami\"] }"),
    )
}

fn tool_names(answer: &Value) -> Vec<String> {
    answer
        .pointer("/result/tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect()
}

/// The instance (`TETHER_INSTANCE`) that answered a `whoami`.
fn answered_by(answer: &Value) -> String {
    let text = answer
        .pointer("/result/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no text in {answer}"));
    let facts: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    facts["TETHER_INSTANCE"].as_str().unwrap_or_default().to_string()
}

fn instance_of(cookie: &Cookie, server: &str) -> String {
    let rows = instances(cookie, server);
    assert_eq!(rows.len(), 1, "one instance of {server}: {rows:?}");
    rows[0]["id"].as_str().unwrap_or_default().to_string()
}

#[test]
fn on_conflict_prefixes_only_the_names_several_servers_list() {
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config(&cookie, "on_conflict"));
    // A client that calls before it lists: the gateway lists for it to find the server.
    let mut early = gw.client(None);
    early.initialize();
    let direct = early.call_tool("test_simple_text", json!({}));
    assert!(direct.pointer("/result/content/0/text").is_some(), "{direct}");

    let mut c = gw.client(None);
    c.initialize();
    let tools = tool_names(&c.request("tools/list", json!({})));
    for expected in [
        "a__echo",
        "b__echo",
        "a__whoami",
        "b__whoami",
        "test_simple_text",
        "sleep",
    ] {
        assert!(
            tools.contains(&expected.to_string()),
            "{expected} missing from {tools:?}"
        );
    }
    assert!(!tools.contains(&"echo".to_string()), "{tools:?}");
    assert!(!tools.iter().any(|t| t.starts_with("a__test_")), "{tools:?}");
    let b = c.call_tool("b__whoami", json!({}));
    assert_eq!(answered_by(&b), instance_of(&cookie, "b"));
    let a = c.call_tool("a__echo", json!({"text": "from a"}));
    assert_eq!(a.pointer("/result/content/0/text"), Some(&json!("from a")), "{a}");
    let bare = c.call_tool("echo", json!({"text": "x"}));
    assert!(error_message(&bare).contains("names no tool"), "{bare}");
    gw.wait_log(r#"tools: "echo" is listed by a, b: each is offered as server__name"#);
    // Reported once, however many sessions list.
    assert_eq!(gw.log().matches(r#""echo" is listed by"#).count(), 1, "{}", gw.log());
    gw.shut_down(&cookie);
}

#[test]
fn never_gives_a_shared_name_to_the_first_server() {
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config(&cookie, "never"));
    // Reported at start-up, before any client lists: both servers are shared.
    gw.wait_log(r#"tools: "whoami" is listed by a, b: "a" keeps it; the others' are left out"#);
    let mut c = gw.client(None);
    c.initialize();
    let tools = tool_names(&c.request("tools/list", json!({})));
    assert!(tools.contains(&"whoami".to_string()), "{tools:?}");
    assert!(!tools.iter().any(|t| t.contains("__")), "{tools:?}");
    assert_eq!(tools.iter().filter(|t| *t == "whoami").count(), 1, "{tools:?}");
    let who = c.call_tool("whoami", json!({}));
    assert_eq!(answered_by(&who), instance_of(&cookie, "a"));
    gw.shut_down(&cookie);
}
