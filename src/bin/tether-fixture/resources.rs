//! Resources (`resources/list`, `resources/templates/list`, `resources/read`)
//! and subscriptions, as the conformance suite names them.
//!
//! Subscriptions are only recorded: nothing ever changes, so no
//! `notifications/resources/updated` is sent unless a test asks the `notify` tool.

use crate::media;
use crate::plan::RpcError;
use crate::rpc::str_param;
use crate::session::Session;
use serde_json::{json, Value};

/// MCP's error code for a resource that does not exist.
pub const RESOURCE_NOT_FOUND: i64 = -32002;

/// The only template: `test://template/{id}/data`.
const TEMPLATE_PREFIX: &str = "test://template/";
const TEMPLATE_SUFFIX: &str = "/data";

pub fn list() -> Value {
    json!({"resources": [
        {"uri": "test://static-text", "name": "static-text", "title": "Static text",
         "description": "A static text resource", "mimeType": "text/plain"},
        {"uri": "test://static-binary", "name": "static-binary", "title": "Static binary",
         "description": "A static binary resource (a PNG image)", "mimeType": media::PNG_MIME},
        {"uri": "test://watched-resource", "name": "watched-resource", "title": "Watched resource",
         "description": "A resource to subscribe to", "mimeType": "text/plain"},
    ]})
}

pub fn templates() -> Value {
    json!({"resourceTemplates": [
        {"uriTemplate": "test://template/{id}/data", "name": "template", "title": "Template",
         "description": "A resource per id", "mimeType": "application/json"},
    ]})
}

pub fn read(params: &Value) -> Result<Value, RpcError> {
    let uri = str_param(params, "uri", "resources/read")?;
    let content = match uri {
        "test://static-text" => {
            json!({"uri": uri, "mimeType": "text/plain", "text": "The text of the static text resource."})
        }
        "test://static-binary" => json!({"uri": uri, "mimeType": media::PNG_MIME, "blob": media::PNG_BASE64}),
        "test://watched-resource" => {
            json!({"uri": uri, "mimeType": "text/plain", "text": "The watched resource's content."})
        }
        _ => match template_id(uri) {
            Some(id) => {
                let text = json!({"id": id, "templateTest": true, "data": format!("Data for id {id}")});
                json!({"uri": uri, "mimeType": "application/json", "text": text.to_string()})
            }
            None => return Err(RpcError::new(RESOURCE_NOT_FOUND, format!("resource not found: {uri}"))),
        },
    };
    Ok(json!({ "contents": [content] }))
}

pub fn subscribe(session: &mut Session, params: &Value) -> Result<Value, RpcError> {
    let uri = str_param(params, "uri", "resources/subscribe")?;
    session.subscriptions.insert(uri.to_owned());
    Ok(json!({}))
}

pub fn unsubscribe(session: &mut Session, params: &Value) -> Result<Value, RpcError> {
    let uri = str_param(params, "uri", "resources/unsubscribe")?;
    // Unsubscribing from something never subscribed to is harmless, as in the reference server.
    session.subscriptions.remove(uri);
    Ok(json!({}))
}

/// The `{id}` of a URI matching the template: one non-empty path segment.
fn template_id(uri: &str) -> Option<&str> {
    let id = uri.strip_prefix(TEMPLATE_PREFIX)?.strip_suffix(TEMPLATE_SUFFIX)?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::tests::{call, call_in, req, session};
    use crate::rpc::INVALID_PARAMS;

    fn read_one(uri: &str) -> Value {
        let r = call(&req("resources/read", json!({"uri": uri})));
        let contents = r["result"]["contents"].as_array().expect("contents").clone();
        assert_eq!(contents.len(), 1);
        assert_eq!(contents[0]["uri"], uri);
        contents[0].clone()
    }

    #[test]
    fn lists_resources_and_the_template() {
        let r = call(&req("resources/list", json!({})));
        for res in r["result"]["resources"].as_array().unwrap() {
            assert!(res["uri"].is_string() && res["name"].is_string(), "{res}");
        }
        let r = call(&req("resources/templates/list", json!({})));
        assert_eq!(
            r["result"]["resourceTemplates"][0]["uriTemplate"],
            "test://template/{id}/data"
        );
    }

    #[test]
    fn reads_text_binary_and_template_resources() {
        let t = read_one("test://static-text");
        assert_eq!(t["mimeType"], "text/plain");
        assert!(t["text"].is_string());
        let b = read_one("test://static-binary");
        assert_eq!(b["mimeType"], "image/png");
        assert_eq!(b["blob"], media::PNG_BASE64);
        let d = read_one("test://template/123/data");
        assert!(d["text"].as_str().unwrap().contains("123"));
        assert!(read_one("test://watched-resource")["text"].is_string());
    }

    #[test]
    fn unknown_resources_are_not_found() {
        for uri in [
            "test://nope",
            "test://template//data",
            "test://template/a/b/data",
            "test://template/1",
        ] {
            let r = call(&req("resources/read", json!({"uri": uri})));
            assert_eq!(r["error"]["code"], RESOURCE_NOT_FOUND, "{uri}");
        }
        assert_eq!(call(&req("resources/read", json!({})))["error"]["code"], INVALID_PARAMS);
    }

    #[test]
    fn subscribe_and_unsubscribe_are_recorded() {
        let mut s = session();
        let uri = json!({"uri": "test://watched-resource"});
        assert_eq!(
            call_in(&mut s, &req("resources/subscribe", uri.clone()))["result"],
            json!({})
        );
        assert!(s.subscriptions.contains("test://watched-resource"));
        assert_eq!(
            call_in(&mut s, &req("resources/unsubscribe", uri.clone()))["result"],
            json!({})
        );
        assert!(s.subscriptions.is_empty());
        assert_eq!(call_in(&mut s, &req("resources/unsubscribe", uri))["result"], json!({}));
        let r = call_in(&mut s, &req("resources/subscribe", json!({})));
        assert_eq!(r["error"]["code"], INVALID_PARAMS);
    }
}
