//! The clients' JSON configurations (`config::parse` of a `.json` file: `mcpServers` of Claude
//! Desktop and Cursor, `mcp.servers` of OpenClaw, `servers` of VS Code, in JSON or JSON5):
//! arbitrary text. Never a panic, and an error for text that is not JSON5 at all names the line
//! and column.
#![no_main]

#[path = "../common/config.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::check("fuzz.json", data, |text| {
        json5::from_str::<serde_json::Value>(text).is_ok()
    });
});
