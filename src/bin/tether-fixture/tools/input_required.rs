//! The diagnostic tools of the conformance suite's 2026-07-28 server scenarios, written as a
//! server of the session-based revisions writes them: questions to the client during the call
//! (elicitation, sampling, roots), which a gateway in front turns into `InputRequiredResult`
//! rounds. Each question carries its key (`_meta["io.tether/inputKey"]`), the name the suite
//! expects in `inputRequests`. Also the scenario hooks: a missing capability (-32021 with
//! `requiredCapabilities`), logging, and list changes on demand.

use super::{failure, no_args, text, Call, Tool};
use crate::plan::{Answer, Asked, Finish, Plan, RpcError, Step, Turn};
use crate::rpc::notification;
use serde_json::{json, Value};

/// The error of a request that needs a capability the client did not declare (2026-07-28).
const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;

pub const TOOLS: &[Tool] = &[
    tool(
        "test_input_required_result_elicitation",
        "Asks the user's name (elicitation), then greets them",
        elicitation_tool,
    ),
    tool(
        "test_input_required_result_sampling",
        "Asks the client's LLM a question (sampling), then returns the answer",
        sampling_tool,
    ),
    tool(
        "test_input_required_result_list_roots",
        "Asks the client's roots, then says how many",
        roots_tool,
    ),
    tool(
        "test_input_required_result_request_state",
        "Asks for a confirmation, then answers state-ok",
        confirm_tool,
    ),
    tool(
        "test_input_required_result_tampered_state",
        "Asks for a confirmation, then answers",
        confirm_tool,
    ),
    tool(
        "test_input_required_result_multiple_inputs",
        "Asks a name, a sampling and the roots at once, then answers",
        multiple_tool,
    ),
    tool(
        "test_input_required_result_multi_round",
        "Asks a name, then a colour, then answers",
        multi_round_tool,
    ),
    tool(
        "test_input_required_result_capabilities",
        "Asks by elicitation, or by sampling when the client cannot be asked that way",
        capabilities_tool,
    ),
    tool(
        "test_missing_capability",
        "Needs sampling: refused with -32021 when the client did not declare it",
        missing_capability_tool,
    ),
    tool(
        "test_streaming_elicitation",
        "Asks the user something (elicitation) during the call",
        elicitation_tool,
    ),
    tool(
        "test_logging_tool",
        "Logs at info and warning level, then answers",
        logging_tool,
    ),
    tool(
        "test_trigger_tool_change",
        "Announces that the tool list changed",
        tool_change,
    ),
    tool(
        "test_trigger_prompt_change",
        "Announces that the prompt list changed",
        prompt_change,
    ),
];

const fn tool(name: &'static str, description: &'static str, run: fn(&Call<'_>) -> Result<Plan, RpcError>) -> Tool {
    Tool {
        name,
        description,
        input_schema: no_args,
        run,
    }
}

fn converse(script: crate::plan::Script) -> Result<Plan, RpcError> {
    Ok(Plan {
        steps: Vec::new(),
        finish: Finish::Converse(script),
    })
}

fn elicit(key: &'static str, message: &str, property: &str, kind: &str) -> Asked {
    Asked {
        key,
        method: "elicitation/create",
        params: json!({
            "message": message,
            "requestedSchema": {"type": "object", "properties": {property: {"type": kind}}, "required": [property]},
        }),
    }
}

fn sample(key: &'static str, question: &str) -> Asked {
    Asked {
        key,
        method: "sampling/createMessage",
        params: json!({"messages": [{"role": "user", "content": {"type": "text", "text": question}}], "maxTokens": 50}),
    }
}

fn roots(key: &'static str) -> Asked {
    Asked {
        key,
        method: "roots/list",
        params: json!({}),
    }
}

/// The content field `name` of an accepted elicitation, as text.
fn elicited(reply: &Result<Value, Value>, name: &str) -> Option<String> {
    let r = reply.as_ref().ok()?;
    if r.get("action").and_then(Value::as_str) != Some("accept") {
        return None;
    }
    r.pointer(&format!("/content/{name}")).map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn done(result: Value) -> Turn {
    Turn::Done(Ok(result))
}

fn refused(what: &str, reply: &Result<Value, Value>) -> Turn {
    done(failure(format!(
        "{what}: the client did not answer: {}",
        reply
            .as_ref()
            .err()
            .map_or_else(|| "declined".to_string(), |e| e.to_string())
    )))
}

fn elicitation_tool(_: &Call<'_>) -> Result<Plan, RpcError> {
    converse(|history| match history {
        [] => Turn::Ask(vec![elicit("user_name", "What is your name?", "name", "string")]),
        [round, ..] => match elicited(&round[0], "name") {
            Some(name) => done(text(format!("Hello, {name}!"))),
            None => refused("elicitation", &round[0]),
        },
    })
}

fn sampling_tool(_: &Call<'_>) -> Result<Plan, RpcError> {
    converse(|history| match history {
        [] => Turn::Ask(vec![sample("capital_question", "What is the capital of France?")]),
        [round, ..] => match round[0]
            .as_ref()
            .ok()
            .and_then(|r| r.pointer("/content/text"))
            .and_then(Value::as_str)
        {
            Some(t) => done(text(format!("The client's LLM said: {t}"))),
            None => refused("sampling", &round[0]),
        },
    })
}

fn roots_tool(_: &Call<'_>) -> Result<Plan, RpcError> {
    converse(|history| match history {
        [] => Turn::Ask(vec![roots("client_roots")]),
        [round, ..] => match round[0]
            .as_ref()
            .ok()
            .and_then(|r| r.get("roots"))
            .and_then(Value::as_array)
        {
            Some(list) => done(text(format!("the client has {} root(s)", list.len()))),
            None => refused("roots/list", &round[0]),
        },
    })
}

fn confirm_tool(_: &Call<'_>) -> Result<Plan, RpcError> {
    converse(|history| match history {
        [] => Turn::Ask(vec![elicit("confirm", "Confirm to continue", "ok", "boolean")]),
        [round, ..] => match elicited(&round[0], "ok") {
            Some(_) => done(text("state-ok")),
            None => refused("confirmation", &round[0]),
        },
    })
}

fn multiple_tool(_: &Call<'_>) -> Result<Plan, RpcError> {
    converse(|history| match history {
        [] => Turn::Ask(vec![
            elicit("user_name", "What is your name?", "name", "string"),
            sample("greeting", "Write a greeting"),
            roots("client_roots"),
        ]),
        [round, ..] => {
            let name = elicited(&round[0], "name").unwrap_or_else(|| "(none)".into());
            let roots = round[2]
                .as_ref()
                .ok()
                .and_then(|r| r.get("roots"))
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            done(text(format!("name {name}, a greeting, {roots} root(s)")))
        }
    })
}

fn multi_round_tool(_: &Call<'_>) -> Result<Plan, RpcError> {
    converse(|history| match history {
        [] => Turn::Ask(vec![elicit("step1", "What is your name?", "name", "string")]),
        [_] => Turn::Ask(vec![elicit(
            "step2",
            "What is your favourite colour?",
            "color",
            "string",
        )]),
        [first, second, ..] => done(text(format!(
            "{} likes {}",
            elicited(&first[0], "name").unwrap_or_default(),
            elicited(&second[0], "color").unwrap_or_default()
        ))),
    })
}

fn capabilities_tool(_: &Call<'_>) -> Result<Plan, RpcError> {
    // Asked by elicitation first; a client that cannot be asked that way (the gateway says so)
    // is asked by sampling.
    converse(|history| match history {
        [] => Turn::Ask(vec![elicit("user_name", "What is your name?", "name", "string")]),
        [first] if first[0].is_err() => Turn::Ask(vec![sample("capital_question", "What is the capital of France?")]),
        _ => done(text("asked what the client can answer")),
    })
}

fn missing_capability_tool(_: &Call<'_>) -> Result<Plan, RpcError> {
    converse(|history| match history {
        [] => Turn::Ask(vec![sample("capital_question", "What is the capital of France?")]),
        [round, ..] => match &round[0] {
            Ok(_) => done(text("sampled")),
            Err(_) => Turn::Done(missing("sampling")),
        },
    })
}

fn missing(capability: &str) -> Answer {
    Err(RpcError::new(
        MISSING_REQUIRED_CLIENT_CAPABILITY,
        format!("this tool needs the client's {capability} capability"),
    )
    .with_data(json!({"requiredCapabilities": {capability: {}}})))
}

fn logging_tool(_: &Call<'_>) -> Result<Plan, RpcError> {
    let log = |level: &str, data: &str| {
        Step::Notify(notification(
            "notifications/message",
            json!({"level": level, "logger": "tether-fixture", "data": data}),
        ))
    };
    Ok(Plan {
        steps: vec![log("info", "an info message"), log("warning", "a warning")],
        finish: Finish::Answer(Ok(text("logged"))),
    })
}

fn tool_change(_: &Call<'_>) -> Result<Plan, RpcError> {
    Ok(Plan {
        steps: vec![Step::Notify(notification(
            "notifications/tools/list_changed",
            Value::Null,
        ))],
        finish: Finish::Answer(Ok(text("announced a tool list change"))),
    })
}

fn prompt_change(_: &Call<'_>) -> Result<Plan, RpcError> {
    Ok(Plan {
        steps: vec![Step::Notify(notification(
            "notifications/prompts/list_changed",
            Value::Null,
        ))],
        finish: Finish::Answer(Ok(text("announced a prompt list change"))),
    })
}

/// The prompt that asks before it is given (the suite's non-tool input-required scenario).
pub const PROMPT: &str = "test_input_required_result_prompt";

/// How `prompts/list` shows it.
pub fn prompt_listing() -> Value {
    json!({"name": PROMPT, "description": "A prompt that asks the user for context (elicitation) before it is given", "arguments": []})
}

/// Its `prompts/get`: asks for context, then gives a prompt with it.
pub fn prompt() -> Plan {
    Plan {
        steps: Vec::new(),
        finish: Finish::Converse(|history| match history {
            [] => Turn::Ask(vec![elicit(
                "user_context",
                "What context should the prompt use?",
                "context",
                "string",
            )]),
            [round, ..] => {
                let context = elicited(&round[0], "context").unwrap_or_else(|| "(none given)".into());
                done(json!({
                    "description": "A prompt made with the user's context",
                    "messages": [{"role": "user", "content": {"type": "text", "text": format!("Context: {context}")}}],
                }))
            }
        }),
    }
}
