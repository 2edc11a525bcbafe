//! The legacy HTTP+SSE transport (protocol 2024-11-05; OpenClaw's `transport: "sse"`, Claude's
//! `type: "sse"`): one GET event stream from the server, whose first `endpoint` event names
//! where to POST messages; every message of the server's, answers included, comes on that
//! stream. The stream is the session: the instance is gone when it ends, and closing it is how
//! the session ends (there is no DELETE, and nothing for a later gateway to end: the
//! connection dies with the gateway).

use std::sync::{Arc, Weak};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, Uri};
use tokio::sync::{mpsc, watch};

use super::events::{Event, Events};
use super::link::{content, Content, Link};
use super::{short, Upstream};

/// The session's event stream, to be started.
pub struct Stream {
    closed: watch::Receiver<bool>,
}

impl Stream {
    /// A stream, and what closes it (sending `true`, or dropping it).
    pub fn new() -> (watch::Sender<bool>, Stream) {
        let (tx, rx) = watch::channel(false);
        (tx, Stream { closed: rx })
    }

    /// Opens the event stream and sends queued messages once it named its endpoint.
    pub fn start(self, up: Weak<Upstream>, link: Arc<Link>, inbox: mpsc::Receiver<Bytes>) {
        let (endpoint_tx, endpoint_rx) = watch::channel(None);
        tokio::spawn(read(up.clone(), link.clone(), endpoint_tx, self.closed));
        tokio::spawn(send(up, link, inbox, endpoint_rx));
    }
}

/// Reads the stream until it ends or is closed; then the instance is gone.
async fn read(
    up: Weak<Upstream>,
    link: Arc<Link>,
    endpoint: watch::Sender<Option<Uri>>,
    mut closed: watch::Receiver<bool>,
) {
    let why = tokio::select! {
        why = stream(&up, &link, &endpoint) => why,
        _ = closed.wait_for(|c| *c) => "its event stream was closed".to_string(),
    };
    if let Some(up) = up.upgrade() {
        if !up.is_gone() {
            tracing::warn!(server = %up.name(), instance = %short(&up.id), "{why}");
        }
        up.end(crate::cause::Cause::ServerExited, &why);
    }
}

/// The stream itself; returns why it ended.
async fn stream(up: &Weak<Upstream>, link: &Link, endpoint: &watch::Sender<Option<Uri>>) -> String {
    let response = match link.send(Method::GET, None).await {
        Ok(r) => r,
        Err(e) => return e,
    };
    if !response.status().is_success() {
        return link.refusal(&Method::GET, response).await;
    }
    if content(&response) != Some(Content::Events) {
        return format!("GET {}: the answer is not an event stream", link.shown);
    }
    let mut body = response.into_body();
    let mut parser = Events::new(link.max);
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => return format!("reading the event stream of {}: {e}", link.shown),
        };
        let Ok(data) = frame.into_data() else { continue };
        let Some(up) = up.upgrade() else {
            return "the instance is gone".into();
        };
        for event in parser.feed(&data) {
            match event {
                Event::Data { name: Some(name), data } if name == "endpoint" => {
                    let given = String::from_utf8_lossy(&data);
                    match link.endpoint(given.trim()) {
                        Ok(uri) => {
                            let _ = endpoint.send(Some(uri));
                        }
                        Err(e) => return e,
                    }
                }
                Event::Data { name: None, data } => up.route(&data),
                Event::Data { name: Some(name), .. } => {
                    tracing::debug!(server = %up.name(), "an event {name:?} from {} skipped", link.shown)
                }
                Event::TooLong => {
                    tracing::warn!(server = %up.name(), instance = %short(&up.id), "an event larger than max_message_size ({} bytes) was dropped", link.max)
                }
            }
        }
    }
    format!("the server closed its event stream ({})", link.shown)
}

/// POSTs each queued message to the endpoint, in order, once the stream named it.
async fn send(
    up: Weak<Upstream>,
    link: Arc<Link>,
    mut inbox: mpsc::Receiver<Bytes>,
    mut endpoint: watch::Receiver<Option<Uri>>,
) {
    let Ok(target) = endpoint.wait_for(Option::is_some).await.map(|e| e.clone()) else {
        return;
    };
    let Some(target) = target else { return };
    while let Some(message) = inbox.recv().await {
        let Some(within) = up.upgrade().map(|u| u.server.request_timeout) else {
            return;
        };
        let sent = tokio::time::timeout(within, link.send_to(&target, Method::POST, Some(message.clone()))).await;
        let sent = sent.unwrap_or_else(|_| {
            Err(format!(
                "POST {}: no answer within {}",
                link.shown,
                humantime::format_duration(within)
            ))
        });
        let outcome = match sent {
            Ok(r) if r.status().is_success() => {
                // The answer comes on the stream; the body says nothing ("Accepted").
                let _ = link.body(r).await;
                Ok(())
            }
            Ok(r) => Err(link.refusal(&Method::POST, r).await),
            Err(e) => Err(e),
        };
        if let Err(why) = outcome {
            let Some(up) = up.upgrade() else { return };
            let id = std::str::from_utf8(&message)
                .ok()
                .and_then(|t| crate::jsonrpc::View::parse(t).ok())
                .and_then(|v| v.numeric_id());
            match id.and_then(|id| up.forget(id)) {
                Some(route) => route.fail(&format!("server {:?}: {why}", up.name())),
                None => tracing::warn!(server = %up.name(), "a message to the server was not delivered: {why}"),
            }
        }
    }
}
