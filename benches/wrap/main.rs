//! What `tether wrap` costs an MCP client: round-trip latency, start-up and teardown time,
//! memory, and a large-line check, each measured against running the same server directly.
//!
//! Run with `cargo bench --bench wrap` (it uses the release binaries `tether` and
//! `tether-fixture` next to the bench executable). Progress goes to stderr, the results to
//! stdout as Markdown tables that can be pasted into a README.
//!
//! The shim is not on the data path (the server gets the client's own pipes), so round trips
//! should not differ beyond noise; start-up and teardown show what the containment set-up costs.
//! Direct and wrapped runs are interleaved (and their order alternated) to cancel drift.
//!
//! This file runs the phases in order and always ends with the leak check; each phase, the
//! client it drives the servers with, and the report live in their own modules.

mod affinity;
mod binaries;
mod client;
mod context;
mod large_line;
mod latency;
mod leaks;
mod memory;
mod messages;
mod pipes;
mod procfs;
mod report;
mod smaps;
mod startup;
mod stats;

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{ensure, Result};

use crate::context::Ctx;
use crate::report::Results;

fn main() {
    if let Err(e) = run() {
        eprintln!("bench wrap: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    // `cargo bench` passes `--bench`; this bench has no options, so arguments are ignored.
    let ctx = Ctx::new(binaries::locate()?)?;
    let t0 = Instant::now();
    let measured = measure(&ctx);
    // The leak check runs whatever happened above: a failed phase must not hide a leak.
    progress(format_args!("leak check"));
    let leaks = leaks::check(&ctx)?;
    let leak_line = leaks.summary(&ctx);
    let results = match measured {
        Ok(results) => results,
        Err(e) => {
            progress(format_args!("{leak_line}"));
            return Err(e);
        }
    };
    progress(format_args!("done in {:.1} s", t0.elapsed().as_secs_f64()));
    let mut out = String::new();
    report::write(&mut out, &results)?;
    writeln!(out, "{leak_line}")?;
    print!("{out}");
    ensure!(leaks.clean(), "processes of this bench survived (see above)");
    Ok(())
}

/// Runs every phase, in the order the report shows them.
fn measure(ctx: &Ctx) -> Result<Results> {
    let latency = latency::measure(ctx)?;
    let startups = startup::measure(ctx)?;
    let memory = memory::measure(ctx)?;
    let large_lines = large_line::measure(ctx)?;
    Ok(Results {
        latency,
        startups,
        memory,
        large_lines,
    })
}

/// One progress line on stderr (stdout carries only the report).
pub fn progress(args: std::fmt::Arguments<'_>) {
    eprintln!("bench wrap: {args}");
}
