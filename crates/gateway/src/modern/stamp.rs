//! A result as 2026-07-28 gives it: `resultType` (`complete`), the server's info in `_meta`,
//! and on listings and reads the caching hints (`ttlMs`, `cacheScope`), which the session-based
//! revisions do not have. Nothing Tether knows lets a listing be cached or shared: `ttlMs` is 0
//! and the scope `private`.

use bytes::Bytes;
use serde_json::Value;

/// Methods whose results carry caching hints.
const CACHEABLE: [&str; 6] = [
    "server/discover",
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
];

/// The session-based revisions' code for an unknown resource; 2026-07-28 says -32602 with the
/// URI in `data`.
const OLD_RESOURCE_NOT_FOUND: i64 = -32002;

/// The answer `answer` (a JSON-RPC response) to `method`, with `id` and the revision's fields;
/// an error answer keeps its error, with `id` (an unknown resource's in the revision's form:
/// `uri` is the one the request read).
pub fn answer(answer: &[u8], id: &str, method: &str, server_info: Option<&str>, uri: Option<&str>) -> Bytes {
    // The id is spliced in as the client wrote it (a number past 2^64 stays what it was); a
    // message serde cannot hold as a value (a lone surrogate, a number past f64) keeps its
    // bytes, with the id still replaced.
    let with_id = |bytes: &[u8]| -> Bytes {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|t| crate::jsonrpc::View::parse(t).ok().map(|v| Bytes::from(v.with_id(id))))
            .unwrap_or_else(|| Bytes::copy_from_slice(bytes))
    };
    let Ok(mut message) = serde_json::from_slice::<Value>(answer) else {
        return with_id(answer);
    };
    if let Some(error) = message.get_mut("error").and_then(Value::as_object_mut) {
        if method == "resources/read" && error.get("code").and_then(Value::as_i64) == Some(OLD_RESOURCE_NOT_FOUND) {
            error.insert("code".into(), Value::from(crate::jsonrpc::code::INVALID_PARAMS));
            if let Some(uri) = uri {
                error.insert("data".into(), serde_json::json!({"uri": uri}));
            }
        }
    }
    if let Some(Value::Object(result)) = message.get_mut("result") {
        result
            .entry("resultType")
            .or_insert_with(|| Value::String("complete".into()));
        if CACHEABLE.contains(&method) {
            result.entry("ttlMs").or_insert(Value::from(0));
            result
                .entry("cacheScope")
                .or_insert_with(|| Value::String("private".into()));
        }
        if let Some(info) = server_info.and_then(|i| serde_json::from_str::<Value>(i).ok()) {
            let meta = result
                .entry("_meta")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Value::Object(meta) = meta {
                meta.insert("io.modelcontextprotocol/serverInfo".into(), info);
            }
        }
    }
    with_id(message.to_string().as_bytes())
}

/// The HTTP status a 2026-07-28 answer goes with, when it is the whole answer: an unknown
/// method 404, a request the server refused as malformed 400, anything else 200.
pub fn status(answer: &[u8]) -> u16 {
    #[derive(serde::Deserialize)]
    struct Error {
        code: i64,
    }
    #[derive(serde::Deserialize)]
    struct Message {
        error: Option<Error>,
    }
    match serde_json::from_slice::<Message>(answer)
        .ok()
        .and_then(|m| m.error)
        .map(|e| e.code)
    {
        Some(-32601) => 404,
        Some(-32700 | -32600 | -32602 | -32020 | -32021 | -32022) => 400,
        _ => 200,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_get_the_revision_s_fields_and_errors_keep_theirs() {
        let a = answer(
            br#"{"jsonrpc":"2.0","id":9,"result":{"tools":[]}}"#,
            "\"x\"",
            "tools/list",
            Some(r#"{"name":"s","version":"1"}"#),
            None,
        );
        let v: Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(v["id"], "x");
        assert_eq!(v["result"]["resultType"], "complete");
        assert_eq!(v["result"]["ttlMs"], 0);
        assert_eq!(v["result"]["cacheScope"], "private");
        assert_eq!(v["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "s");
        let e = answer(
            br#"{"jsonrpc":"2.0","id":9,"error":{"code":1,"message":"m"}}"#,
            "3",
            "tools/call",
            None,
            None,
        );
        let v: Value = serde_json::from_slice(&e).unwrap();
        assert_eq!(v["id"], 3);
        assert_eq!(v["error"]["code"], 1);
        let big = answer(
            br#"{"jsonrpc":"2.0","id":9,"result":{"content":[]}}"#,
            "123456789012345678901234567890",
            "tools/call",
            None,
            None,
        );
        assert!(std::str::from_utf8(&big)
            .unwrap()
            .contains(r#""id":123456789012345678901234567890"#));
        let odd = answer(
            br#"{"jsonrpc":"2.0","id":9,"result":{"n":1e400}}"#,
            "7",
            "tools/call",
            None,
            None,
        );
        assert!(std::str::from_utf8(&odd).unwrap().contains(r#""id":7"#), "{odd:?}");
        let c = answer(
            br#"{"jsonrpc":"2.0","id":9,"result":{"content":[]}}"#,
            "9",
            "tools/call",
            None,
            None,
        );
        let v: Value = serde_json::from_slice(&c).unwrap();
        assert!(v["result"].get("ttlMs").is_none());
    }
}
