//! The task that reads a server's stdout, line by line, and routes each message.
//!
//! - An answer carries an upstream id: it goes to the request's route, with the client's own id
//!   put back ([`Route::Client`]), or to the gateway ([`Route::Internal`]).
//! - A progress notification carries the request's upstream id as its token: it goes on that
//!   request's stream, with the client's own token put back.
//! - A server-to-client request (sampling, elicitation, roots) goes to the one client it can
//!   belong to: the instance's own session, or on a shared instance the one session with calls
//!   in flight; when that is ambiguous the server gets an error, never another client's data.
//! - Other notifications (logging, list changes, resource updates) go to the request in flight
//!   when there is exactly one, else to the instance's sessions' streams.
//!
//! Lines longer than `max_message_size` are skipped (reported, and their request failed when
//! its id can be read from the line's start); malformed lines are reported and dropped.

use std::sync::{Arc, Weak};

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::ChildStdout;

use super::{short, start, Out, Route, Upstream};
use crate::jsonrpc::{self, code, Kind, View};

/// Bytes of an oversized line kept to find its id.
const PREFIX: usize = 512;

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
            Ok(Line::Whole) => up.route(&line),
            Ok(Line::TooLong(n)) => up.too_long(&line, n, max),
            Err(e) => {
                tracing::warn!(server = %up.name(), instance = %short(&up.id), "reading the server's output: {e}");
                break;
            }
        }
    }
    if let Some(up) = up.upgrade() {
        let status = start::exit_status(&up).await;
        let why = match status {
            Some(s) => format!("the server exited ({s})"),
            None => "the server closed its output".to_string(),
        };
        if !up.is_gone() {
            tracing::warn!(server = %up.name(), instance = %short(&up.id), "{why}");
        }
        // A server that closed its output but runs on is ended too: it cannot be served.
        up.end(&why);
    }
}

enum Line {
    Whole,
    TooLong(usize),
    Eof,
}

/// Reads one line into `line` (without the newline); past `max` bytes keeps only a prefix and
/// skips the rest of the line.
async fn read_line(r: &mut BufReader<ChildStdout>, line: &mut Vec<u8>, max: usize) -> std::io::Result<Line> {
    let mut total = 0usize;
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(if total == 0 {
                Line::Eof
            } else if total > max {
                Line::TooLong(total)
            } else {
                Line::Whole
            });
        }
        let (chunk, found) = match memchr(buf) {
            Some(i) => (&buf[..i], true),
            None => (buf, false),
        };
        total += chunk.len();
        if total <= max {
            line.extend_from_slice(chunk);
        } else if line.len() < PREFIX {
            let room = PREFIX - line.len();
            line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        let used = chunk.len() + usize::from(found);
        r.consume(used);
        if found {
            if total > max {
                return Ok(Line::TooLong(total));
            }
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                line.clear();
                total = 0;
                continue;
            }
            return Ok(Line::Whole);
        }
    }
}

fn memchr(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n')
}

impl Upstream {
    /// Routes one message from the server.
    fn route(self: &Arc<Self>, line: &[u8]) {
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
        let Some(route) = view.numeric_id().and_then(|id| self.forget(id)) else {
            tracing::debug!(server = %self.name(), "an answer to no request in flight: {}", view.id.map_or("", |i| i.get()));
            return;
        };
        match route {
            Route::Client(c) => {
                c.session.request_done(&c.client_id);
                let _ = c.reply.send(Out::Answer(Bytes::from(view.with_id(&c.client_id))));
            }
            Route::Internal(tx) => {
                let _ = tx.send(Ok(Bytes::copy_from_slice(view.text.as_bytes())));
            }
        }
    }

    fn notification(self: &Arc<Self>, view: &View<'_>) {
        if view.method() == "notifications/progress" {
            return self.progress(view);
        }
        if view.method() == "notifications/cancelled" {
            // The server cancels a request of its own it sent a client.
            return self.for_sessions(|s| s.server_cancelled(self, view));
        }
        let message = Bytes::copy_from_slice(view.text.as_bytes());
        // Said during a call (logging, most often): on that call's stream, when there is one.
        if let Some(reply) = self.sole_request_stream() {
            if reply.send(Out::Interim(message.clone())).is_ok() {
                return;
            }
        }
        for session in self.audience() {
            session.push(message.clone());
        }
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
            let _ = c.reply.send(Out::Interim(Bytes::from(jsonrpc::replace_id(
                view.text, p.token, original,
            ))));
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
    fn request_target(
        &self,
    ) -> Result<
        (
            Arc<crate::session::Session>,
            Option<tokio::sync::mpsc::UnboundedSender<Out>>,
        ),
        String,
    > {
        let pending = self.pending.lock().map_err(|_| "internal lock poisoned".to_string())?;
        let mut clients = pending.values().filter_map(|r| match r {
            Route::Client(c) => Some(c),
            Route::Internal(_) => None,
        });
        if let super::Owner::Session(s) = &self.owner {
            let session = s.upgrade().ok_or("the session is over")?;
            let reply = clients.next().map(|c| c.reply.clone());
            return Ok((session, reply));
        }
        let first = clients
            .next()
            .ok_or("no client has a call in flight on this shared instance")?;
        if clients.any(|c| !Arc::ptr_eq(&c.session, &first.session)) {
            return Err(format!(
                "several clients have calls in flight on the shared instance of server {:?}, and the request cannot be told apart; give the server lifetime = \"session\"",
                self.name()
            ));
        }
        Ok((first.session.clone(), Some(first.reply.clone())))
    }

    /// The stream of the one request in flight, if exactly one is.
    fn sole_request_stream(&self) -> Option<tokio::sync::mpsc::UnboundedSender<Out>> {
        let pending = self.pending.lock().ok()?;
        let mut clients = pending.values().filter_map(|r| match r {
            Route::Client(c) => Some(c),
            Route::Internal(_) => None,
        });
        let only = clients.next()?;
        clients.next().is_none().then(|| only.reply.clone())
    }

    fn for_sessions(&self, mut f: impl FnMut(&crate::session::Session) -> bool) {
        for s in self.audience() {
            if f(&s) {
                return;
            }
        }
    }

    fn malformed(&self, line: &[u8], why: &str) {
        let head = String::from_utf8_lossy(&line[..line.len().min(120)]);
        tracing::warn!(server = %self.name(), instance = %short(&self.id), "dropped a malformed message from the server ({why}): {head}");
        if let Some(id) = leading_id(line) {
            self.fail(id, &format!("server {:?} sent a malformed answer ({why})", self.name()));
        }
    }

    fn too_long(&self, prefix: &[u8], size: usize, max: usize) {
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
        match self.forget(id) {
            Some(Route::Client(c)) => {
                c.session.request_done(&c.client_id);
                let _ = c.reply.send(Out::Answer(jsonrpc::error_response(
                    &c.client_id,
                    code::SERVER_UNAVAILABLE,
                    message,
                )));
            }
            Some(Route::Internal(tx)) => {
                let _ = tx.send(Err(message.to_string()));
            }
            None => {}
        }
    }
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
