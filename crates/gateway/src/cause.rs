//! Why a session or an instance ended, as a small fixed set: the `reason` label of the
//! `tether_sessions_ended_total` and `tether_instances_ended_total` metrics, where a free text
//! would make one time series per message. The words (which server, which timeout) stay in the
//! log and in the admin API's teardowns; this is the kind of end, to count and alert on.

/// The kind of end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// The client ended it: a DELETE, the stdio client's EOF.
    Client,
    /// A `request` instance's request is done.
    RequestDone,
    /// Idle past its timeout (`session_idle_timeout`, a server's `idle_timeout`).
    Idle,
    /// A reload removed or changed its server.
    Reload,
    /// The gateway is shutting down.
    Shutdown,
    /// An operator ended it through the admin API (`tether kill`, the dashboard).
    Admin,
    /// The server went away by itself: it exited, its stream (over HTTP) ended.
    ServerExited,
    /// The server misbehaved: no answer to initialize in time, a refused handshake, input it
    /// stopped reading, a stdout it closed while it lives on.
    ServerFailed,
    /// Whoever asked for it went away before it was ready.
    Abandoned,
    /// The gateway's own use: the start-up survey of what each server offers.
    Survey,
}

impl Cause {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Cause::Client => "client",
            Cause::RequestDone => "request_done",
            Cause::Idle => "idle",
            Cause::Reload => "reload",
            Cause::Shutdown => "shutdown",
            Cause::Admin => "admin",
            Cause::ServerExited => "server_exited",
            Cause::ServerFailed => "server_failed",
            Cause::Abandoned => "abandoned",
            Cause::Survey => "survey",
        }
    }
}
