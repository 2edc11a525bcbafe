//! Tools for tether's gateway tests: calls held in flight, identities,
//! crashes mid-call, progress, notifications on demand and large answers.

use super::{progress, str_arg, text, u64_arg, Call, Tool};
use crate::plan::{Finish, Plan, RpcError, Step};
use crate::rpc::{notification, INVALID_PARAMS};
use serde_json::{json, Value};
use std::time::Duration;

pub const TOOLS: &[Tool] = &[
    Tool {
        name: "echo",
        description: "Returns its text argument unchanged",
        input_schema: echo_schema,
        run: echo,
    },
    Tool {
        name: "sleep",
        description: "Answers after ms milliseconds, holding the call in flight until then",
        input_schema: sleep_schema,
        run: sleep,
    },
    Tool {
        name: "whoami",
        description: "Returns JSON text with this server's pid and its TETHER_INSTANCE and TETHER_TEST_COOKIE (null when unset)",
        input_schema: super::no_args,
        run: whoami,
    },
    Tool {
        name: "crash",
        description: "Exits the server process with status 3 at once, without answering",
        input_schema: super::no_args,
        run: crash,
    },
    Tool {
        name: "progress",
        description: "Takes steps × ms milliseconds, sending a progress notification after each step when the call has a progressToken",
        input_schema: progress_schema,
        run: progress_tool,
    },
    Tool {
        name: "notify",
        description: "Sends a notification with the given method (and params, if given), then answers",
        input_schema: notify_schema,
        run: notify,
    },
    Tool {
        name: "big",
        description: "Answers with a text of exactly the given number of bytes",
        input_schema: big_schema,
        run: big,
    },
];

/// Above this, `progress` refuses: the plan holds one step per notification.
const MAX_STEPS: u64 = 100_000;
/// Above this, `big` refuses rather than exhaust memory.
const MAX_BYTES: u64 = 256 << 20;
/// The exit status of `crash`, distinct from the fixture's other exits.
const CRASH_STATUS: i32 = 3;

fn echo_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    })
}

fn sleep_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"ms": {"type": "integer", "minimum": 0, "description": "How long to wait, in milliseconds"}},
        "required": ["ms"],
    })
}

fn progress_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "steps": {"type": "integer", "minimum": 0, "maximum": MAX_STEPS, "description": "How many steps (and notifications)"},
            "ms": {"type": "integer", "minimum": 0, "description": "Milliseconds per step"},
        },
        "required": ["steps", "ms"],
    })
}

fn notify_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "method": {"type": "string", "description": "e.g. notifications/tools/list_changed"},
            "params": {"type": "object", "description": "The notification's params (left out if absent)"},
        },
        "required": ["method"],
    })
}

fn big_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"bytes": {"type": "integer", "minimum": 0, "maximum": MAX_BYTES, "description": "Length of the text"}},
        "required": ["bytes"],
    })
}

fn echo(call: &Call<'_>) -> Result<Plan, RpcError> {
    // `message` as well: what server-everything's echo takes, and what generic clients (the
    // conformance suite's header checks among them) send.
    let said = match call.args.get("message").and_then(Value::as_str) {
        Some(m) if call.args.get("text").is_none() => m,
        _ => str_arg(call, "echo", "text")?,
    };
    Ok(Plan::answer(text(said)))
}

fn sleep(call: &Call<'_>) -> Result<Plan, RpcError> {
    let ms = u64_arg(call, "sleep", "ms")?;
    Ok(Plan {
        steps: vec![Step::Sleep(Duration::from_millis(ms))],
        finish: Finish::Answer(Ok(text(format!("slept {ms} ms")))),
    })
}

fn whoami(call: &Call<'_>) -> Result<Plan, RpcError> {
    let me = &call.session.identity;
    let facts = json!({
        "pid": me.pid,
        "TETHER_INSTANCE": me.instance,
        "TETHER_TEST_COOKIE": me.test_cookie,
    });
    Ok(Plan::answer(text(facts.to_string())))
}

fn crash(_: &Call<'_>) -> Result<Plan, RpcError> {
    Ok(Plan {
        steps: Vec::new(),
        finish: Finish::Exit(CRASH_STATUS),
    })
}

fn progress_tool(call: &Call<'_>) -> Result<Plan, RpcError> {
    let steps = u64_arg(call, "progress", "steps")?;
    let ms = u64_arg(call, "progress", "ms")?;
    if steps > MAX_STEPS {
        return Err(RpcError::new(
            INVALID_PARAMS,
            format!("progress: at most {MAX_STEPS} steps"),
        ));
    }
    let mut plan = Vec::new();
    for i in 1..=steps {
        // The call takes as long with or without a token; only the notifications differ.
        plan.push(Step::Sleep(Duration::from_millis(ms)));
        if let Some(token) = call.progress_token {
            plan.push(progress(token, i, steps));
        }
    }
    Ok(Plan {
        steps: plan,
        finish: Finish::Answer(Ok(text(format!("{steps} steps done")))),
    })
}

fn notify(call: &Call<'_>) -> Result<Plan, RpcError> {
    let method = str_arg(call, "notify", "method")?;
    let params = call.args.get("params").cloned().unwrap_or(Value::Null);
    Ok(Plan {
        steps: vec![Step::Notify(notification(method, params))],
        finish: Finish::Answer(Ok(text(format!("sent {method}")))),
    })
}

fn big(call: &Call<'_>) -> Result<Plan, RpcError> {
    let bytes = u64_arg(call, "big", "bytes")?;
    if bytes > MAX_BYTES {
        return Err(RpcError::new(INVALID_PARAMS, format!("big: at most {MAX_BYTES} bytes")));
    }
    // A cycling alphabet rather than one repeated byte, so a dropped or
    // duplicated chunk shows up when a test compares the text.
    let body: String = (b'a'..=b'z').cycle().take(bytes as usize).map(char::from).collect();
    Ok(Plan::answer(text(body)))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{answer, run};
    use super::*;
    use crate::rpc::tests::{plan_in, req, session};

    #[test]
    fn echo_returns_text_exactly() {
        let text = "hi \u{1F600} \"quoted\"\n\ttab \\ back";
        let r = answer("echo", json!({"text": text})).unwrap();
        assert_eq!(
            r,
            json!({"content": [{"type": "text", "text": text}], "isError": false})
        );
    }

    #[test]
    fn echo_handles_a_megabyte() {
        let text = "x".repeat(1 << 20);
        let r = answer("echo", json!({"text": text})).unwrap();
        assert_eq!(r["content"][0]["text"].as_str().unwrap().len(), 1 << 20);
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
            let reply = plan_in(&mut session(), &line);
            assert!(reply.tool_call);
            let err = reply.plan.answered().unwrap().as_ref().unwrap_err();
            assert_eq!(err.code, INVALID_PARAMS, "{params}");
        }
    }

    #[test]
    fn sleep_waits_then_answers() {
        let plan = run(&mut session(), "sleep", json!({"ms": 250})).plan;
        assert_eq!(plan.steps, vec![Step::Sleep(Duration::from_millis(250))]);
        assert_eq!(plan.answered().unwrap().as_ref().unwrap(), &text("slept 250 ms"));
        for bad in [json!({}), json!({"ms": -1}), json!({"ms": "5"})] {
            assert_eq!(answer("sleep", bad).unwrap_err().code, INVALID_PARAMS);
        }
    }

    #[test]
    fn whoami_reports_pid_and_cookies() {
        let r = answer("whoami", json!({})).unwrap();
        let facts: Value = serde_json::from_str(r["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(
            facts,
            json!({"pid": 42, "TETHER_INSTANCE": "inst", "TETHER_TEST_COOKIE": null})
        );
    }

    #[test]
    fn crash_exits_with_3_unanswered() {
        let reply = run(&mut session(), "crash", json!({}));
        assert!(reply.tool_call && reply.plan.steps.is_empty());
        assert!(matches!(reply.plan.finish, Finish::Exit(3)));
    }

    #[test]
    fn progress_notifies_each_step_with_the_token() {
        let line = req(
            "tools/call",
            json!({"name": "progress", "arguments": {"steps": 3, "ms": 10}, "_meta": {"progressToken": "tok"}}),
        );
        let plan = plan_in(&mut session(), &line).plan;
        assert_eq!(plan.steps.len(), 6);
        for (i, pair) in plan.steps.chunks(2).enumerate() {
            assert_eq!(pair[0], Step::Sleep(Duration::from_millis(10)));
            let Step::Notify(n) = &pair[1] else { panic!("{pair:?}") };
            assert_eq!(n["method"], "notifications/progress");
            assert_eq!(n["params"]["progressToken"], "tok");
            assert_eq!(n["params"]["progress"], i as u64 + 1);
            assert_eq!(n["params"]["total"], 3);
        }
        assert_eq!(plan.answered().unwrap().as_ref().unwrap(), &text("3 steps done"));
    }

    #[test]
    fn progress_without_a_token_only_takes_the_time() {
        let plan = run(&mut session(), "progress", json!({"steps": 2, "ms": 5})).plan;
        assert_eq!(plan.steps, vec![Step::Sleep(Duration::from_millis(5)); 2]);
        assert_eq!(
            answer("progress", json!({"steps": MAX_STEPS + 1, "ms": 0}))
                .unwrap_err()
                .code,
            INVALID_PARAMS
        );
        assert_eq!(
            answer("progress", json!({"steps": 1})).unwrap_err().code,
            INVALID_PARAMS
        );
    }

    #[test]
    fn numeric_progress_tokens_are_kept() {
        let line = req(
            "tools/call",
            json!({"name": "progress", "arguments": {"steps": 1, "ms": 0}, "_meta": {"progressToken": 7}}),
        );
        let plan = plan_in(&mut session(), &line).plan;
        let Step::Notify(n) = &plan.steps[1] else { panic!() };
        assert_eq!(n["params"]["progressToken"], 7);
    }

    #[test]
    fn notify_sends_the_method_then_answers() {
        let plan = run(
            &mut session(),
            "notify",
            json!({"method": "notifications/tools/list_changed"}),
        )
        .plan;
        assert_eq!(
            plan.steps,
            vec![Step::Notify(
                json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
            )]
        );
        assert_eq!(
            plan.answered().unwrap().as_ref().unwrap(),
            &text("sent notifications/tools/list_changed")
        );
        let plan = run(
            &mut session(),
            "notify",
            json!({"method": "notifications/resources/updated", "params": {"uri": "test://x"}}),
        )
        .plan;
        assert_eq!(
            plan.steps,
            vec![Step::Notify(
                json!({"jsonrpc": "2.0", "method": "notifications/resources/updated",
                                     "params": {"uri": "test://x"}})
            )]
        );
        assert_eq!(answer("notify", json!({})).unwrap_err().code, INVALID_PARAMS);
    }

    #[test]
    fn big_is_exactly_that_long() {
        for n in [0usize, 1, 26, 27, 100_000] {
            let r = answer("big", json!({"bytes": n})).unwrap();
            let t = r["content"][0]["text"].as_str().unwrap();
            assert_eq!(t.len(), n);
            assert!(t.bytes().enumerate().all(|(i, b)| b == b'a' + (i % 26) as u8));
        }
        assert_eq!(
            answer("big", json!({"bytes": MAX_BYTES + 1})).unwrap_err().code,
            INVALID_PARAMS
        );
    }
}
