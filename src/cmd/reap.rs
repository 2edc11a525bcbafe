//! `tether reap`: one sweep of the ledger, reported.
//!
//! When the ledger cannot be used, the sweep that needs no ledger runs instead
//! ([`sweep::sweep_without_ledger`]): the cookie carriers are reported and left alone, as is
//! every cgroup (only a ledger's row proves one ours), and what is wrong with the ledger is said
//! once, with its fix.
//!
//! Exit status: 0 when the sweep ran (whatever it found); 1 when it could not run, or ran
//! without the ledger.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use tether_supervisor::ledger::{location, Ledger};
use tether_supervisor::sweep::{self, Report, SweepError};

use super::ledger_trouble::LedgerTrouble;

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

/// What `tether reap --json` prints when the ledger cannot be used: the report's fields, and
/// the ledger's problem beside them.
#[derive(Debug, serde::Serialize)]
struct UnverifiedReport {
    #[serde(flatten)]
    report: Report,
    /// Always false: no ledger vouched for anything, so nothing was killed.
    verified: bool,
    /// What is wrong with the ledger, and the fix.
    ledger_problem: LedgerTrouble,
}

/// Runs `tether reap`.
pub fn run(args: &ReapArgs, state_dir: Option<&Path>) -> ExitCode {
    match reap(args, state_dir) {
        Ok(status) => status,
        Err(e) => {
            tracing::error!("reap: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn reap(args: &ReapArgs, state_dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let dir = match location::state_dir(state_dir) {
        Ok(dir) => dir,
        Err(why) => return reap_unverified(args, LedgerTrouble::no_state_dir(why)),
    };
    let report = match sweep_ledger(&dir, args.dry_run) {
        Ok(report) => report,
        // The ledger could not be read: nothing was done with it; the cookie sweep still can.
        Err(SweepError::Ledger(e)) => return reap_unverified(args, LedgerTrouble::of(&e)),
        // It failed once the sweep had acted: what was done is reported all the same.
        Err(SweepError::AfterActing { report, cause }) => {
            print_report(args, &report)?;
            tracing::error!("reap: the ledger failed after the sweep acted (what it did is reported): {cause}");
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    print_report(args, &report)?;
    Ok(ExitCode::SUCCESS)
}

fn print_report(args: &ReapArgs, report: &Report) -> anyhow::Result<()> {
    if args.json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}

/// One sweep under the sweep lock; the ledger and the lock are released when it returns.
fn sweep_ledger(dir: &Path, dry_run: bool) -> Result<Report, SweepError> {
    let mut ledger = Ledger::open(dir)?;
    sweep::sweep_locked(&mut ledger, dir, dry_run)
}

fn reap_unverified(args: &ReapArgs, trouble: LedgerTrouble) -> anyhow::Result<ExitCode> {
    let report = sweep::sweep_without_ledger(args.dry_run);
    if args.json {
        let out = UnverifiedReport {
            report,
            verified: false,
            ledger_problem: trouble,
        };
        println!("{}", serde_json::to_string_pretty(&out).context("encoding JSON")?);
    } else {
        tracing::error!("reap: {}\n{}", trouble.headline(), trouble.fix_text("  "));
        print!("{}", unverified_text(&report));
    }
    Ok(ExitCode::FAILURE)
}

fn unverified_text(report: &Report) -> String {
    let carriers = report.actions.iter().filter(|a| a.pid.is_some()).count();
    let mut out = format!(
        "nothing was killed: Tether signals only processes its ledger proves it started, and the \
         ledger cannot be read.\n{carriers} process(es) carry a Tether cookie and were left alone \
         (another state directory's Tether may own them: `tether --state-dir DIR ps` shows its own)\n"
    );
    for a in &report.actions {
        let _ = writeln!(out, "  {a}");
    }
    out
}
