//! The clients' JSON configurations (`config::parse` of a `.json` file: `mcpServers` of Claude
//! Desktop and Cursor, `mcp.servers` of OpenClaw, `servers` of VS Code, in JSON or JSON5):
//! arbitrary text. Never a panic, and an error for text that is not JSON5 at all names the line
//! and column.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if reaches_outside(text) {
        return;
    }
    if let Err(e) = tether_gateway::config::parse(Path::new("fuzz.json"), text) {
        if json5::from_str::<serde_json::Value>(text).is_err() {
            assert!(e.position.is_some(), "a JSON syntax error without a position: {e}");
        }
        assert!(!e.message.is_empty());
    }
});

/// Text that names a device or a kernel file (`"tokenFile": "/dev/zero"` reads forever): the
/// parser reads token and CA files, and the fuzzer must not make it read the machine's.
fn reaches_outside(text: &str) -> bool {
    ["dev", "proc", "sys", "\\u", "\\x"].iter().any(|w| text.contains(w))
}
