//! What the fixture remembers about its client between lines, and the two
//! requests that change it: `initialize` (capabilities) and `logging/setLevel`.
//!
//! Resource subscriptions are kept here too, but changed in `resources`.

use crate::logging::Level;
use crate::plan::RpcError;
use crate::rpc::{str_param, INVALID_PARAMS};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Protocol versions the fixture echoes back when a client asks for them.
pub const SUPPORTED_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// Version answered when the client asks for one not in [`SUPPORTED_VERSIONS`].
pub const DEFAULT_VERSION: &str = "2025-06-18";

/// What the fixture remembers between lines.
#[derive(Debug, Default)]
pub struct Session {
    /// The client's capabilities from `initialize`: tools may only ask for
    /// sampling or elicitation when the client declared them.
    pub client: ClientCaps,
    /// Least severe level sent as `notifications/message`, from
    /// `logging/setLevel`; `None` (never set) sends every level.
    pub log_level: Option<Level>,
    /// Resource URIs subscribed to, so unsubscribe undoes exactly that.
    pub subscriptions: BTreeSet<String>,
    /// What `whoami` reports, read once at start so handlers stay pure.
    pub identity: Identity,
    /// `--no-initialize`: `initialize` is never answered.
    pub no_initialize: bool,
    /// `--no-initialize` until `notifications/initialized` arrives: no answers at all.
    pub holding: bool,
}

/// The client capabilities the fixture cares about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientCaps {
    pub sampling: bool,
    pub elicitation: bool,
}

/// The process facts `whoami` reports, so tests can tell instances apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub pid: u32,
    /// `TETHER_INSTANCE`, the supervisor's cookie, if set.
    pub instance: Option<String>,
    /// `TETHER_TEST_COOKIE`, set by integration tests, if set.
    pub test_cookie: Option<String>,
}

impl Identity {
    /// This process's pid and cookies.
    pub fn current() -> Self {
        Identity {
            pid: std::process::id(),
            instance: std::env::var("TETHER_INSTANCE").ok(),
            test_cookie: std::env::var("TETHER_TEST_COOKIE").ok(),
        }
    }
}

impl Session {
    pub fn new(identity: Identity, no_initialize: bool) -> Self {
        Session {
            identity,
            no_initialize,
            holding: no_initialize,
            ..Session::default()
        }
    }

    pub(crate) fn initialize(&mut self, params: &Value) -> Value {
        let caps = params.get("capabilities");
        self.client = ClientCaps {
            sampling: caps.and_then(|c| c.get("sampling")).is_some_and(Value::is_object),
            elicitation: caps.and_then(|c| c.get("elicitation")).is_some_and(Value::is_object),
        };
        let requested = params.get("protocolVersion").and_then(Value::as_str);
        let version = match requested {
            Some(v) if SUPPORTED_VERSIONS.contains(&v) => v,
            _ => DEFAULT_VERSION,
        };
        json!({
            "protocolVersion": version,
            "capabilities": {
                // listChanged: the `notify` tool can announce changes on request.
                "tools": {"listChanged": true},
                "prompts": {"listChanged": true},
                "resources": {"subscribe": true, "listChanged": true},
                "logging": {},
                "completions": {},
            },
            "serverInfo": {"name": "tether-fixture", "version": env!("CARGO_PKG_VERSION")},
        })
    }

    pub(crate) fn set_level(&mut self, params: &Value) -> Result<Value, RpcError> {
        let name = str_param(params, "level", "logging/setLevel")?;
        let level =
            Level::parse(name).ok_or_else(|| RpcError::new(INVALID_PARAMS, format!("unknown log level: {name}")))?;
        self.log_level = Some(level);
        Ok(json!({}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::tests::{call, call_in, req, session};

    fn init(version: &str) -> Value {
        let line = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": version, "capabilities": {},
                       "clientInfo": {"name": "t", "version": "1"}}});
        call(&line.to_string())
    }

    #[test]
    fn initialize_echoes_supported_versions() {
        for v in SUPPORTED_VERSIONS {
            let r = init(v);
            assert_eq!(r["id"], 1);
            assert_eq!(r["result"]["protocolVersion"], v);
        }
    }

    #[test]
    fn initialize_falls_back_for_unknown_versions() {
        assert_eq!(init("1999-01-01")["result"]["protocolVersion"], DEFAULT_VERSION);
        let r = call(r#"{"jsonrpc":"2.0","id":"a","method":"initialize"}"#);
        assert_eq!(r["id"], "a");
        assert_eq!(r["result"]["protocolVersion"], DEFAULT_VERSION);
    }

    #[test]
    fn initialize_reports_server_info_and_capabilities() {
        let r = init("2025-06-18");
        assert_eq!(r["jsonrpc"], "2.0");
        assert_eq!(r["result"]["serverInfo"]["name"], "tether-fixture");
        assert_eq!(r["result"]["serverInfo"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(
            r["result"]["capabilities"],
            json!({"tools": {"listChanged": true}, "prompts": {"listChanged": true},
                   "resources": {"subscribe": true, "listChanged": true},
                   "logging": {}, "completions": {}})
        );
    }

    #[test]
    fn initialize_remembers_client_capabilities() {
        let mut s = session();
        assert_eq!(s.client, ClientCaps::default());
        call_in(
            &mut s,
            &req(
                "initialize",
                json!({"capabilities": {"sampling": {}, "elicitation": {}}}),
            ),
        );
        assert_eq!(
            s.client,
            ClientCaps {
                sampling: true,
                elicitation: true
            }
        );
        call_in(
            &mut s,
            &req(
                "initialize",
                json!({"capabilities": {"elicitation": {}, "sampling": true}}),
            ),
        );
        assert_eq!(
            s.client,
            ClientCaps {
                sampling: false,
                elicitation: true
            }
        );
    }

    #[test]
    fn set_level_stores_the_level_and_rejects_unknown_ones() {
        let mut s = session();
        assert_eq!(
            call_in(&mut s, &req("logging/setLevel", json!({"level": "warning"})))["result"],
            json!({})
        );
        assert_eq!(s.log_level, Some(Level::Warning));
        let r = call_in(&mut s, &req("logging/setLevel", json!({"level": "loud"})));
        assert_eq!(r["error"]["code"], INVALID_PARAMS);
        let r = call_in(&mut s, &req("logging/setLevel", json!({})));
        assert_eq!(r["error"]["code"], INVALID_PARAMS);
        assert_eq!(s.log_level, Some(Level::Warning));
    }
}
