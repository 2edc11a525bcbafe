//! The bench's clients: one over a server's stdio (the direct baseline, and `tether serve
//! --stdio`), one over HTTP/1.1 with keep-alive (the gateway), both sending the same `echo`
//! calls and reading one answer each.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};

/// The `initialize` every client sends.
pub const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#;

/// An `echo` call of `tool` with id `id`.
pub fn echo(id: u64, tool: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{"text":"bench {id}"}}}}}}"#
    )
}

/// Something a call can be made through.
pub trait Caller {
    /// Sends one request line and reads its answer; checks the answer carries `expect`.
    fn call(&mut self, request: &str, expect: &str) -> Result<()>;
}

/// A server over its stdin and stdout.
pub struct Piped {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    line: String,
}

impl Piped {
    /// Starts `command` and initializes it.
    #[allow(clippy::disallowed_methods)] // The bench starts what it measures.
    pub fn start(mut command: Command) -> Result<Piped> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting a stdio server")?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("stdout")?);
        let mut s = Piped {
            child,
            stdin,
            stdout,
            line: String::new(),
        };
        s.call(INITIALIZE, "protocolVersion")?;
        writeln!(s.stdin, r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#)?;
        Ok(s)
    }
}

impl Caller for Piped {
    fn call(&mut self, request: &str, expect: &str) -> Result<()> {
        self.stdin.write_all(request.as_bytes())?;
        self.stdin.write_all(b"\n")?;
        self.stdin.flush()?;
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client of the gateway over HTTP/1.1, one connection kept alive.
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
        let stream = TcpStream::connect(addr).context("connecting to the gateway")?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut h = Http {
            stream: BufReader::new(stream),
            addr,
            path: path.to_string(),
            session: None,
            head: String::new(),
            body: Vec::new(),
        };
        h.call(INITIALIZE, "protocolVersion")?;
        h.post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)?;
        Ok(h)
    }

    /// POSTs `body`; returns the status, the body kept in `self.body`.
    fn post(&mut self, body: &str) -> Result<u16> {
        let session = self
            .session
            .as_ref()
            .map(|s| format!("Mcp-Session-Id: {s}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-06-18\r\n{session}Content-Length: {}\r\n\r\n{body}",
            self.path,
            self.addr,
            body.len()
        );
        self.stream.get_mut().write_all(request.as_bytes())?;
        let mut status = 0;
        let mut length = None;
        let mut first = true;
        loop {
            self.head.clear();
            ensure!(
                self.stream.read_line(&mut self.head)? > 0,
                "the gateway closed the connection"
            );
            let line = self.head.trim_end();
            if first {
                status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                first = false;
                continue;
            }
            if line.is_empty() {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse::<usize>().ok();
            } else if let Some(v) = lower.strip_prefix("mcp-session-id:") {
                let _ = v;
                self.session = Some(line["mcp-session-id:".len()..].trim().to_string());
            } else if lower.starts_with("transfer-encoding:") {
                bail!("a chunked answer: the bench expects response_mode = \"json\"");
            }
        }
        self.body.clear();
        if let Some(n) = length {
            self.body.resize(n, 0);
            self.stream.read_exact(&mut self.body)?;
        }
        Ok(status)
    }
}

impl Caller for Http {
    fn call(&mut self, request: &str, expect: &str) -> Result<()> {
        let status = self.post(request)?;
        ensure!(
            status == 200,
            "status {status}: {}",
            String::from_utf8_lossy(&self.body)
        );
        let text = std::str::from_utf8(&self.body)?;
        ensure!(text.contains(expect), "unexpected answer: {text}");
        Ok(())
    }
}
