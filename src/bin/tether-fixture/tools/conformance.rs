//! The conformance suite's plain `test_*` tools (and `json_schema_2020_12_tool`).
//!
//! Names, content types and notification counts are what
//! `@modelcontextprotocol/conformance` 0.1.16 calls and checks; the texts are
//! the fixture's own. The tools that ask the client something are in `ask`.

use super::{content, failure, no_args, progress, text, Call, Tool};
use crate::logging::{self, Level};
use crate::media;
use crate::plan::{Finish, Plan, RpcError, Step};
use serde_json::{json, Value};
use std::time::Duration;

pub const TOOLS: &[Tool] = &[
    Tool {
        name: "test_simple_text",
        description: "Tests a simple text content response",
        input_schema: no_args,
        run: simple_text,
    },
    Tool {
        name: "test_image_content",
        description: "Tests an image content response",
        input_schema: no_args,
        run: image_content,
    },
    Tool {
        name: "test_audio_content",
        description: "Tests an audio content response",
        input_schema: no_args,
        run: audio_content,
    },
    Tool {
        name: "test_embedded_resource",
        description: "Tests an embedded resource content response",
        input_schema: no_args,
        run: embedded_resource,
    },
    Tool {
        name: "test_multiple_content_types",
        description: "Tests a response with several content types (text, image, resource)",
        input_schema: no_args,
        run: multiple_content_types,
    },
    Tool {
        name: "test_tool_with_logging",
        description: "Tests a tool that sends log messages while it runs",
        input_schema: no_args,
        run: with_logging,
    },
    Tool {
        name: "test_error_handling",
        description: "Tests an error tool result (isError)",
        input_schema: no_args,
        run: error_handling,
    },
    Tool {
        name: "test_tool_with_progress",
        description: "Tests a tool that sends progress notifications (0, 50 and 100 of 100)",
        input_schema: no_args,
        run: with_progress,
    },
    Tool {
        name: "test_reconnection",
        description: "Tests SSE reconnection (SEP-1699): answers after 100 ms; over stdio, closing the stream is up to the gateway",
        input_schema: no_args,
        run: reconnection,
    },
    Tool {
        name: "json_schema_2020_12_tool",
        description: "Tool whose input schema uses JSON Schema 2020-12 features ($schema, $defs, additionalProperties) (SEP-1613)",
        input_schema: json_schema_2020_12,
        run: json_schema_2020_12_tool,
    },
];

/// Between the notifications of the logging and progress tools, so a client
/// sees them arrive over time rather than in one burst.
const PAUSE: Duration = Duration::from_millis(50);

fn json_schema_2020_12() -> Value {
    // Every 2020-12 keyword the suites look for, so a gateway that strips or rewrites one is
    // caught: $schema, $defs with an $anchor, $ref, allOf/anyOf, if/then/else,
    // additionalProperties.
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "$anchor": "addressDef",
                "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
            },
        },
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
            "contactMethod": {"type": "string", "enum": ["phone", "email"]},
            "phone": {"type": "string"},
            "email": {"type": "string"},
        },
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": false,
    })
}

fn simple_text(_: &Call<'_>) -> Result<Plan, RpcError> {
    Ok(Plan::answer(text("A simple text response from tether-fixture.")))
}

fn image_content(_: &Call<'_>) -> Result<Plan, RpcError> {
    Ok(Plan::answer(content(json!([image()]))))
}

fn audio_content(_: &Call<'_>) -> Result<Plan, RpcError> {
    let audio = json!({"type": "audio", "data": media::WAV_BASE64, "mimeType": media::WAV_MIME});
    Ok(Plan::answer(content(json!([audio]))))
}

fn embedded_resource(_: &Call<'_>) -> Result<Plan, RpcError> {
    let item = json!({"type": "resource", "resource": {
        "uri": "test://embedded-resource",
        "mimeType": "text/plain",
        "text": "The text of an embedded resource.",
    }});
    Ok(Plan::answer(content(json!([item]))))
}

fn multiple_content_types(_: &Call<'_>) -> Result<Plan, RpcError> {
    let resource = json!({"type": "resource", "resource": {
        "uri": "test://mixed-content-resource",
        "mimeType": "application/json",
        "text": json!({"test": "data", "value": 123}).to_string(),
    }});
    let items = json!([{"type": "text", "text": "Several content types follow:"}, image(), resource]);
    Ok(Plan::answer(content(items)))
}

fn with_logging(call: &Call<'_>) -> Result<Plan, RpcError> {
    let mut steps = Vec::new();
    let messages = [
        "Tool execution started",
        "Tool processing data",
        "Tool execution completed",
    ];
    for (i, message) in messages.into_iter().enumerate() {
        if i > 0 {
            steps.push(Step::Sleep(PAUSE));
        }
        steps.extend(logging::message(call.session, Level::Info, json!(message)));
    }
    Ok(Plan {
        steps,
        finish: Finish::Answer(Ok(text("Tool with logging executed successfully"))),
    })
}

fn error_handling(_: &Call<'_>) -> Result<Plan, RpcError> {
    Ok(Plan::answer(failure(
        "This tool fails on purpose, to test error handling",
    )))
}

fn with_progress(call: &Call<'_>) -> Result<Plan, RpcError> {
    let mut steps = Vec::new();
    for (i, done) in [0, 50, 100].into_iter().enumerate() {
        if i > 0 {
            steps.push(Step::Sleep(PAUSE));
        }
        // Progress may only be reported against a token the client gave.
        if let Some(token) = call.progress_token {
            steps.push(progress(token, done, 100));
        }
    }
    let answer = match call.progress_token {
        Some(Value::String(token)) => token.clone(),
        Some(token) => token.to_string(),
        None => "no progress token".to_owned(),
    };
    Ok(Plan {
        steps,
        finish: Finish::Answer(Ok(text(answer))),
    })
}

fn reconnection(_: &Call<'_>) -> Result<Plan, RpcError> {
    Ok(Plan {
        steps: vec![Step::Sleep(Duration::from_millis(100))],
        finish: Finish::Answer(Ok(text(
            "Reconnection test completed: the result arrived after the pause",
        ))),
    })
}

fn json_schema_2020_12_tool(call: &Call<'_>) -> Result<Plan, RpcError> {
    Ok(Plan::answer(text(format!(
        "json_schema_2020_12_tool called with: {}",
        call.args
    ))))
}

fn image() -> Value {
    json!({"type": "image", "data": media::PNG_BASE64, "mimeType": media::PNG_MIME})
}

#[cfg(test)]
mod tests {
    use super::super::tests::{answer, run};
    use super::*;
    use crate::rpc::tests::{call, plan_in, req, session};

    fn items(name: &str) -> Vec<Value> {
        let r = answer(name, json!({})).unwrap();
        assert_eq!(r["isError"], false, "{name}");
        r["content"].as_array().unwrap().clone()
    }

    #[test]
    fn content_tools_return_their_content_types() {
        let t = items("test_simple_text");
        assert_eq!(t[0]["type"], "text");
        assert!(!t[0]["text"].as_str().unwrap().is_empty());

        let i = items("test_image_content");
        assert_eq!(i[0]["type"], "image");
        assert_eq!(i[0]["mimeType"], "image/png");
        assert!(!i[0]["data"].as_str().unwrap().is_empty());

        let a = items("test_audio_content");
        assert_eq!(a[0]["type"], "audio");
        assert_eq!(a[0]["mimeType"], "audio/wav");
        assert!(!a[0]["data"].as_str().unwrap().is_empty());

        let e = items("test_embedded_resource");
        assert_eq!(e[0]["type"], "resource");
        assert_eq!(e[0]["resource"]["uri"], "test://embedded-resource");
        assert_eq!(e[0]["resource"]["mimeType"], "text/plain");
        assert!(e[0]["resource"]["text"].is_string());

        let m = items("test_multiple_content_types");
        let types: Vec<&str> = m.iter().map(|c| c["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["text", "image", "resource"]);
        assert_eq!(m[2]["resource"]["mimeType"], "application/json");
    }

    #[test]
    fn error_handling_is_a_tool_error_with_text() {
        let r = answer("test_error_handling", json!({})).unwrap();
        assert_eq!(r["isError"], true);
        assert!(!r["content"][0]["text"].as_str().unwrap().is_empty());
    }

    #[test]
    fn logging_sends_three_info_messages_apart() {
        let plan = run(&mut session(), "test_tool_with_logging", json!({})).plan;
        let notes: Vec<&Value> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Notify(n) => Some(n),
                Step::Sleep(_) => None,
            })
            .collect();
        assert_eq!(notes.len(), 3);
        assert!(notes
            .iter()
            .all(|n| n["method"] == "notifications/message" && n["params"]["level"] == "info"));
        assert_eq!(plan.steps.len(), 5);
        assert_eq!(plan.steps[1], Step::Sleep(PAUSE));
    }

    #[test]
    fn logging_respects_the_level() {
        let mut s = session();
        call_in_session(&mut s, "logging/setLevel", json!({"level": "error"}));
        let plan = run(&mut s, "test_tool_with_logging", json!({})).plan;
        assert_eq!(plan.steps, vec![Step::Sleep(PAUSE); 2]);
        assert!(plan.answered().unwrap().is_ok());
    }

    fn call_in_session(s: &mut crate::session::Session, method: &str, params: Value) {
        let r = crate::rpc::tests::call_in(s, &req(method, params));
        assert_eq!(r["result"], json!({}));
    }

    #[test]
    fn progress_sends_0_50_100_with_the_token() {
        let line = req(
            "tools/call",
            json!({"name": "test_tool_with_progress", "arguments": {},
                   "_meta": {"progressToken": "progress-test-1"}}),
        );
        let plan = plan_in(&mut session(), &line).plan;
        let done: Vec<&Value> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Notify(n) => Some(n),
                Step::Sleep(_) => None,
            })
            .inspect(|n| assert_eq!(n["params"]["progressToken"], "progress-test-1"))
            .map(|n| &n["params"]["progress"])
            .collect();
        assert_eq!(done, [&json!(0), &json!(50), &json!(100)]);
        assert_eq!(plan.answered().unwrap().as_ref().unwrap(), &text("progress-test-1"));
    }

    #[test]
    fn progress_without_a_token_sends_nothing() {
        let plan = run(&mut session(), "test_tool_with_progress", json!({})).plan;
        assert_eq!(plan.steps, vec![Step::Sleep(PAUSE); 2]);
    }

    #[test]
    fn reconnection_answers_after_a_pause() {
        let plan = run(&mut session(), "test_reconnection", json!({})).plan;
        assert_eq!(plan.steps, vec![Step::Sleep(Duration::from_millis(100))]);
        assert_eq!(plan.answered().unwrap().as_ref().unwrap()["isError"], false);
    }

    #[test]
    fn json_schema_2020_12_tool_is_listed_untouched() {
        let r = call(&req("tools/list", json!({})));
        let tool = r["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "json_schema_2020_12_tool")
            .unwrap()
            .clone();
        let schema = &tool["inputSchema"];
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(schema["$defs"]["address"]["type"], "object");
        assert_eq!(schema["additionalProperties"], false);
        let r = answer("json_schema_2020_12_tool", json!({"name": "n"})).unwrap();
        assert!(r["content"][0]["text"].as_str().unwrap().contains(r#"{"name":"n"}"#));
    }
}
