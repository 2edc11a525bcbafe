//! Misbehaviours aimed at the gateway's limits rather than at one answer: a stderr that never
//! ends, a stdout closed while the process lives on, a flood of notifications before each tool
//! call's answer, answers to requests the client never sent, and answers nested deeper than any
//! recursive parser reads.
//!
//! Each is one flag (see `args`), so a test names exactly the hostile server it runs.

use crate::args::Args;
use crate::rpc::notification;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::io::Write;

/// The ids of the answers `--reply-unsolicited` writes: no client sent them (the gateway's own
/// ids for a server are small numbers, counted from 1).
pub const UNSOLICITED_IDS: [&str; 2] = ["987654321", "\"never-sent\""];

/// What happens before the server serves: the stderr flood starts, stdout is closed.
pub fn before_serving(args: &Args) -> Result<()> {
    if args.stderr_flood {
        std::thread::spawn(flood_stderr);
    }
    if args.close_stdio_and_stay {
        close_and_stay(true)?;
    }
    if args.close_stdout_and_stay {
        close_stdout_and_stay()?;
    }
    Ok(())
}

/// Closes stdout and stays alive (until killed): /dev/null in stdout's place closes the pipe,
/// so whoever reads its other end sees its end of file.
pub fn close_stdout_and_stay() -> Result<()> {
    close_and_stay(false)
}

/// Closes stdout (and stderr too with `stderr`) and stays alive until killed.
fn close_and_stay(stderr: bool) -> Result<()> {
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .context("opening /dev/null")?;
    nix::unistd::dup2_stdout(&null).context("closing stdout")?;
    if stderr {
        nix::unistd::dup2_stderr(&null).context("closing stderr")?;
    }
    crate::signals::block_forever();
}

/// Writes numbered lines to stderr for as long as the process lives (blocking whenever the
/// reader is slower); each has a byte that is not UTF-8, and every [`LONG_EVERY`]th is
/// preceded by [`LONG_RUN`] bytes without a newline.
fn flood_stderr() {
    let mut err = std::io::stderr().lock();
    let padding = "x".repeat(200);
    let run = vec![b'y'; LONG_RUN];
    for n in 0u64.. {
        let long = n % LONG_EVERY == LONG_EVERY - 1;
        let written = (if long { err.write_all(&run) } else { Ok(()) })
            .and_then(|()| err.write_all(format!("tether-fixture: stderr flood line {n} ").as_bytes()))
            .and_then(|()| err.write_all(b"\xff "))
            .and_then(|()| writeln!(err, "{padding}"));
        if written.is_err() {
            return;
        }
    }
}

/// How often the stderr flood writes a line without end (one in this many).
const LONG_EVERY: u64 = 5000;
/// The length of that line's run of bytes before its text.
const LONG_RUN: usize = 1 << 20;

/// The lines written before a tool call's answer: `--notification-flood N` log messages, and
/// with `--reply-unsolicited`, answers to requests never sent.
pub fn before_answer(args: &Args, tool_call: bool) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if !tool_call {
        return Ok(bytes);
    }
    for n in 0..args.notification_flood {
        let note = notification(
            "notifications/message",
            json!({"level": "info", "logger": "flood", "data": format!("flood {n}")}),
        );
        serde_json::to_writer(&mut bytes, &note).context("serializing a notification")?;
        bytes.push(b'\n');
    }
    if args.reply_unsolicited {
        for id in UNSOLICITED_IDS {
            let id: Value = serde_json::from_str(id).context("an unsolicited id")?;
            let answer = json!({"jsonrpc": "2.0", "id": id, "result": {"unsolicited": true}});
            serde_json::to_writer(&mut bytes, &answer).context("serializing an unsolicited answer")?;
            bytes.push(b'\n');
        }
    }
    Ok(bytes)
}

/// A result answer whose result also carries `"deep"`: a value nested `depth` deep, written as
/// bytes (serde_json would refuse to build it, and recurse to serialize it).
pub fn deep_answer(id: &Value, result: &Value, depth: usize) -> Result<Vec<u8>> {
    let result = serde_json::to_string(result).context("serializing a result")?;
    let rest = result.strip_prefix('{').context("a result that is not an object")?;
    let comma = if rest == "}" { "" } else { "," };
    let nested = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    Ok(format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{{\"deep\":{nested}{comma}{rest}}}\n").into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn a_deep_answer_is_its_result_with_a_deep_value_beside() {
        let bytes = deep_answer(&json!(7), &json!({"tools": []}), 3).unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            v,
            json!({"jsonrpc": "2.0", "id": 7, "result": {"deep": {"a": {"a": {"a": 1}}}, "tools": []}})
        );
        let empty: Value = serde_json::from_slice(&deep_answer(&json!("x"), &json!({}), 1).unwrap()).unwrap();
        assert_eq!(empty["result"], json!({"deep": {"a": 1}}));
        let far = deep_answer(&json!(1), &json!({}), 100_000).unwrap();
        assert!(
            serde_json::from_slice::<Value>(&far).is_err(),
            "past serde's recursion limit"
        );
    }

    #[test]
    fn a_flood_and_unsolicited_answers_precede_tool_answers_only() {
        let args = Args::parse_from(["f", "--notification-flood", "3", "--reply-unsolicited"]);
        let text = String::from_utf8(before_answer(&args, true).unwrap()).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[..3].iter().all(|l| l["method"] == "notifications/message"));
        assert_eq!(lines[3]["id"], 987654321);
        assert_eq!(lines[4]["id"], "never-sent");
        assert!(before_answer(&args, false).unwrap().is_empty());
    }
}
