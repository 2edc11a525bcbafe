//! The admin API: what an operator asks a running gateway, over HTTP/1.1 on a unix socket in
//! the state directory (`admin.sock`, mode 0600 in a 0700 directory: only the gateway's user
//! reaches it, so it needs no token). `tether sessions`, `tether kill` and `tether reload`
//! speak it; [`call`] tells which call a request is, [`routes`] answers it:
//!
//! - `GET /v1/gateway`: the gateway itself (pid, owner id in the ledger, version, uptime,
//!   ledger file);
//! - `GET /v1/sessions`: every client session (its id, key, endpoint, client, protocol
//!   revision, idle time) with the instances it holds;
//! - `GET /v1/instances`: every instance (id, server, lifetime, session, shim pid, state, age,
//!   time since its last call, calls in flight, containment layers and cgroup) with its
//!   process tree: each process's pid, parent, state, RSS, CPU time, age and command
//!   ([`trees`]), and the tree's totals;
//! - `DELETE /v1/scopes/{id}`: ends a session (by id or key) or an instance (by id or a
//!   prefix of one) and every process of it, as a client's DELETE or an idle timeout would;
//! - `POST /v1/reload`: reads the configuration again, as SIGHUP does;
//! - `POST /v1/sweep`: sweeps the ledger as `tether reap` does (what dead Tethers left; never
//!   this gateway's live instances) and answers with the report;
//! - `GET /v1/teardowns`: the last instance ends, newest first ([`crate::teardowns`]);
//! - `GET /metrics`: Prometheus metrics ([`crate::metrics`]);
//! - `GET /v1/dashboard` (on the socket only): the dashboard's login URL, with the admin token,
//!   when the gateway runs with `--admin-listen` (`tether dashboard` prints it).
//!
//! A unix socket works the same on macOS; a gateway that cannot make one (another gateway's on
//! the same state directory, say) serves on without it and says so.
//!
//! With `--admin-listen ADDR` the same calls, and the dashboard, are also served over HTTP on a
//! loopback address, each request with the admin token ([`web`], [`dashboard`]).

pub mod call;
pub mod dashboard;
pub mod routes;
pub mod trees;
pub mod web;

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::UnixListener;
use tokio::sync::watch;

use crate::gateway::Gateway;

/// Where the admin API is served: the unix socket, and the loopback HTTP listener.
#[derive(Default)]
pub struct Listeners {
    /// `admin.sock` in the state directory ([`bind`]).
    pub socket: Option<UnixListener>,
    /// `--admin-listen` ([`web::bind`]).
    pub web: Option<web::Listener>,
}

/// Serves the admin API on `listeners` until `stop`.
pub fn start(gw: &Arc<Gateway>, listeners: Listeners, stop: &watch::Receiver<bool>) {
    let access = listeners.web.as_ref().map(web::Listener::access);
    if let Some(listener) = listeners.web {
        tokio::spawn(web::serve(gw.clone(), listener, stop.clone()));
    }
    if let Some(listener) = listeners.socket {
        tokio::spawn(serve(gw.clone(), listener, access, stop.clone()));
    }
}

/// The admin socket of the state directory `dir`.
pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join(tether_supervisor::ledger::location::ADMIN_SOCKET)
}

/// Binds the admin socket in `dir`, mode 0600. A socket left by a dead gateway is replaced;
/// one a live gateway answers on is left alone (an error says so).
pub fn bind(dir: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let path = socket_path(dir);
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} belongs to another running gateway", path.display()),
            ));
        }
        std::fs::remove_file(&path).map_err(named(&path, "removing a dead gateway's"))?;
    }
    let listener = UnixListener::bind(&path).map_err(named(&path, "binding"))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(named(&path, "restricting"))?;
    Ok(listener)
}

/// An error that names what was being done to the socket at `path`.
fn named<'a>(path: &'a Path, doing: &'static str) -> impl Fn(std::io::Error) -> std::io::Error + 'a {
    move |e| std::io::Error::new(e.kind(), format!("{doing} {}: {e}", path.display()))
}

/// When the gateway started serving its admin API (its uptime, for `GET /v1/gateway`).
pub fn started() -> std::time::Instant {
    static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *STARTED.get_or_init(std::time::Instant::now)
}

/// Answers admin requests until `stop`; the socket is removed then. `web` is the HTTP
/// listener's access, for `GET /v1/dashboard`.
pub async fn serve(
    gw: Arc<Gateway>,
    listener: UnixListener,
    web: Option<Arc<web::Access>>,
    mut stop: watch::Receiver<bool>,
) {
    started();
    let path = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(Path::to_path_buf));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let Ok((stream, _)) = accepted else { continue };
        let (gw, web) = (gw.clone(), web.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| on_socket(gw.clone(), web.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
    if let Some(p) = path {
        let _ = std::fs::remove_file(p);
    }
}

/// One request on the socket: `GET /v1/dashboard`, which only the socket answers, else the
/// calls both listeners answer.
async fn on_socket<B>(
    gw: Arc<Gateway>,
    web: Option<Arc<web::Access>>,
    req: Request<B>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET || req.uri().path().trim_end_matches('/') != "/v1/dashboard" {
        return routes::handle(gw, req).await;
    }
    let (status, body) = match web {
        Some(access) => (StatusCode::OK, json!({ "url": access.login_url() })),
        None => (
            StatusCode::NOT_FOUND,
            json!({ "error": "this gateway runs without --admin-listen, so it serves no dashboard (start it with `tether serve --admin-listen 127.0.0.1:PORT`; port 0 picks a free one)" }),
        ),
    };
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}
