//! The live half of `tether ps`: when a gateway runs on this state directory, what it says of
//! itself through its admin API (`GET /v1/gateway`, `/v1/sessions`, `/v1/instances`):
//! sessions → their instances → each instance's process tree, with what only the gateway
//! knows (the client, the lifetime, the time since the last call). The ledger's view cannot
//! tell a session's instances apart from a shared one's, nor which client holds them.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};
use tether_supervisor::ids::short;

use super::admin_client::{ask, gateway_answers};
use super::ps::{age, rows_table, Row};

/// What a running gateway said.
pub struct Live {
    gateway: Value,
    sessions: Vec<Value>,
    instances: Vec<Value>,
}

/// The running gateway's view, or `None` when no gateway answers (or it answers something
/// else than its view: then the ledger's view is the one to trust).
pub fn view(state_dir: Option<&Path>) -> Option<Live> {
    if !gateway_answers(state_dir) {
        return None;
    }
    let get = |path: &str| match ask(state_dir, "GET", path) {
        Ok((200, v)) => Some(v),
        _ => None,
    };
    let array = |v: Value| v.as_array().cloned();
    Some(Live {
        gateway: get("/v1/gateway")?,
        sessions: array(get("/v1/sessions")?)?,
        instances: array(get("/v1/instances")?)?,
    })
}

impl Live {
    /// The gateway's owner id in the ledger.
    pub fn owner(&self) -> &str {
        self.gateway["owner"].as_str().unwrap_or("")
    }

    /// Everything, as JSON: `gateway`, `sessions`, `instances`.
    pub fn json(&self) -> Value {
        json!({"gateway": self.gateway, "sessions": self.sessions, "instances": self.instances})
    }

    /// For people: the gateway, each session with its instances, then the instances no
    /// session holds; each instance with its tree.
    pub fn text(&self) -> String {
        let g = &self.gateway;
        let mut out = format!(
            "gateway pid {} (live, from its admin API), up {}: {} session(s), {} instance(s)\n",
            g["pid"],
            ms(&g["uptime_ms"]),
            self.sessions.len(),
            self.instances.len()
        );
        for s in &self.sessions {
            let _ = writeln!(
                out,
                "session {}  {}  {} {}  protocol {}  idle {}",
                s["key"].as_str().unwrap_or("?"),
                s["endpoint"].as_str().unwrap_or("?"),
                s["client"]["name"].as_str().unwrap_or("?"),
                s["client"]["version"].as_str().unwrap_or(""),
                s["protocol"].as_str().unwrap_or("?"),
                ms(&s["idle_ms"])
            );
            for i in self.instances.iter().filter(|i| i["session"] == s["key"]) {
                instance(&mut out, i);
            }
        }
        let unheld: Vec<&Value> = self.instances.iter().filter(|i| i["session"].is_null()).collect();
        if !unheld.is_empty() {
            out.push_str("held by no session (shared, request):\n");
            for i in unheld {
                instance(&mut out, i);
            }
        }
        out
    }
}

/// One instance's line and its tree.
fn instance(out: &mut String, i: &Value) {
    let layers: Vec<&str> = i["layers"]
        .as_array()
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  instance {} {} [{}] {}; layers {}; age {}, last call {} ago, {} in flight",
        short(i["id"].as_str().unwrap_or("?")),
        i["server"].as_str().unwrap_or("?"),
        i["lifetime"].as_str().unwrap_or("?"),
        i["state"].as_str().unwrap_or("?"),
        if layers.is_empty() {
            "-".to_string()
        } else {
            layers.join(",")
        },
        ms(&i["age_ms"]),
        ms(&i["idle_ms"]),
        i["in_flight"]
    );
    if let Some(url) = i["url"].as_str() {
        let _ = writeln!(out, "    a session with {url} over HTTP (no process)");
        return;
    }
    let tree = i["tree"].as_array().map(Vec::as_slice).unwrap_or_default();
    if tree.is_empty() {
        out.push_str("    (no live process)\n");
        return;
    }
    rows_table(out, tree.iter().map(row));
}

/// A process of the admin API's tree as a table row.
fn row(p: &Value) -> Row<'_> {
    Row {
        pid: p["pid"].as_i64().unwrap_or(0),
        ppid: p["ppid"].as_i64(),
        state: p["state"].as_str().and_then(|s| s.chars().next()),
        rss_kib: p["rss_kib"].as_u64(),
        cpu_ms: p["cpu_ms"].as_u64(),
        age_secs: p["age_secs"].as_f64(),
        found_by: p["found_by"].as_str().unwrap_or("?"),
        cmdline: p["cmdline"].as_str().unwrap_or(""),
    }
}

/// Milliseconds for people.
fn ms(v: &Value) -> String {
    v.as_f64().map_or("-".into(), |ms| age(ms / 1000.0))
}
