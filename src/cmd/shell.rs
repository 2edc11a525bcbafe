//! Commands printed for people to copy into a POSIX shell: each path quoted only when it needs
//! it, so the common case stays readable and the odd one still runs as printed.

use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

/// Single-quotes a path for a POSIX shell when it needs it (with the quoting the SSH kind uses
/// for remote command lines; a path cannot hold the NUL it refuses).
pub fn quote(p: &Path) -> String {
    let bytes = p.as_os_str().as_bytes();
    let plain = !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@".contains(b));
    let quoted = if plain {
        bytes.to_vec()
    } else {
        tether_supervisor::ssh::quote::quote(bytes).unwrap_or_else(|_| bytes.to_vec())
    };
    String::from_utf8_lossy(&quoted).into_owned()
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
