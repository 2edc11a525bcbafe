//! One endpoint for three real servers at once, driven by real clients: the fixture over stdio,
//! server-everything over stdio started by `npx`, and server-everything's own streamable HTTP
//! as an HTTP upstream. The official Python SDK (over HTTP at `/mcp`, and through `tether serve
//! --stdio`) and the MCP Inspector CLI list every server's tools and call each; a tool that
//! samples or elicits mid-call is answered by the client, and the answer reaches the server
//! that asked, over stdio and over HTTP alike.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

use super::support::{fixture_server, toml_str, Gateway, SLACK};
use crate::harness::{eventually, Cookie, Mode, TETHER};
use crate::real_client::{repo, test_deps};

/// server-everything serving its own HTTP, carrying the test's cookie; its output (its stderr
/// says when clients connect and disconnect) in a file.
pub(super) struct BareEverything {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: std::path::PathBuf,
}

impl BareEverything {
    /// Streamable HTTP at `/mcp`.
    pub fn start(cookie: &Cookie) -> BareEverything {
        BareEverything::start_mode(cookie, "streamableHttp")
    }

    /// `mode`: `streamableHttp` (at `/mcp`) or `sse` (the legacy transport, at `/sse`).
    pub fn start_mode(cookie: &Cookie, mode: &str) -> BareEverything {
        let (_, node_dir) = test_deps();
        let index = node_dir.join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        std::fs::create_dir_all(cookie.state_dir()).expect("state dir");
        let log = cookie.state_dir().join(format!("everything-{}.log", addr.port()));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = cookie
            .set_env(&mut Command::new("node"))
            .arg(&index)
            .arg(mode)
            .env("PORT", addr.port().to_string())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("node");
        assert!(
            eventually(SLACK, || TcpStream::connect(addr).is_ok()),
            "server-everything did not listen on {addr}"
        );
        BareEverything { child, addr, log }
    }

    /// What it printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for BareEverything {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(cookie: &Cookie, remote: &BareEverything) -> String {
    let (_, node_dir) = test_deps();
    format!(
        "{}\n[servers.everything]\ncommand = \"npx\"\nargs = [\"--no-install\", \"mcp-server-everything\", \"stdio\"]\ncwd = {}\n\n[servers.remote]\nurl = \"http://{}/mcp\"\n",
        fixture_server("fixture", cookie, &[], ""),
        toml_str(&node_dir.to_string_lossy()),
        remote.addr
    )
}

/// The Python SDK client, with `target` (`--url URL` or `--stdio CMD…`) and `calls`.
fn python(cookie: &Cookie, target: &[&str], calls: &Value) -> Value {
    let (python, _) = test_deps();
    let out = cookie
        .set_env(&mut Command::new(python))
        .arg(repo().join("tests/realservers/mcp_aggregate_client.py"))
        .args(["--calls", &calls.to_string()])
        .args(target)
        .output()
        .expect("the Python client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("client JSON {stdout:?}: {e}"))
}

fn text_of<'a>(out: &'a Value, tool: &str) -> &'a str {
    let r = out["results"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["tool"] == tool)
        .unwrap_or_else(|| panic!("no result for {tool}: {out}"));
    assert_eq!(r["is_error"], false, "{tool}: {r}");
    r["text"].as_str().unwrap_or_default()
}

/// The strings of a JSON array.
fn strings(list: &Value) -> Vec<&str> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn assert_every_server_listed(tools: &[&str]) {
    for name in ["fixture__echo", "everything__echo", "remote__echo"] {
        assert!(tools.contains(&name), "{name} missing from {tools:?}");
    }
}

#[test]
fn the_python_sdk_over_http_uses_three_servers_and_answers_their_questions() {
    let cookie = Cookie::new();
    let remote = BareEverything::start(&cookie);
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config(&cookie, &remote));
    let calls = json!([
        {"tool": "fixture__echo", "args": {"text": "to the fixture"}},
        {"tool": "everything__echo", "args": {"message": "to npx"}},
        {"tool": "remote__echo", "args": {"message": "over http"}},
        {"tool": "fixture__sample", "args": {"prompt": "asked by the fixture"}},
        {"tool": "remote__trigger-sampling-request", "args": {"prompt": "asked over http"}},
        {"tool": "everything__trigger-elicitation-request", "args": {}},
    ]);
    let url = format!("http://{}/mcp", gw.addr);
    let out = python(&cookie, &["--url", &url], &calls);
    assert_every_server_listed(&strings(&out["tools"]));
    assert_eq!(text_of(&out, "fixture__echo"), "to the fixture");
    assert_eq!(text_of(&out, "everything__echo"), "Echo: to npx");
    assert_eq!(text_of(&out, "remote__echo"), "Echo: over http");
    // Each question reached the client, and each answer the server that asked.
    // (server-everything puts some context before the prompt it was given.)
    let sampled: Vec<&str> = out["sampled"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(sampled.len(), 2, "{out}");
    assert_eq!(sampled[0], "asked by the fixture");
    assert!(sampled[1].ends_with("asked over http"), "{out}");
    assert!(
        text_of(&out, "fixture__sample").contains("sampled: asked by the fixture"),
        "{out}"
    );
    assert!(
        text_of(&out, "remote__trigger-sampling-request").contains("asked over http\""),
        "{out}"
    );
    assert_eq!(out["elicited"].as_array().map(Vec::len), Some(1), "{out}");
    assert!(
        text_of(&out, "everything__trigger-elicitation-request").contains("accept"),
        "{out}"
    );
    gw.stop();
    drop(remote);
    cookie.assert_none_survive(SLACK);
}

#[test]
fn the_python_sdk_through_serve_stdio_uses_three_servers() {
    let cookie = Cookie::new();
    let remote = BareEverything::start(&cookie);
    std::fs::create_dir_all(cookie.state_dir()).expect("state dir");
    let path = cookie.state_dir().join("three.toml");
    std::fs::write(&path, config(&cookie, &remote)).expect("config");
    let calls = json!([
        {"tool": "fixture__echo", "args": {"text": "over stdio"}},
        {"tool": "everything__echo", "args": {"message": "over stdio"}},
        {"tool": "remote__trigger-sampling-request", "args": {"prompt": "stdio to http"}},
    ]);
    let config = path.to_string_lossy();
    let out = python(
        &cookie,
        &["--stdio", TETHER, "serve", "--stdio", "--config", &config],
        &calls,
    );
    assert_every_server_listed(&strings(&out["tools"]));
    assert_eq!(text_of(&out, "fixture__echo"), "over stdio");
    assert_eq!(text_of(&out, "everything__echo"), "Echo: over stdio");
    assert!(
        text_of(&out, "remote__trigger-sampling-request").contains("stdio to http\""),
        "{out}"
    );
    assert!(
        out["sampled"][0].as_str().is_some_and(|s| s.ends_with("stdio to http")),
        "{out}"
    );
    // The client closed the gateway's stdin: the gateway and its stdio servers are gone.
    let left = cookie.carriers_except(&[remote.child.id() as i32]);
    assert!(
        eventually(SLACK, || cookie.carriers_except(&[remote.child.id() as i32]).is_empty()),
        "left: {left:?}"
    );
    drop(remote);
    cookie.assert_none_survive(SLACK);
}

#[test]
fn the_inspector_cli_lists_and_calls_three_servers() {
    let cookie = Cookie::new();
    let remote = BareEverything::start(&cookie);
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config(&cookie, &remote));
    let url = format!("http://{}/mcp", gw.addr);
    let run = |args: &[&str]| crate::real_client::inspector(&cookie, &url, args);
    let tools = run(&["--method", "tools/list"]);
    let names: Vec<&str> = tools
        .pointer("/tools")
        .or_else(|| tools.pointer("/result/tools"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_every_server_listed(&names);
    for (tool, arg, expected) in [
        ("fixture__echo", "text=inspected", "inspected"),
        ("everything__echo", "message=inspected", "Echo: inspected"),
        ("remote__echo", "message=inspected", "Echo: inspected"),
    ] {
        let called = run(&["--method", "tools/call", "--tool-name", tool, "--tool-arg", arg]);
        let text = called
            .pointer("/content/0/text")
            .or_else(|| called.pointer("/result/content/0/text"));
        assert_eq!(text, Some(&json!(expected)), "{tool}: {called}");
    }
    gw.stop();
    drop(remote);
    cookie.assert_none_survive(SLACK);
}
