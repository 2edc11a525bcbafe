//! Unguessable identifiers: instance ids, owner ids, cookies.
//!
//! 128 random bits from the OS, written as 32 lowercase hex digits, so that an id can be put in
//! an environment variable, a cgroup name or a ledger row without escaping, and cannot be
//! guessed or collide with another Tether's.

use std::fmt::Write as _;

/// The first 8 digits of an id, enough for people (logs, reports).
pub fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// Returns 128 random bits as 32 lowercase hex digits.
pub fn random_id() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(format!("getrandom: {e}")))?;
    let mut out = String::with_capacity(32);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    Ok(out)
}

/// True when `s` looks like an id this module made (or one a caller handed in with the same
/// shape): only lowercase hex, 8 to 64 digits. Ids end up in paths, so nothing else is allowed.
pub fn is_valid_id(s: &str) -> bool {
    (8..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_and_distinct() {
        let a = random_id().unwrap();
        let b = random_id().unwrap();
        assert_eq!(a.len(), 32);
        assert!(is_valid_id(&a));
        assert_ne!(a, b);
    }

    #[test]
    fn rejects_path_characters() {
        assert!(!is_valid_id("../../etc"));
        assert!(!is_valid_id("ABCDEF0123"));
        assert!(!is_valid_id("abc"));
    }
}
