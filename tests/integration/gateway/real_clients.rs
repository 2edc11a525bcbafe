//! Real clients through `tether serve`, in front of the real `@modelcontextprotocol/server-
//! everything` over stdio: the official Python SDK's streamable-HTTP client, the MCP Inspector
//! CLI, and `tether serve --stdio` as a Claude Desktop entry taken from the README as written,
//! started by the Python SDK's stdio client. Each leaves nothing behind.

use std::process::Command;

use serde_json::{json, Value};

use super::support::{names, toml_str, Gateway, SLACK};
use crate::harness::{Cookie, Mode};
use crate::real_client::{readme_block, repo, run_client_with_env, test_deps};

/// A configuration serving server-everything over stdio as `everything`.
fn everything(lifetime: &str) -> String {
    let (_, node_dir) = test_deps();
    let index = node_dir.join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    format!(
        "[servers.everything]\ncommand = \"node\"\nargs = [{}, \"stdio\"]\nlifetime = \"{lifetime}\"\n",
        toml_str(&index.to_string_lossy())
    )
}

#[test]
fn the_python_sdk_over_streamable_http_lists_and_calls_tools() {
    let cookie = Cookie::new();
    for lifetime in ["shared", "session"] {
        let gw = Gateway::start(&cookie, Mode::Cgroup, &everything(lifetime));
        let (python, _) = test_deps();
        let url = format!("http://{}/mcp/everything", gw.addr);
        // The cookie in its environment: anything the client leaves behind is found.
        let out = cookie
            .set_env(&mut Command::new(python))
            .arg(repo().join("tests/realservers/mcp_http_client.py"))
            .arg(&url)
            .args(["--args", r#"{"message": "hello over http"}"#])
            .output()
            .expect("the Python client");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{lifetime}: client failed: {stdout}\n{}\ngateway:\n{}",
            String::from_utf8_lossy(&out.stderr),
            gw.log()
        );
        let v: Value = serde_json::from_str(stdout.trim()).expect("client JSON");
        assert_eq!(v["server"], "mcp-servers/everything");
        assert_eq!(v["result"], "Echo: hello over http");
        assert!(v["tools"].as_array().is_some_and(|t| t.len() > 5), "{v}");
        gw.shut_down(&cookie);
    }
}

#[test]
fn the_inspector_cli_lists_and_calls_tools() {
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &everything("shared"));
    let url = format!("http://{}/mcp/everything", gw.addr);
    let run = |args: &[&str]| crate::real_client::inspector(&cookie, &url, args);
    let tools = run(&["--method", "tools/list"]);
    assert!(names(&tools, "tools").iter().any(|n| n == "echo"), "{tools}");
    let called = run(&[
        "--method",
        "tools/call",
        "--tool-name",
        "echo",
        "--tool-arg",
        "message=from the inspector",
    ]);
    assert_eq!(
        called.pointer("/result/content/0/text"),
        Some(&json!("Echo: from the inspector")),
        "{called}"
    );
    gw.shut_down(&cookie);
}

#[test]
fn serve_stdio_as_a_claude_desktop_entry_from_the_readme() {
    let block = readme_block("serve-stdio");
    let entry = &block["mcpServers"]["tether"];
    assert_eq!(entry["command"], "tether");
    let cookie = Cookie::new();
    // The entry reads $XDG_CONFIG_HOME/tether/config.toml, as the README says.
    let xdg = cookie.state_dir().join("xdg");
    std::fs::create_dir_all(xdg.join("tether")).expect("config dir");
    std::fs::write(xdg.join("tether/config.toml"), everything("session")).expect("config");
    let env = [
        ("XDG_CONFIG_HOME", xdg.to_string_lossy().into_owned()),
        ("TETHER_STATE_DIR", cookie.state_dir().to_string_lossy().into_owned()),
    ];
    let out = run_client_with_env(entry, &cookie, "echo", json!({"message": "hello over stdio"}), &env);
    assert_eq!(out["server"], "mcp-servers/everything");
    assert_eq!(out["result"], "Echo: hello over stdio");
    // The client closed the gateway's stdin: the gateway and every instance are gone.
    cookie.assert_none_survive(SLACK);
}

#[test]
fn the_readme_s_one_line_client_call_works() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let after = &readme[readme.find("<!-- tested: curl").expect("the curl marker")..];
    let start = after.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let line = after[start..].lines().next().expect("the line");
    let cookie = Cookie::new();
    let gw = Gateway::start(
        &cookie,
        Mode::Cgroup,
        &super::support::fixture_server("fixture", &cookie, &[], ""),
    );
    // As written, but on the test gateway's port.
    let line = line.replace("localhost:7300", &format!("localhost:{}", gw.addr.port()));
    let out = cookie
        .set_env(&mut Command::new("bash"))
        .args(["-c", &line])
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(
        answer.pointer("/result/content/0/text"),
        Some(&json!("hello through tether")),
        "{answer}"
    );
    gw.shut_down(&cookie);
}
