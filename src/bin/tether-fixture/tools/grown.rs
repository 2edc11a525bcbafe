//! Tools added while the server runs (`grow`), so that a client sees a tool list that really
//! changes, announced by `notifications/tools/list_changed`. Process-wide: every session of
//! this fixture sees them (an HTTP fixture's sessions too), as a real server's would.

use super::{str_arg, text, Call, Tool};
use crate::plan::{Plan, RpcError, Step};
use crate::rpc::notification;
use serde_json::{json, Value};
use std::sync::Mutex;

/// The tools added so far, by name.
static GROWN: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub const TOOLS: &[Tool] = &[Tool {
    name: "grow",
    description: "Adds a tool of the given name (it answers with its own name), then announces the change",
    input_schema: grow_schema,
    run: grow,
}];

fn grow_schema() -> Value {
    json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]})
}

fn grow(call: &Call<'_>) -> Result<Plan, RpcError> {
    let name = str_arg(call, "grow", "name")?.to_string();
    if let Ok(mut g) = GROWN.lock() {
        if !g.contains(&name) {
            g.push(name.clone());
        }
    }
    Ok(Plan {
        steps: vec![Step::Notify(notification(
            "notifications/tools/list_changed",
            Value::Null,
        ))],
        finish: crate::plan::Finish::Answer(Ok(text(format!("added {name}")))),
    })
}

/// The grown tools as `tools/list` shows them.
pub fn listed() -> Vec<Value> {
    GROWN
        .lock()
        .map(|g| {
            g.iter()
                .map(|n| json!({"name": n, "description": "Added by grow: answers with its own name", "inputSchema": {"type": "object"}}))
                .collect()
        })
        .unwrap_or_default()
}

/// The answer of a grown tool, if `name` is one.
pub fn call(name: &str) -> Option<Plan> {
    let known = GROWN.lock().is_ok_and(|g| g.iter().any(|n| n == name));
    known.then(|| Plan::answer(text(name)))
}
