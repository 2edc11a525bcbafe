//! The fixture's JSON-RPC 2.0 / MCP request handling, as a pure function of the session.
//!
//! One input line in, one [`Handled`] out: a request's [`Plan`], a client's
//! response to one of the fixture's own questions, or nothing. This module is
//! the framing and the method table; what the methods do lives with their
//! concept (`session`, `tools`, `prompts`, `resources`). Keeping it free of
//! I/O lets unit tests cover the protocol without pipes or processes;
//! `server` runs the plans and `conversation` waits for the client's replies.

use crate::plan::{Answer, Plan, RpcError};
use crate::session::Session;
use crate::{prompts, resources, tools};
use serde_json::{json, Value};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;

/// What one input line amounts to.
#[derive(Debug)]
pub enum Handled {
    /// Write nothing: a blank line, a notification, a stray response, or a
    /// request held back by `--no-initialize`.
    Nothing,
    /// The client's reply to a request the fixture sent: its `result` (Ok) or `error` (Err).
    Response { id: Value, outcome: Result<Value, Value> },
    /// A request to answer by carrying out the plan.
    Request(Reply),
    /// The client cancelled its request with this id.
    Cancelled(Value),
}

/// A request's id and plan, and whether it is a `tools/call` (for `--exit-after`
/// and the bad-reply flags, which count or spoil only tool answers).
#[derive(Debug)]
pub struct Reply {
    pub id: Value,
    pub plan: Plan,
    pub tool_call: bool,
    /// A `tools/list` or `tools/call`: its answer is the one `--deep-reply` nests.
    pub tools: bool,
}

impl Session {
    /// Handles one line of input.
    pub fn handle_line(&mut self, line: &[u8]) -> Handled {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Handled::Nothing;
        }
        let msg: Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => return self.invalid(Value::Null, PARSE_ERROR, format!("parse error: {e}")),
        };
        let Some(obj) = msg.as_object() else {
            return self.invalid(Value::Null, INVALID_REQUEST, "request must be a JSON object".into());
        };
        let method = obj.get("method");
        let Some(id) = obj.get("id").cloned() else {
            // Without an id it is a notification: never answered, but it may end the hold; a
            // cancellation is said on stderr, so tests can see that it arrived.
            match method.and_then(Value::as_str) {
                Some("notifications/initialized") => self.holding = false,
                Some("notifications/cancelled") => {
                    let params = obj.get("params").cloned().unwrap_or(Value::Null);
                    eprintln!("tether-fixture: cancelled {params}");
                    if let Some(id) = params.get("requestId") {
                        return Handled::Cancelled(id.clone());
                    }
                }
                _ => {}
            }
            return Handled::Nothing;
        };
        let Some(method) = method else {
            if let Some(result) = obj.get("result") {
                return Handled::Response {
                    id,
                    outcome: Ok(result.clone()),
                };
            }
            if let Some(error) = obj.get("error") {
                return Handled::Response {
                    id,
                    outcome: Err(error.clone()),
                };
            }
            return self.invalid(id, INVALID_REQUEST, "missing method".into());
        };
        let Some(method) = method.as_str() else {
            return self.invalid(id, INVALID_REQUEST, "method must be a string".into());
        };
        if self.holding || (self.no_initialize && method == "initialize") {
            return Handled::Nothing;
        }
        let params = obj.get("params").unwrap_or(&Value::Null);
        let plan = match self.dispatch(method, params) {
            Ok(plan) => plan,
            Err(e) => Plan::fail(e),
        };
        Handled::Request(Reply {
            id,
            plan,
            tool_call: method == "tools/call",
            tools: matches!(method, "tools/call" | "tools/list"),
        })
    }

    /// An error answer to a line that is not a usable request (silent while holding).
    fn invalid(&self, id: Value, code: i64, message: String) -> Handled {
        if self.holding {
            return Handled::Nothing;
        }
        Handled::Request(Reply {
            id,
            plan: Plan::fail(RpcError::new(code, message)),
            tool_call: false,
            tools: false,
        })
    }

    fn dispatch(&mut self, method: &str, params: &Value) -> Result<Plan, RpcError> {
        let result = match method {
            "initialize" => self.initialize(params),
            "ping" => json!({}),
            "tools/list" => tools::list(),
            "tools/call" => return tools::call(self, params),
            "prompts/list" => prompts::list(),
            "prompts/get" if params.get("name").and_then(Value::as_str) == Some(tools::input_required::PROMPT) => {
                return Ok(tools::input_required::prompt())
            }
            "prompts/get" => prompts::get(params)?,
            "completion/complete" => prompts::complete(params)?,
            "resources/list" => resources::list(),
            "resources/templates/list" => resources::templates(),
            "resources/read" => resources::read(params)?,
            "resources/subscribe" => resources::subscribe(self, params)?,
            "resources/unsubscribe" => resources::unsubscribe(self, params)?,
            "logging/setLevel" => self.set_level(params)?,
            other => return Err(RpcError::new(METHOD_NOT_FOUND, format!("method not found: {other}"))),
        };
        Ok(Plan::answer(result))
    }
}

/// A complete response message.
pub fn response(id: &Value, answer: &Answer) -> Value {
    match answer {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(e) => match &e.data {
            None => json!({"jsonrpc": "2.0", "id": id, "error": {"code": e.code, "message": e.message}}),
            Some(data) => {
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": e.code, "message": e.message, "data": data}})
            }
        },
    }
}

/// A complete notification message; `params` is left out when null.
pub fn notification(method: &str, params: Value) -> Value {
    if params.is_null() {
        json!({"jsonrpc": "2.0", "method": method})
    } else {
        json!({"jsonrpc": "2.0", "method": method, "params": params})
    }
}

/// A complete request message from the fixture to the client.
pub fn request(id: u64, method: &str, params: &Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// `params[name]` as a string, or an invalid-params error naming `what`.
pub fn str_param<'a>(params: &'a Value, name: &str, what: &str) -> Result<&'a str, RpcError> {
    params
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::new(INVALID_PARAMS, format!("{what} requires a string \"{name}\"")))
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::session::Identity;

    /// A fresh session, as the fixture starts (no `--no-initialize`).
    pub fn session() -> Session {
        Session::new(
            Identity {
                pid: 42,
                instance: Some("inst".into()),
                test_cookie: None,
            },
            false,
        )
    }

    /// The plan for `line` in `s`; panics unless the line is a request.
    pub fn plan_in(s: &mut Session, line: &str) -> Reply {
        match s.handle_line(line.as_bytes()) {
            Handled::Request(reply) => reply,
            other => panic!("not a request: {other:?}"),
        }
    }

    /// The response message to `line` in `s`, which must be answered at once.
    pub fn call_in(s: &mut Session, line: &str) -> Value {
        let reply = plan_in(s, line);
        assert!(reply.plan.steps.is_empty(), "{:?}", reply.plan.steps);
        response(&reply.id, reply.plan.answered().expect("an immediate answer"))
    }

    /// The response message to `line` in a fresh session.
    pub fn call(line: &str) -> Value {
        call_in(&mut session(), line)
    }

    /// A request line with an id of 1.
    pub fn req(method: &str, params: Value) -> String {
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string()
    }

    fn nothing(line: &[u8]) -> bool {
        matches!(session().handle_line(line), Handled::Nothing)
    }

    #[test]
    fn ping_returns_empty_object() {
        assert_eq!(call(r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#)["result"], json!({}));
    }

    #[test]
    fn unknown_method_is_method_not_found() {
        let r = call(r#"{"jsonrpc":"2.0","id":8,"method":"no/such"}"#);
        assert_eq!(r["error"]["code"], METHOD_NOT_FOUND);
        assert_eq!(r["error"]["message"], "method not found: no/such");
    }

    #[test]
    fn garbage_is_parse_error_with_null_id() {
        for line in [&b"not json"[..], b"{\"id\":1", b"\xff\xfe\n"] {
            let Handled::Request(reply) = session().handle_line(line) else {
                panic!("no reply to {line:?}");
            };
            let r = response(&reply.id, reply.plan.answered().unwrap());
            assert_eq!(r["error"]["code"], PARSE_ERROR);
            assert!(r["id"].is_null());
            assert!(r.as_object().unwrap().contains_key("id"));
        }
    }

    #[test]
    fn non_objects_are_invalid_requests() {
        assert_eq!(call("[1,2]")["error"]["code"], INVALID_REQUEST);
        assert_eq!(call("42")["error"]["code"], INVALID_REQUEST);
        assert_eq!(call(r#"{"jsonrpc":"2.0","id":1}"#)["error"]["code"], INVALID_REQUEST);
    }

    #[test]
    fn notifications_and_blank_lines_get_no_reply() {
        assert!(nothing(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#));
        assert!(nothing(br#"{"jsonrpc":"2.0","method":"tools/call","params":{}}"#));
        assert!(nothing(br#"{"jsonrpc":"2.0","method":"no/such"}"#));
        assert!(nothing(b""));
        assert!(nothing(b"  \r\n"));
    }

    #[test]
    fn client_responses_are_recognised() {
        match session().handle_line(br#"{"jsonrpc":"2.0","id":9,"result":{"a":1}}"#) {
            Handled::Response { id, outcome } => {
                assert_eq!(id, 9);
                assert_eq!(outcome, Ok(json!({"a": 1})));
            }
            other => panic!("{other:?}"),
        }
        match session().handle_line(br#"{"jsonrpc":"2.0","id":"x","error":{"code":-1,"message":"no"}}"#) {
            Handled::Response { id, outcome } => {
                assert_eq!(id, "x");
                assert_eq!(outcome.unwrap_err()["message"], "no");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn crlf_terminated_lines_parse() {
        let r = call("{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"ping\"}\r\n");
        assert_eq!(r["id"], 10);
    }

    #[test]
    fn no_initialize_holds_everything_until_initialized() {
        let mut s = Session::new(Identity::default(), true);
        for line in [
            req("initialize", json!({})),
            req("ping", json!({})),
            "not json".to_owned(),
            r#"{"jsonrpc":"2.0","id":1}"#.to_owned(),
        ] {
            assert!(matches!(s.handle_line(line.as_bytes()), Handled::Nothing), "{line}");
        }
        assert!(matches!(
            s.handle_line(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Handled::Nothing
        ));
        assert_eq!(call_in(&mut s, &req("ping", json!({})))["result"], json!({}));
        assert!(matches!(
            s.handle_line(req("initialize", json!({})).as_bytes()),
            Handled::Nothing
        ));
    }

    #[test]
    fn message_builders() {
        assert_eq!(
            notification("notifications/tools/list_changed", Value::Null),
            json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
        );
        assert_eq!(
            request(3, "ping", &json!({})),
            json!({"jsonrpc": "2.0", "id": 3, "method": "ping", "params": {}})
        );
        let e = response(&json!(1), &Err(RpcError::new(-1, "m")));
        assert_eq!(
            e,
            json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -1, "message": "m"}})
        );
    }
}
