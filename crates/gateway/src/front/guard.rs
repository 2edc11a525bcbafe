//! Who may talk to the front door: the checks every HTTP request passes first.
//!
//! - **Host** (on a loopback bind): only `localhost`, `127.0.0.1` or `[::1]`, so a web page on a
//!   name that resolves to 127.0.0.1 (DNS rebinding) cannot reach the gateway: 403.
//! - **Origin**, when sent (browsers send it): a loopback origin or one in `allowed_origins`;
//!   anything else is a foreign page: 403.
//! - **Bearer token**, when configured: `Authorization: Bearer …`, compared in constant time:
//!   401 otherwise.

use std::net::SocketAddr;

use crate::config::GatewayConfig;

/// Why a request was turned away.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 403: a foreign Host or Origin.
    Forbidden(String),
    /// 401: no token, or the wrong one.
    Unauthorized,
}

/// Checks one request's Host, Origin and Authorization headers; returns the presented token.
pub fn check<'a>(
    cfg: &GatewayConfig,
    host: Option<&str>,
    origin: Option<&str>,
    authorization: Option<&'a str>,
) -> Result<Option<&'a str>, Refusal> {
    if cfg.listen.ip().is_loopback() {
        if let Some(h) = host {
            if !is_loopback_host(h) {
                return Err(Refusal::Forbidden(format!(
                    "Host {h:?} is not allowed: this gateway answers only to localhost, 127.0.0.1 and [::1] (DNS rebinding protection)"
                )));
            }
        }
    }
    if let Some(o) = origin {
        if !origin_allowed(cfg, o) {
            return Err(Refusal::Forbidden(format!(
                "Origin {o:?} is not allowed (add it to allowed_origins to let that page in)"
            )));
        }
    }
    let presented = authorization.and_then(|a| a.strip_prefix("Bearer ").or_else(|| a.strip_prefix("bearer ")));
    match &cfg.token {
        None => Ok(None),
        Some(token) => match presented {
            Some(p) if constant_time_eq(p.trim().as_bytes(), token.expose().as_bytes()) => Ok(Some(p)),
            _ => Err(Refusal::Unauthorized),
        },
    }
}

/// `localhost`, `127.0.0.1`, `[::1]`, with or without a port.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        // Only a port may follow the address: `[::1]evil.example` is not [::1].
        match rest.split_once(']') {
            Some((name, "")) => name,
            Some((name, port))
                if port
                    .strip_prefix(':')
                    .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit())) =>
            {
                name
            }
            _ => return false,
        }
    } else {
        host.rsplit_once(':').map_or(
            host,
            |(h, p)| if p.bytes().all(|b| b.is_ascii_digit()) { h } else { host },
        )
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name == "::1" || name.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether a browser page of `origin` may use the gateway: a loopback origin, or one in
/// `allowed_origins`.
pub fn origin_allowed(cfg: &GatewayConfig, origin: &str) -> bool {
    let origin = origin.trim_end_matches('/');
    if cfg
        .allowed_origins
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    loopback_origin_host(origin).is_some()
}

/// The host (and port, if any) of a loopback origin: `http://localhost:3000` → `localhost:3000`.
pub(crate) fn loopback_origin_host(origin: &str) -> Option<&str> {
    match origin.trim_end_matches('/').split_once("://") {
        Some(("http" | "https", host)) if is_loopback_host(host) => Some(host),
        _ => None,
    }
}

/// The port of a `Host` header's value (`localhost:7300`, `[::1]:7300`), if it names one.
pub(crate) fn host_port(host: &str) -> Option<u16> {
    let (_, port) = host.rsplit_once(':')?;
    port.bytes().all(|b| b.is_ascii_digit()).then(|| port.parse().ok())?
}

/// Compares without an early exit, so the time taken says nothing about where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// The origins a loopback gateway at `listen` is reached from, for messages.
pub fn own_origins(listen: SocketAddr) -> String {
    format!("http://localhost:{0}, http://127.0.0.1:{0}", listen.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn cfg(token: Option<&str>) -> GatewayConfig {
        GatewayConfig {
            token: token.map(Secret::new),
            allowed_origins: vec!["https://app.example.com".into()],
            ..GatewayConfig::default()
        }
    }

    #[test]
    fn hosts() {
        let c = cfg(None);
        for ok in [
            "localhost",
            "localhost:7300",
            "127.0.0.1:7300",
            "[::1]:7300",
            "127.0.0.1",
        ] {
            assert_eq!(check(&c, Some(ok), None, None), Ok(None), "{ok}");
        }
        for bad in [
            "evil.example.com",
            "evil.example.com:7300",
            "localhost.evil.com",
            "10.0.0.1:7300",
            // Found by fuzzing (http_front): whatever followed the brackets was ignored.
            "[::1]evil.example.com",
            "[::1]:73\0\0\0\0\0\0\0\u{f}://evil.exampl",
            "[::1]:7300:1",
            "[::1",
        ] {
            assert!(
                matches!(check(&c, Some(bad), None, None), Err(Refusal::Forbidden(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn origins() {
        let c = cfg(None);
        for ok in [
            "http://localhost:3000",
            "http://127.0.0.1:7300",
            "https://app.example.com",
        ] {
            assert_eq!(check(&c, None, Some(ok), None), Ok(None), "{ok}");
        }
        for bad in [
            "http://evil.example.com",
            "null",
            "https://app.example.com.evil.com",
            "file://x",
        ] {
            assert!(
                matches!(check(&c, None, Some(bad), None), Err(Refusal::Forbidden(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn tokens() {
        let c = cfg(Some("0123456789abcdef"));
        assert_eq!(check(&c, None, None, None), Err(Refusal::Unauthorized));
        assert_eq!(check(&c, None, None, Some("Bearer wrong")), Err(Refusal::Unauthorized));
        assert_eq!(
            check(&c, None, None, Some("Bearer 0123456789abcdef")),
            Ok(Some("0123456789abcdef"))
        );
        assert!(
            constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd") && !constant_time_eq(b"ab", b"abc")
        );
    }
}
