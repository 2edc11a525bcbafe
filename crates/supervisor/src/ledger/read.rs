//! Reading the ledger back, for the sweep and for `tether ps`.

use std::collections::HashMap;

use rusqlite::{params, Row};

use super::rows::{InstanceRow, InstanceState, Intent, OwnerRow, ProcessRole, ProcessRow};
use super::{sql, Ledger, LedgerError};
use crate::process::identity::ProcessIdentity;

const INSTANCE_COLUMNS: &str = "id, owner_id, scope, server, command, boot_id, holder_pid, holder_start, holder_inode,
     cgroup, cgroup_v1, layers, state, intent_ms, spawned_ms, ended_ms, end_reason, remote, upstream_session";

fn identity(pid: i32, start: i64, inode: Option<i64>) -> ProcessIdentity {
    ProcessIdentity {
        pid,
        start_ticks: u64::try_from(start).unwrap_or(0),
        pidfs_inode: inode.and_then(|i| u64::try_from(i).ok()),
    }
}

fn instance_from(r: &Row<'_>) -> rusqlite::Result<InstanceRow> {
    let command: String = r.get(4)?;
    let layers: String = r.get(11)?;
    let state: String = r.get(12)?;
    let remote: Option<String> = r.get(17)?;
    Ok(InstanceRow {
        intent: Intent {
            id: r.get(0)?,
            owner_id: r.get(1)?,
            scope: r.get(2)?,
            server: r.get(3)?,
            command: serde_json::from_str(&command).unwrap_or_default(),
            boot_id: r.get(5)?,
            holder: identity(r.get(6)?, r.get(7)?, r.get(8)?),
            cgroup: r.get::<_, Option<String>>(9)?.map(Into::into),
            cgroup_v1: r.get::<_, Option<String>>(10)?.map(Into::into),
            layers: layers
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            remote: remote.and_then(|t| serde_json::from_str(&t).ok()),
        },
        // An unknown state (a newer writer) is treated as still open: the safe side for a sweep
        // is to look, and it re-checks every identity anyway.
        state: InstanceState::parse(&state).unwrap_or(InstanceState::Running),
        intent_ms: r.get(13)?,
        spawned_ms: r.get(14)?,
        ended_ms: r.get(15)?,
        end_reason: r.get(16)?,
        upstream_session: r.get(18)?,
    })
}

fn process_from(r: &Row<'_>) -> rusqlite::Result<ProcessRow> {
    let role: String = r.get(4)?;
    Ok(ProcessRow {
        instance_id: r.get(0)?,
        identity: identity(r.get(1)?, r.get(2)?, r.get(3)?),
        role: if role == "leader" {
            ProcessRole::Leader
        } else {
            ProcessRole::Adopted
        },
        pgid: r.get(5)?,
        has_cookie: r.get(6)?,
        seen_ms: r.get(7)?,
    })
}

impl Ledger {
    /// Every owner.
    pub fn owners(&self) -> Result<Vec<OwnerRow>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, kind, boot_id, pid, start_ticks, pidfs_inode, started_ms, ended_ms FROM owners")
            .map_err(sql(&self.path, "reading owners"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(OwnerRow {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    boot_id: r.get(2)?,
                    identity: identity(r.get(3)?, r.get(4)?, r.get(5)?),
                    started_ms: r.get(6)?,
                    ended_ms: r.get(7)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(sql(&self.path, "reading owners"))?;
        Ok(rows)
    }

    /// Instances that may still have processes (intent or running).
    pub fn open_instances(&self) -> Result<Vec<InstanceRow>, LedgerError> {
        self.instances_where(
            "state IN ('intent', 'running')
             OR (remote IS NOT NULL AND coalesce(json_extract(remote, '$.settled'), 0) = 0)",
        )
    }

    /// Every instance.
    pub fn all_instances(&self) -> Result<Vec<InstanceRow>, LedgerError> {
        self.instances_where("1")
    }

    /// One instance by id.
    pub fn instance(&self, id: &str) -> Result<Option<InstanceRow>, LedgerError> {
        let q = format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE id = ?1");
        let mut stmt = self.conn.prepare(&q).map_err(sql(&self.path, "reading an instance"))?;
        let mut rows = stmt
            .query_map(params![id], instance_from)
            .map_err(sql(&self.path, "reading an instance"))?;
        rows.next().transpose().map_err(sql(&self.path, "reading an instance"))
    }

    fn instances_where(&self, filter: &str) -> Result<Vec<InstanceRow>, LedgerError> {
        let q = format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE {filter} ORDER BY intent_ms");
        let mut stmt = self.conn.prepare(&q).map_err(sql(&self.path, "reading instances"))?;
        let rows = stmt
            .query_map([], instance_from)
            .and_then(Iterator::collect)
            .map_err(sql(&self.path, "reading instances"))?;
        Ok(rows)
    }

    /// The recorded processes of every open instance, by instance id.
    pub fn open_processes(&self) -> Result<HashMap<String, Vec<ProcessRow>>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT p.instance_id, p.pid, p.start_ticks, p.pidfs_inode, p.role, p.pgid, p.has_cookie, p.seen_ms
                 FROM processes p JOIN instances i ON i.id = p.instance_id
                 WHERE i.state IN ('intent', 'running')",
            )
            .map_err(sql(&self.path, "reading processes"))?;
        let rows: Vec<ProcessRow> = stmt
            .query_map([], process_from)
            .and_then(Iterator::collect)
            .map_err(sql(&self.path, "reading processes"))?;
        let mut by_instance: HashMap<String, Vec<ProcessRow>> = HashMap::new();
        for row in rows {
            by_instance.entry(row.instance_id.clone()).or_default().push(row);
        }
        Ok(by_instance)
    }

    /// The recorded processes of one instance.
    pub fn processes_of(&self, instance: &str) -> Result<Vec<ProcessRow>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT instance_id, pid, start_ticks, pidfs_inode, role, pgid, has_cookie, seen_ms
                 FROM processes WHERE instance_id = ?1",
            )
            .map_err(sql(&self.path, "reading processes"))?;
        let rows = stmt
            .query_map(params![instance], process_from)
            .and_then(Iterator::collect)
            .map_err(sql(&self.path, "reading processes"))?;
        Ok(rows)
    }
}
