//! The client of a running gateway's admin API (`admin.sock` in the state directory; the calls
//! are documented in the gateway's `admin` module), for `tether sessions`, `kill`, `reload`,
//! `teardowns` and the live `tether ps`: a few lines of HTTP/1.1 over std's `UnixStream`, since
//! `tether` links no HTTP library (it is also the shim, whose memory every instance pays).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tether_supervisor::ledger::location::{self, ADMIN_SOCKET};

/// Sends `method path` to the gateway's admin socket; its status and JSON body, or what went
/// wrong (no gateway running, above all) in words.
pub fn ask(state_dir: Option<&Path>, method: &str, path: &str) -> Result<(u16, Value), String> {
    let dir = location::state_dir(state_dir)?;
    let socket = dir.join(ADMIN_SOCKET);
    let mut stream = UnixStream::connect(&socket).map_err(|e| {
        format!(
            "no gateway answers at {} ({e}): is `tether serve` running with this state directory?",
            socket.display()
        )
    })?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: tether\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("writing to {}: {e}", socket.display()))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("reading from {}: {e}", socket.display()))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("the gateway's answer has no body")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("the gateway's answer has no status: {head:?}"))?;
    let body = serde_json::from_str(body).map_err(|e| format!("the gateway's answer is not JSON ({e}): {body:?}"))?;
    Ok((status, body))
}

/// Whether a gateway answers on the admin socket of the state directory: connecting is the
/// test (a socket a dead gateway left refuses).
pub fn gateway_answers(state_dir: Option<&Path>) -> bool {
    location::state_dir(state_dir).is_ok_and(|dir| UnixStream::connect(dir.join(ADMIN_SOCKET)).is_ok())
}
