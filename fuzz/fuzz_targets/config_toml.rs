//! Tether's TOML configuration (`config::parse` of a `.toml` file): arbitrary text. Never a
//! panic, and an error for text that is not TOML at all names the line and column.
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
    if let Err(e) = tether_gateway::config::parse(Path::new("fuzz.toml"), text) {
        if toml::from_str::<toml::Table>(text).is_err() {
            assert!(e.position.is_some(), "a TOML syntax error without a position: {e}");
        }
        assert!(!e.message.is_empty());
    }
});

/// Text that names a device or a kernel file (`token_file = "/dev/zero"` reads forever): the
/// parser reads token and CA files, and the fuzzer must not make it read the machine's.
fn reaches_outside(text: &str) -> bool {
    ["dev", "proc", "sys", "\\u", "\\U", "\\x"]
        .iter()
        .any(|w| text.contains(w))
}
