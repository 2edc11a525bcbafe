//! The task that reads a server's stdout, line by line, and routes each message.
//!
//! - An answer carries an upstream id: it goes to the request's route, with the client's own id
//!   put back ([`Route::Client`]), or to the gateway ([`Route::Internal`]). An error with a null
//!   id (the server could not read the request) goes to the one request in flight, if one is.
//! - A progress notification carries the request's upstream id as its token: it goes on that
//!   request's stream, with the client's own token put back.
//! - A server-to-client request (sampling, elicitation, roots) goes to the one client it can
//!   belong to: the instance's own session, or on a shared instance the one session with calls
//!   in flight; when that is ambiguous the server gets an error, never another client's data.
//! - A list change goes to every client of the instance; a resource update to the clients
//!   subscribed to it.
//! - Anything else (logging above all) names no request on stdio: it goes to the one client it
//!   can belong to, by the same rule as a server's request (the instance's own session; on a
//!   shared instance the one session with calls in flight, or with none in flight its only
//!   user), on that client's call stream when it has one; when that is ambiguous it is dropped,
//!   never sent to a client it may not belong to.
//!
//! Lines longer than `max_message_size` are skipped (reported, and their request failed when
//! its id can be read from the line's start); malformed lines are reported and dropped.

use std::sync::{Arc, Weak};

use bytes::Bytes;
use tokio::io::BufReader;
use tokio::process::ChildStdout;

use tokio::sync::mpsc;

use super::{deliver, short, start, Delivery, Out, Route, Upstream};
use crate::dropped::Where;
use crate::jsonrpc::{self, code, Kind, View};
use crate::lines::{read_line, Line, PREFIX};

/// Reads until EOF, then marks the instance gone with the shim's exit status.
pub async fn read(up: Weak<Upstream>, stdout: ChildStdout, max: usize) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        let outcome = read_line(&mut reader, &mut line, max).await;
        let Some(up) = up.upgrade() else { return };
        match outcome {
            Ok(Line::Eof) => break,
            Ok(Line::Whole) => {
                if !up.revision.get().is_some_and(|r| r.from_stdio(&up, &line)) {
                    up.route(&line);
                }
            }
            Ok(Line::TooLong(n)) => up.too_long(&line, n, max),
            Err(e) => {
                tracing::warn!(server = %up.name(), instance = %short(&up.id), "reading the server's output: {e}");
                break;
            }
        }
    }
    if let Some(up) = up.upgrade() {
        let (cause, why) = end_of_output(&up).await;
        if !up.is_gone() {
            tracing::warn!(server = %up.name(), instance = %short(&up.id), "{why}");
        }
        up.end(cause, &why);
    }
}

/// Why a server's stdout reached its end: its exit, when the shim reports one within a short
/// patience (a server's exit ends its shim at once); otherwise the server closed its stdout and
/// lives on. Such a server cannot be served, so it is ended now, as a failure, rather than left
/// until a timeout: its calls in flight get this reason, and its lifeline goes.
async fn end_of_output(up: &Upstream) -> (crate::cause::Cause, String) {
    match start::exit_status(up).await {
        Some(s) => (crate::cause::Cause::ServerExited, format!("the server exited ({s})")),
        None => (
            crate::cause::Cause::ServerFailed,
            "the server closed its stdout but did not exit".to_string(),
        ),
    }
}

impl Upstream {
    /// Routes one message from the server.
    pub(super) fn route(self: &Arc<Self>, line: &[u8]) {
        let text = match jsonrpc::utf8(line) {
            Ok(t) => t,
            Err(e) => return self.malformed(line, &e.to_string()),
        };
        let view = match View::parse(text) {
            Ok(v) => v,
            Err(e) => return self.malformed(line, &e.to_string()),
        };
        match view.kind {
            Kind::Response => self.answer(&view),
            Kind::Notification => self.notification(&view),
            Kind::Request => self.server_request(&view),
        }
    }

    fn answer(&self, view: &View<'_>) {
        let id = match view.numeric_id() {
            Some(id) => Some(id),
            // An error the server could not tie to a request, having failed to read it (JSON-RPC's
            // null id): it is about the one request in flight, when only one is; with several,
            // they end at their request_timeout.
            None if view.error.is_some() => self.sole_pending(),
            None => None,
        };
        let Some(route) = id.and_then(|id| self.forget(id)) else {
            tracing::debug!(server = %self.name(), "an answer to no request in flight: {}", view.id.map_or("", |i| i.get()));
            return;
        };
        match route {
            Route::Client(c) => {
                c.session.request_done(&c.client_id);
                deliver(&c.reply, Out::Answer(Bytes::from(view.with_id(&c.client_id))));
            }
            Route::Internal(tx) => {
                let _ = tx.send(Ok(Bytes::copy_from_slice(view.text.as_bytes())));
            }
        }
    }

    /// A notification: to the client it belongs to, and only there. Progress carries its
    /// request's token; a list change concerns every client of the instance; a resource update
    /// the clients that subscribed to it. Anything else (logging above all) belongs to no request
    /// on stdio: it goes to the instance's one client (a session's instance, a request's); on a
    /// shared instance to the one session with calls in flight, or with none in flight to its
    /// only user; otherwise it is dropped, since it could be another client's (give the server
    /// `lifetime = "session"` to get all its logs).
    fn notification(self: &Arc<Self>, view: &View<'_>) {
        let method = view.method();
        if method == "notifications/progress" {
            return self.progress(view);
        }
        if method == "notifications/cancelled" {
            // The server cancels a request of its own it sent a client.
            for s in self.audience() {
                if s.server_cancelled(self, view) {
                    return;
                }
            }
            return;
        }
        let message = Bytes::copy_from_slice(view.text.as_bytes());
        if let Some(kind) = crate::aggregate::views::Kind::of(method) {
            for session in self.audience() {
                session.list_changed(message.clone(), kind);
            }
            return;
        }
        if method.ends_with("/list_changed") {
            for session in self.audience() {
                session.push(message.clone());
            }
            return;
        }
        if method == "notifications/resources/updated" {
            let uri = jsonrpc::uri_param(view.params).unwrap_or_default();
            for session in self.audience().into_iter().filter(|s| s.subscribed(&uri)) {
                session.push(message.clone());
            }
            return;
        }
        match self.sole_client() {
            Some((session, Some(reply))) => {
                let delivery = deliver(&reply, Out::Interim(message.clone()));
                // A call stream the client does not read as fast: its session's stream, if it
                // has one, takes the message; else it is dropped.
                if delivery != Delivery::Sent && !session.push(message) && delivery == Delivery::Full {
                    session.dropped(self.name(), Where::Call);
                }
            }
            Some((session, None)) => {
                session.push(message);
            }
            None => tracing::debug!(
                server = %self.name(),
                "{method} from a shared instance several clients use: it cannot be told whose it is, dropped"
            ),
        }
    }

    /// The one client of this instance, with the stream of its call in flight if it has one:
    /// a session's instance's session, a request's instance's caller, or on a shared instance
    /// the one session with calls in flight (with none in flight, its only live user). `None`
    /// when that cannot be told.
    fn sole_client(&self) -> Option<(Arc<crate::session::Session>, Option<mpsc::Sender<Out>>)> {
        let session = match &self.owner {
            super::Owner::Session(s) => s.upgrade()?,
            super::Owner::Request => match self.sole_caller() {
                Caller::One(session) => session,
                _ => return None,
            },
            super::Owner::Shared => match self.sole_caller() {
                Caller::One(session) => session,
                Caller::Several => return None,
                Caller::None => {
                    let mut users = self.audience().into_iter().filter(|s| !s.is_ended());
                    let only = users.next()?;
                    if users.next().is_some() {
                        return None;
                    }
                    only
                }
            },
        };
        let reply = self.call_of(&session);
        Some((session, reply))
    }

    /// The stream of a call of `session`'s in flight on this instance, if it has one.
    fn call_of(&self, session: &Arc<crate::session::Session>) -> Option<mpsc::Sender<Out>> {
        // A call that is not parked first (see `sole_caller`).
        let pending = self.pending.lock().ok()?;
        let of = |parked: bool| {
            pending.values().find_map(|r| match r {
                Route::Client(c) if Arc::ptr_eq(&c.session, session) && c.parked == parked => Some(c.reply.clone()),
                _ => None,
            })
        };
        of(false).or_else(|| of(true))
    }

    /// The upstream id of the one request in flight, if exactly one is.
    fn sole_pending(&self) -> Option<u64> {
        let pending = self.pending.lock().ok()?;
        let mut ids = pending.keys();
        match (ids.next(), ids.next()) {
            (Some(id), None) => Some(*id),
            _ => None,
        }
    }

    /// Whose calls are in flight on this instance.
    fn sole_caller(&self) -> Caller {
        let Ok(pending) = self.pending.lock() else {
            return Caller::Several;
        };
        // A call parked waiting for a 2026-07-28 client's answers is not the one asking while
        // another call can be: its server already asked it, and waits. With only parked calls
        // in flight, one of them is (its next question, asked on the client's retry).
        for parked in [false, true] {
            let mut sessions = pending.values().filter_map(|r| match r {
                Route::Client(c) if c.parked == parked => Some(&c.session),
                _ => None,
            });
            let Some(first) = sessions.next() else { continue };
            if sessions.any(|s| !Arc::ptr_eq(s, first)) {
                return Caller::Several;
            }
            return Caller::One(first.clone());
        }
        Caller::None
    }

    fn progress(&self, view: &View<'_>) {
        #[derive(serde::Deserialize)]
        struct Params<'a> {
            #[serde(borrow, rename = "progressToken")]
            token: &'a serde_json::value::RawValue,
        }
        let Some(params) = view.params else { return };
        let Ok(p) = serde_json::from_str::<Params<'_>>(params.get()) else {
            return;
        };
        let Ok(id) = p.token.get().parse::<u64>() else { return };
        let pending = self.pending.lock();
        let Some(Route::Client(c)) = pending.as_ref().ok().and_then(|p| p.get(&id)) else {
            return; // The request is over: its late progress has no one to go to.
        };
        if let Some(original) = &c.progress {
            let progress = Out::Interim(Bytes::from(jsonrpc::replace_id(view.text, p.token, original)));
            if deliver(&c.reply, progress) == Delivery::Full {
                c.session.dropped(self.name(), Where::Call);
            }
        }
    }

    fn server_request(self: &Arc<Self>, view: &View<'_>) {
        let server_id = view.id.map_or("null", |i| i.get());
        if view.method() == "ping" {
            let _ = self.send(jsonrpc::result_response(server_id, "{}"));
            return;
        }
        let target = match self.request_target() {
            Ok(t) => t,
            Err(why) => {
                tracing::warn!(server = %self.name(), "{} request: {why}", view.method());
                let _ = self.send(jsonrpc::error_response(
                    server_id,
                    code::INVALID_REQUEST,
                    &format!("Tether: {why}"),
                ));
                return;
            }
        };
        let (session, reply) = target;
        if let Err(why) = session.forward_server_request(self, view, reply) {
            let _ = self.send(jsonrpc::error_response(
                server_id,
                code::METHOD_NOT_FOUND,
                &format!("Tether: {why}"),
            ));
        }
    }

    /// The one client a server-to-client request can belong to, and the stream of its call in
    /// flight if any.
    fn request_target(&self) -> Result<(Arc<crate::session::Session>, Option<mpsc::Sender<Out>>), String> {
        let session = match &self.owner {
            super::Owner::Session(s) => s.upgrade().ok_or("the session is over")?,
            _ => match self.sole_caller() {
                Caller::One(session) => session,
                Caller::None => return Err("no client has a call in flight on this shared instance".into()),
                Caller::Several => {
                    return Err(format!(
                        "several clients have calls in flight on the shared instance of server {:?}, and the request cannot be told apart; give the server lifetime = \"session\"",
                        self.name()
                    ))
                }
            },
        };
        let reply = self.call_of(&session);
        Ok((session, reply))
    }

    fn malformed(&self, line: &[u8], why: &str) {
        crate::metrics::upstream_error(self.name(), "malformed");
        let head = String::from_utf8_lossy(&line[..line.len().min(120)]);
        tracing::warn!(server = %self.name(), instance = %short(&self.id), "dropped a malformed message from the server ({why}): {head}");
        if let Some(id) = leading_id(line) {
            self.fail(id, &format!("server {:?} sent a malformed answer ({why})", self.name()));
        }
    }

    fn too_long(&self, prefix: &[u8], size: usize, max: usize) {
        crate::metrics::upstream_error(self.name(), "too_long");
        tracing::warn!(server = %self.name(), instance = %short(&self.id), "dropped a {size}-byte message from the server: larger than max_message_size ({max} bytes)");
        if let Some(id) = leading_id(prefix) {
            self.fail(
                id,
                &format!(
                    "server {:?} answered with {size} bytes, more than max_message_size ({max})",
                    self.name()
                ),
            );
        }
    }

    /// Answers the request `id` with an error.
    fn fail(&self, id: u64, message: &str) {
        if let Some(route) = self.forget(id) {
            route.fail(message);
        }
    }
}

/// Whose calls are in flight on an instance.
enum Caller {
    /// No client's.
    None,
    /// One session's (one call or several).
    One(Arc<crate::session::Session>),
    /// Several sessions'.
    Several,
}

/// The numeric `"id"` of a message, read from its first bytes (for lines that cannot be
/// parsed whole).
fn leading_id(line: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(&line[..line.len().min(PREFIX)]);
    let at = text.find("\"id\"")?;
    let rest = text[at + 4..].trim_start().strip_prefix(':')?.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_line_starts() {
        assert_eq!(
            leading_id(br#"{"jsonrpc":"2.0","id": 17,"result":{"content":[{"text":"aaaa"#),
            Some(17)
        );
        assert_eq!(leading_id(br#"{"jsonrpc":"2.0","method":"x"}"#), None);
        assert_eq!(leading_id(b"\xff\xfe garbage"), None);
    }
}
