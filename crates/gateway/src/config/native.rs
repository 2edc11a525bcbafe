//! Tether's own format, TOML:
//!
//! ```toml
//! [gateway]
//! listen = "127.0.0.1:7300"          # a non-loopback address needs token or token_file
//! session_idle_timeout = "30m"
//!
//! [servers.github]
//! command = "npx"
//! args = ["-y", "@modelcontextprotocol/server-github"]
//! env = { GITHUB_TOKEN = "…" }
//! lifetime = "session"               # shared (default) | session | request
//! idle_timeout = "10m"
//! tools = { exclude = ["delete_*"] }
//! ```
//!
//! Unknown keys are errors: a typo must not silently fall back to a default.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::error::{ConfigError, Invalid};
use super::fields::{build_gateway, build_server, GatewayFields, GatewayKeys, ServerFields, SECONDS};
use super::locate::line_col_of_byte;
use super::values::{DurationValue, EnvValue, SizeValue};
use super::{GatewayConfig, ServerConfig};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    gateway: Option<Gateway>,
    #[serde(default)]
    servers: BTreeMap<String, Server>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Gateway {
    listen: Option<String>,
    token: Option<String>,
    token_file: Option<String>,
    session_idle_timeout: Option<DurationValue>,
    max_processes: Option<i64>,
    max_message_size: Option<SizeValue>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    response_mode: Option<String>,
    prefix: Option<String>,
    session_header: Option<String>,
    max_sessions: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Server {
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, EnvValue>,
    cwd: Option<String>,
    ssh: Option<String>,
    #[serde(default)]
    ssh_options: Vec<String>,
    ssh_config: Option<String>,
    ssh_identity: Option<String>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    transport: Option<String>,
    lifetime: Option<String>,
    idle_timeout: Option<DurationValue>,
    grace: Option<DurationValue>,
    max_instances: Option<i64>,
    max_procs: Option<i64>,
    enabled: Option<bool>,
    tools: Option<Tools>,
    startup_timeout: Option<DurationValue>,
    request_timeout: Option<DurationValue>,
    connection_timeout: Option<DurationValue>,
    bearer_token_env: Option<String>,
    bearer_token_file: Option<String>,
    ca_file: Option<String>,
    protocol: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Tools {
    include: Option<Vec<String>>,
    #[serde(default)]
    exclude: Vec<String>,
}

const KEYS: GatewayKeys = GatewayKeys {
    listen: "listen",
    token: "token",
    token_file: "token_file",
    max_processes: "max_processes",
    max_message_size: "max_message_size",
    allowed_origins: "allowed_origins",
    response_mode: "response_mode",
    max_sessions: "max_sessions",
    prefix: "prefix",
    session_header: "session_header",
};

/// Parses and validates TOML text read from `path`.
pub fn parse(path: &Path, text: &str) -> Result<(GatewayConfig, BTreeMap<String, ServerConfig>), ConfigError> {
    let file: File = toml::from_str(text).map_err(|e| {
        let position = e.span().map(|s| line_col_of_byte(text.as_bytes(), s.start));
        ConfigError::maybe_at(path, position, e.message().trim().to_string())
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let path = path.to_path_buf();
    let gateway = match file.gateway {
        None => GatewayConfig::default(),
        Some(g) => build_gateway(
            GatewayFields {
                listen: g.listen,
                token: g.token,
                token_file: g.token_file,
                session_idle_timeout: g.session_idle_timeout.map(|v| ("session_idle_timeout", v, SECONDS)),
                max_processes: g.max_processes,
                max_message_size: g.max_message_size,
                allowed_origins: g.allowed_origins,
                response_mode: g.response_mode,
                prefix: g.prefix,
                session_header: g.session_header,
                max_sessions: g.max_sessions,
            },
            base,
            &KEYS,
        )
        .map_err(|e| e.under(&["gateway"]).into_error(&path, text))?,
    };
    let mut servers = BTreeMap::new();
    for (name, s) in file.servers {
        let fields = ServerFields {
            command: s.command,
            args: s.args,
            env: s.env.into_iter().map(|(k, v)| (k, v.into_string())).collect(),
            cwd: s.cwd,
            url: s.url,
            headers: s.headers.into_iter().collect(),
            transport: s.transport.map(|t| ("transport", t)),
            ssh: s.ssh,
            ssh_options: s.ssh_options,
            ssh_config: s.ssh_config,
            ssh_identity: s.ssh_identity,
            lifetime: s.lifetime,
            idle_timeout: s.idle_timeout.map(|v| ("idle_timeout", v, SECONDS)),
            grace: s.grace.map(|v| ("grace", v, SECONDS)),
            max_instances: s.max_instances.map(|n| ("max_instances", n)),
            max_procs: s.max_procs.map(|n| ("max_procs", n)),
            enabled: s.enabled,
            tools_include: s.tools.as_ref().and_then(|t| t.include.clone()),
            tools_exclude: s.tools.map(|t| t.exclude).unwrap_or_default(),
            startup_timeout: s.startup_timeout.map(|v| ("startup_timeout", v, SECONDS)),
            request_timeout: s.request_timeout.map(|v| ("request_timeout", v, SECONDS)),
            connection_timeout: s.connection_timeout.map(|v| ("connection_timeout", v, SECONDS)),
            bearer_token_env: s.bearer_token_env.map(|v| ("bearer_token_env", v)),
            bearer_token_file: s.bearer_token_file.map(|v| ("bearer_token_file", v)),
            ca_file: s.ca_file.map(|v| ("ca_file", v)),
            protocol: s.protocol.map(|v| ("protocol", v)),
        };
        let server = build_server(&name, fields, base)
            .map_err(|e: Invalid| e.under(&["servers", &name]).into_error(&path, text))?;
        servers.insert(name, server);
    }
    Ok((gateway, servers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Lifetime, Transport};
    use std::time::Duration;

    fn parse_str(text: &str) -> Result<(GatewayConfig, BTreeMap<String, ServerConfig>), ConfigError> {
        parse(Path::new("/etc/tether/config.toml"), text)
    }

    #[test]
    fn a_full_file() {
        let (g, servers) = parse_str(
            r#"
[gateway]
listen = "127.0.0.1:9000"
session_idle_timeout = "5m"
max_message_size = "1MiB"

[servers.github]
command = "npx"
args = ["-y", "server-github"]
env = { TOKEN = "secret", N = 3 }
lifetime = "session"
idle_timeout = "10m"
grace = 1.5
max_instances = 4
tools = { include = ["read_*"], exclude = ["read_secret"] }

[servers.remote]
ssh = "deploy@build.example:2222"
command = "node"
args = ["/srv/server.mjs"]
"#,
        )
        .unwrap();
        assert_eq!(g.listen.port(), 9000);
        assert_eq!(g.session_idle_timeout, Duration::from_secs(300));
        assert_eq!(g.max_message_size, 1 << 20);
        let gh = &servers["github"];
        assert_eq!(gh.lifetime, Lifetime::Session);
        assert_eq!(gh.idle_timeout, Some(Duration::from_secs(600)));
        assert_eq!(gh.grace, Duration::from_millis(1500));
        assert_eq!(gh.max_instances, Some(4));
        assert!(gh.tools.allows("read_file") && !gh.tools.allows("read_secret"));
        let Transport::Stdio(cmd) = &gh.transport else {
            panic!("stdio")
        };
        assert_eq!(
            cmd.env
                .iter()
                .map(|(k, v)| (k.as_str(), v.expose()))
                .collect::<Vec<_>>(),
            [("N", "3"), ("TOKEN", "secret")]
        );
        let Transport::Ssh { target, command } = &servers["remote"].transport else {
            panic!("ssh")
        };
        assert_eq!(target.destination(), "deploy@build.example:2222");
        assert_eq!(command.program, "node");
    }

    #[test]
    fn an_ssh_servers_env_name_the_remote_wrapper_keeps_is_refused() {
        let e = parse_str("[servers.r]\nssh = \"h\"\ncommand = \"x\"\nenv = { TETHER_ENV_A = \"1\" }\n").unwrap_err();
        assert!(
            e.message.contains("TETHER_ENV_A") && e.message.contains("reserved"),
            "{e}"
        );
        // A local server's environment has no wrapper: the name is fine there.
        assert!(parse_str("[servers.l]\ncommand = \"x\"\nenv = { TETHER_ENV_A = \"1\" }\n").is_ok());
    }

    #[test]
    fn a_typo_is_named_with_its_position() {
        let e = parse_str("[servers.a]\ncommand = \"x\"\nlifetme = \"session\"\n").unwrap_err();
        assert_eq!(e.position, Some((3, 1)), "{e}");
        assert!(e.message.contains("lifetme"), "{e}");
        assert!(e.to_string().starts_with("/etc/tether/config.toml:3:1: "), "{e}");
    }

    #[test]
    fn a_bad_value_is_named_with_its_position() {
        let e = parse_str("[servers.a]\ncommand = \"x\"\n\n[servers.b]\ncommand = \"y\"\nlifetime = \"sesion\"\n")
            .unwrap_err();
        assert_eq!(e.position, Some((6, 1)), "{e}");
        assert!(
            e.message.contains("\"sesion\"") && e.message.contains("\"session\""),
            "{e}"
        );
        let e = parse_str("[servers.a]\ncommand = \"x\"\ngrace = true\n").unwrap_err();
        assert_eq!(e.position, Some((3, 9)), "{e}");
        assert!(e.message.contains("a duration like"), "{e}");
    }

    #[test]
    fn an_exposed_gateway_needs_a_token() {
        let e = parse_str("[gateway]\nlisten = \"0.0.0.0:7300\"\n").unwrap_err();
        assert!(e.message.contains("token"), "{e}");
        assert_eq!(e.position, Some((2, 1)));
        let ok = parse_str("[gateway]\nlisten = \"0.0.0.0:7300\"\ntoken = \"0123456789abcdef0123\"\n").unwrap();
        assert!(ok.0.token.is_some());
        let short = parse_str("[gateway]\ntoken = \"short\"\n").unwrap_err();
        assert!(short.message.contains("16 characters"), "{short}");
    }

    #[test]
    fn command_xor_url() {
        let e = parse_str("[servers.a]\ncommand = \"x\"\nurl = \"http://h/mcp\"\n").unwrap_err();
        assert!(e.message.contains("both"), "{e}");
        let e = parse_str("[servers.a]\nargs = [\"x\"]\n").unwrap_err();
        assert!(e.message.contains("needs \"command\""), "{e}");
        assert_eq!(e.position, Some((1, 10)));
    }

    #[test]
    fn a_bearer_token_comes_from_a_file_and_is_never_shown() {
        let dir = std::env::temp_dir().join(format!("tether-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), "s3cr3t-token\n").unwrap();
        let text = "[servers.r]\nurl = \"http://h/mcp\"\nbearer_token_file = \"token\"\nconnection_timeout = \"2s\"\n";
        let (_, servers) = parse(&dir.join("t.toml"), text).unwrap();
        let Transport::Http(h) = &servers["r"].transport else {
            panic!("http")
        };
        assert_eq!(h.headers[0].0, "Authorization");
        assert_eq!(h.headers[0].1.expose(), "Bearer s3cr3t-token");
        assert!(!format!("{h:?}").contains("s3cr3t"), "{h:?}");
        assert_eq!(h.connection_timeout, Some(Duration::from_secs(2)));
        let e = parse_str("[servers.r]\nurl = \"http://h/mcp\"\nbearer_token_env = \"TETHER_TEST_NO_SUCH_VAR\"\n")
            .unwrap_err();
        assert!(e.message.contains("TETHER_TEST_NO_SUCH_VAR is not set"), "{e}");
        let both =
            "[servers.r]\nurl = \"http://h/mcp\"\nheaders = { authorization = \"x\" }\nbearer_token_file = \"token\"\n";
        let e = parse(&dir.join("t.toml"), both).unwrap_err();
        assert!(e.message.contains("choose one"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
