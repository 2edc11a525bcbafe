//! A real client against a real server through `tether wrap`: the official Python SDK's stdio
//! client starts `@modelcontextprotocol/server-everything` with the README's own config entries,
//! read out of README.md as written, calls a tool and closes; afterwards no process of the run
//! is alive.
//!
//! Needs the pinned test dependencies (`scripts/install-test-deps`, run by `scripts/test`).

#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{which, Cookie, COOKIE_VAR, TETHER};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The JSON block that follows `<!-- tested: NAME` in README.md.
pub fn readme_block(name: &str) -> Value {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let marker = format!("<!-- tested: {name}");
    let after = &readme[readme.find(&marker).unwrap_or_else(|| panic!("README has no {marker}"))..];
    let start = after.find("```json\n").expect("json block after marker") + "```json\n".len();
    let end = after[start..].find("```").expect("end of json block");
    serde_json::from_str(&after[start..start + end]).expect("README block is valid JSON")
}

pub fn test_deps() -> (PathBuf, PathBuf) {
    let deps = repo().join("target/test-deps");
    let python = deps.join("venv/bin/python");
    let node_dir = deps.join("node");
    assert!(
        python.exists()
            && node_dir
                .join("node_modules/@modelcontextprotocol/server-everything")
                .exists(),
        "pinned test servers missing under {}: run scripts/install-test-deps (scripts/test does)",
        deps.display()
    );
    (python, node_dir)
}

/// Runs the SDK client on one `mcpServers`-style entry, with the test cookie added to its env
/// (instrumentation only: command and args stay as written). Returns the client's JSON line.
pub fn run_client(entry: &Value, cookie: &Cookie, tool: &str, args: Value) -> Value {
    run_client_with_env(entry, cookie, tool, args, &[])
}

/// [`run_client`], with more environment for the entry's process (instrumentation too: where a
/// gateway finds its configuration and ledger).
pub fn run_client_with_env(entry: &Value, cookie: &Cookie, tool: &str, args: Value, env: &[(&str, String)]) -> Value {
    let (python, node_dir) = test_deps();
    let mut entry = entry.clone();
    entry["env"] = json!({ COOKIE_VAR: cookie.0 });
    for (k, v) in env {
        entry["env"][*k] = json!(v);
    }
    let config = json!({"mcpServers": {"everything": entry}});
    let config_path = std::env::temp_dir().join(format!("tether-client-{}.json", cookie.0));
    std::fs::write(&config_path, config.to_string()).expect("write config");
    let tether_dir = Path::new(TETHER).parent().expect("tether dir");
    let path = format!("{}:{}", tether_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new(&python)
        .arg(repo().join("tests/realservers/mcp_client.py"))
        .arg(&config_path)
        .arg("everything")
        .args(["--tool", tool, "--args", &args.to_string(), "--timeout", "60"])
        .current_dir(&node_dir)
        .env("PATH", path)
        .env("npm_config_yes", "true")
        .output()
        .expect("run the Python MCP client");
    let _ = std::fs::remove_file(&config_path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("client output {stdout:?}: {e}"))
}

#[test]
fn claude_desktop_entry_calls_server_everything_and_leaves_nothing() {
    let block = readme_block("claude-desktop");
    let entry = &block["mcpServers"]["everything"];
    assert_eq!(entry["command"], "tether");
    let cookie = Cookie::new();
    let out = run_client(entry, &cookie, "echo", json!({"message": "hello from tether"}));
    assert_eq!(out["server"], "mcp-servers/everything");
    assert_eq!(out["result"], "Echo: hello from tether");
    cookie.assert_none_survive(Duration::from_secs(3));
}

#[test]
fn openclaw_entry_runs_the_server_under_tether_and_leaves_nothing() {
    let block = readme_block("openclaw");
    let entry = &block["mcp"]["servers"]["everything"];
    assert_eq!(entry["command"], "tether");
    let cookie = Cookie::new();
    // get-env shows the server's own environment: proof that it ran under tether (it carries
    // the instance cookie) and that the survivor check below looks for the right processes.
    let out = run_client(entry, &cookie, "get-env", json!({}));
    let env = out["result"].as_str().expect("text result");
    assert!(
        env.contains("TETHER_INSTANCE"),
        "server did not run under tether: {env}"
    );
    assert!(env.contains(&cookie.0), "server does not carry the test cookie: {env}");
    cookie.assert_none_survive(Duration::from_secs(3));
}

#[test]
fn the_sdk_client_calls_server_everything_over_ssh_through_tether() {
    let (_, node_dir) = test_deps();
    let Some(sshd) = crate::sshd::Sshd::start() else { return };
    let cookie = Cookie::new();
    let server = node_dir.join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    // By absolute path: the remote login's PATH is not the test's.
    let node = which("node").display().to_string();
    let mut args: Vec<String> = vec!["wrap".into()];
    args.extend(sshd.tether_flags());
    // The test cookie rides in the remote server's environment, so the survivor check finds it.
    args.extend(["--remote-env".into(), format!("{COOKIE_VAR}={}", cookie.0), "--".into()]);
    args.extend([node, server.display().to_string(), "stdio".into()]);
    let entry = json!({"command": TETHER, "args": args});
    let out = run_client(&entry, &cookie, "echo", json!({"message": "hello over ssh"}));
    assert_eq!(out["server"], "mcp-servers/everything");
    assert_eq!(out["result"], "Echo: hello over ssh");
    cookie.assert_none_survive(Duration::from_secs(3));
}

/// Runs the pinned MCP Inspector CLI against `url` (streamable HTTP) with `args`, with the
/// cookie in its environment and a home of the test's own; its JSON output.
pub fn inspector(cookie: &crate::harness::Cookie, url: &str, args: &[&str]) -> Value {
    let (_, node_dir) = test_deps();
    let home = cookie.state_dir().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let out = cookie
        .set_env(&mut std::process::Command::new(
            node_dir.join("node_modules/.bin/mcp-inspector"),
        ))
        .arg("--cli")
        .arg(url)
        .args(["--transport", "http"])
        .args(args)
        .args(["--format", "json"])
        .env("HOME", &home)
        .output()
        .expect("mcp-inspector");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "inspector {args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str::<Value>(stdout.trim()).unwrap_or_else(|e| panic!("inspector output {stdout:?}: {e}"))
}
