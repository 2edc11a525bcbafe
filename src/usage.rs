//! Usage errors exit with 125, the status Tether gives all its own failures: under `tether wrap`
//! the exit status is otherwise the server's, and 2, clap's default, is a status servers use
//! themselves. `--help` and `--version` print to stdout and succeed.

use std::process::ExitCode;

use clap::Parser;
use tether_supervisor::TETHER_FAILED;

/// The command line, parsed; or the status to exit with, once clap has said why.
pub fn parse<T: Parser>() -> Result<T, ExitCode> {
    T::try_parse().map_err(|e| {
        let status = if e.use_stderr() { TETHER_FAILED } else { 0 };
        let _ = e.print();
        ExitCode::from(status)
    })
}
