//! JSON-RPC framing and message views: arbitrary bytes as one message or a batch. Never a
//! panic; an error for what is not a message; and a message re-read after its id is spliced
//! (what the gateway does to every request it forwards) is still the same kind of message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_gateway::jsonrpc::{self, View};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = jsonrpc::utf8(data) else {
        return;
    };
    if jsonrpc::is_batch(text) {
        if let Ok(items) = jsonrpc::split_batch(text) {
            assert!(!items.is_empty());
            for item in items {
                one(item.get());
            }
        }
    } else {
        one(text);
    }
});

fn one(text: &str) {
    let Ok(view) = View::parse(text) else {
        return;
    };
    let _ = view.method();
    let _ = view.numeric_id();
    let _ = jsonrpc::uri_param(view.params);
    if let Some(id) = view.id {
        let spliced = view.with_id("4711");
        let spliced = std::str::from_utf8(&spliced).expect("a spliced message is UTF-8");
        let again = View::parse(spliced).expect("a message with its id spliced still parses");
        assert_eq!(again.kind, view.kind);
        assert_eq!(again.numeric_id(), Some(4711));
        assert_eq!(again.method(), view.method());
        let edits = [(id, "\"x\"")];
        let many = jsonrpc::replace_many(text, &edits).expect("a view's own id is a slice of it");
        assert_eq!(many, view.with_id("\"x\""));
    }
}
