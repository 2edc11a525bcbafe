//! Finding where a key is in configuration text, for errors found after parsing.
//!
//! Parsers report positions for syntax errors; a rule broken by a well-formed value (a
//! `lifetime` of `"sesion"`, `command` and `url` both set) is found later, on values without
//! positions. The path of keys leading to it (`mcpServers` → `github` → `lifetime`) is then
//! searched for in order in the text: each key as a JSON string or a TOML key or table header,
//! after the previous one. For the files people write this lands on the offending line; when a
//! key cannot be found the deepest one found is reported, so the position is never wrong by
//! more than the entry it names.

/// 1-based line and column of byte `offset` in `text`.
pub fn line_col_of_byte(text: &[u8], offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    (line, column)
}

/// The position of the last key of `path` found, searching each after the previous one.
pub fn key_path(text: &str, path: &[&str]) -> Option<(usize, usize)> {
    let mut from = 0;
    let mut found = None;
    for key in path {
        match find_key(text, key, from) {
            Some(at) => {
                found = Some(at);
                from = at + 1;
            }
            None => break,
        }
    }
    found.map(|at| line_col_of_byte(text.as_bytes(), at))
}

/// The byte offset of `key` used as a key at or after `from`: `"key"` followed by `:` (JSON),
/// or `key`/`"key"` followed by `=` or ending a `[table.key]` header (TOML).
fn find_key(text: &str, key: &str, from: usize) -> Option<usize> {
    let quoted = format!("\"{key}\"");
    let candidates = [quoted.as_str(), key];
    let mut best: Option<usize> = None;
    for needle in candidates {
        // An empty key (a server named "") is only found quoted: the empty needle is found
        // everywhere and would never move the search on.
        if needle.is_empty() {
            continue;
        }
        let mut start = from;
        while let Some(rel) = text.get(start..)?.find(needle) {
            let at = start + rel;
            let after = text[at + needle.len()..].trim_start_matches([' ', '\t']);
            let before = text[..at].trim_end_matches([' ', '\t']);
            let is_key = after.starts_with([':', '=', ']', '.'])
                && (needle.starts_with('"') || before.is_empty() || before.ends_with(['\n', '[', '.', '{', ',']));
            if is_key {
                best = Some(best.map_or(at, |b: usize| b.min(at)));
                break;
            }
            start = at + needle.len();
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_json_keys_in_order() {
        let text = "{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\"},\n    \"b\": {\n      \"command\": \"y\",\n      \"lifetime\": \"sesion\"\n    }\n  }\n}\n";
        assert_eq!(key_path(text, &["mcpServers", "b", "lifetime"]), Some((6, 7)));
        assert_eq!(key_path(text, &["mcpServers", "a", "command"]), Some((3, 11)));
        // A missing key: the deepest one found.
        assert_eq!(key_path(text, &["mcpServers", "b", "nothere"]), Some((4, 5)));
    }

    #[test]
    fn finds_toml_keys_and_tables() {
        let text = "[gateway]\nlisten = \"0.0.0.0:1\"\n\n[servers.github]\ncommand = \"npx\"\nlifetime = \"sesion\"\n";
        assert_eq!(key_path(text, &["servers", "github", "lifetime"]), Some((6, 1)));
        assert_eq!(key_path(text, &["gateway", "listen"]), Some((2, 1)));
    }

    /// Found by fuzzing (config_json): an entry named "" with an error in it hung the
    /// gateway, searching for the empty key forever.
    #[test]
    fn an_empty_key_is_found_quoted() {
        let text = "{\"mcpServers\": {\"\": {\"com{mand\": \"x\", \"diSabled\": true}}}";
        assert_eq!(key_path(text, &["mcpServers", "", "diSabled"]), Some((1, 39)));
        assert_eq!(
            key_path("[servers.\"\"]\nx = 1\n", &["servers", "", "y"]),
            Some((1, 10))
        );
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(line_col_of_byte("é\nab".as_bytes(), 4), (2, 2));
    }
}
