//! The fields every format fills, and the one validation that turns them into a
//! [`ServerConfig`] or a [`GatewayConfig`]: a rule written here holds in TOML and JSON alike.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tether_supervisor::ssh::SshTarget;

use super::error::Invalid;
use super::values::{DurationValue, SizeValue};
use super::{
    GatewayConfig, HttpKind, HttpUpstream, Lifetime, Secret, ServerConfig, StdioCommand, ToolFilter, Transport,
    DEFAULT_GRACE, DEFAULT_REQUEST_TIMEOUT, DEFAULT_STARTUP_TIMEOUT,
};

/// A server entry as read, before validation (keys in Tether's snake_case names).
#[derive(Debug, Default)]
pub struct ServerFields {
    pub command: Option<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
    pub url: Option<String>,
    pub headers: Vec<(String, String)>,
    /// `type` (Claude, VS Code) or `transport` (OpenClaw): `stdio`, `sse`, `http`, …
    pub transport: Option<(&'static str, String)>,
    pub ssh: Option<String>,
    pub ssh_options: Vec<String>,
    pub ssh_config: Option<String>,
    pub ssh_identity: Option<String>,
    pub lifetime: Option<String>,
    pub idle_timeout: Option<(&'static str, DurationValue, Duration)>,
    pub grace: Option<(&'static str, DurationValue, Duration)>,
    pub max_instances: Option<(&'static str, i64)>,
    pub max_procs: Option<(&'static str, i64)>,
    pub enabled: Option<bool>,
    pub tools_include: Option<Vec<String>>,
    pub tools_exclude: Vec<String>,
    pub startup_timeout: Option<(&'static str, DurationValue, Duration)>,
    pub request_timeout: Option<(&'static str, DurationValue, Duration)>,
    pub connection_timeout: Option<(&'static str, DurationValue, Duration)>,
    /// A bearer token for an HTTP upstream, from this environment variable (key, name).
    pub bearer_token_env: Option<(&'static str, String)>,
    /// A bearer token for an HTTP upstream, from this file (key, path).
    pub bearer_token_file: Option<(&'static str, String)>,
    /// PEM certificates to trust for an `https://` upstream (key, path).
    pub ca_file: Option<(&'static str, String)>,
    /// Which protocol revisions to speak to it (key, value).
    pub protocol: Option<(&'static str, String)>,
}

/// The unit of a number in a duration key: seconds, or milliseconds for `…Ms` keys.
pub const SECONDS: Duration = Duration::from_secs(1);
/// See [`SECONDS`].
pub const MILLIS: Duration = Duration::from_millis(1);

/// Checks a server's name: it is a URL path segment and a ledger label.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!("server name {name:?}: expected 1 to 64 characters"));
    }
    if name == "__proto__" || name.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
        return Err(format!(
            "server name {name:?}: no '/', '\\', control characters, nor __proto__"
        ));
    }
    Ok(())
}

/// Validates one server entry. Errors carry the path of the offending key, relative to the
/// entry.
pub fn build_server(name: &str, f: ServerFields, base: &Path) -> Result<ServerConfig, Invalid> {
    check_name(name).map_err(|m| Invalid::new(&[], m))?;
    let lifetime = match f.lifetime.as_deref() {
        None | Some("shared") => Lifetime::Shared,
        Some("session") => Lifetime::Session,
        Some("request") => Lifetime::Request,
        Some(other) => {
            return Err(Invalid::new(
                &["lifetime"],
                format!("server {name:?}: lifetime {other:?}: expected \"shared\", \"session\" or \"request\""),
            ))
        }
    };
    let mut transport = transport(name, &f, base)?;
    if matches!(transport, Transport::Http(_)) && lifetime == Lifetime::Request {
        return Err(Invalid::new(
            &["lifetime"],
            format!("server {name:?}: an HTTP upstream lives \"shared\" or \"session\", not per \"request\""),
        ));
    }
    let duration = |v: &Option<(&'static str, DurationValue, Duration)>| -> Result<Option<Duration>, Invalid> {
        v.as_ref()
            .map(|(key, value, unit)| {
                value
                    .to_duration(*unit)
                    .map_err(|m| Invalid::new(&[key], format!("server {name:?}: {key}: {m}")))
            })
            .transpose()
    };
    let count = |v: Option<(&'static str, i64)>| -> Result<Option<u32>, Invalid> {
        v.map(|(key, n)| {
            u32::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| {
                Invalid::new(
                    &[key],
                    format!(
                        "server {name:?}: {key}: expected a whole number from 1 to {}, found {n}",
                        u32::MAX
                    ),
                )
            })
        })
        .transpose()
    };
    let grace = duration(&f.grace)?.unwrap_or(DEFAULT_GRACE);
    if grace > tether_supervisor::shim::MAX_GRACE {
        return Err(Invalid::new(
            &["grace"],
            format!("server {name:?}: grace: longer than a day"),
        ));
    }
    let zero = |key: &'static str, d: Option<Duration>| -> Result<Option<Duration>, Invalid> {
        match d {
            Some(d) if d.is_zero() => Err(Invalid::new(
                &[key],
                format!("server {name:?}: {key}: must be longer than 0"),
            )),
            d => Ok(d),
        }
    };
    let idle_timeout = zero(
        f.idle_timeout.as_ref().map_or("idle_timeout", |v| v.0),
        duration(&f.idle_timeout)?,
    )?;
    let startup_timeout = zero(
        key_of(&f.startup_timeout, "startup_timeout"),
        duration(&f.startup_timeout)?,
    )?
    .or(duration(&f.connection_timeout)?)
    .unwrap_or(DEFAULT_STARTUP_TIMEOUT);
    let request_timeout = zero(
        key_of(&f.request_timeout, "request_timeout"),
        duration(&f.request_timeout)?,
    )?
    .unwrap_or(DEFAULT_REQUEST_TIMEOUT);
    if let Transport::Http(h) = &mut transport {
        h.connection_timeout = zero(
            key_of(&f.connection_timeout, "connection_timeout"),
            duration(&f.connection_timeout)?,
        )?;
    }
    Ok(ServerConfig {
        name: name.to_string(),
        transport,
        lifetime,
        idle_timeout,
        grace,
        max_instances: count(f.max_instances)?,
        max_procs: count(f.max_procs)?,
        enabled: f.enabled.unwrap_or(true),
        tools: ToolFilter {
            include: f.tools_include,
            exclude: f.tools_exclude,
        },
        startup_timeout,
        request_timeout,
        protocol: match f.protocol.as_ref().map(|(k, v)| (*k, v.as_str())) {
            None | Some((_, "auto")) => super::Protocol::Auto,
            Some((_, "2026-07-28")) => super::Protocol::Modern,
            Some((_, "2025-11-25" | "session" | "sessions")) => super::Protocol::Sessions,
            Some((key, other)) => {
                return Err(Invalid::new(
                    &[key],
                    format!("server {name:?}: {key} {other:?}: expected \"auto\", \"2026-07-28\" or \"2025-11-25\""),
                ))
            }
        },
    })
}

fn key_of(v: &Option<(&'static str, DurationValue, Duration)>, default: &'static str) -> &'static str {
    v.as_ref().map_or(default, |v| v.0)
}

fn transport(name: &str, f: &ServerFields, base: &Path) -> Result<Transport, Invalid> {
    let kind = f.transport.as_ref().map(|(key, v)| (*key, v.as_str()));
    match (&f.command, &f.url) {
        (Some(_), Some(_)) => Err(Invalid::new(
            &["url"],
            format!("server {name:?}: has both \"command\" and \"url\": a server is either a program to run or an HTTP endpoint"),
        )),
        (None, None) => Err(Invalid::new(
            &[],
            format!("server {name:?}: needs \"command\" (a program to run, with \"ssh\" for a remote host) or \"url\" (an HTTP server)"),
        )),
        (Some(program), None) => {
            if let Some((key, k)) = kind.filter(|(_, k)| !matches!(*k, "stdio" | "ssh")) {
                return Err(Invalid::new(
                    &[key],
                    format!("server {name:?}: {key} {k:?} does not go with \"command\" (expected \"stdio\")"),
                ));
            }
            if program.trim().is_empty() {
                return Err(Invalid::new(&["command"], format!("server {name:?}: command is empty")));
            }
            let command = stdio_command(name, program, f, base)?;
            match &f.ssh {
                None => {
                    if let Some(key) = ssh_only_key(f) {
                        return Err(Invalid::new(&[key], format!("server {name:?}: {key} needs \"ssh\"")));
                    }
                    Ok(Transport::Stdio(command))
                }
                Some(destination) => {
                    let mut target = SshTarget::parse(destination)
                        .and_then(|t| t.with_options(&f.ssh_options))
                        .map_err(|e| Invalid::new(&["ssh"], format!("server {name:?}: {e}")))?;
                    target.config_file = f.ssh_config.as_deref().map(|p| resolve(base, p));
                    target.identity_file = f.ssh_identity.as_deref().map(|p| resolve(base, p));
                    if command.cwd.is_some() {
                        return Err(Invalid::new(
                            &["cwd"],
                            format!("server {name:?}: cwd is not supported for an ssh server (cd in the remote command instead)"),
                        ));
                    }
                    for (k, _) in &command.env {
                        tether_supervisor::ssh::env_header::check_name(k)
                            .map_err(|e| Invalid::new(&["env", k], format!("server {name:?}: {e}")))?;
                    }
                    Ok(Transport::Ssh {
                        target: Box::new(target),
                        command,
                    })
                }
            }
        }
        (None, Some(url)) => {
            let http_kind = match kind.map(|(_, k)| k) {
                None | Some("http" | "streamable-http" | "streamableHttp" | "streamable_http") => HttpKind::Streamable,
                Some("sse") => HttpKind::Sse,
                Some(other) => {
                    let key = kind.map_or("type", |(k, _)| k);
                    return Err(Invalid::new(
                        &[key],
                        format!("server {name:?}: {key} {other:?} does not go with \"url\" (expected \"http\", \"streamable-http\" or \"sse\")"),
                    ));
                }
            };
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(Invalid::new(&["url"], format!("server {name:?}: url must start with http:// or https://")));
            }
            if f.ssh.is_some() {
                return Err(Invalid::new(&["ssh"], format!("server {name:?}: \"ssh\" goes with \"command\", not \"url\"")));
            }
            let mut headers: Vec<(String, Secret)> =
                f.headers.iter().map(|(k, v)| (k.clone(), Secret::new(v.clone()))).collect();
            if let Some(token) = bearer_token(name, f, base)? {
                if let Some((k, _)) = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("authorization")) {
                    return Err(Invalid::new(
                        &["headers", k],
                        format!("server {name:?}: headers.{k} and a bearer token are both set: choose one"),
                    ));
                }
                headers.push(("Authorization".into(), Secret::new(format!("Bearer {}", token.expose()))));
            }
            let extra_roots = match &f.ca_file {
                Some((key, file)) => {
                    let path = resolve(base, file);
                    super::tls::read_pem_certificates(&path)
                        .map_err(|m| Invalid::new(&[key], format!("server {name:?}: {key} {}: {m}", path.display())))?
                }
                None => Vec::new(),
            };
            Ok(Transport::Http(HttpUpstream {
                url: url.clone(),
                kind: http_kind,
                headers,
                connection_timeout: None,
                extra_roots,
            }))
        }
    }
}

/// An HTTP upstream's bearer token, from the environment or a file, read when the
/// configuration is (so a reload reads it again); an error names the key and what is missing,
/// never the token.
fn bearer_token(name: &str, f: &ServerFields, base: &Path) -> Result<Option<Secret>, Invalid> {
    match (&f.bearer_token_env, &f.bearer_token_file) {
        (Some((env_key, _)), Some((file_key, _))) => Err(Invalid::new(
            &[file_key],
            format!("server {name:?}: {env_key} and {file_key} are both set: choose one"),
        )),
        (Some((key, var)), None) => match std::env::var(var) {
            Ok(t) if !t.trim().is_empty() => Ok(Some(Secret::new(t.trim()))),
            _ => Err(Invalid::new(
                &[key],
                format!("server {name:?}: {key}: the environment variable {var} is not set (or empty)"),
            )),
        },
        (None, Some((key, file))) => {
            let path = resolve(base, file);
            match std::fs::read_to_string(&path) {
                Ok(t) if !t.trim().is_empty() => Ok(Some(Secret::new(t.trim()))),
                Ok(_) => Err(Invalid::new(
                    &[key],
                    format!("server {name:?}: {key} {}: empty", path.display()),
                )),
                Err(e) => Err(Invalid::new(
                    &[key],
                    format!("server {name:?}: {key} {}: {e}", path.display()),
                )),
            }
        }
        (None, None) => Ok(None),
    }
}

fn ssh_only_key(f: &ServerFields) -> Option<&'static str> {
    if !f.ssh_options.is_empty() {
        Some("ssh_options")
    } else if f.ssh_config.is_some() {
        Some("ssh_config")
    } else if f.ssh_identity.is_some() {
        Some("ssh_identity")
    } else {
        None
    }
}

fn stdio_command(name: &str, program: &str, f: &ServerFields, base: &Path) -> Result<StdioCommand, Invalid> {
    for (k, v) in &f.env {
        let mut chars = k.chars();
        let ok = chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
            && chars.all(|c| c == '_' || c.is_ascii_alphanumeric());
        if !ok {
            return Err(Invalid::new(
                &["env", k],
                format!("server {name:?}: env {k:?}: a name is letters, digits and '_', not starting with a digit"),
            ));
        }
        if v.contains('\0') {
            return Err(Invalid::new(
                &["env", k],
                format!("server {name:?}: env {k:?}: the value holds a NUL byte"),
            ));
        }
    }
    if program.contains('\0') || f.args.iter().any(|a| a.contains('\0')) {
        return Err(Invalid::new(
            &["args"],
            format!("server {name:?}: an argument holds a NUL byte"),
        ));
    }
    Ok(StdioCommand {
        program: OsString::from(program),
        args: f.args.iter().map(OsString::from).collect(),
        env: f.env.iter().map(|(k, v)| (k.clone(), Secret::new(v.clone()))).collect(),
        cwd: f.cwd.as_deref().map(|d| resolve(base, d)),
    })
}

/// A path relative to the configuration file's directory, `~/` expanded.
fn resolve(base: &Path, p: &str) -> PathBuf {
    if let (Some(rest), Some(home)) = (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        return PathBuf::from(home).join(rest);
    }
    let path = PathBuf::from(p);
    if path.is_absolute() {
        path
    } else {
        base.join(path)
    }
}

/// The gateway table as read, before validation.
#[derive(Debug, Default)]
pub struct GatewayFields {
    pub listen: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<String>,
    pub session_idle_timeout: Option<(&'static str, DurationValue, Duration)>,
    pub max_processes: Option<i64>,
    pub max_message_size: Option<SizeValue>,
    pub allowed_origins: Vec<String>,
    pub response_mode: Option<String>,
    pub max_sessions: Option<i64>,
    pub prefix: Option<String>,
    pub session_header: Option<String>,
}

/// Validates the gateway table. `keys` names its keys in the file's own spelling.
pub fn build_gateway(f: GatewayFields, base: &Path, keys: &GatewayKeys) -> Result<GatewayConfig, Invalid> {
    let mut g = GatewayConfig::default();
    if let Some(listen) = &f.listen {
        g.listen = listen.parse::<SocketAddr>().map_err(|_| {
            Invalid::new(
                &[keys.listen],
                format!(
                    "{}: {listen:?} is not an address like \"127.0.0.1:7300\" or \"[::1]:7300\"",
                    keys.listen
                ),
            )
        })?;
    }
    g.token = match (&f.token, &f.token_file) {
        (Some(_), Some(_)) => {
            return Err(Invalid::new(
                &[keys.token_file],
                format!("{} and {} are both set: choose one", keys.token, keys.token_file),
            ))
        }
        (Some(t), None) => {
            Some(check_token(t).map_err(|m| Invalid::new(&[keys.token], format!("{}: {m}", keys.token)))?)
        }
        (None, Some(file)) => {
            let path = resolve(base, file);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Invalid::new(
                    &[keys.token_file],
                    format!("{} {}: {e}", keys.token_file, path.display()),
                )
            })?;
            Some(check_token(text.trim()).map_err(|m| {
                Invalid::new(
                    &[keys.token_file],
                    format!("{} {}: {m}", keys.token_file, path.display()),
                )
            })?)
        }
        (None, None) => None,
    };
    if let Some((key, value, unit)) = &f.session_idle_timeout {
        let d = value
            .to_duration(*unit)
            .map_err(|m| Invalid::new(&[key], format!("{key}: {m}")))?;
        if d.is_zero() {
            return Err(Invalid::new(&[key], format!("{key}: must be longer than 0")));
        }
        g.session_idle_timeout = d;
    }
    if let Some(n) = f.max_processes {
        g.max_processes = Some(u32::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| {
            Invalid::new(
                &[keys.max_processes],
                format!("{}: expected a whole number from 1, found {n}", keys.max_processes),
            )
        })?);
    }
    if let Some(size) = &f.max_message_size {
        g.max_message_size = size
            .to_bytes()
            .map_err(|m| Invalid::new(&[keys.max_message_size], format!("{}: {m}", keys.max_message_size)))?;
    }
    for origin in &f.allowed_origins {
        let ok = (origin.starts_with("http://") || origin.starts_with("https://"))
            && !origin.trim_end_matches('/').contains(['?', '#'])
            && origin.matches('/').count() == 2;
        if !ok {
            return Err(Invalid::new(
                &[keys.allowed_origins],
                format!("{}: {origin:?} is not an origin like \"https://app.example.com\" (scheme, host, optional port; no path)", keys.allowed_origins),
            ));
        }
    }
    g.allowed_origins = f.allowed_origins;
    if let Some(n) = f.max_sessions {
        g.max_sessions = usize::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| {
            Invalid::new(
                &[keys.max_sessions],
                format!("{}: expected a whole number from 1, found {n}", keys.max_sessions),
            )
        })?;
    }
    g.response_mode = match f.response_mode.as_deref() {
        None | Some("stream") => super::ResponseMode::Stream,
        Some("json") => super::ResponseMode::Json,
        Some(other) => {
            return Err(Invalid::new(
                &[keys.response_mode],
                format!("{}: {other:?}: expected \"stream\" or \"json\"", keys.response_mode),
            ))
        }
    };
    g.prefix = match f.prefix.as_deref() {
        None | Some("always") => super::Prefix::Always,
        Some("on_conflict" | "onConflict") => super::Prefix::OnConflict,
        Some("never") => super::Prefix::Never,
        Some(other) => {
            return Err(Invalid::new(
                &[keys.prefix],
                format!(
                    "{}: {other:?}: expected \"always\", \"on_conflict\" or \"never\"",
                    keys.prefix
                ),
            ))
        }
    };
    if let Some(h) = &f.session_header {
        let ok = !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(Invalid::new(
                &[keys.session_header],
                format!(
                    "{}: {h:?} is not a header name (letters, digits and '-')",
                    keys.session_header
                ),
            ));
        }
        g.session_header = h.to_ascii_lowercase();
    }
    check_exposure(&g).map_err(|m| Invalid::new(&[keys.listen], format!("{}: {m}", keys.listen)))?;
    Ok(g)
}

/// The gateway keys as a format spells them (`token_file` / `tokenFile`).
pub struct GatewayKeys {
    pub listen: &'static str,
    pub token: &'static str,
    pub token_file: &'static str,
    pub max_processes: &'static str,
    pub max_message_size: &'static str,
    pub allowed_origins: &'static str,
    pub response_mode: &'static str,
    pub max_sessions: &'static str,
    pub prefix: &'static str,
    pub session_header: &'static str,
}

/// A bearer token as Tether takes one: at least 16 characters, no spaces or control characters.
pub fn check_token(t: &str) -> Result<Secret, String> {
    if t.len() < 16 {
        return Err("a token must be at least 16 characters (use 128 random bits, e.g. `openssl rand -hex 16`)".into());
    }
    if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a token must not contain spaces or control characters".into());
    }
    Ok(Secret::new(t))
}

/// A gateway reachable from other hosts must demand a token.
pub fn check_exposure(g: &GatewayConfig) -> Result<(), String> {
    if !g.listen.ip().is_loopback() && g.token.is_none() {
        return Err(format!(
            "{} is reachable from other hosts: set a token (token or token_file) or listen on 127.0.0.1",
            g.listen
        ));
    }
    Ok(())
}
