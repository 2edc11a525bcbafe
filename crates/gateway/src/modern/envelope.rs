//! What every 2026-07-28 request carries: its routing headers (`MCP-Protocol-Version`,
//! `Mcp-Method`, `Mcp-Name`) and the `_meta` envelope (protocol version, client capabilities,
//! client info, log level), checked against each other and against the body.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::code;
use crate::jsonrpc::{self, View};

/// A request's envelope, as written.
pub struct Envelope {
    /// `io.modelcontextprotocol/protocolVersion`.
    pub version: String,
    /// `io.modelcontextprotocol/clientCapabilities`.
    pub capabilities: Box<RawValue>,
    /// `io.modelcontextprotocol/clientInfo`, if given.
    pub client_info: Option<Box<RawValue>>,
    /// `io.modelcontextprotocol/logLevel`: the lowest level of log messages wanted, if any.
    pub log_level: Option<String>,
}

/// Why a request was refused: the HTTP status, the JSON-RPC code and message, and data.
pub struct Refusal {
    /// 400, 404, 406.
    pub status: u16,
    /// The JSON-RPC error code.
    pub code: i64,
    /// The message.
    pub message: String,
    /// The error's `data`, JSON.
    pub data: Option<String>,
}

impl Refusal {
    fn new(status: u16, code: i64, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            code,
            message: message.into(),
            data: None,
        }
    }

    /// The JSON-RPC error answering request `id`.
    pub fn answer(&self, id: &str) -> bytes::Bytes {
        match &self.data {
            None => jsonrpc::error_response(id, self.code, &self.message),
            Some(data) => bytes::Bytes::from(format!(
                r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{},"message":{},"data":{data}}}}}"#,
                self.code,
                serde_json::to_string(&self.message).unwrap_or_default()
            )),
        }
    }
}

#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow, rename = "_meta")]
    meta: Option<Meta<'a>>,
    #[serde(borrow)]
    name: Option<&'a RawValue>,
    #[serde(borrow)]
    uri: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(borrow, rename = "io.modelcontextprotocol/protocolVersion")]
    version: Option<&'a RawValue>,
    #[serde(borrow, rename = "io.modelcontextprotocol/clientCapabilities")]
    capabilities: Option<&'a RawValue>,
    #[serde(borrow, rename = "io.modelcontextprotocol/clientInfo")]
    client_info: Option<&'a RawValue>,
    #[serde(borrow, rename = "io.modelcontextprotocol/logLevel")]
    log_level: Option<&'a RawValue>,
}

/// What a request's params say of it where the 2026-07-28 front doors look: its `name`, its
/// `uri`, and the protocol version in its `_meta`. Read without building values, so arguments
/// nested however deep (past serde's 128 levels) hide none of it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Said {
    /// `params.name`, when a string.
    pub name: Option<String>,
    /// `params.uri`, when a string.
    pub uri: Option<String>,
    /// `params._meta["io.modelcontextprotocol/protocolVersion"]`, when a string.
    pub version: Option<String>,
}

/// Reads [`Said`] from `params` (nothing from params that are not an object).
pub fn said(params: Option<&RawValue>) -> Said {
    let Some(p) = params.and_then(|p| serde_json::from_str::<Params<'_>>(p.get()).ok()) else {
        return Said::default();
    };
    let string = |raw: Option<&RawValue>| raw.and_then(|r| serde_json::from_str::<String>(r.get()).ok());
    Said {
        name: string(p.name),
        uri: string(p.uri),
        version: string(p.meta.and_then(|m| m.version)),
    }
}

/// A header's value, if present once (a header sent twice is a mismatch).
type Header<'h> = Result<Option<&'h str>, ()>;

/// Checks `view` (a request) against its headers and reads its envelope. `header` gives a
/// header's value by (lowercase) name.
pub fn check<'h>(view: &View<'_>, header: impl Fn(&str) -> Header<'h>) -> Result<Envelope, Refusal> {
    let method = view.method();
    match header("mcp-method") {
        Ok(Some(m)) if m.trim() == method => {}
        _ => {
            return Err(Refusal::new(
                400,
                code::HEADER_MISMATCH,
                "the Mcp-Method header does not match the request body's method",
            ))
        }
    }
    let params: Params<'_> = match view.params {
        Some(p) => serde_json::from_str(p.get())
            .map_err(|e| Refusal::new(400, jsonrpc::code::INVALID_PARAMS, format!("{method}: params: {e}")))?,
        None => Params {
            meta: None,
            name: None,
            uri: None,
        },
    };
    let missing = || {
        Refusal::new(
            400,
            jsonrpc::code::INVALID_PARAMS,
            "params._meta must be an object carrying io.modelcontextprotocol/protocolVersion and io.modelcontextprotocol/clientCapabilities (protocol revision 2026-07-28)",
        )
    };
    let meta = params.meta.ok_or_else(missing)?;
    let version: String = meta
        .version
        .and_then(|v| serde_json::from_str(v.get()).ok())
        .ok_or_else(missing)?;
    let capabilities = meta
        .capabilities
        .filter(|c| c.get().trim_start().starts_with('{'))
        .ok_or_else(missing)?;
    match header("mcp-protocol-version") {
        Ok(Some(v)) if v.trim() == version => {}
        _ => {
            return Err(Refusal::new(
                400,
                code::HEADER_MISMATCH,
                "the MCP-Protocol-Version header does not match params._meta's protocol version",
            ))
        }
    }
    if version != super::REVISION {
        // What `server/discover` says: this revision (the session-based ones are reached by
        // `initialize`, not by this envelope).
        let supported = [super::REVISION];
        let mut r = Refusal::new(
            400,
            code::UNSUPPORTED_VERSION,
            format!("protocol version {version:?} is not supported"),
        );
        r.data = Some(serde_json::json!({"supported": supported, "requested": version}).to_string());
        return Err(r);
    }
    let named = match method {
        "tools/call" | "prompts/get" => params.name,
        "resources/read" => params.uri,
        _ => None,
    };
    if let Some(raw) = named {
        let value: Option<String> = serde_json::from_str(raw.get()).ok();
        let given = header("mcp-name").ok().flatten().map(decode_name);
        if value.is_none() || given.as_deref() != value.as_deref() {
            let what = if method == "resources/read" { "uri" } else { "name" };
            return Err(Refusal::new(
                400,
                code::HEADER_MISMATCH,
                format!("the Mcp-Name header does not match the request body's {what:?} parameter"),
            ));
        }
    }
    let log_level = meta.log_level.and_then(|l| serde_json::from_str(l.get()).ok());
    Ok(Envelope {
        version,
        capabilities: capabilities.to_owned(),
        client_info: meta.client_info.map(ToOwned::to_owned),
        log_level,
    })
}

/// An `Mcp-Name` value: as written, or decoded from the `=?base64?…?=` form (for names that are
/// not plain printable ASCII).
fn decode_name(value: &str) -> String {
    let trimmed = value.trim();
    if let Some(inner) = trimmed.strip_prefix("=?base64?").and_then(|r| r.strip_suffix("?=")) {
        if let Some(text) = base64::engine::general_purpose::STANDARD
            .decode(inner)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
        {
            return text;
        }
    }
    trimmed.to_string()
}

/// Syslog severities in order, for `logLevel`.
const LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// Whether a log message at `level` is wanted by a client that asked for `wanted` (nothing is,
/// when it asked for nothing).
pub fn wants_log(wanted: Option<&str>, level: &str) -> bool {
    let rank = |l: &str| LEVELS.iter().position(|x| *x == l);
    match (wanted.and_then(rank), rank(level)) {
        (Some(w), Some(l)) => l >= w,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Header<'a> + 'a {
        move |name| {
            let mut found = pairs.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name));
            match (found.next(), found.next()) {
                (Some((_, v)), None) => Ok(Some(v)),
                (None, _) => Ok(None),
                _ => Err(()),
            }
        }
    }

    #[test]
    fn what_params_say_is_read_past_arguments_of_any_depth() {
        let deep = format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
        let text = format!(r#"{{"name":"echo","arguments":{{"text":{deep}}},{META}}}"#);
        let params = RawValue::from_string(text).unwrap();
        assert_eq!(
            said(Some(&params)),
            Said {
                name: Some("echo".into()),
                uri: None,
                version: Some("2026-07-28".into())
            }
        );
        let not_an_object = RawValue::from_string("[1]".into()).unwrap();
        assert_eq!(said(Some(&not_an_object)), Said::default());
        assert_eq!(said(None), Said::default());
    }

    const META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/logLevel":"warning"}"#;

    #[test]
    fn a_well_formed_request_passes_and_its_envelope_is_read() {
        let text = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo",{META}}}}}"#);
        let view = View::parse(&text).unwrap();
        let h = [
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "echo"),
            ("MCP-Protocol-Version", "2026-07-28"),
        ];
        let e = check(&view, headers(&h)).map_err(|r| r.message).unwrap();
        assert_eq!(e.log_level.as_deref(), Some("warning"));
        // The base64 form of a name.
        let h = [
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?ZWNobw==?="),
            ("mcp-protocol-version", "2026-07-28"),
        ];
        assert!(check(&view, headers(&h)).is_ok());
    }

    #[test]
    fn mismatches_and_missing_envelopes_are_refused_with_the_revision_s_codes() {
        let text = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo",{META}}}}}"#);
        let view = View::parse(&text).unwrap();
        let code_of = |h: &[(&str, &str)]| check(&view, headers(h)).err().map(|r| (r.status, r.code));
        assert_eq!(
            code_of(&[
                ("Mcp-Method", "tools/list"),
                ("Mcp-Name", "echo"),
                ("MCP-Protocol-Version", "2026-07-28")
            ]),
            Some((400, -32020))
        );
        assert_eq!(
            code_of(&[
                ("Mcp-Method", "tools/call"),
                ("Mcp-Name", "other"),
                ("MCP-Protocol-Version", "2026-07-28")
            ]),
            Some((400, -32020))
        );
        assert_eq!(
            code_of(&[
                ("Mcp-Method", "tools/call"),
                ("Mcp-Method", "tools/call"),
                ("Mcp-Name", "echo"),
                ("MCP-Protocol-Version", "2026-07-28")
            ]),
            Some((400, -32020))
        );
        let bare = View::parse(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#).unwrap();
        let r = check(
            &bare,
            headers(&[("Mcp-Method", "tools/list"), ("MCP-Protocol-Version", "2026-07-28")]),
        )
        .err()
        .unwrap();
        assert_eq!((r.status, r.code), (400, -32602));
        let old = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2099-01-01","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
        let old = View::parse(old).unwrap();
        let r = check(
            &old,
            headers(&[("Mcp-Method", "tools/list"), ("MCP-Protocol-Version", "2099-01-01")]),
        )
        .err()
        .unwrap();
        assert_eq!((r.status, r.code), (400, -32022));
        assert!(r.data.unwrap().contains("\"requested\":\"2099-01-01\""));
    }

    #[test]
    fn log_levels_are_ordered() {
        assert!(wants_log(Some("info"), "error"));
        assert!(!wants_log(Some("error"), "info"));
        assert!(!wants_log(None, "emergency"));
    }
}
