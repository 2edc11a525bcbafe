//! The command line: the global options and one subcommand, each defined by its module under
//! [`crate::cmd`]. Raw arguments become validated configurations there, before anything runs.
//!
//! Every usage error (an unknown option, a missing value, a bad duration) exits with 125, the
//! status Tether gives all its own failures: under `tether wrap` the exit status is otherwise
//! the server's, and 2, clap's default, is a status servers use themselves.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::cmd;

/// Tether: a leak-proof MCP gateway and process supervisor.
#[derive(Debug, Parser)]
#[command(name = "tether", version, about, long_about = None)]
pub struct Cli {
    /// The state directory holding the ledger (default: $TETHER_STATE_DIR, else
    /// $XDG_STATE_HOME/tether, else ~/.local/state/tether).
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run an MCP stdio server under Tether: it and every process it starts end when the
    /// client goes away (stdin closed, stdout unread, client exited, or a signal).
    Wrap(Box<cmd::wrap::WrapArgs>),
    /// Run the MCP gateway: every configured server behind one streamable-HTTP endpoint (or
    /// stdio), each instance ended with its scope (session, request, reload, shutdown).
    Serve(cmd::serve::ServeArgs),
    /// Show Tether at work: wrap the bundled fixture server, call its echo tool, end it, and
    /// prove that no process of it survived.
    Demo,
    /// List live owners, their instances and process trees, from the ledger joined with /proc.
    Ps(cmd::ps::PsArgs),
    /// List a running gateway's sessions and instances (its admin API).
    Sessions(cmd::admin::SessionsArgs),
    /// End a running gateway's session or instance, and every process of it.
    Kill(cmd::admin::KillArgs),
    /// Make a running gateway read its configuration again (as SIGHUP does).
    Reload(cmd::admin::ReloadArgs),
    /// A running gateway's last instance teardowns: why, how long, how the shim exited.
    Teardowns(cmd::admin::TeardownsArgs),
    /// Print a running gateway's dashboard address, with the token that logs a browser in
    /// (the gateway runs with --admin-listen).
    Dashboard(cmd::dashboard::DashboardArgs),
    /// End what dead Tether processes left behind: re-check each recorded identity, kill
    /// through pidfds, remove stale cgroups, sweep cookies; report every kill and every skip.
    Reap(cmd::reap::ReapArgs),
    /// Say what this host supports, which guarantees hold here, and which orphans exist.
    Doctor(cmd::doctor::DoctorArgs),
    /// (Internal) End an SSH server's remote side after its shim died; run by the watchdog.
    #[command(hide = true)]
    SettleRemote(cmd::settle_remote::SettleRemoteArgs),
}

/// The longest duration accepted on the command line.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Parses `500ms`, `2s`, `1m`, or a bare number of seconds, up to a day.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && (0.0..=MAX_DURATION.as_secs_f64()).contains(&secs) {
            return Ok(Duration::from_secs_f64(secs));
        }
        if secs > MAX_DURATION.as_secs_f64() {
            return Err(format!("{s:?} is longer than a day"));
        }
    }
    let d = humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration like 500ms, 2s or 1m: {e}"))?;
    if d > MAX_DURATION {
        return Err(format!("{s:?} is longer than a day"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("1e20").is_err());
        assert!(parse_duration("3days").is_err());
    }

    #[test]
    fn wrap_takes_everything_after_the_separator() {
        let cli = Cli::try_parse_from(["tether", "wrap", "--grace", "1s", "--", "node", "--grace", "x"]).unwrap();
        let Command::Wrap(w) = cli.command else {
            panic!("not wrap")
        };
        assert_eq!(w.grace, Duration::from_secs(1));
        assert_eq!(
            w.command,
            vec![std::ffi::OsString::from("node"), "--grace".into(), "x".into()]
        );
    }

    #[test]
    fn wrap_takes_options_after_the_command_as_the_command_s() {
        let cli = Cli::try_parse_from(["tether", "wrap", "node", "--grace", "x"]).unwrap();
        let Command::Wrap(w) = cli.command else {
            panic!("not wrap")
        };
        assert_eq!(
            w.command,
            vec![std::ffi::OsString::from("node"), "--grace".into(), "x".into()]
        );
    }

    #[test]
    fn an_unknown_option_before_the_command_is_a_usage_error() {
        let err = Cli::try_parse_from(["tether", "wrap", "--grac", "1s", "--", "x"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
        assert!(err.to_string().contains("--grac"), "{err}");
    }

    #[test]
    fn wrap_needs_a_command() {
        assert!(Cli::try_parse_from(["tether", "wrap"]).is_err());
        assert!(Cli::try_parse_from(["tether", "wrap", "--max-procs", "0", "--", "x"]).is_err());
    }
}
