//! The bench's clients: one over a server's stdio (the direct baseline, `tether serve
//! --stdio`, `tether wrap`), one over HTTP/1.1 with keep-alive (Tether and the peers). Both
//! send the same `echo` calls and read one answer each. The HTTP client reads a JSON body or
//! an event stream (chunked or not), skipping what is not the answer, as any client must:
//! supergateway always answers with a stream, mcp-proxy with JSON, Tether as configured.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

/// The `initialize` every client sends.
pub const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// An `echo` call of `tool` with id `id` (the fixture and server-everything both take
/// `message`); its answer carries [`expected`].
pub fn echo(id: u64, tool: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{"message":"bench {id}."}}}}}}"#
    )
}

/// What the answer to `echo(id, …)` contains.
pub fn expected(id: u64) -> String {
    format!("bench {id}.")
}

/// Something a call can be made through.
pub trait Caller: Send {
    /// Sends one request and reads its answer; checks the answer carries `expect`.
    fn call(&mut self, request: &str, expect: &str) -> Result<()>;

    /// Calls `echo` as `tool` with id `id`, checked.
    fn echo(&mut self, id: u64, tool: &str) -> Result<()> {
        self.call(&echo(id, tool), &expected(id))
    }
}

/// A server over its stdin and stdout.
pub struct Piped {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    line: String,
}

impl Piped {
    /// Starts `command` and initializes it.
    pub fn start(command: Command) -> Result<Piped> {
        let mut s = Piped::spawn(command)?;
        s.call(INITIALIZE, "protocolVersion")?;
        s.send(INITIALIZED)?;
        Ok(s)
    }

    /// Starts `command`, nothing said yet.
    #[allow(clippy::disallowed_methods)] // The bench starts what it measures.
    pub fn spawn(mut command: Command) -> Result<Piped> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting a stdio server")?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("stdout")?);
        Ok(Piped {
            child,
            stdin: Some(stdin),
            stdout,
            line: String::new(),
        })
    }

    fn send(&mut self, line: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().context("stdin closed")?;
        stdin.write_all(line.as_bytes())?;
        stdin.write_all(b"\n")?;
        stdin.flush()?;
        Ok(())
    }

    /// Closes stdin and waits for the process to exit: how long that took.
    pub fn finish(mut self) -> Result<Duration> {
        let t = Instant::now();
        drop(self.stdin.take());
        self.child.wait()?;
        Ok(t.elapsed())
    }
}

impl Caller for Piped {
    fn call(&mut self, request: &str, expect: &str) -> Result<()> {
        self.send(request)?;
        loop {
            self.line.clear();
            ensure!(
                self.stdout.read_line(&mut self.line)? > 0,
                "the server closed its output"
            );
            // Skip what is not the answer (notifications).
            if self.line.contains("\"id\"") {
                ensure!(self.line.contains(expect), "unexpected answer: {}", self.line.trim());
                return Ok(());
            }
        }
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A client of an MCP endpoint over HTTP/1.1, one connection kept alive.
pub struct Http {
    stream: BufReader<TcpStream>,
    addr: SocketAddr,
    path: String,
    session: Option<String>,
    head: String,
    body: Vec<u8>,
}

impl Http {
    /// Connects to `path` at `addr` and opens a session.
    pub fn open(addr: SocketAddr, path: &str) -> Result<Http> {
        let mut h = Http::connect(addr, path)?;
        h.initialize()?;
        Ok(h)
    }

    /// Connects, no session yet.
    pub fn connect(addr: SocketAddr, path: &str) -> Result<Http> {
        let stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Http {
            stream: BufReader::new(stream),
            addr,
            path: path.to_string(),
            session: None,
            head: String::new(),
            body: Vec::new(),
        })
    }

    /// Opens a session on this connection (a new one, if one was open).
    pub fn initialize(&mut self) -> Result<()> {
        self.session = None;
        self.call(INITIALIZE, "protocolVersion")?;
        ensure!(self.session.is_some(), "no Mcp-Session-Id in the answer to initialize");
        let status = self.request("POST", Some(INITIALIZED))?;
        ensure!(status == 202, "notifications/initialized: status {status}");
        Ok(())
    }

    /// The session open on this connection, taken (the connection can open another).
    pub fn take_session(&mut self) -> Option<String> {
        self.session.take()
    }

    /// Speaks for session `id` from now on.
    pub fn use_session(&mut self, id: String) {
        self.session = Some(id);
    }

    /// Ends the session (DELETE); the status.
    pub fn delete(&mut self) -> Result<u16> {
        let status = self.request("DELETE", None)?;
        self.session = None;
        Ok(status)
    }

    /// Sends a request; returns the status, the body kept in `self.body`. A connection the
    /// server closed while it was idle (the peers close theirs after 5 s) is opened again and
    /// the request sent again, once, as HTTP clients do.
    fn request(&mut self, method: &str, body: Option<&str>) -> Result<u16> {
        match self.exchange(method, body) {
            Err(e) if e.downcast_ref::<Closed>().is_some() => {
                let stream = TcpStream::connect(self.addr).with_context(|| format!("connecting to {}", self.addr))?;
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(Duration::from_secs(60)))?;
                self.stream = BufReader::new(stream);
                self.exchange(method, body)
            }
            other => other,
        }
    }

    fn exchange(&mut self, method: &str, body: Option<&str>) -> Result<u16> {
        let session = self
            .session
            .as_ref()
            .map(|s| format!("Mcp-Session-Id: {s}\r\n"))
            .unwrap_or_default();
        let body = body.unwrap_or("");
        let request = format!(
            "{method} {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-06-18\r\n{session}Content-Length: {}\r\n\r\n{body}",
            self.path,
            self.addr,
            body.len()
        );
        if self.stream.get_mut().write_all(request.as_bytes()).is_err() {
            return Err(Closed.into());
        }
        let mut status = 0;
        let mut length = None;
        let mut chunked = false;
        let mut first = true;
        loop {
            self.head.clear();
            match self.stream.read_line(&mut self.head) {
                Ok(0) | Err(_) if first => return Err(Closed.into()),
                Ok(0) => bail!("the server closed the connection mid-answer"),
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
            let line = self.head.trim_end();
            if first {
                status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                first = false;
                continue;
            }
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse::<usize>().ok(),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "mcp-session-id" => self.session = Some(value.to_string()),
                _ => {}
            }
        }
        self.body.clear();
        if chunked {
            self.read_chunks()?;
        } else if let Some(n) = length {
            self.body.resize(n, 0);
            self.stream.read_exact(&mut self.body)?;
        }
        Ok(status)
    }

    fn read_chunks(&mut self) -> Result<()> {
        loop {
            self.head.clear();
            ensure!(self.stream.read_line(&mut self.head)? > 0, "the stream ended mid-body");
            let size = usize::from_str_radix(self.head.trim().split(';').next().unwrap_or(""), 16)
                .with_context(|| format!("a chunk size: {:?}", self.head))?;
            let start = self.body.len();
            self.body.resize(start + size, 0);
            self.stream.read_exact(&mut self.body[start..])?;
            let mut crlf = [0u8; 2];
            self.stream.read_exact(&mut crlf)?;
            if size == 0 {
                return Ok(());
            }
        }
    }
}

/// The server closed the connection before answering.
#[derive(Debug)]
struct Closed;

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the server closed the connection")
    }
}

impl std::error::Error for Closed {}

impl Caller for Http {
    fn call(&mut self, request: &str, expect: &str) -> Result<()> {
        let status = self.request("POST", Some(request))?;
        let text = std::str::from_utf8(&self.body)?;
        ensure!(status == 200, "status {status}: {text}");
        if text.trim_start().starts_with('{') {
            ensure!(text.contains(expect), "unexpected answer: {text}");
            return Ok(());
        }
        // An event stream: the answer is the event with an id.
        for data in text.lines().filter_map(|l| l.strip_prefix("data:")) {
            if data.contains("\"id\"") {
                ensure!(data.contains(expect), "unexpected answer: {data}");
                return Ok(());
            }
        }
        bail!("no answer in the stream: {text}")
    }
}
