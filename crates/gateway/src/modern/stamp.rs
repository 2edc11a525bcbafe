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

/// The answer `answer` (a JSON-RPC response) to `method`, with `id` and the revision's fields;
/// an error answer keeps its error, with `id`.
pub fn answer(answer: &[u8], id: &str, method: &str, server_info: Option<&str>) -> Bytes {
    let Ok(mut message) = serde_json::from_slice::<Value>(answer) else {
        return Bytes::copy_from_slice(answer);
    };
    if let Ok(id) = serde_json::from_str::<Value>(id) {
        message["id"] = id;
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
    Bytes::from(message.to_string())
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
        );
        let v: Value = serde_json::from_slice(&e).unwrap();
        assert_eq!(v["id"], 3);
        assert_eq!(v["error"]["code"], 1);
        let c = answer(
            br#"{"jsonrpc":"2.0","id":9,"result":{"content":[]}}"#,
            "9",
            "tools/call",
            None,
        );
        let v: Value = serde_json::from_slice(&c).unwrap();
        assert!(v["result"].get("ttlMs").is_none());
    }
}
