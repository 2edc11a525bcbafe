//! The `tether` binary: a thin edge over the library. Parses the command line, runs the
//! subcommand, prints the whole error chain, and exits with a deliberate status (for `wrap`,
//! the server's own).

use std::process::ExitCode;

use clap::Parser;
use mcp_tether::cli::{Cli, Command};
use mcp_tether::{demo, ps, reap, wrap};

fn main() -> ExitCode {
    mcp_tether::diag::init_from_env();
    let cli = Cli::parse();
    let state_dir = cli.state_dir.as_deref();
    match cli.command {
        Command::Wrap(args) => wrap::main(*args, state_dir),
        Command::Ps(args) => ps::main(&args, state_dir),
        Command::Reap(args) => reap::main(&args, state_dir),
        Command::Doctor(args) => mcp_tether::doctor::command::main(&args, state_dir),
        Command::SettleRemote(args) => mcp_tether::reap::settle_remote(&args, state_dir),
        Command::Demo => match demo::run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tether: demo failed: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
