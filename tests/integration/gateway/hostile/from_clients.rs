//! Hostile clients, over HTTP and over `--stdio`: a 100 MB message (refused at
//! `max_message_size` without being held), JSON nested 100,000 deep, ids of the wrong type,
//! answers to requests the gateway never sent; over stdio also truncated JSON and bytes that
//! are not UTF-8 (over HTTP those, and wrong content types, are `bad_input`'s).

use serde_json::{json, Value};

use super::super::http;
use super::super::support::{error_message, fixture_server, Gateway, StdioGateway, SLACK};
use super::memory::{assert_grew_less_than, peak_rss_kib};
use crate::harness::{Cookie, Mode};

/// 100 MiB, the size of the line.
const HUGE: usize = 100 << 20;
/// The gateway's limit in these tests.
const LIMIT: &str = "[gateway]\nmax_message_size = \"1MiB\"\n\n";

fn config(cookie: &Cookie) -> String {
    format!("{LIMIT}{}", fixture_server("fx", cookie, &[], ""))
}

/// `{"a":` nested `depth` times around 1: valid JSON no recursive parser reads.
fn nested(depth: usize) -> String {
    format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
}

/// A `tools/call` of echo whose text is `nested`: only the server parses its arguments.
fn nested_call(id: u64) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":{}}}}}}}"#,
        nested(100_000)
    )
}

const WRONG_IDS: [&str; 4] = [r#"{"a":1}"#, "[1]", "true", r#"{"deep":[[[[1]]]]}"#];
const WRONG_ID: &str = "not JSON-RPC 2.0: an id must be a string or a number";

#[test]
fn over_http_a_huge_deep_or_ill_typed_message_is_refused_and_hurts_no_one() {
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config(&cookie));
    let mut bystander = gw.client(Some("fx"));
    bystander.initialize();
    let mut c = gw.client(Some("fx"));
    c.initialize();
    let sid = c.session.clone().expect("a session");
    let before = peak_rss_kib(gw.pid());

    let headers = [
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("Mcp-Session-Id", sid.as_str()),
    ];
    let r = http::post_endless(gw.addr, "/mcp/fx", &headers, HUGE, b' ').expect("the huge POST");
    assert_eq!(r.status, 413, "{}", r.text());
    let answer = r.messages().pop().unwrap_or(Value::Null);
    assert_eq!(
        error_message(&answer),
        "the message is larger than max_message_size (1048576 bytes)",
        "{answer}"
    );
    assert_grew_less_than(gw.pid(), before, 50, "a 100 MB POST");

    // Nesting the gateway passes on (it splices ids, it does not parse arguments): the
    // server's own parser refuses it, and its error reaches the caller under the caller's id.
    let r = c.post_raw(nested_call(41).as_bytes(), &[]);
    let answer = r.messages().pop().unwrap_or(Value::Null);
    assert_eq!(answer["id"], 41, "{answer}");
    assert!(
        error_message(&answer).starts_with("parse error: recursion limit exceeded"),
        "{answer}"
    );
    // Nesting where the gateway looks: refused by the gateway.
    let r = c.post_raw(
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).as_bytes(),
        &[],
    );
    assert_eq!(r.status, 400, "{}", r.text());
    // It is refused at its first level, as a batch (the gateway never reads deeper there).
    assert_eq!(
        error_message(&r.messages().pop().unwrap_or(Value::Null)),
        "JSON-RPC batches are not part of protocol revision 2025-06-18 (only 2025-03-26)",
        "{}",
        r.text()
    );
    for id in WRONG_IDS {
        let r = c.post_raw(
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#).as_bytes(),
            &[],
        );
        assert_eq!(r.status, 400, "id {id}: {}", r.text());
        let answer = r.messages().pop().unwrap_or(Value::Null);
        assert_eq!(error_message(&answer), WRONG_ID, "id {id}: {answer}");
    }
    // An answer to a request the gateway never sent this client: accepted and dropped.
    let r = c.post(&json!({"jsonrpc": "2.0", "id": 424242, "result": {}}));
    assert_eq!(r.status, 202, "{}", r.text());
    gw.wait_log("an answer to no request of a server's: dropped");

    c.echo("this session serves on");
    bystander.echo("and so does another");
    gw.shut_down(&cookie);
}

#[test]
fn over_stdio_a_huge_deep_or_ill_typed_line_is_refused_and_the_next_one_served() {
    let cookie = Cookie::new();
    let mut gw = StdioGateway::start(&cookie, &config(&cookie));
    let init = gw.ask(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    );
    assert!(init.get("result").is_some(), "{init}");
    gw.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let pid = gw.child.id() as i32;
    let before = peak_rss_kib(pid);

    let mut huge = vec![b' '; HUGE];
    huge.push(b'\n');
    gw.send_bytes(&huge);
    drop(huge);
    let answer = gw.next_message();
    assert_eq!(
        (answer["id"].clone(), error_message(&answer)),
        (
            Value::Null,
            "a 104857600-byte message is larger than max_message_size (1048576 bytes)"
        ),
        "{answer}"
    );
    assert_grew_less_than(pid, before, 50, "a 100 MB line");

    gw.send_bytes(format!("{}\n", nested_call(41)).as_bytes());
    let answer = gw.next_message();
    assert_eq!(answer["id"], 41, "{answer}");
    assert!(
        error_message(&answer).starts_with("parse error: recursion limit exceeded"),
        "{answer}"
    );
    // Nesting where the gateway looks: refused at its first level (not an object).
    gw.send_bytes(format!("{}{}\n", "[".repeat(100_000), "]".repeat(100_000)).as_bytes());
    let answer = gw.next_message();
    assert_eq!(
        error_message(&answer),
        "not a JSON-RPC message: invalid type: sequence, expected a string",
        "{answer}"
    );
    for id in WRONG_IDS {
        gw.send_bytes(format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"tools/list\"}}\n").as_bytes());
        let answer = gw.next_message();
        assert_eq!(error_message(&answer), WRONG_ID, "id {id}: {answer}");
    }
    // Truncated JSON and bytes that are not UTF-8, one line each.
    for (line, said) in [
        (
            &b"{\"jsonrpc\":\"2.0\",\"id\":3,\n"[..],
            "not a JSON-RPC message: EOF while parsing a value",
        ),
        (b"\xff\xfe\n", "not UTF-8 (invalid byte at offset 0)"),
    ] {
        gw.send_bytes(line);
        let answer = gw.next_message();
        assert_eq!(error_message(&answer), said, "{answer}");
    }
    gw.send(&json!({"jsonrpc": "2.0", "id": 424242, "result": {}}));
    let a = gw.ask(
        7,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "served on"}}),
    );
    assert_eq!(a.pointer("/result/content/0/text"), Some(&json!("served on")), "{a}");
    gw.close();
    cookie.assert_none_survive(SLACK);
}

/// A 2026-07-28 request (no `initialize`: the envelope in `params._meta`) whose arguments nest
/// 100,000 deep: the stdio front door reads the envelope without building values, so the
/// request is known for what it is and passed on; the server's own parser refuses it, and its
/// error reaches the client under the client's id.
#[test]
fn over_stdio_a_2026_request_nested_100000_deep_reaches_the_server() {
    let cookie = Cookie::new();
    let mut gw = StdioGateway::start(&cookie, &config(&cookie));
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
    gw.send_bytes(
        format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":51,\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"text\":{}}},{meta}}}}}\n",
            nested(100_000)
        )
        .as_bytes(),
    );
    let answer = gw.next_message();
    assert_eq!(answer["id"], 51, "{answer}");
    assert!(
        error_message(&answer).starts_with("parse error: recursion limit exceeded"),
        "{answer}"
    );
    let params: Value = serde_json::from_str(&format!(
        r#"{{"name":"echo","arguments":{{"text":"served on"}},{meta}}}"#
    ))
    .expect("params");
    let a = gw.ask(52, "tools/call", params);
    assert_eq!(a.pointer("/result/content/0/text"), Some(&json!("served on")), "{a}");
    gw.close();
    cookie.assert_none_survive(SLACK);
}
