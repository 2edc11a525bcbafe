//! An HTTP session in the ledger: an instance row held by the gateway itself (no process of
//! its own), written as the instance starts (off the runtime's thread: a ledger write may wait
//! for another writer), completed with the session id the server gives
//! (the URL without credentials and the id: what a later gateway needs to end it), and closed
//! once the session is ended. Ledger failures are logged and never stop the session: the
//! gateway serves unrecorded, as it does for processes.

use std::path::PathBuf;
use std::sync::Arc;

use tether_supervisor::launch::{LedgerChoice, Scope};
use tether_supervisor::ledger::{Intent, Ledger};

use super::link::Link;
use super::Upstream;

/// The ledger row of one HTTP session.
#[derive(Clone)]
pub struct Record(Option<Arc<Row>>);

struct Row {
    dir: PathBuf,
    instance: String,
    url: String,
    /// Whether the intent is written (`Some(true)`), failed (`Some(false)`), or not yet.
    written: tokio::sync::watch::Receiver<Option<bool>>,
}

impl Record {
    /// Writes the row's intent (a short write, before the session exists).
    pub fn new(ledger: &LedgerChoice, instance: &str, owner: &str, scope: &Scope, server: &str, url: &str) -> Record {
        let LedgerChoice::At(dir) = ledger else {
            return Record(None);
        };
        let command = vec!["http".to_string(), url.to_string()];
        let Some(intent) = Intent::held_by_this_process(instance, owner, &scope.to_string(), server, command) else {
            tracing::warn!(
                server,
                "cannot read this process's identity: the HTTP session is not recorded"
            );
            return Record(None);
        };
        let (tx, written) = tokio::sync::watch::channel(None);
        let (at, server_name) = (dir.clone(), server.to_string());
        tokio::task::spawn_blocking(move || {
            let done = Ledger::open(&at).and_then(|mut l| l.record_intent(&intent));
            if let Err(e) = &done {
                tracing::warn!(server = %server_name, "recording the HTTP session in the ledger: {e}");
            }
            let _ = tx.send(Some(done.is_ok()));
        });
        Record(Some(Arc::new(Row {
            dir: dir.clone(),
            instance: instance.to_string(),
            url: url.to_string(),
            written,
        })))
    }

    /// Waits for the intent; whether it was written.
    async fn intent_written(row: &Row) -> bool {
        let mut written = row.written.clone();
        matches!(written.wait_for(Option::is_some).await.map(|w| *w), Ok(Some(true)))
    }

    /// Records the session id the server gave.
    pub async fn session(&self, link: &Link, up: &Upstream) {
        let (Some(row), Some(id)) = (&self.0, link.session()) else {
            return;
        };
        if !Record::intent_written(row).await {
            return;
        }
        let Ok(id) = id.to_str().map(str::to_string) else {
            tracing::warn!(server = %up.name(), "the server's session id is not text: not recorded");
            return;
        };
        let row = row.clone();
        let value = serde_json::json!({"url": row.url, "session": id});
        write(up.name(), move || {
            Ledger::open(&row.dir).and_then(|mut l| l.record_upstream_session(&row.instance, &value))
        })
        .await;
    }

    /// Closes the row: the session is over.
    pub async fn ended(&self, reason: &str) {
        let Some(row) = &self.0 else { return };
        if !Record::intent_written(row).await {
            return;
        }
        let row = row.clone();
        let reason = reason.to_string();
        write("", move || {
            Ledger::open(&row.dir).and_then(|mut l| l.record_ended(&row.instance, &reason, None))
        })
        .await;
    }
}

/// Runs a ledger write off the runtime's thread (it may wait for another writer's lock).
async fn write<F>(server: &str, f: F)
where
    F: FnOnce() -> Result<(), tether_supervisor::ledger::LedgerError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(server, "recording an HTTP session in the ledger: {e}"),
        Err(e) => tracing::warn!(server, "recording an HTTP session in the ledger: {e}"),
    }
}
