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
//! - `GET /metrics`: Prometheus metrics ([`crate::metrics`]).
//!
//! A unix socket works the same on macOS; a gateway that cannot make one (another gateway's on
//! the same state directory, say) serves on without it and says so.

pub mod call;
pub mod routes;
pub mod trees;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;
use tokio::sync::watch;

use crate::gateway::Gateway;

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

/// Answers admin requests until `stop`; the socket is removed then.
pub async fn serve(gw: Arc<Gateway>, listener: UnixListener, mut stop: watch::Receiver<bool>) {
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
        let gw = gw.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| routes::handle(gw.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
    if let Some(p) = path {
        let _ = std::fs::remove_file(p);
    }
}
