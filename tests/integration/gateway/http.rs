//! A minimal HTTP/1.1 client over `std::net`, enough to drive the gateway exactly: every header
//! as the test writes it (including wrong ones), one request per connection, bodies with a
//! length or chunked, and event streams read incrementally.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// How long one request may take before the test fails (servers in tests answer in ms).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A response read whole.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The JSON-RPC messages in the body: one JSON document, or the `data:` of each event.
    pub fn messages(&self) -> Vec<Value> {
        if self
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream"))
        {
            events(&self.text())
        } else if self.body.is_empty() {
            Vec::new()
        } else {
            match serde_json::from_slice::<Value>(&self.body) {
                Ok(Value::Array(items)) => items,
                Ok(v) => vec![v],
                Err(e) => panic!("status {}: body is not JSON ({e}): {}", self.status, self.text()),
            }
        }
    }
}

/// The JSON documents in an event stream's `data:` lines.
pub fn events(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|block| {
            let data: Vec<&str> = block
                .lines()
                .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
                .collect();
            (!data.is_empty()).then(|| {
                serde_json::from_str(&data.join("\n"))
                    .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {block}"))
            })
        })
        .collect()
}

/// Sends one request and reads the whole response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = send(addr, method, path, headers, body)?;
    let (status, headers) = read_head(&mut stream)?;
    let body = read_body(&mut stream, &headers)?;
    Ok(Response { status, headers, body })
}

/// A POST whose body is `len` bytes of `byte`, written from another thread while the answer
/// is read here, as a hostile client streams a huge message: the answer (a refusal) can come
/// before the body is all sent, and the body's writer stops at the first failed write.
pub fn post_endless(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    len: usize,
    byte: u8,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, PATIENCE)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {len}\r\nConnection: close\r\n\r\n"));
    stream.write_all(head.as_bytes())?;
    let mut writer = stream.try_clone()?;
    let body = std::thread::spawn(move || {
        let chunk = vec![byte; 1 << 20];
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len());
            if writer.write_all(&chunk[..n]).is_err() {
                return;
            }
            left -= n;
        }
    });
    let mut stream = BufReader::new(stream);
    let (status, headers) = read_head(&mut stream)?;
    let body_read = read_body(&mut stream, &headers)?;
    // Unblocks the writer if the gateway neither reads nor closes.
    let _ = stream.get_ref().shutdown(std::net::Shutdown::Both);
    let _ = body.join();
    Ok(Response {
        status,
        headers,
        body: body_read,
    })
}

fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<BufReader<TcpStream>> {
    let mut stream = TcpStream::connect_timeout(&addr, PATIENCE)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    Ok(BufReader::new(stream))
}

fn read_head(stream: &mut BufReader<TcpStream>) -> std::io::Result<(u16, Vec<(String, String)>)> {
    let mut line = String::new();
    stream.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        stream.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Ok((status, headers))
}

fn read_body(stream: &mut BufReader<TcpStream>, headers: &[(String, String)]) -> std::io::Result<Vec<u8>> {
    let get = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        while let Some(chunk) = read_chunk(stream)? {
            body.extend_from_slice(&chunk);
        }
    } else if let Some(n) = get("content-length").and_then(|n| n.parse::<usize>().ok()) {
        body.resize(n, 0);
        stream.read_exact(&mut body)?;
    } else {
        stream.read_to_end(&mut body)?;
    }
    Ok(body)
}

/// One chunk of a chunked body; `None` at the last one.
fn read_chunk(stream: &mut BufReader<TcpStream>) -> std::io::Result<Option<Vec<u8>>> {
    let mut size = String::new();
    if stream.read_line(&mut size)? == 0 {
        return Ok(None);
    }
    let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
        .map_err(|_| std::io::Error::other(format!("bad chunk size {size:?}")))?;
    let mut chunk = vec![0; n];
    stream.read_exact(&mut chunk)?;
    let mut crlf = [0u8; 2];
    stream.read_exact(&mut crlf)?;
    Ok((n > 0).then_some(chunk))
}

/// An event stream being read as it comes (the GET stream).
pub struct EventStream {
    /// The status code.
    pub status: u16,
    stream: BufReader<TcpStream>,
    chunked: bool,
    pending: String,
}

impl EventStream {
    /// Opens a GET stream.
    pub fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> std::io::Result<EventStream> {
        EventStream::request(addr, "GET", path, headers, b"")
    }

    /// Sends a request and reads its response as an event stream, as it comes (a POST whose
    /// answer is streamed: its headers arrive once the request is in flight upstream).
    pub fn request(
        addr: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<EventStream> {
        let mut stream = send(addr, method, path, headers, body)?;
        let (status, headers) = read_head(&mut stream)?;
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        Ok(EventStream {
            status,
            stream,
            chunked,
            pending: String::new(),
        })
    }

    /// Whether the server ends the stream within `within` (whatever it still sends is skipped);
    /// false on a timeout, so a stream left open cannot pass for one that ended.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            let _ = self.stream.get_ref().set_read_timeout(Some(left));
            if self.chunked {
                match read_chunk(&mut self.stream) {
                    Ok(None) => return true,
                    Ok(Some(_)) => {}
                    Err(e) => return e.kind() == std::io::ErrorKind::UnexpectedEof,
                }
            } else {
                let mut buf = vec![0; 8192];
                match self.stream.read(&mut buf) {
                    Ok(0) => return true,
                    Ok(_) => {}
                    Err(_) => return false,
                }
            }
        }
    }

    /// The next JSON-RPC message on the stream, waiting up to `within`; `None` at its end or on
    /// timeout.
    pub fn next(&mut self, within: Duration) -> Option<Value> {
        let _ = self.stream.get_ref().set_read_timeout(Some(within));
        loop {
            if let Some(at) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..at + 2).collect();
                if let Some(v) = events(&block).into_iter().next() {
                    return Some(v);
                }
                continue;
            }
            let more = if self.chunked {
                read_chunk(&mut self.stream).ok().flatten()?
            } else {
                let mut buf = vec![0; 8192];
                let n = self.stream.read(&mut buf).ok()?;
                buf.truncate(n);
                (n > 0).then_some(buf)?
            };
            self.pending.push_str(&String::from_utf8_lossy(&more));
        }
    }
}
