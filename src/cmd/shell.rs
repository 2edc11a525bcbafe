//! Commands printed for people to copy into a POSIX shell: each path quoted only when it needs
//! it, so the common case stays readable and the odd one still runs as printed.

use std::path::Path;

/// Single-quotes a path for a POSIX shell when it needs it.
pub fn quote(p: &Path) -> String {
    let s = p.display().to_string();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@".contains(&b)) {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(quote(Path::new("/a/ledger.sqlite3")), "/a/ledger.sqlite3");
        assert_eq!(quote(Path::new("/a b/it's")), r"'/a b/it'\''s'");
        assert_eq!(quote(Path::new("")), "''");
    }
}
