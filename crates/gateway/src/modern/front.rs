//! A 2026-07-28 client's POST, served by servers of the session-based revisions.
//!
//! Checked first (headers, envelope: [`super::envelope`]); the removed methods are unknown
//! (404); `server/discover` is answered from what the server declared (or, at `/mcp`, what the
//! gateway serves); `subscriptions/listen` opens a listen stream ([`super::listen`]); anything
//! else runs in a session of the gateway's own, as a session-based client's request would, and
//! its answer gets the revision's fields ([`super::stamp`]). A server's question during the
//! call ends the POST with an `InputRequiredResult`; the retry with `requestState` and
//! `inputResponses` picks the parked call up ([`super::parked`]).
//!
//! The session: one per request (a 2026-07-28 client keeps no state at the server), or, when
//! the client sends the session header (`Tether-Session` by default, a value of its choosing),
//! the lasting session of that name, opened with the same token at the same endpoint. A
//! `session` server needs the lasting one: it is what scopes the server's instance.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::envelope::{self, Envelope, Refusal};
use super::parked::{Asked, Parked, Parking};
use super::{code, stamp, REMOVED, REVISION};
use crate::gateway::Gateway;
use crate::jsonrpc::{self, Kind, View};
use crate::protocol::{self, ClientInit};
use crate::route::{self, Reply};
use crate::session::{Endpoint, Mode, Session};
use crate::upstream::Out;

/// What the front door answers.
pub enum Answer {
    /// A JSON body with this HTTP status.
    Json(u16, Bytes),
    /// An event stream.
    Events(mpsc::Receiver<Bytes>),
    /// 202, nothing.
    Accepted,
    /// 406: the request needs an event stream the client does not take.
    NotAcceptable(&'static str),
}

/// The revision's state at the front door: parked calls and named sessions.
#[derive(Default)]
pub struct Modern {
    /// Calls waiting for their client's answers.
    pub parked: Parking,
    /// Lasting sessions by (token tag, endpoint, the client's name for it) → session id.
    named: Mutex<HashMap<(u64, String, String), String>>,
}

/// One POST of a 2026-07-28 client. `header` reads a request header (lowercase name; an error
/// when sent twice); `events`: the client takes an event stream.
pub async fn post<'h>(
    gw: &Gateway,
    endpoint: Endpoint,
    tag: u64,
    header: impl Fn(&str) -> Result<Option<&'h str>, ()>,
    text: &str,
    events: bool,
) -> Answer {
    let view = match View::parse(text) {
        Ok(v) => v,
        Err(e) => return Answer::Json(400, jsonrpc::error_response("null", e.code(), &e.to_string())),
    };
    match view.kind {
        Kind::Request => {}
        // No notification means anything to a 2026-07-28 server over HTTP.
        Kind::Notification => return Answer::Accepted,
        Kind::Response => {
            return Answer::Json(
                400,
                jsonrpc::error_response(
                    "null",
                    jsonrpc::code::INVALID_REQUEST,
                    "a 2026-07-28 client sends no responses: answers to a server's questions go in the retried request's inputResponses",
                ),
            )
        }
    }
    let id = view.id.map_or("null", |i| i.get()).to_string();
    let method = view.method().to_string();
    let envelope = match envelope::check(&view, &header) {
        Ok(e) => e,
        Err(r) if REMOVED.contains(&method.as_str()) && r.code != code::HEADER_MISMATCH => {
            return removed(&id, &method)
        }
        Err(r) => return refused(&r, &id),
    };
    if REMOVED.contains(&method.as_str()) {
        return removed(&id, &method);
    }
    let key = gw.config().gateway.session_header.clone();
    let named = match header(&key) {
        Ok(v) => v.map(str::trim),
        Err(()) => {
            return refused(
                &Refusal::simple(
                    400,
                    jsonrpc::code::INVALID_REQUEST,
                    &format!("the {key} header is sent twice"),
                ),
                &id,
            )
        }
    };
    let session = match session_for(gw, &endpoint, tag, named, &envelope, &key) {
        Ok(s) => s,
        Err(r) => return refused(&r, &id),
    };
    match method.as_str() {
        "server/discover" => discover(gw, &session, &id).await,
        "subscriptions/listen" => {
            if !events {
                return Answer::NotAcceptable(
                    "subscriptions/listen answers with an event stream: Accept must include text/event-stream",
                );
            }
            super::listen::open(gw, session, &view, &id).await
        }
        _ => call(gw, session, &view, &id, envelope, events).await,
    }
}

fn removed(id: &str, method: &str) -> Answer {
    Answer::Json(
        404,
        Bytes::from(format!(
            r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{},"message":"Method not found: {method} is not part of protocol revision {REVISION}","data":{}}}}}"#,
            jsonrpc::code::METHOD_NOT_FOUND,
            serde_json::to_string(method).unwrap_or_default()
        )),
    )
}

fn refused(r: &Refusal, id: &str) -> Answer {
    Answer::Json(r.status, r.answer(id))
}

/// The session a request runs in: the lasting one the client named, or one of its own.
fn session_for(
    gw: &Gateway,
    endpoint: &Endpoint,
    tag: u64,
    named: Option<&str>,
    envelope: &Envelope,
    header: &str,
) -> Result<Arc<Session>, Refusal> {
    let mode =
        route::mode_for(gw, endpoint).map_err(|why| Refusal::simple(404, jsonrpc::code::METHOD_NOT_FOUND, &why))?;
    let client = client_init(envelope).map_err(|why| Refusal::simple(400, jsonrpc::code::INVALID_PARAMS, &why))?;
    let Some(name) = named else {
        let id = tether_supervisor::ids::random_id().map_err(|e| {
            Refusal::simple(
                500,
                jsonrpc::code::INTERNAL_ERROR,
                &format!("minting a session id: {e}"),
            )
        })?;
        let session = Session::new(
            id.clone(),
            format!("rq-{}", &id[..12]),
            endpoint.clone(),
            mode,
            tag,
            client,
            protocol::LATEST,
        );
        session.serve_one_request(header);
        return Ok(Arc::new(session));
    };
    if name.is_empty() || name.len() > 128 || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Refusal::simple(
            400,
            jsonrpc::code::INVALID_REQUEST,
            &format!("the {header} header must be 1 to 128 visible ASCII characters"),
        ));
    }
    let key = (tag, format!("{endpoint:?}"), name.to_string());
    let mut named = gw
        .modern
        .named
        .lock()
        .map_err(|_| Refusal::simple(500, jsonrpc::code::INTERNAL_ERROR, "a lock is poisoned"))?;
    if let Some(session) = named.get(&key).and_then(|id| gw.sessions.get(id)) {
        return Ok(session);
    }
    named.retain(|_, id| gw.sessions.get(id).is_some());
    if gw.sessions.len() >= gw.config().gateway.max_sessions {
        crate::metrics::cap_hit("max_sessions");
        return Err(Refusal::simple(
            400,
            jsonrpc::code::CAP_REACHED,
            &format!(
                "the gateway's max_sessions ({}) is reached",
                gw.config().gateway.max_sessions
            ),
        ));
    }
    let session = gw
        .sessions
        .create(endpoint.clone(), mode, tag, client, protocol::LATEST)
        .map_err(|e| {
            Refusal::simple(
                500,
                jsonrpc::code::INTERNAL_ERROR,
                &format!("minting a session id: {e}"),
            )
        })?;
    tracing::info!(session = %session.key, "session opened for a 2026-07-28 client by its {header} header");
    named.insert(key, session.id.clone());
    Ok(session)
}

/// The client as a session-based `initialize` would have declared it.
fn client_init(envelope: &Envelope) -> Result<ClientInit, String> {
    let info = envelope
        .client_info
        .as_ref()
        .map_or(r#"{"name":"unknown","version":"0"}"#, |i| i.get());
    let text = format!(
        r#"{{"protocolVersion":"{}","capabilities":{},"clientInfo":{info}}}"#,
        protocol::LATEST,
        envelope.capabilities.get()
    );
    let raw = RawValue::from_string(text).map_err(|e| e.to_string())?;
    ClientInit::parse(Some(&raw))
}

/// `server/discover`: what the server (or the gateway, at `/mcp`) serves.
async fn discover(gw: &Gateway, session: &Arc<Session>, id: &str) -> Answer {
    let (capabilities, server_info, instructions) = match &session.mode {
        Mode::All => {
            let init: Value = serde_json::from_str(&crate::aggregate::initialize_result(REVISION, &gw.pool.enabled()))
                .unwrap_or(Value::Null);
            (
                init["capabilities"].clone(),
                init["serverInfo"].clone(),
                init["instructions"].clone(),
            )
        }
        Mode::One(server) => match gw.pool.acquire(server, session).await {
            Ok(lease) => match lease.upstream.init() {
                Some(init) => (
                    serde_json::from_str(init.capabilities.get()).unwrap_or(Value::Null),
                    serde_json::from_str(init.server_info.get()).unwrap_or(Value::Null),
                    init.instructions
                        .as_ref()
                        .and_then(|i| serde_json::from_str(i.get()).ok())
                        .unwrap_or(Value::Null),
                ),
                None => {
                    return Answer::Json(
                        200,
                        jsonrpc::error_response(
                            id,
                            jsonrpc::code::SERVER_UNAVAILABLE,
                            &format!("server {server:?} has not finished starting"),
                        ),
                    )
                }
            },
            Err(e) => {
                return Answer::Json(
                    200,
                    jsonrpc::error_response(id, route::acquire_code(&e), &e.to_string()),
                )
            }
        },
    };
    let mut result = json!({
        "supportedVersions": [REVISION],
        "capabilities": capabilities,
        "cacheScope": "private",
        "ttlMs": 0,
        "resultType": "complete",
        "_meta": {"io.modelcontextprotocol/serverInfo": server_info},
    });
    if !instructions.is_null() {
        result["instructions"] = instructions;
    }
    Answer::Json(200, jsonrpc::result_response(id, &result.to_string()))
}

/// What a retry carries.
#[derive(Deserialize)]
struct Retry<'a> {
    #[serde(rename = "requestState")]
    state: Option<String>,
    #[serde(borrow, rename = "inputResponses")]
    responses: Option<HashMap<String, &'a RawValue>>,
}

/// Any other request: served in the session; a retry picks its parked call up.
async fn call(
    gw: &Gateway,
    session: Arc<Session>,
    view: &View<'_>,
    id: &str,
    envelope: Envelope,
    events: bool,
) -> Answer {
    let retry: Retry<'_> = view
        .params
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .unwrap_or(Retry {
            state: None,
            responses: None,
        });
    let given: HashMap<String, String> = retry
        .responses
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.get().to_string()))
        .collect();
    if let Some(state) = retry.state {
        let name = name_of(view);
        let mut parked = match gw
            .modern
            .parked
            .take(&state, session.token_tag, view.method(), name.as_deref())
        {
            Ok(p) => p,
            Err(why) => {
                let reason = match why {
                    super::parked::Refused::Unknown => "invalid_request_state",
                    super::parked::Refused::Mismatch => "request_state_of_another_request",
                };
                let mut r = Refusal::simple(400, jsonrpc::code::INVALID_PARAMS, "Invalid or expired requestState");
                r.data = Some(format!(r#"{{"reason":"{reason}"}}"#));
                return refused(&r, id);
            }
        };
        parked.given = given;
        parked.log_level = envelope.log_level;
        let asked = std::mem::take(&mut parked.asked);
        let unanswered = answer_from_given(gw, &mut parked, asked).await;
        if !unanswered.is_empty() {
            // Asked again: the answers it did give are delivered.
            parked.asked = unanswered;
            return input_required(gw, parked, id);
        }
        return drive(gw.arc(), parked, id.to_string(), events).await;
    }
    let method = view.method().to_string();
    match route::dispatch(gw, &session, view).await {
        Reply::Accepted => Answer::Accepted,
        Reply::Now(answer) => {
            let info = server_info(gw, &session);
            let answer = stamp::answer(&answer, id, &method, info.as_deref(), uri_of(view).as_deref());
            Answer::Json(stamp::status(&answer), answer)
        }
        Reply::Later(call) => {
            let parked = Parked {
                call,
                session,
                asked: Vec::new(),
                given,
                name: name_of(view),
                uri: uri_of(view),
                method,
                log_level: envelope.log_level,
                since: std::time::Instant::now(),
            };
            drive(gw.arc(), parked, id.to_string(), events).await
        }
    }
}

/// The name (tools, prompts) or URI (resources) a request names, if any: what a retry must
/// name again.
fn name_of(view: &View<'_>) -> Option<String> {
    let said = envelope::said(view.params);
    said.name.or(said.uri)
}

/// The `uri` a request names, if any.
fn uri_of(view: &View<'_>) -> Option<String> {
    envelope::said(view.params).uri
}

/// The serverInfo of a session's one server, or of the gateway.
fn server_info(gw: &Gateway, session: &Session) -> Option<String> {
    match &session.mode {
        Mode::One(server) => gw
            .pool
            .live()
            .into_iter()
            .find(|u| u.name() == server)
            .and_then(|u| u.init().map(|i| i.server_info.get().to_string())),
        Mode::All => Some(json!({"name": "tether", "version": env!("CARGO_PKG_VERSION")}).to_string()),
    }
}

/// Carries a call to its end for the POST answering `id`: what the server says on the way
/// (progress; logs at the client's level), then its answer, or an `InputRequiredResult` when the
/// server asks something. The answer is plain JSON (with the revision's HTTP status for an
/// error) unless something came before it and the client takes an event stream.
async fn drive(gw: Option<Arc<Gateway>>, parked: Parked, id: String, events: bool) -> Answer {
    let Some(gw) = gw else {
        return Answer::Json(
            200,
            jsonrpc::error_response(&id, jsonrpc::code::INTERNAL_ERROR, "the gateway is stopping"),
        );
    };
    let mut d = Driving {
        gw,
        parked: Some(parked),
        id,
        queue: Default::default(),
    };
    loop {
        match d.next().await {
            Step::Say(first) if events => {
                let (tx, rx) = mpsc::channel::<Bytes>(crate::upstream::CALL_QUEUE);
                tokio::spawn(async move {
                    let mut next = Step::Say(first);
                    loop {
                        match next {
                            Step::Say(m) => {
                                if tx.send(crate::front::body::event(&m)).await.is_err() {
                                    return;
                                }
                            }
                            Step::Done(m) => {
                                let _ = tx.send(crate::front::body::event(&m)).await;
                                return;
                            }
                            Step::Gone => return,
                        }
                        next = d.next().await;
                    }
                });
                return Answer::Events(rx);
            }
            Step::Say(_) => {}
            Step::Done(m) => return Answer::Json(stamp::status(&m), m),
            Step::Gone => {
                return Answer::Json(
                    200,
                    jsonrpc::error_response(&d.id, jsonrpc::code::INTERNAL_ERROR, "the call ended without an answer"),
                )
            }
        }
    }
}

/// A call being carried for one POST.
struct Driving {
    gw: Arc<Gateway>,
    /// The call, until it is answered or parked.
    parked: Option<Parked>,
    /// The POST's request id.
    id: String,
    /// What is to be said next, before the call goes on.
    queue: std::collections::VecDeque<Step>,
}

/// What a call says next.
enum Step {
    /// Something for the client on the way (progress, a log).
    Say(Bytes),
    /// The last thing: the answer, or the questions (the call parked).
    Done(Bytes),
    /// Nothing more.
    Gone,
}

impl Driving {
    async fn next(&mut self) -> Step {
        if let Some(step) = self.queue.pop_front() {
            return step;
        }
        loop {
            let Some(parked) = self.parked.as_mut() else {
                return Step::Gone;
            };
            match parked.call.next().await {
                Some(Out::Interim(m)) => {
                    let Ok(text) = std::str::from_utf8(&m) else { continue };
                    let Ok(v) = View::parse(text) else { continue };
                    if v.kind != Kind::Request {
                        if worth_saying(&v, parked.log_level.as_deref()) {
                            return Step::Say(m);
                        }
                        continue;
                    }
                    let mut asked = vec![question(&v)];
                    // Questions the server asks together go out together: what it says within a
                    // moment of the first joins them (bounded from the first, and by the call's
                    // deadline); what else it says meanwhile is said before them.
                    let until = (tokio::time::Instant::now() + TOGETHER).min(parked.call.deadline());
                    while let Ok(Some(more)) = tokio::time::timeout_at(until, parked.call.next_interim()).await {
                        let Some(q) = std::str::from_utf8(&more).ok().and_then(|t| View::parse(t).ok()) else {
                            continue;
                        };
                        if q.kind == Kind::Request {
                            asked.push(question(&q));
                        } else if worth_saying(&q, parked.log_level.as_deref()) {
                            self.queue.push_back(Step::Say(more.clone()));
                        }
                    }
                    let unanswered = answer_from_given(&self.gw, parked, asked).await;
                    if unanswered.is_empty() {
                        if let Some(step) = self.queue.pop_front() {
                            return step;
                        }
                        continue;
                    }
                    parked.asked = unanswered;
                    let Some(parked) = self.parked.take() else {
                        return Step::Gone;
                    };
                    let done = match input_required(&self.gw, parked, &self.id) {
                        Answer::Json(_, b) => Step::Done(b),
                        _ => Step::Gone,
                    };
                    self.queue.push_back(done);
                    return self.queue.pop_front().unwrap_or(Step::Gone);
                }
                Some(Out::Answer(a)) => {
                    let Some(parked) = self.parked.take() else {
                        return Step::Gone;
                    };
                    // The instance that answered says who it is; across servers, the gateway.
                    let info = match &parked.session.mode {
                        Mode::One(_) => parked.call.server_info(),
                        Mode::All => server_info(&self.gw, &parked.session),
                    };
                    return Step::Done(stamp::answer(
                        &a,
                        &self.id,
                        &parked.method,
                        info.as_deref(),
                        parked.uri.as_deref(),
                    ));
                }
                None => {
                    self.parked = None;
                    return Step::Gone;
                }
            }
        }
    }
}

/// Whether a server's notification during a call is for the client: progress always, a log at
/// or above its level, nothing else.
fn worth_saying(v: &View<'_>, log_level: Option<&str>) -> bool {
    match v.method() {
        "notifications/progress" => true,
        "notifications/message" => {
            let level = v
                .params
                .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
                .and_then(|p| p["level"].as_str().map(str::to_string))
                .unwrap_or_default();
            envelope::wants_log(log_level, &level)
        }
        _ => false,
    }
}

/// How long after a server's question further questions are waited for, to be asked in the
/// same `InputRequiredResult`.
const TOGETHER: std::time::Duration = std::time::Duration::from_millis(20);

/// A server's request as an entry of `inputRequests`: keyed by the name the server gave it in
/// `_meta["io.tether/inputKey"]` (taken out), else by the id the gateway gave it.
fn question(v: &View<'_>) -> Asked {
    let id: String = v.id.map(|i| i.get().to_string()).unwrap_or_default();
    let mut params = v.params.and_then(|p| serde_json::from_str::<Value>(p.get()).ok());
    let named = params
        .as_mut()
        .and_then(|p| p.get_mut("_meta"))
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove("io.tether/inputKey"))
        .and_then(|k| k.as_str().map(str::to_string));
    if let Some(p) = params.as_mut().and_then(Value::as_object_mut) {
        if p.get("_meta")
            .is_some_and(|m| m.as_object().is_some_and(|m| m.is_empty()))
        {
            p.remove("_meta");
        }
    }
    let key = named.unwrap_or_else(|| serde_json::from_str::<String>(&id).unwrap_or_else(|_| id.clone()));
    let mut question = json!({"method": v.method()});
    if let Some(p) = params.filter(|p| p.as_object().is_some_and(|o| !o.is_empty())) {
        question["params"] = p;
    }
    Asked { key, id, question }
}

/// Delivers to the server the answers the client already gave (by key) to the questions
/// `asked`; returns those still without an answer.
async fn answer_from_given(gw: &Gateway, parked: &mut Parked, asked: Vec<Asked>) -> Vec<Asked> {
    let mut unanswered = Vec::new();
    for a in asked {
        match parked.given.remove(&a.key) {
            Some(result) => {
                let message = format!(r#"{{"jsonrpc":"2.0","id":{},"result":{result}}}"#, a.id);
                match View::parse(&message) {
                    Ok(answer) => {
                        route::dispatch(gw, &parked.session, &answer).await;
                    }
                    Err(_) => unanswered.push(a),
                }
            }
            None => unanswered.push(a),
        }
    }
    unanswered
}

/// Parks the call and answers its POST with the questions asked.
fn input_required(gw: &Gateway, parked: Parked, id: &str) -> Answer {
    let mut requests = serde_json::Map::new();
    for a in &parked.asked {
        requests.insert(a.key.clone(), a.question.clone());
    }
    let Some(state) = gw.modern.parked.park(parked) else {
        return Answer::Json(
            200,
            jsonrpc::error_response(id, jsonrpc::code::INTERNAL_ERROR, "no random state could be made"),
        );
    };
    let result = json!({
        "inputRequests": requests,
        "requestState": state,
        "resultType": "input_required",
    });
    Answer::Json(200, jsonrpc::result_response(id, &result.to_string()))
}

impl Refusal {
    /// A refusal with no data.
    pub fn simple(status: u16, code: i64, message: &str) -> Refusal {
        Refusal {
            status,
            code,
            message: message.to_string(),
            data: None,
        }
    }
}
