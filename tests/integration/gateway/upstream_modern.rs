//! A server that speaks protocol revision 2026-07-28 itself (the official Python SDK's
//! MCPServer, over streamable HTTP) behind the gateway: found by `server/discover`, spoken to
//! in that revision, and served to clients of every revision. A session-based client gets the
//! server's `InputRequiredResult` as an elicitation request during its call, and its answer
//! completes the call; a 2026-07-28 client (the Python SDK) gets it as its own
//! `InputRequiredResult`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

use super::support::{Gateway, SLACK};
use crate::harness::{eventually, Cookie, Mode};
use crate::real_client::{repo, test_deps};

/// The Python SDK's 2026-07-28 server on a free port, carrying the test's cookie.
struct ModernServer {
    child: Child,
    addr: SocketAddr,
}

impl ModernServer {
    fn start(cookie: &Cookie) -> ModernServer {
        let (python, _) = test_deps();
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let child = cookie
            .set_env(&mut Command::new(python))
            .arg(repo().join("tests/realservers/mcp_modern_server.py"))
            .arg(addr.port().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python");
        assert!(
            eventually(SLACK, || TcpStream::connect(addr).is_ok()),
            "the 2026-07-28 server did not listen on {addr}"
        );
        ModernServer { child, addr }
    }
}

impl Drop for ModernServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_2026_server_serves_a_session_based_client_and_its_question_reaches_it() {
    let cookie = Cookie::new();
    let server = ModernServer::start(&cookie);
    let config = format!("[servers.modern]\nurl = \"http://{}/mcp\"\n", server.addr);
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    let mut c = gw.client(Some("modern"));
    let init = c.initialize();
    assert_eq!(init["serverInfo"]["name"], "tether-modern-test", "{init}");
    gw.wait_log("instance ready (protocol revision 2026-07-28)");
    let sum = c.call_tool("add", json!({"a": 2, "b": 40}));
    assert_eq!(sum.pointer("/result/content/0/text"), Some(&json!("42")), "{sum}");
    // logging/setLevel is not a 2026-07-28 method: the gateway keeps the level for the server.
    let level = c.request("logging/setLevel", json!({"level": "info"}));
    assert!(level.get("result").is_some(), "{level}");
    // The server's InputRequiredResult is an elicitation request on the call's stream.
    let mut call = c.stream(
        &json!({"jsonrpc": "2.0", "id": "g", "method": "tools/call", "params": {"name": "greet", "arguments": {}}}),
    );
    let question = call.next(SLACK).expect("the elicitation request");
    assert_eq!(question["method"], "elicitation/create", "{question}");
    assert_eq!(
        question.pointer("/params/message"),
        Some(&json!("What is your name?")),
        "{question}"
    );
    let r = c.post(
        &json!({"jsonrpc": "2.0", "id": question["id"], "result": {"action": "accept", "content": {"name": "Ann"}}}),
    );
    assert_eq!(r.status, 202);
    let answer = call.next(SLACK).expect("the answer");
    assert_eq!(answer["id"], "g");
    assert_eq!(
        answer.pointer("/result/content/0/text"),
        Some(&json!("hello Ann")),
        "{answer}"
    );
    gw.stop();
    drop(server);
    cookie.assert_none_survive(SLACK);
}

#[test]
fn a_2026_client_reaches_a_2026_server_through_the_gateway() {
    let cookie = Cookie::new();
    let server = ModernServer::start(&cookie);
    let config = format!("[servers.modern]\nurl = \"http://{}/mcp\"\n", server.addr);
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    let (python, _) = test_deps();
    let calls = json!([{"tool": "greet", "args": {}}, {"tool": "echo", "args": {"text": "both new"}}]);
    let out = cookie
        .set_env(&mut Command::new(python))
        .arg(repo().join("tests/realservers/mcp_aggregate_client.py"))
        .args([
            "--calls",
            &calls.to_string(),
            "--url",
            &format!("http://{}/mcp/modern", gw.addr),
        ])
        .output()
        .expect("the Python client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(v.pointer("/results/0/text"), Some(&json!("hello tether")), "{v}");
    assert_eq!(v.pointer("/results/1/text"), Some(&json!("both new")), "{v}");
    assert_eq!(v["elicited"].as_array().map(Vec::len), Some(1), "{v}");
    gw.stop();
    drop(server);
    cookie.assert_none_survive(SLACK);
}

#[test]
fn a_2026_server_s_list_changes_and_resource_updates_reach_subscribed_clients() {
    let cookie = Cookie::new();
    let server = ModernServer::start(&cookie);
    let config = format!("[servers.modern]\nurl = \"http://{}/mcp\"\n", server.addr);
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    let mut c = gw.client(Some("modern"));
    c.initialize();
    let sid = c.session.clone().expect("session");
    let mut listening = super::http::EventStream::open(
        gw.addr,
        "/mcp/modern",
        &[("Accept", "text/event-stream"), ("Mcp-Session-Id", &sid)],
    )
    .expect("GET");
    let subscribed = c.request("resources/subscribe", json!({"uri": "test://r1"}));
    assert!(subscribed.get("result").is_some(), "{subscribed}");
    // The gateway's listen stream at the server names the resource once it is opened again;
    // the change is announced after that (the tool is called until both arrive).
    let mut heard: Vec<String> = Vec::new();
    let both = eventually(SLACK, || {
        c.call_tool("change", json!({}));
        while let Some(m) = listening.next(std::time::Duration::from_millis(300)) {
            heard.push(m["method"].as_str().unwrap_or_default().to_string());
        }
        heard.iter().any(|m| m == "notifications/tools/list_changed")
            && heard.iter().any(|m| m == "notifications/resources/updated")
    });
    assert!(both, "heard {heard:?}");
    gw.stop();
    drop(server);
    cookie.assert_none_survive(SLACK);
}

#[test]
fn a_stdio_server_is_spoken_to_in_2026_when_its_protocol_says_so() {
    let cookie = Cookie::new();
    let (python, _) = test_deps();
    let script = repo().join("tests/realservers/mcp_modern_server.py");
    let server = |name: &str, protocol: &str| {
        format!(
            "[servers.{name}]\ncommand = {}\nargs = [{}, \"--stdio\", \"--tag\", \"{}\"]\n{protocol}\n",
            super::support::toml_str(&python.to_string_lossy()),
            super::support::toml_str(&script.to_string_lossy()),
            cookie.0
        )
    };
    let config = format!(
        "{}\n{}",
        server("modern", "protocol = \"2026-07-28\""),
        server("either", "")
    );
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    for name in ["modern", "either"] {
        let mut c = gw.client(Some(name));
        c.initialize();
        let sum = c.call_tool("add", json!({"a": 20, "b": 22}));
        assert_eq!(
            sum.pointer("/result/content/0/text"),
            Some(&json!("42")),
            "{name}: {sum}"
        );
        let mut call = c.stream(
            &json!({"jsonrpc": "2.0", "id": "g", "method": "tools/call", "params": {"name": "greet", "arguments": {}}}),
        );
        let question = call.next(SLACK).expect("the elicitation request");
        assert_eq!(question["method"], "elicitation/create", "{name}: {question}");
        c.post(
            &json!({"jsonrpc": "2.0", "id": question["id"], "result": {"action": "accept", "content": {"name": "Cy"}}}),
        );
        let answer = call.next(SLACK).expect("the answer");
        assert_eq!(
            answer.pointer("/result/content/0/text"),
            Some(&json!("hello Cy")),
            "{name}: {answer}"
        );
    }
    // Only the one whose protocol says so was spoken to in 2026-07-28; the other initialized.
    assert_eq!(
        gw.log()
            .matches("instance ready (protocol revision 2026-07-28)")
            .count(),
        1,
        "{}",
        gw.log()
    );
    gw.shut_down(&cookie);
}
