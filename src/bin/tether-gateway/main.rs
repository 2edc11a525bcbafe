//! `tether-gateway`: the program `tether serve` becomes (see the `mcp_tether` library for why it
//! is a program of its own). It takes `tether serve`'s arguments, logs through the gateway's
//! subscriber, and runs every server under `tether wrap`, the `tether` beside it.

mod logging;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use mcp_tether::serve_args::ServeArgs;
use mcp_tether::usage;

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
    serve::run(&cli.serve, cli.state_dir.as_deref())
}
