//! The stdio loops: newline-delimited JSON-RPC, or raw byte echo.
//!
//! Lines are read whole into a reusable buffer so a single 1 MB+ request is
//! cheap, and every line written is flushed at once so clients never wait on
//! buffering. Plans from `rpc` are carried out here, and so are the
//! misbehaviours that spoil answers (`--slow`, `--garbage`, `--exit-after`,
//! `--bad-utf8-reply`, `--bad-json-reply`, `--close-stdout-at-call`, and `hostile`'s floods,
//! unsolicited and deep answers).

use crate::args::Args;
use crate::plan::{Answer, Finish, Step};
use crate::rpc::{self, Handled, Reply};
use crate::session::{Identity, Session};
use anyhow::{Context, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::time::Duration;

/// Written before each response with `--garbage`: invalid UTF-8 and not JSON.
const GARBAGE: &[u8] = b"\xff\xfe tether-fixture garbage: not json }{\n";

/// Why a serving loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// stdin reached end of file.
    Eof,
    /// `--exit-after` tool calls have been answered.
    ExitAfter,
    /// A tool asked the process to exit at once with this status.
    Crash(i32),
}

/// Why carrying out a request stopped short: the loop ends, well or badly, or the request
/// was cancelled while it waited for the client (it is dropped, unanswered).
#[derive(Debug)]
pub enum Stop {
    End(End),
    Failed(anyhow::Error),
    Cancelled,
}

impl From<anyhow::Error> for Stop {
    fn from(e: anyhow::Error) -> Self {
        Stop::Failed(e)
    }
}

/// Serves JSON-RPC on stdin/stdout until EOF, `--exit-after` or a crash.
pub fn serve(args: &Args) -> Result<End> {
    let input = BufReader::with_capacity(1 << 16, io::stdin().lock());
    let session = Session::new(Identity::current(), args.no_initialize);
    Conn::new(input, io::stdout().lock(), args, session).run()
}

/// One client on a pair of byte streams (generic so tests can script both ends).
pub struct Conn<'a, R, W> {
    /// Where requests and the client's replies arrive, one per line.
    input: R,
    /// Where answers, notifications and the fixture's own requests go.
    out: W,
    /// The misbehaviour flags.
    args: &'a Args,
    /// Protocol state: client capabilities, log level, subscriptions.
    session: Session,
    /// The current input line, reused so large lines are not reallocated.
    line: Vec<u8>,
    /// `tools/call` requests answered so far, for `--exit-after`.
    calls: u64,
    /// Id of the next request the fixture sends the client.
    pub(crate) next_id: u64,
    /// Ids of questions awaiting the client's reply, outermost first.
    pub(crate) waiting: Vec<u64>,
    /// Replies to outer questions that arrived while an inner one was awaited.
    pub(crate) early: HashMap<u64, Result<Value, Value>>,
    /// Ids of the requests being carried out, outermost first (a cancellation of the innermost
    /// ends its wait for the client).
    pub(crate) serving: Vec<Value>,
}

impl<'a, R: BufRead, W: Write> Conn<'a, R, W> {
    pub fn new(input: R, out: W, args: &'a Args, session: Session) -> Self {
        Conn {
            input,
            out,
            args,
            session,
            line: Vec::with_capacity(1 << 12),
            calls: 0,
            next_id: 1,
            waiting: Vec::new(),
            early: HashMap::new(),
            serving: Vec::new(),
        }
    }

    /// The protocol state, once the loop is over.
    pub fn into_session(self) -> Session {
        self.session
    }

    /// Answers requests until the loop ends.
    pub fn run(&mut self) -> Result<End> {
        loop {
            let handled = match self.read() {
                Ok(h) => h,
                Err(Stop::End(end)) => return Ok(end),
                Err(Stop::Failed(e)) => return Err(e),
                Err(Stop::Cancelled) => continue,
            };
            // A reply when no question is pending is stray: ignored, like a notification.
            let Handled::Request(reply) = handled else {
                continue;
            };
            match self.carry_out(reply) {
                Ok(()) | Err(Stop::Cancelled) => {}
                Err(Stop::End(end)) => return Ok(end),
                Err(Stop::Failed(e)) => return Err(e),
            }
        }
    }

    /// Reads and interprets the next line; stops at EOF or once `--exit-after` is reached.
    pub(crate) fn read(&mut self) -> Result<Handled, Stop> {
        if self.args.exit_after.is_some_and(|n| self.calls >= n) {
            return Err(Stop::End(End::ExitAfter));
        }
        self.line.clear();
        if self.input.read_until(b'\n', &mut self.line).context("reading stdin")? == 0 {
            return Err(Stop::End(End::Eof));
        }
        Ok(self.session.handle_line(&self.line))
    }

    /// Carries out a request's plan, then answers it (or exits).
    pub(crate) fn carry_out(&mut self, reply: Reply) -> Result<(), Stop> {
        for step in &reply.plan.steps {
            match step {
                Step::Notify(message) => self.write(message)?,
                Step::Sleep(d) => std::thread::sleep(*d),
            }
        }
        self.serving.push(reply.id.clone());
        let finished = match reply.plan.finish {
            Finish::Answer(answer) => Ok(answer),
            Finish::Ask(question) => self.ask(question).map(Ok),
            Finish::Converse(script) => self.converse(script),
            Finish::Exit(status) => Err(Stop::End(End::Crash(status))),
        };
        self.serving.pop();
        let answer: Answer = match finished {
            Ok(a) => a,
            // Cancelled while it waited for the client: nothing is answered.
            Err(Stop::Cancelled) => return Ok(()),
            Err(e) => return Err(e),
        };
        let deep = self.args.deep_reply.filter(|_| reply.tools);
        self.answer(&reply.id, &answer, reply.tool_call, deep)
    }

    /// Writes one message line that is not an answer (no misbehaviour applies).
    pub(crate) fn write(&mut self, message: &Value) -> Result<(), Stop> {
        let mut bytes = serde_json::to_vec(message).context("serializing a message")?;
        bytes.push(b'\n');
        self.out.write_all(&bytes).context("writing to stdout")?;
        self.out.flush().context("flushing stdout")?;
        Ok(())
    }

    /// Writes a request's answer, spoiled as the flags say.
    fn answer(&mut self, id: &Value, answer: &Answer, tool_call: bool, deep: Option<usize>) -> Result<(), Stop> {
        if let Some(ms) = self.args.slow {
            std::thread::sleep(Duration::from_millis(ms));
        }
        if tool_call && self.args.close_stdout_at_call {
            self.out.flush().context("flushing stdout")?;
            crate::hostile::close_stdout_and_stay()?;
        }
        let bytes = match (
            tool_call,
            self.args.bad_utf8_reply,
            self.args.bad_json_reply,
            deep,
            answer,
        ) {
            (true, true, _, _, _) => spoiled(id, b",\xff\n"),
            (true, _, true, _, _) => spoiled(id, b",\"result\":\n"),
            (_, _, _, Some(depth), Ok(result)) => crate::hostile::deep_answer(id, result, depth)?,
            _ => {
                let mut bytes = serde_json::to_vec(&rpc::response(id, answer)).context("serializing a response")?;
                bytes.push(b'\n');
                bytes
            }
        };
        let before = crate::hostile::before_answer(self.args, tool_call)?;
        self.out.write_all(&before).context("writing before an answer")?;
        if self.args.garbage {
            self.out.write_all(GARBAGE).context("writing garbage to stdout")?;
        }
        self.out.write_all(&bytes).context("writing a response to stdout")?;
        self.out.flush().context("flushing stdout")?;
        if tool_call {
            self.calls += 1;
        }
        Ok(())
    }
}

/// `{"jsonrpc":"2.0","id":ID` then `tail`: a broken answer that still names
/// its request, so a client can tell which call it spoiled.
fn spoiled(id: &Value, tail: &[u8]) -> Vec<u8> {
    let mut bytes = format!(r#"{{"jsonrpc":"2.0","id":{id}"#).into_bytes();
    bytes.extend_from_slice(tail);
    bytes
}

/// Copies stdin to stdout byte for byte until EOF, flushing each chunk.
pub fn raw_echo() -> Result<End> {
    let mut input = io::stdin().lock();
    let mut out = io::stdout().lock();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(End::Eof),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading stdin"),
        };
        out.write_all(&buf[..n]).context("writing stdout")?;
        out.flush().context("flushing stdout")?;
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use clap::Parser;
    use serde_json::json;

    /// Runs the fixture with `flags` on `input` lines; returns how it ended and what it wrote.
    pub fn script(flags: &[&str], input: &[Value]) -> (End, Vec<u8>) {
        let args = Args::parse_from(std::iter::once("f").chain(flags.iter().copied()));
        let mut text = String::new();
        for line in input {
            text.push_str(&line.to_string());
            text.push('\n');
        }
        let mut out = Vec::new();
        let session = Session::new(crate::rpc::tests::session().identity, args.no_initialize);
        let end = Conn::new(text.as_bytes(), &mut out, &args, session).run().unwrap();
        (end, out)
    }

    /// The written lines, each parsed as JSON.
    pub fn lines(out: &[u8]) -> Vec<Value> {
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }

    pub fn request(id: Value, method: &str, params: Value) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
    }

    fn tool(id: u64, name: &str, args: Value) -> Value {
        request(json!(id), "tools/call", json!({"name": name, "arguments": args}))
    }

    #[test]
    fn answers_in_order_until_eof() {
        let (end, out) = script(
            &[],
            &[
                request(json!(1), "ping", json!({})),
                json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
                tool(2, "echo", json!({"text": "x"})),
            ],
        );
        assert_eq!(end, End::Eof);
        let out = lines(&out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], json!({"jsonrpc": "2.0", "id": 1, "result": {}}));
        assert_eq!(out[1]["result"]["content"][0]["text"], "x");
    }

    #[test]
    fn notifications_come_before_the_answer() {
        let call = request(
            json!(1),
            "tools/call",
            json!({"name": "progress", "arguments": {"steps": 2, "ms": 0}, "_meta": {"progressToken": "t"}}),
        );
        let (_, out) = script(&[], &[call]);
        let out = lines(&out);
        let methods: Vec<&str> = out.iter().map(|l| l["method"].as_str().unwrap_or("answer")).collect();
        assert_eq!(methods, ["notifications/progress", "notifications/progress", "answer"]);
        assert_eq!(out[2]["id"], 1);
    }

    #[test]
    fn crash_ends_without_answering() {
        let (end, out) = script(
            &[],
            &[tool(1, "crash", json!({})), tool(2, "echo", json!({"text": "x"}))],
        );
        assert_eq!(end, End::Crash(3));
        assert!(out.is_empty());
    }

    #[test]
    fn exit_after_counts_tool_calls() {
        let (end, out) = script(
            &["--exit-after", "1"],
            &[
                request(json!(1), "ping", json!({})),
                tool(2, "echo", json!({"text": "x"})),
                tool(3, "echo", json!({"text": "y"})),
            ],
        );
        assert_eq!(end, End::ExitAfter);
        assert_eq!(lines(&out).len(), 2);
    }

    #[test]
    fn bad_utf8_reply_names_the_id_then_breaks() {
        let (_, out) = script(
            &["--bad-utf8-reply"],
            &[
                request(json!(1), "ping", json!({})),
                tool(7, "echo", json!({"text": "x"})),
            ],
        );
        let (first, second) = out.split_at(out.iter().position(|&b| b == b'\n').unwrap() + 1);
        assert_eq!(serde_json::from_slice::<Value>(first).unwrap()["id"], 1);
        assert_eq!(second, b"{\"jsonrpc\":\"2.0\",\"id\":7,\xff\n");
    }

    #[test]
    fn bad_json_reply_is_truncated() {
        let call = request(
            json!("s"),
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "x"}}),
        );
        let (_, out) = script(&["--bad-json-reply"], &[call]);
        assert_eq!(out, b"{\"jsonrpc\":\"2.0\",\"id\":\"s\",\"result\":\n");
    }

    #[test]
    fn garbage_precedes_answers_only() {
        let (_, out) = script(&["--garbage"], &[request(json!(1), "ping", json!({}))]);
        assert!(out.starts_with(GARBAGE));
        assert_eq!(
            out.len(),
            GARBAGE.len() + br#"{"id":1,"jsonrpc":"2.0","result":{}}"#.len() + 1
        );
    }

    #[test]
    fn no_initialize_answers_nothing() {
        let init = request(json!(1), "initialize", json!({"protocolVersion": "2025-06-18"}));
        let (end, out) = script(&["--no-initialize"], &[init, request(json!(2), "ping", json!({}))]);
        assert_eq!(end, End::Eof);
        assert!(out.is_empty());
    }
}
