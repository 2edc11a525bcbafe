//! The fixture's JSON-RPC 2.0 / MCP request handling, as a pure function.
//!
//! One request line in, at most one response value out. Keeping this free of
//! I/O lets unit tests cover the protocol without pipes or processes.

use serde_json::{json, Value};

/// Protocol versions the fixture echoes back when a client asks for them.
pub const SUPPORTED_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// Version answered when the client asks for one not in [`SUPPORTED_VERSIONS`].
pub const DEFAULT_VERSION: &str = "2025-06-18";

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

/// A response to write, and whether it answered a `tools/call` (for `--exit-after`).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub value: Value,
    pub tool_call: bool,
}

/// Handles one line of input. `None` means "write nothing" (empty line,
/// notification, or a response from the client).
pub fn handle_line(line: &[u8]) -> Option<Reply> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let msg: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => return Some(reply(error(Value::Null, PARSE_ERROR, &format!("parse error: {e}")))),
    };
    let Some(obj) = msg.as_object() else {
        return Some(reply(error(
            Value::Null,
            INVALID_REQUEST,
            "request must be a JSON object",
        )));
    };
    // Without an id it is a notification: never answered.
    let id = obj.get("id")?.clone();
    let Some(method) = obj.get("method") else {
        // A response from the client (result/error) is not answered either.
        if obj.contains_key("result") || obj.contains_key("error") {
            return None;
        }
        return Some(reply(error(id, INVALID_REQUEST, "missing method")));
    };
    let Some(method) = method.as_str() else {
        return Some(reply(error(id, INVALID_REQUEST, "method must be a string")));
    };
    let params = obj.get("params").unwrap_or(&Value::Null);
    let tool_call = method == "tools/call";
    let value = match dispatch(method, params) {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err((code, message)) => error(id, code, &message),
    };
    Some(Reply { value, tool_call })
}

fn reply(value: Value) -> Reply {
    Reply {
        value,
        tool_call: false,
    }
}

fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

type MethodResult = Result<Value, (i64, String)>;

fn dispatch(method: &str, params: &Value) -> MethodResult {
    match method {
        "initialize" => Ok(initialize(params)),
        "ping" => Ok(json!({})),
        "tools/list" => Ok(tools_list()),
        "tools/call" => tools_call(params),
        other => Err((METHOD_NOT_FOUND, format!("method not found: {other}"))),
    }
}

fn initialize(params: &Value) -> Value {
    let requested = params.get("protocolVersion").and_then(Value::as_str);
    let version = match requested {
        Some(v) if SUPPORTED_VERSIONS.contains(&v) => v,
        _ => DEFAULT_VERSION,
    };
    json!({
        "protocolVersion": version,
        "capabilities": {"tools": {}},
        "serverInfo": {"name": "tether-fixture", "version": env!("CARGO_PKG_VERSION")},
    })
}

fn tools_list() -> Value {
    json!({"tools": [{
        "name": "echo",
        "description": "Returns its text argument unchanged",
        "inputSchema": {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        },
    }]})
}

fn tools_call(params: &Value) -> MethodResult {
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| (INVALID_PARAMS, "tools/call requires a string \"name\"".to_owned()))?;
    if name != "echo" {
        return Err((INVALID_PARAMS, format!("unknown tool: {name}")));
    }
    let text = params
        .get("arguments")
        .and_then(|a| a.get("text"))
        .and_then(Value::as_str)
        .ok_or_else(|| (INVALID_PARAMS, "echo requires a string argument \"text\"".to_owned()))?;
    Ok(json!({"content": [{"type": "text", "text": text}], "isError": false}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(line: &str) -> Value {
        handle_line(line.as_bytes()).expect("a reply").value
    }

    fn init(version: &str) -> Value {
        let line = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": version, "capabilities": {},
                       "clientInfo": {"name": "t", "version": "1"}}});
        call(&line.to_string())
    }

    #[test]
    fn initialize_echoes_supported_versions() {
        for v in SUPPORTED_VERSIONS {
            let r = init(v);
            assert_eq!(r["id"], 1);
            assert_eq!(r["result"]["protocolVersion"], v);
        }
    }

    #[test]
    fn initialize_falls_back_for_unknown_versions() {
        assert_eq!(init("1999-01-01")["result"]["protocolVersion"], DEFAULT_VERSION);
        let r = call(r#"{"jsonrpc":"2.0","id":"a","method":"initialize"}"#);
        assert_eq!(r["id"], "a");
        assert_eq!(r["result"]["protocolVersion"], DEFAULT_VERSION);
    }

    #[test]
    fn initialize_reports_server_info_and_tools_capability() {
        let r = init("2025-06-18");
        assert_eq!(r["jsonrpc"], "2.0");
        assert_eq!(r["result"]["serverInfo"]["name"], "tether-fixture");
        assert_eq!(r["result"]["serverInfo"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(r["result"]["capabilities"], json!({"tools": {}}));
    }

    #[test]
    fn ping_returns_empty_object() {
        assert_eq!(call(r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#)["result"], json!({}));
    }

    #[test]
    fn tools_list_has_echo() {
        let r = call(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#);
        let tools = r["result"]["tools"].as_array().unwrap();
        assert_eq!(tools.len(), 1);
        assert_eq!(tools[0]["name"], "echo");
        assert_eq!(tools[0]["description"], "Returns its text argument unchanged");
        assert_eq!(tools[0]["inputSchema"]["required"], json!(["text"]));
    }

    #[test]
    fn echo_returns_text_exactly() {
        let text = "hi \u{1F600} \"quoted\"\n\ttab \\ back";
        let line = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": text}}});
        let reply = handle_line(line.to_string().as_bytes()).unwrap();
        assert!(reply.tool_call);
        assert_eq!(
            reply.value["result"],
            json!({"content": [{"type": "text", "text": text}], "isError": false})
        );
    }

    #[test]
    fn echo_handles_a_megabyte() {
        let text = "x".repeat(1 << 20);
        let line = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": text}}});
        let r = call(&line.to_string());
        assert_eq!(r["result"]["content"][0]["text"].as_str().unwrap().len(), 1 << 20);
    }

    #[test]
    fn unknown_tool_is_invalid_params() {
        let r = call(r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"nope","arguments":{}}}"#);
        assert_eq!(r["error"]["code"], INVALID_PARAMS);
        assert!(r["error"]["message"].as_str().unwrap().contains("nope"));
        assert_eq!(r["id"], 5);
    }

    #[test]
    fn bad_echo_arguments_are_invalid_params() {
        for params in [
            r#"{"name":"echo"}"#,
            r#"{"name":"echo","arguments":{}}"#,
            r#"{"name":"echo","arguments":{"text":3}}"#,
            r#"{"arguments":{"text":"x"}}"#,
        ] {
            let line = format!(r#"{{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{params}}}"#);
            let reply = handle_line(line.as_bytes()).unwrap();
            assert!(reply.tool_call);
            assert_eq!(reply.value["error"]["code"], INVALID_PARAMS, "{params}");
        }
    }

    #[test]
    fn unknown_method_is_method_not_found() {
        let r = call(r#"{"jsonrpc":"2.0","id":8,"method":"resources/list"}"#);
        assert_eq!(r["error"]["code"], METHOD_NOT_FOUND);
        assert_eq!(r["error"]["message"], "method not found: resources/list");
    }

    #[test]
    fn garbage_is_parse_error_with_null_id() {
        for line in [&b"not json"[..], b"{\"id\":1", b"\xff\xfe\n"] {
            let r = handle_line(line).unwrap().value;
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
        assert!(handle_line(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).is_none());
        assert!(handle_line(br#"{"jsonrpc":"2.0","method":"tools/call","params":{}}"#).is_none());
        assert!(handle_line(br#"{"jsonrpc":"2.0","method":"no/such"}"#).is_none());
        assert!(handle_line(br#"{"jsonrpc":"2.0","id":9,"result":{}}"#).is_none());
        assert!(handle_line(b"").is_none());
        assert!(handle_line(b"  \r\n").is_none());
    }

    #[test]
    fn crlf_terminated_lines_parse() {
        let r = call("{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"ping\"}\r\n");
        assert_eq!(r["id"], 10);
    }
}
