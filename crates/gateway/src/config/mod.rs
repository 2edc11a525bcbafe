//! The gateway's configuration: what `tether serve` reads, validated whole before anything runs.
//!
//! Three formats are read unchanged, so an operator points Tether at the file they already
//! have: Tether's own TOML (`[gateway]` and `[servers.NAME]`, see [`native`]), and the JSON (or
//! JSON5) files of desktop clients and agent gateways ([`json`]): Claude Desktop and Cursor
//! (`mcpServers`), VS Code (`servers`) and OpenClaw (`mcp.servers`), where Tether's own keys
//! are accepted in camelCase on each entry. Both formats fill the same [`fields::ServerFields`]
//! and go through one validation ([`fields::build_server`]), so a rule holds in every format.
//!
//! A configuration is all or nothing: the first error, named with file, line, column and what
//! was expected ([`ConfigError`]), refuses the whole file, and a reload that fails keeps the
//! configuration in force.

mod error;
mod fields;
pub mod json;
mod locate;
pub mod native;
mod secret;
mod tls;
mod unique;
mod values;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tether_supervisor::ssh::SshTarget;

pub use error::ConfigError;
pub use fields::{check_exposure, check_token};
pub use secret::Secret;

/// The address `tether serve` listens on when the configuration names none.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7300";
/// How long a client session may stay idle before it is ended with its instances.
pub const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// The largest JSON-RPC message accepted from a client or a server, by default.
pub const DEFAULT_MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// Most client sessions at once, by default.
pub const DEFAULT_MAX_SESSIONS: usize = 10_000;
/// How long a server may take from spawn to its `initialize` answer, by default.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request may wait for a server's answer, by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Time between SIGTERM and SIGKILL for a server's tree, by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(2);

/// A whole, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where it came from.
    pub source: Source,
    /// The gateway itself.
    pub gateway: GatewayConfig,
    /// The servers, by name (sorted, so every listing is deterministic).
    pub servers: BTreeMap<String, ServerConfig>,
}

/// Where a configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file.
    File(PathBuf),
    /// The embedded default (the fixture server), used when no file exists.
    Embedded,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Embedded => f.write_str("the embedded default"),
        }
    }
}

/// The `[gateway]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayConfig {
    /// Where the HTTP front door listens.
    pub listen: SocketAddr,
    /// The bearer token clients must present, if any (required for a non-loopback `listen`).
    pub token: Option<Secret>,
    /// A session idle this long is ended, with its instances.
    pub session_idle_timeout: Duration,
    /// Most processes alive across all instances; past it, new instances are refused.
    pub max_processes: Option<u32>,
    /// The largest message accepted from a client or a server, in bytes.
    pub max_message_size: usize,
    /// Origins allowed besides the listen address's own (`http://localhost:7300` …).
    pub allowed_origins: Vec<String>,
    /// How requests are answered over HTTP.
    pub response_mode: ResponseMode,
    /// Most client sessions at once; past it, an `initialize` is refused.
    pub max_sessions: usize,
    /// How tools and prompts are named at the aggregated endpoint.
    pub prefix: Prefix,
    /// The header a 2026-07-28 client names its lasting session with (lowercase).
    pub session_header: String,
}

/// How tools and prompts of several servers are named behind one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Prefix {
    /// Always `server__name`: names never collide, and a call finds its server by the name alone.
    #[default]
    Always,
    /// The server's own name, unless several servers list it: then each is `server__name`.
    OnConflict,
    /// The server's own name; when several servers list it, the first server (by name) keeps it
    /// and the others' are left out.
    Never,
}

impl Prefix {
    /// The name in configurations.
    pub fn name(self) -> &'static str {
        match self {
            Prefix::Always => "always",
            Prefix::OnConflict => "on_conflict",
            Prefix::Never => "never",
        }
    }
}

/// How the HTTP front door answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    /// An event stream for every request whose client accepts one: what the servers of the
    /// official SDKs do, and what clients are tested against.
    Stream,
    /// JSON when the answer is the first thing to say; an event stream only when the server
    /// says something during the call (progress, logging, a request to the client).
    Json,
}

/// One configured server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Its name: the `{server}` in `/mcp/{server}`, and its name in the ledger.
    pub name: String,
    /// How it is reached.
    pub transport: Transport,
    /// How long an instance lives.
    pub lifetime: Lifetime,
    /// An instance with no call for this long is ended (`None`: never, for `shared`).
    pub idle_timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL for its tree.
    pub grace: Duration,
    /// Most instances alive at once.
    pub max_instances: Option<u32>,
    /// Most processes in one instance's tree (`pids.max`).
    pub max_procs: Option<u32>,
    /// `false` keeps the entry but serves nothing from it.
    pub enabled: bool,
    /// Which of its tools are offered.
    pub tools: ToolFilter,
    /// How long from spawn to its `initialize` answer.
    pub startup_timeout: Duration,
    /// How long one request may wait for its answer.
    pub request_timeout: Duration,
    /// Which protocol revisions to speak to it.
    pub protocol: Protocol,
}

/// Which protocol revisions the gateway speaks to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// A server over HTTP is asked `server/discover` first and spoken to in 2026-07-28 when it
    /// speaks it; a stdio server is initialized (a session-based stdio server may answer
    /// nothing before `initialize`).
    #[default]
    Auto,
    /// 2026-07-28 only: `server/discover`, never `initialize` (for stdio servers that speak
    /// only that revision).
    Modern,
    /// The session-based revisions only: `initialize`, never `server/discover`.
    Sessions,
}
#[derive(Debug, Clone, PartialEq)]
pub enum Transport {
    /// A local program, over its stdin and stdout, under a shim.
    Stdio(StdioCommand),
    /// A program on an SSH host, under a shim and the remote wrapper.
    Ssh {
        /// Where and how to log in.
        target: Box<SshTarget>,
        /// The remote program and its environment.
        command: StdioCommand,
    },
    /// A remote server over HTTP.
    Http(HttpUpstream),
}

/// A program to run: never through a shell.
#[derive(Debug, Clone, PartialEq)]
pub struct StdioCommand {
    /// The program (looked up in `PATH`).
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Environment variables added for it (values are secrets: never logged).
    pub env: Vec<(String, Secret)>,
    /// Its working directory.
    pub cwd: Option<PathBuf>,
}

impl StdioCommand {
    /// Program and arguments.
    pub fn argv(&self) -> Vec<OsString> {
        std::iter::once(self.program.clone())
            .chain(self.args.iter().cloned())
            .collect()
    }
}

/// A remote server over HTTP.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpUpstream {
    /// Its URL.
    pub url: String,
    /// Streamable HTTP or the legacy SSE transport.
    pub kind: HttpKind,
    /// Headers sent with every request (values are secrets: never logged).
    pub headers: Vec<(String, Secret)>,
    /// How long a connection may take.
    pub connection_timeout: Option<Duration>,
    /// Certificates (DER) trusted besides the built-in roots for an `https://` server: its
    /// own CA (`ca_file`), read when the configuration is.
    pub extra_roots: Vec<Vec<u8>>,
}

/// Which HTTP transport an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpKind {
    /// Streamable HTTP (2025-03-26 and later).
    Streamable,
    /// The legacy HTTP+SSE transport (2024-11-05).
    Sse,
}

/// How long an instance of a server lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifetime {
    /// One instance for every client, started on first use, restarted with backoff.
    Shared,
    /// One instance per client session, ended with the session.
    Session,
    /// One instance per request, ended when its answer is in.
    Request,
}

impl Lifetime {
    /// The name in configurations and reports.
    pub fn name(self) -> &'static str {
        match self {
            Lifetime::Shared => "shared",
            Lifetime::Session => "session",
            Lifetime::Request => "request",
        }
    }
}

/// Which tools of a server are offered: all but `exclude`, and only `include` when given.
/// Names match exactly, or as a prefix when they end in `*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolFilter {
    /// Offer only these (all when `None`).
    pub include: Option<Vec<String>>,
    /// Never offer these.
    pub exclude: Vec<String>,
}

impl ToolFilter {
    /// Whether the tool `name` is offered.
    pub fn allows(&self, name: &str) -> bool {
        let matches = |pattern: &String| match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == pattern,
        };
        self.include.as_ref().is_none_or(|inc| inc.iter().any(matches)) && !self.exclude.iter().any(matches)
    }

    /// True when every tool is offered.
    pub fn is_all(&self) -> bool {
        self.include.is_none() && self.exclude.is_empty()
    }
}

/// Reads and validates a configuration file, TOML or JSON by its content.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read(path).map_err(|e| ConfigError::io(path, "reading", &e))?;
    let text = String::from_utf8(text).map_err(|e| {
        let (line, column) = locate::line_col_of_byte(e.as_bytes(), e.utf8_error().valid_up_to());
        ConfigError::at(path, line, column, "the file is not UTF-8")
    })?;
    parse(path, &text)
}

/// Validates configuration text read from `path` (named in errors).
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let (gateway, servers) = if looks_like_json(path, text) {
        json::parse(path, text)?
    } else {
        native::parse(path, text)?
    };
    Ok(Config {
        source: Source::File(path.to_path_buf()),
        gateway,
        servers,
    })
}

fn looks_like_json(path: &Path, text: &str) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json" | "json5" | "jsonc") => true,
        Some("toml") => false,
        _ => text.trim_start().starts_with(['{', '/']),
    }
}

/// The configuration file `tether serve` reads when given none: `$XDG_CONFIG_HOME/tether/
/// config.toml`, else `~/.config/tether/config.toml`, if it exists.
pub fn default_path() -> Option<PathBuf> {
    default_location().filter(|p| p.is_file())
}

/// Where the default configuration file is looked for (`$XDG_CONFIG_HOME/tether/config.toml`,
/// else `~/.config/tether/config.toml`), whether it exists or not; `None` without a home.
pub fn default_location() -> Option<PathBuf> {
    let from_env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let dir = from_env("XDG_CONFIG_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| from_env("HOME").map(|h| h.join(".config")))?;
    Some(dir.join("tether").join("config.toml"))
}

/// The embedded default: the fixture server next to the `tether` executable, `shared`, on the
/// default listen address. What `tether serve` runs on a fresh machine.
pub fn embedded(fixture: PathBuf) -> Config {
    let mut servers = BTreeMap::new();
    servers.insert(
        "fixture".to_string(),
        ServerConfig {
            name: "fixture".into(),
            transport: Transport::Stdio(StdioCommand {
                program: fixture.into_os_string(),
                args: Vec::new(),
                env: Vec::new(),
                cwd: None,
            }),
            lifetime: Lifetime::Shared,
            idle_timeout: None,
            grace: DEFAULT_GRACE,
            max_instances: None,
            max_procs: None,
            enabled: true,
            tools: ToolFilter::default(),
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            protocol: Protocol::Auto,
        },
    );
    Config {
        source: Source::Embedded,
        gateway: GatewayConfig::default(),
        servers,
    }
}

impl Default for GatewayConfig {
    fn default() -> GatewayConfig {
        GatewayConfig {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 7300))),
            token: None,
            session_idle_timeout: DEFAULT_SESSION_IDLE,
            max_processes: None,
            max_message_size: DEFAULT_MAX_MESSAGE,
            allowed_origins: Vec::new(),
            response_mode: ResponseMode::Stream,
            max_sessions: DEFAULT_MAX_SESSIONS,
            prefix: Prefix::Always,
            session_header: crate::modern::DEFAULT_SESSION_HEADER.to_string(),
        }
    }
}

impl Config {
    /// Listens on `addr` instead (`tether serve --listen`), with the same rule as the file: a
    /// non-loopback address needs a token.
    pub fn with_listen(mut self, addr: SocketAddr) -> Result<Config, ConfigError> {
        self.gateway.listen = addr;
        fields::check_exposure(&self.gateway)
            .map_err(|why| ConfigError::plain(&self.source, format!("--listen {addr}: {why}")))?;
        Ok(self)
    }

    /// The enabled servers.
    pub fn enabled(&self) -> impl Iterator<Item = &ServerConfig> {
        self.servers.values().filter(|s| s.enabled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_filters_match_names_and_prefixes() {
        let f = ToolFilter {
            include: Some(vec!["read_*".into(), "list".into()]),
            exclude: vec!["read_secret".into()],
        };
        assert!(f.allows("read_file") && f.allows("list"));
        assert!(!f.allows("read_secret") && !f.allows("write_file") && !f.allows("lists"));
        assert!(ToolFilter::default().allows("anything"));
    }
}
