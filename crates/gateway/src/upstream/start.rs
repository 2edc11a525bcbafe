//! Starting an instance: a shim through `tether_supervisor::launch`, the tasks around its
//! pipes, and the MCP `initialize` handshake, bounded by the server's `startup_timeout`.
//!
//! This is the one place the gateway hands a command to tokio's process API: a command that
//! `Launch::prepare` built, which execs `tether wrap` at once in the child (nothing else runs
//! between fork and exec in this multi-threaded process but moving the lifeline to fd 3).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tether_supervisor::launch::{Launch, LedgerChoice, Prepared, Scope, ServerCommand, StderrMode};
use tether_supervisor::layers::Disabled;
use tether_supervisor::ssh::SshServer;
use tokio::io::BufReader;
use tokio::sync::watch;

use super::{reader, short, writer, Owner, State, Upstream};
use crate::cause::Cause;
use crate::config::{ServerConfig, StdioCommand, Transport};
use crate::jsonrpc::{self, View};
use crate::lines::Line;
use crate::protocol::{self, ClientInit, ServerInit};

/// How long a gone server's shim is given to report its exit status, for the error message.
const EXIT_STATUS_PATIENCE: Duration = Duration::from_secs(1);

/// What every instance of this gateway shares.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// The `tether` executable that runs the shims.
    pub tether: PathBuf,
    /// The gateway's owner id (`TETHER_OWNER` of every instance).
    pub owner_id: String,
    /// The ledger the shims write.
    pub ledger: LedgerChoice,
    /// The largest line accepted from a server.
    pub max_message: usize,
}

/// Why an instance could not be started.
#[derive(Debug, Clone, thiserror::Error)]
#[error("server {server:?}: {why}")]
pub struct StartError {
    /// The server's name.
    pub server: String,
    /// What went wrong.
    pub why: String,
}

impl StartError {
    /// Server `server` could not start, because `why`.
    pub fn new(server: &str, why: String) -> StartError {
        StartError {
            server: server.to_string(),
            why,
        }
    }
}

/// Counts, keeps and logs an instance's end: its shim exited (with `status`), so its whole
/// tree is gone; `ending` is when and why its end was asked for, if it was.
fn record_end(
    name: &str,
    id: &str,
    shim_pid: Option<u32>,
    started: std::time::Instant,
    ending: Option<&(std::time::Instant, Cause, String)>,
    status: &str,
    sigkilled: bool,
) {
    let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let lived_ms = ms(started.elapsed());
    let teardown = ending.map(|(asked, _, _)| asked.elapsed());
    // None asked: the server exited by itself, and the shim after it.
    let cause = ending.map_or(Cause::ServerExited, |(_, cause, _)| *cause);
    crate::metrics::ended(name, cause, teardown);
    // The shim ends the way its server did: a server that died of SIGKILL in a teardown the
    // gateway asked for outlived its grace.
    let escalated = sigkilled && teardown.is_some();
    if escalated {
        crate::metrics::escalated(name);
    }
    let teardown_ms = teardown.map(ms);
    crate::teardowns::record(crate::teardowns::Teardown {
        instance: id.to_string(),
        server: name.to_string(),
        reason: ending.map(|(_, _, why)| why.clone()),
        cause: cause.label(),
        escalated,
        status: status.to_string(),
        teardown_ms,
        lived_ms,
        ended_at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
    });
    tracing::info!(
        server = %name,
        instance = %id,
        shim_pid,
        status = %status,
        cause = cause.label(),
        teardown_ms,
        escalated,
        lived_ms,
        "instance ended"
    );
}

/// SIGKILL's number, fixed by POSIX (the gateway links no libc crate).
const SIGKILL: i32 = 9;

/// The longest line of a server's stderr logged whole; past it only the line's first bytes are
/// kept (see [`crate::lines`]).
const STDERR_LINE_MAX: usize = 8 * 1024;

/// Most messages queued for a server's stdin before requests to it are refused (a server that
/// stopped reading must not make the gateway's memory grow).
pub const OUTBOX: usize = 1024;

/// Spawns an instance of `server` for `owner` in `scope`: a shim, and the tasks around its
/// pipes. The instance is `Starting` until [`Upstream::initialize`] is done.
pub fn spawn(
    server: Arc<ServerConfig>,
    owner: Owner,
    scope: Scope,
    opts: &StartOptions,
) -> Result<Arc<Upstream>, StartError> {
    let fail = |why: String| StartError::new(&server.name, why);
    let command = match &server.transport {
        Transport::Stdio(c) => (ServerCommand::Local(c.argv()), c),
        Transport::Ssh { target, command } => (
            ServerCommand::Ssh(Box::new(SshServer {
                target: (**target).clone(),
                command: command.argv(),
                env: command
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), v.expose().to_string()))
                    .collect(),
                env_from_stdin: Vec::new(),
            })),
            command,
        ),
        Transport::Http(h) => return super::http::spawn(server.clone(), h, owner, scope, opts),
    };
    let instance = tether_supervisor::ids::random_id().map_err(|e| fail(format!("generating an instance id: {e}")))?;
    let launch = launch(&server, command, scope, &instance, opts);
    let Prepared {
        command,
        lifeline,
        stdin_first,
    } = launch.prepare().map_err(|e| fail(format!("preparing the shim: {e}")))?;
    let mut command = tokio::process::Command::from(command);
    #[allow(clippy::disallowed_methods)] // A command Launch::prepare built: it execs the shim at once.
    let spawned = command.spawn();
    // The command holds the lifeline's read end until dropped: only the shim may keep it.
    drop(command);
    let mut child = spawned.map_err(|e| fail(format!("starting tether wrap: {e}")))?;
    let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(fail("the shim's pipes are missing".into()));
    };
    let (exit_tx, exit_rx) = watch::channel(None);
    let pid = child.id();
    let super::Made { up, inbox } = Upstream::make(
        instance,
        server.clone(),
        owner,
        super::Anchor::Shim(lifeline),
        exit_rx,
        pid,
    );
    tracing::info!(server = %server.name, instance = %short(&up.id), lifetime = server.lifetime.name(), shim_pid = pid, "instance starting");
    tokio::spawn(writer::write(Arc::downgrade(&up), stdin, stdin_first, inbox));
    tokio::spawn(reader::read(Arc::downgrade(&up), stdout, opts.max_message));
    tokio::spawn(log_stderr(server.name.clone(), short(&up.id).to_string(), stderr));
    let weak = Arc::downgrade(&up);
    // A local server's program, to say what a shell's 127 or 126 means (over SSH they would be
    // the remote side's, not about `ssh`).
    let program = match &server.transport {
        Transport::Stdio(c) => Some(c.program.to_string_lossy().into_owned()),
        _ => None,
    };
    let (name, id, started) = (
        server.name.clone(),
        short(&up.id).to_string(),
        std::time::Instant::now(),
    );
    let ending = up.ending.clone();
    crate::metrics::started(&name);
    tokio::spawn(async move {
        let (status, sigkilled) = match child.wait().await {
            Ok(s) => (
                spawn_failure(describe_exit(s), s.code(), program.as_deref()),
                std::os::unix::process::ExitStatusExt::signal(&s) == Some(SIGKILL),
            ),
            Err(e) => (format!("could not be waited for: {e}"), false),
        };
        record_end(&name, &id, pid, started, ending.get(), &status, sigkilled);
        let _ = exit_tx.send(Some(status.clone()));
        if let Some(up) = weak.upgrade() {
            up.mark_gone(&format!("the server's shim exited ({status})"));
        }
    });
    Ok(up)
}

impl Upstream {
    /// The MCP handshake, bounded by the server's `startup_timeout`; `client` is the client
    /// whose own `initialize` the instance gets (an instance serving one client), `None` for a
    /// shared one. On failure the instance is ended.
    pub async fn initialize(&self, client: Option<&ClientInit>) -> Result<(), StartError> {
        let fail = |why: String| StartError::new(&self.server.name, why);
        let params = protocol::initialize_params(client);
        // A server that may speak 2026-07-28 is asked first: then it has no `initialize`.
        let protocol = self.server.protocol;
        let streamable =
            matches!(&self.server.transport, Transport::Http(h) if h.kind == crate::config::HttpKind::Streamable);
        let ask = match protocol {
            crate::config::Protocol::Modern => true,
            crate::config::Protocol::Auto => streamable,
            crate::config::Protocol::Sessions => false,
        };
        if ask {
            let found = tokio::time::timeout(self.server.startup_timeout, self.discover(&params)).await;
            match found {
                Ok(Some((init, revision))) => {
                    let _ = self.revision.set(revision);
                    let _ = self.init.set(init);
                    self.state.send_if_modified(|s| match s {
                        State::Starting => {
                            *s = State::Ready;
                            true
                        }
                        _ => false,
                    });
                    self.ready().await.map_err(fail)?;
                    tracing::info!(server = %self.server.name, instance = %short(&self.id), "instance ready (protocol revision 2026-07-28)");
                    return Ok(());
                }
                _ if protocol == crate::config::Protocol::Modern => {
                    let why = format!(
                        "did not answer server/discover as a 2026-07-28 server within {} (protocol = \"2026-07-28\")",
                        humantime::format_duration(self.server.startup_timeout)
                    );
                    self.end(Cause::ServerFailed, &why);
                    return Err(fail(why));
                }
                _ => {}
            }
        }
        let answer = match self
            .call("initialize", Some(&params), self.server.startup_timeout)
            .await
        {
            Ok(a) => a,
            Err(why) => {
                // The call's error names the server already, as the start error will.
                let own = format!("server {:?}: ", self.server.name);
                let why = why.strip_prefix(&own).map_or(why.clone(), str::to_string);
                let why = if why.starts_with("no answer") {
                    format!(
                        "did not answer initialize within {}",
                        humantime::format_duration(self.server.startup_timeout)
                    )
                } else {
                    why
                };
                self.end(Cause::ServerFailed, &why);
                return Err(fail(why));
            }
        };
        let init = jsonrpc::utf8(&answer).map_err(|e| e.to_string()).and_then(|text| {
            let view = View::parse(text).map_err(|e| e.to_string())?;
            if let Some(err) = view.error {
                return Err(format!("refused initialize: {}", err.get()));
            }
            let result: &serde_json::value::RawValue = serde_json::from_str::<InitAnswer>(text)
                .map_err(|e| e.to_string())?
                .result;
            ServerInit::parse(result.get())
        });
        let init = match init {
            Ok(i) => i,
            Err(why) => {
                self.end(Cause::ServerFailed, &why);
                return Err(fail(why));
            }
        };
        if let Ok(Some(super::Anchor::Http(closer))) = self.anchor.lock().as_deref() {
            closer.negotiated(&init.protocol_version);
        }
        let _ = self.init.set(init);
        if let Err(why) = self.send(jsonrpc::notification("notifications/initialized", None)) {
            self.end(Cause::ServerFailed, &why);
            return Err(fail(why));
        }
        self.state.send_if_modified(|s| match s {
            State::Starting => {
                *s = State::Ready;
                true
            }
            _ => false,
        });
        self.ready().await.map_err(fail)?;
        tracing::info!(server = %self.server.name, instance = %short(&self.id), "instance ready");
        Ok(())
    }
}

impl Upstream {
    /// Asks the server `server/discover`: over HTTP with the revision's headers, over stdio as
    /// any request. Its declaration, when it speaks 2026-07-28.
    async fn discover(&self, params: &str) -> Option<(ServerInit, super::modern::Revision)> {
        if let Some(link) = self.http_link() {
            return super::modern::discover_http(&link, params).await;
        }
        let answer = self
            .call(
                "server/discover",
                Some(&super::modern::discover_params(params)),
                self.server.startup_timeout,
            )
            .await
            .ok()?;
        let message: serde_json::Value = serde_json::from_slice(&answer).ok()?;
        super::modern::discovered(&message, params)
    }
}

#[derive(serde::Deserialize)]
struct InitAnswer<'a> {
    #[serde(borrow)]
    result: &'a serde_json::value::RawValue,
}

fn launch(
    server: &ServerConfig,
    (command, stdio): (ServerCommand, &StdioCommand),
    scope: Scope,
    instance: &str,
    opts: &StartOptions,
) -> Launch {
    let mut launch = Launch::new(
        opts.tether.clone(),
        command,
        opts.owner_id.clone(),
        instance.to_string(),
    );
    launch.name = server.name.clone();
    launch.scope = scope;
    launch.grace = server.grace;
    launch.max_procs = server.max_procs;
    launch.disabled = Disabled::NONE;
    launch.stderr = StderrMode::Piped;
    launch.ledger = opts.ledger.clone();
    if matches!(launch.server, ServerCommand::Local(_)) {
        launch.env = stdio.env.iter().map(|(k, v)| (k.into(), v.expose().into())).collect();
        launch.cwd.clone_from(&stdio.cwd);
    }
    launch
}

/// A server's stderr (and its shim's messages), line by line into the gateway's log.
async fn log_stderr(server: String, instance: String, stderr: tokio::process::ChildStderr) {
    // Read to its end whatever comes: a line that is not UTF-8 is logged lossily and a line
    // without end is cut, so a hostile server costs neither unbounded memory nor, by a pipe
    // no longer read, a server blocked on its next write.
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match crate::lines::read_line(&mut reader, &mut line, STDERR_LINE_MAX).await {
            Ok(Line::Whole) => {
                let line = String::from_utf8_lossy(&line);
                tracing::info!(server = %server, instance = %instance, "stderr: {line}");
            }
            Ok(Line::TooLong(n)) => {
                let line = String::from_utf8_lossy(&line);
                tracing::info!(server = %server, instance = %instance, "stderr: {line}… (a {n}-byte line, cut)");
            }
            Ok(Line::Eof) | Err(_) => return,
        }
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => status.to_string(),
    }
}

/// The exit `status` described, with what a shell's 127 or 126 means when the server's
/// `program` is known: the shim exits so when the program cannot be run, and the client sees
/// this text, while the shim's own message is only in the gateway's log.
fn spawn_failure(status: String, code: Option<i32>, program: Option<&str>) -> String {
    match (code, program) {
        (Some(127), Some(p)) => format!("{status}: command not found: {p:?}"),
        (Some(126), Some(p)) => format!("{status}: cannot be executed: {p:?}"),
        _ => status,
    }
}

/// Waits briefly for the shim's exit status, to name it in an error.
pub(super) async fn exit_status(up: &Upstream) -> Option<String> {
    up.wait_exit(EXIT_STATUS_PATIENCE).await
}
