//! What `tether serve` costs, beside its peers: one command (`scripts/bench`, which installs
//! the pinned servers and peers, builds the release binaries and runs `cargo bench --bench
//! gateway`) that starts everything itself on loopback and prints, as Markdown on stdout:
//!
//! 1. sequential round trips (p50/p99) directly over stdio, through the floor (a minimal relay,
//!    [`floor`]), through `/mcp/{server}` (JSON and event-stream answers), `/mcp` and `tether
//!    serve --stdio`, and through supergateway and mcp-proxy, with the fixture and with
//!    server-everything ([`latency`]);
//! 2. throughput with 1, 8 and 64 clients: one `shared` instance, `session` instances, the
//!    peers, against as many direct server processes ([`throughput`]);
//! 3. CPU time per call of the process in between (from `/proc`), and memory ([`memory`]);
//! 4. teardown latency and `tether wrap`'s start-up and teardown ([`teardown`]);
//! 5. session churn ([`churn`]); 6. a thousand sessions at once ([`thousand`]);
//! 7. the targets of issue 12, met or missed ([`report`]).
//!
//! With `--soak SECONDS` it runs the soak instead ([`soak`], `scripts/soak`).
//!
//! Figures are medians of rounds, and ratios are taken within this run. Every server the bench
//! starts is started through a link in the bench's own directory, so its command line carries
//! that path: at the end no process may carry it ([`procfs::tagged`]). Progress goes to stderr.

mod bins;
mod churn;
mod clients;
mod floor;
mod latency;
mod memory;
mod poll;
mod procfs;
mod report;
mod run;
mod servers;
mod services;
mod soak;
mod stats;
mod teardown;
mod thousand;
mod throughput;
mod ways;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--floor-relay") {
        if let Err(e) = floor::main(&args[2..]) {
            eprintln!("bench gateway: floor relay: {e:#}");
            std::process::exit(1);
        }
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--soak") {
        let seconds = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(3600);
        if let Err(e) = run::soak(std::time::Duration::from_secs(seconds)) {
            eprintln!("bench gateway: soak: {e:#}");
            std::process::exit(1);
        }
        return;
    }
    if let Err(e) = run::run() {
        eprintln!("bench gateway: error: {e:#}");
        std::process::exit(1);
    }
}

/// Progress on stderr.
pub fn progress(args: std::fmt::Arguments<'_>) {
    eprintln!("bench gateway: {args}");
}
