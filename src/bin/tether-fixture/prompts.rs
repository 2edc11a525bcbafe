//! Prompts (`prompts/list`, `prompts/get`) and completion of their arguments
//! (`completion/complete`), as the conformance suite names them.

use crate::media;
use crate::plan::RpcError;
use crate::rpc::{str_param, INVALID_PARAMS};
use serde_json::{json, Value};

/// One prompt as listed.
struct Prompt {
    name: &'static str,
    title: &'static str,
    /// Required: the suite fails a prompt listed without one.
    description: &'static str,
    /// Each argument's name, description and the values it completes to.
    arguments: &'static [Argument],
}

struct Argument {
    name: &'static str,
    description: &'static str,
    completions: &'static [&'static str],
}

const PROMPTS: &[Prompt] = &[
    Prompt {
        name: "test_simple_prompt",
        title: "Simple prompt",
        description: "A prompt without arguments",
        arguments: &[],
    },
    Prompt {
        name: "test_prompt_with_arguments",
        title: "Prompt with arguments",
        description: "A prompt with two required arguments, arg1 and arg2",
        arguments: &[
            Argument {
                name: "arg1",
                description: "First argument",
                completions: &["testValue1", "testValue2", "other1"],
            },
            Argument {
                name: "arg2",
                description: "Second argument",
                completions: &["testValue1", "testValue2", "other2"],
            },
        ],
    },
    Prompt {
        name: "test_prompt_with_embedded_resource",
        title: "Prompt with an embedded resource",
        description: "A prompt that embeds the resource named by resourceUri",
        arguments: &[Argument {
            name: "resourceUri",
            description: "URI of the resource to embed",
            completions: &["test://example-resource", "test://static-text"],
        }],
    },
    Prompt {
        name: "test_prompt_with_image",
        title: "Prompt with an image",
        description: "A prompt that includes image content",
        arguments: &[],
    },
];

pub fn list() -> Value {
    let prompts: Vec<Value> = PROMPTS
        .iter()
        .map(|p| {
            let arguments: Vec<Value> = p
                .arguments
                .iter()
                .map(|a| json!({"name": a.name, "description": a.description, "required": true}))
                .collect();
            json!({"name": p.name, "title": p.title, "description": p.description, "arguments": arguments})
        })
        .chain(std::iter::once(crate::tools::input_required::prompt_listing()))
        .collect();
    json!({ "prompts": prompts })
}

pub fn get(params: &Value) -> Result<Value, RpcError> {
    let name = str_param(params, "name", "prompts/get")?;
    let prompt = find(name)?;
    let args = params.get("arguments").unwrap_or(&Value::Null);
    let arg = |arg: &str| {
        args.get(arg).and_then(Value::as_str).ok_or_else(|| {
            RpcError::new(
                INVALID_PARAMS,
                format!("prompt {name} requires a string argument \"{arg}\""),
            )
        })
    };
    let user = |content: Value| json!({"role": "user", "content": content});
    let messages = match prompt.name {
        "test_prompt_with_arguments" => {
            let (a1, a2) = (arg("arg1")?, arg("arg2")?);
            let text = format!("A prompt with arguments: arg1={a1:?}, arg2={a2:?}");
            vec![user(json!({"type": "text", "text": text}))]
        }
        "test_prompt_with_embedded_resource" => {
            let uri = arg("resourceUri")?;
            let resource = json!({"uri": uri, "mimeType": "text/plain", "text": "Embedded resource text."});
            vec![
                user(json!({"type": "resource", "resource": resource})),
                user(json!({"type": "text", "text": "Please read the resource above."})),
            ]
        }
        "test_prompt_with_image" => vec![
            user(json!({"type": "image", "data": media::PNG_BASE64, "mimeType": media::PNG_MIME})),
            user(json!({"type": "text", "text": "Please describe the image above."})),
        ],
        _ => vec![user(
            json!({"type": "text", "text": "A simple prompt from tether-fixture."}),
        )],
    };
    Ok(json!({"description": prompt.description, "messages": messages}))
}

/// `completion/complete`: prompt arguments complete from a fixed list by
/// prefix; resource template arguments have no suggestions.
pub fn complete(params: &Value) -> Result<Value, RpcError> {
    let reference = params
        .get("ref")
        .ok_or_else(|| RpcError::new(INVALID_PARAMS, "completion/complete requires a \"ref\""))?;
    let argument = params.get("argument").unwrap_or(&Value::Null);
    let arg_name = str_param(argument, "name", "completion/complete's argument")?;
    let value = str_param(argument, "value", "completion/complete's argument")?;
    let values: Vec<&str> = match str_param(reference, "type", "completion/complete's ref")? {
        "ref/prompt" => {
            let prompt = find(str_param(reference, "name", "completion/complete's ref")?)?;
            let arg = prompt.arguments.iter().find(|a| a.name == arg_name).ok_or_else(|| {
                RpcError::new(
                    INVALID_PARAMS,
                    format!("prompt {} has no argument {arg_name}", prompt.name),
                )
            })?;
            arg.completions
                .iter()
                .copied()
                .filter(|c| c.starts_with(value))
                .collect()
        }
        "ref/resource" => Vec::new(),
        other => {
            return Err(RpcError::new(
                INVALID_PARAMS,
                format!("unknown completion ref type: {other}"),
            ))
        }
    };
    Ok(json!({"completion": {"values": values, "total": values.len(), "hasMore": false}}))
}

fn find(name: &str) -> Result<&'static Prompt, RpcError> {
    PROMPTS
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| RpcError::new(INVALID_PARAMS, format!("unknown prompt: {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::tests::{call, req};

    fn get_ok(name: &str, arguments: Value) -> Value {
        let r = call(&req("prompts/get", json!({"name": name, "arguments": arguments})));
        let messages = r["result"]["messages"].as_array().expect("messages").clone();
        assert!(!messages.is_empty());
        for m in &messages {
            assert_eq!(m["role"], "user");
            assert!(m["content"]["type"].is_string());
        }
        json!(messages)
    }

    #[test]
    fn every_prompt_is_listed_with_a_description() {
        let r = call(&req("prompts/list", json!({})));
        let prompts = r["result"]["prompts"].as_array().unwrap();
        let names: Vec<&str> = prompts.iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "test_simple_prompt",
                "test_prompt_with_arguments",
                "test_prompt_with_embedded_resource",
                "test_prompt_with_image",
                "test_input_required_result_prompt"
            ]
        );
        assert!(prompts.iter().all(|p| !p["description"].as_str().unwrap().is_empty()));
        assert_eq!(prompts[1]["arguments"][1]["name"], "arg2");
        assert_eq!(prompts[1]["arguments"][1]["required"], true);
    }

    #[test]
    fn prompts_get_fills_in_arguments_and_content() {
        get_ok("test_simple_prompt", json!({}));
        let m = get_ok(
            "test_prompt_with_arguments",
            json!({"arg1": "testValue1", "arg2": "testValue2"}),
        )
        .to_string();
        assert!(m.contains("testValue1") && m.contains("testValue2"), "{m}");
        let m = get_ok(
            "test_prompt_with_embedded_resource",
            json!({"resourceUri": "test://example-resource"}),
        );
        assert_eq!(m[0]["content"]["type"], "resource");
        assert_eq!(m[0]["content"]["resource"]["uri"], "test://example-resource");
        let m = get_ok("test_prompt_with_image", json!({}));
        assert_eq!(m[0]["content"]["type"], "image");
        assert_eq!(m[0]["content"]["mimeType"], "image/png");
        assert!(m[0]["content"]["data"].is_string());
    }

    #[test]
    fn prompts_get_errors_are_invalid_params() {
        for params in [
            json!({"name": "nope"}),
            json!({}),
            json!({"name": "test_prompt_with_arguments", "arguments": {"arg1": "a"}}),
            json!({"name": "test_prompt_with_embedded_resource"}),
        ] {
            let r = call(&req("prompts/get", params.clone()));
            assert_eq!(r["error"]["code"], INVALID_PARAMS, "{params}");
        }
    }

    #[test]
    fn completion_filters_by_prefix() {
        let ask = |r: Value, name: &str, value: &str| {
            call(&req(
                "completion/complete",
                json!({"ref": r, "argument": {"name": name, "value": value}}),
            ))
        };
        let prompt = json!({"type": "ref/prompt", "name": "test_prompt_with_arguments"});
        let r = ask(prompt.clone(), "arg1", "test");
        assert_eq!(
            r["result"],
            json!({"completion": {"values": ["testValue1", "testValue2"], "total": 2, "hasMore": false}})
        );
        assert_eq!(
            ask(prompt.clone(), "arg2", "o")["result"]["completion"]["values"],
            json!(["other2"])
        );
        assert_eq!(
            ask(prompt.clone(), "arg1", "zzz")["result"]["completion"]["values"],
            json!([])
        );
        let resource = json!({"type": "ref/resource", "uri": "test://template/{id}/data"});
        assert_eq!(ask(resource, "id", "1")["result"]["completion"]["values"], json!([]));
        assert_eq!(ask(prompt, "arg3", "")["error"]["code"], INVALID_PARAMS);
        let unknown = json!({"type": "ref/prompt", "name": "nope"});
        assert_eq!(ask(unknown, "arg1", "")["error"]["code"], INVALID_PARAMS);
        assert_eq!(ask(json!({"type": "ref/x"}), "a", "")["error"]["code"], INVALID_PARAMS);
        let r = call(&req(
            "completion/complete",
            json!({"argument": {"name": "a", "value": ""}}),
        ));
        assert_eq!(r["error"]["code"], INVALID_PARAMS);
    }
}
