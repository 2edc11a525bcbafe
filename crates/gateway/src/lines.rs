//! Reading newline-delimited JSON-RPC with a size limit: a peer that sends a line longer than
//! `max_message_size` costs the gateway a bounded prefix (to name the message in an error), not
//! the whole line.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Bytes of an oversized line kept, to find its id.
pub const PREFIX: usize = 512;

/// What [`read_line`] read.
pub enum Line {
    /// A line, whole.
    Whole,
    /// A line longer than the limit, of this many bytes; only its first [`PREFIX`] bytes kept.
    TooLong(usize),
    /// The end of the input.
    Eof,
}

/// Reads one line into `line` (without the newline); past `max` bytes keeps only a prefix and
/// skips the rest of the line.
pub async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, line: &mut Vec<u8>, max: usize) -> std::io::Result<Line> {
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
