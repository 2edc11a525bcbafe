//! `tether serve`: this process becomes `tether-gateway`, the gateway program installed beside
//! `tether` (exec: the same pid, so a supervisor's signals and the ledger's owner row follow).
//!
//! The gateway is a program of its own so that `tether`, which every shim runs for its server's
//! whole life, maps no async runtime, HTTP stack or log formatter (see the crate's `lib.rs`).
//! The arguments were already parsed here, so a usage error is reported before anything runs.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, ExitCode};

pub use mcp_tether::serve_args::ServeArgs;
use tether_supervisor::TETHER_FAILED;

/// The gateway program's file name, beside `tether`.
pub const GATEWAY: &str = "tether-gateway";

/// Runs `tether serve`: returns only when the gateway program could not be run.
pub fn run(args: &ServeArgs, state_dir: Option<&Path>) -> ExitCode {
    let gateway = match std::env::current_exe() {
        Ok(tether) => tether.with_file_name(GATEWAY),
        Err(e) => {
            mcp_tether::logging::init_plain();
            tracing::error!("locating the tether executable, beside which {GATEWAY} is: {e}");
            return ExitCode::from(TETHER_FAILED);
        }
    };
    let mut cmd = Command::new(&gateway);
    if let Some(dir) = state_dir {
        cmd.arg("--state-dir").arg(dir);
    }
    cmd.args(args.to_args());
    let e = cmd.exec();
    // Logging was left to the gateway program; it did not run, so this says why.
    mcp_tether::logging::init_plain();
    tracing::error!(
        "tether serve runs {}, which could not be run: {e} (it is built and installed with tether: `cargo build --release`, `cargo install mcp-tether`)",
        gateway.display()
    );
    ExitCode::from(TETHER_FAILED)
}
