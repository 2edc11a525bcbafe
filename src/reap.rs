//! `tether reap`: one sweep of the ledger, reported.
//!
//! Exit status: 0 when the sweep ran (whatever it found), 1 when it could not run.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::cli::ReapArgs;
use crate::supervisor::ledger::{location, Ledger};
use crate::supervisor::sweep::{self, SweepLock};

/// Runs `tether reap`.
pub fn main(args: &ReapArgs, state_dir: Option<&Path>) -> ExitCode {
    match run(args, state_dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            crate::error!("reap: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &ReapArgs, state_dir: Option<&Path>) -> anyhow::Result<()> {
    let dir = location::state_dir(state_dir).map_err(anyhow::Error::msg)?;
    let mut ledger = Ledger::open(&dir)?;
    let _lock = SweepLock::take(&dir).with_context(|| format!("locking {}/sweep.lock", dir.display()))?;
    let report = sweep::sweep(&mut ledger, args.dry_run)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}

/// Runs `tether settle-remote` (exec'd by a watchdog whose shim died): ends the remote side of
/// one SSH instance. Only an explicit `--state-dir` is used: the watchdog passes the shim's.
pub fn settle_remote(args: &crate::cli::SettleRemoteArgs, state_dir: Option<&Path>) -> ExitCode {
    use crate::supervisor::ssh::RemoteRecord;
    let record = serde_json::from_str(&args.record)
        .ok()
        .and_then(|v| RemoteRecord::from_json(&v));
    let Some(record) = record else {
        crate::error!("settle-remote: the record is not a remote record: {:?}", args.record);
        return ExitCode::FAILURE;
    };
    match sweep::remote::settle_after_shim_death(state_dir, &args.instance, &record) {
        Some(outcome) if !outcome.settles() => {
            crate::error!("settle-remote: instance {}: {}", args.instance, outcome.describe());
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}
