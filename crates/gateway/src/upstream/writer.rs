//! The task that writes queued messages to a server's stdin, one JSON line each.
//!
//! Everything queued by the time a write starts goes out in that one write, so a burst of
//! requests costs one system call, not one each. When every sender is gone (the instance was
//! dropped) or the server stops reading, the task ends and stdin closes: the spec's graceful
//! shutdown signal for a stdio server.

use std::sync::Weak;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::process::ChildStdin;
use tokio::sync::mpsc::Receiver;

use super::Upstream;

/// Most bytes gathered into one write.
const BATCH: usize = 256 * 1024;

/// Writes until the queue closes or the pipe breaks; a broken pipe ends the instance (a server
/// that stopped reading cannot be served).
pub async fn write(up: Weak<Upstream>, mut stdin: ChildStdin, mut queue: Receiver<Bytes>) {
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    while let Some(first) = queue.recv().await {
        buf.clear();
        buf.extend_from_slice(&first);
        buf.push(b'\n');
        while buf.len() < BATCH {
            match queue.try_recv() {
                Ok(more) => {
                    buf.extend_from_slice(&more);
                    buf.push(b'\n');
                }
                Err(_) => break,
            }
        }
        if let Err(e) = stdin.write_all(&buf).await {
            if let Some(up) = up.upgrade() {
                up.end(&format!("writing to the server's input failed: {e}"));
            }
            break;
        }
    }
}
