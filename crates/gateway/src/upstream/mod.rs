//! An upstream: one running instance of a configured server, and the gateway's MCP session
//! with it.
//!
//! An instance is a shim (`tether wrap --lifeline-fd 3 …`) started through
//! `tether_supervisor::launch` ([`start`]); the gateway holds its lifeline and the server's
//! stdin and stdout. (Or it is a session with a server over HTTP ([`http`]): the same routing,
//! with POSTs for the pipes and a DELETE for the lifeline.) One task writes queued messages to stdin, one reads lines from stdout and
//! routes each ([`reader`]): an answer to the request whose upstream id it carries, a
//! notification or a request to the client it belongs to. Requests get ids of the gateway's
//! own (a counter per instance), so any number of clients can share one instance with the same
//! ids of theirs. Ending an instance is dropping its lifeline: the shim ends the whole tree.

pub mod http;
pub mod modern;
mod reader;
#[cfg(test)]
mod remap_props;
mod start;
mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tether_supervisor::launch::Lifeline;
use tokio::sync::{mpsc, oneshot, watch};

use crate::cause::Cause;
use crate::config::{Lifetime, ServerConfig};
use crate::protocol::ServerInit;
use crate::session::Session;

pub use start::{spawn, StartError, StartOptions, OUTBOX};

/// Most messages waiting on one call's stream; past it, interim messages are dropped.
pub const CALL_QUEUE: usize = 256;

/// Hands a message to a call's stream without ever blocking the reader task (which serves every
/// client of the instance): an interim message that finds the stream full is not delivered, the
/// client not keeping up (the caller may send it another way, or count it dropped, see
/// [`crate::dropped`]); an answer waits in a task of its own.
pub fn deliver(reply: &mpsc::Sender<Out>, out: Out) -> Delivery {
    match reply.try_send(out) {
        Ok(()) => Delivery::Sent,
        Err(mpsc::error::TrySendError::Full(Out::Answer(answer))) => {
            let reply = reply.clone();
            tokio::spawn(async move {
                let _ = reply.send(Out::Answer(answer)).await;
            });
            Delivery::Sent
        }
        Err(mpsc::error::TrySendError::Full(Out::Interim(_))) => Delivery::Full,
        Err(mpsc::error::TrySendError::Closed(_)) => Delivery::Closed,
    }
}

/// What became of a message handed to a call's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// On the stream (an answer: on its way).
    Sent,
    /// Not sent: the stream was full ([`CALL_QUEUE`] messages waiting).
    Full,
    /// Not sent: the call is over.
    Closed,
}

/// Where an upstream's answer goes.
pub enum Route {
    /// To a client.
    Client(ClientRoute),
    /// To the gateway itself (its `initialize`, its own listings).
    Internal(oneshot::Sender<Result<Bytes, String>>),
}

impl Route {
    /// Answers the request with an error saying `message`.
    pub fn fail(self, message: &str) {
        match self {
            Route::Client(c) => {
                c.session.request_done(&c.client_id);
                deliver(
                    &c.reply,
                    Out::Answer(crate::jsonrpc::error_response(
                        &c.client_id,
                        crate::jsonrpc::code::SERVER_UNAVAILABLE,
                        message,
                    )),
                );
            }
            Route::Internal(tx) => {
                let _ = tx.send(Err(message.to_string()));
            }
        }
    }
}

/// A message for a client's request: an interim one (progress, logging, a server request said
/// during the call), or its answer, which comes last.
#[derive(Debug)]
pub enum Out {
    /// Said during the call.
    Interim(Bytes),
    /// The answer: nothing follows.
    Answer(Bytes),
}

/// A client's request in flight on an upstream.
pub struct ClientRoute {
    /// The client's session.
    pub session: Arc<Session>,
    /// The client's id, as it wrote it.
    pub client_id: Box<str>,
    /// Where messages for this request go (the POST's response stream).
    pub reply: mpsc::Sender<Out>,
    /// The client's progress token, as it wrote it; upstream it is the request's own id.
    pub progress: Option<Box<str>>,
    /// Parked: its 2026-07-28 client was sent the server's questions and has not come back
    /// yet. A parked call is not the one asking a new question while another call can be.
    pub parked: bool,
}

/// Where an instance is in its life.
#[derive(Debug, Clone)]
pub enum State {
    /// Spawned, `initialize` in flight.
    Starting,
    /// Initialized, serving.
    Ready,
    /// Ended, or died; why.
    Gone(Arc<str>),
}

/// Who an instance serves.
#[derive(Debug, Clone)]
pub enum Owner {
    /// Every client.
    Shared,
    /// One session.
    Session(Weak<Session>),
    /// One request.
    Request,
}

/// What keeps an instance alive, until it is released.
pub enum Anchor {
    /// A shim's lifeline: cut, the shim ends the server's whole tree.
    Shim(Lifeline),
    /// A session with a server over HTTP: ended with a DELETE.
    Http(http::Closer),
}

impl Anchor {
    fn release(self, why: &str) {
        match self {
            Anchor::Shim(l) => l.cut(),
            Anchor::Http(c) => c.close(why),
        }
    }
}

/// One running instance.
pub struct Upstream {
    /// The instance id (the ledger's, and the cookie in its processes).
    pub id: String,
    /// The server's configuration when it started.
    pub server: Arc<ServerConfig>,
    /// Who it serves.
    pub owner: Owner,
    /// What the server declared at `initialize`.
    init: std::sync::OnceLock<ServerInit>,
    /// Messages for the server's stdin, written by the writer task (at most [`OUTBOX`]).
    outbox: mpsc::Sender<Bytes>,
    /// Requests in flight, by the upstream id the gateway gave them.
    pending: Mutex<HashMap<u64, Route>>,
    /// The next upstream id.
    next_id: AtomicU64,
    /// Starting, ready or gone.
    state: watch::Sender<State>,
    /// What keeps the instance alive; taking it ends the instance.
    anchor: Mutex<Option<Anchor>>,
    /// When the last request went to it (for idle timeouts).
    last_used: Mutex<Instant>,
    /// When it was made (its shim spawned), for its age in the admin API.
    pub started: Instant,
    /// When its end was first asked for, and why (the start of its teardown, for the metrics
    /// and the admin API's recent teardowns).
    pub ending: Arc<std::sync::OnceLock<(Instant, Cause, String)>>,
    /// Its server's `tools/call` latency histogram ([`crate::metrics`]).
    pub tool_calls: prometheus_client::metrics::histogram::Histogram,
    /// Sessions that used a shared instance, for its notifications that answer no request.
    attached: Mutex<HashMap<String, Weak<Session>>>,
    /// The shim's exit, once it exited: its status in words.
    exit: watch::Receiver<Option<String>>,
    /// The shim's pid, for counting the instance's processes.
    pub pid: Option<u32>,
    /// Set when the server speaks protocol revision 2026-07-28 (found by `server/discover`).
    pub revision: std::sync::OnceLock<modern::Revision>,
}

/// What making an instance gives: the instance, and the receiving end of its outbox (for the
/// task that carries messages to the server).
pub(crate) struct Made {
    pub up: Arc<Upstream>,
    pub inbox: mpsc::Receiver<Bytes>,
}

impl Upstream {
    /// A `Starting` instance `id` of `server` for `owner`, kept alive by `anchor`; `exit` says
    /// when it is over; `pid` is its shim's.
    pub(crate) fn make(
        id: String,
        server: Arc<ServerConfig>,
        owner: Owner,
        anchor: Anchor,
        exit: watch::Receiver<Option<String>>,
        pid: Option<u32>,
    ) -> Made {
        let (outbox, inbox) = mpsc::channel(OUTBOX);
        let (state, _) = watch::channel(State::Starting);
        let tool_calls = crate::metrics::tool_calls_of(&server.name);
        let up = Arc::new(Upstream {
            id,
            server,
            owner,
            init: std::sync::OnceLock::new(),
            outbox,
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            state,
            anchor: Mutex::new(Some(anchor)),
            last_used: Mutex::new(Instant::now()),
            started: Instant::now(),
            ending: Arc::default(),
            tool_calls,
            attached: Mutex::new(HashMap::new()),
            exit,
            pid,
            revision: std::sync::OnceLock::new(),
        });
        Made { up, inbox }
    }

    /// The server's name.
    pub fn name(&self) -> &str {
        &self.server.name
    }

    /// Its lifetime.
    pub fn lifetime(&self) -> Lifetime {
        self.server.lifetime
    }

    /// What the server declared at `initialize` (once ready).
    pub fn init(&self) -> Option<&ServerInit> {
        self.init.get()
    }

    /// Its state now.
    pub fn state(&self) -> State {
        self.state.borrow().clone()
    }

    /// Whether it is gone (ended or dead).
    pub fn is_gone(&self) -> bool {
        matches!(*self.state.borrow(), State::Gone(_))
    }

    /// How long since it last served a request.
    pub fn idle_for(&self) -> Duration {
        self.last_used.lock().map(|t| t.elapsed()).unwrap_or_default()
    }

    /// Records `session` as a user of this (shared) instance.
    pub fn attach(&self, session: &Arc<Session>) {
        // Looked up by session id on every call (one hash, not a scan of every user); sessions
        // gone since are dropped only when a new one attaches.
        if let Ok(mut a) = self.attached.lock() {
            if !a.contains_key(&session.id) {
                a.retain(|_, w| w.strong_count() > 0);
                a.insert(session.id.clone(), Arc::downgrade(session));
            }
        }
    }

    /// The sessions a notification that answers no request goes to.
    pub fn audience(&self) -> Vec<Arc<Session>> {
        match &self.owner {
            Owner::Session(s) => s.upgrade().into_iter().collect(),
            Owner::Shared | Owner::Request => self
                .attached
                .lock()
                .map(|a| a.values().filter_map(Weak::upgrade).collect())
                .unwrap_or_default(),
        }
    }

    /// A fresh upstream id for a request.
    pub fn reserve_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends a request under the upstream id `id` (from [`Upstream::reserve_id`]), its answer
    /// going to `route`.
    pub fn send_request(&self, id: u64, message: Bytes, route: Route) -> Result<(), String> {
        if let State::Gone(why) = self.state() {
            return Err(why.to_string());
        }
        if let Ok(mut p) = self.pending.lock() {
            p.insert(id, route);
        }
        self.queue(message, Some(id))?;
        if let Ok(mut t) = self.last_used.lock() {
            *t = Instant::now();
        }
        Ok(())
    }

    /// Sends a request of the gateway's own and waits for its answer (the whole response).
    pub async fn call(&self, method: &str, params: Option<&str>, within: Duration) -> Result<Bytes, String> {
        let (tx, rx) = oneshot::channel();
        let id = self.reserve_id();
        self.send_request(
            id,
            crate::jsonrpc::request(&id.to_string(), method, params),
            Route::Internal(tx),
        )?;
        match tokio::time::timeout(within, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(self.gone_reason()),
            Err(_) => {
                self.forget(id);
                Err(format!(
                    "no answer to {method} within {}",
                    humantime::format_duration(within)
                ))
            }
        }
    }

    /// Queues a message that expects no answer (a notification, a response to the server).
    pub fn send(&self, message: Bytes) -> Result<(), String> {
        self.queue(message, None)
    }

    /// Hands a message to the writer task. A server that has stopped reading its input (the
    /// pipe full, then [`OUTBOX`] messages waiting) cannot be served: it is ended, as one whose
    /// input is closed is, rather than left holding its clients and its processes. The route of
    /// request `id` is dropped first, so its caller gets this error alone.
    fn queue(&self, message: Bytes, id: Option<u64>) -> Result<(), String> {
        let refused = match self.outbox.try_send(message) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => None,
            Err(mpsc::error::TrySendError::Closed(_)) => Some(self.gone_reason()),
        };
        if let Some(id) = id {
            self.forget(id);
        }
        match refused {
            Some(why) => Err(why),
            None => {
                let why = format!("the server stopped reading its input ({OUTBOX} messages waited for it)");
                self.end(Cause::ServerFailed, &why);
                Err(why)
            }
        }
    }

    /// The link of an instance that is a session over HTTP.
    pub(crate) fn http_link(&self) -> Option<Arc<http::link::Link>> {
        match self.anchor.lock().ok()?.as_ref()? {
            Anchor::Http(c) => Some(c.link()),
            Anchor::Shim(_) => None,
        }
    }

    /// Marks the client request in flight under upstream id `id` as parked, or not.
    pub fn set_parked(&self, id: u64, parked: bool) {
        if let Ok(mut p) = self.pending.lock() {
            if let Some(Route::Client(c)) = p.get_mut(&id) {
                c.parked = parked;
            }
        }
    }

    /// Whether request `id` still awaits its answer.
    pub fn is_pending(&self, id: u64) -> bool {
        self.pending.lock().is_ok_and(|p| p.contains_key(&id))
    }

    /// Drops the route of a request that will not be answered (timed out, client gone).
    pub fn forget(&self, id: u64) -> Option<Route> {
        self.pending.lock().ok().and_then(|mut p| p.remove(&id))
    }

    /// Tells the server a request was cancelled, and drops its route.
    pub fn cancel(&self, id: u64, reason: &str) {
        if self.forget(id).is_some() {
            let params = format!(
                r#"{{"requestId":{id},"reason":{}}}"#,
                serde_json::to_string(reason).unwrap_or_default()
            );
            let _ = self.send(crate::jsonrpc::notification("notifications/cancelled", Some(&params)));
        }
    }

    /// Ends the instance: the lifeline is cut, so the shim ends the server's whole tree; every
    /// request in flight is answered with an error naming `why`.
    pub fn end(&self, cause: Cause, why: &str) {
        // A poisoned lock (a panic elsewhere, in a debug build) must not keep a tree alive.
        let anchor = self.anchor.lock().unwrap_or_else(PoisonError::into_inner).take();
        let first = self.ending.set((Instant::now(), cause, why.to_string())).is_ok();
        match cause {
            Cause::ServerFailed if first => crate::metrics::upstream_error(self.name(), "failed"),
            Cause::ServerExited if first => crate::metrics::upstream_error(self.name(), "exited"),
            _ => {}
        }
        if let Some(a) = anchor {
            tracing::info!(server = %self.name(), instance = %short(&self.id), reason = %why, "ending the instance");
            a.release(why);
        }
        self.mark_gone(why);
    }

    /// Waits until the shim has exited (the tree is gone), up to `within`; returns its status.
    pub async fn wait_exit(&self, within: Duration) -> Option<String> {
        let mut exit = self.exit.clone();
        let done = tokio::time::timeout(within, exit.wait_for(Option::is_some)).await;
        match done {
            Ok(Ok(status)) => status.clone(),
            _ => None,
        }
    }

    /// Whether the gateway ended it (rather than the server dying by itself).
    pub fn was_ended(&self) -> bool {
        self.anchor.lock().is_ok_and(|l| l.is_none())
    }

    /// Client requests in flight on it.
    pub fn in_flight(&self) -> usize {
        self.pending
            .lock()
            .map(|p| p.values().filter(|r| matches!(r, Route::Client(_))).count())
            .unwrap_or(0)
    }

    /// Whether the shim has exited.
    pub fn exited(&self) -> bool {
        self.exit.borrow().is_some()
    }

    /// Marks the instance gone and fails what is in flight.
    pub(crate) fn mark_gone(&self, why: &str) {
        let first = self.state.send_if_modified(|s| match s {
            State::Gone(_) => false,
            _ => {
                *s = State::Gone(why.into());
                true
            }
        });
        if !first {
            return;
        }
        let routes: Vec<Route> = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, r)| r)
            .collect();
        let message = format!("server {:?}: {why}", self.name());
        for route in routes {
            route.fail(&message);
        }
    }

    fn gone_reason(&self) -> String {
        match self.state() {
            State::Gone(why) => why.to_string(),
            _ => "the instance stopped taking messages".into(),
        }
    }

    /// Waits until it is ready or gone.
    async fn ready(&self) -> Result<(), String> {
        let mut rx = self.state.subscribe();
        let state = rx
            .wait_for(|s| !matches!(s, State::Starting))
            .await
            .map_err(|_| self.gone_reason())?;
        match &*state {
            State::Gone(why) => Err(why.to_string()),
            _ => Ok(()),
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        // The lifeline goes with it anyway; this only names why in the log.
        if let Ok(Some(a)) = self.anchor.get_mut().map(Option::take) {
            tracing::debug!(server = %self.server.name, instance = %short(&self.id), "instance dropped: ending it");
            a.release("the instance was dropped");
        }
    }
}

pub use tether_supervisor::ids::short;
