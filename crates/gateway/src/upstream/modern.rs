//! A server that speaks protocol revision 2026-07-28 itself, behind the gateway, over HTTP or
//! stdio.
//!
//! At start the gateway asks `server/discover` (over HTTP with the revision's headers; over
//! stdio only when the server's `protocol` says 2026-07-28, since a session-based stdio server
//! may not answer anything before `initialize`); a server that lists 2026-07-28 is spoken to in
//! that revision from then on, any other answer means the session-based revisions and
//! `initialize`, as before. In the revision:
//!
//! - every request carries the envelope in `params._meta` (the version, the capabilities and
//!   client info the gateway would have sent in `initialize`, the log level a client set with
//!   `logging/setLevel`) and the `Mcp-Method`/`Mcp-Name` headers; notifications are not sent
//!   (the revision has none from client to server over HTTP); `ping`, `logging/setLevel` and
//!   resource subscriptions are answered by the gateway;
//! - an `InputRequiredResult` becomes requests to the client the call belongs to, as a
//!   session-based server's would be (each under an id of the form `ir/<call>/<key>`); when every
//!   answer is in, the call is sent again with `inputResponses` and the server's `requestState`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hyper::Method;
use serde_json::{json, Value};

use super::http::link::{content, Content, Link};
use super::Upstream;
use crate::modern::REVISION;
use crate::protocol::ServerInit;

/// Most resources the gateway subscribes to at one server.
const MAX_SUBSCRIPTIONS: usize = 1024;

/// The routing headers of one request (`Mcp-Method`, `Mcp-Name`).
pub type Headers = Vec<(&'static str, String)>;

/// A call sent again: the message and its headers.
type Retry = (Bytes, Headers);

/// What the gateway keeps of a 2026-07-28 server.
#[derive(Default)]
pub struct Revision {
    /// The `_meta` envelope of every request (without the log level).
    envelope: Mutex<serde_json::Map<String, Value>>,
    /// The log level a client set, sent with every request.
    log_level: Mutex<Option<String>>,
    /// Calls waiting for their client's answers, by upstream id.
    rounds: Mutex<HashMap<u64, Round>>,
    /// The resources clients subscribed to, which the listen stream names.
    subscriptions: Mutex<std::collections::BTreeSet<String>>,
    /// Woken when they change (the listen stream is opened again).
    resubscribe: Arc<tokio::sync::Notify>,
    /// Over stdio: the requests sent and not yet answered, by upstream id (an
    /// `InputRequiredResult` is turned into a retry of its request).
    sent: Mutex<std::collections::BTreeMap<u64, Bytes>>,
}

/// Most requests remembered for their retries over stdio; past it the oldest are forgotten.
const MAX_SENT: usize = 4096;

/// One call's round of questions.
struct Round {
    /// The call's message as first sent (its params without answers).
    message: Value,
    /// The server's `requestState`, if it gave one.
    state: Option<Value>,
    /// The questions' keys, and the answers so far.
    answers: HashMap<String, Option<Result<Value, Value>>>,
}

/// The request envelope for `initialize_params` (the gateway's own, or a client's).
fn envelope_of(initialize_params: &str) -> serde_json::Map<String, Value> {
    let p: Value = serde_json::from_str(initialize_params).unwrap_or(Value::Null);
    let mut m = serde_json::Map::new();
    m.insert("io.modelcontextprotocol/protocolVersion".into(), json!(REVISION));
    m.insert(
        "io.modelcontextprotocol/clientCapabilities".into(),
        p.get("capabilities").cloned().unwrap_or_else(|| json!({})),
    );
    if let Some(info) = p.get("clientInfo") {
        m.insert("io.modelcontextprotocol/clientInfo".into(), info.clone());
    }
    m
}

/// The params of a `server/discover` request: the envelope alone.
pub fn discover_params(initialize_params: &str) -> String {
    json!({"_meta": envelope_of(initialize_params)}).to_string()
}

/// What a `server/discover` answer (the whole message) says, when the server speaks 2026-07-28:
/// its declaration, and the revision's state for it.
pub fn discovered(message: &Value, initialize_params: &str) -> Option<(ServerInit, Revision)> {
    let result = message.get("result")?;
    let speaks = result["supportedVersions"]
        .as_array()
        .is_some_and(|v| v.iter().any(|x| x == REVISION));
    if !speaks {
        return None;
    }
    let info = result
        .pointer("/_meta/io.modelcontextprotocol~1serverInfo")
        .cloned()
        .unwrap_or_else(|| json!({"name": "unknown", "version": "0"}));
    let mut init = json!({
        "protocolVersion": REVISION,
        "capabilities": result.get("capabilities").cloned().unwrap_or_else(|| json!({})),
        "serverInfo": info,
    });
    if let Some(i) = result.get("instructions") {
        init["instructions"] = i.clone();
    }
    let init = ServerInit::parse(&init.to_string()).ok()?;
    let revision = Revision {
        envelope: Mutex::new(envelope_of(initialize_params)),
        ..Revision::default()
    };
    Some((init, revision))
}

/// Asks a server over HTTP `server/discover`, with the revision's headers.
pub async fn discover_http(link: &Link, initialize_params: &str) -> Option<(ServerInit, Revision)> {
    let body = crate::jsonrpc::request(
        "\"tether-discover\"",
        "server/discover",
        Some(&discover_params(initialize_params)),
    );
    let headers = [
        ("mcp-method", "server/discover".to_string()),
        ("mcp-protocol-version", REVISION.to_string()),
    ];
    let response = link.send_with(Method::POST, Some(body), &headers).await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let kind = content(&response)?;
    let bytes = link.body(response).await.ok()?;
    let message: Value = match kind {
        Content::Json => serde_json::from_slice(&bytes).ok()?,
        Content::Events => {
            let text = String::from_utf8_lossy(&bytes);
            text.lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
                .find(|m| m.get("result").is_some() || m.get("error").is_some())?
        }
    };
    let found = discovered(&message, initialize_params)?;
    link.set_version(REVISION);
    Some(found)
}

/// What to do with a message for a 2026-07-28 server.
pub enum Outgoing {
    /// Send it, with these routing headers.
    Send(Bytes, Headers),
    /// The gateway answered it itself (the answer is routed); nothing to send.
    Answered,
    /// Nothing to send.
    Dropped,
    /// A client's answer that completed a round: send this retry of call `u64`.
    Retry(Bytes, Headers, u64),
    /// A round that cannot be completed: call `u64` fails with this.
    Failed(u64, String),
}

/// What became of a server's answer.
pub enum Handled {
    /// An answer to route as it is.
    Route,
    /// It asked the client: the questions are routed.
    Asked,
    /// It asked for nothing but its state: send this at once.
    Again(Bytes, Headers),
    /// The call cannot go on.
    Failed(String),
}

impl Revision {
    /// Prepares `message` (kind and upstream id known) for the server.
    pub fn outgoing(&self, up: &Arc<Upstream>, message: &[u8]) -> Outgoing {
        let Ok(mut v) = serde_json::from_slice::<Value>(message) else {
            return Outgoing::Dropped;
        };
        let method = v.get("method").and_then(Value::as_str).map(str::to_string);
        let id = v.get("id").cloned();
        match (method.as_deref(), id) {
            // A client's answer to one of the questions of an InputRequiredResult.
            (None, Some(Value::String(id))) => self.answer(&v, &id),
            (None, _) | (Some(_), None) => Outgoing::Dropped,
            (Some("logging/setLevel"), Some(id)) => {
                if let (Ok(mut l), Some(level)) = (
                    self.log_level.lock(),
                    v.pointer("/params/level").and_then(Value::as_str),
                ) {
                    *l = Some(level.to_string());
                }
                route(up, &json!({"jsonrpc": "2.0", "id": id, "result": {}}));
                Outgoing::Answered
            }
            (Some(m @ ("resources/subscribe" | "resources/unsubscribe")), Some(id)) => {
                // Subscriptions are the listen stream's: it is opened again naming them.
                if let (Ok(mut subs), Some(uri)) = (
                    self.subscriptions.lock(),
                    v.pointer("/params/uri").and_then(Value::as_str),
                ) {
                    let changed = if m == "resources/subscribe" {
                        subs.len() < MAX_SUBSCRIPTIONS && subs.insert(uri.to_string())
                    } else {
                        subs.remove(uri)
                    };
                    if changed {
                        self.resubscribe.notify_one();
                    }
                }
                route(up, &json!({"jsonrpc": "2.0", "id": id, "result": {}}));
                Outgoing::Answered
            }
            (Some("ping"), Some(id)) => {
                route(up, &json!({"jsonrpc": "2.0", "id": id, "result": {}}));
                Outgoing::Answered
            }
            (Some(method), Some(_)) => {
                let method = method.to_string();
                self.stamp(&mut v);
                let headers = headers(&method, &v);
                Outgoing::Send(Bytes::from(v.to_string()), headers)
            }
        }
    }

    /// Over stdio: prepares a message for the server's stdin (`None`: nothing to write), and
    /// remembers a request for its answer.
    pub fn to_stdio(&self, up: &Arc<Upstream>, message: &[u8]) -> Option<Bytes> {
        let (bytes, call) = match self.outgoing(up, message) {
            Outgoing::Send(bytes, _) => {
                let id = serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .and_then(|v| v.get("id").and_then(Value::as_u64));
                (bytes, id)
            }
            Outgoing::Retry(bytes, _, call) => (bytes, Some(call)),
            Outgoing::Failed(call, why) => {
                if let Some(route) = up.forget(call) {
                    route.fail(&format!("server {:?}: {why}", up.name()));
                }
                return None;
            }
            Outgoing::Answered | Outgoing::Dropped => return None,
        };
        if let (Some(id), Ok(mut sent)) = (call, self.sent.lock()) {
            sent.insert(id, bytes.clone());
            while sent.len() > MAX_SENT {
                sent.pop_first();
            }
        }
        Some(bytes)
    }

    /// Over stdio: takes a line from the server's stdout; true when it was handled here (an
    /// `InputRequiredResult` turned into questions), false to route it as it is.
    pub fn from_stdio(&self, up: &Arc<Upstream>, line: &[u8]) -> bool {
        #[derive(serde::Deserialize)]
        struct Id {
            id: Option<Value>,
        }
        let Some(id) = serde_json::from_slice::<Id>(line)
            .ok()
            .and_then(|i| i.id)
            .and_then(|i| i.as_u64())
        else {
            return false;
        };
        let Some(request) = self.sent.lock().ok().and_then(|s| s.get(&id).cloned()) else {
            return false;
        };
        match self.incoming(up, line, &request) {
            Handled::Route => {
                if let Ok(mut s) = self.sent.lock() {
                    s.remove(&id);
                }
                false
            }
            Handled::Asked => true,
            Handled::Again(message, _) => {
                if let Err(why) = up.send(message) {
                    if let Some(route) = up.forget(id) {
                        route.fail(&why);
                    }
                }
                true
            }
            Handled::Failed(why) => {
                if let Some(route) = up.forget(id) {
                    route.fail(&format!("server {:?}: {why}", up.name()));
                }
                true
            }
        }
    }

    /// What wakes the listen stream to be opened again.
    pub fn resubscribe_handle(&self) -> Arc<tokio::sync::Notify> {
        self.resubscribe.clone()
    }

    /// The `subscriptions/listen` request for everything the gateway's clients may want: list
    /// changes, and updates of the resources they subscribed to.
    pub fn listen_request(&self) -> (Bytes, Headers) {
        let uris: Vec<String> = self
            .subscriptions
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        let mut v = json!({"jsonrpc": "2.0", "id": "tether-listen", "method": "subscriptions/listen", "params": {"notifications": {
            "toolsListChanged": true, "promptsListChanged": true, "resourcesListChanged": true, "resourceSubscriptions": uris}}});
        self.stamp(&mut v);
        (Bytes::from(v.to_string()), headers("subscriptions/listen", &v))
    }

    /// Adds the envelope to a request's params.
    fn stamp(&self, v: &mut Value) {
        if !v.get("params").is_some_and(Value::is_object) {
            v["params"] = json!({});
        }
        let Some(params) = v.get_mut("params").and_then(Value::as_object_mut) else {
            return;
        };
        let meta = params.entry("_meta").or_insert_with(|| json!({}));
        let Some(meta) = meta.as_object_mut() else { return };
        if let Ok(e) = self.envelope.lock() {
            for (k, val) in e.iter() {
                meta.insert(k.clone(), val.clone());
            }
        }
        if let Some(level) = self.log_level.lock().ok().and_then(|l| l.clone()) {
            meta.insert("io.modelcontextprotocol/logLevel".into(), json!(level));
        }
    }

    /// An answer of the server's to `request`: `Route` it as it is, or it asked for input
    /// (the questions are put to the client: `Asked`), or only for its state (`Again`: send
    /// this retry at once).
    pub fn incoming(&self, up: &Arc<Upstream>, message: &[u8], request: &Bytes) -> Handled {
        let Ok(v) = serde_json::from_slice::<Value>(message) else {
            return Handled::Route;
        };
        let Some(result) = v.get("result") else {
            return Handled::Route;
        };
        if result.get("resultType").and_then(Value::as_str) != Some("input_required") {
            return Handled::Route;
        }
        let Some(call) = v.get("id").and_then(Value::as_u64) else {
            return Handled::Route;
        };
        let Ok(mut original) = serde_json::from_slice::<Value>(request) else {
            return Handled::Route;
        };
        if let Some(p) = original.get_mut("params").and_then(Value::as_object_mut) {
            p.remove("inputResponses");
            p.remove("requestState");
        }
        let questions = result
            .get("inputRequests")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let round = Round {
            message: original,
            state: result.get("requestState").cloned(),
            answers: questions.keys().map(|k| (k.clone(), None)).collect(),
        };
        if let Ok(mut r) = self.rounds.lock() {
            r.insert(call, round);
        }
        if questions.is_empty() {
            return match self.retry(call) {
                Ok((message, headers)) => Handled::Again(message, headers),
                Err(why) => Handled::Failed(why),
            };
        }
        for (key, q) in questions {
            let mut request = json!({"jsonrpc": "2.0", "id": format!("ir/{call}/{key}"), "method": q.get("method").cloned().unwrap_or(Value::Null)});
            if let Some(p) = q.get("params") {
                request["params"] = p.clone();
            }
            route(up, &request);
        }
        Handled::Asked
    }

    /// A client's answer (or error) to question `ir/<call>/<key>`.
    fn answer(&self, v: &Value, id: &str) -> Outgoing {
        let Some((call, key)) = id.strip_prefix("ir/").and_then(|r| r.split_once('/')) else {
            return Outgoing::Dropped;
        };
        let Ok(call) = call.parse::<u64>() else {
            return Outgoing::Dropped;
        };
        let answer = match (v.get("result"), v.get("error")) {
            (Some(r), _) => Ok(r.clone()),
            (None, Some(e)) => Err(e.clone()),
            _ => return Outgoing::Dropped,
        };
        let complete = {
            let Ok(mut rounds) = self.rounds.lock() else {
                return Outgoing::Dropped;
            };
            let Some(round) = rounds.get_mut(&call) else {
                return Outgoing::Dropped;
            };
            if let Some(slot) = round.answers.get_mut(key) {
                *slot = Some(answer);
            }
            round.answers.values().all(Option::is_some)
        };
        if !complete {
            return Outgoing::Dropped;
        }
        match self.retry(call) {
            Ok((message, headers)) => Outgoing::Retry(message, headers, call),
            Err(why) => Outgoing::Failed(call, why),
        }
    }

    /// The call sent again with the answers and the server's state; an error when a question
    /// could not be answered (the client refused, or none could be asked).
    fn retry(&self, call: u64) -> Result<Retry, String> {
        let round = self
            .rounds
            .lock()
            .ok()
            .and_then(|mut r| r.remove(&call))
            .ok_or("no such call")?;
        let mut responses = serde_json::Map::new();
        for (key, answer) in round.answers {
            match answer {
                Some(Ok(r)) => {
                    responses.insert(key, r);
                }
                Some(Err(e)) => {
                    return Err(format!(
                        "the client could not answer the server's question {key:?}: {e}"
                    ))
                }
                None => return Err(format!("the server's question {key:?} has no answer")),
            }
        }
        let mut v = round.message;
        if let Some(p) = v.get_mut("params").and_then(Value::as_object_mut) {
            p.insert("inputResponses".into(), Value::Object(responses));
            if let Some(s) = round.state {
                p.insert("requestState".into(), s);
            }
        }
        let method = v.get("method").and_then(Value::as_str).unwrap_or_default().to_string();
        self.stamp(&mut v);
        let headers = headers(&method, &v);
        Ok((Bytes::from(v.to_string()), headers))
    }
}

/// Routes a message as if the server had sent it.
fn route(up: &Arc<Upstream>, message: &Value) {
    up.route(message.to_string().as_bytes());
}

/// The routing headers of a request.
fn headers(method: &str, v: &Value) -> Headers {
    let mut h = vec![("mcp-method", method.to_string())];
    let named = match method {
        "tools/call" | "prompts/get" => v.pointer("/params/name"),
        "resources/read" => v.pointer("/params/uri"),
        _ => None,
    };
    if let Some(name) = named.and_then(Value::as_str) {
        let plain = name.bytes().all(|b| (0x20..0x7f).contains(&b)) && name.trim() == name;
        let value = if plain {
            name.to_string()
        } else {
            use base64::Engine as _;
            format!("=?base64?{}?=", base64::engine::general_purpose::STANDARD.encode(name))
        };
        h.push(("mcp-name", value));
    }
    h
}
