//! The gateway's streamable-HTTP session with one server: the client (pooled connections,
//! timeouts), the session id the server gave, and the requests of the transport (POST a
//! message, GET the server's own stream, DELETE the session).
//!
//! Credentials are headers the configuration gave; they are marked sensitive, never logged, and
//! every message names the server by its URL without them.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE, LOCATION};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::config::HttpUpstream;

/// The session header of streamable HTTP.
pub const SESSION_ID: &str = "mcp-session-id";
/// The protocol revision header, sent once the session is initialized.
pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";
/// How long a connection may take when the configuration says nothing.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the DELETE that ends a session may take.
pub const DELETE_TIMEOUT: Duration = Duration::from_secs(3);
/// Most bytes of an error body quoted in a message.
const QUOTED: usize = 200;

/// One server over streamable HTTP.
pub struct Link {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    url: Uri,
    /// The URL as messages show it: no credentials, no query (which may carry a key).
    pub shown: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    session: Mutex<Option<HeaderValue>>,
    version: Mutex<Option<HeaderValue>>,
    /// The `initialize` the session began with, to begin a new one the same way.
    initialize: Mutex<Option<Bytes>>,
    /// How many `initialize` exchanges are in flight (the session id comes with the answer).
    initializing: tokio::sync::watch::Sender<usize>,
    /// The largest message accepted.
    pub max: usize,
}

impl Link {
    /// A link to `upstream`; an error names what is wrong with its configuration.
    pub fn new(upstream: &HttpUpstream, max: usize) -> Result<Link, String> {
        let shown = shown_url(&upstream.url);
        let url: Uri = upstream.url.parse().map_err(|e| format!("url {shown}: {e}"))?;
        if !matches!(url.scheme_str(), Some("http" | "https")) {
            return Err(format!("url {shown}: expected http:// or https://"));
        }
        if url.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(format!(
                "url {shown}: credentials in the URL are not sent; give them in headers (Authorization)"
            ));
        }
        let mut headers = Vec::new();
        for (name, value) in &upstream.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("header {name:?}: not a valid header name"))?;
            let mut value = HeaderValue::from_str(value.expose())
                .map_err(|_| format!("header {name}: its value has characters a header cannot carry"))?;
            value.set_sensitive(true);
            headers.push((name, value));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(upstream.connection_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT)));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let tls = super::tls::client_config(&upstream.extra_roots).map_err(|e| format!("url {shown}: {e}"))?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(Link {
            client,
            url,
            shown,
            headers,
            session: Mutex::new(None),
            version: Mutex::new(None),
            initialize: Mutex::new(None),
            initializing: tokio::sync::watch::channel(0).0,
            max,
        })
    }

    /// The session id the server gave, if any.
    pub fn session(&self) -> Option<HeaderValue> {
        self.session.lock().ok().and_then(|s| s.clone())
    }

    /// Keeps the session id of a response, when it is the first; true when it was.
    pub fn adopt_session(&self, response: &Response<Incoming>) -> bool {
        let Some(id) = response.headers().get(SESSION_ID) else {
            return false;
        };
        let Ok(mut s) = self.session.lock() else { return false };
        if s.is_some() {
            return false;
        }
        let mut id = id.clone();
        id.set_sensitive(true);
        *s = Some(id);
        true
    }

    /// Counts an `initialize` in flight until the guard drops.
    pub fn initializing(&self) -> Initializing<'_> {
        self.initializing.send_modify(|n| *n += 1);
        Initializing(self)
    }

    /// Waits, up to `within`, until no `initialize` is in flight.
    pub async fn initialized(&self, within: Duration) {
        let mut rx = self.initializing.subscribe();
        let _ = tokio::time::timeout(within, rx.wait_for(|n| *n == 0)).await;
    }

    /// Keeps the `initialize` message the session began with.
    pub fn remember_initialize(&self, message: &Bytes) {
        if let Ok(mut i) = self.initialize.lock() {
            *i = Some(message.clone());
        }
    }

    /// That `initialize` again, under `id`.
    pub fn initialize_message(&self, id: &str) -> Option<Bytes> {
        let message = self.initialize.lock().ok()?.clone()?;
        let text = std::str::from_utf8(&message).ok()?;
        let view = crate::jsonrpc::View::parse(text).ok()?;
        Some(Bytes::from(view.with_id(id)))
    }

    /// Takes up a session opened earlier (by a gateway that died), to end it.
    pub fn resume(&self, id: &str) {
        if let (Ok(mut s), Ok(mut value)) = (self.session.lock(), HeaderValue::from_str(id)) {
            value.set_sensitive(true);
            *s = Some(value);
        }
    }

    /// Forgets the session (the server no longer knows it).
    pub fn drop_session(&self) {
        if let Ok(mut s) = self.session.lock() {
            s.take();
        }
    }

    /// Sends the negotiated revision from now on.
    pub fn set_version(&self, version: &str) {
        if let (Ok(mut v), Ok(value)) = (self.version.lock(), HeaderValue::from_str(version)) {
            *v = Some(value);
        }
    }

    /// One request of the transport, with the session's headers; `None` body for GET and DELETE.
    pub async fn send(&self, method: Method, body: Option<Bytes>) -> Result<Response<Incoming>, String> {
        self.send_to(&self.url, method, body).await
    }

    /// The URL a legacy SSE server's `endpoint` event names, resolved against the server's:
    /// only on the same scheme, host and port (the credentials go there too).
    pub fn endpoint(&self, given: &str) -> Result<Uri, String> {
        let origin = format!(
            "{}://{}",
            self.url.scheme_str().unwrap_or("http"),
            self.url.authority().map_or("", |a| a.as_str())
        );
        let absolute = if given.starts_with("http://") || given.starts_with("https://") {
            given.to_string()
        } else if given.starts_with('/') {
            format!("{origin}{given}")
        } else {
            let path = self.url.path();
            let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            format!("{origin}{dir}{given}")
        };
        let uri: Uri = absolute
            .parse()
            .map_err(|e| format!("{}: its endpoint {:?} is not a URL: {e}", self.shown, shown_url(given)))?;
        if uri.scheme() != self.url.scheme() || uri.authority() != self.url.authority() {
            return Err(format!(
                "{}: its endpoint {} is on another origin: refused (the credentials would go there)",
                self.shown,
                shown_url(&absolute)
            ));
        }
        Ok(uri)
    }

    /// One request to `url` with the session's headers.
    pub async fn send_to(&self, url: &Uri, method: Method, body: Option<Bytes>) -> Result<Response<Incoming>, String> {
        self.request(url, method, body, &[]).await
    }

    /// One request to the server's URL with the session's headers and `extra` ones (the
    /// 2026-07-28 routing headers), which win.
    pub async fn send_with(
        &self,
        method: Method,
        body: Option<Bytes>,
        extra: &[(&'static str, String)],
    ) -> Result<Response<Incoming>, String> {
        self.request(&self.url, method, body, extra).await
    }

    async fn request(
        &self,
        url: &Uri,
        method: Method,
        body: Option<Bytes>,
        extra: &[(&'static str, String)],
    ) -> Result<Response<Incoming>, String> {
        let mut request = Request::builder().method(method.clone()).uri(url.clone());
        if let Some(h) = request.headers_mut() {
            for (name, value) in &self.headers {
                h.insert(name.clone(), value.clone());
            }
            let accept = if method == Method::GET {
                "text/event-stream"
            } else {
                "application/json, text/event-stream"
            };
            h.insert(ACCEPT, HeaderValue::from_static(accept));
            if body.is_some() {
                h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            if let Some(s) = self.session() {
                h.insert(SESSION_ID, s);
            }
            if let Some(v) = self.version.lock().ok().and_then(|v| v.clone()) {
                h.insert(PROTOCOL_VERSION, v);
            }
            for (name, value) in extra {
                if let Ok(v) = HeaderValue::from_str(value) {
                    h.insert(*name, v);
                }
            }
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| format!("{method} {}: {e}", self.shown))?;
        self.client
            .request(request)
            .await
            .map_err(|e| format!("{method} {}: {}", self.shown, describe_error(&e)))
    }

    /// Ends the session with a DELETE, within [`DELETE_TIMEOUT`]; what happened, in words.
    pub async fn delete(&self) -> String {
        if self.session().is_none() {
            return "no session was open".into();
        }
        match tokio::time::timeout(DELETE_TIMEOUT, self.send(Method::DELETE, None)).await {
            Ok(Ok(r)) => format!("DELETE answered {}", r.status()),
            Ok(Err(e)) => e,
            Err(_) => format!(
                "DELETE {}: no answer within {}",
                self.shown,
                humantime::format_duration(DELETE_TIMEOUT)
            ),
        }
    }

    /// A whole body, up to the message limit.
    pub async fn body(&self, response: Response<Incoming>) -> Result<Bytes, String> {
        Limited::new(response.into_body(), self.max)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    format!(
                        "{}: its answer is larger than max_message_size ({} bytes)",
                        self.shown, self.max
                    )
                } else {
                    format!("{}: reading its answer: {e}", self.shown)
                }
            })
    }

    /// Why a response that is not a success cannot be used, in words: its status, where a
    /// redirect pointed, and the start of its body.
    pub async fn refusal(&self, method: &Method, response: Response<Incoming>) -> String {
        let status = response.status();
        if status.is_redirection() {
            let to = response
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .map_or_else(|| "nowhere".to_string(), shown_url);
            return format!(
                "{method} {} was redirected ({status}) to {to}: redirects are not followed, configure the final URL",
                self.shown
            );
        }
        let body = Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body[..body.len().min(QUOTED)])
            .trim()
            .replace(['\n', '\r'], " ");
        if text.is_empty() {
            format!("{method} {} answered {status}", self.shown)
        } else {
            format!("{method} {} answered {status}: {text}", self.shown)
        }
    }
}

/// An `initialize` in flight (see [`Link::initializing`]).
pub struct Initializing<'a>(&'a Link);

impl Drop for Initializing<'_> {
    fn drop(&mut self) {
        self.0.initializing.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// The status of a response that carries messages: JSON, or an event stream.
pub fn content(response: &Response<Incoming>) -> Option<Content> {
    let kind = response.headers().get(CONTENT_TYPE)?.to_str().ok()?;
    let kind = kind.split(';').next()?.trim().to_ascii_lowercase();
    match kind.as_str() {
        "application/json" => Some(Content::Json),
        "text/event-stream" => Some(Content::Events),
        _ => None,
    }
}

/// What a successful response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// One JSON-RPC message (or a batch).
    Json,
    /// Server-sent events, one message each.
    Events,
}

/// Whether a status means the server no longer knows the session.
pub fn session_gone(status: StatusCode) -> bool {
    status == StatusCode::NOT_FOUND
}

/// A URL without credentials, query or fragment, for messages and the ledger.
pub fn shown_url(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_string(),
    }
}

/// A client error with its cause (connection refused, timed out), which its `Display` leaves out.
fn describe_error(e: &hyper_util::client::legacy::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_urls_carry_no_credentials() {
        assert_eq!(shown_url("http://u:p@h:1/mcp?key=k#x"), "http://h:1/mcp");
        assert_eq!(shown_url("http://h/mcp"), "http://h/mcp");
        assert_eq!(shown_url("http://u@h"), "http://h");
    }
}
