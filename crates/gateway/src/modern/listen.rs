//! `subscriptions/listen`: a 2026-07-28 client's stream of list changes and resource updates,
//! in place of the session-based revisions' GET stream and `resources/subscribe`.
//!
//! The listen request names what it wants (`toolsListChanged`, `promptsListChanged`,
//! `resourcesListChanged`, `resourceSubscriptions`); its answer is an event stream that starts
//! with `notifications/subscriptions/acknowledged` (what is honored) and then carries only those
//! notifications, each stamped with the listen request's id as `subscriptionId`. Behind it is a
//! session of the gateway's: it joins the audience of the endpoint's servers (starting shared
//! ones), subscribes upstream to the URIs named, and ends when the client closes the stream.

use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::front::Answer;
use crate::config::Lifetime;
use crate::gateway::Gateway;
use crate::jsonrpc::{self, View};
use crate::route::{self, Reply};
use crate::session::{Mode, Session};
use crate::upstream::Out;

/// Most resources one listen stream subscribes to.
const MAX_SUBSCRIPTIONS: usize = 256;

#[derive(Deserialize, Default)]
struct Params {
    #[serde(default)]
    notifications: Wanted,
}

/// What a listen request wants.
#[derive(Deserialize, Default, Clone)]
struct Wanted {
    #[serde(rename = "toolsListChanged", default)]
    tools: bool,
    #[serde(rename = "promptsListChanged", default)]
    prompts: bool,
    #[serde(rename = "resourcesListChanged", default)]
    resources: bool,
    #[serde(rename = "resourceSubscriptions", default)]
    uris: Vec<String>,
}

impl Wanted {
    /// Whether the notification `method` (about `uri`, for an update) is wanted.
    fn wants(&self, method: &str, uri: Option<&str>) -> bool {
        match method {
            "notifications/tools/list_changed" => self.tools,
            "notifications/prompts/list_changed" => self.prompts,
            "notifications/resources/list_changed" => self.resources,
            "notifications/resources/updated" => uri.is_some_and(|u| self.uris.iter().any(|w| w == u)),
            _ => false,
        }
    }

    /// What is honored, as the acknowledgement says it.
    fn honored(&self) -> Value {
        let mut n = serde_json::Map::new();
        for (key, on) in [
            ("toolsListChanged", self.tools),
            ("promptsListChanged", self.prompts),
            ("resourcesListChanged", self.resources),
        ] {
            if on {
                n.insert(key.into(), Value::Bool(true));
            }
        }
        if !self.uris.is_empty() {
            n.insert("resourceSubscriptions".into(), json!(self.uris));
        }
        Value::Object(n)
    }
}

/// Opens the listen stream of request `id` in `session`.
pub async fn open(gw: &Gateway, session: Arc<Session>, view: &View<'_>, id: &str) -> Answer {
    let params: Params = match view.params.map(|p| serde_json::from_str(p.get())) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            return Answer::Json(
                400,
                jsonrpc::error_response(
                    id,
                    jsonrpc::code::INVALID_PARAMS,
                    &format!("subscriptions/listen: params: {e}"),
                ),
            )
        }
        None => Params::default(),
    };
    let wanted = params.notifications;
    if wanted.uris.len() > MAX_SUBSCRIPTIONS {
        return Answer::Json(
            400,
            jsonrpc::error_response(
                id,
                jsonrpc::code::INVALID_PARAMS,
                &format!("subscriptions/listen: at most {MAX_SUBSCRIPTIONS} resourceSubscriptions"),
            ),
        );
    }
    let (tx, mut rx) = mpsc::channel::<Bytes>(crate::session::STREAM_QUEUE);
    session.set_stream(tx);
    // Be among those the servers' notifications go to.
    let servers = match &session.mode {
        Mode::One(s) => vec![s.clone()],
        Mode::All => gw.pool.enabled(),
    };
    for server in &servers {
        let shared = gw.pool.config(server).is_some_and(|c| c.lifetime == Lifetime::Shared);
        if shared || session.instance(server).is_some() {
            if let Err(e) = gw.pool.acquire(server, &session).await {
                tracing::debug!(session = %session.key, server = %server, "listen: {e}");
            }
        }
    }
    let subscriptions = wanted
        .uris
        .iter()
        .enumerate()
        .map(|(n, uri)| subscribe(gw, &session, uri, n));
    crate::aggregate::join_all(subscriptions.collect()).await;
    let id: Value = serde_json::from_str(id).unwrap_or(Value::Null);
    let (out_tx, out_rx) = mpsc::channel::<Bytes>(crate::session::STREAM_QUEUE);
    let ack = json!({
        "jsonrpc": "2.0",
        "method": "notifications/subscriptions/acknowledged",
        "params": {"_meta": {"io.modelcontextprotocol/subscriptionId": id}, "notifications": wanted.honored()},
    });
    tokio::spawn(async move {
        if out_tx
            .send(crate::front::body::event(ack.to_string().as_bytes()))
            .await
            .is_err()
        {
            return;
        }
        loop {
            tokio::select! {
                m = rx.recv() => {
                    let Some(m) = m else { break };
                    let Some(stamped) = stamp(&m, &wanted, &id) else {
                        // A server's request has no place on a listen stream: the server is
                        // answered with an error rather than left waiting.
                        session.undeliverable(&m);
                        continue;
                    };
                    if out_tx.send(crate::front::body::event(&stamped)).await.is_err() {
                        break;
                    }
                }
                _ = out_tx.closed() => break,
            }
        }
        tracing::debug!(session = %session.key, "listen stream closed");
    });
    Answer::Events(out_rx)
}

/// A notification for the stream, stamped with the subscription's id, if it is wanted.
fn stamp(message: &[u8], wanted: &Wanted, id: &Value) -> Option<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(message).ok()?;
    let method = v.get("method")?.as_str()?.to_string();
    let uri = v.pointer("/params/uri").and_then(Value::as_str).map(str::to_string);
    if !wanted.wants(&method, uri.as_deref()) {
        return None;
    }
    if !v.get("params").is_some_and(Value::is_object) {
        v["params"] = json!({});
    }
    let params = v.get_mut("params")?.as_object_mut()?;
    let meta = params.entry("_meta").or_insert_with(|| json!({}));
    meta.as_object_mut()?
        .insert("io.modelcontextprotocol/subscriptionId".into(), id.clone());
    Some(v.to_string().into_bytes())
}

/// Subscribes the session to `uri` at the server that serves it, as a session-based client's
/// `resources/subscribe` would.
async fn subscribe(gw: &Gateway, session: &Arc<Session>, uri: &str, n: usize) {
    let message =
        json!({"jsonrpc": "2.0", "id": format!("listen-{n}"), "method": "resources/subscribe", "params": {"uri": uri}})
            .to_string();
    let Ok(view) = View::parse(&message) else { return };
    match route::dispatch(gw, session, &view).await {
        Reply::Later(mut call) => {
            while let Some(out) = call.next().await {
                if let Out::Answer(a) = out {
                    tracing::debug!(session = %session.key, "listen: subscribed to {uri}: {}", String::from_utf8_lossy(&a));
                }
            }
        }
        Reply::Now(a) => {
            tracing::debug!(session = %session.key, "listen: subscribing to {uri}: {}", String::from_utf8_lossy(&a))
        }
        Reply::Accepted => {}
    }
}
