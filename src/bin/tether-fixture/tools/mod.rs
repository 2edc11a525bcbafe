//! The tool registry: `tools/list` and `tools/call`.
//!
//! Three sets of tools: the conformance suite's plain `test_*` tools
//! (`conformance`), the ones tether's own gateway tests drive (`gateway`), and
//! those of either kind that ask the client something first (`ask`). A tool
//! turns its arguments into a [`Plan`], so its timing, notifications and
//! questions are data that unit tests inspect.

mod ask;
mod conformance;
mod gateway;
mod grown;
pub mod input_required;

use crate::plan::{Plan, RpcError, Step};
use crate::rpc::{notification, INVALID_PARAMS};
use crate::session::Session;
use serde_json::{json, Value};

/// One tool: what `tools/list` shows and what `tools/call` runs.
pub struct Tool {
    pub name: &'static str,
    /// Required: the suite fails a tool listed without one.
    pub description: &'static str,
    /// JSON Schema of the arguments, exactly as listed.
    pub input_schema: fn() -> Value,
    pub run: fn(&Call<'_>) -> Result<Plan, RpcError>,
}

/// What a tool gets to work with.
pub struct Call<'a> {
    /// The `arguments` object (`{}` when the client sent none).
    pub args: &'a Value,
    /// `_meta.progressToken` of the request, to tag progress notifications with.
    pub progress_token: Option<&'a Value>,
    pub session: &'a Session,
}

fn all() -> impl Iterator<Item = &'static Tool> {
    gateway::TOOLS
        .iter()
        .chain(conformance::TOOLS)
        .chain(ask::TOOLS)
        .chain(input_required::TOOLS)
        .chain(grown::TOOLS)
}

pub fn list() -> Value {
    let tools: Vec<Value> = all()
        .map(|t| json!({"name": t.name, "description": t.description, "inputSchema": (t.input_schema)()}))
        .chain(grown::listed())
        .collect();
    json!({ "tools": tools })
}

pub fn call(session: &Session, params: &Value) -> Result<Plan, RpcError> {
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::new(INVALID_PARAMS, "tools/call requires a string \"name\""))?;
    let Some(tool) = all().find(|t| t.name == name) else {
        return grown::call(name).ok_or_else(|| RpcError::new(INVALID_PARAMS, format!("unknown tool: {name}")));
    };
    let empty = json!({});
    let args = match params.get("arguments") {
        None | Some(Value::Null) => &empty,
        Some(a) if a.is_object() => a,
        Some(_) => return Err(RpcError::new(INVALID_PARAMS, "tool arguments must be an object")),
    };
    let progress_token = params.get("_meta").and_then(|m| m.get("progressToken"));
    (tool.run)(&Call {
        args,
        progress_token,
        session,
    })
}

/// A successful tool result with one text item.
pub fn text(text: impl Into<String>) -> Value {
    json!({"content": [{"type": "text", "text": text.into()}], "isError": false})
}

/// A failed tool result (`isError`) with one text item: the tool ran and failed,
/// which MCP reports as a result rather than a JSON-RPC error.
pub fn failure(text: impl Into<String>) -> Value {
    json!({"content": [{"type": "text", "text": text.into()}], "isError": true})
}

/// A successful tool result with these content items.
pub fn content(items: Value) -> Value {
    json!({"content": items, "isError": false})
}

/// The schema of a tool that takes no arguments.
pub fn no_args() -> Value {
    json!({"type": "object", "properties": {}})
}

/// A `notifications/progress` step for `token`.
pub fn progress(token: &Value, progress: u64, total: u64) -> Step {
    let params = json!({
        "progressToken": token,
        "progress": progress,
        "total": total,
        "message": format!("Completed step {progress} of {total}"),
    });
    Step::Notify(notification("notifications/progress", params))
}

/// `args[name]` as a string, or an invalid-params error naming the tool.
pub fn str_arg<'a>(call: &'a Call<'_>, tool: &str, name: &str) -> Result<&'a str, RpcError> {
    call.args
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::new(INVALID_PARAMS, format!("{tool} requires a string argument \"{name}\"")))
}

/// `args[name]` as a non-negative integer, or an invalid-params error naming the tool.
pub fn u64_arg(call: &Call<'_>, tool: &str, name: &str) -> Result<u64, RpcError> {
    call.args.get(name).and_then(Value::as_u64).ok_or_else(|| {
        RpcError::new(
            INVALID_PARAMS,
            format!("{tool} requires a non-negative integer argument \"{name}\""),
        )
    })
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::plan::Answer;
    use crate::rpc::tests::{call, plan_in, req, session};
    use crate::rpc::Reply;

    /// The plan for calling `name` with `args` in `s` (no progress token).
    pub fn run(s: &mut Session, name: &str, args: Value) -> Reply {
        plan_in(s, &req("tools/call", json!({"name": name, "arguments": args})))
    }

    /// The immediate answer of calling `name` with `args` in a fresh session.
    pub fn answer(name: &str, args: Value) -> Answer {
        let reply = run(&mut session(), name, args);
        assert!(reply.tool_call);
        reply.plan.answered().expect("an immediate answer").clone()
    }

    #[test]
    fn every_tool_is_listed_once_with_a_description_and_an_object_schema() {
        let r = call(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#);
        let tools = r["result"]["tools"].as_array().unwrap();
        let mut names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
        for t in tools {
            assert!(!t["description"].as_str().unwrap().is_empty(), "{t}");
            assert_eq!(t["inputSchema"]["type"], "object", "{t}");
        }
        let echo = tools.iter().find(|t| t["name"] == "echo").unwrap();
        assert_eq!(echo["description"], "Returns its text argument unchanged");
        assert_eq!(echo["inputSchema"]["required"], json!(["text"]));
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate tool names");
    }

    #[test]
    fn unknown_tool_is_invalid_params() {
        let r = call(r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"nope","arguments":{}}}"#);
        assert_eq!(r["error"]["code"], INVALID_PARAMS);
        assert!(r["error"]["message"].as_str().unwrap().contains("nope"));
        assert_eq!(r["id"], 5);
    }

    #[test]
    fn arguments_may_be_missing_but_not_a_non_object() {
        let ok = call(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}"#);
        assert_eq!(ok["result"]["isError"], false);
        let bad = call(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":[1]}}"#);
        assert_eq!(bad["error"]["code"], INVALID_PARAMS);
    }
}
