//! What the two configuration targets share: the parse of a file named `file`, and its checks.

use std::path::Path;

/// Parses `data` as the text of `file`; a refusal must say something and, when `syntax_ok`
/// says the text is not even the format's syntax, name a line and column.
pub fn check(file: &str, data: &[u8], syntax_ok: impl Fn(&str) -> bool) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if reaches_outside(text) {
        return;
    }
    if let Err(e) = tether_gateway::config::parse(Path::new(file), text) {
        if !syntax_ok(text) {
            assert!(e.position.is_some(), "a syntax error without a position: {e}");
        }
        assert!(!e.message.is_empty());
    }
}

/// Text that names a device or a kernel file (`token_file = "/dev/zero"` reads forever), or
/// could spell one with an escape: the parser reads token and CA files, and the fuzzer must not
/// make it read the machine's.
fn reaches_outside(text: &str) -> bool {
    ["dev", "proc", "sys", "\\u", "\\U", "\\x"]
        .iter()
        .any(|w| text.contains(w))
}
