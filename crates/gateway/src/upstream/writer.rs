//! The task that writes queued messages to a server's stdin, one JSON line each.
//!
//! Everything queued by the time a write starts goes out in that one write, so a burst of
//! requests costs one system call, not one each. When every sender is gone (the instance was
//! dropped) or the server stops reading, the task ends and stdin closes: the spec's graceful
//! shutdown signal for a stdio server.
//!
//! Before any message, an SSH server's environment header (`Prepared::stdin_first`): the
//! remote wrapper reads it and only then starts the server, whose input begins right after.

use std::sync::Weak;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::process::ChildStdin;
use tokio::sync::mpsc::Receiver;

use super::Upstream;

/// Appends a message's line, as the server's revision has it written (a 2026-07-28 server's
/// messages carry the envelope; some are answered by the gateway and not written).
fn add(up: &Weak<Upstream>, buf: &mut Vec<u8>, message: Bytes) {
    let message = match up.upgrade() {
        Some(u) => match u.revision.get() {
            Some(r) => match r.to_stdio(&u, &message) {
                Some(m) => m,
                None => return,
            },
            None => message,
        },
        None => message,
    };
    buf.extend_from_slice(&message);
    buf.push(b'\n');
}

/// Most bytes gathered into one write.
const BATCH: usize = 256 * 1024;

/// Writes `first` (empty for most servers), then messages until the queue closes or the pipe
/// breaks; a broken pipe ends the instance (a server that stopped reading cannot be served).
pub async fn write(up: Weak<Upstream>, mut stdin: ChildStdin, first: Vec<u8>, mut queue: Receiver<Bytes>) {
    if !first.is_empty() {
        let written = stdin.write_all(&first).await;
        // The header holds secrets: not kept for the instance's life.
        drop(first);
        if let Err(e) = written {
            fail(&up, &e);
            return;
        }
    }
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    while let Some(first) = queue.recv().await {
        buf.clear();
        add(&up, &mut buf, first);
        while buf.len() < BATCH {
            match queue.try_recv() {
                Ok(more) => add(&up, &mut buf, more),
                Err(_) => break,
            }
        }
        if buf.is_empty() {
            continue;
        }
        if let Err(e) = stdin.write_all(&buf).await {
            fail(&up, &e);
            break;
        }
    }
}

/// Ends the instance whose input could not be written.
fn fail(up: &Weak<Upstream>, e: &std::io::Error) {
    if let Some(up) = up.upgrade() {
        up.end(
            crate::cause::Cause::ServerFailed,
            &format!("writing to the server's input failed: {e}"),
        );
    }
}
