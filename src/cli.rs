//! The command line, parsed and validated into configurations before anything runs.

use std::ffi::OsString;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::supervisor::layers::Disabled;

/// Tether: a leak-proof MCP gateway and process supervisor.
#[derive(Debug, Parser)]
#[command(name = "tether", version, about, long_about = None)]
pub struct Cli {
    /// The state directory holding the ledger (default: $TETHER_STATE_DIR, else
    /// $XDG_STATE_HOME/tether, else ~/.local/state/tether).
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<std::path::PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run an MCP stdio server under Tether: it and every process it starts end when the
    /// client goes away (stdin closed, stdout unread, client exited, or a signal).
    Wrap(Box<WrapArgs>),
    /// Show Tether at work: wrap the bundled fixture server, call its echo tool, end it, and
    /// prove that no process of it survived.
    Demo,
    /// List live owners, their instances and process trees, from the ledger joined with /proc.
    Ps(PsArgs),
    /// End what dead Tether processes left behind: re-check each recorded identity, kill
    /// through pidfds, remove stale cgroups, sweep cookies; report every kill and every skip.
    Reap(ReapArgs),
    /// Say what this host supports, which guarantees hold here, and which orphans exist.
    Doctor(DoctorArgs),
    /// (Internal) End an SSH server's remote side after its shim died; run by the watchdog.
    #[command(hide = true)]
    SettleRemote(SettleRemoteArgs),
}

/// `tether settle-remote`.
#[derive(Debug, clap::Args)]
pub struct SettleRemoteArgs {
    /// The instance id.
    pub instance: String,
    /// The remote record (JSON) to use when the ledger has none.
    pub record: String,
}

/// `tether ps`.
#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also list instances that have ended.
    #[arg(long)]
    pub all: bool,
}

/// `tether reap`.
#[derive(Debug, clap::Args)]
pub struct ReapArgs {
    /// Say what would be killed, kill nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `tether doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `tether wrap`.
#[derive(Debug, clap::Args)]
#[command(trailing_var_arg = true)]
pub struct WrapArgs {
    /// Time the server gets between the polite signal (SIGTERM) and SIGKILL.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub grace: Duration,

    /// Cap on the number of processes in the server's tree (cgroup pids.max).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_procs: Option<u32>,

    /// Switch a containment layer off (repeatable; also TETHER_DISABLE=a,b): group, subreaper,
    /// cgroup, pidfd, pdeathsig, cookie.
    #[arg(long = "disable", value_name = "LAYER", value_delimiter = ',')]
    pub disable: Vec<String>,

    /// End the server when this inherited fd reaches EOF, instead of watching stdin/stdout
    /// (for a supervising gateway, which holds the write end).
    #[arg(long, value_name = "FD")]
    pub lifeline_fd: Option<i32>,

    /// The server's name in the ledger and `tether ps` (default: the command's file name).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Do not record this instance in the ledger (then `tether reap` cannot find what a
    /// SIGKILL of this shim leaves on a host without cgroups).
    #[arg(long)]
    pub no_ledger: bool,

    /// Run CMD on this SSH host, under a remote wrapper that ties it to the connection
    /// ([USER@]HOST[:PORT]; `ssh -T`, BatchMode, one connection per server, no PTY).
    #[arg(long, value_name = "[USER@]HOST[:PORT]")]
    pub ssh: Option<String>,

    /// An ssh option, as for `ssh -o` (repeatable): IdentityFile=…, UserKnownHostsFile=…
    #[arg(long = "ssh-option", value_name = "NAME=VALUE", requires = "ssh")]
    pub ssh_options: Vec<String>,

    /// The ssh client config file (`ssh -F`; `/dev/null` for none).
    #[arg(long, value_name = "FILE", requires = "ssh")]
    pub ssh_config: Option<std::path::PathBuf>,

    /// The private key to log in with (`ssh -i`).
    #[arg(long, value_name = "FILE", requires = "ssh")]
    pub ssh_identity: Option<std::path::PathBuf>,

    /// An environment variable for the remote server (repeatable).
    #[arg(long = "remote-env", value_name = "NAME=VALUE", requires = "ssh")]
    pub remote_env: Vec<String>,

    /// Instance id to use (32 hex digits; random by default).
    #[arg(long, hide = true)]
    pub instance_id: Option<String>,

    /// Owner id to use (random by default).
    #[arg(long, hide = true)]
    pub owner_id: Option<String>,

    /// The server command and its arguments, after `--`.
    #[arg(required = true, value_name = "CMD", allow_hyphen_values = true)]
    pub command: Vec<OsString>,
}

impl WrapArgs {
    /// The layers disabled by flags and by `TETHER_DISABLE`.
    pub fn disabled(&self) -> Result<Disabled, crate::supervisor::layers::UnknownLayer> {
        let from_env = std::env::var("TETHER_DISABLE").unwrap_or_default();
        let from_flags = Disabled::parse_list(&self.disable.join(","))?;
        Ok(from_flags.union(Disabled::parse_list(&from_env)?))
    }
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
        assert_eq!(w.command, vec![OsString::from("node"), "--grace".into(), "x".into()]);
    }

    #[test]
    fn wrap_needs_a_command() {
        assert!(Cli::try_parse_from(["tether", "wrap"]).is_err());
        assert!(Cli::try_parse_from(["tether", "wrap", "--max-procs", "0", "--", "x"]).is_err());
    }
}
