//! The `tether` binary: a thin edge over the libraries. Parses the command line, sets up
//! logging, runs one subcommand (one module each under [`cmd`]), and exits with a deliberate
//! status: for `wrap` the server's own, for Tether's own failures (usage errors included) 125.

mod cli;
mod cmd;
mod logging;

use std::process::ExitCode;

use clap::Parser;
use tether_supervisor::TETHER_FAILED;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print to stdout and succeed; every usage error is 125.
            let status = if e.use_stderr() { TETHER_FAILED } else { 0 };
            let _ = e.print();
            return ExitCode::from(status);
        }
    };
    // A gateway says what it does (sessions, instances); a shim stays quiet on its client's
    // stderr unless something is wrong.
    logging::init(match cli.command {
        Command::Serve(_) => logging::Default::Info,
        _ => logging::Default::Warn,
    });
    let state_dir = cli.state_dir.as_deref();
    match cli.command {
        Command::Wrap(args) => cmd::wrap::run(*args, state_dir),
        Command::Ps(args) => cmd::ps::run(&args, state_dir),
        Command::Reap(args) => cmd::reap::run(&args, state_dir),
        Command::Serve(args) => cmd::serve::run(&args, state_dir),
        Command::Doctor(args) => cmd::doctor::run(&args, state_dir),
        Command::SettleRemote(args) => cmd::settle_remote::run(&args, state_dir),
        Command::Demo => cmd::demo::run(),
    }
}
