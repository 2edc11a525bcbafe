//! Waiting for the client's reply to a question the fixture asked mid-call
//! (`sampling/createMessage`, `elicitation/create`).
//!
//! The fixture is single-threaded, so while a tool waits it keeps reading
//! stdin: requests that arrive meanwhile are answered as they come (a tool
//! among them may ask a question of its own, so waits nest), notifications are
//! ignored as ever, and a reply to an outer question is kept until that
//! question's wait resumes.

use crate::plan::{Answer, Question, RpcError, Script, Turn};
use crate::rpc::{self, Handled};
use crate::server::{Conn, Stop};
use crate::tools;
use serde_json::Value;
use std::io::{BufRead, Write};

/// Questions nested deeper than this are refused, so a client cannot grow the
/// stack without bound by calling asking tools from inside a wait.
const MAX_NESTING: usize = 16;

/// Most rounds of questions in one conversation.
const MAX_ROUNDS: usize = 8;

impl<R: BufRead, W: Write> Conn<'_, R, W> {
    /// Asks the client `question` and returns the tool result it makes of the reply.
    pub(crate) fn ask(&mut self, question: Question) -> Result<Value, Stop> {
        if self.waiting.len() >= MAX_NESTING {
            return Ok(tools::failure(format!(
                "{} questions to the client are already waiting; not asking another",
                self.waiting.len()
            )));
        }
        let id = self.next_id;
        self.next_id += 1;
        self.write(&rpc::request(id, question.method, &question.params))?;
        self.waiting.push(id);
        let reply = self.await_reply(id);
        self.waiting.pop();
        Ok((question.then)(reply?.as_ref()))
    }

    /// Runs a conversation: each round's questions go out at once, their replies are awaited,
    /// and the script says what next.
    pub(crate) fn converse(&mut self, script: Script) -> Result<Answer, Stop> {
        let mut history: Vec<Vec<Result<Value, Value>>> = Vec::new();
        for _ in 0..MAX_ROUNDS {
            let questions = match script(&history) {
                Turn::Done(answer) => return Ok(answer),
                Turn::Ask(q) => q,
            };
            if self.waiting.len() + questions.len() > MAX_NESTING {
                return Ok(Err(RpcError::new(-32603, "too many questions waiting for the client")));
            }
            let mut ids = Vec::new();
            for q in &questions {
                let id = self.next_id;
                self.next_id += 1;
                let mut params = q.params.clone();
                if let Some(p) = params.as_object_mut() {
                    p.insert("_meta".into(), serde_json::json!({"io.tether/inputKey": q.key}));
                }
                self.write(&rpc::request(id, q.method, &params))?;
                self.waiting.push(id);
                ids.push(id);
            }
            let mut replies = Vec::new();
            for id in &ids {
                let reply = self.await_reply(*id);
                if reply.is_err() {
                    self.waiting.retain(|w| !ids.contains(w));
                }
                replies.push(reply?);
            }
            self.waiting.retain(|w| !ids.contains(w));
            history.push(replies);
        }
        Ok(Err(RpcError::new(
            -32603,
            format!("more than {MAX_ROUNDS} rounds of questions"),
        )))
    }

    /// Reads (and serves) input until the client replies to question `id`.
    fn await_reply(&mut self, id: u64) -> Result<Result<Value, Value>, Stop> {
        loop {
            if let Some(reply) = self.early.remove(&id) {
                return Ok(reply);
            }
            match self.read()? {
                Handled::Nothing => {}
                Handled::Response { id: got, outcome } => match got.as_u64() {
                    Some(n) if n == id => return Ok(outcome),
                    Some(n) if self.waiting.contains(&n) => {
                        self.early.insert(n, outcome);
                    }
                    // Not a question of ours: stray, ignored as outside a wait.
                    _ => {}
                },
                Handled::Request(reply) => self.carry_out(reply)?,
                Handled::Cancelled(cancelled) if self.serving.last() == Some(&cancelled) => {
                    return Err(Stop::Cancelled);
                }
                Handled::Cancelled(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::server::tests::{lines, request, script};
    use crate::server::End;
    use serde_json::{json, Value};

    fn init(caps: Value) -> Value {
        request(
            json!(0),
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": caps}),
        )
    }

    fn sample(id: Value, prompt: &str) -> Value {
        request(
            id,
            "tools/call",
            json!({"name": "sample", "arguments": {"prompt": prompt}}),
        )
    }

    fn sampled(id: u64, text: &str) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "result": {"role": "assistant",
               "content": {"type": "text", "text": text}, "model": "m"}})
    }

    #[test]
    fn requests_are_served_while_waiting_for_a_reply() {
        let (end, out) = script(
            &[],
            &[
                init(json!({"sampling": {}})),
                sample(json!("call"), "hello?"),
                request(json!("ping"), "ping", json!({})),
                json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "x"}}),
                json!({"jsonrpc": "2.0", "id": 99, "result": {}}),
                sampled(1, "hello!"),
            ],
        );
        assert_eq!(end, End::Eof);
        let out = lines(&out);
        assert_eq!(out.len(), 4, "{out:?}");
        assert_eq!(out[1]["id"], 1);
        assert_eq!(out[1]["method"], "sampling/createMessage");
        assert_eq!(out[1]["params"]["messages"][0]["content"]["text"], "hello?");
        assert_eq!(out[2], json!({"jsonrpc": "2.0", "id": "ping", "result": {}}));
        assert_eq!(out[3]["id"], "call");
        assert_eq!(out[3]["result"]["content"][0]["text"], "hello!");
    }

    #[test]
    fn a_request_cancelled_while_it_waits_is_dropped_and_serving_goes_on() {
        let (end, out) = script(
            &[],
            &[
                init(json!({"sampling": {}})),
                request(
                    json!("asks"),
                    "tools/call",
                    json!({"name": "test_input_required_result_sampling", "arguments": {}}),
                ),
                json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "asks"}}),
                request(json!("ping"), "ping", json!({})),
            ],
        );
        assert_eq!(end, End::Eof);
        let out = lines(&out);
        // The question, then the ping's answer; the cancelled call is never answered.
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(out[1]["method"], "sampling/createMessage");
        assert_eq!(out[1]["params"]["_meta"]["io.tether/inputKey"], "capital_question");
        assert_eq!(out[2], json!({"jsonrpc": "2.0", "id": "ping", "result": {}}));
    }

    #[test]
    fn a_round_of_several_questions_waits_for_every_reply_in_any_order() {
        let (_, out) = script(
            &[],
            &[
                init(json!({"sampling": {}, "elicitation": {}, "roots": {}})),
                request(
                    json!("m"),
                    "tools/call",
                    json!({"name": "test_input_required_result_multiple_inputs", "arguments": {}}),
                ),
                json!({"jsonrpc": "2.0", "id": 3, "result": {"roots": [{"uri": "file:///r"}]}}),
                sampled(2, "hi"),
                json!({"jsonrpc": "2.0", "id": 1, "result": {"action": "accept", "content": {"name": "Ann"}}}),
            ],
        );
        let out = lines(&out);
        assert_eq!(out.len(), 5, "{out:?}");
        let methods: Vec<&str> = out[1..4].iter().filter_map(|m| m["method"].as_str()).collect();
        assert_eq!(methods, ["elicitation/create", "sampling/createMessage", "roots/list"]);
        assert_eq!(
            out[4]["result"]["content"][0]["text"],
            "name Ann, a greeting, 1 root(s)"
        );
    }

    #[test]
    fn nested_questions_resolve_in_any_order() {
        let (_, out) = script(
            &[],
            &[
                init(json!({"sampling": {}})),
                sample(json!("outer"), "a"),
                sample(json!("inner"), "b"),
                sampled(1, "for outer"),
                sampled(2, "for inner"),
            ],
        );
        let out = lines(&out);
        let ids: Vec<&Value> = out.iter().map(|l| &l["id"]).collect();
        assert_eq!(ids, [&json!(0), &json!(1), &json!(2), &json!("inner"), &json!("outer")]);
        assert_eq!(out[3]["result"]["content"][0]["text"], "for inner");
        assert_eq!(out[4]["result"]["content"][0]["text"], "for outer");
    }

    #[test]
    fn an_error_reply_is_a_tool_error() {
        let refusal = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -1, "message": "declined"}});
        let (_, out) = script(&[], &[init(json!({"sampling": {}})), sample(json!(5), "p"), refusal]);
        let out = lines(&out);
        assert_eq!(out[2]["result"]["isError"], true);
        assert!(out[2]["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("declined"));
    }

    #[test]
    fn eof_while_waiting_ends_the_loop() {
        let (end, out) = script(&[], &[init(json!({"sampling": {}})), sample(json!(5), "p")]);
        assert_eq!(end, End::Eof);
        assert_eq!(lines(&out).len(), 2);
    }

    #[test]
    fn without_the_capability_nothing_is_asked() {
        let (_, out) = script(&[], &[init(json!({})), sample(json!(5), "p")]);
        let out = lines(&out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1]["result"]["isError"], true);
    }

    #[test]
    fn nesting_is_bounded() {
        let mut input = vec![init(json!({"sampling": {}}))];
        for i in 0..=super::MAX_NESTING {
            input.push(sample(json!(format!("c{i}")), "p"));
        }
        let (end, out) = script(&[], &input);
        assert_eq!(end, End::Eof);
        let out = lines(&out);
        // initialize, MAX_NESTING questions, then the refused call's answer.
        assert_eq!(out.len(), 2 + super::MAX_NESTING);
        let last = out.last().unwrap();
        assert_eq!(last["id"], format!("c{}", super::MAX_NESTING));
        assert_eq!(last["result"]["isError"], true);
    }

    #[test]
    fn elicitation_round_trip() {
        let call = request(
            json!(3),
            "tools/call",
            json!({"name": "test_elicitation", "arguments": {"message": "Who?"}}),
        );
        let accept = json!({"jsonrpc": "2.0", "id": 1, "result": {"action": "accept", "content": {"username": "u"}}});
        let (_, out) = script(&[], &[init(json!({"elicitation": {}})), call, accept]);
        let out = lines(&out);
        assert_eq!(out[1]["method"], "elicitation/create");
        assert_eq!(out[1]["params"]["message"], "Who?");
        assert_eq!(
            out[2]["result"]["content"][0]["text"],
            r#"User response: action=accept, content={"username":"u"}"#
        );
    }
}
