//! The stdio loops: newline-delimited JSON-RPC, or raw byte echo.
//!
//! Lines are read whole into a reusable buffer so a single 1 MB+ request is
//! cheap, and every response line is flushed at once so clients never wait on
//! buffering. The misbehaviours (`--slow`, `--garbage`, `--exit-after`) live here.

use crate::args::Args;
use crate::rpc;
use anyhow::{Context, Result};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::time::Duration;

/// Written before each response with `--garbage`: invalid UTF-8 and not JSON.
const GARBAGE: &[u8] = b"\xff\xfe tether-fixture garbage: not json }{\n";

/// Why a serving loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// stdin reached end of file.
    Eof,
    /// `--exit-after` tool calls have been answered.
    ExitAfter,
}

/// Serves JSON-RPC on stdin/stdout until EOF or `--exit-after`.
pub fn serve(args: &Args) -> Result<End> {
    let mut input = BufReader::with_capacity(1 << 16, io::stdin().lock());
    let mut out = io::stdout().lock();
    let mut line = Vec::with_capacity(1 << 12);
    let mut calls: u64 = 0;
    loop {
        if args.exit_after.is_some_and(|n| calls >= n) {
            return Ok(End::ExitAfter);
        }
        line.clear();
        if input.read_until(b'\n', &mut line).context("reading stdin")? == 0 {
            return Ok(End::Eof);
        }
        let Some(reply) = rpc::handle_line(&line) else {
            continue;
        };
        if let Some(ms) = args.slow {
            std::thread::sleep(Duration::from_millis(ms));
        }
        let mut bytes = serde_json::to_vec(&reply.value).context("serializing a response")?;
        bytes.push(b'\n');
        if args.garbage {
            out.write_all(GARBAGE).context("writing garbage to stdout")?;
        }
        out.write_all(&bytes).context("writing a response to stdout")?;
        out.flush().context("flushing stdout")?;
        if reply.tool_call {
            calls += 1;
        }
    }
}

/// Copies stdin to stdout byte for byte until EOF, flushing each chunk.
pub fn raw_echo() -> Result<End> {
    let mut input = io::stdin().lock();
    let mut out = io::stdout().lock();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(End::Eof),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading stdin"),
        };
        out.write_all(&buf[..n]).context("writing stdout")?;
        out.flush().context("flushing stdout")?;
    }
}
