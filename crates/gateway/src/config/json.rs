//! The JSON (and JSON5) files of MCP clients, read unchanged:
//!
//! - Claude Desktop, Cursor and most clients: `{"mcpServers": {NAME: {command, args, env, cwd,
//!   type, url, headers}}}`;
//! - VS Code: `{"servers": {…}}` (and `"mcp": {"servers": …}` in settings);
//! - OpenClaw (`openclaw.json`, JSON5): `{"mcp": {"servers": {NAME: {command, args, env, cwd |
//!   workingDirectory, url, transport, headers, connectionTimeoutMs, requestTimeoutMs,
//!   enabled, toolFilter}}, "sessionIdleTtlMs": …}}`.
//!
//! Tether's own keys are accepted on each entry in camelCase (`"lifetime": "session"`,
//! `"idleTimeout": "30s"`, `"maxInstances"`, `"grace"`, `"ssh"`), so an existing file needs
//! one added key, not a rewrite; the gateway's settings go in an optional top-level `"tether"`
//! object. Other keys of an entry belong to other tools and are ignored, except one that looks
//! like a misspelt Tether key (`"lifetme"`), which is an error.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::error::{ConfigError, Invalid};
use super::fields::{build_gateway, build_server, GatewayFields, GatewayKeys, ServerFields, MILLIS, SECONDS};
use super::values::{DurationValue, EnvValue, SizeValue};
use super::{GatewayConfig, ServerConfig};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, EnvValue>,
    #[serde(alias = "workingDirectory")]
    cwd: Option<String>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    transport: Option<String>,
    ssh: Option<String>,
    #[serde(default)]
    ssh_options: Vec<String>,
    ssh_config: Option<String>,
    ssh_identity: Option<String>,
    lifetime: Option<String>,
    idle_timeout: Option<DurationValue>,
    grace: Option<DurationValue>,
    max_instances: Option<Count>,
    max_procs: Option<Count>,
    enabled: Option<bool>,
    disabled: Option<bool>,
    tools: Option<Filter>,
    tool_filter: Option<Filter>,
    startup_timeout: Option<DurationValue>,
    request_timeout: Option<DurationValue>,
    request_timeout_ms: Option<DurationValue>,
    connection_timeout_ms: Option<DurationValue>,
    bearer_token_env: Option<String>,
    bearer_token_file: Option<String>,
    ca_file: Option<String>,
    protocol: Option<String>,
    /// Keys of other tools (and misspellings, caught below).
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Filter {
    include: Option<Vec<String>>,
    #[serde(default)]
    exclude: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Gateway {
    listen: Option<String>,
    token: Option<String>,
    token_file: Option<String>,
    session_idle_timeout: Option<DurationValue>,
    max_processes: Option<Count>,
    max_message_size: Option<SizeValue>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    response_mode: Option<String>,
    prefix: Option<String>,
    session_header: Option<String>,
    max_sessions: Option<Count>,
}

/// A whole number, which JSON5 parsers may hand over as a float.
#[derive(Deserialize)]
#[serde(untagged)]
enum Count {
    Int(i64),
    Float(f64),
}

impl Count {
    fn get(&self) -> i64 {
        match self {
            Count::Int(n) => *n,
            // Not whole: refused by the range check with the value shown.
            Count::Float(f) if f.fract() == 0.0 && f.abs() < 9e15 => *f as i64,
            Count::Float(_) => -1,
        }
    }
}

/// Tether's entry keys, for catching misspellings among the other tools' keys.
const ENTRY_KEYS: [&str; 25] = [
    "command",
    "args",
    "env",
    "cwd",
    "url",
    "headers",
    "type",
    "transport",
    "ssh",
    "sshOptions",
    "sshConfig",
    "sshIdentity",
    "lifetime",
    "idleTimeout",
    "grace",
    "maxInstances",
    "maxProcs",
    "enabled",
    "tools",
    "startupTimeout",
    "requestTimeout",
    "bearerTokenEnv",
    "bearerTokenFile",
    "caFile",
    "protocol",
];

const KEYS: GatewayKeys = GatewayKeys {
    listen: "listen",
    token: "token",
    token_file: "tokenFile",
    max_processes: "maxProcesses",
    max_message_size: "maxMessageSize",
    allowed_origins: "allowedOrigins",
    response_mode: "responseMode",
    max_sessions: "maxSessions",
    prefix: "prefix",
    session_header: "sessionHeader",
};

/// Parses and validates JSON or JSON5 text read from `path`.
pub fn parse(path: &Path, text: &str) -> Result<(GatewayConfig, BTreeMap<String, ServerConfig>), ConfigError> {
    let root: Value = json5::from_str(text).map_err(|e| match e {
        json5::Error::Message { msg, location } => {
            ConfigError::maybe_at(path, location.map(|l| (l.line, l.column)), syntax_message(&msg))
        }
    })?;
    let file = path.to_path_buf();
    let located = |e: Invalid| e.into_error(&file, text);
    let Value::Object(obj) = &root else {
        return Err(located(Invalid::new(&[], "expected a JSON object at the top")));
    };
    if let Some(keys) = super::unique::first_duplicate(text) {
        return Err(duplicate(path, text, obj, keys));
    }
    let (servers_path, servers) = servers_of(obj).ok_or_else(|| {
        located(Invalid::new(
            &[],
            "no servers: expected \"mcpServers\" (Claude Desktop, Cursor), \"mcp\": {\"servers\"} (OpenClaw) or \"servers\" (VS Code)",
        ))
    })?;
    let Value::Object(servers) = servers else {
        return Err(located(Invalid::new(
            &servers_path,
            "expected an object of servers, by name",
        )));
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let gateway = gateway(obj, base).map_err(located)?;
    let mut out = BTreeMap::new();
    for (name, entry) in servers {
        let mut prefix = servers_path.clone();
        prefix.push(name);
        let at = |e: Invalid| located(e.under(&prefix));
        let entry: Entry = serde_path_to_error::deserialize(entry).map_err(|e| {
            let keys: Vec<String> = e.path().iter().map(|seg| seg.to_string()).collect();
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            at(Invalid::new(&keys, format!("server {name:?}: {}", describe(&e))))
        })?;
        for key in entry.other.keys() {
            if let Some(meant) = misspelling_of(key) {
                return Err(at(Invalid::new(
                    &[key],
                    format!("server {name:?}: unknown key {key:?}: did you mean {meant:?}?"),
                )));
            }
            tracing::debug!(
                "{}: server {name:?}: ignoring key {key:?} (not Tether's)",
                path.display()
            );
        }
        let server = build_server(name, fields(entry), base).map_err(at)?;
        out.insert(name.clone(), server);
    }
    Ok((gateway, out))
}

/// The error for a key an object has twice (`keys` leads to it), at its second occurrence.
fn duplicate(path: &Path, text: &str, obj: &serde_json::Map<String, Value>, mut keys: Vec<String>) -> ConfigError {
    let key = keys.last().cloned().unwrap_or_default();
    let parent = &keys[..keys.len().saturating_sub(1)];
    let what = match servers_of(obj) {
        Some((servers, _)) if servers.iter().eq(parent.iter()) => format!("server {key:?} is defined twice"),
        _ => format!("the key {key:?} appears twice in one object"),
    };
    // The second occurrence: the last key searched for once more, after the first.
    keys.push(key);
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    ConfigError::maybe_at(path, super::locate::key_path(text, &keys), what)
}

fn servers_of(obj: &serde_json::Map<String, Value>) -> Option<(Vec<&'static str>, &Value)> {
    if let Some(v) = obj.get("mcpServers") {
        return Some((vec!["mcpServers"], v));
    }
    if let Some(v) = obj.get("mcp").and_then(|m| m.get("servers")) {
        return Some((vec!["mcp", "servers"], v));
    }
    obj.get("servers").map(|v| (vec!["servers"], v))
}

fn gateway(obj: &serde_json::Map<String, Value>, base: &Path) -> Result<GatewayConfig, Invalid> {
    // OpenClaw's own idle time for session-scoped MCP runtimes is a fine default for ours.
    let openclaw_idle = obj
        .get("mcp")
        .and_then(|m| m.get("sessionIdleTtlMs"))
        .and_then(Value::as_f64)
        .map(|ms| ("sessionIdleTtlMs", DurationValue::Number(ms), MILLIS));
    let g: Option<Gateway> = match obj.get("tether") {
        None => None,
        Some(v) => Some(serde_path_to_error::deserialize(v).map_err(|e| {
            let keys: Vec<String> = e.path().iter().map(|seg| seg.to_string()).collect();
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            Invalid::new(&keys, format!("tether: {}", describe(&e))).under(&["tether"])
        })?),
    };
    let Some(g) = g else {
        let fields = GatewayFields {
            session_idle_timeout: openclaw_idle,
            ..GatewayFields::default()
        };
        return build_gateway(fields, base, &KEYS).map_err(|e| e.under(&["mcp"]));
    };
    let fields = GatewayFields {
        listen: g.listen,
        token: g.token,
        token_file: g.token_file,
        session_idle_timeout: g
            .session_idle_timeout
            .map(|v| ("sessionIdleTimeout", v, SECONDS))
            .or(openclaw_idle),
        max_processes: g.max_processes.map(|c| c.get()),
        max_message_size: g.max_message_size,
        allowed_origins: g.allowed_origins,
        response_mode: g.response_mode,
        prefix: g.prefix,
        session_header: g.session_header,
        max_sessions: g.max_sessions.map(|c| c.get()),
    };
    build_gateway(fields, base, &KEYS).map_err(|e| e.under(&["tether"]))
}

fn fields(e: Entry) -> ServerFields {
    let filter = e.tools.or(e.tool_filter);
    ServerFields {
        command: e.command,
        args: e.args,
        env: e.env.into_iter().map(|(k, v)| (k, v.into_string())).collect(),
        cwd: e.cwd,
        url: e.url,
        headers: e.headers.into_iter().collect(),
        transport: e.kind.map(|k| ("type", k)).or(e.transport.map(|t| ("transport", t))),
        ssh: e.ssh,
        ssh_options: e.ssh_options,
        ssh_config: e.ssh_config,
        ssh_identity: e.ssh_identity,
        lifetime: e.lifetime,
        idle_timeout: e.idle_timeout.map(|v| ("idleTimeout", v, SECONDS)),
        grace: e.grace.map(|v| ("grace", v, SECONDS)),
        max_instances: e.max_instances.map(|c| ("maxInstances", c.get())),
        max_procs: e.max_procs.map(|c| ("maxProcs", c.get())),
        enabled: match (e.enabled, e.disabled) {
            (Some(on), _) => Some(on),
            (None, Some(off)) => Some(!off),
            (None, None) => None,
        },
        tools_include: filter.as_ref().and_then(|f| f.include.clone()),
        tools_exclude: filter.map(|f| f.exclude).unwrap_or_default(),
        startup_timeout: e.startup_timeout.map(|v| ("startupTimeout", v, SECONDS)),
        request_timeout: e
            .request_timeout
            .map(|v| ("requestTimeout", v, SECONDS))
            .or(e.request_timeout_ms.map(|v| ("requestTimeoutMs", v, MILLIS))),
        connection_timeout: e.connection_timeout_ms.map(|v| ("connectionTimeoutMs", v, MILLIS)),
        bearer_token_env: e.bearer_token_env.map(|v| ("bearerTokenEnv", v)),
        bearer_token_file: e.bearer_token_file.map(|v| ("bearerTokenFile", v)),
        ca_file: e.ca_file.map(|v| ("caFile", v)),
        protocol: e.protocol.map(|v| ("protocol", v)),
    }
}

/// A Tether key that `key` is probably a misspelling of (same letters but one or two edits,
/// case aside), if any.
fn misspelling_of(key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    ENTRY_KEYS.iter().copied().filter(|k| k.len() >= 4).find(|k| {
        let k = k.to_ascii_lowercase();
        k != lower && edit_distance(&k, &lower) <= if k.len() >= 8 { 2 } else { 1 }
    })
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn describe(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let inner = e.inner().to_string();
    // serde_json appends " at line L column C" of the Value, which means nothing here.
    let inner = inner.split(" at line ").next().unwrap_or(&inner).to_string();
    match e.path().iter().next_back() {
        Some(serde_path_to_error::Segment::Map { key }) => format!("{key}: {inner}"),
        _ => inner,
    }
}

fn syntax_message(msg: &str) -> String {
    format!("not valid JSON or JSON5: {}", msg.lines().next().unwrap_or(msg).trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HttpKind, Lifetime, Transport};
    use std::time::Duration;

    fn parse_str(text: &str) -> Result<(GatewayConfig, BTreeMap<String, ServerConfig>), ConfigError> {
        parse(Path::new("/home/u/claude_desktop_config.json"), text)
    }

    /// Found by fuzzing (config_json): a server named "" whose entry is refused hung the
    /// parse while the error was being located.
    #[test]
    fn an_unnamed_server_with_an_error_is_refused_in_time() {
        let e = parse_str(r#"{"mcpServers": {"": {"com{mand": "x", "diSabled": true}}}"#).unwrap_err();
        assert!(e.position.is_some(), "{e}");
    }

    #[test]
    fn claude_desktop_as_written() {
        let (_, s) = parse_str(
            r#"{
  "globalShortcut": "Ctrl+Space",
  "mcpServers": {
    "everything": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-everything"],
      "env": {"DEBUG": "1"},
      "lifetime": "session",
      "idleTimeout": "30s",
      "maxInstances": 8
    },
    "remote": {"type": "sse", "url": "https://example.com/sse", "headers": {"Authorization": "Bearer x"}}
  }
}"#,
        )
        .unwrap();
        let e = &s["everything"];
        assert_eq!(e.lifetime, Lifetime::Session);
        assert_eq!(e.idle_timeout, Some(Duration::from_secs(30)));
        assert_eq!(e.max_instances, Some(8));
        let Transport::Http(h) = &s["remote"].transport else {
            panic!("http")
        };
        assert_eq!(h.kind, HttpKind::Sse);
    }

    #[test]
    fn openclaw_json5_as_written() {
        let (g, s) = parse_str(
            r#"// OpenClaw keeps comments
{
  gateway: { port: 18789 },
  mcp: {
    sessionIdleTtlMs: 600000,
    servers: {
      fs: {
        command: "npx", args: ["-y", "server-filesystem", "/tmp"],
        workingDirectory: "/tmp", env: { N: 3, ON: true },
        requestTimeoutMs: 5000, connectionTimeoutMs: 2000,
        toolFilter: { exclude: ["write_file"] },
        enabled: false,
      },
    },
  },
}"#,
        )
        .unwrap();
        assert_eq!(g.session_idle_timeout, Duration::from_secs(600));
        let fs = &s["fs"];
        assert!(!fs.enabled);
        assert_eq!(fs.request_timeout, Duration::from_secs(5));
        assert_eq!(fs.startup_timeout, Duration::from_secs(2));
        assert!(!fs.tools.allows("write_file") && fs.tools.allows("read_file"));
        let Transport::Stdio(cmd) = &fs.transport else {
            panic!("stdio")
        };
        assert_eq!(cmd.cwd.as_deref(), Some(Path::new("/tmp")));
        assert_eq!(cmd.env[0].1.expose(), "3");
        assert_eq!(cmd.env[1].1.expose(), "true");
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let e = parse_str("{\n  \"mcpServers\": {\n    \"a\": {\n      \"command\": \"x\",\n      \"lifetime\": \"sesion\"\n    }\n  }\n}\n").unwrap_err();
        assert_eq!(e.position, Some((5, 7)), "{e}");
        assert!(
            e.to_string()
                .contains("claude_desktop_config.json:5:7: server \"a\": lifetime \"sesion\""),
            "{e}"
        );
        let e = parse_str("{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\", \"lifetme\": \"session\"}\n  }\n}")
            .unwrap_err();
        assert!(e.message.contains("did you mean \"lifetime\""), "{e}");
        assert_eq!(e.position.map(|p| p.0), Some(3), "{e}");
        let e =
            parse_str("{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\", \"maxInstances\": \"many\"}\n  }\n}")
                .unwrap_err();
        assert!(e.message.contains("maxInstances"), "{e}");
        let e = parse_str("{\"mcpServers\": {\"a\": {\"command\": \"x\",,}}}").unwrap_err();
        assert!(e.position.is_some() && e.message.starts_with("not valid JSON"), "{e}");
    }

    #[test]
    fn a_server_defined_twice_is_named_at_its_second_definition() {
        let e = parse_str("{\"mcpServers\": {\n  \"fx\": {\"command\": \"a\"},\n  \"fx\": {\"command\": \"b\"}\n}}")
            .unwrap_err();
        assert_eq!(e.position, Some((3, 3)), "{e}");
        assert!(e.message.contains("server \"fx\" is defined twice"), "{e}");
        let e = parse_str("{\"mcpServers\": {\"fx\": {\"command\": \"a\", \"command\": \"b\"}}}").unwrap_err();
        assert!(e.message.contains("the key \"command\" appears twice"), "{e}");
    }

    #[test]
    fn other_tools_keys_are_ignored_but_misspellings_are_not() {
        let (_, s) =
            parse_str(r#"{"mcpServers": {"a": {"command": "x", "alwaysAllow": ["t"], "autoApprove": []}}}"#).unwrap();
        assert!(s["a"].enabled);
        let (_, s) = parse_str(r#"{"mcpServers": {"a": {"command": "x", "disabled": true}}}"#).unwrap();
        assert!(!s["a"].enabled);
        assert_eq!(misspelling_of("idleTimout"), Some("idleTimeout"));
        assert_eq!(misspelling_of("alwaysAllow"), None);
    }

    #[test]
    fn the_tether_section_sets_the_gateway() {
        let (g, _) =
            parse_str(r#"{"tether": {"listen": "127.0.0.1:9"}, "mcpServers": {"a": {"command": "x"}}}"#).unwrap();
        assert_eq!(g.listen.port(), 9);
        let e = parse_str("{\"tether\": {\"listen\": \"0.0.0.0:9\"},\n \"mcpServers\": {}}").unwrap_err();
        assert!(e.message.contains("token"), "{e}");
    }
}
