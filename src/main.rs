//! The `tether` binary: a thin edge over the libraries. Parses the command line, sets up
//! logging, runs one subcommand (one module each under [`cmd`]), and exits with a deliberate
//! status: for `wrap` the server's own, for Tether's own failures (usage errors included) 125.

mod cli;
mod cmd;

use std::process::ExitCode;

use mcp_tether::{logging, usage};

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match usage::parse::<Cli>() {
        Ok(cli) => cli,
        Err(status) => return status,
    };
    let state_dir = cli.state_dir.as_deref();
    // `tether serve` becomes the gateway, which sets up its own logging (once: a bad
    // TETHER_LOG is named by it alone).
    if let Command::Serve(args) = &cli.command {
        return cmd::serve::run(args, state_dir);
    }
    // A shim stays quiet on its client's stderr unless something is wrong.
    logging::init_plain();
    match cli.command {
        Command::Wrap(args) => cmd::wrap::run(*args, state_dir),
        Command::Ps(args) => cmd::ps::run(&args, state_dir),
        Command::Sessions(args) => cmd::admin::sessions(&args, state_dir),
        Command::Kill(args) => cmd::admin::kill(&args, state_dir),
        Command::Reload(args) => cmd::admin::reload(&args, state_dir),
        Command::Teardowns(args) => cmd::admin::teardowns(&args, state_dir),
        Command::Dashboard(args) => cmd::dashboard::run(&args, state_dir),
        Command::Reap(args) => cmd::reap::run(&args, state_dir),
        Command::Serve(args) => cmd::serve::run(&args, state_dir),
        Command::Doctor(args) => cmd::doctor::run(&args, state_dir),
        Command::SettleRemote(args) => cmd::settle_remote::run(&args, state_dir),
        Command::Demo => cmd::demo::run(),
    }
}
