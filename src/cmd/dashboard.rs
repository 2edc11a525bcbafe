//! `tether dashboard`: the running gateway's dashboard address, with the admin token that logs
//! a browser in, asked over the admin socket (`GET /v1/dashboard`; only the gateway's user
//! reaches the socket, and only the socket gives the token). The gateway serves the dashboard
//! when it runs with `--admin-listen`; without it, this says so.

use std::path::Path;
use std::process::ExitCode;

use super::admin::answer;
use super::admin_client::ask;

/// `tether dashboard`.
#[derive(Debug, clap::Args)]
pub struct DashboardArgs {
    /// Print the gateway's JSON (`{"url": …}`) instead of the URL alone.
    #[arg(long)]
    pub json: bool,
}

/// Runs `tether dashboard`: prints the login URL, for a browser on this host.
pub fn run(args: &DashboardArgs, state_dir: Option<&Path>) -> ExitCode {
    answer(ask(state_dir, "GET", "/v1/dashboard"), args.json, |v| {
        format!("{}\n", v["url"].as_str().unwrap_or("?"))
    })
}
