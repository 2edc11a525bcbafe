//! How the tools and prompts of several servers are named behind one endpoint, by the
//! gateway's `prefix` policy, and the table that takes a client's name back to its server.
//!
//! - `always`: `server__name`, so names never collide and a call names its server.
//! - `on_conflict`: a name only one server lists stays as it is; a name several list becomes
//!   `server__name` for each of them, so no server wins by accident.
//! - `never`: names stay as they are; of several servers listing one name the first (servers
//!   are sorted by name) keeps it and the others' are left out.
//!
//! Under every policy a name that would still appear twice (server `a`'s tool `b__x` beside
//! server `b`'s `x` prefixed) is kept for the first server only. Every collision is reported
//! once per gateway, at warn level, with how it was resolved: the same listing always resolves
//! the same way.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::config::Prefix;

/// Between a server's name and an item's: `github__search`.
pub const SEPARATOR: &str = "__";

/// One server's items as it listed them: (its own name, the item).
pub type Listed = (String, Vec<(String, Value)>);

/// A name as the client sees it, taken back to its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The server that listed it.
    pub server: String,
    /// The server's own name for it.
    pub own: String,
}

/// A collision found while naming, and how it was resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision {
    /// The name several servers list.
    pub name: String,
    /// Those servers, in order.
    pub servers: Vec<String>,
    /// What was done, in words.
    pub resolution: String,
}

/// Names every server's items by `policy`: the items renamed, in the servers' order; the table
/// from each client-side name to its owner; the collisions found.
pub fn assign(policy: Prefix, listed: Vec<Listed>) -> (Vec<Value>, HashMap<String, Owner>, Vec<Collision>) {
    let mut listers: HashMap<String, Vec<String>> = HashMap::new();
    for (server, items) in &listed {
        for (own, _) in items {
            let servers = listers.entry(own.clone()).or_default();
            if servers.last() != Some(server) {
                servers.push(server.clone());
            }
        }
    }
    let mut collisions: Vec<Collision> = listers
        .iter()
        .filter(|(_, servers)| policy != Prefix::Always && servers.len() > 1)
        .map(|(name, servers)| Collision {
            name: name.clone(),
            servers: servers.clone(),
            resolution: match policy {
                Prefix::Never => format!("{:?} keeps it; the others' are left out", servers[0]),
                _ => "each is offered as server__name".to_string(),
            },
        })
        .collect();
    let shared: HashSet<String> = collisions.iter().map(|c| c.name.clone()).collect();
    let mut out = Vec::new();
    let mut table: HashMap<String, Owner> = HashMap::new();
    for (server, items) in listed {
        for (own, mut item) in items {
            let exposed = match policy {
                Prefix::Always => format!("{server}{SEPARATOR}{own}"),
                Prefix::OnConflict if shared.contains(&own) => format!("{server}{SEPARATOR}{own}"),
                Prefix::Never if shared.contains(&own) && listers[&own][0] != server => continue,
                _ => own.clone(),
            };
            if let Some(first) = table.get(&exposed) {
                if first.server != server {
                    collisions.push(Collision {
                        name: exposed.clone(),
                        servers: vec![first.server.clone(), server.clone()],
                        resolution: format!("{:?} keeps it; the other's is left out", first.server),
                    });
                }
                continue;
            }
            item["name"] = Value::String(exposed.clone());
            table.insert(
                exposed,
                Owner {
                    server: server.clone(),
                    own,
                },
            );
            out.push(item);
        }
    }
    collisions.sort_by(|a, b| a.name.cmp(&b.name));
    (out, table, collisions)
}

/// The owner of `name` under the `always` policy, by its prefix alone: the longest server name
/// it starts with, so `a__b__tool` finds server `a__b` if there is one.
pub fn by_prefix(servers: &[String], name: &str) -> Option<Owner> {
    servers
        .iter()
        .filter(|s| {
            name.len() > s.len() + SEPARATOR.len()
                && name.starts_with(s.as_str())
                && name[s.len()..].starts_with(SEPARATOR)
        })
        .max_by_key(|s| s.len())
        .map(|s| Owner {
            server: s.clone(),
            own: name[s.len() + SEPARATOR.len()..].to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn listed() -> Vec<Listed> {
        let item = |n: &str| (n.to_string(), json!({"name": n}));
        vec![
            ("a".into(), vec![item("echo"), item("add"), item("b__x")]),
            ("b".into(), vec![item("echo"), item("x")]),
        ]
    }

    fn names(items: &[Value]) -> Vec<&str> {
        items.iter().filter_map(|i| i["name"].as_str()).collect()
    }

    #[test]
    fn always_prefixes_every_name() {
        let (items, table, collisions) = assign(Prefix::Always, listed());
        // `a`'s `b__x` becomes `a__b__x`; nothing collides.
        assert_eq!(names(&items), ["a__echo", "a__add", "a__b__x", "b__echo", "b__x"]);
        assert_eq!(
            table["b__x"],
            Owner {
                server: "b".into(),
                own: "x".into()
            }
        );
        assert!(collisions.is_empty());
    }

    #[test]
    fn on_conflict_prefixes_only_shared_names() {
        let (items, table, collisions) = assign(Prefix::OnConflict, listed());
        // `b__x` is `a`'s own name and `b`'s `x` stays bare: no clash.
        assert_eq!(names(&items), ["a__echo", "add", "b__x", "b__echo", "x"]);
        assert_eq!(
            table["add"],
            Owner {
                server: "a".into(),
                own: "add".into()
            }
        );
        assert_eq!(
            table["b__echo"],
            Owner {
                server: "b".into(),
                own: "echo".into()
            }
        );
        assert_eq!(collisions.len(), 1);
        assert_eq!(collisions[0].name, "echo");
        assert_eq!(collisions[0].servers, ["a", "b"]);
    }

    #[test]
    fn never_keeps_the_first_server() {
        let (items, table, collisions) = assign(Prefix::Never, listed());
        assert_eq!(names(&items), ["echo", "add", "b__x", "x"]);
        assert_eq!(table["echo"].server, "a");
        assert_eq!(collisions.len(), 1);
        assert!(collisions[0].resolution.contains("\"a\" keeps it"));
    }

    #[test]
    fn a_prefixed_name_meeting_an_own_name_keeps_the_first() {
        let item = |n: &str| (n.to_string(), json!({"name": n}));
        let listed = vec![
            ("a".into(), vec![item("b__x")]),
            ("b".into(), vec![item("x"), item("y")]),
            ("c".into(), vec![item("x")]),
        ];
        // on_conflict: `x` is shared by b and c, so b's becomes `b__x`, which `a` lists as is.
        let (items, table, collisions) = assign(Prefix::OnConflict, listed);
        assert_eq!(names(&items), ["b__x", "y", "c__x"]);
        assert_eq!(table["b__x"].server, "a");
        assert_eq!(
            collisions.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["b__x", "x"]
        );
    }

    #[test]
    fn prefixes_find_the_longest_server() {
        let servers = ["a".to_string(), "a__b".to_string()];
        assert_eq!(by_prefix(&servers, "a__b__t").map(|o| o.server), Some("a__b".into()));
        assert_eq!(by_prefix(&servers, "a__t").map(|o| o.own), Some("t".into()));
        assert_eq!(by_prefix(&servers, "a__"), None);
        assert_eq!(by_prefix(&servers, "ab__t"), None);
    }
}

/// Properties over any servers and items (proptest): names are unique, every name leads back
/// to the server and the item it came from, and under `always` the prefix alone finds it.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Server names as the configuration allows them (no `__` in them, so prefixes are
    /// unambiguous), each with a few item names (which may hold `__`).
    fn servers() -> impl Strategy<Value = Vec<Listed>> {
        proptest::collection::btree_map(
            "[a-z][a-z0-9-]{0,6}",
            proptest::collection::btree_set("[a-z_]{1,6}", 0..5),
            1..5,
        )
        .prop_map(|m| {
            m.into_iter()
                .filter(|(s, _)| !s.contains("__"))
                .map(|(s, items)| (s, items.into_iter().map(|n| (n.clone(), json!({"name": n}))).collect()))
                .collect()
        })
    }

    fn policy() -> impl Strategy<Value = Prefix> {
        prop_oneof![Just(Prefix::Always), Just(Prefix::OnConflict), Just(Prefix::Never)]
    }

    proptest! {
        #[test]
        fn every_name_is_unique_and_leads_back_to_its_item(listed in servers(), policy in policy()) {
            let (items, table, _) = assign(policy, listed.clone());
            let names: Vec<&str> = items.iter().filter_map(|i| i["name"].as_str()).collect();
            let unique: HashSet<&str> = names.iter().copied().collect();
            prop_assert_eq!(unique.len(), names.len(), "{:?}", names);
            prop_assert_eq!(table.len(), names.len());
            for name in names {
                let owner = &table[name];
                let (_, own_items) = listed.iter().find(|(s, _)| *s == owner.server).expect("a listed server");
                prop_assert!(own_items.iter().any(|(n, _)| *n == owner.own), "{:?}", owner);
                if policy == Prefix::Always {
                    prop_assert_eq!(name, format!("{}{SEPARATOR}{}", owner.server, owner.own));
                    let servers: Vec<String> = listed.iter().map(|(s, _)| s.clone()).collect();
                    let found = by_prefix(&servers, name);
                    prop_assert_eq!(found.as_ref(), Some(owner));
                }
            }
        }
    }
}
