//! Every enabled server behind one endpoint (`/mcp`, and the stdio front door): tools, prompts,
//! resources, resource templates and completions of all of them, in one session.
//!
//! Tools and prompts are named by the gateway's `prefix` policy ([`naming`]: `server__name` by
//! default, so two servers' `search` tools stay apart and a call finds its server by the
//! prefix); a session keeps the table from the names it was given back to their servers.
//! Resources keep their URIs and are routed by the server that listed them (or whose template
//! matches). Listing asks every server, starting
//! shared instances and the session's own as needed; a server that cannot start or list is
//! left out of the answer and logged, never failing the whole list. Nothing starts at
//! `initialize`: the gateway answers it for all of them.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use crate::config::Prefix;
use crate::gateway::Gateway;
use crate::jsonrpc::{self, code, View};
use crate::route::{forward, Reply};
use crate::session::Session;

pub mod naming;
pub mod views;

pub use naming::{Owner, SEPARATOR};
/// Most pages asked of one server for one listing.
const MAX_PAGES: usize = 100;

/// The `initialize` result for an aggregated session.
pub fn initialize_result(version: &str, servers: &[String]) -> String {
    json!({
        "protocolVersion": version,
        "capabilities": {
            "tools": {"listChanged": true},
            "prompts": {"listChanged": true},
            "resources": {"subscribe": true, "listChanged": true},
            "logging": {},
            "completions": {}
        },
        "serverInfo": {"name": "tether", "version": env!("CARGO_PKG_VERSION")},
        "instructions": format!(
            "Tools, prompts and resources of {} servers ({}); tools and prompts of several servers are told apart as server{SEPARATOR}name.",
            servers.len(),
            servers.join(", ")
        )
    })
    .to_string()
}

/// Answers one request of an aggregated session.
pub async fn request(gw: &Gateway, session: &Arc<Session>, servers: &[String], view: &View<'_>) -> Reply {
    let id = view.id.map_or("null", |i| i.get());
    // Only what routing needs, borrowed from the message; the rest (arguments above all) is
    // skipped here and forwarded as the client wrote it.
    let target = match view.params {
        Some(p) => match serde_json::from_str::<Option<Target<'_>>>(p.get()) {
            Ok(t) => t.unwrap_or_default(),
            Err(e) => {
                return Reply::Now(jsonrpc::error_response(
                    id,
                    code::INVALID_PARAMS,
                    &format!("{}: params: {e}", view.method()),
                ))
            }
        },
        None => Target::default(),
    };
    let reference = target.reference.unwrap_or_default();
    match view.method() {
        "tools/list" => Reply::Now(list(gw, session, servers, id, Listing::TOOLS).await),
        "prompts/list" => Reply::Now(list(gw, session, servers, id, Listing::PROMPTS).await),
        "resources/list" => Reply::Now(list(gw, session, servers, id, Listing::RESOURCES).await),
        "resources/templates/list" => Reply::Now(list(gw, session, servers, id, Listing::TEMPLATES).await),
        "tools/call" => by_name(gw, session, servers, view, target.name, Listing::TOOLS).await,
        "prompts/get" => by_name(gw, session, servers, view, target.name, Listing::PROMPTS).await,
        "completion/complete" if reference.kind.as_deref() == Some("ref/prompt") => {
            by_name(gw, session, servers, view, reference.name, Listing::PROMPTS).await
        }
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            by_uri(gw, session, servers, view, target.uri.as_deref().unwrap_or_default()).await
        }
        "completion/complete" => by_uri(gw, session, servers, view, reference.uri.as_deref().unwrap_or_default()).await,
        "logging/setLevel" => {
            for up in session.instances().into_iter().chain(
                gw.pool
                    .live()
                    .into_iter()
                    .filter(|u| u.lifetime() == crate::config::Lifetime::Shared),
            ) {
                let _ = up
                    .call(
                        "logging/setLevel",
                        view.params.map(|p| p.get()),
                        up.server.request_timeout,
                    )
                    .await;
            }
            Reply::Now(jsonrpc::result_response(id, "{}"))
        }
        other => Reply::Now(jsonrpc::error_response(
            id,
            code::METHOD_NOT_FOUND,
            &format!(
                "{other} is not answered across {} servers: address one at /mcp/{{server}}",
                servers.len()
            ),
        )),
    }
}

/// At start-up, under `on_conflict` or `never`: lists the tools and prompts of every `shared`
/// server (starting them, as any listing may) so that name collisions between them are
/// reported when the gateway starts rather than when a client first lists. `session` and
/// `request` servers start only for a client; their collisions are reported when one lists.
pub async fn survey(gw: Arc<Gateway>) {
    let config = gw.config();
    if config.gateway.prefix == Prefix::Always {
        return;
    }
    let shared: Vec<String> = gw
        .pool
        .enabled()
        .into_iter()
        .filter(|s| {
            config
                .servers
                .get(s)
                .is_some_and(|c| c.lifetime == crate::config::Lifetime::Shared)
        })
        .collect();
    if shared.len() < 2 {
        return;
    }
    tracing::info!(
        "listing the tools and prompts of {} shared servers to report name collisions (prefix = {:?})",
        shared.len(),
        config.gateway.prefix.name()
    );
    let Ok(client) = serde_json::from_str(&format!(r#"{{"protocolVersion":"{}"}}"#, crate::protocol::LATEST)) else {
        return;
    };
    // A session of the gateway's own, known to no client and to no registry.
    let session = Arc::new(Session::new(
        String::new(),
        "start-up".into(),
        crate::session::Endpoint::All,
        crate::session::Mode::All,
        0,
        client,
        crate::protocol::LATEST,
    ));
    list(&gw, &session, &shared, "0", Listing::TOOLS).await;
    list(&gw, &session, &shared, "0", Listing::PROMPTS).await;
    session.end(crate::cause::Cause::Survey, "the start-up listing is done");
}

/// One kind of listing.
#[derive(Clone, Copy)]
struct Listing {
    method: &'static str,
    field: &'static str,
    /// Items are renamed `server__name` (tools, prompts), or routed by URI (resources).
    named: bool,
}

impl Listing {
    const TOOLS: Listing = Listing {
        method: "tools/list",
        field: "tools",
        named: true,
    };
    const PROMPTS: Listing = Listing {
        method: "prompts/list",
        field: "prompts",
        named: true,
    };
    const RESOURCES: Listing = Listing {
        method: "resources/list",
        field: "resources",
        named: false,
    };
    const TEMPLATES: Listing = Listing {
        method: "resources/templates/list",
        field: "resourceTemplates",
        named: false,
    };
}

/// Asks every server at once, merges what they list (in the servers' order), naming tools and
/// prompts by the gateway's policy.
async fn list(gw: &Gateway, session: &Arc<Session>, servers: &[String], id: &str, what: Listing) -> Bytes {
    let asks = servers.iter().map(|server| list_one(gw, session, server, &what));
    let mut listed: Vec<naming::Listed> = Vec::new();
    for (server, outcome) in servers.iter().zip(join_all(asks.collect()).await) {
        match outcome {
            Ok(from) => listed.push((server.clone(), from)),
            Err(why) => tracing::warn!(session = %session.key, server = %server, "left out of {}: {why}", what.method),
        }
    }
    let items = if what.named {
        let (items, table, collisions) = naming::assign(gw.config().gateway.prefix, listed);
        session.set_names(what.field, table);
        gw.report_collisions(what.field, &collisions);
        items
    } else {
        listed
            .into_iter()
            .flat_map(|(_, items)| items.into_iter().map(|(_, item)| item))
            .collect()
    };
    session.set_view(what.field, views::fingerprint(&items));
    let mut result = Map::new();
    result.insert(what.field.into(), Value::Array(items));
    jsonrpc::result_response(id, &Value::Object(result).to_string())
}

/// Runs every future to its end, concurrently on this task; their outputs in order. (One slow
/// or hung server then costs a listing its own timeout, not the sum of all.)
pub(crate) async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *output = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// One server's items, every page, each with its own name (tools and prompts; tools the
/// server's filter refuses are left out), or its resources routed to it.
async fn list_one(
    gw: &Gateway,
    session: &Arc<Session>,
    server: &str,
    what: &Listing,
) -> Result<Vec<(String, Value)>, String> {
    let lease = gw.pool.acquire(server, session).await.map_err(|e| e.to_string())?;
    let up = &lease.upstream;
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = cursor.as_ref().map(|c| json!({"cursor": c}).to_string());
        let answer = up
            .call(what.method, params.as_deref(), up.server.request_timeout)
            .await?;
        let answer: Value = serde_json::from_slice(&answer).map_err(|e| {
            format!(
                "its answer cannot be read: {}",
                crate::jsonrpc::why_not_json(&e, &answer)
            )
        })?;
        if let Some(err) = answer.get("error") {
            return Err(format!("it answered {err}"));
        }
        let Value::Object(mut result) = answer.get("result").cloned().unwrap_or(Value::Null) else {
            return Err(format!("its {} answer has no result object", what.method));
        };
        let page = match result.remove(what.field) {
            Some(Value::Array(page)) => page,
            _ => return Err(format!("its {} answer has no {:?} list", what.method, what.field)),
        };
        for item in page {
            if what.named {
                let Some(name) = item.get("name").and_then(Value::as_str).map(str::to_string) else {
                    continue;
                };
                if what.field == "tools" && !up.server.tools.allows(&name) {
                    continue;
                }
                items.push((name, item));
                continue;
            } else if let Some(uri) = item.get("uri").and_then(Value::as_str) {
                session.route_resource(uri, server);
            } else if let Some(template) = item.get("uriTemplate").and_then(Value::as_str) {
                session.route_template(template, server);
            }
            items.push((String::new(), item));
        }
        cursor = result.get("nextCursor").and_then(Value::as_str).map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    Ok(items)
}

/// A call of a tool or prompt by the name the client was given: to its server, with the
/// server's own name. `raw_name` is the name in the params (`name`, or `ref.name` for a
/// completion). Under `always` the name says its server; otherwise the session's table does,
/// filled by listing first when the client has not listed yet.
async fn by_name(
    gw: &Gateway,
    session: &Arc<Session>,
    servers: &[String],
    view: &View<'_>,
    raw_name: Option<&RawValue>,
    what: Listing,
) -> Reply {
    let id = view.id.map_or("null", |i| i.get());
    let name: String = raw_name
        .and_then(|n| serde_json::from_str(n.get()).ok())
        .unwrap_or_default();
    let policy = gw.config().gateway.prefix;
    let mut found = match policy {
        Prefix::Always => naming::by_prefix(servers, &name),
        _ => session.name_owner(what.field, &name),
    };
    if found.is_none() && policy != Prefix::Always {
        list(gw, session, servers, "0", what).await;
        found = session.name_owner(what.field, &name);
    }
    let (Some(owner), Some(raw_name)) = (found, raw_name) else {
        let expected = match policy {
            Prefix::Always => format!("names are server{SEPARATOR}name"),
            _ => format!("no server lists it (prefix = {:?})", policy.name()),
        };
        return Reply::Now(jsonrpc::error_response(
            id,
            code::INVALID_PARAMS,
            &format!(
                "{name:?} names no {} of this gateway: {expected} (servers: {})",
                &what.field[..what.field.len() - 1],
                servers.join(", ")
            ),
        ));
    };
    // The server's own name spliced in place of the client's: every other byte (ids,
    // arguments, numbers of any size) reaches the server as the client wrote it.
    let own = serde_json::to_string(&owner.own).unwrap_or_default();
    let renamed = jsonrpc::replace_many(view.text, &[(raw_name, &own)]).and_then(|b| String::from_utf8(b).ok());
    let Some(message) = renamed else {
        return Reply::Now(jsonrpc::error_response(
            id,
            code::INTERNAL_ERROR,
            "the name could not be replaced in the request",
        ));
    };
    match View::parse(&message) {
        Ok(renamed) => forward(gw, session, &owner.server, &renamed).await,
        Err(e) => Reply::Now(jsonrpc::error_response(id, code::INTERNAL_ERROR, &e.to_string())),
    }
}

/// A request about a resource: to the server that listed it (or whose template matches),
/// found by listing resources and templates first when the client has not.
async fn by_uri(gw: &Gateway, session: &Arc<Session>, servers: &[String], view: &View<'_>, uri: &str) -> Reply {
    let id = view.id.map_or("null", |i| i.get());
    let mut found = session.resource_server(uri);
    if found.is_none() {
        list(gw, session, servers, "0", Listing::RESOURCES).await;
        list(gw, session, servers, "0", Listing::TEMPLATES).await;
        found = session.resource_server(uri);
    }
    match found {
        Some(server) => forward(gw, session, &server, view).await,
        None => Reply::Now(jsonrpc::error_response(
            id,
            code::INVALID_PARAMS,
            &format!(
                "resource {uri:?}: no server lists it or a template matching it (servers: {})",
                servers.join(", ")
            ),
        )),
    }
}

/// What an aggregated request is routed by: `name` (tools, prompts), `uri` (resources), `ref`
/// (completions).
#[derive(Default, Deserialize)]
struct Target<'a> {
    #[serde(borrow)]
    name: Option<&'a RawValue>,
    #[serde(borrow)]
    uri: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "ref")]
    reference: Option<Reference<'a>>,
}

/// A completion's `ref`.
#[derive(Default, Deserialize)]
struct Reference<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<&'a RawValue>,
    #[serde(borrow)]
    uri: Option<Cow<'a, str>>,
}

/// Whether `uri` matches an RFC 6570 level-1 template (`test://template/{id}/data`).
pub fn matches_template(template: &str, uri: &str) -> bool {
    let mut rest = uri;
    let mut parts = template.split('{');
    let Some(head) = parts.next() else { return false };
    let Some(after) = rest.strip_prefix(head) else {
        return false;
    };
    rest = after;
    for part in parts {
        let Some((_, literal)) = part.split_once('}') else {
            return false;
        };
        if literal.is_empty() {
            // A variable at the end takes the rest, which must not be empty.
            return !rest.is_empty();
        }
        match rest.find(literal) {
            Some(at) if at > 0 => rest = &rest[at + literal.len()..],
            _ => return false,
        }
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_uris() {
        assert!(matches_template(
            "test://template/{id}/data",
            "test://template/123/data"
        ));
        assert!(!matches_template("test://template/{id}/data", "test://template//data"));
        assert!(!matches_template("test://template/{id}/data", "test://other/123/data"));
        assert!(matches_template("file:///{path}", "file:///etc/hosts"));
        assert!(!matches_template("test://a/{x}/b", "test://a/1/c"));
    }

    #[test]
    fn initialize_declares_every_capability() {
        let r: Value = serde_json::from_str(&initialize_result("2025-06-18", &["a".into(), "b".into()])).unwrap();
        assert_eq!(r["protocolVersion"], "2025-06-18");
        assert_eq!(r["serverInfo"]["name"], "tether");
        assert!(r["capabilities"]["tools"].is_object() && r["capabilities"]["resources"]["subscribe"] == true);
    }
}
