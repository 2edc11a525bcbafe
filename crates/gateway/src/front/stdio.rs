//! The stdio front door (`tether serve --stdio`): one local client, one JSON-RPC message per
//! line on stdin and stdout, as a Claude Desktop entry would run a server.
//!
//! The client's `initialize` opens its one session; every configured server is behind it. Its
//! EOF ends the gateway, so closing the client ends every instance it caused. A client of
//! protocol revision 2026-07-28 sends no `initialize`: its requests carry the revision's
//! envelope, and are served as at the HTTP door (with what its headers would say read from the
//! body, in the one lasting session named `stdio`). Requests are
//! handled concurrently: each one's messages go to stdout as they come, whole lines, never
//! interleaved (one writer task).

use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, watch};

use crate::gateway::Gateway;
use crate::jsonrpc::{self, code, Kind, View};
use crate::lines::{read_line, Line};
use crate::route::{self, Reply};
use crate::session::{Endpoint, Session};
use crate::upstream::Out;

/// Most messages waiting for stdout.
const OUT_QUEUE: usize = 1024;

/// Serves the client on stdin/stdout until EOF, then sets `stop`.
pub async fn serve(gw: Arc<Gateway>, stop: watch::Sender<bool>) {
    let (out, rx) = mpsc::channel::<Bytes>(OUT_QUEUE);
    let writer = tokio::spawn(write(rx, super::stdio_ends::output()));
    let max = gw.config().gateway.max_message_size;
    let mut lines = BufReader::with_capacity(64 * 1024, super::stdio_ends::input());
    let mut session: Option<Arc<Session>> = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        match read_line(&mut lines, &mut line, max).await {
            Ok(Line::Eof) => break,
            Ok(Line::Whole) => {}
            Ok(Line::TooLong(n)) => {
                let message = format!("a {n}-byte message is larger than max_message_size ({max} bytes)");
                let _ = out
                    .send(jsonrpc::error_response("null", code::TOO_LARGE, &message))
                    .await;
                continue;
            }
            Err(e) => {
                tracing::error!("reading the client's stdin: {e}");
                break;
            }
        }
        let text = match jsonrpc::utf8(&line) {
            Ok(t) => t.to_string(),
            Err(e) => {
                let _ = out
                    .send(jsonrpc::error_response("null", e.code(), &e.to_string()))
                    .await;
                continue;
            }
        };
        message(&gw, &mut session, &out, text).await;
    }
    tracing::info!("the stdio client closed stdin");
    if let Some(s) = session {
        gw.end_session(&s, crate::cause::Cause::Client, "the stdio client closed stdin");
    }
    let _ = stop.send(true);
    drop(out);
    let _ = writer.await;
}

/// Handles one line; a request's answer is written when it comes.
async fn message(gw: &Arc<Gateway>, session: &mut Option<Arc<Session>>, out: &mpsc::Sender<Bytes>, text: String) {
    let view = match View::parse(&text) {
        Ok(v) => v,
        Err(e) => {
            let _ = out
                .send(jsonrpc::error_response("null", e.code(), &e.to_string()))
                .await;
            return;
        }
    };
    let id = view.id.map_or("null", |i| i.get());
    if view.kind == Kind::Request && view.method() == "initialize" {
        if session.is_some() {
            let _ = out
                .send(jsonrpc::error_response(
                    id,
                    code::INVALID_REQUEST,
                    "already initialized",
                ))
                .await;
            return;
        }
        match crate::handshake::open(gw, Endpoint::All, 0, &view).await {
            Ok((s, answer)) => {
                s.set_stream(out.clone());
                *session = Some(s);
                let _ = out.send(answer).await;
            }
            Err(answer) => {
                let _ = out.send(answer).await;
            }
        }
        return;
    }
    let Some(s) = session.clone() else {
        if view.kind == Kind::Request && is_2026(&view) {
            tokio::spawn(modern(gw.clone(), out.clone(), text));
            return;
        }
        if view.kind == Kind::Request {
            let _ = out
                .send(jsonrpc::error_response(
                    id,
                    code::INVALID_REQUEST,
                    "send initialize first",
                ))
                .await;
        }
        return;
    };
    let gw = gw.clone();
    let out = out.clone();
    // Each request on its own task: a slow call must not hold up the next line.
    tokio::spawn(async move {
        let _busy = gw.busy();
        let Ok(view) = View::parse(&text) else { return };
        match route::dispatch(&gw, &s, &view).await {
            Reply::Accepted => {}
            Reply::Now(answer) => {
                let _ = out.send(answer).await;
            }
            Reply::Later(mut call) => {
                while let Some(m) = call.next().await {
                    let (Out::Interim(m) | Out::Answer(m)) = m;
                    if out.send(m).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
}

/// Whether a request carries the 2026-07-28 envelope.
fn is_2026(view: &View<'_>) -> bool {
    crate::modern::envelope::said(view.params).version.is_some()
}

/// A 2026-07-28 request, served as at the HTTP door: stdio has no headers, so what they would
/// say is read from the body, and every request runs in the lasting session `stdio`.
async fn modern(gw: Arc<Gateway>, out: mpsc::Sender<Bytes>, text: String) {
    use crate::modern::front::{post, Answer};
    let _busy = gw.busy();
    // What the headers would say, read from the body without building values (its arguments
    // may nest deeper than serde builds).
    let view = View::parse(&text).ok();
    let method = view.as_ref().map(|v| v.method().to_string()).unwrap_or_default();
    let said = crate::modern::envelope::said(view.as_ref().and_then(|v| v.params));
    let name = said.name.or(said.uri);
    let version = said.version.unwrap_or_default();
    let session_header = gw.config().gateway.session_header.clone();
    let header = |h: &str| -> Result<Option<&str>, ()> {
        Ok(match h {
            "mcp-method" => Some(method.as_str()),
            "mcp-name" => name.as_deref(),
            "mcp-protocol-version" => Some(version.as_str()),
            h if h == session_header => Some("stdio"),
            _ => None,
        })
    };
    match post(&gw, Endpoint::All, 0, header, &text, true).await {
        Answer::Json(_, answer) => {
            let _ = out.send(answer).await;
        }
        Answer::Events(mut rx) => {
            // Event-stream frames, one message each, back to lines.
            while let Some(frame) = rx.recv().await {
                let frame = String::from_utf8_lossy(&frame);
                let data: Vec<&str> = frame
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if !data.is_empty() && out.send(Bytes::from(data.join("\n"))).await.is_err() {
                    return;
                }
            }
        }
        Answer::Accepted | Answer::NotAcceptable(_) => {}
    }
}

/// Writes whole lines to stdout until every sender is gone.
async fn write(mut rx: mpsc::Receiver<Bytes>, mut stdout: super::stdio_ends::Output) {
    let mut buf = Vec::with_capacity(16 * 1024);
    while let Some(first) = rx.recv().await {
        buf.clear();
        buf.extend_from_slice(&first);
        buf.push(b'\n');
        while let Ok(more) = rx.try_recv() {
            buf.extend_from_slice(&more);
            buf.push(b'\n');
        }
        if stdout.write_all(&buf).await.is_err() || stdout.flush().await.is_err() {
            return;
        }
    }
}
