//! `tether-fixture`: a deliberately misbehaving stdio MCP server for tests.
//!
//! Integration tests use it to prove that tether kills whole process trees:
//! it can leave an "escapee zoo" of sleepers behind (same group, own session,
//! double-forked orphans, one with an empty environment), ignore SIGTERM, hold
//! pipes open past EOF, emit garbage or broken answers, hang at start-up, crash
//! mid-call, and echo raw bytes. It prints a single `tether-fixture: ready ...`
//! line on stderr once everything exists.
//!
//! It is also a full MCP server for the gateway's tests and for the official
//! conformance suite run through `tether serve`: tools (the suite's `test_*`
//! ones and tether's own), prompts, resources, logging, completion, progress,
//! and sampling/elicitation requests to the client in the middle of a call.

// This is a test program, not part of the supervisor: building its own
// escapee processes is its whole purpose, so it must call Command::spawn.
#![allow(clippy::disallowed_methods)]

mod args;
mod conversation;
mod hostile;
mod http;
mod logging;
mod media;
mod notify;
mod plan;
mod prompts;
mod resources;
mod rpc;
mod server;
mod session;
mod signals;
mod sleeper;
mod spawn;
mod tls;
mod tools;
mod zoo;

use anyhow::{Context, Result};
use args::Args;
use clap::Parser;
use server::End;
use std::io::Write;

fn main() -> Result<()> {
    let args = Args::parse().expand_zoo();
    if let Some(kind) = args.sleeper {
        return sleeper::run_sleeper(kind, args.notify_fd, args.tough);
    }
    if let Some(kind) = args.intermediate {
        return sleeper::run_intermediate(kind, args.notify_fd, args.tag.as_deref(), args.tough);
    }
    run_server(&args)
}

fn run_server(args: &Args) -> Result<()> {
    write_stderr_lines(args.stderr_lines)?;
    if args.ignore_sigterm {
        signals::set_ignored(&signals::SERVER, true)?;
    }
    let sleepers = zoo::spawn_all(args)?;
    zoo::announce(&sleepers)?;
    hostile::before_serving(args)?;
    if let Some(addr) = args.http {
        return http::serve(addr, args);
    }
    let end = if args.raw_echo {
        server::raw_echo()?
    } else {
        server::serve(args)?
    };
    if let End::Crash(status) = end {
        std::process::exit(status);
    }
    if end == End::Eof && args.ignore_eof {
        signals::block_forever();
    }
    std::process::exit(args.exit_code)
}

fn write_stderr_lines(n: u64) -> Result<()> {
    let mut err = std::io::stderr().lock();
    for i in 1..=n {
        writeln!(err, "tether-fixture: stderr line {i}").context("writing to stderr")?;
    }
    Ok(())
}
