//! Refusing a JSON object that has a key twice.
//!
//! JSON parsers keep the last of two equal keys and say nothing, so a file with two servers of
//! the same name would silently run the second one only (TOML refuses that itself). This walks
//! the document once more, keeping each object's keys, and stops at the first key seen twice,
//! with the path of keys that leads to it.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The path of keys to the first key an object of `text` has twice (the path ends with that
/// key), or `None` when there is none. Text that is not JSON or JSON5 is for the parser proper
/// to refuse: `None` too.
pub fn first_duplicate(text: &str) -> Option<Vec<String>> {
    let mut found = None;
    let mut path = Vec::new();
    let seed = Walk {
        path: &mut path,
        found: &mut found,
    };
    let _ = seed.deserialize(&mut json5::Deserializer::from_str(text).ok()?);
    found
}

/// One value of the document, at `path`; records the first duplicate in `found`.
struct Walk<'a> {
    path: &'a mut Vec<String>,
    found: &'a mut Option<Vec<String>>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            self.path.push(key.clone());
            if !seen.insert(key) {
                *self.found = Some(self.path.clone());
                return Err(de::Error::custom("a duplicate key"));
            }
            map.next_value_seed(Walk {
                path: self.path,
                found: self.found,
            })?;
            self.path.pop();
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(Walk {
                path: self.path,
                found: self.found,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

#[cfg(test)]
mod tests {
    use super::first_duplicate;

    #[test]
    fn the_first_key_seen_twice_is_named_with_its_path() {
        let text = r#"{"mcpServers": {"fx": {"command": "a"}, "gh": {"command": "b"}, "fx": {"command": "c"}}}"#;
        assert_eq!(first_duplicate(text), Some(vec!["mcpServers".into(), "fx".into()]));
        let nested = "{servers: {a: {env: {X: '1', X: '2'}}}}";
        assert_eq!(
            first_duplicate(nested),
            Some(vec!["servers".into(), "a".into(), "env".into(), "X".into()])
        );
    }

    #[test]
    fn equal_keys_in_different_objects_are_not_duplicates() {
        let text = r#"{"mcpServers": {"a": {"command": "x", "args": [{"k": 1}, {"k": 2}]}, "b": {"command": "y"}}}"#;
        assert_eq!(first_duplicate(text), None);
        assert_eq!(first_duplicate("not json at all {"), None);
    }
}
