//! The admin API over loopback HTTP, with the dashboard (`tether serve --admin-listen ADDR`):
//! the unix socket's calls ([`super::routes`]) and the page ([`super::dashboard`]), for a
//! browser and for a scraper that cannot speak to a unix socket (Prometheus).
//!
//! Any local user can reach a loopback port, and any web page the user opens can make the
//! browser send requests to it, so every request passes, in order:
//!
//! - **Host**: the listener's own loopback address or `localhost`, with its port; anything else
//!   is a page on a name that resolves to 127.0.0.1 (DNS rebinding): 403.
//! - **Origin**, when sent: the listener's own (`http://127.0.0.1:PORT`,
//!   `http://localhost:PORT`); a page of any other origin, another local port's included, is
//!   refused (CSRF): 403. Browsers send it with every POST and DELETE.
//! - **The admin token**: `Authorization: Bearer TOKEN`, or the login cookie; both compared in
//!   constant time: 401 otherwise. The token is `--admin-token-file`'s content, else 128
//!   random bits made at start-up and never logged: `tether dashboard` asks the unix socket
//!   for the login URL ([`Access::login_url`]); over HTTP that call does not exist.
//!
//! The login: `GET /?token=TOKEN` sets a cookie (`HttpOnly; SameSite=Strict; Path=/`, its
//! value 128 random bits of its own, not the token) and redirects (303) to `/`, so the token
//! leaves the address bar and the history. Answers are JSON `{"error": "…"}` when refused,
//! except the login page, which says how to get the URL.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{dashboard, routes};
use crate::config::{check_token, Secret};
use crate::front::guard::{constant_time_eq, host_port, is_loopback_host, loopback_origin_host};
use crate::gateway::Gateway;

/// Who may use the listener, and where it is.
pub struct Access {
    /// The address bound (the port chosen, for port 0).
    addr: SocketAddr,
    /// The admin token.
    token: Secret,
    /// The login cookie's value.
    cookie: Secret,
}

impl Access {
    /// The address bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/?token=TOKEN`: opened in a browser, it logs in and shows the dashboard.
    /// Given only over the unix socket (`GET /v1/dashboard`).
    pub fn login_url(&self) -> String {
        format!("http://{}/?token={}", self.addr, percent_encode(self.token.expose()))
    }

    /// The login cookie's name: one per port, since browsers share cookies between the ports
    /// of a host (two gateways' dashboards, in one browser, each keep theirs).
    fn cookie_name(&self) -> String {
        format!("tether_admin_{}", self.addr.port())
    }

    /// Whether `host` (a `Host` header) names this listener: a loopback name, with its port.
    fn own_host(&self, host: &str) -> bool {
        is_loopback_host(host) && host_port(host).unwrap_or(80) == self.addr.port()
    }

    /// Whether `origin` is this listener's own.
    fn own_origin(&self, origin: &str) -> bool {
        origin.starts_with("http://") && loopback_origin_host(origin).is_some_and(|h| self.own_host(h))
    }

    /// Whether the request carries the token (as a bearer) or the login cookie.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let bearer = headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|a| a.strip_prefix("Bearer ").or_else(|| a.strip_prefix("bearer ")))
            .any(|t| constant_time_eq(t.trim().as_bytes(), self.token.expose().as_bytes()));
        let name = self.cookie_name();
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .filter(|(n, _)| *n == name)
            .any(|(_, v)| constant_time_eq(v.as_bytes(), self.cookie.expose().as_bytes()));
        bearer || cookie
    }
}

/// The listener, bound, with its access.
pub struct Listener {
    listener: TcpListener,
    access: Arc<Access>,
}

impl Listener {
    /// Who may use it, and where it is.
    pub fn access(&self) -> Arc<Access> {
        self.access.clone()
    }
}

/// Reads the admin token from `path` (its content, trimmed; a token as the configuration's
/// `token_file` takes: at least 16 characters, no spaces).
pub fn read_token(path: &Path) -> Result<Secret, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("--admin-token-file {}: {e}", path.display()))?;
    check_token(text.trim()).map_err(|m| format!("--admin-token-file {}: {m}", path.display()))
}

/// Binds `addr`, which must be a loopback address, with `token` (else a random one).
pub async fn bind(addr: SocketAddr, token: Option<Secret>) -> std::io::Result<Listener> {
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("--admin-listen {addr}: the admin API listens on loopback only (127.0.0.1 or [::1])"),
        ));
    }
    let token = match token {
        Some(t) => t,
        None => Secret::new(tether_supervisor::ids::random_id()?),
    };
    let cookie = Secret::new(tether_supervisor::ids::random_id()?);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("--admin-listen {addr}: {e}")))?;
    let addr = listener.local_addr()?;
    Ok(Listener {
        listener,
        access: Arc::new(Access { addr, token, cookie }),
    })
}

/// Answers admin requests over HTTP until `stop`.
pub async fn serve(gw: Arc<Gateway>, listener: Listener, stop: watch::Receiver<bool>) {
    let Listener { listener, access } = listener;
    crate::front::accept_until(listener, stop, "admin listener", |stream| {
        let (gw, access) = (gw.clone(), access.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(gw.clone(), access.clone(), req));
            let _ = crate::front::http1_server()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    })
    .await;
}

/// Answers one request: the checks, the login, the page, else the admin API's call.
pub async fn handle<B>(
    gw: Arc<Gateway>,
    access: Arc<Access>,
    req: Request<B>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut r = match refusal(&access, &req) {
        Some(refused) => refused,
        None => answer(gw, &access, req).await,
    };
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    Ok(r)
}

/// Host and Origin, then the token (or the login with one): the answer that refuses the
/// request, if any.
fn refusal<B>(access: &Access, req: &Request<B>) -> Option<Response<Full<Bytes>>> {
    let headers = req.headers();
    let host = headers.get(header::HOST).map(|h| h.to_str().unwrap_or("(not text)"));
    match host {
        Some(h) if access.own_host(h) => {}
        Some(h) => {
            return Some(error(
                StatusCode::FORBIDDEN,
                &format!(
                    "Host {h:?} is not allowed: the admin API answers only to {} and localhost:{} (DNS rebinding protection)",
                    access.addr,
                    access.addr.port()
                ),
            ))
        }
        None => return Some(error(StatusCode::FORBIDDEN, "a Host header is required")),
    }
    if let Some(o) = headers.get(header::ORIGIN) {
        let o = o.to_str().unwrap_or("(not text)");
        if !access.own_origin(o) {
            return Some(error(
                StatusCode::FORBIDDEN,
                &format!(
                    "Origin {o:?} is not allowed: only the dashboard's own page (http://{}) may call the admin API from a browser",
                    access.addr
                ),
            ));
        }
    }
    // The login is checked by its own token; the page answers it.
    if req.method() == Method::GET && req.uri().path() == "/" && login_token(req.uri().query()).is_some() {
        return None;
    }
    if access.authorized(headers) {
        return None;
    }
    if req.method() == Method::GET && req.uri().path() == "/" {
        return Some(login_page(
            "This page needs the admin token: open the address that <code>tether dashboard</code> prints.",
        ));
    }
    let mut r = error(
        StatusCode::UNAUTHORIZED,
        "the admin token is required: Authorization: Bearer TOKEN (the token of --admin-token-file; \
         `tether dashboard` prints a login URL with the token), or the dashboard's login cookie",
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"tether admin\""),
    );
    Some(r)
}

/// The request, past the checks.
async fn answer<B>(gw: Arc<Gateway>, access: &Access, req: Request<B>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if req.method() == Method::GET {
        if path == "/" {
            if let Some(given) = login_token(req.uri().query()) {
                return login(access, &given);
            }
        }
        if let Some((content_type, body)) = dashboard::asset(path) {
            let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(dashboard::CONTENT_SECURITY_POLICY),
            );
            return r;
        }
    }
    if path.trim_end_matches('/') == "/v1/dashboard" {
        return error(
            StatusCode::NOT_FOUND,
            "/v1/dashboard: no such call over HTTP (the login URL is given on the admin socket only: `tether dashboard`)",
        );
    }
    match routes::handle(gw, req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// `GET /?token=…`: the right token gets the cookie and a redirect to `/`; a wrong one, the
/// login page.
fn login(access: &Access, given: &str) -> Response<Full<Bytes>> {
    if !constant_time_eq(given.as_bytes(), access.token.expose().as_bytes()) {
        return login_page(
            "That is not this gateway's admin token (a token made at start-up changes with every start): \
             open the address that <code>tether dashboard</code> prints now.",
        );
    }
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    let h = r.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_static("/"));
    let cookie = format!(
        "{}={}; HttpOnly; SameSite=Strict; Path=/",
        access.cookie_name(),
        access.cookie.expose()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        h.insert(header::SET_COOKIE, v);
    }
    r
}

/// The `token` parameter of a query, decoded.
fn login_token(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .find_map(|p| p.strip_prefix("token="))
        .map(percent_decode)
}

/// 401, as a page: a browser opened the dashboard without (the right) token.
fn login_page(why: &str) -> Response<Full<Bytes>> {
    let page = dashboard::LOGIN.replace("{why}", why);
    let mut r = Response::new(Full::new(Bytes::from(page)));
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(dashboard::CONTENT_SECURITY_POLICY),
    );
    r
}

/// `{"error": why}` with `status`.
fn error(status: StatusCode, why: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(json!({ "error": why }).to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Everything but unreserved characters (RFC 3986) as `%XX`.
fn percent_encode(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `%XX` decoded (a `+` stays: tokens have no spaces); a malformed escape stays as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(addr: &str) -> Access {
        Access {
            addr: addr.parse().expect("an address"),
            token: Secret::new("0123456789abcdef0123"),
            cookie: Secret::new("c00kie"),
        }
    }

    #[test]
    fn hosts_and_origins_are_the_listener_s_own() {
        let a = access("127.0.0.1:9000");
        for ok in ["127.0.0.1:9000", "localhost:9000", "LOCALHOST:9000"] {
            assert!(a.own_host(ok), "{ok}");
        }
        for bad in [
            "127.0.0.1:9001",
            "localhost",
            "evil.example:9000",
            "127.0.0.1",
            "[::1]:9001",
        ] {
            assert!(!a.own_host(bad), "{bad}");
        }
        for ok in [
            "http://127.0.0.1:9000",
            "http://localhost:9000",
            "http://localhost:9000/",
        ] {
            assert!(a.own_origin(ok), "{ok}");
        }
        for bad in [
            "http://localhost:3000",
            "https://localhost:9000",
            "http://evil.example:9000",
            "null",
            "http://127.0.0.1:9000.evil.example",
        ] {
            assert!(!a.own_origin(bad), "{bad}");
        }
        let six = access("[::1]:9000");
        assert!(six.own_host("[::1]:9000") && six.own_origin("http://[::1]:9000"));
    }

    #[test]
    fn the_token_or_the_cookie() {
        let a = access("127.0.0.1:9000");
        let with = |name: header::HeaderName, value: &str| {
            let mut h = HeaderMap::new();
            h.insert(name, HeaderValue::from_str(value).expect("a header"));
            a.authorized(&h)
        };
        assert!(with(header::AUTHORIZATION, "Bearer 0123456789abcdef0123"));
        assert!(!with(header::AUTHORIZATION, "Bearer 0123456789abcdef012"));
        assert!(with(header::COOKIE, "x=1; tether_admin_9000=c00kie"));
        assert!(!with(header::COOKIE, "tether_admin_9001=c00kie"));
        assert!(!with(header::COOKIE, "tether_admin_9000=0123456789abcdef0123"));
        assert!(!a.authorized(&HeaderMap::new()));
    }

    #[test]
    fn the_login_url_carries_the_token_encoded() {
        let a = Access {
            token: Secret::new("a b&c=d%e/0123456789"),
            ..access("127.0.0.1:9000")
        };
        let url = a.login_url();
        assert_eq!(url, "http://127.0.0.1:9000/?token=a%20b%26c%3Dd%25e%2F0123456789");
        let query = url.split_once('?').map(|(_, q)| q);
        assert_eq!(login_token(query).as_deref(), Some("a b&c=d%e/0123456789"));
        assert_eq!(percent_decode("%zz%4+"), "%zz%4+");
    }
}
