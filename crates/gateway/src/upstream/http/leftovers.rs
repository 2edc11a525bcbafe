//! At start-up: the HTTP sessions a dead gateway left open, ended.
//!
//! The supervisor's sweep speaks no HTTP: it leaves every open session row whose holder died in
//! its report ([`Report::upstream_sessions`]). For each, the new gateway sends the DELETE its
//! predecessor could not, with the headers (credentials) its own configuration gives the same
//! URL, and closes the row. A server that cannot be reached keeps its row open for the next
//! start, for up to [`GIVE_UP_AFTER`]; a server that answers anything (405, 404: it no longer
//! knows the session) has had its chance, and the row is closed with what it said.
//!
//! [`Report::upstream_sessions`]: tether_supervisor::sweep::Report::upstream_sessions

use std::path::Path;
use std::time::Duration;

use tether_supervisor::ledger::{now_ms, InstanceRow, InstanceState, Ledger};

use super::link::{shown_url, Link};
use crate::config::{Config, HttpKind, HttpUpstream, Transport};

/// How long an unreachable server's session row is kept open for another try.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// Ends every session in `rows`, all at once; returns how many were ended.
pub async fn close(rows: Vec<InstanceRow>, config: &Config, dir: &Path) -> usize {
    let tries = rows.into_iter().map(|row| close_one(row, config, dir));
    let mut ended = 0;
    for done in crate::aggregate::join_all(tries.collect()).await {
        ended += usize::from(done);
    }
    ended
}

async fn close_one(row: InstanceRow, config: &Config, dir: &Path) -> bool {
    let id = row.intent.id.clone();
    let server = row.intent.server.clone();
    let Some((url, session)) = row
        .upstream_session
        .as_deref()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .and_then(|v| Some((v["url"].as_str()?.to_string(), v["session"].as_str()?.to_string())))
    else {
        finish(dir, &id, InstanceState::Lost, "its session record could not be read").await;
        return false;
    };
    // The same URL in this configuration gives the headers (credentials) to end it with.
    let upstream = config
        .servers
        .values()
        .find_map(|s| match &s.transport {
            Transport::Http(h) if shown_url(&h.url) == url => Some(h.clone()),
            _ => None,
        })
        .unwrap_or(HttpUpstream {
            url: url.clone(),
            kind: HttpKind::Streamable,
            headers: Vec::new(),
            connection_timeout: None,
            extra_roots: Vec::new(),
        });
    let link = match Link::new(&upstream, 64 * 1024) {
        Ok(l) => l,
        Err(e) => {
            finish(dir, &id, InstanceState::Lost, &e).await;
            return false;
        }
    };
    link.resume(&session);
    let outcome = link.delete().await;
    let answered = outcome.starts_with("DELETE answered");
    let expired = now_ms().saturating_sub(row.intent_ms) > i64::try_from(GIVE_UP_AFTER.as_millis()).unwrap_or(i64::MAX);
    if answered || expired {
        let reason = format!("its gateway died; the next one ended the session ({outcome})");
        finish(dir, &id, InstanceState::Reaped, &reason).await;
        tracing::warn!(
            server = %server,
            instance = %tether_supervisor::ids::short(&id),
            "start-up: ended the HTTP session with {url} that a dead gateway left open ({outcome})"
        );
        answered
    } else {
        tracing::warn!(
            server = %server,
            "start-up: the HTTP session with {url} a dead gateway left open could not be ended ({outcome}); the next start tries again"
        );
        false
    }
}

async fn finish(dir: &Path, id: &str, state: InstanceState, reason: &str) {
    let (dir, id, reason) = (dir.to_path_buf(), id.to_string(), reason.to_string());
    let done =
        tokio::task::spawn_blocking(move || Ledger::open(&dir).and_then(|mut l| l.finish(&[id], state, &reason))).await;
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("closing an HTTP session's row in the ledger: {e}"),
        Err(e) => tracing::warn!("closing an HTTP session's row in the ledger: {e}"),
    }
}
