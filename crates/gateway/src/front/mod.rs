//! The front doors: streamable HTTP ([`http`]) and stdio ([`stdio`]), with the checks every
//! HTTP request passes first ([`guard`]) and the bodies it answers with ([`body`]); the stdio
//! door's ends are pipes on the runtime's thread where they can be ([`stdio_ends`]).

pub mod body;
pub mod guard;
pub mod http;
pub mod stdio;
mod stdio_ends;

use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::gateway::Gateway;

/// How long a client has to send a request's headers, and then its body ([`http`]): a client
/// that opens connections and trickles bytes (slow loris) must not hold them, and their fds,
/// for ever.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The HTTP/1.1 connection settings of every TCP listener (the front door, the admin API over
/// HTTP): headers within [`REQUEST_TIMEOUT`], or the connection is closed.
pub fn http1_server() -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(REQUEST_TIMEOUT);
    b
}

/// Accepts connections on `listener` until `stop`, handing each to `serve` (which spawns its
/// task); `what` names the listener in the log. Every TCP listener of the gateway (the front
/// door, the admin API over HTTP) accepts this way.
pub async fn accept_until(
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    what: &str,
    serve: impl Fn(tokio::net::TcpStream),
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        match accepted {
            Ok((stream, _peer)) => serve(stream),
            Err(e) => {
                // Out of fds, say: the error repeats until one is free, so back off a little
                // rather than spin on it.
                tracing::warn!("{what}: accepting a connection: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Accepts HTTP connections until `stop`; each is served on its own task.
pub async fn serve_http(gw: Arc<Gateway>, listener: TcpListener, stop: watch::Receiver<bool>) {
    accept_until(listener, stop, "front door", |stream| {
        let _ = stream.set_nodelay(true);
        let gw = gw.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| http::handle(gw.clone(), req));
            if let Err(e) = http1_server().serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!("connection: {e}");
            }
        });
    })
    .await;
}
