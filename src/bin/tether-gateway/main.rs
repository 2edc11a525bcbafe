//! `tether-gateway`: the program `tether serve` becomes (see the `mcp_tether` library for why it
//! is a program of its own). It takes `tether serve`'s arguments, logs through the gateway's
//! subscriber, and runs every server under `tether wrap`, the `tether` beside it. As PID 1 it
//! first forks a minimal init (`tether_supervisor::init`) and serves as that init's child.

mod logging;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use mcp_tether::serve_args::ServeArgs;
use mcp_tether::usage;
use tether_supervisor::init::{self, Placement};
use tether_supervisor::TETHER_FAILED;

/// The MCP gateway: every configured server behind one streamable-HTTP endpoint (or stdio),
/// each instance ended with its scope (session, request, reload, shutdown).
#[derive(Debug, clap::Parser)]
#[command(name = "tether serve", bin_name = "tether serve", version, long_about = None)]
struct Cli {
    /// The state directory holding the ledger (default: $TETHER_STATE_DIR, else
    /// $XDG_STATE_HOME/tether, else ~/.local/state/tether).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,

    #[command(flatten)]
    serve: ServeArgs,
}

fn main() -> ExitCode {
    let cli = match usage::parse::<Cli>() {
        Ok(cli) => cli,
        Err(status) => return status,
    };
    logging::init(cli.serve.log_format);
    // Before any thread or runtime: as PID 1 (a container's entrypoint) the process splits into
    // an init, which reaps every orphan of the namespace and forwards signals, and the gateway.
    match init::fork_if_pid1() {
        Ok(Placement::NotPid1) => {}
        Ok(Placement::UnderInit) => {
            tracing::info!(
                "started as PID 1: tether-init (pid 1) reaps the namespace's orphans and forwards signals to the gateway (pid {})",
                std::process::id()
            );
        }
        Err(e) => {
            tracing::error!("running as PID 1, which must reap every orphan: cannot fork its init: {e}");
            return ExitCode::from(TETHER_FAILED);
        }
    }
    serve::run(&cli.serve, cli.state_dir.as_deref())
}
