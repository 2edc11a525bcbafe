//! Writing to the ledger: each call is one short IMMEDIATE transaction.

use rusqlite::params;

use super::rows::{InstanceState, Intent, OwnerRow, ProcessRole};
use super::{now_ms, Ledger, LedgerError};
use crate::process::identity::ProcessIdentity;

fn inode(id: &ProcessIdentity) -> Option<i64> {
    id.pidfs_inode.and_then(|i| i64::try_from(i).ok())
}

fn ticks(id: &ProcessIdentity) -> i64 {
    i64::try_from(id.start_ticks).unwrap_or(i64::MAX)
}

fn path_text(p: &Option<std::path::PathBuf>) -> Option<String> {
    p.as_ref().map(|p| p.to_string_lossy().into_owned())
}

/// The condition on an instance row that is still open.
const OPEN: &str = "state IN ('intent', 'running')";

impl Ledger {
    /// Records (or refreshes) an owner.
    pub fn register_owner(&mut self, owner: &OwnerRow) -> Result<(), LedgerError> {
        self.write("registering the owner", |tx| insert_owner(tx, owner))
    }

    /// Marks an owner as ended cleanly.
    pub fn end_owner(&mut self, owner_id: &str) -> Result<(), LedgerError> {
        self.write("ending the owner", |tx| {
            tx.execute(
                "UPDATE owners SET ended_ms = ?2 WHERE id = ?1",
                params![owner_id, now_ms()],
            )
            .map(drop)
        })
    }

    /// Writes an instance's intent, before its server is forked.
    pub fn record_intent(&mut self, i: &Intent) -> Result<(), LedgerError> {
        self.record_owner_and_intent(None, i)
    }

    /// Writes an instance's intent and, for a shim that owns itself, its owner row, in one
    /// transaction, before the server is forked.
    pub fn record_owner_and_intent(&mut self, owner: Option<&OwnerRow>, i: &Intent) -> Result<(), LedgerError> {
        let command = serde_json::to_string(&i.command).unwrap_or_else(|_| "[]".into());
        let layers = i.layers.join(",");
        let remote = i.remote.as_ref().map(serde_json::Value::to_string);
        self.write("recording the intent", |tx| {
            if let Some(o) = owner {
                insert_owner(tx, o)?;
            }
            tx.execute(
                "INSERT INTO instances (id, owner_id, scope, server, command, boot_id, holder_pid, holder_start,
                     holder_inode, cgroup, cgroup_v1, layers, state, intent_ms, remote)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                params![
                    i.id,
                    i.owner_id,
                    i.scope,
                    i.server,
                    command,
                    i.boot_id,
                    i.holder.pid,
                    ticks(&i.holder),
                    inode(&i.holder),
                    path_text(&i.cgroup),
                    path_text(&i.cgroup_v1),
                    layers,
                    InstanceState::Intent.as_str(),
                    now_ms(),
                    remote
                ],
            )
            .map(drop)
        })
    }

    /// Marks an instance ended by its holder and, for a shim that owned itself, the owner too,
    /// in one transaction. Only an open row is closed: the first to close it (this end, written
    /// by the shim's watchdog after the shim exited, or a sweep that found the shim dead in
    /// between) says how it ended, and the other changes nothing.
    pub fn record_ended(&mut self, instance: &str, reason: &str, owner: Option<&str>) -> Result<(), LedgerError> {
        let now = now_ms();
        self.write("recording the end", |tx| {
            tx.execute(
                &format!("UPDATE instances SET state = ?2, ended_ms = ?3, end_reason = ?4 WHERE id = ?1 AND {OPEN}"),
                params![instance, InstanceState::Ended.as_str(), now, reason],
            )?;
            if let Some(o) = owner {
                tx.execute("UPDATE owners SET ended_ms = ?2 WHERE id = ?1", params![o, now])?;
            }
            Ok(())
        })
    }

    /// Completes the intent with the server's identity (before the server runs).
    pub fn record_spawned(
        &mut self,
        instance: &str,
        leader: &ProcessIdentity,
        pgid: Option<i32>,
        has_cookie: bool,
    ) -> Result<(), LedgerError> {
        let now = now_ms();
        self.write("recording the server's identity", |tx| {
            insert_process(tx, instance, leader, ProcessRole::Leader, pgid, has_cookie, now)?;
            tx.execute(
                "UPDATE instances SET state = ?2, spawned_ms = ?3 WHERE id = ?1 AND state = ?4",
                params![
                    instance,
                    InstanceState::Running.as_str(),
                    now,
                    InstanceState::Intent.as_str()
                ],
            )
            .map(drop)
        })
    }

    /// Records the session an instance holds with a server over HTTP (JSON the ledger does not
    /// interpret: the URL without credentials and the session id), which makes it `running`.
    /// Such a row is not the supervisor's to close: its holder is the gateway, and only a
    /// gateway can end the session (an HTTP DELETE) when that holder died.
    pub fn record_upstream_session(&mut self, instance: &str, session: &serde_json::Value) -> Result<(), LedgerError> {
        let now = now_ms();
        self.write("recording the upstream session", |tx| {
            tx.execute(
                "UPDATE instances SET upstream_session = ?2, state = ?3, spawned_ms = COALESCE(spawned_ms, ?4)
                 WHERE id = ?1 AND state IN (?5, ?3)",
                params![
                    instance,
                    session.to_string(),
                    InstanceState::Running.as_str(),
                    now,
                    InstanceState::Intent.as_str()
                ],
            )
            .map(drop)
        })
    }

    /// Records descendants that only their identity can find (they scrubbed the cookie).
    pub fn record_adopted(
        &mut self,
        instance: &str,
        found: &[(ProcessIdentity, Option<i32>)],
    ) -> Result<(), LedgerError> {
        let now = now_ms();
        self.write("recording adopted processes", |tx| {
            for (id, pgid) in found {
                insert_process(tx, instance, id, ProcessRole::Adopted, *pgid, false, now)?;
            }
            Ok(())
        })
    }

    /// Moves open instances to a final state with a reason (a row closed meanwhile stays as it
    /// was closed: see [`Ledger::record_ended`]).
    pub fn finish(&mut self, instances: &[String], state: InstanceState, reason: &str) -> Result<(), LedgerError> {
        let now = now_ms();
        self.write("closing instances", |tx| {
            let mut stmt = tx.prepare(&format!(
                "UPDATE instances SET state = ?2, ended_ms = ?3, end_reason = ?4 WHERE id = ?1 AND {OPEN}"
            ))?;
            for id in instances {
                stmt.execute(params![id, state.as_str(), now, reason])?;
            }
            Ok(())
        })
    }

    /// Records an SSH instance's remote side (JSON), needed for remote kills after a crash. This
    /// one write is made durable (`synchronous = FULL`: the WAL is synced at commit, with every
    /// commit before it), because a power loss of this host is exactly when it will be needed.
    pub fn record_remote(&mut self, instance: &str, remote: &serde_json::Value) -> Result<(), LedgerError> {
        let text = remote.to_string();
        let path = self.path.clone();
        let set = |conn: &rusqlite::Connection, level: &str| {
            conn.pragma_update(None, "synchronous", level)
                .map_err(super::sql(&path, "setting synchronous"))
        };
        set(&self.conn, "FULL")?;
        let written = self.write("recording the remote side", |tx| {
            tx.execute(
                "UPDATE instances SET remote = ?2 WHERE id = ?1",
                params![instance, text],
            )
            .map(drop)
        });
        set(&self.conn, "NORMAL")?;
        written
    }

    /// Deletes closed instances (and ended owners) that ended before `before_ms`, and closed
    /// instances beyond the `keep` that ended last, keeping instances whose remote kill may
    /// still be needed. Returns how many instances went. The count bounds the file under churn:
    /// a gateway that starts thousands of instances an hour would otherwise grow the ledger
    /// for a week.
    pub fn compact(&mut self, before_ms: i64, keep: usize) -> Result<usize, LedgerError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.write("compacting", |tx| {
            let gone = tx.execute(
                "DELETE FROM instances WHERE state IN ('ended', 'reaped', 'lost')
                     AND (remote IS NULL OR coalesce(json_extract(remote, '$.settled'), 0) = 1)
                     AND (ended_ms < ?1 OR id NOT IN (
                         SELECT id FROM instances WHERE state IN ('ended', 'reaped', 'lost')
                         ORDER BY ended_ms DESC LIMIT ?2))",
                params![before_ms, keep],
            )?;
            tx.execute(
                "DELETE FROM owners WHERE ended_ms IS NOT NULL AND ended_ms < ?1
                     AND NOT EXISTS (SELECT 1 FROM instances WHERE owner_id = owners.id)",
                params![before_ms],
            )?;
            Ok(gone)
        })
    }
}

fn insert_owner(tx: &rusqlite::Transaction<'_>, owner: &OwnerRow) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT OR REPLACE INTO owners (id, kind, boot_id, pid, start_ticks, pidfs_inode, started_ms, ended_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            owner.id,
            owner.kind,
            owner.boot_id,
            owner.identity.pid,
            ticks(&owner.identity),
            inode(&owner.identity),
            owner.started_ms,
            owner.ended_ms
        ],
    )
    .map(drop)
}

fn insert_process(
    tx: &rusqlite::Transaction<'_>,
    instance: &str,
    id: &ProcessIdentity,
    role: ProcessRole,
    pgid: Option<i32>,
    has_cookie: bool,
    now: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT OR IGNORE INTO processes (instance_id, pid, start_ticks, pidfs_inode, role, pgid, has_cookie, seen_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            instance,
            id.pid,
            ticks(id),
            inode(id),
            role.as_str(),
            pgid,
            has_cookie,
            now
        ],
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first to close a row says how it ended: a sweep that comes after the watchdog's end
    /// record changes nothing, and an end record after a sweep changes nothing either.
    #[test]
    fn a_closed_row_stays_as_it_was_closed() {
        let dir = std::env::temp_dir().join(format!("tether-ledger-close-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a directory");
        let mut ledger = Ledger::open(&dir).expect("a ledger");
        for id in ["ended-first", "swept-first"] {
            let intent = Intent::held_by_this_process(id, "owner", "test", "srv", Vec::new()).expect("own identity");
            ledger.record_intent(&intent).expect("the intent");
        }
        ledger
            .record_ended("ended-first", "the server exited", None)
            .expect("end");
        ledger
            .finish(
                &["ended-first".into(), "swept-first".into()],
                InstanceState::Reaped,
                "swept",
            )
            .expect("sweep");
        ledger
            .record_ended("swept-first", "the server exited", None)
            .expect("end");
        let row = |id: &str| ledger.instance(id).expect("read").expect("the row");
        let first = row("ended-first");
        assert_eq!(
            (first.state, first.end_reason.as_deref()),
            (InstanceState::Ended, Some("the server exited"))
        );
        let second = row("swept-first");
        assert_eq!(
            (second.state, second.end_reason.as_deref()),
            (InstanceState::Reaped, Some("swept"))
        );
        drop(ledger);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Compaction keeps the newest closed rows up to its count, never an open row, and the
    /// older ones go.
    #[test]
    fn compaction_keeps_the_newest_closed_rows_and_every_open_one() {
        let dir = std::env::temp_dir().join(format!("tether-ledger-compact-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a directory");
        let mut ledger = Ledger::open(&dir).expect("a ledger");
        for i in 0..6 {
            let intent = Intent::held_by_this_process(&format!("row-{i}"), "owner", "test", "srv", Vec::new())
                .expect("own identity");
            ledger.record_intent(&intent).expect("the intent");
            if i < 5 {
                ledger.record_ended(&format!("row-{i}"), "done", None).expect("end");
                // Distinct end times, in order.
                let until = now_ms() + 2;
                while now_ms() < until {
                    std::hint::spin_loop();
                }
            }
        }
        assert_eq!(
            ledger.compact(0, 2).expect("compact"),
            3,
            "three of five closed rows go"
        );
        let ids: Vec<String> = ledger
            .all_instances()
            .expect("read")
            .into_iter()
            .map(|r| r.intent.id)
            .collect();
        let mut ids = ids;
        ids.sort();
        assert_eq!(
            ids,
            ["row-3", "row-4", "row-5"],
            "the two newest closed rows and the open one"
        );
        assert_eq!(ledger.compact(0, 2).expect("compact"), 0);
        drop(ledger);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
