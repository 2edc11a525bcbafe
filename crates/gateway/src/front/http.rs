//! The streamable-HTTP front door: `/mcp/{server}` for one server, `/mcp` for all of them.
//!
//! - `POST`: one JSON-RPC message (or a batch, for 2025-03-26 clients). An `initialize` opens
//!   a session and its answer carries `Mcp-Session-Id`; any other message needs that header
//!   (400 without it, 404 for a session that is unknown, ended, opened with another token or at
//!   another endpoint). Notifications and answers get 202. A request is answered as JSON when
//!   its answer comes first, or as an event stream when the server says something during the
//!   call (progress, logging, a sampling request), ending with the answer.
//! - `GET`: the session's event stream for messages that answer no request.
//! - `DELETE`: ends the session and its instances.
//!
//! Every request first passes the [`guard`](super::guard): Host, Origin, bearer token.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::mpsc;

use super::body::{self, Body};
use super::guard::{self, Refusal};
use crate::config::ResponseMode;
use crate::gateway::Gateway;
use crate::jsonrpc::{self, code, Kind, View};
use crate::protocol;
use crate::route::{self, Reply};
use crate::session::{Endpoint, Session};
use crate::upstream::Out;

/// The session header.
const SESSION_ID: &str = "mcp-session-id";
/// The protocol revision header (2025-06-18 and later).
const PROTOCOL_VERSION: &str = "mcp-protocol-version";
/// How long a call's answer is waited for before its event stream's headers go out.
const HEAD_START: std::time::Duration = std::time::Duration::from_millis(200);

/// Answers one HTTP request.
pub async fn handle(gw: Arc<Gateway>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let _busy = gw.busy();
    let cfg = gw.config();
    let origin = req
        .headers()
        .get(hyper::header::ORIGIN)
        .filter(|o| o.to_str().is_ok_and(|o| guard::origin_allowed(&cfg.gateway, o)))
        .cloned();
    let mut response = answer(&gw, req).await;
    // A page of an allowed origin may read the answer, and the session id in it.
    if let Some(origin) = origin {
        let h = response.headers_mut();
        h.insert(hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(hyper::header::VARY, HeaderValue::from_static("Origin"));
        h.insert(
            hyper::header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("mcp-session-id"),
        );
    }
    Ok(response)
}

async fn answer(gw: &Gateway, req: Request<Incoming>) -> Response<Body> {
    let cfg = gw.config();
    let headers = req.headers();
    // A Host or Origin that is not text cannot be checked: refused, never taken as absent.
    let text = |name: hyper::header::HeaderName| match headers.get(&name) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| name),
    };
    let (host, origin, authorization) = match (
        text(hyper::header::HOST),
        text(hyper::header::ORIGIN),
        text(hyper::header::AUTHORIZATION),
    ) {
        (Ok(h), Ok(o), Ok(a)) => (h, o, a),
        (Err(name), _, _) | (_, Err(name), _) | (_, _, Err(name)) => {
            return plain(StatusCode::BAD_REQUEST, &format!("the {name} header is not text"));
        }
    };
    // A browser's preflight carries no credentials: Host and Origin are checked, not the token.
    let preflight = req.method() == Method::OPTIONS;
    let authorization = if preflight { None } else { authorization };
    let token = match guard::check(&cfg.gateway, host, origin, authorization) {
        Ok(t) => t.map(str::to_string),
        Err(Refusal::Unauthorized) if preflight => None,
        Err(Refusal::Forbidden(why)) => return plain(StatusCode::FORBIDDEN, &why),
        Err(Refusal::Unauthorized) => {
            let mut r = plain(
                StatusCode::UNAUTHORIZED,
                "a bearer token is required (Authorization: Bearer …)",
            );
            r.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tether\""),
            );
            return r;
        }
    };
    if preflight {
        return preflight_answer();
    }
    let endpoint = match endpoint(gw, req.uri().path()) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let tag = gw.token_tag(token.as_deref());
    let modern = header(req.headers(), PROTOCOL_VERSION).map(str::trim) == Some(crate::modern::REVISION);
    if modern && *req.method() != Method::POST {
        // Protocol revision 2026-07-28 has no GET stream and no session to DELETE.
        let mut r = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "protocol revision 2026-07-28 uses POST only",
        );
        r.headers_mut().insert(ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    match *req.method() {
        Method::POST => post(gw, endpoint, tag, req).await,
        Method::GET => get(gw, &endpoint, tag, req.headers()),
        Method::DELETE => delete(gw, &endpoint, tag, req.headers()),
        _ => {
            let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "use POST, GET or DELETE");
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, POST, DELETE, OPTIONS"));
            r
        }
    }
}

/// The answer to a CORS preflight (`OPTIONS`) that passed the guard.
fn preflight_answer() -> Response<Body> {
    let mut r = empty(StatusCode::NO_CONTENT);
    let h = r.headers_mut();
    h.insert(ALLOW, HeaderValue::from_static("GET, POST, DELETE, OPTIONS"));
    h.insert(
        hyper::header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
    );
    h.insert(
        hyper::header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(
            "content-type, accept, authorization, mcp-session-id, mcp-protocol-version, last-event-id, mcp-method, mcp-name, tether-session",
        ),
    );
    h.insert(hyper::header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    r
}

/// `/mcp` or `/mcp/{server}` (percent-decoded), or the response that refuses the path.
#[allow(clippy::result_large_err)] // The error is the response itself.
fn endpoint(gw: &Gateway, path: &str) -> Result<Endpoint, Response<Body>> {
    let path = path.trim_end_matches('/');
    if path == "/mcp" {
        return Ok(Endpoint::All);
    }
    let Some(raw) = path.strip_prefix("/mcp/") else {
        return Err(plain(
            StatusCode::NOT_FOUND,
            "not found: the MCP endpoints are /mcp and /mcp/{server}",
        ));
    };
    let name = percent_decode(raw).ok_or_else(|| {
        plain(
            StatusCode::BAD_REQUEST,
            "the server name in the path is not valid percent-encoded UTF-8",
        )
    })?;
    match gw.pool.config(&name) {
        Some(c) if c.enabled => Ok(Endpoint::Server(name)),
        Some(_) => Err(json_error(
            StatusCode::NOT_FOUND,
            "null",
            code::METHOD_NOT_FOUND,
            &format!("server {name:?} is disabled (enabled = false)"),
        )),
        None => Err(json_error(
            StatusCode::NOT_FOUND,
            "null",
            code::METHOD_NOT_FOUND,
            &format!(
                "no server named {name:?} is configured (configured: {})",
                gw.pool.enabled().join(", ")
            ),
        )),
    }
}

async fn post(gw: &Gateway, endpoint: Endpoint, tag: u64, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    if let Some(ct) = header(&headers, CONTENT_TYPE.as_str()) {
        if !ct.to_ascii_lowercase().starts_with("application/json") {
            return plain(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!("Content-Type {ct:?}: expected application/json"),
            );
        }
    }
    let accept = Accepts::of(&headers);
    if !accept.json && !accept.events {
        return plain(
            StatusCode::NOT_ACCEPTABLE,
            "Accept must include application/json or text/event-stream",
        );
    }
    let version = header(&headers, PROTOCOL_VERSION).map(str::trim);
    let modern = version == Some(crate::modern::REVISION);
    let max = gw.config().gateway.max_message_size;
    let body = tokio::time::timeout(
        super::REQUEST_TIMEOUT,
        http_body_util::Limited::new(body, max).collect(),
    );
    let Ok(collected) = body.await else {
        return plain(
            StatusCode::REQUEST_TIMEOUT,
            &format!(
                "the request body did not arrive within {}",
                humantime::format_duration(super::REQUEST_TIMEOUT)
            ),
        );
    };
    let bytes = match collected {
        Ok(b) => b.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "null",
                code::TOO_LARGE,
                &format!("the message is larger than max_message_size ({max} bytes)"),
            )
        }
        Err(e) => return plain(StatusCode::BAD_REQUEST, &format!("reading the request body: {e}")),
    };
    let text = match jsonrpc::utf8(&bytes) {
        Ok(t) => t,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, "null", e.code(), &e.to_string()),
    };
    // A version this gateway does not speak: a 2026-07-28-style request (its envelope) gets that
    // revision's answer, naming the versions there are; any other, the same in a plain error.
    let unknown = version.filter(|v| !modern && !protocol::is_supported(v));
    if modern || unknown.is_some_and(|_| text.contains("io.modelcontextprotocol/protocolVersion")) {
        if jsonrpc::is_batch(text) {
            return json_error(
                StatusCode::BAD_REQUEST,
                "null",
                code::INVALID_REQUEST,
                "protocol revision 2026-07-28 has no batches",
            );
        }
        let one = |name: &str| {
            let mut values = headers.get_all(name).iter();
            match (values.next(), values.next()) {
                (None, _) => Ok(None),
                (Some(v), None) => v.to_str().map(Some).map_err(|_| ()),
                _ => Err(()),
            }
        };
        let answer = crate::modern::front::post(gw, endpoint, tag, one, text, accept.events).await;
        return modern_response(answer);
    }
    if let Some(v) = unknown {
        let mut supported: Vec<&str> = vec![crate::modern::REVISION];
        supported.extend(protocol::SUPPORTED.iter().rev());
        let message = format!(
            "MCP-Protocol-Version {v:?} is not supported (supported: {})",
            supported.join(", ")
        );
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":null,"error":{{"code":{},"message":{},"data":{}}}}}"#,
            crate::modern::code::UNSUPPORTED_VERSION,
            serde_json::to_string(&message).unwrap_or_default(),
            serde_json::json!({"supported": supported, "requested": v})
        );
        return json(StatusCode::BAD_REQUEST, Bytes::from(body));
    }
    if jsonrpc::is_batch(text) {
        return batch(gw, &endpoint, tag, &headers, text).await;
    }
    let view = match View::parse(text) {
        Ok(v) => v,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, "null", e.code(), &e.to_string()),
    };
    let id = view.id.map_or("null", |i| i.get());
    if view.kind == Kind::Request && view.method() == "initialize" {
        return match crate::handshake::open(gw, endpoint, tag, &view).await {
            Ok((session, answer)) => {
                let mut r = json(StatusCode::OK, answer);
                if let Ok(v) = HeaderValue::from_str(&session.id) {
                    r.headers_mut().insert(SESSION_ID, v);
                }
                r
            }
            Err(answer) => json(StatusCode::OK, answer),
        };
    }
    let session = match session_of(gw, &endpoint, tag, &headers, id) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match route::dispatch(gw, &session, &view).await {
        Reply::Accepted => empty(StatusCode::ACCEPTED),
        Reply::Now(answer) => answer_now(answer, accept, gw.config().gateway.response_mode),
        Reply::Later(call) => answer_call(call, accept, gw.config().gateway.response_mode).await,
    }
}

/// A 2026-07-28 answer as an HTTP response.
fn modern_response(answer: crate::modern::front::Answer) -> Response<Body> {
    use crate::modern::front::Answer;
    match answer {
        Answer::Json(status, body) => json(StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body),
        Answer::Events(rx) => events(rx),
        Answer::Accepted => empty(StatusCode::ACCEPTED),
        Answer::NotAcceptable(why) => plain(StatusCode::NOT_ACCEPTABLE, why),
    }
}

/// An answer the gateway has at once (its own, or an aggregated listing): in the `stream`
/// response mode an event stream of that one answer for a client that takes one, as every
/// other request's answer is, so a client sees one behaviour whoever answers; else JSON.
fn answer_now(answer: Bytes, accept: Accepts, mode: ResponseMode) -> Response<Body> {
    if !(accept.events && mode == ResponseMode::Stream) {
        return json(StatusCode::OK, answer);
    }
    let mut r = Response::new(Body::full(body::event(&answer)));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    r.headers_mut()
        .insert(hyper::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// A batch (2025-03-26 clients): each message dispatched, the answers in one JSON array.
async fn batch(gw: &Gateway, endpoint: &Endpoint, tag: u64, headers: &HeaderMap, text: &str) -> Response<Body> {
    let items = match jsonrpc::split_batch(text) {
        Ok(i) => i,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, "null", e.code(), &e.to_string()),
    };
    let session = match session_of(gw, endpoint, tag, headers, "null") {
        Ok(s) => s,
        Err(r) => return r,
    };
    if session.version != "2025-03-26" {
        return json_error(
            StatusCode::BAD_REQUEST,
            "null",
            code::INVALID_REQUEST,
            &format!(
                "JSON-RPC batches are not part of protocol revision {} (only 2025-03-26)",
                session.version
            ),
        );
    }
    let mut calls = Vec::new();
    let mut answers: Vec<Bytes> = Vec::new();
    for item in items {
        match View::parse(item.get()) {
            Err(e) => answers.push(jsonrpc::error_response("null", e.code(), &e.to_string())),
            Ok(view) if view.method() == "initialize" => answers.push(jsonrpc::error_response(
                view.id.map_or("null", |i| i.get()),
                code::INVALID_REQUEST,
                "initialize cannot be part of a batch",
            )),
            Ok(view) => match route::dispatch(gw, &session, &view).await {
                Reply::Accepted => {}
                Reply::Now(a) => answers.push(a),
                Reply::Later(call) => calls.push(call),
            },
        }
    }
    for mut call in calls {
        while let Some(out) = call.next().await {
            match out {
                Out::Interim(m) => {
                    if !session.push(m.clone()) {
                        session.undeliverable(&m);
                    }
                }
                Out::Answer(a) => answers.push(a),
            }
        }
    }
    if answers.is_empty() {
        return empty(StatusCode::ACCEPTED);
    }
    let mut out = Vec::with_capacity(answers.iter().map(Bytes::len).sum::<usize>() + answers.len() + 2);
    out.push(b'[');
    for (i, a) in answers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(a);
    }
    out.push(b']');
    json(StatusCode::OK, Bytes::from(out))
}

/// The answer to a call: an event stream of what the server says, ending with the answer (in
/// the `json` response mode, JSON when the answer comes first; in the `stream` mode, an answer
/// within [`HEAD_START`] is sent as a whole stream of one event); for a client that takes only
/// JSON, the answer alone, what was said during the call going to the session's GET stream.
async fn answer_call(mut call: route::Call, accept: Accepts, mode: ResponseMode) -> Response<Body> {
    if accept.events && mode == ResponseMode::Stream {
        // An answer that comes at once goes out whole, one event with its length, in one
        // write; a stream (a task, chunked framing, two more writes) only for a call that
        // says something first or takes its time.
        return match tokio::time::timeout(HEAD_START, call.next()).await {
            Ok(Some(Out::Answer(a))) => answer_now(a, accept, mode),
            Ok(Some(Out::Interim(m))) => stream_call(call, Some(m)),
            Ok(None) => plain(StatusCode::INTERNAL_SERVER_ERROR, "the call ended without an answer"),
            Err(_) => stream_call(call, None),
        };
    }
    let first = match call.next().await {
        Some(Out::Answer(a)) => return json(StatusCode::OK, a),
        Some(Out::Interim(m)) => m,
        None => return plain(StatusCode::INTERNAL_SERVER_ERROR, "the call ended without an answer"),
    };
    if !accept.events {
        // What the server says during the call goes on the session's GET stream, if open (a
        // server's request that cannot be delivered is refused to the server).
        let push = |call: &route::Call, m: Bytes| {
            if !call.session().push(m.clone()) {
                call.session().undeliverable(&m);
            }
        };
        push(&call, first);
        loop {
            match call.next().await {
                Some(Out::Interim(m)) => push(&call, m),
                Some(Out::Answer(a)) => return json(StatusCode::OK, a),
                None => return plain(StatusCode::INTERNAL_SERVER_ERROR, "the call ended without an answer"),
            }
        }
    }
    stream_call(call, Some(first))
}

/// An event stream of the call's messages (after `first`, when one was already taken), ending
/// with its answer.
fn stream_call(mut call: route::Call, first: Option<Bytes>) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        if let Some(first) = first {
            if tx.send(body::event(&first)).await.is_err() {
                return;
            }
        }
        loop {
            // A client that goes away ends the call at once (the Call's drop cancels it
            // upstream, and ends a request's own instance), not when the server answers.
            let out = tokio::select! {
                out = call.next() => out,
                _ = tx.closed() => return,
            };
            let Some(out) = out else { return };
            let (m, last) = match out {
                Out::Interim(m) => (m, false),
                Out::Answer(a) => (a, true),
            };
            if tx.send(body::event(&m)).await.is_err() || last {
                return;
            }
        }
    });
    events(rx)
}

fn get(gw: &Gateway, endpoint: &Endpoint, tag: u64, headers: &HeaderMap) -> Response<Body> {
    if !Accepts::of(headers).events {
        return plain(
            StatusCode::NOT_ACCEPTABLE,
            "the GET stream is text/event-stream: Accept must include it",
        );
    }
    let session = match session_of(gw, endpoint, tag, headers, "null") {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (tx, mut messages) = mpsc::channel::<Bytes>(crate::session::STREAM_QUEUE);
    session.set_stream(tx);
    let (out, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut keepalive = tokio::time::interval(body::KEEPALIVE);
        keepalive.tick().await;
        loop {
            let frame = tokio::select! {
                m = messages.recv() => match m {
                    Some(m) => body::event(&m),
                    None => return,
                },
                _ = keepalive.tick() => body::keepalive(),
            };
            if out.send(frame).await.is_err() {
                return;
            }
        }
    });
    events(rx)
}

fn delete(gw: &Gateway, endpoint: &Endpoint, tag: u64, headers: &HeaderMap) -> Response<Body> {
    let session = match session_of(gw, endpoint, tag, headers, "null") {
        Ok(s) => s,
        Err(r) => return r,
    };
    gw.end_session(&session, crate::cause::Cause::Client, "the client sent DELETE");
    empty(StatusCode::OK)
}

/// The session a request names, or the response that refuses it.
#[allow(clippy::result_large_err)] // The error is the response itself.
fn session_of(
    gw: &Gateway,
    endpoint: &Endpoint,
    tag: u64,
    headers: &HeaderMap,
    id: &str,
) -> Result<Arc<Session>, Response<Body>> {
    let Some(sid) = header(headers, SESSION_ID) else {
        return Err(json_error(
            StatusCode::BAD_REQUEST,
            id,
            code::INVALID_REQUEST,
            "no Mcp-Session-Id header: send initialize first, then its Mcp-Session-Id with every request",
        ));
    };
    match gw.sessions.get(sid) {
        Some(s) if s.token_tag == tag && s.endpoint == *endpoint && !s.is_ended() => Ok(s),
        _ => Err(json_error(
            StatusCode::NOT_FOUND,
            id,
            code::INVALID_REQUEST,
            "session not found (it ended, or it belongs to another endpoint or token): send initialize again",
        )),
    }
}

/// What a client accepts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Accepts {
    pub(crate) json: bool,
    pub(crate) events: bool,
}

impl Accepts {
    pub(crate) fn of(headers: &HeaderMap) -> Accepts {
        let mut a = Accepts {
            json: false,
            events: false,
        };
        let values = headers.get_all(ACCEPT);
        let mut any = false;
        for v in values.iter().filter_map(|v| v.to_str().ok()) {
            any = true;
            for item in v.split(',') {
                match item
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
                    .as_str()
                {
                    "application/json" => a.json = true,
                    "text/event-stream" => a.events = true,
                    "*/*" | "application/*" => {
                        a.json = true;
                        a.events = true;
                    }
                    _ => {}
                }
            }
        }
        if !any {
            // No Accept header at all: anything goes.
            a = Accepts {
                json: true,
                events: true,
            };
        }
        a
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            // Two hex digits: `u8::from_str_radix` alone would also take `+f`.
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn json(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut r = Response::new(Body::full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn json_error(status: StatusCode, id: &str, code: i64, message: &str) -> Response<Body> {
    json(status, jsonrpc::error_response(id, code, message))
}

fn events(rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    let mut r = Response::new(Body::Events(rx));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    r.headers_mut()
        .insert(hyper::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn plain(status: StatusCode, message: &str) -> Response<Body> {
    let mut r = Response::new(Body::full(format!("{message}\n")));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("my%20server").as_deref(), Some("my server"));
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(percent_decode("%C3%A9").as_deref(), Some("é"));
    }

    /// Found by fuzzing (http_front): `%+0` decoded to a NUL byte, as `u8::from_str_radix`
    /// takes a sign.
    #[test]
    fn an_escape_is_two_hex_digits() {
        assert_eq!(percent_decode("my%+0serv\u{5}r"), None);
        assert_eq!(percent_decode("%+f"), None);
        assert_eq!(percent_decode("%-1"), None);
        assert_eq!(percent_decode("% f"), None);
    }

    #[test]
    fn accept_headers() {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_static("application/json, text/event-stream"));
        let a = Accepts::of(&h);
        assert!(a.json && a.events);
        h.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let a = Accepts::of(&h);
        assert!(a.json && !a.events);
        let a = Accepts::of(&HeaderMap::new());
        assert!(a.json && a.events);
    }
}
