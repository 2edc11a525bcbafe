//! `tether settle-remote` (internal): ends an SSH server's remote side after its shim died.
//!
//! A watchdog whose shim was SIGKILLed execs this, a fresh process, because an SQLite
//! connection must not be used across a fork; it runs the remote kill the shim would have run
//! and records the outcome. Exit status 1 when the remote side is still unsettled (the next
//! `tether reap` retries it).

use std::path::Path;
use std::process::ExitCode;

use tether_supervisor::ssh::RemoteSide;
use tether_supervisor::sweep::remote_kills;

/// `tether settle-remote`.
#[derive(Debug, clap::Args)]
pub struct SettleRemoteArgs {
    /// The instance id.
    pub instance: String,
    /// The remote side (JSON) to use when the ledger has none.
    pub record: String,
}

/// Runs `tether settle-remote` (exec'd by a watchdog whose shim died): ends the remote side of
/// one SSH instance. Only an explicit `--state-dir` is used: the watchdog passes the shim's.
pub fn run(args: &SettleRemoteArgs, state_dir: Option<&Path>) -> ExitCode {
    let record = serde_json::from_str(&args.record)
        .ok()
        .and_then(|v| RemoteSide::from_json(&v));
    let Some(record) = record else {
        tracing::error!("settle-remote: the record is not a remote record: {:?}", args.record);
        return ExitCode::FAILURE;
    };
    match remote_kills::settle_after_shim_death(state_dir, &args.instance, &record) {
        Some(outcome) if !outcome.settles() => {
            tracing::error!("settle-remote: instance {}: {}", args.instance, outcome.describe());
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}
