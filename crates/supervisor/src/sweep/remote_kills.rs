//! Remote kill replay: SSH servers whose owner died before their remote side was known to be
//! over, on this boot or an earlier one (a gateway host that lost power leaves its remote
//! servers running until the remote sshd's ClientAlive fires, if it is set at all).
//!
//! Each one gets the same remote kill a live shim would have sent, by the identity the ledger
//! recorded (refused, and so harmless, when that process is gone and its pid reused), or by
//! cookie alone when the identity never arrived. All of them run at once: each is one ssh
//! connection that may take up to its connect timeout. An unreachable host leaves the record
//! unsettled, for the next sweep, until the remote kills expire (24 hours after the first that
//! failed, [`remote_kill_expiry`]): then the record is settled as given up, and the report says
//! so with the command that checks the host by hand.

use std::path::Path;

use super::report::{Action, ActionKind, Report};
use crate::ledger::{InstanceRow, Ledger, LedgerError};
use crate::ssh::remote_kill::{KillOutcome, RemoteKill};
use crate::ssh::remote_side::remote_kill_expiry;
use crate::ssh::replies::KillReport;
use crate::ssh::RemoteSide;

/// The remote record of `inst`, when it still needs a kill.
pub fn unsettled(inst: &InstanceRow) -> Option<RemoteSide> {
    inst.intent
        .remote
        .as_ref()
        .and_then(RemoteSide::from_json)
        .filter(|r| !r.settled)
}

/// Kills the remote side of every instance in `due` (all unsettled), records each outcome, and
/// reports it.
pub fn replay(ledger: &mut Ledger, due: &[InstanceRow], dry_run: bool, report: &mut Report) -> Result<(), LedgerError> {
    let mut running = Vec::new();
    for inst in due {
        let Some(record) = unsettled(inst) else { continue };
        let what = match &record.identity {
            Some(id) => format!("remote pid {} on {}", id.pid, record.target.destination()),
            None => format!("cookie carriers on {}", record.target.destination()),
        };
        if dry_run {
            report.push(action(
                inst,
                ActionKind::WouldKillRemote,
                format!("{what}: its owner died"),
            ));
            continue;
        }
        match RemoteKill::start(&record) {
            Ok(kill) => running.push((inst, record, what, kill)),
            Err(e) => report.push(action(inst, ActionKind::RemoteFailed, format!("{what}: {e}"))),
        }
    }
    let expiry = remote_kill_expiry();
    for (inst, mut record, what, kill) in running {
        let outcome = kill.wait();
        let mut kind = match &outcome {
            KillOutcome::Report(KillReport::Killed { .. }) => ActionKind::RemoteKilled,
            KillOutcome::Report(KillReport::Refused(_)) => ActionKind::RemoteRefused,
            KillOutcome::Failed(_) => ActionKind::RemoteFailed,
        };
        record.note(outcome.settles(), outcome.describe());
        let mut said = outcome.describe();
        if !outcome.settles() {
            if let Some(gave_up) = record.failed_attempt(crate::ledger::now_ms(), expiry) {
                kind = ActionKind::RemoteExpired;
                said = gave_up;
            }
        }
        ledger.record_remote(&inst.intent.id, &record.to_json())?;
        report.push(action(inst, kind, format!("{what}: {said}")));
    }
    Ok(())
}

/// A watchdog's remote clean-up after its shim died (`tether settle-remote`, exec'd by the
/// watchdog): the ledger's record when it has one (it holds the identity, if it arrived), else
/// `fallback` (cookie only). Returns the outcome, `None` when nothing was left to do.
pub fn settle_after_shim_death(state_dir: Option<&Path>, instance: &str, fallback: &RemoteSide) -> Option<KillOutcome> {
    let mut ledger = state_dir.and_then(|d| Ledger::open(d).ok());
    let row = ledger.as_ref().and_then(|l| l.instance(instance).ok().flatten());
    let mut record = match &row {
        Some(row) => unsettled(row)?,
        None => fallback.clone(),
    };
    let outcome = match RemoteKill::start(&record) {
        Ok(kill) => kill.wait(),
        Err(e) => KillOutcome::Failed(e.to_string()),
    };
    record.note(
        outcome.settles(),
        format!("after the shim died: {}", outcome.describe()),
    );
    if !outcome.settles() {
        // The first attempt, the one the expiry counts from.
        let _ = record.failed_attempt(crate::ledger::now_ms(), remote_kill_expiry());
    }
    if let Some(l) = ledger.as_mut() {
        let _ = l.record_remote(instance, &record.to_json());
    }
    Some(outcome)
}

fn action(inst: &InstanceRow, kind: ActionKind, reason: String) -> Action {
    Action {
        instance: inst.intent.id.clone(),
        server: inst.intent.server.clone(),
        kind,
        pid: None,
        cgroup: None,
        reason,
    }
}
