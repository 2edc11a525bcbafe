//! `tether doctor`: the host report ([`tether_supervisor::host`]), the ledger's health, and the orphans a
//! sweep would end, each with the exact command that fixes it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tether_supervisor::host::{probe_host, render_text, HostReport};
use tether_supervisor::ledger::{self, location, Ledger};
use tether_supervisor::sweep::{self, ActionKind};

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
    /// Processes left by dead Tether processes, and cgroups of dead shims.
    pub orphans: Vec<Orphan>,
    /// Processes carrying a cookie this ledger has no record of: another state directory's
    /// (or another user's) Tether may own them, alive or not. Listed, not counted as orphans.
    pub unknown_cookies: Vec<Orphan>,
}

/// Whether the ledger can be used.
#[derive(Debug, serde::Serialize)]
pub struct LedgerHealth {
    /// The database file.
    pub path: String,
    /// It opened and passed `PRAGMA quick_check`.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

/// One thing a sweep would end.
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

/// Runs `tether doctor`. Exit status 0 when no orphan was found and the ledger is sound.
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
        print!("{}", render(&d));
    }
    if d.orphans.is_empty() && d.ledger.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Probes the host, opens the ledger, and dry-runs a sweep.
pub fn diagnose(state_dir: Option<&Path>) -> Diagnosis {
    let host = probe_host();
    let dir = location::state_dir(state_dir);
    let (ledger, (orphans, unknown_cookies)) = match dir {
        Err(why) => (
            LedgerHealth {
                path: String::new(),
                ok: false,
                detail: why,
            },
            (Vec::new(), Vec::new()),
        ),
        Ok(dir) => ledger_and_orphans(&dir),
    };
    Diagnosis {
        host,
        ledger,
        orphans,
        unknown_cookies,
    }
}

fn ledger_and_orphans(dir: &Path) -> (LedgerHealth, (Vec<Orphan>, Vec<Orphan>)) {
    let path = dir.join(ledger::FILE_NAME);
    let fail = |detail: String| LedgerHealth {
        path: path.display().to_string(),
        ok: false,
        detail,
    };
    let mut ledger = match Ledger::open(dir) {
        Ok(l) => l,
        Err(e) => return (fail(format!("{e}")), (Vec::new(), Vec::new())),
    };
    if let Err(e) = ledger.quick_check() {
        return (fail(format!("{e}")), (Vec::new(), Vec::new()));
    }
    let report = match sweep::sweep(&mut ledger, true) {
        Ok(r) => r,
        Err(e) => return (fail(format!("dry-run sweep failed: {e}")), (Vec::new(), Vec::new())),
    };
    let health = LedgerHealth {
        path: path.display().to_string(),
        ok: true,
        detail: format!(
            "opens, quick_check ok; {} live instance(s), {} orphaned",
            report.live_instances, report.orphaned_instances
        ),
    };
    let reap = reap_command(dir);
    let (mut orphans, mut unknown) = (Vec::new(), Vec::new());
    for a in report.actions {
        let (list, fix) = match a.kind {
            ActionKind::WouldKill | ActionKind::WouldKillCgroup | ActionKind::WouldKillRemote => {
                (&mut orphans, reap.clone())
            }
            ActionKind::SkippedUnknown => (
                &mut unknown,
                format!(
                    "none needed if another Tether owns it (`tether --state-dir <its dir> ps`); else kill -s KILL {}",
                    a.pid.unwrap_or_default()
                ),
            ),
            _ => continue,
        };
        list.push(Orphan {
            pid: a.pid,
            cgroup: a.cgroup,
            instance: a.instance,
            server: a.server,
            reason: a.reason,
            fix,
        });
    }
    (health, (orphans, unknown))
}

/// `tether --state-dir DIR reap`, naming this very binary and ledger, so it works as printed.
fn reap_command(dir: &Path) -> String {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("tether"));
    format!("{} --state-dir {} reap", quote(&exe), quote(dir))
}

/// Single-quotes a path for a POSIX shell when it needs it.
fn quote(p: &Path) -> String {
    let s = p.display().to_string();
    if s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@".contains(&b)) {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn render(d: &Diagnosis) -> String {
    let mut out = render_text(&d.host);
    let _ = writeln!(out, "\nledger: {} ({})", d.ledger.path, d.ledger.detail);
    if d.orphans.is_empty() {
        let _ = writeln!(out, "orphans: none");
    } else {
        let _ = writeln!(out, "orphans: {}", d.orphans.len());
        for o in &d.orphans {
            let what = match (o.pid, &o.cgroup) {
                (Some(pid), _) => format!("pid {pid}"),
                (None, Some(c)) => c.clone(),
                (None, None) => "?".into(),
            };
            let _ = writeln!(
                out,
                "  {what} [{} {}]: {}",
                o.server,
                sweep::short(&o.instance),
                o.reason
            );
            let _ = writeln!(out, "    fix: {}", o.fix);
        }
    }
    if !d.unknown_cookies.is_empty() {
        let pids: Vec<String> = d
            .unknown_cookies
            .iter()
            .filter_map(|o| o.pid)
            .map(|p| p.to_string())
            .collect();
        let _ = writeln!(
            out,
            "not in this ledger: {} process(es) carry a Tether cookie it has no record of (pids {}); another state directory's Tether may own them",
            pids.len(),
            pids.join(" ")
        );
    }
    out
}
