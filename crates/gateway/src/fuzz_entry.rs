//! Entry points for the fuzz targets (`fuzz/`, `scripts/fuzz`) into code that is private to the
//! front door: how an `Accept` header is read and how a server name in the path is decoded.
//! They stay private to the crate otherwise; this module only hands the fuzzer the same
//! functions the front door calls, so what is fuzzed is the real code. Not an API.

use hyper::header::{HeaderMap, HeaderValue, ACCEPT};

/// Whether a request with these `Accept` header values accepts JSON and event streams (values
/// that are not valid header bytes are left out, as hyper would refuse them).
pub fn accepts(values: &[&[u8]]) -> (bool, bool) {
    let mut headers = HeaderMap::new();
    for v in values {
        if let Ok(v) = HeaderValue::from_bytes(v) {
            headers.append(ACCEPT, v);
        }
    }
    let a = crate::front::http::Accepts::of(&headers);
    (a.json, a.events)
}

/// The server name of `/mcp/{raw}`, percent-decoded, or `None` when it is not valid
/// percent-encoded UTF-8.
pub fn percent_decode(raw: &str) -> Option<String> {
    crate::front::http::percent_decode(raw)
}
