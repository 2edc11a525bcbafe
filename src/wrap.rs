//! `tether wrap`: turns the validated command line into a shim configuration and runs it.
//!
//! Exit status: the server's own (a death by signal is re-raised), or, when Tether itself
//! fails, 127 (command not found), 126 (not executable) or 125 (anything else), like `env`.

use std::process::ExitCode;

use crate::cli::WrapArgs;
use crate::ids;
use crate::supervisor::exit::exit_like;
use crate::supervisor::ledger::location;
use crate::supervisor::shim::{self, ShimConfig};
use crate::supervisor::ssh::server::parse_env;
use crate::supervisor::ssh::{SshServer, SshTarget};

/// Status for Tether's own failures (usage, configuration, OS), kept clear of 126/127.
const TETHER_FAILED: u8 = 125;

/// Runs `tether wrap`; returns only on failure (on success the process exits like the server).
pub fn main(args: WrapArgs, state_dir: Option<&std::path::Path>) -> ExitCode {
    let cfg = match config(args, state_dir) {
        Ok(cfg) => cfg,
        Err(e) => {
            crate::error!("{e:#}");
            return ExitCode::from(TETHER_FAILED);
        }
    };
    match shim::run(&cfg) {
        Ok(exit) => exit_like(exit),
        Err(e) => {
            crate::error!("{e}");
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(TETHER_FAILED))
        }
    }
}

fn config(args: WrapArgs, state_dir: Option<&std::path::Path>) -> anyhow::Result<ShimConfig> {
    use anyhow::Context as _;
    let disabled = args.disabled().context("--disable / TETHER_DISABLE")?;
    let id_or_random = |given: Option<String>, what: &str| -> anyhow::Result<String> {
        match given {
            Some(id) if ids::is_valid_id(&id) => Ok(id),
            Some(id) => anyhow::bail!("--{what}-id {id:?}: expected 8 to 64 lowercase hex digits"),
            None => ids::random_id().with_context(|| format!("generating the {what} id")),
        }
    };
    if let Some(fd) = args.lifeline_fd {
        anyhow::ensure!(
            fd > 2,
            "--lifeline-fd {fd}: must be above 2 (0-2 are the server's stdio)"
        );
    }
    let state_dir = if args.no_ledger {
        None
    } else {
        match location::state_dir(state_dir) {
            Ok(dir) => Some(dir),
            Err(why) => {
                crate::warn!("{why}; running unrecorded");
                None
            }
        }
    };
    let server = args.name.clone().unwrap_or_else(|| default_name(&args.command));
    let ssh = ssh_server(&args)?;
    Ok(ShimConfig {
        ssh,
        standalone: args.owner_id.is_none(),
        scope: "wrap".into(),
        server,
        state_dir,
        instance: id_or_random(args.instance_id, "instance")?,
        owner: id_or_random(args.owner_id, "owner")?,
        argv: args.command,
        grace: args.grace,
        max_procs: args.max_procs,
        disabled,
        lifeline: args.lifeline_fd,
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
    }))
}

/// The command's file name: `npx` for `/usr/bin/npx -y pkg`.
fn default_name(command: &[std::ffi::OsString]) -> String {
    command
        .first()
        .map(std::path::Path::new)
        .and_then(std::path::Path::file_name)
        .map_or_else(|| "server".into(), |n| n.to_string_lossy().into_owned())
}
