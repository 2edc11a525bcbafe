//! Running the gateway: the front door, the reaper, the configuration watcher and the signals,
//! until a signal (or the stdio client's EOF) asks it to end; then the shutdown.
//!
//! SIGTERM and SIGINT shut down; SIGHUP reloads the configuration. A second SIGTERM or SIGINT
//! during the shutdown is not needed: the shutdown is bounded by the longest grace. The handlers
//! are installed ([`Signals::install`]) before the start-up sweep, so that no signal arriving
//! while the gateway starts takes its default action (for all three: ending the process at
//! once); one that arrives then is acted on as soon as the gateway serves.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;

use crate::front;
use crate::gateway::{self, Gateway};

/// Which front door to serve.
pub enum Door {
    /// Streamable HTTP on this listener.
    Http(TcpListener),
    /// One client on stdin and stdout.
    Stdio,
}

/// The signals the gateway answers, caught from the moment they are installed.
pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    /// Installs the handlers; needs the runtime's context (`Runtime::enter`).
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

/// Serves until asked to stop, then shuts down; returns why it stopped.
pub async fn run(gw: Arc<Gateway>, door: Door, admin: crate::admin::Listeners, signals: Signals) -> String {
    let Signals {
        mut term,
        mut int,
        mut hup,
    } = signals;
    let (stop_tx, mut stop_rx) = watch::channel(false);
    tokio::spawn(gateway::reaper(gw.clone(), stop_rx.clone()));
    tokio::spawn(gateway::watch_config(gw.clone(), stop_rx.clone()));
    match door {
        Door::Http(listener) => {
            tokio::spawn(front::serve_http(gw.clone(), listener, stop_rx.clone()));
        }
        Door::Stdio => {
            tokio::spawn(front::stdio::serve(gw.clone(), stop_tx.clone()));
        }
    }
    crate::admin::start(&gw, admin, &stop_rx);
    tokio::spawn(crate::aggregate::survey(gw.clone()));
    tokio::spawn(crate::aggregate::views::Views::watch(gw.clone()));
    let why = loop {
        tokio::select! {
            _ = term.recv() => break "SIGTERM".to_string(),
            _ = int.recv() => break "SIGINT".to_string(),
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the configuration");
                gw.reload();
            }
            _ = stop_rx.changed() => break "the stdio client closed stdin".to_string(),
        }
    };
    let _ = stop_tx.send(true);
    gw.shutdown(&why).await;
    why
}
