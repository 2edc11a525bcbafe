//! `tether reap`: one sweep of the ledger, reported.
//!
//! Exit status: 0 when the sweep ran (whatever it found), 1 when it could not run.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use tether_supervisor::ledger::{location, Ledger};
use tether_supervisor::sweep::{self, SweepLock};

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

/// Runs `tether reap`.
pub fn run(args: &ReapArgs, state_dir: Option<&Path>) -> ExitCode {
    match reap(args, state_dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("reap: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn reap(args: &ReapArgs, state_dir: Option<&Path>) -> anyhow::Result<()> {
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
