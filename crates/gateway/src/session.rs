//! A client session: one `Mcp-Session-Id` at the HTTP front door, or the one client of the
//! stdio front door.
//!
//! It holds what the client declared at `initialize`, the stream for messages that answer no
//! request of its (the GET stream, or stdout), the instances that live as long as it does
//! (`lifetime = "session"`), its requests in flight (so a client's `notifications/cancelled`
//! reaches the right upstream request), and the server-to-client requests it owes an answer
//! to (so the answer reaches the right server, with the server's own id).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc::{self, Sender};

use crate::dropped::{Tally, Where};
use crate::jsonrpc::{self, View};
use crate::protocol::ClientInit;
use crate::upstream::{Delivery, Out, Upstream};

/// Most messages waiting on a session's stream; past it the stream is closed.
pub const STREAM_QUEUE: usize = 1024;
/// Most requests of servers waiting for one client's answers.
const MAX_OWED: usize = 256;

/// How a session's requests are served, decided at its `initialize` and kept for its life (a
/// reload that changes how many servers there are does not change what names mean to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// By one server, as it is.
    One(String),
    /// By every enabled server, aggregated (`server__name`).
    All,
}

/// What a session serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// One server: `/mcp/{server}`.
    Server(String),
    /// Every enabled server: `/mcp`, and the stdio front door.
    All,
}

/// A request of the client's in flight on an upstream.
struct InFlight {
    upstream: Weak<Upstream>,
    upstream_id: u64,
}

/// A server's request waiting for this client's answer.
struct Owed {
    upstream: Weak<Upstream>,
    server_id: Box<str>,
}

/// One client session.
pub struct Session {
    /// The session id (`Mcp-Session-Id`; 128 random bits), a credential: never logged whole.
    pub id: String,
    /// A short label for logs and the ledger's scope (`session:KEY`), unrelated to the id.
    pub key: String,
    /// What it serves.
    pub endpoint: Endpoint,
    /// How its requests are served.
    pub mode: Mode,
    /// Which bearer token opened it (a keyed hash), so another token cannot use it.
    pub token_tag: u64,
    /// What the client declared.
    pub client: ClientInit,
    /// The protocol revision negotiated with it.
    pub version: &'static str,
    /// Where messages that answer no request go (the GET stream; stdout for stdio).
    stream: Mutex<Option<Sender<Bytes>>>,
    /// The resource URIs the client subscribed to (for updates from a shared instance).
    subscriptions: Mutex<std::collections::HashSet<String>>,
    /// Instances that live as long as this session, by server name.
    instances: Mutex<HashMap<String, Arc<Upstream>>>,
    /// Requests in flight, by the client's id.
    in_flight: Mutex<HashMap<Box<str>, InFlight>>,
    /// Server requests awaiting this client's answer, by the id the client was given.
    owed: Mutex<HashMap<Box<str>, Owed>>,
    /// The next id for a server request sent to this client.
    next_owed: AtomicU64,
    /// When the client was last heard from.
    last_seen: Mutex<Instant>,
    /// Set once the session ended.
    ended: AtomicBool,
    /// Held while one of its instances starts, so concurrent requests start one, not several.
    pub start_lock: tokio::sync::Mutex<()>,
    /// For an aggregated session: which server listed each resource URI, and each template.
    resources: Mutex<Resources>,
    /// For an aggregated session: the names it was given for tools and prompts (by listing
    /// field), each taken back to its server.
    names: Mutex<HashMap<&'static str, HashMap<String, crate::aggregate::Owner>>>,
    /// For an aggregated session: a fingerprint of what each listing last gave it.
    views: Mutex<HashMap<&'static str, u64>>,
    /// For the session of one 2026-07-28 request: the header that would have named a lasting
    /// one (a `session` server needs it).
    one_request: std::sync::OnceLock<String>,
    /// For an aggregated session: where a server's list change is queued, to be looked at.
    watcher: std::sync::OnceLock<Sender<crate::aggregate::views::Change>>,
    /// Messages dropped for this client, counted and told at most every 10 s.
    drops: Tally,
}

/// Where an aggregated session's resources come from.
#[derive(Default)]
struct Resources {
    /// URI → server.
    uris: HashMap<String, String>,
    /// (template, server), in listing order.
    templates: Vec<(String, String)>,
}

impl Session {
    /// A new session.
    pub fn new(
        id: String,
        key: String,
        endpoint: Endpoint,
        mode: Mode,
        token_tag: u64,
        client: ClientInit,
        version: &'static str,
    ) -> Session {
        Session {
            id,
            key,
            endpoint,
            mode,
            token_tag,
            client,
            version,
            stream: Mutex::new(None),
            subscriptions: Mutex::new(std::collections::HashSet::new()),
            instances: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            owed: Mutex::new(HashMap::new()),
            next_owed: AtomicU64::new(1),
            last_seen: Mutex::new(Instant::now()),
            ended: AtomicBool::new(false),
            start_lock: tokio::sync::Mutex::new(()),
            resources: Mutex::new(Resources::default()),
            names: Mutex::new(HashMap::new()),
            views: Mutex::new(HashMap::new()),
            watcher: std::sync::OnceLock::new(),
            one_request: std::sync::OnceLock::new(),
            drops: Tally::default(),
        }
    }

    /// Notes that the client was heard from.
    pub fn touch(&self) {
        if let Ok(mut t) = self.last_seen.lock() {
            *t = Instant::now();
        }
    }

    /// How long since the client was last heard from (zero while a request is in flight or
    /// its GET stream is open: a client listening for notifications is not idle).
    pub fn idle_for(&self) -> Duration {
        if self.in_flight.lock().is_ok_and(|f| !f.is_empty()) {
            return Duration::ZERO;
        }
        if self
            .stream
            .lock()
            .is_ok_and(|s| s.as_ref().is_some_and(|tx| !tx.is_closed()))
        {
            return Duration::ZERO;
        }
        self.last_seen.lock().map(|t| t.elapsed()).unwrap_or_default()
    }

    /// Whether it has ended.
    pub fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Sets the stream for messages that answer no request (a new GET stream replaces the
    /// old one, which ends).
    pub fn set_stream(&self, tx: Sender<Bytes>) {
        if let Ok(mut s) = self.stream.lock() {
            *s = Some(tx);
        }
    }

    /// Sends a message on the session's stream; false when there is none open. A stream whose
    /// client does not read it (full) is closed: the client may open another; the gateway's
    /// memory does not grow for it.
    pub fn push(&self, message: Bytes) -> bool {
        let Ok(mut stream) = self.stream.lock() else {
            return false;
        };
        let Some(tx) = stream.as_ref() else { return false };
        match tx.try_send(message) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(session = %self.key, "its stream is not being read ({STREAM_QUEUE} messages waiting): closed it");
                // A session's stream carries every server's messages: no server to name.
                crate::metrics::dropped("", Where::Session);
                *stream = None;
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                *stream = None;
                false
            }
        }
    }

    /// A message of `server`'s for this client was dropped, the stream `at` full: counted, and
    /// told at most every [`crate::dropped::WARN_EVERY`].
    pub fn dropped(&self, server: &str, at: Where) {
        self.drops.dropped(&self.key, server, at);
    }

    /// Notes a `resources/subscribe` (or, with `on` false, `unsubscribe`) of the client's.
    pub fn subscribe(&self, uri: &str, on: bool) {
        if let Ok(mut subs) = self.subscriptions.lock() {
            if on {
                subs.insert(uri.to_string());
            } else {
                subs.remove(uri);
            }
        }
    }

    /// Whether the client subscribed to `uri`.
    pub fn subscribed(&self, uri: &str) -> bool {
        self.subscriptions.lock().is_ok_and(|s| s.contains(uri))
    }

    /// The session's instance of `server`, if it has one ready (one still starting is the
    /// start's own, under [`Session::start_lock`]).
    pub fn instance(&self, server: &str) -> Option<Arc<Upstream>> {
        let instances = self.instances.lock().ok()?;
        instances
            .get(server)
            .filter(|u| matches!(u.state(), crate::upstream::State::Ready))
            .cloned()
    }

    /// Keeps `up` as the session's instance of its server.
    pub fn keep_instance(&self, up: Arc<Upstream>) {
        self.instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(up.name().to_string(), up);
    }

    /// Removes and returns the session's instances matching `pick` (all of them at the end).
    pub fn take_instances(&self, pick: impl Fn(&Upstream) -> bool) -> Vec<Arc<Upstream>> {
        // A session's end relies on this: a poisoned lock still gives its instances.
        let mut i = self.instances.lock().unwrap_or_else(PoisonError::into_inner);
        i.extract_if(|_, u| pick(u)).map(|(_, u)| u).collect()
    }

    /// The session's live instances.
    pub fn instances(&self) -> Vec<Arc<Upstream>> {
        self.instances
            .lock()
            .map(|i| i.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Records a request in flight on `up` under the upstream id `upstream_id`.
    pub fn request_sent(&self, client_id: &str, up: &Arc<Upstream>, upstream_id: u64) {
        if let Ok(mut f) = self.in_flight.lock() {
            f.insert(
                client_id.into(),
                InFlight {
                    upstream: Arc::downgrade(up),
                    upstream_id,
                },
            );
        }
    }

    /// Forgets a request that was answered.
    pub fn request_done(&self, client_id: &str) {
        if let Ok(mut f) = self.in_flight.lock() {
            f.remove(client_id);
        }
        self.touch();
    }

    /// The upstream request behind the client's request `client_id`, if in flight.
    pub fn upstream_of(&self, client_id: &str) -> Option<(Arc<Upstream>, u64)> {
        let f = self.in_flight.lock().ok()?;
        let entry = f.get(client_id)?;
        Some((entry.upstream.upgrade()?, entry.upstream_id))
    }

    /// Sends a server's request on to this client, with an id of the gateway's, on the stream
    /// of the call it belongs to (`reply`) or else the session's stream.
    pub fn forward_server_request(
        &self,
        up: &Arc<Upstream>,
        view: &View<'_>,
        reply: Option<Sender<Out>>,
    ) -> Result<(), String> {
        let needed = match view.method() {
            "sampling/createMessage" => Some("sampling"),
            "elicitation/create" => Some("elicitation"),
            "roots/list" => Some("roots"),
            _ => None,
        };
        if let Some(cap) = needed.filter(|c| !self.client.has_capability(c)) {
            return Err(format!("the client did not declare the {cap} capability"));
        }
        let id = format!("\"tether-{}\"", self.next_owed.fetch_add(1, Ordering::Relaxed));
        let server_id = view.id.map_or("null", |i| i.get());
        if let Ok(mut owed) = self.owed.lock() {
            if owed.len() >= MAX_OWED {
                return Err(format!("the client has {MAX_OWED} requests of servers unanswered"));
            }
            owed.insert(
                id.as_str().into(),
                Owed {
                    upstream: Arc::downgrade(up),
                    server_id: server_id.into(),
                },
            );
        }
        let message = Bytes::from(view.with_id(&id));
        let sent = reply.is_some_and(|r| crate::upstream::deliver(&r, Out::Interim(message.clone())) == Delivery::Sent)
            || self.push(message);
        if !sent {
            if let Ok(mut owed) = self.owed.lock() {
                owed.remove(id.as_str());
            }
            return Err("the client has no open stream to receive it (no call in flight, no GET stream)".into());
        }
        Ok(())
    }

    /// A message for the client could not be delivered: if it was a server's request, the
    /// server gets an error instead of waiting for an answer that cannot come.
    pub fn undeliverable(&self, message: &[u8]) {
        let Ok(text) = std::str::from_utf8(message) else { return };
        let Ok(view) = View::parse(text) else { return };
        let Some(id) = view.id.filter(|_| view.kind == jsonrpc::Kind::Request) else {
            return;
        };
        let owed = self.owed.lock().ok().and_then(|mut o| o.remove(id.get()));
        if let Some(owed) = owed {
            if let Some(up) = owed.upstream.upgrade() {
                let _ = up.send(jsonrpc::error_response(
                    &owed.server_id,
                    jsonrpc::code::INVALID_REQUEST,
                    "Tether: the client has no open stream to receive this request",
                ));
            }
        }
    }

    /// The client's answer to a server request: the upstream it goes to and the message with
    /// the server's own id.
    pub fn answer_to_server(&self, view: &View<'_>) -> Option<(Arc<Upstream>, Bytes)> {
        let id = view.id?.get();
        let owed = self.owed.lock().ok()?.remove(id)?;
        let up = owed.upstream.upgrade()?;
        Some((up, Bytes::from(view.with_id(&owed.server_id))))
    }

    /// A server cancels a request it sent this client: passed on with the client's id. True
    /// when the request was this session's.
    pub fn server_cancelled(&self, up: &Arc<Upstream>, view: &View<'_>) -> bool {
        #[derive(serde::Deserialize)]
        struct Params<'a> {
            #[serde(borrow, rename = "requestId")]
            request_id: &'a serde_json::value::RawValue,
        }
        let Some(p) = view
            .params
            .and_then(|p| serde_json::from_str::<Params<'_>>(p.get()).ok())
        else {
            return false;
        };
        let client_id = {
            let Ok(mut owed) = self.owed.lock() else { return false };
            let found = owed
                .iter()
                .find(|(_, o)| &*o.server_id == p.request_id.get() && o.upstream.as_ptr() == Arc::as_ptr(up))
                .map(|(k, _)| k.clone());
            let Some(k) = found else { return false };
            owed.remove(&k);
            k
        };
        self.push(Bytes::from(jsonrpc::replace_id(view.text, p.request_id, &client_id)));
        true
    }

    /// Marks the session as serving one 2026-07-28 request, which did not name a lasting session
    /// with the `header`.
    pub fn serve_one_request(&self, header: &str) {
        let _ = self.one_request.set(header.to_string());
    }

    /// For the session of one 2026-07-28 request: the header a lasting one is named with.
    pub fn one_request(&self) -> Option<&str> {
        self.one_request.get().map(String::as_str)
    }

    /// Notes what a listing (`field`) gave the client.
    pub fn set_view(&self, field: &'static str, fingerprint: u64) {
        if let Ok(mut v) = self.views.lock() {
            v.insert(field, fingerprint);
        }
    }

    /// What the last listing of `field` gave the client, if it listed.
    pub fn view(&self, field: &str) -> Option<u64> {
        self.views.lock().ok()?.get(field).copied()
    }

    /// Has a server's list changes looked at before the client is told (aggregated sessions).
    pub fn watch_views(&self, watcher: Sender<crate::aggregate::views::Change>) {
        let _ = self.watcher.set(watcher);
    }

    /// A server announced a change of its `kind` list (`message`): passed on as it is, or for
    /// an aggregated session queued to be looked at.
    pub fn list_changed(self: &Arc<Self>, message: Bytes, kind: crate::aggregate::views::Kind) {
        match self.watcher.get() {
            Some(w) => {
                if w.try_send((Arc::downgrade(self), kind)).is_err() {
                    tracing::debug!(session = %self.key, "too many list changes waiting: one dropped");
                }
            }
            None => {
                self.push(message);
            }
        }
    }

    /// Keeps the names a listing gave the client (`field`: `tools` or `prompts`).
    pub fn set_names(&self, field: &'static str, table: HashMap<String, crate::aggregate::Owner>) {
        if let Ok(mut n) = self.names.lock() {
            n.insert(field, table);
        }
    }

    /// The server and own name behind a name the client was given.
    pub fn name_owner(&self, field: &str, name: &str) -> Option<crate::aggregate::Owner> {
        self.names.lock().ok()?.get(field)?.get(name).cloned()
    }

    /// Notes that `server` listed the resource `uri`.
    pub fn route_resource(&self, uri: &str, server: &str) {
        if let Ok(mut r) = self.resources.lock() {
            r.uris.insert(uri.to_string(), server.to_string());
        }
    }

    /// Notes that `server` listed the resource template `template`.
    pub fn route_template(&self, template: &str, server: &str) {
        if let Ok(mut r) = self.resources.lock() {
            if !r.templates.iter().any(|(t, s)| t == template && s == server) {
                r.templates.push((template.to_string(), server.to_string()));
            }
        }
    }

    /// The server a resource URI belongs to: the one that listed it, else the first whose
    /// template matches it.
    pub fn resource_server(&self, uri: &str) -> Option<String> {
        let r = self.resources.lock().ok()?;
        r.uris.get(uri).cloned().or_else(|| {
            r.templates
                .iter()
                .find(|(t, _)| crate::aggregate::matches_template(t, uri))
                .map(|(_, s)| s.clone())
        })
    }

    /// Ends the session: its instances are ended (the caller waits for them), its stream closed.
    pub fn end(&self, cause: crate::cause::Cause, why: &str) -> Vec<Arc<Upstream>> {
        if self.ended.swap(true, Ordering::AcqRel) {
            return Vec::new();
        }
        tracing::info!(session = %self.key, reason = %why, "session ended");
        crate::metrics::session_ended(cause);
        if let Ok(mut s) = self.stream.lock() {
            s.take();
        }
        let instances = self.take_instances(|_| true);
        for up in &instances {
            up.end(cause, &format!("its session ended ({why})"));
        }
        instances
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        let client: ClientInit = serde_json::from_str(r#"{"protocolVersion":"2025-06-18"}"#).expect("client init");
        Session::new(
            "id".into(),
            "key".into(),
            Endpoint::All,
            Mode::All,
            0,
            client,
            "2025-06-18",
        )
    }

    #[test]
    fn a_stream_nobody_reads_is_closed_when_full_not_grown() {
        let s = session();
        let (tx, mut rx) = mpsc::channel(STREAM_QUEUE);
        s.set_stream(tx);
        for _ in 0..STREAM_QUEUE {
            assert!(s.push(Bytes::from_static(b"{}")));
        }
        let counted = crate::metrics::dropped_so_far("", Where::Session);
        assert!(
            !s.push(Bytes::from_static(b"{}")),
            "the message past the queue is refused"
        );
        assert!(
            crate::metrics::dropped_so_far("", Where::Session) > counted,
            "and counted dropped"
        );
        assert!(!s.push(Bytes::from_static(b"{}")), "and the stream stays closed");
        assert!(rx.is_closed(), "the gateway let go of the stream");
        let mut queued = 0;
        while rx.try_recv().is_ok() {
            queued += 1;
        }
        assert_eq!(queued, STREAM_QUEUE, "what was queued before stays deliverable");
    }

    #[test]
    fn a_new_stream_replaces_a_closed_one() {
        let s = session();
        assert!(!s.push(Bytes::from_static(b"{}")), "no stream open yet");
        let (tx, rx) = mpsc::channel(4);
        s.set_stream(tx);
        drop(rx);
        assert!(!s.push(Bytes::from_static(b"{}")), "its reader left");
        let (tx, mut rx) = mpsc::channel(4);
        s.set_stream(tx);
        assert!(s.push(Bytes::from_static(b"{\"a\":1}")));
        assert_eq!(rx.try_recv().ok().as_deref(), Some(&b"{\"a\":1}"[..]));
    }

    #[test]
    fn a_session_listening_on_its_stream_is_not_idle() {
        let s = session();
        let (tx, rx) = mpsc::channel(4);
        s.set_stream(tx);
        assert_eq!(s.idle_for(), Duration::ZERO);
        drop(rx);
        assert!(s.idle_for() > Duration::ZERO, "a closed stream no longer counts");
    }

    #[test]
    fn subscriptions_follow_subscribe_and_unsubscribe() {
        let s = session();
        assert!(!s.subscribed("file:///a"));
        s.subscribe("file:///a", true);
        assert!(s.subscribed("file:///a"));
        assert!(!s.subscribed("file:///b"));
        s.subscribe("file:///a", false);
        assert!(!s.subscribed("file:///a"));
    }

    #[test]
    fn ending_closes_the_stream_once() {
        let s = session();
        let (tx, rx) = mpsc::channel(4);
        s.set_stream(tx);
        assert!(s.end(crate::cause::Cause::Client, "test").is_empty());
        assert!(s.is_ended());
        assert!(rx.is_closed(), "the client's stream ends with the session");
        assert!(s.end(crate::cause::Cause::Client, "again").is_empty());
    }
}
