//! What `tether serve` costs a tool call: round trips through the gateway, throughput with
//! several clients, and the gateway's own CPU time and memory, each against the same fixture
//! server run directly over stdio with the same client code.
//!
//! Run with `cargo bench --bench gateway` (it uses the release binaries beside the bench
//! executable). Progress goes to stderr, the results to stdout as Markdown.
//!
//! The first of the benchmark phases: latency (`/mcp/{server}`, `/mcp` aggregated,
//! `--stdio`), throughput with 1 and 8 clients on one shared instance against as many direct
//! servers, CPU per call from `/proc/<gateway>/stat`, RSS idle and after load. Rounds are
//! alternated between the ways of calling, and every figure is the median of the rounds.
//! The gateway answers in its `json` response mode (JSON when the answer comes first), so the
//! client reads one body per call.

mod clients;
mod run;

fn main() {
    if let Err(e) = run::run() {
        eprintln!("bench gateway: error: {e:#}");
        std::process::exit(1);
    }
}

/// Progress on stderr.
pub fn progress(args: std::fmt::Arguments<'_>) {
    eprintln!("bench gateway: {args}");
}
