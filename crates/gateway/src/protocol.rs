//! MCP protocol revisions, and the `initialize` exchanges the gateway takes part in.
//!
//! The gateway owns each upstream's MCP session: it initializes an instance once, with its own
//! client identity (a `shared` instance) or with the client's (an instance that serves one
//! session), and answers each client's `initialize` itself from what the server declared,
//! negotiating the version per client. The revisions 2025-03-26, 2025-06-18 and 2025-11-25
//! differ in what they add, not in the framing the gateway relies on, so messages pass through
//! unchanged between them.

use serde::Deserialize;
use serde_json::value::RawValue;

/// The revisions the front door speaks, oldest first.
pub const SUPPORTED: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];
/// The newest revision: offered to servers, and to clients asking for one we do not know.
pub const LATEST: &str = "2025-11-25";
/// The revision a client that sends no `MCP-Protocol-Version` header is taken to speak.
pub const DEFAULT_HEADER_VERSION: &str = "2025-03-26";

/// The revision to answer a client that asked for `requested`: the same when supported, else
/// the newest (the client then decides whether it can go on).
pub fn negotiate(requested: &str) -> &'static str {
    SUPPORTED.iter().copied().find(|v| *v == requested).unwrap_or(LATEST)
}

/// Whether a revision is one the front door speaks.
pub fn is_supported(version: &str) -> bool {
    SUPPORTED.contains(&version)
}

/// What a server declared when it was initialized.
#[derive(Debug)]
pub struct ServerInit {
    /// The revision it answered with.
    pub protocol_version: String,
    /// Its capabilities, as written.
    pub capabilities: Box<RawValue>,
    /// Its `serverInfo`, as written.
    pub server_info: Box<RawValue>,
    /// Its instructions, as written.
    pub instructions: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitResult {
    protocol_version: String,
    capabilities: Box<RawValue>,
    server_info: Box<RawValue>,
    instructions: Option<Box<RawValue>>,
}

impl ServerInit {
    /// Reads a server's `initialize` result (raw JSON of the `result` member).
    pub fn parse(result: &str) -> Result<ServerInit, String> {
        let r: InitResult =
            serde_json::from_str(result).map_err(|e| format!("its initialize result is not valid: {e}"))?;
        Ok(ServerInit {
            protocol_version: r.protocol_version,
            capabilities: r.capabilities,
            server_info: r.server_info,
            instructions: r.instructions,
        })
    }

    /// The `initialize` result to give a client that negotiated `version`.
    pub fn result_for(&self, version: &str) -> String {
        let mut out = format!(
            r#"{{"protocolVersion":"{version}","capabilities":{},"serverInfo":{}"#,
            self.capabilities.get(),
            self.server_info.get()
        );
        if let Some(i) = &self.instructions {
            out.push_str(r#","instructions":"#);
            out.push_str(i.get());
        }
        out.push('}');
        out
    }
}

/// What a client sent in its `initialize`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientInit {
    /// The revision it asked for.
    pub protocol_version: String,
    /// Its capabilities, as written.
    #[serde(default = "empty_object")]
    pub capabilities: Box<RawValue>,
    /// Its `clientInfo`, as written.
    #[serde(default = "unknown_client")]
    pub client_info: Box<RawValue>,
}

fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".into()).unwrap_or_else(|_| unreachable_raw())
}

fn unknown_client() -> Box<RawValue> {
    RawValue::from_string(r#"{"name":"unknown","version":"0"}"#.into()).unwrap_or_else(|_| unreachable_raw())
}

fn unreachable_raw() -> Box<RawValue> {
    // Both literals above are valid JSON; this keeps the code free of unwrap.
    serde_json::value::to_raw_value(&serde_json::Value::Null).unwrap_or_default()
}

impl ClientInit {
    /// Reads a client's `initialize` params.
    pub fn parse(params: Option<&RawValue>) -> Result<ClientInit, String> {
        let p = params.ok_or("initialize needs params with a protocolVersion")?;
        serde_json::from_str(p.get()).map_err(|e| format!("initialize params: {e}"))
    }

    /// Whether the client declared the capability `name` (`sampling`, `elicitation`, `roots`).
    /// Only the keys are read (the values stay raw), so no nesting inside a capability can
    /// hide the others past serde's recursion limit.
    pub fn has_capability(&self, name: &str) -> bool {
        serde_json::from_str::<std::collections::HashMap<String, &RawValue>>(self.capabilities.get())
            .is_ok_and(|m| m.contains_key(name))
    }
}

/// The `initialize` params the gateway sends a server: as the client for an instance serving
/// one client, as Tether itself for a shared one.
pub fn initialize_params(client: Option<&ClientInit>) -> String {
    match client {
        Some(c) => format!(
            r#"{{"protocolVersion":"{}","capabilities":{},"clientInfo":{}}}"#,
            negotiate(&c.protocol_version),
            c.capabilities.get(),
            c.client_info.get()
        ),
        None => format!(
            r#"{{"protocolVersion":"{LATEST}","capabilities":{{"roots":{{"listChanged":true}},"sampling":{{}},"elicitation":{{}}}},"clientInfo":{{"name":"tether","version":"{}"}}}}"#,
            env!("CARGO_PKG_VERSION")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        assert_eq!(negotiate("2025-06-18"), "2025-06-18");
        assert_eq!(negotiate("2024-11-05"), LATEST);
        assert_eq!(negotiate("2099-01-01"), LATEST);
    }

    #[test]
    fn server_init_round_trip() {
        let s = ServerInit::parse(
            r#"{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"x","version":"1"},"instructions":"hi"}"#,
        )
        .unwrap();
        let r: serde_json::Value = serde_json::from_str(&s.result_for("2025-03-26")).unwrap();
        assert_eq!(r["protocolVersion"], "2025-03-26");
        assert_eq!(r["capabilities"]["tools"], serde_json::json!({}));
        assert_eq!(r["instructions"], "hi");
        assert!(ServerInit::parse("{}").is_err());
    }

    #[test]
    fn client_init() {
        let raw = RawValue::from_string(r#"{"protocolVersion":"2025-06-18","capabilities":{"sampling":{}},"clientInfo":{"name":"c","version":"1"}}"#.into()).unwrap();
        let c = ClientInit::parse(Some(&raw)).unwrap();
        assert!(c.has_capability("sampling") && !c.has_capability("roots"));
        let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        let raw = RawValue::from_string(format!(
            r#"{{"protocolVersion":"2025-06-18","capabilities":{{"experimental":{deep},"sampling":{{}}}}}}"#
        ))
        .unwrap();
        assert!(ClientInit::parse(Some(&raw)).unwrap().has_capability("sampling"));
        let p: serde_json::Value = serde_json::from_str(&initialize_params(Some(&c))).unwrap();
        assert_eq!(p["clientInfo"]["name"], "c");
        let p: serde_json::Value = serde_json::from_str(&initialize_params(None)).unwrap();
        assert_eq!(p["clientInfo"]["name"], "tether");
        assert!(ClientInit::parse(None).is_err());
    }
}
