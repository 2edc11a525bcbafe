//! An instance that is a session with a server over streamable HTTP, rather than a process.
//!
//! It is an [`Upstream`] like any other (ids remapped, routes, lifetimes), with the pipes
//! replaced: each queued message is POSTed, and what the server answers (JSON, or an event
//! stream of messages) is routed by the same code as a stdio server's output; a GET stream, when
//! the server offers one, carries what it says outside any request. The session is the
//! instance's scope: it is written to the ledger when the server gives it an id, ended with a
//! DELETE (bounded, 405 accepted) when its scope ends, and a 404 (the server forgot it) is
//! answered by initializing again, once. A gateway that dies leaves the row open; the next one
//! ends the session ([`leftovers`]). The legacy HTTP+SSE transport ([`sse`]) is the same
//! instance over one event stream, which is the session: closing it ends the session.

mod events;
pub mod leftovers;
pub mod link;
mod record;
mod sse;
mod tls;

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Method;
use tether_supervisor::launch::Scope;
use tokio::sync::{mpsc, watch};

use self::events::{Event, Events};
use self::link::{content, session_gone, Content, Link};
use self::record::Record;
use super::modern;
use super::{short, Anchor, Owner, StartError, StartOptions, State, Upstream};
use crate::config::{HttpKind, HttpUpstream, ServerConfig};
use crate::jsonrpc::{Kind, View};

/// The longest wait between two attempts to open the server's GET stream.
const LISTEN_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Starts a session with `upstream` for `owner` in `scope`: `Starting` until
/// [`Upstream::initialize`] is done, like a process.
pub fn spawn(
    server: Arc<ServerConfig>,
    upstream: &HttpUpstream,
    owner: Owner,
    scope: Scope,
    opts: &StartOptions,
) -> Result<Arc<Upstream>, StartError> {
    let fail = |why: String| StartError::new(&server.name, why);
    let link = Arc::new(Link::new(upstream, opts.max_message).map_err(fail)?);
    let instance = tether_supervisor::ids::random_id().map_err(|e| fail(format!("generating an instance id: {e}")))?;
    let record = Record::new(
        &opts.ledger,
        &instance,
        &opts.owner_id,
        &scope,
        &server.name,
        &link.shown,
    );
    let (exit_tx, exit_rx) = watch::channel(None);
    let (ending, stream) = match upstream.kind {
        HttpKind::Streamable => (Ending::Delete, None),
        HttpKind::Sse => {
            let (close, stream) = sse::Stream::new();
            (Ending::CloseStream(close), Some(stream))
        }
    };
    let closer = Closer {
        link: link.clone(),
        record: record.clone(),
        exit: exit_tx,
        ending,
    };
    let super::Made { up, inbox } =
        Upstream::make(instance, server.clone(), owner, Anchor::Http(closer), exit_rx, None);
    let weak = Arc::downgrade(&up);
    match stream {
        None => {
            tracing::info!(server = %server.name, instance = %short(&up.id), lifetime = server.lifetime.name(), url = %link.shown, "instance starting (streamable HTTP)");
            tokio::spawn(run(weak.clone(), link.clone(), record, inbox));
            tokio::spawn(listen(weak, link));
        }
        Some(stream) => {
            tracing::info!(server = %server.name, instance = %short(&up.id), lifetime = server.lifetime.name(), url = %link.shown, "instance starting (HTTP+SSE)");
            stream.start(weak, link, inbox);
        }
    }
    Ok(up)
}

/// How a session over HTTP is ended.
enum Ending {
    /// Streamable HTTP: a DELETE of the session.
    Delete,
    /// The legacy SSE transport: closing the event stream is the session's end.
    CloseStream(watch::Sender<bool>),
}

/// What ends the session: a DELETE, then the ledger's row closed and the instance's exit set.
pub struct Closer {
    link: Arc<Link>,
    record: Record,
    exit: watch::Sender<Option<String>>,
    ending: Ending,
}

impl Closer {
    /// The link to the server.
    pub fn link(&self) -> Arc<Link> {
        self.link.clone()
    }

    /// Sends the revision the server answered `initialize` with from now on.
    pub fn negotiated(&self, version: &str) {
        self.link.set_version(version);
    }

    /// Ends the session in a task of its own (the caller may be dropping the instance).
    pub fn close(self, why: &str) {
        let why = why.to_string();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            let _ = self
                .exit
                .send(Some("the runtime was gone: the session was not ended".into()));
            return;
        };
        runtime.spawn(async move {
            let outcome = match &self.ending {
                Ending::Delete => {
                    // A scope that ends while its instance starts: the session the server is
                    // opening is known once `initialize` is answered (or given up on).
                    self.link.initialized(link::DELETE_TIMEOUT).await;
                    self.link.delete().await
                }
                Ending::CloseStream(stream) => {
                    let _ = stream.send(true);
                    "its event stream closed".to_string()
                }
            };
            tracing::debug!(url = %self.link.shown, "upstream session ended: {outcome}");
            self.record.ended(&format!("{why}; {outcome}")).await;
            let _ = self.exit.send(Some(format!("session ended ({outcome})")));
        });
    }
}

/// Sends every queued message; a request's answer (and what the server says before it) is
/// routed as it arrives, in a task per request, so a slow call holds up no other.
async fn run(up: Weak<Upstream>, link: Arc<Link>, record: Record, mut inbox: mpsc::Receiver<Bytes>) {
    let reinit = Arc::new(tokio::sync::Mutex::new(()));
    while let Some(message) = inbox.recv().await {
        let Some(alive) = up.upgrade() else { return };
        let parsed = std::str::from_utf8(&message)
            .ok()
            .and_then(|t| View::parse(t).ok())
            .map(|v| (v.kind, v.numeric_id(), v.method() == "initialize"));
        let Some((kind, id, is_initialize)) = parsed else {
            tracing::warn!(server = %alive.name(), "not sending a message that is not JSON-RPC");
            continue;
        };
        let mut exchange = Exchange {
            up: up.clone(),
            link: link.clone(),
            record: record.clone(),
            reinit: reinit.clone(),
            message,
            id: if kind == Kind::Request { id } else { None },
            is_initialize,
            headers: Vec::new(),
        };
        if let Some(revision) = alive.revision.get() {
            // A 2026-07-28 server: the message as that revision sends it, or not at all.
            match revision.outgoing(&alive, &exchange.message) {
                modern::Outgoing::Send(message, headers) => {
                    exchange.message = message;
                    exchange.headers = headers;
                }
                modern::Outgoing::Retry(message, headers, call) => {
                    exchange.message = message;
                    exchange.headers = headers;
                    exchange.id = Some(call);
                }
                modern::Outgoing::Failed(call, why) => {
                    if let Some(route) = alive.forget(call) {
                        route.fail(&format!("server {:?}: {why}", alive.name()));
                    }
                    continue;
                }
                modern::Outgoing::Answered | modern::Outgoing::Dropped => continue,
            }
            drop(alive);
            tokio::spawn(exchange.run());
            continue;
        }
        drop(alive);
        if kind == Kind::Request {
            tokio::spawn(exchange.run());
        } else {
            // Notifications and answers go in order (`initialized` before any request).
            exchange.run().await;
        }
    }
}

/// One message POSTed, and what came back.
struct Exchange {
    up: Weak<Upstream>,
    link: Arc<Link>,
    record: Record,
    reinit: Arc<tokio::sync::Mutex<()>>,
    message: Bytes,
    /// The upstream id of a request (its answer is awaited).
    id: Option<u64>,
    is_initialize: bool,
    /// Headers of protocol revision 2026-07-28 (`Mcp-Method`, `Mcp-Name`), for a server that
    /// speaks it.
    headers: modern::Headers,
}

impl Exchange {
    async fn run(self) {
        let timeout = self
            .up
            .upgrade()
            .map(|u| {
                if self.is_initialize {
                    u.server.startup_timeout
                } else {
                    u.server.request_timeout
                }
            })
            .unwrap_or_default();
        let done = tokio::time::timeout(timeout, self.exchange()).await;
        let outcome = match done {
            Ok(outcome) => outcome,
            // The route's own timeout answers the client; this only stops reading.
            Err(_) => Err(format!("no answer within {}", humantime::format_duration(timeout))),
        };
        if let Err(why) = outcome {
            self.fail(&why);
        }
    }

    async fn exchange(&self) -> Result<(), String> {
        let _starting = self.is_initialize.then(|| self.link.initializing());
        if self.is_initialize {
            self.link.remember_initialize(&self.message);
        }
        // The session this message goes out under: what a 404 says the server forgot.
        let sent = self.link.session();
        let mut response = self.post().await?;
        if session_gone(response.status()) && !self.is_initialize && sent.is_some() {
            // The server forgot the session (it restarted, or expired it): initialize again,
            // once, and send the message again.
            self.initialize_again(sent).await?;
            response = self.post().await?;
        }
        let status = response.status();
        self.adopt(&response).await;
        if status == hyper::StatusCode::ACCEPTED || status == hyper::StatusCode::NO_CONTENT {
            return match self.id {
                Some(_) => Err(format!(
                    "POST {} answered a request with {status} and no answer",
                    self.link.shown
                )),
                None => Ok(()),
            };
        }
        if !status.is_success() {
            return Err(self.link.refusal(&Method::POST, response).await);
        }
        match content(&response) {
            Some(Content::Json) => {
                let body = self.link.body(response).await?;
                let Some(up) = self.up.upgrade() else { return Ok(()) };
                let mut again = Vec::new();
                deliver_json(&up, &self.link, &body, &mut self.sink(&mut again))?;
                if !again.is_empty() {
                    self.send_again(again);
                    return Ok(());
                }
                if up.revision.get().is_some() && self.id.is_some_and(|id| up.is_pending(id)) {
                    // Asked the client: its answers complete the call.
                    return Ok(());
                }
                match self.id.filter(|id| up.is_pending(*id)) {
                    Some(_) => Err(format!(
                        "POST {} answered with a message that is not this request's answer",
                        self.link.shown
                    )),
                    None => Ok(()),
                }
            }
            Some(Content::Events) => {
                let mut again = Vec::new();
                read_events(&self.up, &self.link, response, &mut self.sink(&mut again)).await?;
                if !again.is_empty() {
                    self.send_again(again);
                    return Ok(());
                }
                if self.up.upgrade().is_some_and(|u| u.revision.get().is_some()) {
                    return Ok(());
                }
                match self.id.and_then(|id| self.up.upgrade().filter(|u| u.is_pending(id))) {
                    Some(_) => Err(format!(
                        "POST {}: the event stream ended before the answer",
                        self.link.shown
                    )),
                    None => Ok(()),
                }
            }
            None => {
                let kind = response
                    .headers()
                    .get(hyper::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("no content type")
                    .to_string();
                Err(format!(
                    "POST {} answered {status} with {kind}, not JSON or an event stream",
                    self.link.shown
                ))
            }
        }
    }

    /// Takes the session id a response gives, the first time, and records it in the ledger
    /// while the instance lives (once it ended, its closer, which waits for an `initialize` in
    /// flight, DELETEs it).
    async fn adopt(&self, response: &hyper::Response<hyper::body::Incoming>) {
        if !self.link.adopt_session(response) {
            return;
        }
        if let Some(up) = self.up.upgrade().filter(|u| !u.is_gone()) {
            self.record.session(&self.link, &up).await;
        }
    }

    async fn post(&self) -> Result<hyper::Response<hyper::body::Incoming>, String> {
        self.link
            .send_with(Method::POST, Some(self.message.clone()), &self.headers)
            .await
    }

    /// Where the server's messages go: routed as they are, or for a 2026-07-28 server, an
    /// `InputRequiredResult` turned into questions to the client (a retry it needs at once is
    /// kept in `again`).
    fn sink<'a>(
        &'a self,
        again: &'a mut Vec<(Bytes, modern::Headers)>,
    ) -> impl FnMut(&Arc<Upstream>, &[u8]) + Send + 'a {
        let request = &self.message;
        move |up: &Arc<Upstream>, m: &[u8]| match up.revision.get() {
            None => up.route(m),
            Some(r) => match r.incoming(up, m, request) {
                modern::Handled::Route => up.route(m),
                modern::Handled::Asked => {}
                modern::Handled::Again(message, headers) => again.push((message, headers)),
                modern::Handled::Failed(why) => {
                    if let Some(route) = self.id.and_then(|id| up.forget(id)) {
                        route.fail(&format!("server {:?}: {why}", up.name()));
                    }
                }
            },
        }
    }

    /// Sends the retries a 2026-07-28 server asked for, each as an exchange of its own.
    fn send_again(&self, again: Vec<(Bytes, modern::Headers)>) {
        for (message, headers) in again {
            let next = Exchange {
                up: self.up.clone(),
                link: self.link.clone(),
                record: self.record.clone(),
                reinit: self.reinit.clone(),
                message,
                id: self.id,
                is_initialize: false,
                headers,
            };
            tokio::spawn(next.run());
        }
    }

    /// Runs `initialize` again on a fresh session, unless another request already did since
    /// `before` was the session.
    async fn initialize_again(&self, before: Option<hyper::header::HeaderValue>) -> Result<(), String> {
        let _one = self.reinit.lock().await;
        if self.link.session() != before {
            return Ok(());
        }
        let up = self.up.upgrade().ok_or("the instance is gone")?;
        tracing::warn!(server = %up.name(), instance = %short(&up.id), url = %self.link.shown, "the server no longer knows the session (404): initializing again");
        self.link.drop_session();
        // The same `initialize` as the first (the client's capabilities, for a session's
        // instance), under a fresh id.
        let id = up.reserve_id().to_string();
        let message = self.link.initialize_message(&id).unwrap_or_else(|| {
            crate::jsonrpc::request(&id, "initialize", Some(&crate::protocol::initialize_params(None)))
        });
        let response = self.link.send(Method::POST, Some(message)).await?;
        if !response.status().is_success() {
            return Err(self.link.refusal(&Method::POST, response).await);
        }
        self.adopt(&response).await;
        // Its answer is the one `initialize` already gave: read and dropped.
        let _ = self.link.body(response).await;
        let initialized = crate::jsonrpc::notification("notifications/initialized", None);
        let response = self.link.send(Method::POST, Some(initialized)).await?;
        let _ = self.link.body(response).await;
        Ok(())
    }

    /// Answers the request with an error naming the server and the cause; a failed
    /// notification is logged.
    fn fail(&self, why: &str) {
        let Some(up) = self.up.upgrade() else { return };
        match self.id.and_then(|id| up.forget(id)) {
            Some(route) => route.fail(&format!("server {:?}: {why}", up.name())),
            None if self.id.is_none() => {
                tracing::warn!(server = %up.name(), instance = %short(&up.id), "a message to the server was not delivered: {why}")
            }
            None => {}
        }
    }
}

/// Routes a JSON body: one message, or a batch of them. A body that is not JSON-RPC is an
/// error for the request it answers.
fn deliver_json(
    up: &Arc<Upstream>,
    link: &Link,
    body: &[u8],
    sink: &mut dyn FnMut(&Arc<Upstream>, &[u8]),
) -> Result<(), String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("POST {}: its answer is not UTF-8: {e}", link.shown))?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let items =
            crate::jsonrpc::split_batch(trimmed).map_err(|e| format!("POST {}: its answer: {e}", link.shown))?;
        for item in items {
            sink(up, item.get().as_bytes());
        }
        return Ok(());
    }
    View::parse(text).map_err(|e| format!("POST {}: its answer is not JSON-RPC: {e}", link.shown))?;
    sink(up, body);
    Ok(())
}

/// Routes every event of a response's stream until it ends.
async fn read_events(
    up: &Weak<Upstream>,
    link: &Link,
    response: hyper::Response<hyper::body::Incoming>,
    sink: &mut (dyn FnMut(&Arc<Upstream>, &[u8]) + Send),
) -> Result<(), String> {
    use http_body_util::BodyExt;
    let mut body = response.into_body();
    let mut parser = Events::new(link.max);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("reading the event stream of {}: {e}", link.shown))?;
        let Ok(data) = frame.into_data() else { continue };
        let Some(up) = up.upgrade() else { return Ok(()) };
        for event in parser.feed(&data) {
            match event {
                Event::Data { name: None, data } => sink(&up, &data),
                Event::Data { name: Some(name), .. } => {
                    tracing::debug!(server = %up.name(), "an event {name:?} from {} skipped", link.shown)
                }
                Event::TooLong => {
                    tracing::warn!(server = %up.name(), instance = %short(&up.id), "an event larger than max_message_size ({} bytes) was dropped", link.max)
                }
            }
        }
    }
    if parser.mid_event() {
        if let Some(up) = up.upgrade() {
            tracing::warn!(server = %up.name(), instance = %short(&up.id), "the event stream of {} stopped in the middle of an event", link.shown);
        }
    }
    Ok(())
}

/// The server's own stream, for what it says outside any request: the GET stream of the
/// session-based revisions, or a 2026-07-28 server's `subscriptions/listen` (list changes and
/// the resources clients subscribed to). Opened once the session is ready; read until the
/// instance is gone; opened again when it ends (with backoff), or at once when the
/// subscriptions change. A server without a GET stream (405) is not asked again.
async fn listen(up: Weak<Upstream>, link: Arc<Link>) {
    let Some(mut state) = up.upgrade().map(|u| u.state.subscribe()) else {
        return;
    };
    if state.wait_for(|s| !matches!(s, State::Starting)).await.is_err() {
        return;
    }
    let mut backoff = Duration::from_millis(250);
    loop {
        // What opens the stream, and what wakes it to be opened again.
        let (request, resubscribe) = {
            let Some(alive) = up.upgrade().filter(|u| !u.is_gone()) else {
                return;
            };
            match alive.revision.get() {
                Some(r) => (Some(r.listen_request()), Some(r.resubscribe_handle())),
                None => (None, None),
            }
        };
        let resubscribed = async {
            match &resubscribe {
                Some(n) => n.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(resubscribed);
        let opened = Instant::now();
        let (method, sent) = match request {
            Some((message, headers)) => (
                Method::POST,
                link.send_with(Method::POST, Some(message), &headers).await,
            ),
            None => (Method::GET, link.send(Method::GET, None).await),
        };
        let reopen = match sent {
            Ok(r) if r.status() == hyper::StatusCode::METHOD_NOT_ALLOWED && method == Method::GET => return,
            Ok(r) if r.status().is_success() && content(&r) == Some(Content::Events) => {
                // The acknowledgement of a listen stream is the gateway's; the rest are the
                // clients'.
                let mut route = |up: &Arc<Upstream>, m: &[u8]| {
                    let ack = std::str::from_utf8(m)
                        .ok()
                        .and_then(|t| View::parse(t).ok())
                        .is_some_and(|v| v.method() == "notifications/subscriptions/acknowledged");
                    if !ack {
                        up.route(m);
                    }
                };
                tokio::select! {
                    read = read_events(&up, &link, r, &mut route) => {
                        if let Err(e) = read {
                            tracing::debug!("{e}");
                        }
                        false
                    }
                    _ = &mut resubscribed => true,
                    _ = state.wait_for(|s| matches!(s, State::Gone(_))) => return,
                }
            }
            Ok(r) => {
                let why = link.refusal(&method, r).await;
                tracing::debug!("the server's own stream: {why}");
                false
            }
            Err(e) => {
                tracing::debug!("the server's own stream: {e}");
                false
            }
        };
        if reopen || opened.elapsed() > LISTEN_BACKOFF_MAX {
            backoff = Duration::from_millis(250);
        }
        if reopen {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = &mut resubscribed => {}
            _ = state.wait_for(|s| matches!(s, State::Gone(_))) => return,
        }
        backoff = (backoff * 2).min(LISTEN_BACKOFF_MAX);
    }
}
