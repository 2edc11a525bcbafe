//! Tools that ask the client something before answering: sampling
//! (`sampling/createMessage`) and elicitation (`elicitation/create`).
//!
//! A question goes out only if the client declared the capability at
//! `initialize` (a server must not send requests the client has not offered to
//! handle); otherwise the tool fails at once and says why. Waiting for the
//! client's reply is `conversation`'s job; here is only what is asked and how
//! the reply becomes the tool's result.

use super::{failure, no_args, str_arg, text, Call, Tool};
use crate::plan::{Finish, Plan, Question, RpcError};
use serde_json::{json, Value};

pub const TOOLS: &[Tool] = &[
    Tool {
        name: "sample",
        description:
            "Asks the client for a sampling/createMessage completion of the prompt and returns the client's text",
        input_schema: prompt_schema,
        run: sample,
    },
    Tool {
        name: "test_sampling",
        description: "Tests server-initiated sampling (sampling/createMessage request to the client)",
        input_schema: prompt_schema,
        run: test_sampling,
    },
    Tool {
        name: "test_elicitation",
        description: "Tests server-initiated elicitation (elicitation/create request to the client)",
        input_schema: message_schema,
        run: test_elicitation,
    },
    Tool {
        name: "test_elicitation_sep1034_defaults",
        description: "Tests elicitation with a default value for every primitive type (SEP-1034)",
        input_schema: no_args,
        run: test_elicitation_sep1034_defaults,
    },
    Tool {
        name: "test_elicitation_sep1330_enums",
        description: "Tests elicitation with every enum schema variant (SEP-1330)",
        input_schema: no_args,
        run: test_elicitation_sep1330_enums,
    },
];

fn prompt_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"prompt": {"type": "string", "description": "The prompt to send to the client's LLM"}},
        "required": ["prompt"],
    })
}

fn message_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"message": {"type": "string", "description": "The message to show the user"}},
        "required": ["message"],
    })
}

fn sample(call: &Call<'_>) -> Result<Plan, RpcError> {
    let prompt = str_arg(call, "sample", "prompt")?;
    Ok(sampling(call, prompt, |reply| match reply {
        Ok(result) => match sampled_text(result) {
            Some(t) => text(t),
            None => failure(format!("the client's sampling result has no text: {result}")),
        },
        Err(e) => failure(format!("the client refused sampling: {}", error_message(e))),
    }))
}

fn test_sampling(call: &Call<'_>) -> Result<Plan, RpcError> {
    let prompt = str_arg(call, "test_sampling", "prompt")?;
    Ok(sampling(call, prompt, |reply| match reply {
        Ok(result) => text(format!(
            "LLM response: {}",
            sampled_text(result).unwrap_or("No response")
        )),
        Err(e) => failure(format!("the client refused sampling: {}", error_message(e))),
    }))
}

fn test_elicitation(call: &Call<'_>) -> Result<Plan, RpcError> {
    let message = str_arg(call, "test_elicitation", "message")?;
    let schema = json!({
        "type": "object",
        "properties": {"response": {"type": "string", "description": "The user's response"}},
        "required": ["response"],
    });
    Ok(elicitation(call, message, schema, |reply| {
        elicited("User response", reply)
    }))
}

fn test_elicitation_sep1034_defaults(call: &Call<'_>) -> Result<Plan, RpcError> {
    let schema = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "User name", "default": "John Doe"},
            "age": {"type": "integer", "description": "User age", "default": 30},
            "score": {"type": "number", "description": "User score", "default": 95.5},
            "status": {"type": "string", "description": "User status",
                       "enum": ["active", "inactive", "pending"], "default": "active"},
            "verified": {"type": "boolean", "description": "Whether the user is verified", "default": true},
        },
        "required": [],
    });
    let message = "Please review the form; every field has a default";
    Ok(elicitation(call, message, schema, |reply| {
        elicited("Elicitation completed", reply)
    }))
}

fn test_elicitation_sep1330_enums(call: &Call<'_>) -> Result<Plan, RpcError> {
    let titled = |prefix: &str, titles: [&str; 3]| -> Vec<Value> {
        (1..=3)
            .zip(titles)
            .map(|(i, title)| json!({"const": format!("{prefix}{i}"), "title": title}))
            .collect()
    };
    let schema = json!({
        "type": "object",
        "properties": {
            "untitledSingle": {"type": "string", "description": "Pick one",
                               "enum": ["option1", "option2", "option3"]},
            "titledSingle": {"type": "string", "description": "Pick one (titled)",
                             "oneOf": titled("value", ["First", "Second", "Third"])},
            "legacyEnum": {"type": "string", "description": "Pick one (legacy enumNames)",
                           "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Opt One", "Opt Two", "Opt Three"]},
            "untitledMulti": {"type": "array", "description": "Pick some", "minItems": 1, "maxItems": 3,
                              "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
            "titledMulti": {"type": "array", "description": "Pick some (titled)", "minItems": 1, "maxItems": 3,
                            "items": {"anyOf": titled("value", ["First", "Second", "Third"])}},
        },
        "required": [],
    });
    let message = "Please pick from each enum field";
    Ok(elicitation(call, message, schema, |reply| {
        elicited("Elicitation completed", reply)
    }))
}

/// Asks the client to sample `prompt`, or fails if it cannot be asked.
fn sampling(call: &Call<'_>, prompt: &str, then: fn(Result<&Value, &Value>) -> Value) -> Plan {
    if !call.session.client.sampling {
        return Plan::answer(failure(
            "the client did not declare the sampling capability at initialize",
        ));
    }
    let params = json!({
        "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
        "maxTokens": 100,
    });
    ask("sampling/createMessage", params, then)
}

/// Asks the client to fill in `schema`, or fails if it cannot be asked.
fn elicitation(call: &Call<'_>, message: &str, schema: Value, then: fn(Result<&Value, &Value>) -> Value) -> Plan {
    if !call.session.client.elicitation {
        return Plan::answer(failure(
            "the client did not declare the elicitation capability at initialize",
        ));
    }
    let params = json!({"message": message, "requestedSchema": schema});
    ask("elicitation/create", params, then)
}

fn ask(method: &'static str, params: Value, then: fn(Result<&Value, &Value>) -> Value) -> Plan {
    Plan {
        steps: Vec::new(),
        finish: Finish::Ask(Question { method, params, then }),
    }
}

/// The text of a sampling result: its single text content block, or the first
/// text block of a content array (newer protocol versions allow arrays).
fn sampled_text(result: &Value) -> Option<&str> {
    let content = result.get("content")?;
    let block = match content {
        Value::Array(blocks) => blocks.iter().find(|b| b["type"] == "text")?,
        block => block,
    };
    block.get("text").and_then(Value::as_str)
}

/// The tool result for an elicitation reply: the action and content as the client sent them.
fn elicited(prefix: &str, reply: Result<&Value, &Value>) -> Value {
    match reply {
        Ok(result) => {
            let action = result.get("action").and_then(Value::as_str).unwrap_or("none");
            let content = result.get("content").cloned().unwrap_or_else(|| json!({}));
            text(format!("{prefix}: action={action}, content={content}"))
        }
        Err(e) => failure(format!("the client refused elicitation: {}", error_message(e))),
    }
}

/// The `message` of a JSON-RPC error object, or the whole object if it has none.
fn error_message(error: &Value) -> String {
    match error.get("message").and_then(Value::as_str) {
        Some(m) => m.to_owned(),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::run;
    use super::*;
    use crate::rpc::tests::session;
    use crate::session::{ClientCaps, Session};

    fn capable() -> Session {
        let mut s = session();
        s.client = ClientCaps {
            sampling: true,
            elicitation: true,
        };
        s
    }

    /// The question a tool asks in a capable session.
    fn question(name: &str, args: Value) -> Question {
        let reply = run(&mut capable(), name, args);
        assert!(reply.plan.steps.is_empty());
        match reply.plan.finish {
            Finish::Ask(q) => q,
            other => panic!("{name} did not ask: {other:?}"),
        }
    }

    #[test]
    fn sampling_asks_with_the_prompt_and_returns_the_clients_text() {
        for name in ["sample", "test_sampling"] {
            let q = question(name, json!({"prompt": "Say hi"}));
            assert_eq!(q.method, "sampling/createMessage");
            assert_eq!(q.params["messages"][0]["role"], "user");
            assert_eq!(
                q.params["messages"][0]["content"],
                json!({"type": "text", "text": "Say hi"})
            );
            assert_eq!(q.params["maxTokens"], 100);
        }
        let reply = json!({"role": "assistant", "content": {"type": "text", "text": "hi there"},
                           "model": "m", "stopReason": "endTurn"});
        let q = question("sample", json!({"prompt": "p"}));
        assert_eq!((q.then)(Ok(&reply)), text("hi there"));
        let q = question("test_sampling", json!({"prompt": "p"}));
        assert_eq!((q.then)(Ok(&reply)), text("LLM response: hi there"));
        let arrayed = json!({"content": [{"type": "image"}, {"type": "text", "text": "second"}]});
        assert_eq!((q.then)(Ok(&arrayed)), text("LLM response: second"));
    }

    #[test]
    fn sampling_failures_are_tool_errors() {
        let q = question("sample", json!({"prompt": "p"}));
        let refused = (q.then)(Err(&json!({"code": -1, "message": "User rejected sampling"})));
        assert_eq!(refused["isError"], true);
        assert!(refused["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("User rejected sampling"));
        let textless = (q.then)(Ok(&json!({"content": {"type": "image"}})));
        assert_eq!(textless["isError"], true);
    }

    #[test]
    fn no_question_without_the_capability() {
        for (name, args, cap) in [
            ("sample", json!({"prompt": "p"}), "sampling"),
            ("test_sampling", json!({"prompt": "p"}), "sampling"),
            ("test_elicitation", json!({"message": "m"}), "elicitation"),
            ("test_elicitation_sep1034_defaults", json!({}), "elicitation"),
            ("test_elicitation_sep1330_enums", json!({}), "elicitation"),
        ] {
            let answer = super::super::tests::answer(name, args).unwrap();
            assert_eq!(answer["isError"], true, "{name}");
            let msg = answer["content"][0]["text"].as_str().unwrap();
            assert!(msg.contains(cap) && msg.contains("initialize"), "{name}: {msg}");
        }
    }

    #[test]
    fn missing_arguments_are_invalid_params() {
        for name in ["sample", "test_sampling", "test_elicitation"] {
            let reply = run(&mut capable(), name, json!({}));
            let err = reply.plan.answered().unwrap().as_ref().unwrap_err();
            assert_eq!(err.code, crate::rpc::INVALID_PARAMS, "{name}");
        }
    }

    #[test]
    fn elicitation_asks_with_the_message_and_reports_the_reply() {
        let q = question("test_elicitation", json!({"message": "Who are you?"}));
        assert_eq!(q.method, "elicitation/create");
        assert_eq!(q.params["message"], "Who are you?");
        assert_eq!(q.params["requestedSchema"]["type"], "object");
        let accepted = json!({"action": "accept", "content": {"username": "u"}});
        assert_eq!(
            (q.then)(Ok(&accepted)),
            text(r#"User response: action=accept, content={"username":"u"}"#)
        );
        let declined = (q.then)(Ok(&json!({"action": "decline"})));
        assert_eq!(declined, text("User response: action=decline, content={}"));
        assert_eq!((q.then)(Err(&json!({"code": -1})))["isError"], true);
    }

    #[test]
    fn sep1034_has_a_default_for_every_primitive_type() {
        let q = question("test_elicitation_sep1034_defaults", json!({}));
        let p = &q.params["requestedSchema"]["properties"];
        assert_eq!(p["name"]["type"], "string");
        assert_eq!(p["name"]["default"], "John Doe");
        assert_eq!(p["age"]["type"], "integer");
        assert_eq!(p["age"]["default"], 30);
        assert_eq!(p["score"]["type"], "number");
        assert_eq!(p["score"]["default"], 95.5);
        assert_eq!(p["status"]["type"], "string");
        assert_eq!(p["status"]["enum"], json!(["active", "inactive", "pending"]));
        assert_eq!(p["status"]["default"], "active");
        assert_eq!(p["verified"]["type"], "boolean");
        assert_eq!(p["verified"]["default"], true);
        let done = (q.then)(Ok(&json!({"action": "accept", "content": {"age": 31}})));
        assert_eq!(
            done,
            text(r#"Elicitation completed: action=accept, content={"age":31}"#)
        );
    }

    #[test]
    fn sep1330_has_every_enum_variant() {
        let q = question("test_elicitation_sep1330_enums", json!({}));
        let p = &q.params["requestedSchema"]["properties"];
        let u = &p["untitledSingle"];
        assert_eq!(u["type"], "string");
        assert!(u["enum"].is_array() && u.get("oneOf").is_none() && u.get("enumNames").is_none());
        let t = &p["titledSingle"];
        assert_eq!(t["type"], "string");
        assert!(t.get("enum").is_none());
        for option in t["oneOf"].as_array().unwrap() {
            assert!(option["const"].is_string() && option["title"].is_string());
        }
        let l = &p["legacyEnum"];
        assert_eq!(l["type"], "string");
        assert_eq!(
            l["enum"].as_array().unwrap().len(),
            l["enumNames"].as_array().unwrap().len()
        );
        let um = &p["untitledMulti"];
        assert_eq!(um["type"], "array");
        assert_eq!(um["items"]["type"], "string");
        assert!(um["items"]["enum"].is_array());
        let tm = &p["titledMulti"];
        assert_eq!(tm["type"], "array");
        for option in tm["items"]["anyOf"].as_array().unwrap() {
            assert!(option["const"].is_string() && option["title"].is_string());
        }
    }
}
