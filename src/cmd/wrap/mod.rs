//! `tether wrap`: turns the validated command line into a shim configuration and runs it.
//!
//! Exit status: the server's own (a death by signal is re-raised), or, when Tether itself
//! fails, 127 (command not found), 126 (not executable) or 125 (anything else: bad flags, a bad
//! configuration, an OS error), like `env`.

mod exit;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use tether_supervisor::launch::{default_name, Scope};
use tether_supervisor::layers::{Disabled, UnknownLayer};
use tether_supervisor::ledger::location;
use tether_supervisor::shim::{self, lifeline, ShimConfig};
use tether_supervisor::ssh::server::parse_env;
use tether_supervisor::ssh::{SshServer, SshTarget};
use tether_supervisor::{ids, TETHER_FAILED};

use crate::cli::parse_duration;

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
    /// cgroup, keeper, pidfd, pdeathsig, cookie.
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
    pub ssh_config: Option<PathBuf>,

    /// The private key to log in with (`ssh -i`).
    #[arg(long, value_name = "FILE", requires = "ssh")]
    pub ssh_identity: Option<PathBuf>,

    /// An environment variable for the remote server (repeatable). The value is in the command
    /// lines of this process, of ssh and of the remote wrapper, where `ps` shows it to every
    /// user of both hosts: secrets belong in a gateway's configured `env`.
    #[arg(long = "remote-env", value_name = "NAME=VALUE", requires = "ssh")]
    pub remote_env: Vec<String>,

    /// An environment variable for the remote server whose value the supervisor writes on
    /// stdin before anything else, in Tether's environment header (repeatable; for a program
    /// that starts `tether wrap` and holds its stdin, as the gateway does).
    #[arg(long = "remote-env-from-stdin", value_name = "NAME", requires = "ssh")]
    pub remote_env_from_stdin: Vec<String>,

    /// Instance id to use (32 hex digits; random by default).
    #[arg(long, hide = true)]
    pub instance_id: Option<String>,

    /// Owner id to use (random by default).
    #[arg(long, hide = true)]
    pub owner_id: Option<String>,

    /// The scope recorded in the ledger (a supervising gateway's: shared, session:KEY,
    /// request).
    #[arg(long, hide = true, default_value = "wrap")]
    pub scope: Scope,

    /// The server command and its arguments, after `--`.
    #[arg(required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

impl WrapArgs {
    /// The layers disabled by flags and by `TETHER_DISABLE`.
    fn disabled(&self) -> Result<Disabled, UnknownLayer> {
        let from_env = std::env::var("TETHER_DISABLE").unwrap_or_default();
        let from_flags = Disabled::parse_list(&self.disable.join(","))?;
        Ok(from_flags.union(Disabled::parse_list(&from_env)?))
    }
}

/// Runs `tether wrap`; returns only on failure (on success the process exits like the server).
pub fn run(args: WrapArgs, state_dir: Option<&Path>) -> ExitCode {
    let cfg = match config(args, state_dir) {
        Ok(cfg) => cfg,
        Err(e) => {
            tracing::error!("{e:#}");
            return ExitCode::from(TETHER_FAILED);
        }
    };
    match shim::wrap_main(cfg) {
        Ok(end) => exit::exit_like(end),
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn config(args: WrapArgs, state_dir: Option<&Path>) -> anyhow::Result<ShimConfig> {
    let disabled = args.disabled().context("--disable / TETHER_DISABLE")?;
    let id_or_random = |given: Option<String>, what: &str| -> anyhow::Result<String> {
        match given {
            Some(id) if ids::is_valid_id(&id) => Ok(id),
            Some(id) => anyhow::bail!("--{what}-id {id:?}: expected 8 to 64 lowercase hex digits"),
            None => ids::random_id().with_context(|| format!("generating the {what} id")),
        }
    };
    let lifeline = args.lifeline_fd.map(lifeline::adopt_inherited).transpose()?;
    let state_dir = if args.no_ledger {
        None
    } else {
        match location::state_dir(state_dir) {
            Ok(dir) => Some(dir),
            Err(why) => {
                tracing::warn!("{why}; running unrecorded");
                None
            }
        }
    };
    let server = args.name.clone().unwrap_or_else(|| default_name(&args.command));
    let ssh = ssh_server(&args)?;
    Ok(ShimConfig {
        ssh,
        standalone: args.owner_id.is_none(),
        scope: args.scope.to_string(),
        server,
        state_dir,
        instance: id_or_random(args.instance_id, "instance")?,
        owner: id_or_random(args.owner_id, "owner")?,
        argv: args.command,
        grace: args.grace,
        max_procs: args.max_procs,
        disabled,
        lifeline,
    })
}

/// The SSH server `--ssh` and its options describe, if any.
fn ssh_server(args: &WrapArgs) -> anyhow::Result<Option<SshServer>> {
    let Some(destination) = &args.ssh else {
        return Ok(None);
    };
    let mut target = SshTarget::parse(destination)?.with_options(&args.ssh_options)?;
    target.config_file.clone_from(&args.ssh_config);
    target.identity_file.clone_from(&args.ssh_identity);
    let env = args
        .remote_env
        .iter()
        .map(|a| parse_env(a))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(SshServer {
        target,
        command: args.command.clone(),
        env,
        env_from_stdin: args.remote_env_from_stdin.clone(),
    }))
}
