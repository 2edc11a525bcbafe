//! JSON-RPC messages as the gateway sees them: bytes it routes, not values it rebuilds.
//!
//! A message is parsed once into a [`View`] that borrows from the bytes: its id and params stay
//! raw JSON, its method a string. Routing needs no more. Forwarding a message with another id
//! splices the new id into the bytes where the old one was ([`replace_id`]), so a body is never
//! re-serialised on its way through.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

/// JSON-RPC error codes the gateway answers with.
pub mod code {
    /// The bytes are not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Not a valid JSON-RPC message, or not allowed here.
    pub const INVALID_REQUEST: i64 = -32600;
    /// No such method (or server).
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Bad parameters.
    pub const INVALID_PARAMS: i64 = -32602;
    /// Tether failed.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// The server could not be started, or is gone.
    pub const SERVER_UNAVAILABLE: i64 = -32001;
    /// The server did not answer in time.
    pub const SERVER_TIMEOUT: i64 = -32002;
    /// A cap (`max_instances`, `max_processes`) refused a new instance.
    pub const CAP_REACHED: i64 = -32003;
    /// The message is larger than `max_message_size`.
    pub const TOO_LARGE: i64 = -32004;
}

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A method with an id: an answer is due.
    Request,
    /// A method without an id.
    Notification,
    /// A result or an error for an id.
    Response,
}

/// A parsed message, borrowing from its bytes.
#[derive(Debug)]
pub struct View<'a> {
    /// The whole message.
    pub text: &'a str,
    /// What it is.
    pub kind: Kind,
    /// Its id, as written.
    pub id: Option<&'a RawValue>,
    /// Its method, for requests and notifications.
    pub method: Option<Cow<'a, str>>,
    /// Its params, as written.
    pub params: Option<&'a RawValue>,
    /// Its error object, for an error response.
    pub error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow)]
    jsonrpc: Option<Cow<'a, str>>,
    // `null` kept as written (Option alone would read it as absent): a request's id must not be
    // null, a response's may be.
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

/// A field that is present, even as `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue as Deserialize>::deserialize(d).map(Some)
}

/// Why bytes are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Not UTF-8.
    #[error("not UTF-8 (invalid byte at offset {0})")]
    NotUtf8(usize),
    /// Not JSON, or not an object.
    #[error("not a JSON-RPC message: {0}")]
    NotJson(String),
    /// JSON, but not JSON-RPC 2.0.
    #[error("not JSON-RPC 2.0: {0}")]
    NotJsonRpc(&'static str),
}

impl Malformed {
    /// The JSON-RPC error code for a client that sent this.
    pub fn code(&self) -> i64 {
        match self {
            Malformed::NotUtf8(_) | Malformed::NotJson(_) => code::PARSE_ERROR,
            Malformed::NotJsonRpc(_) => code::INVALID_REQUEST,
        }
    }
}

/// Checks `bytes` are UTF-8 and returns them as a string.
pub fn utf8(bytes: &[u8]) -> Result<&str, Malformed> {
    std::str::from_utf8(bytes).map_err(|e| Malformed::NotUtf8(e.valid_up_to()))
}

impl<'a> View<'a> {
    /// Parses one message (an object; arrays are batches, see [`split_batch`]).
    pub fn parse(text: &'a str) -> Result<View<'a>, Malformed> {
        let f: Fields<'a> =
            serde_json::from_str(text).map_err(|e| Malformed::NotJson(why_not_json(&e, text.as_bytes())))?;
        if f.jsonrpc.as_deref() != Some("2.0") {
            return Err(Malformed::NotJsonRpc("\"jsonrpc\" must be \"2.0\""));
        }
        let kind = match (&f.method, &f.id, f.result.is_some() || f.error.is_some()) {
            (Some(_), Some(id), false) => {
                if id.get() == "null" {
                    return Err(Malformed::NotJsonRpc("a request's id must not be null"));
                }
                if !(id.get().starts_with('"') || id.get().starts_with(|c: char| c == '-' || c.is_ascii_digit())) {
                    return Err(Malformed::NotJsonRpc("an id must be a string or a number"));
                }
                Kind::Request
            }
            (Some(_), None, false) => Kind::Notification,
            (None, Some(_), true) => Kind::Response,
            (Some(_), _, true) => return Err(Malformed::NotJsonRpc("a message has either a method or a result/error")),
            (None, None, _) | (None, Some(_), false) => {
                return Err(Malformed::NotJsonRpc(
                    "a message needs a \"method\", or an \"id\" with a \"result\" or \"error\"",
                ))
            }
        };
        Ok(View {
            text,
            kind,
            id: f.id,
            method: f.method,
            params: f.params,
            error: f.error,
        })
    }

    /// The method, or "".
    pub fn method(&self) -> &str {
        self.method.as_deref().unwrap_or("")
    }

    /// The id as the gateway's own upstream ids are written: a plain unsigned integer.
    pub fn numeric_id(&self) -> Option<u64> {
        self.id.and_then(|id| id.get().parse().ok())
    }

    /// This message with `new_id` (raw JSON) in place of its id.
    pub fn with_id(&self, new_id: &str) -> Vec<u8> {
        match self.id {
            Some(id) => replace_id(self.text, id, new_id),
            None => self.text.as_bytes().to_vec(),
        }
    }
}

/// `text` with the raw value `old` (a slice of `text`) replaced by `new`.
pub fn replace_id(text: &str, old: &RawValue, new: &str) -> Vec<u8> {
    let start = (old.get().as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
    let end = start.wrapping_add(old.get().len());
    let mut out = Vec::with_capacity(text.len() + new.len());
    if end <= text.len() && text.get(start..end) == Some(old.get()) {
        out.extend_from_slice(&text.as_bytes()[..start]);
        out.extend_from_slice(new.as_bytes());
        out.extend_from_slice(&text.as_bytes()[end..]);
    } else {
        // Not a slice of `text` (cannot happen for a View's own id): rebuild the object.
        let mut v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        if let (Some(obj), Ok(id)) = (v.as_object_mut(), serde_json::from_str(new)) {
            obj.insert("id".into(), id);
        }
        out = serde_json::to_vec(&v).unwrap_or_default();
    }
    out
}

/// `text` with each raw value (a slice of `text`) replaced by its new text; `None` when one is
/// not a slice of `text`, or two overlap.
pub fn replace_many(text: &str, edits: &[(&RawValue, &str)]) -> Option<Vec<u8>> {
    let base = text.as_ptr() as usize;
    let mut ranges: Vec<(usize, usize, &str)> = edits
        .iter()
        .map(|(old, new)| {
            let start = (old.get().as_ptr() as usize).checked_sub(base)?;
            let end = start.checked_add(old.get().len())?;
            (text.get(start..end) == Some(old.get())).then_some((start, end, *new))
        })
        .collect::<Option<_>>()?;
    ranges.sort_by_key(|r| r.0);
    let mut out = Vec::with_capacity(text.len() + 16);
    let mut at = 0;
    for (start, end, new) in ranges {
        if start < at {
            return None;
        }
        out.extend_from_slice(&text.as_bytes()[at..start]);
        out.extend_from_slice(new.as_bytes());
        at = end;
    }
    out.extend_from_slice(&text.as_bytes()[at..]);
    Some(out)
}

/// The `uri` of params that name a resource (`resources/subscribe`, `…/updated`).
pub fn uri_param(params: Option<&RawValue>) -> Option<String> {
    #[derive(Deserialize)]
    struct P {
        uri: String,
    }
    serde_json::from_str::<P>(params?.get()).ok().map(|p| p.uri)
}

/// Whether `text` is a batch (a JSON array).
pub fn is_batch(text: &str) -> bool {
    text.trim_start().starts_with('[')
}

/// The messages of a batch, as raw JSON each.
pub fn split_batch(text: &str) -> Result<Vec<&RawValue>, Malformed> {
    let items: Vec<&RawValue> =
        serde_json::from_str(text).map_err(|e| Malformed::NotJson(why_not_json(&e, text.as_bytes())))?;
    if items.is_empty() {
        return Err(Malformed::NotJsonRpc("an empty batch"));
    }
    Ok(items)
}

/// An error response to `id` (raw JSON; `null` when unknown).
pub fn error_response(id: &str, code: i64, message: &str) -> Bytes {
    let message = serde_json::to_string(message).unwrap_or_else(|_| "\"error\"".into());
    Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{code},"message":{message}}}}}"#
    ))
}

/// A result response to `id` (raw JSON) with `result` (raw JSON).
pub fn result_response(id: &str, result: &str) -> Bytes {
    Bytes::from(format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#))
}

/// A request with a raw id and params.
pub fn request(id: &str, method: &str, params: Option<&str>) -> Bytes {
    match params {
        Some(p) => Bytes::from(format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{p}}}"#
        )),
        None => Bytes::from(format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}"}}"#)),
    }
}

/// A notification with raw params.
pub fn notification(method: &str, params: Option<&str>) -> Bytes {
    match params {
        Some(p) => Bytes::from(format!(r#"{{"jsonrpc":"2.0","method":"{method}","params":{p}}}"#)),
        None => Bytes::from(format!(r#"{{"jsonrpc":"2.0","method":"{method}"}}"#)),
    }
}

/// The first line of a serde error, without its position in a message nobody sees whole.
fn short(e: &serde_json::Error) -> String {
    let s = e.to_string();
    s.split(" at line ").next().unwrap_or(&s).to_string()
}

/// How deep serde_json builds a value before it refuses (its recursion limit): the deepest
/// JSON the gateway reads into a value. Routed messages are not read that deep (ids are
/// spliced, params and results skipped without recursion), so this bounds only what the
/// gateway looks inside: a filtered listing, an aggregated one, an `initialize` answer.
pub const MAX_DEPTH: usize = 128;

/// Why `text` could not be read: serde's reason, or for JSON nested past [`MAX_DEPTH`] how
/// deep it is (serde's own words, "recursion limit exceeded", name neither).
pub fn why_not_json(e: &serde_json::Error, text: &[u8]) -> String {
    if e.is_syntax() && e.to_string().starts_with("recursion limit exceeded") {
        return format!(
            "nested {} deep, deeper than the {MAX_DEPTH} levels Tether reads",
            depth(text)
        );
    }
    short(e)
}

/// The deepest nesting of arrays and objects in `text`, read without recursion (strings and
/// their escapes skipped); for bytes that are not JSON, a best guess.
pub fn depth(text: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in text {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_counted_without_recursion_and_strings_do_not_count() {
        let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(depth(deep.as_bytes()), 100_000);
        assert_eq!(depth(br#"{"a":"[[[{{\"]]","b":[{"c":[]}]}"#), 4);
        let e = serde_json::from_str::<serde_json::Value>(&deep).unwrap_err();
        assert_eq!(
            why_not_json(&e, deep.as_bytes()),
            "nested 100000 deep, deeper than the 128 levels Tether reads"
        );
        let e = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        assert_eq!(why_not_json(&e, b"{"), "EOF while parsing an object");
    }

    #[test]
    fn kinds() {
        let v = View::parse(r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"x"}}"#).unwrap();
        assert_eq!(v.kind, Kind::Request);
        assert_eq!(v.method(), "tools/call");
        assert_eq!(v.params.map(|p| p.get()), Some(r#"{"name":"x"}"#));
        let v = View::parse(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(v.kind, Kind::Notification);
        let v = View::parse(r#"{"jsonrpc":"2.0","id":7,"result":{}}"#).unwrap();
        assert_eq!((v.kind, v.numeric_id()), (Kind::Response, Some(7)));
        let v = View::parse(r#"{"jsonrpc":"2.0","id":7,"error":{"code":1,"message":"m"}}"#).unwrap();
        assert!(v.error.is_some());
    }

    #[test]
    fn malformed() {
        assert!(matches!(View::parse("nope"), Err(Malformed::NotJson(_))));
        assert!(matches!(View::parse("[1]"), Err(Malformed::NotJson(_))));
        assert!(matches!(
            View::parse(r#"{"id":1,"method":"m"}"#),
            Err(Malformed::NotJsonRpc(_))
        ));
        assert!(matches!(
            View::parse(r#"{"jsonrpc":"2.0","id":null,"method":"m"}"#),
            Err(Malformed::NotJsonRpc(_))
        ));
        assert!(matches!(
            View::parse(r#"{"jsonrpc":"2.0","id":{},"method":"m"}"#),
            Err(Malformed::NotJsonRpc(_))
        ));
        assert!(matches!(
            View::parse(r#"{"jsonrpc":"2.0"}"#),
            Err(Malformed::NotJsonRpc(_))
        ));
        assert_eq!(utf8(b"ab\xffc"), Err(Malformed::NotUtf8(2)));
    }

    #[test]
    fn ids_are_spliced_in_place() {
        let text = r#"{"jsonrpc":"2.0", "id" : "client-1","method":"x","params":{"id":3}}"#;
        let v = View::parse(text).unwrap();
        let out = String::from_utf8(v.with_id("42")).unwrap();
        assert_eq!(out, r#"{"jsonrpc":"2.0", "id" : 42,"method":"x","params":{"id":3}}"#);
        let back = View::parse(&out).unwrap();
        assert_eq!(String::from_utf8(back.with_id(r#""client-1""#)).unwrap(), text);
    }

    #[test]
    fn batches_and_errors() {
        assert!(is_batch("  [{}]"));
        assert_eq!(split_batch(r#"[{"a":1}, 2]"#).unwrap().len(), 2);
        assert!(split_batch("[]").is_err());
        let e = error_response("null", code::PARSE_ERROR, "bad \"x\"\n");
        let v: serde_json::Value = serde_json::from_slice(&e).unwrap();
        assert_eq!(v["error"]["message"], "bad \"x\"\n");
    }
}
