//! The admin API's calls (see [`super`]), each answered with JSON: the result, or
//! `{"error": "…"}` with a 4xx status naming what was wrong.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

use tether_supervisor::ledger::Ledger;
use tether_supervisor::sweep;

use super::call::{call, Call};
use super::trees::Containment;
use crate::cause::Cause;
use crate::config::Transport;
use crate::gateway::Gateway;
use crate::session::{Endpoint, Session};
use crate::upstream::{Owner, State, Upstream};

/// Answers one admin request.
pub async fn handle<B>(gw: Arc<Gateway>, req: Request<B>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let answer = match call(req.method(), &path) {
        Call::Metrics => {
            let scraped = {
                let gw = gw.clone();
                tokio::task::spawn_blocking(move || crate::metrics::scrape(&gw)).await
            };
            let text = scraped.unwrap_or_else(|e| format!("# the metrics could not be read: {e}\n"));
            let mut r = Response::new(Full::new(Bytes::from(text)));
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            );
            return Ok(r);
        }
        Call::Gateway => Ok(json!({
            "pid": std::process::id(),
            "owner": gw.pool.options().owner_id,
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_ms": millis(super::started().elapsed()),
            "ledger": gw.pool.options().ledger.dir().and_then(Result::ok).map(|d| d.join(tether_supervisor::ledger::FILE_NAME)),
        })),
        Call::Sessions => Ok(Value::Array(gw.sessions.all().iter().map(|s| session(s)).collect())),
        Call::Instances => Ok(instances(&gw).await),
        Call::Reload => Ok(json!({"applied": gw.reload()})),
        Call::Sweep => sweep(&gw).await,
        Call::Teardowns => Ok(json!(crate::teardowns::recent())),
        Call::EndScope(id) => end(&gw, id),
        Call::NotAllowed => Err((
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} {path}: not allowed", req.method()),
        )),
        Call::NotFound => Err((
            StatusCode::NOT_FOUND,
            format!(
                "{path}: no such call (GET /v1/gateway, GET /v1/sessions, GET /v1/instances, DELETE /v1/scopes/ID, POST /v1/reload, POST /v1/sweep, GET /v1/teardowns, GET /metrics)"
            ),
        )),
    };
    let (status, body) = match answer {
        Ok(v) => (StatusCode::OK, v),
        Err((status, why)) => (status, json!({ "error": why })),
    };
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn session(s: &Session) -> Value {
    let client: Value = serde_json::from_str(s.client.client_info.get()).unwrap_or(Value::Null);
    json!({
        "id": s.id,
        "key": s.key,
        "endpoint": match &s.endpoint {
            Endpoint::All => "/mcp".to_string(),
            Endpoint::Server(name) => format!("/mcp/{name}"),
        },
        "client": client,
        "protocol": s.version,
        "idle_ms": millis(s.idle_for()),
        "instances": s.instances().iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
    })
}

/// Every live instance, with its process tree and containment (read on a blocking thread).
async fn instances(gw: &Gateway) -> Value {
    let live = gw.pool.live();
    let shims: Vec<(String, Option<u32>)> = live.iter().map(|u| (u.id.clone(), u.pid)).collect();
    let ledger = gw.pool.options().ledger.clone();
    let mut trees = tokio::task::spawn_blocking(move || super::trees::read(&ledger, &shims))
        .await
        .unwrap_or_default();
    Value::Array(
        live.iter()
            .map(|u| instance(u, trees.remove(&u.id).unwrap_or_default()))
            .collect(),
    )
}

fn instance(u: &Upstream, c: Containment) -> Value {
    let session = match &u.owner {
        Owner::Session(s) => s.upgrade().map(|s| s.key.clone()),
        Owner::Shared | Owner::Request => None,
    };
    let state = match u.state() {
        State::Starting => "starting",
        State::Ready => "ready",
        State::Gone(_) => "gone",
    };
    json!({
        "id": u.id,
        "server": u.name(),
        "lifetime": u.lifetime().name(),
        "session": session,
        "shim_pid": u.pid,
        "state": state,
        "idle_ms": millis(u.idle_for()),
        "in_flight": u.in_flight(),
        "transport": match &u.server.transport {
            Transport::Stdio(_) => "stdio",
            Transport::Ssh { .. } => "ssh",
            Transport::Http(_) => "http",
        },
        "url": match &u.server.transport {
            Transport::Http(h) => Some(crate::upstream::http::link::shown_url(&h.url)),
            _ => None,
        },
        "age_ms": millis(u.started.elapsed()),
        "processes": c.tree.len(),
        "rss_kib": c.tree.iter().filter_map(|p| p.rss_kib).sum::<u64>(),
        "cpu_ms": c.tree.iter().filter_map(|p| p.cpu_ms).sum::<u64>(),
        "layers": c.layers,
        "cgroup": c.cgroup,
        "tree": c.tree,
    })
}

/// Runs a sweep of the gateway's ledger (as `tether reap` would): what dead Tethers left is
/// killed; this gateway's own instances, whose holders are alive, are left alone.
async fn sweep(gw: &Gateway) -> Result<Value, (StatusCode, String)> {
    let dir = gw
        .pool
        .options()
        .ledger
        .dir()
        .ok_or_else(|| {
            (
                StatusCode::CONFLICT,
                "this gateway runs without a ledger: there is nothing to sweep by".to_string(),
            )
        })?
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let swept = tokio::task::spawn_blocking(move || {
        let mut ledger = Ledger::open(&dir).map_err(|e| e.to_string())?;
        sweep::sweep_locked(&mut ledger, &dir, false).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the sweep did not finish: {e}"),
        )
    })?;
    match swept {
        Ok(report) => {
            crate::metrics::swept(&report);
            for a in &report.actions {
                tracing::warn!("admin sweep: {a}");
            }
            serde_json::to_value(&report).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
        }
        Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, format!("the sweep failed: {e}"))),
    }
}

/// Ends the session whose id or key is `id`, else the instance whose id is or starts with it.
fn end(gw: &Gateway, id: &str) -> Result<Value, (StatusCode, String)> {
    const WHY: &str = "ended through the admin API (tether kill, the dashboard)";
    if let Some(s) = gw.sessions.all().into_iter().find(|s| s.id == id || s.key == id) {
        let instances: Vec<String> = gw
            .end_session(&s, Cause::Admin, WHY)
            .iter()
            .map(|u| u.id.clone())
            .collect();
        return Ok(json!({"ended": "session", "key": s.key, "instances": instances}));
    }
    let matches: Vec<Arc<Upstream>> = gw
        .pool
        .live()
        .into_iter()
        .filter(|u| !id.is_empty() && u.id.starts_with(id))
        .collect();
    match matches.as_slice() {
        [u] => {
            u.end(Cause::Admin, WHY);
            Ok(json!({"ended": "instance", "id": u.id, "server": u.name()}))
        }
        [] => Err((
            StatusCode::NOT_FOUND,
            format!("no session or instance {id:?} in this gateway"),
        )),
        _ => Err((
            StatusCode::CONFLICT,
            format!("{id:?} starts {} instances' ids: give more of it", matches.len()),
        )),
    }
}
