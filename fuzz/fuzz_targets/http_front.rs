//! The HTTP front door's headers and bodies: the guard (Host, Origin, Authorization), the
//! `Accept` header, the server name in `/mcp/{server}` and a POST body as the front door reads
//! it (UTF-8, then one message or a batch). Never a panic, and what the guard lets in is what
//! it promises: a loopback Host, a loopback or listed Origin, the configured token.
#![no_main]

use std::net::{Ipv4Addr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use tether_gateway::config::{GatewayConfig, Secret};
use tether_gateway::front::guard;
use tether_gateway::fuzz_entry;
use tether_gateway::jsonrpc::{self, View};

fuzz_target!(|data: &[u8]| {
    // Fields separated by 0xff bytes (never in UTF-8 text): host, origin, authorization,
    // token, an allowed origin, Accept values, a path and the body.
    let mut fields = data.split(|&b| b == 0xff);
    let mut next = || fields.next().and_then(|f| std::str::from_utf8(f).ok());
    let (host, origin, auth, token, allowed) = (next(), next(), next(), next(), next());
    let (accept, path, body) = (next(), next(), next());

    let cfg = GatewayConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 7300)),
        token: token.filter(|t| !t.is_empty()).map(Secret::new),
        allowed_origins: allowed.map(|a| vec![a.to_string()]).unwrap_or_default(),
        ..GatewayConfig::default()
    };
    if let Ok(presented) = guard::check(&cfg, host, origin, auth) {
        if let Some(h) = host {
            assert!(strictly_loopback(h), "Host {h:?} let in");
        }
        if let Some(o) = origin {
            let listed = cfg
                .allowed_origins
                .iter()
                .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(o.trim_end_matches('/')));
            let own = o
                .trim_end_matches('/')
                .strip_prefix("http://")
                .or_else(|| o.trim_end_matches('/').strip_prefix("https://"))
                .is_some_and(strictly_loopback);
            assert!(listed || own, "Origin {o:?} let in");
        }
        if let Some(t) = &cfg.token {
            assert_eq!(presented.map(str::trim), Some(t.expose()));
        }
    }

    if let Some(a) = accept {
        let values: Vec<&[u8]> = a.split('\n').map(str::as_bytes).collect();
        let _ = fuzz_entry::accepts(&values);
    }
    if let Some(p) = path {
        if let Some(name) = fuzz_entry::percent_decode(p) {
            assert!(well_escaped(p), "{p:?} decoded to {name:?}");
        }
    }
    if let Some(body) = body {
        if let Ok(text) = jsonrpc::utf8(body.as_bytes()) {
            if jsonrpc::is_batch(text) {
                for item in jsonrpc::split_batch(text).unwrap_or_default() {
                    let _ = View::parse(item.get());
                }
            } else {
                let _ = View::parse(text);
            }
        }
    }
});

/// `localhost`, a 127.0.0.0/8 address or `::1` (in brackets, or bare), each with
/// an optional `:port` of digits (and root dots), case aside: the only Hosts a loopback gateway
/// answers. Loopback names in brackets (`[localhost]`) are not valid Hosts but still loopback.
fn strictly_loopback(host: &str) -> bool {
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    let name = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((name, after)) if after.is_empty() || after.strip_prefix(':').is_some_and(digits) => name,
            _ => return false,
        },
        None => match host.rsplit_once(':') {
            Some((name, port)) if digits(port) => name,
            _ => host,
        },
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name == "::1" || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Every `%` followed by two hexadecimal digits.
fn well_escaped(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().filter(|(_, &c)| c == b'%').all(|(i, _)| {
        b.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
    })
}
