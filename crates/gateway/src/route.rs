//! A client's message, wherever it arrived (HTTP or stdio), taken to where it goes.
//!
//! Requests go to the instance that serves the session ([`crate::pool`]) under an upstream id
//! of the gateway's; the answer and whatever the server says during the call come back as a
//! [`Call`]. `ping` is answered here. A client's answer to a server's request goes back to that
//! server with the server's own id; a client's `notifications/cancelled` reaches the upstream
//! request it names.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::config::ToolFilter;
use crate::gateway::Gateway;
use crate::jsonrpc::{self, code, Kind, View};
use crate::pool::{AcquireError, Lease};
use crate::session::{Endpoint, Mode, Session};
use crate::upstream::{ClientRoute, Out, Route, Upstream};

/// What the front door answers a client's message with.
pub enum Reply {
    /// Nothing (a notification, an answer): HTTP 202.
    Accepted,
    /// An answer, now.
    Now(Bytes),
    /// An answer to come, perhaps after interim messages.
    Later(Call),
}

/// A request in flight: its interim messages, then its answer.
pub struct Call {
    /// Messages for this request.
    rx: mpsc::Receiver<Out>,
    /// When the server's time is up.
    deadline: tokio::time::Instant,
    /// The instance (a `request` instance ends when the lease goes).
    lease: Lease,
    /// The request's upstream id.
    upstream_id: u64,
    /// The client's id, as written.
    client_id: Box<str>,
    /// The client's session.
    session: Arc<Session>,
    /// The server's `request_timeout`.
    timeout: Duration,
    /// The tools filter to apply to a `tools/list` answer.
    filter: Option<ToolFilter>,
    /// The answer went out.
    done: bool,
    /// An answer taken early by [`Call::try_interim`], for `next` to give.
    held: Option<Bytes>,
    /// When a `tools/call` was sent (its round trip goes to the metrics).
    tool_call: Option<std::time::Instant>,
    /// Counted in flight until the call ends, whoever carries it (a streamed answer outlives
    /// the handler that started it): the shutdown's drain waits for it.
    _busy: crate::gateway::Busy,
}

impl Call {
    /// The session the call belongs to.
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// The next message for the client: interim ones, then the answer (an error one when the
    /// server's time is up); `None` after the answer.
    pub async fn next(&mut self) -> Option<Out> {
        if self.done {
            return None;
        }
        let next = match self.held.take() {
            Some(a) => Ok(Some(Out::Answer(a))),
            None => tokio::time::timeout_at(self.deadline, self.rx.recv()).await,
        };
        let answer = match next {
            Ok(Some(Out::Interim(m))) => return Some(Out::Interim(m)),
            Ok(Some(Out::Answer(m))) => match &self.filter {
                Some(f) => filter_tools(m, f).unwrap_or_else(|why| {
                    crate::metrics::upstream_error(self.lease.upstream.name(), "malformed");
                    jsonrpc::error_response(
                        &self.client_id,
                        code::SERVER_UNAVAILABLE,
                        &format!(
                            "server {:?}: its tools/list answer cannot be filtered (its tools filter), so none of it is passed on: {why}",
                            self.lease.upstream.name()
                        ),
                    )
                }),
                None => m,
            },
            Ok(None) => jsonrpc::error_response(
                &self.client_id,
                code::SERVER_UNAVAILABLE,
                &format!("server {:?}: the request was cancelled", self.lease.upstream.name()),
            ),
            Err(_) => {
                let server = self.lease.upstream.name().to_string();
                let timeout = humantime::format_duration(self.timeout);
                crate::metrics::upstream_error(&server, "timeout");
                self.lease.upstream.cancel(
                    self.upstream_id,
                    &format!("Tether: no answer within request_timeout ({timeout})"),
                );
                self.session.request_done(&self.client_id);
                jsonrpc::error_response(
                    &self.client_id,
                    code::SERVER_TIMEOUT,
                    &format!("server {server:?} did not answer within its request_timeout ({timeout})"),
                )
            }
        };
        self.done = true;
        if let Some(sent) = self.tool_call {
            self.lease.upstream.tool_calls.observe(sent.elapsed().as_secs_f64());
        }
        Some(Out::Answer(answer))
    }
}

impl Call {
    /// The `serverInfo` of the instance serving the call, as it declared it.
    pub fn server_info(&self) -> Option<String> {
        self.lease.upstream.init().map(|i| i.server_info.get().to_string())
    }

    /// When the server's time for this call is up.
    pub fn deadline(&self) -> tokio::time::Instant {
        self.deadline
    }

    /// Marks the call parked (waiting for its 2026-07-28 client's answers), or not.
    pub fn set_parked(&self, parked: bool) {
        self.lease.upstream.set_parked(self.upstream_id, parked);
    }

    /// The next interim message, waiting for it; `None` when the answer comes first (kept for
    /// [`Call::next`]) or the call is over.
    pub async fn next_interim(&mut self) -> Option<Bytes> {
        if self.done || self.held.is_some() {
            return None;
        }
        match self.rx.recv().await {
            Some(Out::Interim(m)) => Some(m),
            Some(Out::Answer(a)) => {
                self.held = Some(a);
                None
            }
            None => None,
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if !self.done {
            // The client went away before the answer: nobody will read it, and the server is
            // told so (a `request` instance ends with the lease).
            self.lease.upstream.cancel(self.upstream_id, "the client went away");
            self.session.request_done(&self.client_id);
        }
    }
}

/// Takes one message of `session`'s client where it goes.
pub async fn dispatch(gw: &Gateway, session: &Arc<Session>, view: &View<'_>) -> Reply {
    session.touch();
    match view.kind {
        Kind::Request => request(gw, session, view).await,
        Kind::Notification => {
            notification(gw, session, view);
            Reply::Accepted
        }
        Kind::Response => {
            match session.answer_to_server(view) {
                Some((up, message)) => {
                    if let Err(why) = up.send(message) {
                        tracing::debug!(server = %up.name(), "a client's answer could not be passed on: {why}");
                    }
                }
                None => tracing::debug!(session = %session.key, "an answer to no request of a server's: dropped"),
            }
            Reply::Accepted
        }
    }
}

async fn request(gw: &Gateway, session: &Arc<Session>, view: &View<'_>) -> Reply {
    let id = view.id.map_or("null", |i| i.get());
    match view.method() {
        "ping" => return Reply::Now(jsonrpc::result_response(id, "{}")),
        "initialize" => {
            return Reply::Now(jsonrpc::error_response(
                id,
                code::INVALID_REQUEST,
                "this session is already initialized (send initialize without an Mcp-Session-Id to start another)",
            ))
        }
        _ => {}
    }
    match target(gw, session) {
        Ok(Target::One(server)) => forward(gw, session, &server, view).await,
        Ok(Target::All(servers)) => crate::aggregate::request(gw, session, &servers, view).await,
        Err(why) => Reply::Now(jsonrpc::error_response(id, code::METHOD_NOT_FOUND, &why)),
    }
}

/// Sends a request to `server`'s instance for this session.
pub async fn forward(gw: &Gateway, session: &Arc<Session>, server: &str, view: &View<'_>) -> Reply {
    let id = view.id.map_or("null", |i| i.get());
    // A call the filter refuses is answered before any instance is started for it.
    if let Some(config) = gw.pool.config(server) {
        let tools = &config.tools;
        if view.method() == "tools/call" && !tools.is_all() {
            if let Some(name) = tool_name(view.params).filter(|n| !tools.allows(n)) {
                return Reply::Now(jsonrpc::error_response(
                    id,
                    code::INVALID_PARAMS,
                    &format!("tool {name:?} is not offered by server {server:?} (its tools filter)"),
                ));
            }
        }
    }
    // So is a request the server could not be given (checked before anything starts).
    let Ok(token) = progress_token(view.params) else {
        return Reply::Now(jsonrpc::error_response(
            id,
            code::INVALID_PARAMS,
            "params mention a progressToken that cannot be read",
        ));
    };
    if let m @ ("resources/subscribe" | "resources/unsubscribe") = view.method() {
        if let Some(uri) = jsonrpc::uri_param(view.params) {
            session.subscribe(&uri, m == "resources/subscribe");
        }
    }
    let lease = match gw.pool.acquire(server, session).await {
        Ok(l) => l,
        Err(e) => return Reply::Now(jsonrpc::error_response(id, acquire_code(&e), &e.to_string())),
    };
    let up = lease.upstream.clone();
    let tools = &up.server.tools;
    let filter = (view.method() == "tools/list" && !tools.is_all()).then(|| tools.clone());
    let (upstream_id, rx) = match send_upstream(&up, session, view, token) {
        Ok(sent) => sent,
        Err(answer) => return Reply::Now(answer),
    };
    let timeout = up.server.request_timeout;
    Reply::Later(Call {
        rx,
        deadline: tokio::time::Instant::now() + timeout,
        lease,
        upstream_id,
        client_id: id.into(),
        session: session.clone(),
        timeout,
        filter,
        done: false,
        held: None,
        tool_call: (view.method() == "tools/call").then(std::time::Instant::now),
        _busy: gw.busy(),
    })
}

/// Sends a client's request to `up` under a fresh upstream id: the id (and the progress
/// `token`, when it asks for progress) spliced in the request's bytes, its route kept so the
/// answer goes back to this client under its own id (see `upstream::reader`). The upstream id
/// and the call's stream; or the error answer for the client.
pub(crate) fn send_upstream(
    up: &Arc<Upstream>,
    session: &Arc<Session>,
    view: &View<'_>,
    token: Option<&RawValue>,
) -> Result<(u64, mpsc::Receiver<Out>), Bytes> {
    let id = view.id.map_or("null", |i| i.get());
    let upstream_id = up.reserve_id();
    let own_id = upstream_id.to_string();
    // The upstream id is the request's id and, when it asks for progress, its token too.
    let (message, progress) = match (token, view.id) {
        (None, _) => (Some(view.with_id(&own_id)), None),
        (Some(token), Some(old)) => (
            jsonrpc::replace_many(view.text, &[(old, own_id.as_str()), (token, own_id.as_str())]),
            Some(token.get().into()),
        ),
        (Some(_), None) => (None, None),
    };
    let Some(message) = message.map(Bytes::from) else {
        return Err(jsonrpc::error_response(
            id,
            code::INVALID_PARAMS,
            "the progressToken could not be replaced in the request",
        ));
    };
    let (tx, rx) = mpsc::channel(crate::upstream::CALL_QUEUE);
    let route = Route::Client(ClientRoute {
        session: session.clone(),
        client_id: id.into(),
        reply: tx,
        progress,
        parked: false,
    });
    session.request_sent(id, up, upstream_id);
    if let Err(why) = up.send_request(upstream_id, message, route) {
        session.request_done(id);
        return Err(jsonrpc::error_response(
            id,
            code::SERVER_UNAVAILABLE,
            &format!("server {:?}: {why}", up.name()),
        ));
    }
    Ok((upstream_id, rx))
}

fn notification(gw: &Gateway, session: &Arc<Session>, view: &View<'_>) {
    match view.method() {
        // The gateway initialized each instance itself.
        "notifications/initialized" => {}
        "notifications/cancelled" => {
            #[derive(Deserialize)]
            struct Params<'a> {
                #[serde(borrow, rename = "requestId")]
                request_id: &'a RawValue,
                reason: Option<String>,
            }
            let Some(p) = view
                .params
                .and_then(|p| serde_json::from_str::<Params<'_>>(p.get()).ok())
            else {
                return;
            };
            if let Some((up, upstream_id)) = session.upstream_of(p.request_id.get()) {
                up.cancel(upstream_id, p.reason.as_deref().unwrap_or("cancelled by the client"));
                session.request_done(p.request_id.get());
            }
        }
        _ => {
            // Say it to the instances this session already talks to; none is started for it.
            let message = Bytes::copy_from_slice(view.text.as_bytes());
            let servers = match target(gw, session) {
                Ok(Target::One(s)) => vec![s],
                Ok(Target::All(all)) => all,
                Err(_) => return,
            };
            for server in servers {
                let shared = || {
                    gw.pool
                        .live()
                        .into_iter()
                        .find(|u| u.name() == server && u.lifetime() == crate::config::Lifetime::Shared)
                };
                if let Some(up) = session.instance(&server).or_else(shared) {
                    let _ = up.send(message.clone());
                }
            }
        }
    }
}

/// Where a session's requests go.
pub enum Target {
    /// One server.
    One(String),
    /// Several, aggregated (`/mcp` and stdio with more than one enabled server).
    All(Vec<String>),
}

/// Where `session`'s requests go.
pub fn target(gw: &Gateway, session: &Session) -> Result<Target, String> {
    match &session.mode {
        Mode::One(name) => Ok(Target::One(name.clone())),
        Mode::All => {
            let enabled = gw.pool.enabled();
            if enabled.is_empty() {
                return Err("no server is enabled".into());
            }
            Ok(Target::All(enabled))
        }
    }
}

/// How a new session at `endpoint` will be served: the server its path names, the one enabled
/// server, or all of them.
pub fn mode_for(gw: &Gateway, endpoint: &Endpoint) -> Result<Mode, String> {
    match endpoint {
        Endpoint::Server(name) => Ok(Mode::One(name.clone())),
        Endpoint::All => {
            let mut enabled = gw.pool.enabled();
            match enabled.len() {
                0 => Err("no server is enabled".into()),
                1 => Ok(Mode::One(enabled.remove(0))),
                _ => Ok(Mode::All),
            }
        }
    }
}

/// The JSON-RPC code for a failure to get an instance.
pub fn acquire_code(e: &AcquireError) -> i64 {
    match e {
        AcquireError::Unknown(_) | AcquireError::Disabled(_) => code::METHOD_NOT_FOUND,
        AcquireError::Cap(_) => code::CAP_REACHED,
        AcquireError::Unnamed { .. } => code::INVALID_PARAMS,
        AcquireError::Start(_)
        | AcquireError::Backoff { .. }
        | AcquireError::ShuttingDown
        | AcquireError::SessionEnded(_)
        | AcquireError::Reloaded(_) => code::SERVER_UNAVAILABLE,
    }
}

fn tool_name(params: Option<&RawValue>) -> Option<String> {
    #[derive(Deserialize)]
    struct P {
        name: String,
    }
    serde_json::from_str::<P>(params?.get()).ok().map(|p| p.name)
}

/// The client's progress token (a slice of the message), when the request asks for progress;
/// an error when params that mention one cannot be read (a token passed on untranslated could
/// name another client's request upstream).
fn progress_token(params: Option<&RawValue>) -> Result<Option<&RawValue>, ()> {
    let Some(p) = params else { return Ok(None) };
    // Cheap test first: almost no request asks for progress.
    if !p.get().contains("progressToken") {
        return Ok(None);
    }
    #[derive(Deserialize)]
    struct Meta<'a> {
        #[serde(borrow, rename = "progressToken")]
        token: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct P<'a> {
        #[serde(borrow, rename = "_meta")]
        meta: Option<Meta<'a>>,
    }
    let parsed: P<'_> = serde_json::from_str(p.get()).map_err(|_| ())?;
    Ok(parsed.meta.and_then(|m| m.token))
}

/// A `tools/list` answer with the tools the filter refuses taken out; why not, when it cannot be
/// read (nested past [`jsonrpc::MAX_DEPTH`], a string serde cannot hold): then nothing of it may
/// pass, or a tool the filter refuses would.
fn filter_tools(answer: Bytes, filter: &ToolFilter) -> Result<Bytes, String> {
    let mut v = serde_json::from_slice::<serde_json::Value>(&answer).map_err(|e| jsonrpc::why_not_json(&e, &answer))?;
    if let Some(tools) = v.pointer_mut("/result/tools").and_then(|t| t.as_array_mut()) {
        tools.retain(|t| t.get("name").and_then(|n| n.as_str()).is_some_and(|n| filter.allows(n)));
    }
    serde_json::to_vec(&v).map(Bytes::from).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_tokens_are_found_and_replaced_in_place() {
        let text = r#"{"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"x","arguments":{"n":1e400},"_meta":{"progressToken":"tok"}}}"#;
        let view = View::parse(text).unwrap();
        let token = progress_token(view.params).unwrap().unwrap();
        assert_eq!(token.get(), "\"tok\"");
        let out =
            String::from_utf8(jsonrpc::replace_many(text, &[(view.id.unwrap(), "9"), (token, "9")]).unwrap()).unwrap();
        assert_eq!(
            out,
            r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"x","arguments":{"n":1e400},"_meta":{"progressToken":9}}}"#
        );
        let plain = View::parse(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).unwrap();
        assert!(matches!(progress_token(plain.params), Ok(None)));
        // Never forwarded untranslated: found (and then spliced), or refused.
        let deep = format!(
            r#"{{"_meta":{{"progressToken":1}},"x":{}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let raw = RawValue::from_string(deep).unwrap();
        assert!(!matches!(progress_token(Some(&raw)), Ok(None)));
        let broken = RawValue::from_string(r#"{"_meta":{"progressToken":1},"x":"\ud800"}"#.into()).unwrap();
        assert!(!matches!(progress_token(Some(&broken)), Ok(None)));
    }

    #[test]
    fn tools_are_filtered() {
        let answer = Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a"},{"name":"b"}]}}"#);
        let f = ToolFilter {
            include: None,
            exclude: vec!["b".into()],
        };
        let out: serde_json::Value = serde_json::from_slice(&filter_tools(answer, &f).unwrap()).unwrap();
        assert_eq!(out["result"]["tools"].as_array().unwrap().len(), 1);
        // An answer too deep to read is refused whole, never passed on unfiltered.
        let deep = format!(
            r#"{{"jsonrpc":"2.0","id":1,"result":{{"tools":[{{"name":"b","x":{}1{}}}]}}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert_eq!(
            filter_tools(Bytes::from(deep), &f).unwrap_err(),
            "nested 204 deep, deeper than the 128 levels Tether reads"
        );
    }
}
