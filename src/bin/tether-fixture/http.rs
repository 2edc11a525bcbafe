//! `--http ADDR`: the fixture as a streamable-HTTP MCP server, for the gateway's HTTP upstream
//! tests: sessions (`Mcp-Session-Id`), DELETE, 404 for a session it does not know, every
//! message handled by the same code as on stdio, and the misbehaviours of an HTTP server
//! (`--http-misbehave`) on `tools/call`. `--http-record` writes what happened to sessions to a
//! file, so a test can prove the gateway ended its session.
//!
//! Deliberately small: HTTP/1.1 by hand on `std::net`, a thread per connection, keep-alive
//! for JSON answers, an event stream closed after its answer; no GET stream (405), and no
//! questions to the client during a call (there is no stream to ask them on). With
//! `--tls-cert-out`, the same over TLS (rustls) with a certificate made at start-up.

use crate::args::{Args, HttpMisbehaviour};
use crate::server::Conn;
use crate::session::{Identity, Session};
use anyhow::{Context, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Cursor, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The largest request body read.
const MAX_BODY: usize = 64 << 20;

/// Everything the connections share.
struct Shared {
    args: Args,
    /// Sessions by id; each one's messages are handled one at a time, under its lock.
    sessions: Mutex<HashMap<String, Arc<Mutex<Session>>>>,
    /// Whether a session was already forgotten (`forget-session` does it once).
    forgotten: AtomicBool,
    next: AtomicU64,
    record: Option<Mutex<std::fs::File>>,
}

/// Serves until killed.
pub fn serve(addr: SocketAddr, args: &Args) -> Result<()> {
    let listener = TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?;
    let bound = listener.local_addr().context("reading the address bound")?;
    let record = match &args.http_record {
        Some(path) => Some(Mutex::new(open_record(path)?)),
        None => None,
    };
    let shared = Arc::new(Shared {
        args: args.clone(),
        sessions: Mutex::new(HashMap::new()),
        forgotten: AtomicBool::new(false),
        next: AtomicU64::new(1),
        record,
    });
    let tls = match &args.tls_cert_out {
        Some(path) => Some(crate::tls::server_config(path)?),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!("tether-fixture: listening on {scheme}://{bound}/mcp");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        // Headers and body go in separate writes: without this, Nagle holds the body back for
        // the client's delayed ACK (40 ms a request).
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let tls = tls.clone();
        std::thread::spawn(move || {
            let _ = match tls {
                Some(config) => match rustls::ServerConnection::new(config) {
                    Ok(conn) => connection(rustls::StreamOwned::new(conn, stream), &shared),
                    Err(e) => Err(e.into()),
                },
                None => connection(stream, &shared),
            };
        });
    }
    Ok(())
}

fn open_record(path: &PathBuf) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

/// One request as read.
struct Request {
    method: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// Serves one connection's requests until it closes.
fn connection<S: Read + Write>(stream: S, shared: &Shared) -> Result<()> {
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader)? {
        let keep = respond(&request, reader.get_mut(), shared)?;
        if !keep {
            break;
        }
    }
    Ok(())
}

fn read_request(reader: &mut impl BufRead) -> Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let method = line.split(' ').next().unwrap_or_default().to_string();
    let mut headers = HashMap::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((k, v)) = trimmed.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    anyhow::ensure!(length <= MAX_BODY, "a body of {length} bytes");
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Some(Request { method, headers, body }))
}

/// Answers one request; false when the connection must close after it.
fn respond(request: &Request, out: &mut impl Write, shared: &Shared) -> Result<bool> {
    let sid = request.headers.get("mcp-session-id").cloned();
    match request.method.as_str() {
        "DELETE" => {
            let sid = sid.unwrap_or_default();
            shared.note(&format!("DELETE {sid}"));
            if shared.args.http_misbehave == Some(HttpMisbehaviour::NoDelete) {
                return plain(out, "405 Method Not Allowed", "text/plain", b"no DELETE here\n");
            }
            let known = shared
                .sessions
                .lock()
                .map(|mut s| s.remove(&sid).is_some())
                .unwrap_or(false);
            if known {
                plain(out, "200 OK", "text/plain", b"")
            } else {
                plain(out, "404 Not Found", "text/plain", b"no such session\n")
            }
        }
        "POST" => post(request, sid, out, shared),
        _ => plain(out, "405 Method Not Allowed", "text/plain", b"POST or DELETE\n"),
    }
}

fn post(request: &Request, sid: Option<String>, out: &mut impl Write, shared: &Shared) -> Result<bool> {
    let message: Value = match serde_json::from_slice(&request.body) {
        Ok(v) => v,
        Err(e) => return plain(out, "400 Bad Request", "text/plain", format!("{e}\n").as_bytes()),
    };
    let method = message.get("method").and_then(Value::as_str).unwrap_or("").to_string();
    let is_request = message.get("id").is_some() && !method.is_empty();
    if method == "initialize" {
        let sid = format!(
            "fx-{}-{}",
            std::process::id(),
            shared.next.fetch_add(1, Ordering::Relaxed)
        );
        let (lines, session) = handle(&request.body, Session::new(Identity::current(), false), &shared.args);
        if let Ok(mut s) = shared.sessions.lock() {
            s.insert(sid.clone(), Arc::new(Mutex::new(session)));
        }
        shared.note(&format!("initialize {sid}"));
        return json(out, lines.last().map_or(&b"{}"[..], Vec::as_slice), Some(&sid));
    }
    let sid = sid.unwrap_or_default();
    let forget = method == "tools/call"
        && shared.args.http_misbehave == Some(HttpMisbehaviour::ForgetSession)
        && !shared.forgotten.swap(true, Ordering::SeqCst);
    if forget {
        if let Ok(mut s) = shared.sessions.lock() {
            s.remove(&sid);
        }
    }
    let Some(session) = shared.sessions.lock().ok().and_then(|s| s.get(&sid).cloned()) else {
        shared.note(&format!("404 {sid}"));
        return plain(out, "404 Not Found", "text/plain", b"no such session\n");
    };
    shared.note(&format!("POST {method} {sid}"));
    if method == "tools/call" {
        if let Some(keep) = shared
            .args
            .http_misbehave
            .map(|m| misbehave(m, out))
            .transpose()?
            .flatten()
        {
            return Ok(keep);
        }
    }
    answer(request, is_request, &session, out, &shared.args)
}

/// Handles the message and answers: an event stream of everything said for a request (the
/// answer last), 202 for anything else.
fn answer(
    request: &Request,
    is_request: bool,
    session: &Mutex<Session>,
    out: &mut impl Write,
    args: &Args,
) -> Result<bool> {
    let lines = {
        let mut guard = session
            .lock()
            .map_err(|_| anyhow::anyhow!("a session's lock is poisoned"))?;
        let (lines, after) = handle(&request.body, std::mem::take(&mut *guard), args);
        *guard = after;
        lines
    };
    if !is_request {
        return plain(out, "202 Accepted", "text/plain", b"");
    }
    let mut body = Vec::new();
    for line in &lines {
        body.extend_from_slice(b"event: message\ndata: ");
        body.extend_from_slice(line);
        body.extend_from_slice(b"\n\n");
    }
    write!(
        out,
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )?;
    out.write_all(&body)?;
    out.flush()?;
    Ok(true)
}

/// Runs one message through the stdio code: the lines it wrote, and the session after it.
fn handle(body: &[u8], session: Session, args: &Args) -> (Vec<Vec<u8>>, Session) {
    let mut input = body.to_vec();
    input.push(b'\n');
    let mut written = Vec::new();
    let mut conn = Conn::new(Cursor::new(input), &mut written, args, session);
    let _ = conn.run();
    let session = conn.into_session();
    let lines = written
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    (lines, session)
}

/// Spoils a `tools/call`'s answer; `None` when the mode spoils nothing here.
fn misbehave(mode: HttpMisbehaviour, out: &mut impl Write) -> Result<Option<bool>> {
    let keep = match mode {
        HttpMisbehaviour::Garbage => plain(out, "200 OK", "application/json", b"this is not json }{")?,
        HttpMisbehaviour::Html => plain(
            out,
            "200 OK",
            "text/html; charset=utf-8",
            b"<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>",
        )?,
        HttpMisbehaviour::Status500 => plain(
            out,
            "500 Internal Server Error",
            "text/plain",
            b"internal failure in the fixture\n",
        )?,
        HttpMisbehaviour::Redirect => {
            write!(
                out,
                "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:9/elsewhere?token=secret\r\ncontent-length: 0\r\n\r\n"
            )?;
            true
        }
        HttpMisbehaviour::CutStream => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\nevent: message\ndata: {{\"jsonrpc\":\"2.0\",\"id\":"
            )?;
            out.flush()?;
            false
        }
        HttpMisbehaviour::Huge => {
            const SIZE: usize = 100 << 20;
            write!(
                out,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {SIZE}\r\n\r\n"
            )?;
            let chunk = vec![b' '; 1 << 20];
            for _ in 0..SIZE >> 20 {
                if out.write_all(&chunk).is_err() {
                    // The reader gave up: what a client with a limit does.
                    return Ok(Some(false));
                }
            }
            true
        }
        HttpMisbehaviour::ForgetSession | HttpMisbehaviour::NoDelete => return Ok(None),
    };
    Ok(Some(keep))
}

/// A whole response; true (keep the connection).
fn plain(out: &mut impl Write, status: &str, kind: &str, body: &[u8]) -> Result<bool> {
    write!(
        out,
        "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )?;
    out.write_all(body)?;
    out.flush()?;
    Ok(true)
}

/// A JSON answer, with the session id for `initialize`.
fn json(out: &mut impl Write, body: &[u8], sid: Option<&str>) -> Result<bool> {
    let session = sid.map(|s| format!("mcp-session-id: {s}\r\n")).unwrap_or_default();
    write!(
        out,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{session}content-length: {}\r\n\r\n",
        body.len()
    )?;
    out.write_all(body)?;
    out.flush()?;
    Ok(true)
}

impl Shared {
    /// Appends a line to the record, if one is kept.
    fn note(&self, line: &str) {
        if let Some(file) = &self.record {
            if let Ok(mut f) = file.lock() {
                let _ = writeln!(f, "{line}");
            }
        }
    }
}
