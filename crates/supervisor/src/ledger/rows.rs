//! The rows of the ledger, as Rust values.

use std::path::PathBuf;

use crate::process::identity::ProcessIdentity;

/// A Tether process that owns instances.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OwnerRow {
    /// The owner id (the `TETHER_OWNER` cookie of its instances).
    pub id: String,
    /// `wrap` or `gateway`.
    pub kind: String,
    /// The boot the owner ran in.
    pub boot_id: String,
    /// The owner process.
    pub identity: ProcessIdentity,
    /// When it registered, ms since the epoch.
    pub started_ms: i64,
    /// When it ended cleanly, if it did.
    pub ended_ms: Option<i64>,
}

impl OwnerRow {
    /// This very process as the owner `id` of kind `kind` (`gateway`): its identity and boot,
    /// now. `None` when either cannot be read.
    pub fn for_this_process(id: &str, kind: &str) -> Option<OwnerRow> {
        Some(OwnerRow {
            id: id.to_string(),
            kind: kind.to_string(),
            boot_id: crate::process::procfs::boot_id().ok()?,
            identity: ProcessIdentity::of_self()?,
            started_ms: super::now_ms(),
            ended_ms: None,
        })
    }
}

/// What is written before an instance's server is forked.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Intent {
    /// The instance id (the `TETHER_INSTANCE` cookie).
    pub id: String,
    /// The owner id.
    pub owner_id: String,
    /// The scope the instance lives in (`wrap`, later `shared`, `session:…`, `request`).
    pub scope: String,
    /// The server's name, for people.
    pub server: String,
    /// Program and arguments.
    pub command: Vec<String>,
    /// The boot the instance runs in.
    pub boot_id: String,
    /// The shim responsible for the tree.
    pub holder: ProcessIdentity,
    /// The instance's v2 cgroup, when that layer is on.
    pub cgroup: Option<PathBuf>,
    /// Its v1 pids cgroup, on hybrid hosts with `--max-procs`.
    pub cgroup_v1: Option<PathBuf>,
    /// The containment layers in force.
    pub layers: Vec<String>,
    /// For a server on another host: how to reach it and, once known, its identity there
    /// (JSON the ledger does not interpret; see `ssh::RemoteSide`), for remote kills.
    pub remote: Option<serde_json::Value>,
}

impl Intent {
    /// The intent of an instance with no process of its own, held by this process: a
    /// gateway's session with a server over HTTP. `None` when this process's identity cannot
    /// be read.
    pub fn held_by_this_process(
        id: &str,
        owner_id: &str,
        scope: &str,
        server: &str,
        command: Vec<String>,
    ) -> Option<Intent> {
        Some(Intent {
            id: id.to_string(),
            owner_id: owner_id.to_string(),
            scope: scope.to_string(),
            server: server.to_string(),
            command,
            boot_id: crate::process::procfs::boot_id().ok()?,
            holder: ProcessIdentity::of_self()?,
            cgroup: None,
            cgroup_v1: None,
            layers: Vec::new(),
            remote: None,
        })
    }
}

/// Where an instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceState {
    /// Recorded, server not (known to be) started yet.
    Intent,
    /// The server was started and its identity recorded.
    Running,
    /// Its holder tore the tree down.
    Ended,
    /// A sweep ended what its dead holder left.
    Reaped,
    /// From an earlier boot: its local processes died with that boot.
    Lost,
}

impl InstanceState {
    /// The name stored in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Intent => "intent",
            InstanceState::Running => "running",
            InstanceState::Ended => "ended",
            InstanceState::Reaped => "reaped",
            InstanceState::Lost => "lost",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<InstanceState> {
        [
            InstanceState::Intent,
            InstanceState::Running,
            InstanceState::Ended,
            InstanceState::Reaped,
            InstanceState::Lost,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// True while the instance may still have processes.
    pub fn is_open(self) -> bool {
        matches!(self, InstanceState::Intent | InstanceState::Running)
    }
}

/// One instance, as read back: its intent and how far its life went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InstanceRow {
    /// What was written before the fork.
    #[serde(flatten)]
    pub intent: Intent,
    /// Where it is in its life.
    pub state: InstanceState,
    /// When the intent was written.
    pub intent_ms: i64,
    /// When the server's identity was written.
    pub spawned_ms: Option<i64>,
    /// When it ended or was reaped.
    pub ended_ms: Option<i64>,
    /// How it ended.
    pub end_reason: Option<String>,
    /// The upstream HTTP session id of a remote HTTP instance.
    pub upstream_session: Option<String>,
}

/// Why a process has a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessRole {
    /// The server itself.
    Leader,
    /// A descendant that scrubbed its environment, so only its identity can find it.
    Adopted,
}

impl ProcessRole {
    /// The name stored in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessRole::Leader => "leader",
            ProcessRole::Adopted => "adopted",
        }
    }
}

/// One recorded process.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProcessRow {
    /// Its instance.
    pub instance_id: String,
    /// Who it is.
    pub identity: ProcessIdentity,
    /// Why it was recorded.
    pub role: ProcessRole,
    /// Its process group when recorded.
    pub pgid: Option<i32>,
    /// Whether it carried the instance cookie when recorded.
    pub has_cookie: bool,
    /// When it was recorded.
    pub seen_ms: i64,
}
