//! Hostile configuration files: shell metacharacters (passed to the server as written, never
//! interpreted), unknown fields, a server named twice (TOML and JSON), a command that does not
//! exist, a configuration path that is a symlink loop.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::super::support::{error_message, fixture_server, toml_str, Gateway, SLACK};
use crate::harness::{Cookie, Mode, FIXTURE, TETHER};

/// Words a shell would act on; each would create `marker` if anything interpreted it.
fn hostile_words(marker: &Path) -> Vec<String> {
    let m = marker.display();
    vec![
        format!("$(touch {m})"),
        format!("`touch {m}`"),
        format!("; touch {m}"),
        format!("| touch {m}"),
        format!("&& touch {m} &"),
        "*".into(),
        "~/.ssh/*".into(),
        "$HOME".into(),
        "'\"\\".into(),
    ]
}

#[test]
fn shell_metacharacters_reach_the_server_as_written_and_run_nothing() {
    let cookie = Cookie::new();
    std::fs::create_dir_all(cookie.state_dir()).expect("state dir");
    let marker = cookie.state_dir().join("interpreted");
    let words = hostile_words(&marker);
    let mut flags = Vec::new();
    for w in &words {
        flags.extend(["--note", w.as_str()]);
    }
    let env = format!("env = {{ HOSTILE = {} }}", toml_str(&words[0]));
    let config = format!(
        "{}\n[servers.metachar]\ncommand = {}\n",
        fixture_server("fx", &cookie, &flags, &env),
        toml_str(&format!("{FIXTURE}; touch {}", marker.display()))
    );
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    let mut c = gw.client(Some("fx"));
    c.initialize();
    let me = c.call_tool("whoami", json!({}));
    let text = me
        .pointer("/result/content/0/text")
        .and_then(Value::as_str)
        .expect("whoami");
    let pid = serde_json::from_str::<Value>(text).expect("whoami's JSON")["pid"]
        .as_i64()
        .expect("a pid");
    let argv = nul_separated(&format!("/proc/{pid}/cmdline"));
    let given: Vec<&String> = argv.windows(2).filter(|w| w[0] == "--note").map(|w| &w[1]).collect();
    assert_eq!(given, words.iter().collect::<Vec<_>>(), "the server's argv: {argv:?}");
    let environ = nul_separated(&format!("/proc/{pid}/environ"));
    assert!(environ.contains(&format!("HOSTILE={}", words[0])), "{environ:?}");

    // A command with a shell's `;` in it is one program name, which does not exist.
    assert_command_not_found(&gw, "metachar", &format!("{FIXTURE}; touch {}", marker.display()));
    assert!(!marker.exists(), "something ran a shell");
    c.echo("the other server serves on");
    gw.shut_down(&cookie);
}

/// Asserts that a client of `server` is told, at `initialize`, that `program` was not found.
/// Whichever of the gateway's watchers sees the shim's end first words the start of it: "the
/// server exited" (its output ended) or "the server's shim exited" (its exit status came).
fn assert_command_not_found(gw: &Gateway, server: &str, program: &str) {
    let mut c = gw.client(Some(server));
    let (_, answer) = c.try_initialize();
    let message = error_message(&answer);
    let cause = format!("(exit status 127: command not found: {program:?})");
    assert!(
        [
            format!("server {server:?}: the server exited {cause}"),
            format!("server {server:?}: the server's shim exited {cause}"),
        ]
        .iter()
        .any(|m| m == message),
        "{answer}"
    );
}

fn nul_separated(file: &str) -> Vec<String> {
    std::fs::read(file)
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect()
}

#[test]
fn a_command_that_does_not_exist_is_named_with_its_server() {
    let cookie = Cookie::new();
    let missing = cookie.state_dir().join("no-such-server");
    let config = format!(
        "{}\n[servers.gone]\ncommand = {}\nargs = [\"--tag\", {}]\n",
        fixture_server("fx", &cookie, &[], ""),
        toml_str(&missing.display().to_string()),
        toml_str(&cookie.0)
    );
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    assert_command_not_found(&gw, "gone", &missing.display().to_string());
    gw.wait_log(&format!("spawn failed: {}: command not found", missing.display()));
    let mut fx = gw.client(Some("fx"));
    fx.initialize();
    fx.echo("served beside a missing command");
    gw.shut_down(&cookie);
}

/// `tether serve --config FILE` run to its exit: the status and stderr.
fn refused(cookie: &Cookie, file: &Path) -> (Option<i32>, String) {
    let mut cmd = std::process::Command::new(TETHER);
    cookie.set_env(&mut cmd);
    let out = cmd
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(file)
        .output()
        .expect("tether serve");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn write(cookie: &Cookie, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(cookie.state_dir()).expect("state dir");
    let path = cookie.state_dir().join(name);
    std::fs::write(&path, text).expect("writing the configuration");
    path
}

#[test]
fn unknown_fields_and_a_server_named_twice_are_refused_with_their_position() {
    let cookie = Cookie::new();
    let cases = [
        (
            "unknown.toml",
            "[servers.fx]\ncommand = \"x\"\nlifetme = \"session\"\n",
            ":3:1: unknown field `lifetme`, expected one of `command`",
        ),
        (
            "gateway.toml",
            "[gateway]\nmax_mesage_size = \"1MiB\"\n",
            ":2:1: unknown field `max_mesage_size`, expected one of `listen`",
        ),
        (
            "unknown.json",
            "{\"mcpServers\": {\n  \"fx\": {\"command\": \"x\", \"lifetme\": \"session\"}\n}}\n",
            ":2:26: server \"fx\": unknown key \"lifetme\": did you mean \"lifetime\"?",
        ),
        (
            "twice.toml",
            "[servers.fx]\ncommand = \"x\"\n\n[servers.fx]\ncommand = \"y\"\n",
            ":4:10: duplicate key",
        ),
        (
            "twice.json",
            "{\"mcpServers\": {\n  \"fx\": {\"command\": \"x\"},\n  \"fx\": {\"command\": \"y\"}\n}}\n",
            ":3:3: server \"fx\" is defined twice",
        ),
    ];
    for (name, text, said) in cases {
        let path = write(&cookie, name, text);
        let (status, stderr) = refused(&cookie, &path);
        assert_eq!(status, Some(125), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("error: {}{said}", path.display())),
            "{name}: {stderr}"
        );
    }
    cookie.assert_none_survive(SLACK);
}

#[test]
fn a_configuration_path_that_is_a_symlink_loop_is_refused() {
    let cookie = Cookie::new();
    std::fs::create_dir_all(cookie.state_dir()).expect("state dir");
    let a = cookie.state_dir().join("a.toml");
    let b = cookie.state_dir().join("b.toml");
    std::os::unix::fs::symlink(&b, &a).expect("a -> b");
    std::os::unix::fs::symlink(&a, &b).expect("b -> a");
    let (status, stderr) = refused(&cookie, &a);
    assert_eq!(status, Some(125), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: {}: reading: Too many levels of symbolic links (os error 40)",
            a.display()
        )),
        "{stderr}"
    );
    cookie.assert_none_survive(SLACK);
}
