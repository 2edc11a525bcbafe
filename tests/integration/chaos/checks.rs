//! What each iteration proves once its scopes have ended: nothing carries the run's cookie
//! (locally, and on the SSH side, which is this host too); the ledger opens, passes SQLite's
//! `PRAGMA integrity_check` and agrees with `/proc` (an open row has a live holder, or the next
//! sweep closes it).

use std::time::Duration;

use tether_supervisor::ledger::Ledger;
use tether_supervisor::process::cookie::INSTANCE_VAR;
use tether_supervisor::process::procfs;

use crate::harness::{describe, eventually, reap, Cookie};

/// Time for every scope's end to reach the last process: the grace, the remote kill's second
/// connection, a loaded machine.
pub const SETTLE: Duration = Duration::from_secs(25);

/// What survived its scope.
pub struct Orphans {
    /// Every survivor, described.
    pub all: Vec<String>,
    /// Those that are the zoo's `env -i` escapee, with no cookie and no identity in the ledger:
    /// born after its shim's last tree walk (see [`Orphans::unrecorded_env_i`]).
    pub unrecorded_env_i: Vec<String>,
}

/// Waits until nothing but `except` carries the cookie; returns what survived and kills it by
/// pid, so the next iteration starts clean.
pub fn orphans(cookie: &Cookie, except: &[i32]) -> Orphans {
    let mut left = Vec::new();
    let mut found = Orphans {
        all: Vec::new(),
        unrecorded_env_i: Vec::new(),
    };
    if eventually(SETTLE, || {
        left = cookie.carriers_except(except);
        left.is_empty()
    }) {
        return found;
    }
    let recorded = recorded_pids(cookie);
    for &p in &left {
        let described = describe(p);
        let env_i = procfs::cmdline_of(p).is_some_and(|c| c.contains("--sleeper env-i"))
            && !procfs::environ_has(p, INSTANCE_VAR.as_bytes())
            && !recorded.contains(&p);
        if env_i {
            found.unrecorded_env_i.push(described.clone());
        }
        found.all.push(described);
    }
    for &p in &left {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
    }
    found
}

/// Every pid the run's ledger recorded for any instance, ended ones included.
fn recorded_pids(cookie: &Cookie) -> Vec<i32> {
    let Ok(ledger) = Ledger::open(&cookie.state_dir()) else {
        return Vec::new();
    };
    ledger
        .all_instances()
        .unwrap_or_default()
        .iter()
        .flat_map(|i| ledger.processes_of(&i.intent.id).unwrap_or_default())
        .map(|p| p.identity.pid)
        .collect()
}

/// The ledger checks with no Tether process running: what failed, if anything.
pub fn ledger(cookie: &Cookie) -> Vec<String> {
    let mut failed = Vec::new();
    match integrity(cookie) {
        Ok(answer) if answer == "ok" => {}
        Ok(answer) => failed.push(format!("PRAGMA integrity_check: {answer}")),
        Err(e) => failed.push(format!("the ledger does not open in SQLite: {e}")),
    }
    let open = match open_rows(cookie) {
        Ok(rows) => rows,
        Err(e) => {
            failed.push(format!("the ledger does not open in Tether: {e}"));
            return failed;
        }
    };
    // Nothing of Tether runs: a live holder would be a process the survivor check missed.
    for (id, holder, alive) in &open {
        if *alive {
            failed.push(format!(
                "open row {id}: its holder pid {holder} is alive with no scope running"
            ));
        }
    }
    if !open.is_empty() {
        // Rows whose holders died without closing them: the next sweep must close them.
        let report = reap(cookie, &[]);
        match open_rows(cookie) {
            Ok(still) if still.is_empty() => {}
            Ok(still) => failed.push(format!("rows still open after a sweep: {still:?}; sweep: {report}")),
            Err(e) => failed.push(format!("the ledger does not open after a sweep: {e}")),
        }
    }
    failed
}

fn integrity(cookie: &Cookie) -> rusqlite::Result<String> {
    let db = rusqlite::Connection::open(cookie.state_dir().join(tether_supervisor::ledger::FILE_NAME))?;
    db.query_row("PRAGMA integrity_check", [], |row| row.get(0))
}

/// Open rows: (instance id, holder pid, whether that holder is alive).
fn open_rows(cookie: &Cookie) -> Result<Vec<(String, i32, bool)>, String> {
    let ledger = Ledger::open(&cookie.state_dir()).map_err(|e| e.to_string())?;
    let rows = ledger.open_instances().map_err(|e| e.to_string())?;
    Ok(rows
        .into_iter()
        .map(|r| (r.intent.id, r.intent.holder.pid, r.intent.holder.is_alive()))
        .collect())
}

/// Pids of servers (leaders) recorded in the ledger whose processes are gone: where a
/// bystander can be placed.
pub fn dead_recorded_servers(cookie: &Cookie) -> Vec<i32> {
    let Ok(ledger) = Ledger::open(&cookie.state_dir()) else {
        return Vec::new();
    };
    let rows = ledger.all_instances().unwrap_or_default();
    let mut pids: Vec<i32> = rows
        .iter()
        .flat_map(|r| ledger.processes_of(&r.intent.id).unwrap_or_default())
        .map(|p| p.identity.pid)
        .filter(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}
