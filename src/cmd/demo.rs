//! `tether demo`: the main job, end to end, with nothing to configure.
//!
//! Starts the bundled fixture server (`tether-fixture`, next to this executable) under a shim
//! through the same spawn primitive the gateway uses, speaks MCP to it (initialize, tools/list,
//! tools/call echo), cuts the lifeline, and then proves by scanning /proc for the instance's
//! cookie that no process of it is left.

use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use std::process::ExitCode;

use tether_supervisor::ids;
use tether_supervisor::launch::{Launch, ServerCommand};
use tether_supervisor::process::cookie::Cookie;

/// Runs `tether demo`.
pub fn run() -> ExitCode {
    match demo() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tether: demo failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the demo, printing what happens.
fn demo() -> Result<()> {
    let tether = std::env::current_exe().context("locating the tether executable")?;
    let fixture = tether.with_file_name("tether-fixture");
    if !fixture.exists() {
        bail!(
            "{} not found: build it with `cargo build --release` (it is part of this crate)",
            fixture.display()
        );
    }
    let cookie = Cookie {
        instance: ids::random_id()?,
        owner: ids::random_id()?,
    };
    let server = ServerCommand::Local(vec![
        fixture.into_os_string(),
        "--children".into(),
        "2".into(),
        "--double-fork".into(),
    ]);
    let mut launch = Launch::new(tether, server, cookie.owner.clone(), cookie.instance.clone());
    launch.grace = Duration::from_millis(500);
    println!(
        "starting: tether wrap -- tether-fixture --children 2 --double-fork   (instance {})",
        cookie.instance
    );
    let mut shim = launch.spawn().context("starting tether wrap")?;
    let mut stdin = shim.stdin.take().context("no stdin pipe")?;
    let mut stdout = BufReader::new(shim.stdout.take().context("no stdout pipe")?);

    let mut call = |id: u64, method: &str, params: Value| -> Result<Value> {
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        writeln!(stdin, "{request}").with_context(|| format!("sending {method}"))?;
        stdin.flush()?;
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .with_context(|| format!("reading the reply to {method}"))?;
        let reply: Value =
            serde_json::from_str(&line).with_context(|| format!("reply to {method} is not JSON: {line:?}"))?;
        println!("  -> {method}\n  <- {}", reply);
        Ok(reply)
    };
    call(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "tether-demo", "version": env!("CARGO_PKG_VERSION")}}),
    )?;
    call(2, "tools/list", json!({}))?;
    let reply = call(
        3,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "hello through tether"}}),
    )?;
    let text = reply.pointer("/result/content/0/text").and_then(Value::as_str);
    if text != Some("hello through tether") {
        bail!("unexpected echo reply: {reply}");
    }

    let live = cookie.carriers(&[]).len();
    println!("server tree: {live} processes carry the instance cookie; cutting the lifeline");
    let started = Instant::now();
    shim.end();
    let status = shim.wait().context("waiting for the shim")?;
    let gone_after = started.elapsed();
    let survivors = cookie.carriers(&[]);
    println!(
        "shim exited ({status}) after {gone_after:?}; survivors: {}",
        survivors.len()
    );
    if !survivors.is_empty() {
        bail!(
            "processes survived: {:?}",
            survivors.iter().map(|p| p.pid()).collect::<Vec<_>>()
        );
    }
    Ok(())
}
