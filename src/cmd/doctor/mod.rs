//! `tether doctor`: the host report ([`tether_supervisor::host`]), the ledger's health, and what
//! a sweep would end ([`orphans`]), each with the exact command that fixes it; as text
//! ([`render`]) or JSON, both from one [`Diagnosis`], so they say the same.
//!
//! A ledger that cannot be used does not stop the rest: the host report and the cookie
//! carriers `/proc` shows are still given, with the ledger's problem and its fix.

mod orphans;
mod render;

use std::path::Path;
use std::process::ExitCode;

use tether_supervisor::host::{probe_host, HostReport};
use tether_supervisor::ledger::{self, location, Ledger};
use tether_supervisor::sweep::{self, Report, SweepError};

use super::ledger_trouble::LedgerTrouble;

/// `tether doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Everything `tether doctor` says.
#[derive(Debug, serde::Serialize)]
pub struct Diagnosis {
    /// What the host supports and which guarantees hold.
    pub host: HostReport,
    /// The ledger's state.
    pub ledger: LedgerHealth,
    /// What `tether reap` would end or close: processes and cgroups left by dead Tether
    /// processes, and instances whose shim died with nothing left running (their open rows).
    /// `None` when the ledger cannot be read, so nothing can tell.
    pub orphans: Option<Vec<Orphan>>,
    /// Processes carrying a cookie this ledger has no record of (every carrier, when the
    /// ledger cannot be read): another state directory's (or another user's) Tether may own
    /// them, alive or not. Listed, not counted as orphans.
    pub unknown_cookies: Vec<Orphan>,
}

/// Whether the ledger can be used.
#[derive(Debug, serde::Serialize)]
pub struct LedgerHealth {
    /// The database file (or the state directory, when that is what is wrong).
    pub path: String,
    /// It opened, passed `PRAGMA quick_check` and could be swept (dry run).
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// When not ok: the shell command that fixes it, when one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// When not ok: what the fix does, or what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
}

/// One thing a sweep would end or close.
#[derive(Debug, serde::Serialize)]
pub struct Orphan {
    /// The process, if one.
    pub pid: Option<i32>,
    /// The cgroup, if one.
    pub cgroup: Option<String>,
    /// Its instance id.
    pub instance: String,
    /// Its server's name.
    pub server: String,
    /// Why it is an orphan.
    pub reason: String,
    /// The command that ends it.
    pub fix: String,
}

impl Diagnosis {
    /// True when something needs doing: the ledger is unusable, or a sweep has work.
    pub fn needs_attention(&self) -> bool {
        !self.ledger.ok || self.orphans.as_ref().is_some_and(|o| !o.is_empty())
    }
}

/// Runs `tether doctor`. Exit status 0 when the ledger is sound and nothing needs reaping, else 1.
pub fn run(args: &DoctorArgs, state_dir: Option<&Path>) -> ExitCode {
    let d = diagnose(state_dir);
    if args.json {
        match serde_json::to_string_pretty(&d) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                tracing::error!("doctor: encoding JSON: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", render::render(&d));
    }
    if d.needs_attention() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Probes the host, opens and checks the ledger, and dry-runs a sweep.
pub fn diagnose(state_dir: Option<&Path>) -> Diagnosis {
    let host = probe_host();
    let dir = match location::state_dir(state_dir) {
        Ok(dir) => dir,
        Err(why) => return without_ledger(host, LedgerHealth::unusable(&LedgerTrouble::no_state_dir(why))),
    };
    let path = dir.join(ledger::FILE_NAME).display().to_string();
    // The ledger is closed when `examine` returns, before a fix naming its files is worked out.
    let report = match examine(&dir) {
        Ok(report) => report,
        Err(SweepError::Ledger(e)) => return without_ledger(host, LedgerHealth::unusable(&LedgerTrouble::of(&e))),
        Err(e) => {
            let health = LedgerHealth {
                path,
                ok: false,
                detail: format!("dry-run sweep failed: {e}"),
                fix: None,
                advice: None,
            };
            return without_ledger(host, health);
        }
    };
    let ledger = LedgerHealth {
        path,
        ok: true,
        detail: format!("opens, quick_check ok; {} live instance(s)", report.live_instances),
        fix: None,
        advice: None,
    };
    let (orphans, unknown_cookies) = orphans::from_dry_run(report, &dir);
    Diagnosis {
        host,
        ledger,
        orphans: Some(orphans),
        unknown_cookies,
    }
}

/// Opens the ledger, checks it, and dry-runs a sweep on it.
fn examine(dir: &Path) -> Result<Report, SweepError> {
    let mut ledger = Ledger::open(dir)?;
    ledger.quick_check()?;
    sweep::sweep(&mut ledger, true)
}

/// The diagnosis when the ledger cannot be used: the host, the ledger's problem, and the
/// cookie carriers `/proc` shows.
fn without_ledger(host: HostReport, ledger: LedgerHealth) -> Diagnosis {
    Diagnosis {
        host,
        ledger,
        orphans: None,
        unknown_cookies: orphans::carriers_without_ledger(),
    }
}

impl LedgerHealth {
    /// A ledger that cannot be used, and its fix.
    fn unusable(trouble: &LedgerTrouble) -> LedgerHealth {
        LedgerHealth {
            path: trouble.path.clone(),
            ok: false,
            detail: trouble.problem.clone(),
            fix: trouble.fix.clone(),
            advice: Some(trouble.advice.clone()),
        }
    }
}
